//! The errors of this crate.
//!
//! Three enums for three callers. [`NodeError`] is for the operator starting a node: a
//! configuration that cannot work, a data directory of another node, a WAL or snapshot that is
//! corrupt. The node refuses to start rather than guess which durable data it may throw away.
//! [`AdminError`] answers an operator's request to a running node (drain, membership change).
//! [`ClientConfigError`] refuses a client configuration. Everything a *client request* can run
//! into — not the leader, overloaded, a stale token — is a protocol value in
//! [`crate::ReplyResult`], never an error of this crate.

use palisade_lock::LockError;
use palisade_raft::{NodeId, ProposeError, RaftError};
use palisade_storage::WalError;
use thiserror::Error;

/// Why a node refuses to start.
#[derive(Debug, Error)]
pub enum NodeError {
    /// A field of [`crate::NodeConfig`] is out of range.
    #[error("invalid node configuration: {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Raft refuses its configuration or the recovered state.
    #[error("raft refuses to start: {0}")]
    Raft(#[from] RaftError),
    /// The lock configuration is invalid, or does not fit Raft's election timing.
    #[error("lock service configuration: {0}")]
    Lock(#[from] LockError),
    /// The data directory cannot be used: corrupt WAL or snapshot file, another node's
    /// directory, a disk error. The node refuses to start; nothing was changed on disk.
    #[error("storage refuses to start: {0}")]
    Storage(#[from] WalError),
    /// The snapshot file passed its checksum but its state machine does not restore.
    #[error("the snapshot at index {index} does not restore: {source}")]
    Snapshot {
        /// The snapshot's index.
        index: u64,
        /// What the state machine said.
        source: LockError,
    },
}

/// Why an administrative request to a running node was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AdminError {
    /// Drain and membership changes are leader-only.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// There is no other voter to hand leadership to.
    #[error("no other voter to transfer leadership to")]
    NoPeer,
    /// The node stopped after a storage failure and accepts nothing.
    #[error("the node stopped: {0}")]
    Stopped(String),
    /// Raft refused the request.
    #[error("{0}")]
    Refused(#[from] ProposeError),
}

/// Why a [`crate::ClientConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid client configuration: {field}: {reason}")]
pub struct ClientConfigError {
    /// The offending field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}
