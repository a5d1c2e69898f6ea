//! The client protocol: what a client asks a node and what the node answers.
//!
//! One set of types for every transport: the simulator moves them as values, the HTTP API
//! sends them as JSON, the Rust client builds them with [`crate::ClientCore`]. So they are plain
//! serde data (externally tagged enums, no maps with non-string keys), and every field a client
//! controls is checked by [`ClientRequest::validate`] against a named limit before the node does
//! anything with it.
//!
//! Two ids, two jobs. `attempt` correlates one transmission with its reply: a client that
//! retries sends a new attempt and ignores answers to attempts it gave up on (or, for final
//! answers, takes whichever comes first). `id` ([`RequestId`]) identifies the *mutation* across
//! all its attempts, all nodes and all leaders: the state machine executes each id at most
//! once and answers repeats from the first execution, so a retry with the same id is always
//! safe. Reads have no id: they change nothing.
//!
//! The answers say exactly what the client may conclude:
//! - `Done` — the mutation was applied (exactly once) and this is the state machine's response;
//! - `NotLeader` / `Retry` — it was not applied by this attempt; retry (same id);
//! - `Unknown` — this node cannot tell whether it will be applied; retry with the **same** id to
//!   learn (never with a new one: that could apply it twice);
//! - `StillWaiting` — a blocking acquire or a wait for a grant ended its long poll without the
//!   grant; the session is still queued.

use std::time::Duration;

use palisade_lock::{
    Holder, KEY_BYTES_MAX, LOCK_NAME_BYTES_MAX, LockInfo, Op, RequestId, Response, SessionId, Value,
};
use palisade_raft::{LogIndex, NodeId};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::LONG_POLL_WAIT_MAX;
use crate::status::NodeStatus;

/// Identifies a client connection of a node (a socket, an HTTP request, a simulated process).
/// Chosen by the driver; the node only hands it back with the reply.
pub type ConnId = u64;

/// One transmission of a client request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// Correlation id of this transmission; echoed in the reply.
    pub attempt: u64,
    /// Deduplication id of the mutation, the same in every attempt; `None` for reads.
    pub id: Option<RequestId>,
    /// What to do.
    pub body: RequestBody,
    /// Long-poll bound: for a blocking acquire (`Acquire { wait: true }`) or a
    /// [`ReadOp::WaitGrant`], how long the node may hold the answer waiting for the grant.
    /// At most [`LONG_POLL_WAIT_MAX`].
    pub wait: Option<Duration>,
}

/// A mutation (through the log) or a read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestBody {
    /// A lock-service operation; the leader stamps the HLC of kv writes (the client's is
    /// ignored).
    Mutate(Op),
    /// A query.
    Read(ReadOp),
}

/// How fresh a read must be.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Consistency {
    /// Sees every write acknowledged before it started (Raft ReadIndex on the leader).
    Linearizable,
    /// Answered from the local state of whichever node receives it: possibly stale. Only when
    /// the client asks for it.
    Serializable,
}

/// A query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadOp {
    /// The value of a kv key.
    Get {
        /// The key.
        key: String,
        /// How fresh.
        consistency: Consistency,
    },
    /// A lock's holder, waiters and lock-delay.
    LockInfo {
        /// The lock.
        name: String,
        /// How fresh.
        consistency: Consistency,
    },
    /// Wait (up to `ClientRequest::wait`) until `session` is granted `lock`; linearizable.
    WaitGrant {
        /// The waiting session.
        session: SessionId,
        /// The lock.
        lock: String,
    },
    /// A session's state as the leader sees it; linearizable.
    SessionInfo {
        /// The session.
        session: SessionId,
    },
    /// The answering node's status (local, any node).
    Status,
}

/// A node's answer to one attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientReply {
    /// The request's `attempt`.
    pub attempt: u64,
    /// The answer.
    pub result: ReplyResult,
}

/// Why a request should simply be sent again (with the same id).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RetryReason {
    /// A queue of the node is full (proposals, parked waiters, reads) or Raft is overloaded.
    Overloaded,
    /// The leader has not committed an entry of its term yet; reads wait for that.
    LeaderNotReady,
    /// The proposal was overwritten by another leader's entry: it was not applied there.
    ProposalDropped,
    /// A leadership transfer is in progress; proposals wait until it ends.
    LeadershipTransfer,
    /// A newer attempt with the same request id arrived; it gets the answer.
    Superseded,
}

/// What a node answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReplyResult {
    /// The mutation was applied exactly once; the state machine's response (a refusal such as
    /// a stale fencing token is an `Err` inside).
    Done(Response),
    /// The answer to a read.
    Read(ReadReply),
    /// This node is not the leader; `leader` is the one it knows of, if any.
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// Not applied by this attempt; safe to retry with the same id.
    Retry {
        /// Why.
        reason: RetryReason,
    },
    /// This node cannot tell whether the mutation will be applied (it lost the leadership with
    /// the proposal pending). Retry with the SAME id to learn.
    Unknown,
    /// The long poll ended without the grant; the session is still queued at `position`.
    StillWaiting {
        /// 0-based position in the lock's queue.
        position: u32,
    },
    /// The request broke the protocol (missing id, a name past its limit, ...).
    Invalid(String),
}

