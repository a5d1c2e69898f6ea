//! The replicated state machine: sessions, locks with fencing tokens, the fenced kv store,
//! exactly-once request handling.
//!
//! Why it looks like this: every replica applies the same committed commands in the same order
//! and must end in the same state, byte for byte (snapshots are compared in tests). So the state
//! machine reads no clock, draws no random number, iterates only ordered maps, and decides every
//! time-dependent thing from a [`LeaderOp`] in the log. It is also where the safety properties
//! are *made*, so they are asserted where they are made, always on:
//!
//! - a grant's token is greater than every token before it (`token > last_token`);
//! - a lock has at most one holder, and the holder is never in its own wait queue;
//! - every held lock is in its holder session's set, every queued one in the waiter's.
//!
//! Hand-off is part of the same apply step as the release that causes it: when a holder
//! releases, closes its session, or the lock-delay after an expiry ends, the next waiter is
//! granted in that same entry — no tick, no polling, no window in which the lock is free and a
//! newcomer could jump the queue.
//!
//! Exactly once: each session keeps the last `(seq, response)` of its client. A request with
//! that seq is a duplicate and gets the cached response without running; an older seq gets
//! [`crate::Refused::StaleRequest`]; a newer one runs. A client therefore has one request in
//! flight at a time (the Raft thesis §6.3 scheme with a window of one). The entry dies with the
//! session: a client without a session gets [`crate::Refused::NoSession`] for anything but
//! `OpenSession`, and an `OpenSession` refused before a session exists is not cached (it changed
//! nothing, so running it again is harmless).
//!
//! `KeepAlive` is the one exception: it bypasses the one-slot table entirely (neither checked
//! against nor recorded in it), so a client can keep its session alive while one other request
//! is in flight. That is safe because a keepalive is idempotent in the only way that matters:
//! applying it again renews once more, from a later entry. The lease proof (see `client` and
//! `tracker`) only needs every application of keepalive K to happen *after* the client sent K:
//! the client anchors its lease at K's send time `s_K` and believes in it for less than T of
//! real time, while every application of K (the first, a retransmission, a duplicate the
//! network made) creates a basis after `s_K` with remaining T, so the server's deadline is at
//! least `s_K + T` however often K is applied. A duplicate only moves the server's deadline
//! later — more conservative — by at most the time the duplicate spent on its way.
//!
//! Submodules: `sessions` (open, renew, checkpoint, expire, close, dedup), `locks` (acquire,
//! release, hand-off, lock-delay), `kv` (fenced writes, versions), `snapshot` (snapshot,
//! restore, the full invariant check).

mod kv;
mod locks;
mod sessions;
mod snapshot;

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_clock::HlcTimestamp;
use palisade_raft::LogIndex;
use serde::{Deserialize, Serialize};

use crate::command::{Command, LeaderOp, RequestId, SessionId, Token};
use crate::limits::{LockConfig, LockTestingFault};
use crate::response::{Holder, Response};

pub use kv::Value;
pub use locks::LockInfo;
pub use sessions::Session;

/// Why a lock was released.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReleaseCause {
    /// The holder released it.
    Released,
    /// The holder closed its session.
    SessionClosed,
    /// The holder's session expired (lock-delay follows).
    SessionExpired,
}

