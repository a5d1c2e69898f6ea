//! palisade's lock service, one lock at a time: acquire, release, fenced writes, expiry.
//!
//! What palisade promises about one lock, and what this model checks, in the linearization:
//! at most one session holds it; a grant's fencing token is larger than every earlier grant's
//! of the same lock (tokens are log indices); a repeated acquire by the holder returns the same
//! grant (same token); only the holder can release it; palisade's fenced kv accepts a write
//! exactly when the presented token is the lock's current grant. (Tokens increasing across
//! *different* locks is a property of the whole history, checked by
//! [`crate::check_tokens`].)
//!
//! # Expiry: the choice, and why it is sound
//!
//! A session can lose its locks at any moment without doing anything: its TTL runs out and the
//! leader commits an expiry. Clients do not see that happen. Two rules, chosen by
//! [`ExpiryRule`]:
//!
//! * [`ExpiryRule::Silent`] (the default, needs nothing but client observations): the holder
//!   *may* lose the lock at any point of the linearization. The model applies the loss lazily,
//!   only when an observation requires it (another session is granted the lock; the holder is
//!   told it is not the holder; a write with the holder's token is rejected). A lock that was
//!   held and may have been lost can never be *less* permissive than one that was surely lost,
//!   since the loss can still happen later, so keeping it held until forced is exact — this is
//!   tested against a brute-force checker with explicit loss steps.
//!   What remains checkable: a release acknowledged after somebody else's grant, a token that
//!   goes backwards, a busy answer for a lock nobody can hold, a fenced write accepted with a
//!   token that is not the current grant's, a reentrant acquire with another token. What is
//!   *not* checkable this way: two overlapping grants on their own (the first holder may have
//!   expired in between) — that needs the server's expiries:
//! * [`ExpiryRule::Logged`]: the history contains every expiry as an [`LockOp::Expire`]
//!   operation (from the replicated log, with the time it was proposed and applied), and a
//!   holder loses the lock only through one. Then two grants to different sessions with no
//!   release or expiry between them are a violation. A session close is recorded as a release
//!   or an expiry. Use it only when the expiries are complete, or it reports false violations.
//!
//! After an expiry palisade holds the lock back for the lock-delay, answering try-acquires
//! "busy" with no holder, and it decides on its own when the delay ends. The model's
//! [`Holder::Lost`] state therefore allows both "busy" and a new grant.
//!
//! Sessions are the history's own numbers (the JSON format defaults them to the process). A
//! blocking acquire that waited in the queue is one operation from its call to the grant; a
//! waiter that gave up and left the queue reports `NotHolder` for its release (palisade's
//! `Dequeued`). The lock starts free, and tokens start at 0.

use serde::{Deserialize, Serialize};

use crate::model::Model;

/// How holders lose a lock without releasing it. See the module doc.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ExpiryRule {
    /// The holder may lose the lock at any time (expiry is invisible to the history).
    #[default]
    Silent,
    /// Holders lose locks only through [`LockOp::Expire`] operations in the history.
    Logged,
}

/// A lock operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LockOp {
    /// Acquire the lock (try or blocking).
    Acquire,
    /// Release it (or leave its wait queue).
    Release,
    /// A write to palisade's fenced kv presenting `token` for this lock.
    FencedWrite {
        /// The token presented.
        token: u64,
    },
    /// The session expired (or closed): it loses the lock if it holds it.
    Expire,
}

/// A lock operation by a session on a lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LockInput {
    /// The lock's name: the partition.
    pub lock: String,
    /// The session acting (for `Expire`: the session that expired; ignored for fenced writes).
    pub session: u64,
    /// The operation.
    pub op: LockOp,
}

impl LockInput {
    /// `op` by `session` on `lock`.
    pub fn new(lock: impl Into<String>, session: u64, op: LockOp) -> Self {
        LockInput { lock: lock.into(), session, op }
    }
}

