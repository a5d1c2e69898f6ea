//! What goes into the log: client requests and the leader's own timing decisions.
//!
//! Why every decision is a command: the state machine is applied on every replica from the
//! committed log, and must reach the same state on each, so nothing in it may depend on a clock,
//! on which node is leader, or on the order messages happened to arrive. Everything that *does*
//! depend on time — a session expired, the lock-delay is over, here is how much TTL is left —
//! is decided by the leader, written down as a [`LeaderOp`], and only takes effect once it is
//! committed. A leader that is deposed, partitioned away or paused cannot commit anything, so
//! it cannot expire a session or release a lock (chapter: "the truth is defined by the
//! majority").
//!
//! Client requests carry a [`RequestId`] `(client, seq)` so a retried request is recognised and
//! answered from the first execution instead of running twice (see `state`, "dedup").
//!
//! Encoding is postcard behind a one-byte format version. Decoding untrusted bytes never
//! panics: it returns [`LockError::Decode`], and a decoded command is then checked against
//! the limits by [`Command::validate`] — by the leader before proposing, and again by the state
//! machine when applying.

use std::time::Duration;

use palisade_clock::HlcTimestamp;
use palisade_raft::LogIndex;
use serde::{Deserialize, Serialize};

use crate::codec::to_versioned_vec;
use crate::error::LockError;
use crate::limits::{
    CHECKPOINT_SESSIONS_MAX, COMMAND_BYTES_MAX, KEY_BYTES_MAX, LOCK_NAME_BYTES_MAX, Limit,
    LimitExceeded, LockConfig, VALUE_BYTES_MAX, as_u64,
};
use crate::response::{NameKind, Refused};

/// Format version byte in front of every encoded [`Command`].
pub const COMMAND_FORMAT_VERSION: u8 = 1;

/// The buffer an encoding starts with: most commands fit (a larger one grows it).
const COMMAND_BYTES_TYPICAL: usize = 64;

/// A session: the log index of the `OpenSession` entry that created it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub LogIndex);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// A fencing token: strictly increasing across all locks, all leaders, all time. Equal to the
/// log index of the entry that granted it, unless that entry granted several locks.
pub type Token = u64;

/// A fence presented with a kv write: "I hold `lock` with `token`".
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fence {
    /// The lock's name.
    pub lock: String,
    /// The token of the grant the writer believes it holds.
    pub token: Token,
}

/// Identifies a client request for deduplication: the client's random id and its sequence
/// number, which the client increases for every new request and keeps for retries.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestId {
    /// Random per client process.
    pub client: u64,
    /// Increases with every new request of that client; a retry reuses it.
    pub seq: u64,
}

/// What a compare-and-swap expects to find.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Expect {
    /// The key must not exist.
    Absent,
    /// The key must exist with exactly this version.
    Version(HlcTimestamp),
    /// The key must exist with exactly this value.
    Value(Vec<u8>),
}

/// A client operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Open the client's session with a TTL within the cluster's range.
    OpenSession {
        /// Requested TTL.
        ttl: Duration,
    },
    /// Renew the session: it lives another TTL from this entry.
    KeepAlive {
        /// The client's session.
        session: SessionId,
    },
    /// Close the session: its locks are released at once (no lock-delay).
    CloseSession {
        /// The client's session.
        session: SessionId,
    },
    /// Acquire a lock: granted if free; else queued (`wait`) or refused with the holder.
    Acquire {
        /// The client's session.
        session: SessionId,
        /// Lock name.
        lock: String,
        /// Queue FIFO behind the holder instead of failing.
        wait: bool,
    },
    /// Release a held lock (handing it to the next waiter), or leave its wait queue.
    Release {
        /// The client's session.
        session: SessionId,
        /// Lock name.
        lock: String,
    },
    /// Write a value.
    Put {
        /// Key.
        key: String,
        /// New value.
        value: Vec<u8>,
        /// Fence the write must pass, if any.
        fence: Option<Fence>,
        /// HLC reading of the leader that proposed it (stamped by the leader).
        hlc: HlcTimestamp,
    },
    /// Write a value if the current one matches `expected`.
    Cas {
        /// Key.
        key: String,
        /// What must be there now.
        expected: Expect,
        /// New value.
        value: Vec<u8>,
        /// Fence the write must pass, if any.
        fence: Option<Fence>,
        /// HLC reading of the leader that proposed it.
        hlc: HlcTimestamp,
    },
    /// Delete a key.
    Delete {
        /// Key.
        key: String,
        /// Fence the delete must pass, if any.
        fence: Option<Fence>,
        /// HLC reading of the leader that proposed it.
        hlc: HlcTimestamp,
    },
}