/// Something that happened while applying one entry; the server answers long-polling clients
/// from these, and the session tracker updates its timers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A session was opened; its basis is the OpenSession entry and its remaining time is `ttl`.
    SessionOpened {
        /// The session.
        session: SessionId,
        /// Its client.
        client: u64,
        /// The entry that opened it (= the session id).
        basis: LogIndex,
        /// Its TTL.
        ttl: Duration,
    },
    /// A keepalive renewed the session from `basis` for `remaining` (= the TTL).
    SessionRenewed {
        /// The session.
        session: SessionId,
        /// The keepalive entry.
        basis: LogIndex,
        /// The TTL.
        remaining: Duration,
    },
    /// A checkpoint carried the session's remaining time to a new basis.
    SessionCheckpointed {
        /// The session.
        session: SessionId,
        /// The checkpoint entry.
        basis: LogIndex,
        /// The remaining time it carries.
        remaining: Duration,
    },
    /// An `ExpireSession` for the session's current basis was applied.
    SessionExpired {
        /// The session.
        session: SessionId,
        /// The basis that expired.
        basis: LogIndex,
    },
    /// The client closed the session.
    SessionClosed {
        /// The session.
        session: SessionId,
        /// Its basis when closed.
        basis: LogIndex,
    },
    /// A lock was granted (directly, or by hand-off to a waiter).
    Granted {
        /// Lock name.
        lock: String,
        /// New holder.
        session: SessionId,
        /// Its token.
        token: Token,
        /// The granting entry.
        index: LogIndex,
    },
    /// A session joined a lock's wait queue.
    Queued {
        /// Lock name.
        lock: String,
        /// The waiter.
        session: SessionId,
        /// 0-based position.
        position: u32,
    },
    /// A session left a lock's wait queue without getting it (gave up, expired, closed).
    Dequeued {
        /// Lock name.
        lock: String,
        /// The former waiter.
        session: SessionId,
    },
    /// A grant ended.
    Released {
        /// Lock name.
        lock: String,
        /// The former holder.
        session: SessionId,
        /// The ended grant's token.
        token: Token,
        /// Why.
        cause: ReleaseCause,
    },
    /// An expiry released the lock: nobody gets it until `LockDelayOver { lock, since }`.
    LockDelayStarted {
        /// Lock name.
        lock: String,
        /// The expiry entry.
        since: LogIndex,
    },
    /// The lock-delay that started at `since` ended.
    LockDelayEnded {
        /// Lock name.
        lock: String,
        /// The expiry entry that started it.
        since: LogIndex,
    },
}

/// The result of applying one entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The entry's index.
    pub index: LogIndex,
    /// The answer to the client request, if the entry was one.
    pub response: Option<(RequestId, Response)>,
    /// What happened, in order.
    pub events: Vec<Event>,
}

/// The lock service's replicated state machine. Drive it with [`LockStateMachine::apply`] for
/// every committed command, in log order; read it with the `&self` queries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStateMachine {
    config: LockConfig,
    last_applied: LogIndex,
    last_token: Token,
    last_version: HlcTimestamp,
    sessions: BTreeMap<SessionId, Session>,
    locks: BTreeMap<String, LockInfo>,
    kv: BTreeMap<String, Value>,
    /// client id -> its session (derived from `sessions`, rebuilt on restore).
    #[serde(skip)]
    clients: BTreeMap<u64, SessionId>,
    /// Sum of key and value bytes in `kv` (derived, rebuilt on restore).
    #[serde(skip)]
    kv_bytes: usize,
}

impl LockStateMachine {
    /// An empty state machine. Panics if `config` is invalid: validate it first
    /// ([`LockConfig::validate`]); a node must not start with a configuration that cannot work.
    pub fn new(config: LockConfig) -> Self {
        if let Err(e) = config.validate() {
            panic!("LockStateMachine::new with an invalid configuration: {e}");
        }
        LockStateMachine {
            config,
            last_applied: 0,
            last_token: 0,
            last_version: hlc_zero(),
            sessions: BTreeMap::new(),
            locks: BTreeMap::new(),
            kv: BTreeMap::new(),
            clients: BTreeMap::new(),
            kv_bytes: 0,
        }
    }

    /// Applies the committed command at `index`. Indices must strictly increase (gaps are the
    /// entries that were not lock commands: Raft no-ops and membership changes).
    pub fn apply(&mut self, index: LogIndex, cmd: &Command) -> Applied {
        assert!(
            index > self.last_applied,
            "apply out of order: {index} after {}",
            self.last_applied
        );
        self.last_applied = index;
        let mut applied = Applied { index, response: None, events: Vec::new() };
        match cmd {
            Command::Client(req) => {
                let response = self.apply_request(index, req, &mut applied.events);
                applied.response = Some((req.id, response));
            }
            Command::Leader(op) => self.apply_leader_op(index, op, &mut applied.events),
        }
        applied
    }

