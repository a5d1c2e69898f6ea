//! [`NodeEvent`]: what a node observed, for logs, metrics and the simulator's checkers.
//!
//! Why a separate stream from the outputs: outputs (messages, replies) are the protocol and
//! must never be dropped; observations are for people and checkers ("entry 34 applied: grant
//! of L to s7 with token 34", "I detected a 3 s pause of my own process"). They come out of a
//! bounded queue ([`crate::config::EVENTS_QUEUED_MAX`]): a driver that does not read them loses
//! the oldest, counted in the status, and the node is unaffected.

use std::time::Duration;

use palisade_lock::{Command, LeaderOp, Op, ReleaseCause, RequestId, Response, SessionId, Token};
use palisade_raft::{LogIndex, NodeId, Term};
use serde::Serialize;

/// A short, bounded description of an applied log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CommandSummary {
    /// A leader's no-op.
    Noop,
    /// A membership change.
    Membership {
        /// The new voters.
        voters: Vec<NodeId>,
    },
    /// A client request and the state machine's response to it.
    Client {
        /// The request id.
        id: RequestId,
        /// The operation's name (`"Put"`, `"Acquire"`, ...).
        op: &'static str,
        /// The session, lock or key it names, if any.
        target: Option<String>,
        /// The response (a repeat gets the first execution's response).
        response: Response,
    },
    /// The leader expired a session (a no-op if `basis` is no longer the session's basis).
    ExpireSession {
        /// The session.
        session: SessionId,
        /// The basis whose deadline passed.
        basis: LogIndex,
    },
    /// The leader checkpointed remaining TTLs.
    Checkpoint {
        /// Number of sessions in the entry.
        sessions: usize,
    },
    /// The leader ended a lock-delay.
    LockDelayOver {
        /// The lock.
        lock: String,
        /// The expiry that started it.
        since: LogIndex,
    },
}

impl CommandSummary {
    /// The summary of an applied command; `response` is the state machine's answer to a
    /// client request.
    pub fn of_command(cmd: &Command, response: Option<&Response>) -> CommandSummary {
        match cmd {
            Command::Client(req) => CommandSummary::Client {
                id: req.id,
                op: op_name(&req.op),
                target: op_target(&req.op),
                response: response.cloned().expect("a client request has a response"),
            },
            Command::Leader(LeaderOp::ExpireSession { session, basis }) => {
                CommandSummary::ExpireSession { session: *session, basis: *basis }
            }
            Command::Leader(LeaderOp::Checkpoint(lines)) => {
                CommandSummary::Checkpoint { sessions: lines.len() }
            }
            Command::Leader(LeaderOp::LockDelayOver { lock, since }) => {
                CommandSummary::LockDelayOver { lock: lock.clone(), since: *since }
            }
        }
    }

    /// [`CommandSummary::of_command`] on an applied command the caller no longer needs: its
    /// names move into the summary instead of being copied.
    pub(crate) fn of_applied(cmd: Command, response: Option<Response>) -> CommandSummary {
        match cmd {
            Command::Client(req) => CommandSummary::Client {
                id: req.id,
                op: op_name(&req.op),
                target: into_target(req.op),
                response: response.expect("a client request has a response"),
            },
            Command::Leader(LeaderOp::ExpireSession { session, basis }) => {
                CommandSummary::ExpireSession { session, basis }
            }
            Command::Leader(LeaderOp::Checkpoint(lines)) => {
                CommandSummary::Checkpoint { sessions: lines.len() }
            }
            Command::Leader(LeaderOp::LockDelayOver { lock, since }) => {
                CommandSummary::LockDelayOver { lock, since }
            }
        }
    }
}

/// The name of an operation.
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::OpenSession { .. } => "OpenSession",
        Op::KeepAlive { .. } => "KeepAlive",
        Op::CloseSession { .. } => "CloseSession",
        Op::Acquire { .. } => "Acquire",
        Op::Release { .. } => "Release",
        Op::Put { .. } => "Put",
        Op::Cas { .. } => "Cas",
        Op::Delete { .. } => "Delete",
    }
}