/// A client request: an id for deduplication and an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// `(client, seq)`.
    pub id: RequestId,
    /// What to do.
    pub op: Op,
}

/// One session's line in a [`LeaderOp::Checkpoint`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointEntry {
    /// The session.
    pub session: SessionId,
    /// The basis the leader's deadline was computed from; the line is ignored if the session
    /// has been renewed (or checkpointed) since.
    pub basis: LogIndex,
    /// Upper bound on the real time anybody may still consider the session alive, counted from
    /// the moment the leader created this entry.
    pub remaining: Duration,
}

/// A decision of the leader's session tracker, proposed to the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeaderOp {
    /// The session's deadline passed on the leader; a no-op if its basis changed meanwhile.
    ExpireSession {
        /// The session.
        session: SessionId,
        /// The basis whose deadline passed.
        basis: LogIndex,
    },
    /// Remaining TTLs, so a new leader does not restart timers from the full TTL.
    Checkpoint(Vec<CheckpointEntry>),
    /// The lock-delay that started at `since` is over: grant the lock to the next waiter.
    LockDelayOver {
        /// Lock name.
        lock: String,
        /// Index of the expiry that started the delay; a no-op if it does not match.
        since: LogIndex,
    },
}

/// One log command of the lock service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A client request.
    Client(Request),
    /// A leader decision.
    Leader(LeaderOp),
}

fn check_name(kind: NameKind, name: &str) -> Result<(), Refused> {
    if name.is_empty() {
        return Err(Refused::EmptyName { kind });
    }
    let (limit, max) = match kind {
        NameKind::Lock => (Limit::LockNameBytes, LOCK_NAME_BYTES_MAX),
        NameKind::Key => (Limit::KeyBytes, KEY_BYTES_MAX),
    };
    LimitExceeded::check_max(limit, name.len(), max).map_err(Refused::Limit)
}

fn check_value(value: &[u8]) -> Result<(), Refused> {
    LimitExceeded::check_max(Limit::ValueBytes, value.len(), VALUE_BYTES_MAX)
        .map_err(Refused::Limit)
}

fn check_fence(fence: &Option<Fence>) -> Result<(), Refused> {
    match fence {
        Some(f) => check_name(NameKind::Lock, &f.lock),
        None => Ok(()),
    }
}

fn check_ttl(ttl: Duration, config: &LockConfig) -> Result<(), Refused> {
    let nanos = |d: Duration| palisade_clock::duration_nanos(d);
    if ttl < config.ttl_min {
        let e = LimitExceeded::new(Limit::TtlMin, nanos(ttl), nanos(config.ttl_min));
        return Err(Refused::Limit(e));
    }
    if ttl > config.ttl_max {
        let e = LimitExceeded::new(Limit::TtlMax, nanos(ttl), nanos(config.ttl_max));
        return Err(Refused::Limit(e));
    }
    Ok(())
}

impl Op {
    /// The session an op names, if it names one.
    pub fn session(&self) -> Option<SessionId> {
        match self {
            Op::KeepAlive { session }
            | Op::CloseSession { session }
            | Op::Acquire { session, .. }
            | Op::Release { session, .. } => Some(*session),
            _ => None,
        }
    }

    /// The HLC field of a kv write, if it is one.
    pub fn hlc_mut(&mut self) -> Option<&mut HlcTimestamp> {
        match self {
            Op::Put { hlc, .. } | Op::Cas { hlc, .. } | Op::Delete { hlc, .. } => Some(hlc),
            _ => None,
        }
    }
}