/// What the client (or the log, for expiries) was told.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LockOutput {
    /// Acquire: the session holds the lock with this token.
    Granted {
        /// The grant's fencing token.
        token: u64,
    },
    /// Try-acquire: somebody else holds it, or it is in lock-delay.
    Busy,
    /// Release: the session held the lock and released it.
    Released,
    /// Release: the session did not hold the lock.
    NotHolder,
    /// Fenced write: the token was the current grant's; the write was applied.
    Accepted,
    /// Fenced write: refused because of the token (stale, unknown lock, lock not held).
    Rejected,
    /// Expire: applied.
    Expired,
}

/// What is known about the current grant's token.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenKnown {
    /// The token.
    Exactly(u64),
    /// The grant's outcome was never observed: some token at least this.
    AtLeast(u64),
}

/// Who holds the lock.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Holder {
    /// Nobody, and no lock-delay is running (never granted, or released).
    Free,
    /// `session` holds the current grant.
    Held {
        /// The holder.
        session: u64,
        /// The grant's token.
        token: TokenKnown,
    },
    /// The holder's session expired: nobody holds it, and palisade may still answer "busy"
    /// (lock-delay) or grant it.
    Lost,
}

/// The state of one lock.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LockState {
    /// Who holds it.
    pub holder: Holder,
    /// The smallest token a new grant may carry: one more than every earlier grant's.
    pub next_token_min: u64,
}

/// The lock model (see the module doc).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct LockModel {
    /// How holders lose a lock without releasing it.
    pub expiry: ExpiryRule,
}

impl LockModel {
    /// The model with the given expiry rule.
    pub fn new(expiry: ExpiryRule) -> Self {
        LockModel { expiry }
    }

    fn silent(&self) -> bool {
        self.expiry == ExpiryRule::Silent
    }

    fn grant(state: &LockState, session: u64, token: u64) -> LockState {
        assert!(token >= state.next_token_min.saturating_sub(1), "checked by the caller");
        LockState {
            holder: Holder::Held { session, token: TokenKnown::Exactly(token) },
            next_token_min: token.saturating_add(1).max(state.next_token_min),
        }
    }

    fn with(state: &LockState, holder: Holder) -> LockState {
        LockState { holder, ..*state }
    }

    fn granted(&self, state: &LockState, session: u64, token: u64) -> Option<LockState> {
        let fresh = token >= state.next_token_min;
        match state.holder {
            Holder::Free | Holder::Lost => fresh.then(|| Self::grant(state, session, token)),
            Holder::Held { session: s, token: TokenKnown::Exactly(t) } if s == session => {
                if t == token {
                    Some(*state)
                } else {
                    // Lost by expiry, then granted anew.
                    (self.silent() && fresh).then(|| Self::grant(state, session, token))
                }
            }
            Holder::Held { session: s, token: TokenKnown::AtLeast(min) } if s == session => {
                // The unobserved grant had this token (or it was lost and granted anew, which
                // needs an even larger one).
                (token >= min).then(|| Self::grant(state, session, token))
            }
            Holder::Held { .. } => {
                (self.silent() && fresh).then(|| Self::grant(state, session, token))
            }
        }
    }

    fn busy(&self, state: &LockState, session: u64) -> Option<LockState> {
        match state.holder {
            Holder::Free => None,
            Holder::Lost => Some(*state),
            Holder::Held { session: s, .. } if s == session => {
                self.silent().then(|| Self::with(state, Holder::Lost))
            }
            Holder::Held { .. } => Some(*state),
        }
    }

    fn released(state: &LockState, session: u64) -> Option<LockState> {
        match state.holder {
            Holder::Held { session: s, .. } if s == session => {
                Some(Self::with(state, Holder::Free))
            }
            _ => None,
        }
    }

    fn not_holder(&self, state: &LockState, session: u64) -> Option<LockState> {
        match state.holder {
            Holder::Held { session: s, .. } if s == session => {
                self.silent().then(|| Self::with(state, Holder::Lost))
            }
            _ => Some(*state),
        }
    }

