//! [`NodeStatus`]: one node's state for the status page, metrics, `ReadOp::Status` and tests.
//!
//! Everything an operator asks about a lock service in trouble, in one value: who leads and
//! how far each peer is (Raft's status), which sessions exist and how long each has left *on
//! this node's clock*, who holds and who waits for each lock, how far each peer's clock is off,
//! and the node's own queues. Lists are capped at [`STATUS_ITEMS_MAX`] (the counts are exact).

use std::time::Duration;

use palisade_clock::OffsetEstimate;
use palisade_lock::{Holder, SessionId, Token};
use palisade_raft::{LogIndex, NodeId};
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::config::STATUS_ITEMS_MAX;

/// One session as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionStatus {
    /// The session.
    pub session: SessionId,
    /// Its client.
    pub client: u64,
    /// Its TTL.
    pub ttl: Duration,
    /// Time left before this node's deadline for it (`None`: not timed here).
    pub expires_in: Option<Duration>,
    /// Locks it holds.
    pub held: Vec<String>,
    /// Locks it waits for.
    pub waiting: Vec<String>,
}

/// One lock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockStatus {
    /// The lock.
    pub name: String,
    /// The current grant (session, token, since which index).
    pub holder: Option<Holder>,
    /// Waiting sessions, first in line first.
    pub waiters: Vec<SessionId>,
    /// The expiry whose lock-delay runs, if any.
    pub delayed_since: Option<LogIndex>,
    /// Time left of that lock-delay on this node's clock.
    pub delay_ends_in: Option<Duration>,
}

/// A peer's clock offset as this node measured it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerClock {
    /// The peer.
    pub peer: NodeId,
    /// Its offset (remote minus local), if measured.
    pub offset: Option<OffsetEstimate>,
}

/// Counters of the write-ahead log since the node opened it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalCounters {
    /// Records appended.
    pub records_written: u64,
    /// Bytes appended.
    pub bytes_written: u64,
    /// File fsyncs.
    pub syncs: u64,
    /// Segment files.
    pub segments: usize,
}

/// The state of one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Raft's view: role, term, leader, indices, peers' progress and health.
    pub raft: palisade_raft::Status,
    /// The last log index applied to the state machine.
    pub applied_index: LogIndex,
    /// Leader only: it applied an entry of its term (it expires sessions, serves reads).
    pub leader_ready: bool,
    /// Open sessions (exact count).
    pub session_count: usize,
    /// The first [`STATUS_ITEMS_MAX`] sessions, by id.
    pub sessions: Vec<SessionStatus>,
    /// Lock records (exact count).
    pub lock_count: usize,
    /// The first [`STATUS_ITEMS_MAX`] locks, by name.
    pub locks: Vec<LockStatus>,
    /// Keys in the kv store.
    pub kv_keys: usize,
    /// The highest fencing token granted.
    pub last_token: Token,
    /// Peers' clock offsets.
    pub clock_offsets: Vec<PeerClock>,
    /// Client mutations proposed and not applied yet.
    pub proposals_pending: usize,
    /// Clients parked on a long poll.
    pub parked_waiters: usize,
    /// Linearizable reads in progress.
    pub reads_pending: usize,
    /// Observations dropped because the driver did not read them.
    pub events_dropped: u64,
    /// Pauses of its own process this node detected while leading.
    pub pauses_detected: u64,
    /// Write-ahead log counters.
    pub wal: WalCounters,
    /// Why the node stopped, if it did.
    pub stopped: Option<String>,
}