impl Request {
    /// Checks the request against every static limit (sizes, TTL range). The leader calls it
    /// before proposing; the state machine calls it again when applying.
    pub fn validate(&self, config: &LockConfig) -> Result<(), Refused> {
        match &self.op {
            Op::OpenSession { ttl } => check_ttl(*ttl, config),
            Op::KeepAlive { .. } | Op::CloseSession { .. } => Ok(()),
            Op::Acquire { lock, .. } | Op::Release { lock, .. } => check_name(NameKind::Lock, lock),
            Op::Put { key, value, fence, .. } => {
                check_name(NameKind::Key, key)?;
                check_value(value)?;
                check_fence(fence)
            }
            Op::Cas { key, expected, value, fence, .. } => {
                check_name(NameKind::Key, key)?;
                if let Expect::Value(v) = expected {
                    check_value(v)?;
                }
                check_value(value)?;
                check_fence(fence)
            }
            Op::Delete { key, fence, .. } => {
                check_name(NameKind::Key, key)?;
                check_fence(fence)
            }
        }
    }

    /// Sets the HLC of a kv write: the leader stamps its own HLC reading when it proposes.
    pub fn stamp_hlc(&mut self, hlc: HlcTimestamp) {
        if let Some(h) = self.op.hlc_mut() {
            *h = hlc;
        }
    }
}

impl LeaderOp {
    /// Checks the op against the limits (checkpoint length, names, remaining ≤ `ttl_max`).
    pub fn validate(&self, config: &LockConfig) -> Result<(), Refused> {
        match self {
            LeaderOp::ExpireSession { .. } => Ok(()),
            LeaderOp::Checkpoint(entries) => {
                let n = entries.len();
                LimitExceeded::check_max(Limit::CheckpointSessions, n, CHECKPOINT_SESSIONS_MAX)
                    .map_err(Refused::Limit)?;
                for e in entries {
                    if e.remaining > config.ttl_max {
                        let nanos = palisade_clock::duration_nanos;
                        let limit = Limit::TtlMax;
                        let e =
                            LimitExceeded::new(limit, nanos(e.remaining), nanos(config.ttl_max));
                        return Err(Refused::Limit(e));
                    }
                }
                Ok(())
            }
            LeaderOp::LockDelayOver { lock, .. } => check_name(NameKind::Lock, lock),
        }
    }
}

impl Command {
    /// Validates the command against the limits (see [`Request::validate`]).
    pub fn validate(&self, config: &LockConfig) -> Result<(), Refused> {
        match self {
            Command::Client(r) => r.validate(config),
            Command::Leader(op) => op.validate(config),
        }
    }

    /// Encodes the command: [`COMMAND_FORMAT_VERSION`] then postcard.
    pub fn encode(&self) -> Result<Vec<u8>, LockError> {
        let out = to_versioned_vec(COMMAND_FORMAT_VERSION, self, COMMAND_BYTES_TYPICAL)
            .map_err(|e| LockError::Encode { what: "command", reason: e.to_string() })?;
        if out.len() > COMMAND_BYTES_MAX {
            return Err(LockError::TooLarge {
                what: "command",
                bytes: out.len(),
                max: COMMAND_BYTES_MAX,
            });
        }
        Ok(out)
    }

    /// Decodes untrusted bytes. Never panics; rejects an unknown version, trailing bytes and
    /// anything larger than [`COMMAND_BYTES_MAX`].
    pub fn decode(bytes: &[u8]) -> Result<Command, LockError> {
        if bytes.len() > COMMAND_BYTES_MAX {
            return Err(LockError::TooLarge {
                what: "command",
                bytes: bytes.len(),
                max: COMMAND_BYTES_MAX,
            });
        }
        let (&version, body) =
            bytes.split_first().ok_or_else(|| LockError::Decode("empty input".into()))?;
        if version != COMMAND_FORMAT_VERSION {
            return Err(LockError::Decode(format!("unknown format version {version}")));
        }
        let (cmd, rest) = postcard::take_from_bytes::<Command>(body)
            .map_err(|e| LockError::Decode(e.to_string()))?;
        if !rest.is_empty() {
            let n = as_u64(rest.len());
            return Err(LockError::Decode(format!("{n} trailing bytes")));
        }
        Ok(cmd)
    }
}