    fn apply_leader_op(&mut self, index: LogIndex, op: &LeaderOp, events: &mut Vec<Event>) {
        // A leader op past the limits can only come from a buggy leader: ignoring it is the
        // deterministic, conservative choice (nothing expires, nothing is granted).
        if op.validate(&self.config).is_err() {
            return;
        }
        match op {
            LeaderOp::ExpireSession { session, basis } => {
                self.expire_session(index, *session, *basis, events);
            }
            LeaderOp::Checkpoint(entries) => self.checkpoint(index, entries, events),
            LeaderOp::LockDelayOver { lock, since } => {
                self.lock_delay_over(index, lock, *since, events);
            }
        }
    }

    /// **Testing fault [`LockTestingFault::ExpireWithoutLog`] only**: expires `session` in this
    /// replica's state without a log entry, the way a naive leader would on its own timer. Its
    /// locks are released and handed over (tokens `last_token + 1`, ...) on this replica alone:
    /// the replicas diverge, which is the bug the fault exists to demonstrate.
    pub fn apply_unlogged_expiry(&mut self, session: SessionId) -> Applied {
        assert!(
            self.config.has_fault(LockTestingFault::ExpireWithoutLog),
            "apply_unlogged_expiry requires the ExpireWithoutLog testing fault"
        );
        let index = self.last_applied;
        let mut events = Vec::new();
        if let Some(basis) = self.sessions.get(&session).map(|s| s.basis) {
            self.expire_session(index, session, basis, &mut events);
        }
        Applied { index, response: None, events }
    }

    /// The next token for a grant by the entry at `index`: the index itself, or one more than
    /// the last token if this entry already granted one.
    fn next_token(&self, index: LogIndex) -> Token {
        let token = index.max(self.last_token + 1);
        assert!(token > self.last_token);
        token
    }

    /// The configuration (replicated with the state).
    pub fn config(&self) -> &LockConfig {
        &self.config
    }

    /// Index of the last applied entry.
    pub fn last_applied(&self) -> LogIndex {
        self.last_applied
    }

    /// The highest fencing token ever granted.
    pub fn last_token(&self) -> Token {
        self.last_token
    }

    /// The highest kv version ever assigned.
    pub fn last_version(&self) -> HlcTimestamp {
        self.last_version
    }

    /// A lock's holder, waiters and lock-delay; `None` if nobody holds, waits for or delays it.
    pub fn lock_info(&self, name: &str) -> Option<&LockInfo> {
        self.locks.get(name)
    }

    /// The holder of a lock, if any.
    pub fn holder(&self, name: &str) -> Option<&Holder> {
        self.locks.get(name).and_then(|l| l.holder.as_ref())
    }

    /// Every lock record, by name.
    pub fn locks(&self) -> impl Iterator<Item = (&str, &LockInfo)> + '_ {
        self.locks.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// A kv value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.kv.get(key)
    }

    /// Every kv entry with a key starting with `prefix`, in key order.
    pub fn scan<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.kv
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Number of keys in the kv store.
    pub fn key_count(&self) -> usize {
        self.kv.len()
    }

    /// A session.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// The open session of a client, if any.
    pub fn session_of_client(&self, client: u64) -> Option<SessionId> {
        self.clients.get(&client).copied()
    }

    /// Every open session, by id.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> + '_ {
        self.sessions.values()
    }
}

/// The smallest HLC timestamp: versions start above it.
pub(crate) fn hlc_zero() -> HlcTimestamp {
    HlcTimestamp::ZERO
}

#[cfg(test)]
mod tests;
