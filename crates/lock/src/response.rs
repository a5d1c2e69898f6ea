//! What the state machine answers: replies, and refusals as values.
//!
//! Why refusals are values: "your token is stale", "somebody else holds the lock", "your session
//! expired" are normal outcomes of a distributed lock service, not bugs. They are computed by the
//! replicated state machine, so every replica computes the same one at the same log position;
//! they are cached for deduplication (a retried request gets the same refusal); and the client
//! must be able to act on each reason. So they are serialisable enum variants with the facts
//! the client needs (the current holder, the current token), never panics or strings.

use std::time::Duration;

use palisade_clock::HlcTimestamp;
use palisade_raft::LogIndex;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::command::{SessionId, Token};
use crate::limits::LimitExceeded;

/// Who holds a lock.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Holder {
    /// The holder's session.
    pub session: SessionId,
    /// The client that owns that session.
    pub client: u64,
    /// The grant's fencing token.
    pub token: Token,
    /// Log index of the entry that granted it.
    pub since_index: LogIndex,
}

/// The successful outcomes of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The session is open; its id is the log index of the `OpenSession` entry.
    SessionOpened {
        /// The new session.
        session: SessionId,
        /// Its TTL.
        ttl: Duration,
    },
    /// The session was renewed by this entry.
    Renewed {
        /// The session.
        session: SessionId,
        /// Its TTL, counted by the client from when it sent the keepalive.
        ttl: Duration,
    },
    /// The session is closed and its locks released (handed to waiters at once).
    SessionClosed {
        /// The session.
        session: SessionId,
    },
    /// The caller holds the lock. `reentrant` when it already held it: same grant, same token.
    Acquired {
        /// Lock name.
        lock: String,
        /// The grant.
        holder: Holder,
        /// Whether this was a repeated acquire by the current holder.
        reentrant: bool,
    },
    /// The caller waits in the lock's FIFO queue; a `Granted` event will follow.
    Queued {
        /// Lock name.
        lock: String,
        /// 0-based position in the queue (0 = next).
        position: u32,
    },
    /// Try-acquire failed: the lock is held, or in lock-delay after an expiry.
    Busy {
        /// Lock name.
        lock: String,
        /// Current holder, if any.
        holder: Option<Holder>,
        /// Index of the expiry whose lock-delay is running, if any.
        delayed_since: Option<LogIndex>,
    },
    /// The lock was released; `next` is the waiter it was handed to in the same step.
    Released {
        /// Lock name.
        lock: String,
        /// The token of the released grant (stale from now on).
        token: Token,
        /// The new holder, if a waiter was queued.
        next: Option<Holder>,
    },
    /// The caller left the lock's wait queue.
    Dequeued {
        /// Lock name.
        lock: String,
    },
    /// A put or cas was applied.
    Written {
        /// Key.
        key: String,
        /// The new value's version.
        version: HlcTimestamp,
    },
    /// A delete was applied.
    Deleted {
        /// Key.
        key: String,
        /// Whether the key existed.
        existed: bool,
        /// Version assigned to the deletion (versions never go backwards, also across deletes).
        version: HlcTimestamp,
    },
}

/// Which kind of name was empty.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NameKind {
    /// A lock name.
    Lock,
    /// A kv key.
    Key,
}

/// Why a fenced write was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Error)]
pub enum FenceRejection {
    /// The lock is held, but not with the presented token: an older grant (or not a token of
    /// this lock at all).
    #[error("stale token {presented} for lock {lock:?}: current grant is {current}")]
    StaleToken {
        /// Lock name.
        lock: String,
        /// The token presented.
        presented: Token,
        /// The current grant's token.
        current: Token,
    },
    /// The lock is known (waiters queued or lock-delay running) but nobody holds it.
    #[error("lock {lock:?} is not held (token {presented} presented)")]
    LockNotHeld {
        /// Lock name.
        lock: String,
        /// The token presented.
        presented: Token,
    },
    /// No such lock: never acquired, or released with nobody waiting (free locks are
    /// forgotten to keep the state bounded).
    #[error("unknown lock {lock:?} (token {presented} presented)")]
    UnknownLock {
        /// Lock name.
        lock: String,
        /// The token presented.
        presented: Token,
    },
}

/// Why a request was refused. Cached like a reply: a retry gets the same refusal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Error)]
pub enum Refused {
    /// A limit was exceeded.
    #[error("{0}")]
    Limit(LimitExceeded),
    /// A lock name or key was empty.
    #[error("empty {kind:?} name")]
    EmptyName {
        /// Which kind of name.
        kind: NameKind,
    },
    /// The client has no open session (never opened, expired or closed); only `OpenSession`
    /// is accepted.
    #[error("client {client:#x} has no open session")]
    NoSession {
        /// The client id.
        client: u64,
    },
    /// The request names a session that does not exist (expired, closed, never opened).
    #[error("session {session} does not exist")]
    UnknownSession {
        /// The session named.
        session: SessionId,
    },
    /// The request names a session of another client.
    #[error("session {session} belongs to another client")]
    NotSessionOwner {
        /// The session named.
        session: SessionId,
    },
    /// `OpenSession` from a client that already has an open session.
    #[error("client already has session {session}")]
    SessionExists {
        /// The open session.
        session: SessionId,
    },
    /// The request's seq is lower than the last one applied for this client: it is an old
    /// retry whose answer is no longer kept.
    #[error("request seq {seq} is older than the last applied seq {last}")]
    StaleRequest {
        /// The request's seq.
        seq: u64,
        /// The last seq applied for the client.
        last: u64,
    },
    /// Release of a lock the session neither holds nor waits for.
    #[error("session {session} does not hold or wait for lock {lock:?}")]
    NotHolder {
        /// Lock name.
        lock: String,
        /// The session.
        session: SessionId,
    },
    /// A fenced write did not pass its fence.
    #[error("fence rejected: {0}")]
    Fence(FenceRejection),
    /// A compare-and-swap found something else than expected.
    #[error("compare-and-swap mismatch (current version {current:?})")]
    CasMismatch {
        /// The current version, `None` if the key does not exist.
        current: Option<HlcTimestamp>,
    },
}

/// The answer to a request, as computed at apply.
pub type Response = Result<Reply, Refused>;