fn op_target(op: &Op) -> Option<String> {
    match op {
        Op::OpenSession { .. } => None,
        Op::KeepAlive { session } | Op::CloseSession { session } => Some(session.to_string()),
        Op::Acquire { lock, .. } | Op::Release { lock, .. } => Some(lock.clone()),
        Op::Put { key, .. } | Op::Cas { key, .. } | Op::Delete { key, .. } => Some(key.clone()),
    }
}

/// [`op_target`] of an operation given up: its name moves out.
fn into_target(op: Op) -> Option<String> {
    match op {
        Op::OpenSession { .. } => None,
        Op::KeepAlive { session } | Op::CloseSession { session } => Some(session.to_string()),
        Op::Acquire { lock, .. } | Op::Release { lock, .. } => Some(lock),
        Op::Put { key, .. } | Op::Cas { key, .. } | Op::Delete { key, .. } => Some(key),
    }
}

/// Something a node observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum NodeEvent {
    /// The node opened its data directory.
    Recovered {
        /// Index of the snapshot it restored (0: none).
        snapshot_index: LogIndex,
        /// Last index in its log.
        last_index: LogIndex,
        /// Bytes of a torn WAL tail cut off (0 after a clean stop).
        torn_tail_bytes: u64,
    },
    /// This node became leader.
    BecameLeader {
        /// Its term.
        term: Term,
    },
    /// This leader applied an entry of its own term: it now expires sessions and serves reads.
    LeaderReady {
        /// Its term.
        term: Term,
    },
    /// This node stopped leading.
    SteppedDown {
        /// The term it led.
        term: Term,
        /// The new term.
        now_term: Term,
        /// The leader it knows of, if any.
        leader: Option<NodeId>,
    },
    /// An entry was applied.
    Applied {
        /// Its index.
        index: LogIndex,
        /// Its term.
        term: Term,
        /// What it was.
        command: CommandSummary,
    },
    /// A lock was granted (by an acquire, or handed to a waiter).
    Granted {
        /// The lock.
        lock: String,
        /// The new holder.
        session: SessionId,
        /// Its fencing token.
        token: Token,
        /// The granting entry.
        index: LogIndex,
    },
    /// A grant ended.
    Released {
        /// The lock.
        lock: String,
        /// The former holder.
        session: SessionId,
        /// The ended grant's token.
        token: Token,
        /// Why.
        cause: ReleaseCause,
        /// The entry that ended it.
        index: LogIndex,
    },
    /// A session was opened.
    SessionOpened {
        /// The session.
        session: SessionId,
        /// Its client.
        client: u64,
        /// Its TTL.
        ttl: Duration,
    },
    /// This leader proposed an `ExpireSession` entry (it may still be lost; `SessionExpired`
    /// follows if it is applied). Lets a checker bound when the expiry took effect: between
    /// this and its first apply.
    ExpiryProposed {
        /// The session.
        session: SessionId,
        /// The entry's index.
        index: LogIndex,
        /// The entry's term.
        term: Term,
    },
    /// A session was expired by an applied `ExpireSession` entry.
    SessionExpired {
        /// The session.
        session: SessionId,
        /// The expiring entry.
        index: LogIndex,
    },
    /// **Testing fault `ExpireWithoutLog` only**: this leader expired a session in its own
    /// state, without a log entry.
    UnloggedExpiry {
        /// The session.
        session: SessionId,
    },
    /// A session was closed by its client.
    SessionClosed {
        /// The session.
        session: SessionId,
        /// The closing entry.
        index: LogIndex,
    },
    /// A batch was made durable.
    Persisted {
        /// Entries written.
        entries: usize,
        /// File fsyncs it took (group commit: at most one for the log itself).
        fsyncs: u64,
    },
    /// The node snapshotted its state machine and compacted its log.
    SnapshotTaken {
        /// The snapshot's index.
        index: LogIndex,
        /// Bytes of state-machine data.
        bytes: usize,
    },
    /// The node installed a snapshot received from the leader.
    SnapshotInstalled {
        /// The snapshot's index.
        index: LogIndex,
    },
    /// The leader noticed a gap between two of its inputs longer than the pause threshold: its
    /// process was stopped; session deadlines were pushed back by the gap.
    PauseDetected {
        /// The gap.
        gap: Duration,
    },
    /// The node stopped for good (a storage failure): it accepts no input any more.
    Stopped {
        /// Why.
        reason: String,
    },
}
