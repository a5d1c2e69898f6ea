//! The error of loading and checking a configuration.
//!
//! A configuration error stops the node before it does anything, so its message is the whole
//! user interface of the problem: every variant names the field (as written in the TOML file
//! and in the matching flag) and, where there is one, the offending text.

use std::io;
use std::path::PathBuf;

use palisade_lock::LockError;
use palisade_raft::{NodeId, RaftError};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file is not TOML, or has a key of the wrong type or an unknown key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The TOML parser's message (it names the key and the line).
        message: String,
    },
    /// A required field was given neither in the file nor by a flag.
    #[error("{field}: required, but set neither in the file nor by a flag")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A duration is not a humantime string such as "150ms" or "10s".
    #[error(
        "{field}: cannot read {text:?} as a duration ({reason}); write e.g. \"150ms\", \"10s\""
    )]
    BadDuration {
        /// The field.
        field: String,
        /// The text found.
        text: String,
        /// The parser's reason.
        reason: String,
    },
    /// A duration that must be positive is zero.
    #[error("{field}: must be greater than zero")]
    ZeroDuration {
        /// The field.
        field: String,
    },
    /// An address is not `host:port`.
    #[error("{field}: {text:?} is not a host:port address: {reason}")]
    BadAddress {
        /// The field.
        field: String,
        /// The text found.
        text: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An address could not be resolved to a socket address.
    #[error("{field}: cannot resolve {text}: {reason}")]
    Resolve {
        /// The field.
        field: String,
        /// The address.
        text: String,
        /// The resolver's error.
        reason: String,
    },
    /// `node_id` is not one of the peers: the node does not know its own addresses.
    #[error("node_id: node {node_id} is not in peers (the configured ids are {peers:?})")]
    UnknownSelf {
        /// This node's id.
        node_id: NodeId,
        /// The ids in `peers`.
        peers: Vec<NodeId>,
    },
    /// Two entries of `peers` have the same id.
    #[error("peers: node id {id} appears more than once")]
    DuplicateNodeId {
        /// The repeated id.
        id: NodeId,
    },
    /// Two addresses of the configuration are the same.
    #[error("{second}: address {address} is already used by {first}")]
    DuplicateAddress {
        /// The address.
        address: String,
        /// The field that names it first.
        first: String,
        /// The field that names it again.
        second: String,
    },
    /// A field is out of its range or inconsistent with another field.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field.
        field: String,
        /// Why it is refused.
        reason: String,
    },
    /// The data directory cannot be created or written.
    #[error("data_dir: {} is not writable: {reason}", path.display())]
    DataDirNotWritable {
        /// The directory.
        path: PathBuf,
        /// The operating system's error.
        reason: String,
    },
    /// The data directory belongs to another cluster or node.
    #[error(
        "data_dir: {} belongs to node {found_node} of cluster {found_cluster:#x}, but this is \
         node {node_id} of cluster {cluster_id:#x}; refusing to run on another node's data",
        path.display()
    )]
    DataDirMismatch {
        /// The directory.
        path: PathBuf,
        /// This node's cluster id.
        cluster_id: u64,
        /// This node's id.
        node_id: NodeId,
        /// The cluster id recorded in the directory.
        found_cluster: u64,
        /// The node id recorded in the directory.
        found_node: NodeId,
    },
    /// The data directory's `meta` file could not be read or written.
    #[error("data_dir: cannot check {}: {reason}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The storage error.
        reason: String,
    },
    /// The Raft core refused the derived configuration (its message names the field).
    #[error("raft {0}")]
    Raft(#[from] RaftError),
    /// The lock service refused the derived configuration (its message names the field).
    #[error("{0}")]
    Lock(#[from] LockError),
}

impl ConfigError {
    /// An [`ConfigError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid { field: field.into(), reason: reason.into() }
    }
}