/// A session as the leader sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The session.
    pub session: SessionId,
    /// Its client.
    pub client: u64,
    /// Its TTL.
    pub ttl: Duration,
    /// The entry that last renewed or checkpointed it.
    pub basis: LogIndex,
    /// Time left before the answering node's deadline for it (`None`: not timed there).
    pub expires_in: Option<Duration>,
    /// Locks it holds.
    pub held: Vec<String>,
    /// Locks it waits for.
    pub waiting: Vec<String>,
}

/// The answer to a read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ReadReply {
    /// A kv value (`None`: no such key) as of the applied index `index`.
    Value {
        /// The key.
        key: String,
        /// The value.
        value: Option<Value>,
        /// The applied index the read was served at.
        index: LogIndex,
    },
    /// A lock's state (`None`: nobody holds, waits for or delays it) as of `index`.
    Lock {
        /// The lock.
        name: String,
        /// Its state.
        info: Option<LockInfo>,
        /// The applied index the read was served at.
        index: LogIndex,
    },
    /// The session holds the lock (a [`ReadOp::WaitGrant`] that succeeded).
    Granted {
        /// The lock.
        lock: String,
        /// The grant, with its fencing token.
        holder: Holder,
    },
    /// The session neither holds nor waits for the lock (it never queued, released, or its
    /// session ended).
    NotWaiting {
        /// The lock.
        lock: String,
        /// The session.
        session: SessionId,
    },
    /// A session (`None`: it does not exist).
    Session {
        /// The session asked about.
        session: SessionId,
        /// Its state.
        info: Option<SessionView>,
    },
    /// The answering node's status.
    Status(Box<NodeStatus>),
}

/// Why a request is invalid ([`ReplyResult::Invalid`] carries the message).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum InvalidRequest {
    /// A mutation without a request id.
    #[error("a mutation needs a request id")]
    MissingId,
    /// A read with a request id (reads are not deduplicated).
    #[error("a read takes no request id")]
    IdOnRead,
    /// Client id 0 is reserved.
    #[error("client id 0 is reserved")]
    ZeroClient,
    /// `wait` on a request that cannot long-poll.
    #[error("wait is only allowed on a blocking acquire or a wait for a grant")]
    WaitNotAllowed,
    /// `wait` above [`LONG_POLL_WAIT_MAX`].
    #[error("wait {wait:?} is above the maximum {max:?}")]
    WaitTooLong {
        /// The requested wait.
        wait: Duration,
        /// [`LONG_POLL_WAIT_MAX`].
        max: Duration,
    },
    /// An empty key or lock name in a read.
    #[error("empty {what}")]
    EmptyName {
        /// "key" or "lock name".
        what: &'static str,
    },
    /// A key or lock name in a read past its limit.
    #[error("{what} of {bytes} bytes is above the maximum {max}")]
    NameTooLong {
        /// "key" or "lock name".
        what: &'static str,
        /// Its length.
        bytes: usize,
        /// The limit.
        max: usize,
    },
}

fn check_name(what: &'static str, name: &str, max: usize) -> Result<(), InvalidRequest> {
    if name.is_empty() {
        return Err(InvalidRequest::EmptyName { what });
    }
    if name.len() > max {
        return Err(InvalidRequest::NameTooLong { what, bytes: name.len(), max });
    }
    Ok(())
}

impl ClientRequest {
    /// Checks the protocol rules and the limits of reads. The operation of a mutation is
    /// checked by the node against the lock service's configuration (its refusals are
    /// [`ReplyResult::Done`] values, like the state machine's).
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        match (&self.body, self.id) {
            (RequestBody::Mutate(_), None) => return Err(InvalidRequest::MissingId),
            (RequestBody::Mutate(_), Some(id)) if id.client == 0 => {
                return Err(InvalidRequest::ZeroClient);
            }
            (RequestBody::Read(_), Some(_)) => return Err(InvalidRequest::IdOnRead),
            _ => {}
        }
        if let Some(wait) = self.wait {
            if !self.may_wait() {
                return Err(InvalidRequest::WaitNotAllowed);
            }
            if wait > LONG_POLL_WAIT_MAX {
                return Err(InvalidRequest::WaitTooLong { wait, max: LONG_POLL_WAIT_MAX });
            }
        }
        match &self.body {
            RequestBody::Mutate(_) => Ok(()),
            RequestBody::Read(read) => read.validate(),
        }
    }

    /// Whether the request may carry a `wait`.
    fn may_wait(&self) -> bool {
        matches!(
            self.body,
            RequestBody::Mutate(Op::Acquire { wait: true, .. })
                | RequestBody::Read(ReadOp::WaitGrant { .. })
        )
    }
}

impl ReadOp {
    /// Checks names against their limits.
    pub fn validate(&self) -> Result<(), InvalidRequest> {
        match self {
            ReadOp::Get { key, .. } => check_name("key", key, KEY_BYTES_MAX),
            ReadOp::LockInfo { name, .. } | ReadOp::WaitGrant { lock: name, .. } => {
                check_name("lock name", name, LOCK_NAME_BYTES_MAX)
            }
            ReadOp::SessionInfo { .. } | ReadOp::Status => Ok(()),
        }
    }

    /// Whether the node answers it from its local state without ReadIndex.
    pub fn is_local(&self) -> bool {
        match self {
            ReadOp::Get { consistency, .. } | ReadOp::LockInfo { consistency, .. } => {
                *consistency == Consistency::Serializable
            }
            ReadOp::Status => true,
            ReadOp::WaitGrant { .. } | ReadOp::SessionInfo { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests;
