//! The data Raft persists and exchanges: entries, hard state, snapshot metadata, membership.
//!
//! These types are shared with the storage crate (which persists them) and the lock crate (which
//! applies committed entries), so they are plain serde data with no behaviour of their own.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Identifies a member of the cluster. Zero is never a valid id.
pub type NodeId = u64;
/// A Raft term. Terms start at 1 once a node has campaigned; 0 means "never".
pub type Term = u64;
/// Position of an entry in the log. The first entry has index 1; 0 means "before the log".
pub type LogIndex = u64;

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: Term,
    /// Position in the log.
    pub index: LogIndex,
    /// What the entry carries.
    pub payload: Payload,
}

/// What an entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by every new leader at the start of its term, so it can commit entries of earlier
    /// terms (Raft §5.4.2) and serve ReadIndex requests (Raft thesis §6.4).
    Noop,
    /// An opaque command for the application's state machine.
    Command(Vec<u8>),
    /// A membership change: the new configuration takes effect as soon as the entry is appended
    /// (Raft thesis §4.1, single-server changes).
    Membership(Membership),
}

/// The state Raft must persist before it answers a vote or acknowledges entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub vote: Option<NodeId>,
    /// The highest index known to be committed. Persisting it is an optimisation (it lets a
    /// restarted node apply sooner); safety does not depend on it.
    pub commit: LogIndex,
}

/// The set of voting members.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// Members whose votes and acknowledgements count towards a majority.
    pub voters: BTreeSet<NodeId>,
}

impl Membership {
    /// A membership of the given voters.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership { voters: voters.into_iter().collect() }
    }

    /// The number of voters that make a majority.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// Whether `id` is a voter.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }
}

/// Describes the state a snapshot captures.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last index the snapshot includes.
    pub index: LogIndex,
    /// The term of the entry at `index`.
    pub term: Term,
    /// The membership in force at `index`.
    pub membership: Membership,
}

/// A snapshot: metadata and the application's serialized state machine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// The application's state, opaque to Raft.
    pub data: Vec<u8>,
}
