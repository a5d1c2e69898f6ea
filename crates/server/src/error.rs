//! [`ServerError`]: why a node did not start, or stopped.
//!
//! A server error ends the process, so its one line is the whole user interface of the
//! problem: it names the file, the address or the field at fault, and says what the node did
//! (refused to start, changed nothing). The configuration has its own enum
//! ([`ConfigError`]), the peer transport too ([`TransportError`]); this one wraps them with
//! the node's own failures: a data directory the core refuses to open, an address taken, a
//! disk that failed at run time.

use std::net::SocketAddr;
use std::path::PathBuf;

use palisade_node::NodeError;
use palisade_node::storage::WalError;

use crate::config::ConfigError;
use crate::transport::TransportError;

/// Why a node did not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration, or the data directory's identity, was refused.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The data directory holds a WAL segment that is corrupt where synced data must be.
    #[error(
        "corrupt WAL: {} at byte offset {offset}: {reason}; the node refuses to start and \
         changed nothing on disk",
        path.display()
    )]
    CorruptWal {
        /// The segment file.
        path: PathBuf,
        /// Offset of the bad record.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The core refused to open the data directory (any other reason).
    #[error("cannot open the data directory {}: {source}", data_dir.display())]
    Open {
        /// The data directory.
        data_dir: PathBuf,
        /// The core's reason.
        source: NodeError,
    },
    /// A listen address could not be bound.
    #[error("{field}: cannot listen on {addr}: {source}")]
    Bind {
        /// The configuration field naming the address (`http_listen`, `peer_listen`).
        field: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The peer transport failed to start.
    #[error("peer transport: {0}")]
    Transport(#[from] TransportError),
    /// The node stopped at run time after a storage failure; restart it to recover from what
    /// is durable.
    #[error("the node stopped: {0}")]
    Stopped(String),
    /// The runtime or a thread could not be started, or an I/O error outside the core.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ServerError {
    /// The error of opening the core on `data_dir`; a corrupt WAL segment is named by path.
    pub fn open(data_dir: PathBuf, source: NodeError) -> ServerError {
        match source {
            NodeError::Storage(WalError::Corrupt { segment, offset, reason }) => {
                ServerError::CorruptWal { path: data_dir.join(segment), offset, reason }
            }
            source => ServerError::Open { data_dir, source },
        }
    }
}