    fn accepted(state: &LockState, token: u64) -> Option<LockState> {
        match state.holder {
            Holder::Held { token: TokenKnown::Exactly(t), .. } => (t == token).then_some(*state),
            Holder::Held { session, token: TokenKnown::AtLeast(min) } => {
                (token >= min).then(|| Self::grant(state, session, token))
            }
            Holder::Free | Holder::Lost => None,
        }
    }

    fn rejected(&self, state: &LockState, token: u64) -> Option<LockState> {
        match state.holder {
            Holder::Held { token: TokenKnown::Exactly(t), .. } if t == token => {
                self.silent().then(|| Self::with(state, Holder::Lost))
            }
            _ => Some(*state),
        }
    }

    fn expire(state: &LockState, session: u64) -> LockState {
        match state.holder {
            Holder::Held { session: s, .. } if s == session => Self::with(state, Holder::Lost),
            _ => *state,
        }
    }

    fn grant_unobserved(state: &LockState, session: u64) -> LockState {
        LockState {
            holder: Holder::Held { session, token: TokenKnown::AtLeast(state.next_token_min) },
            next_token_min: state.next_token_min.saturating_add(1),
        }
    }
}

impl Model for LockModel {
    type Key = String;
    type State = LockState;
    type Input = LockInput;
    type Output = LockOutput;

    fn partition(&self, input: &LockInput) -> String {
        input.lock.clone()
    }

    fn init(&self) -> LockState {
        LockState { holder: Holder::Free, next_token_min: 0 }
    }

    fn step(&self, state: &LockState, input: &LockInput, output: &LockOutput) -> Option<LockState> {
        let session = input.session;
        match (&input.op, output) {
            (LockOp::Acquire, LockOutput::Granted { token }) => {
                self.granted(state, session, *token)
            }
            (LockOp::Acquire, LockOutput::Busy) => self.busy(state, session),
            (LockOp::Release, LockOutput::Released) => Self::released(state, session),
            (LockOp::Release, LockOutput::NotHolder) => self.not_holder(state, session),
            (LockOp::FencedWrite { token }, LockOutput::Accepted) => Self::accepted(state, *token),
            (LockOp::FencedWrite { token }, LockOutput::Rejected) => self.rejected(state, *token),
            (LockOp::Expire, LockOutput::Expired) => Some(Self::expire(state, session)),
            _ => None,
        }
    }

    /// Under [`ExpiryRule::Logged`], "busy", "not holder" and "rejected" never change the
    /// state; under `Silent` each may be the first sign of an expiry, so nothing is read-only.
    fn is_read_only(&self, input: &LockInput, output: &LockOutput) -> bool {
        !self.silent()
            && matches!(
                (&input.op, output),
                (LockOp::Acquire, LockOutput::Busy)
                    | (LockOp::Release, LockOutput::NotHolder)
                    | (LockOp::FencedWrite { .. }, LockOutput::Rejected)
            )
    }

    fn step_unknown(&self, state: &LockState, input: &LockInput) -> LockState {
        let session = input.session;
        match (&input.op, state.holder) {
            (LockOp::Acquire, Holder::Free | Holder::Lost) => {
                Self::grant_unobserved(state, session)
            }
            // Held (by anybody): under `Silent` the holder may have lost it and this acquire
            // been granted; otherwise it was busy or reentrant, which changes nothing.
            (LockOp::Acquire, Holder::Held { .. }) if self.silent() => {
                Self::grant_unobserved(state, session)
            }
            (LockOp::Acquire, Holder::Held { .. }) => *state,
            (LockOp::Release, _) => Self::released(state, session).unwrap_or(*state),
            (LockOp::FencedWrite { .. }, _) => *state,
            (LockOp::Expire, _) => Self::expire(state, session),
        }
    }
}
