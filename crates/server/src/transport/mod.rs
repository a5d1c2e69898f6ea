//! The peer transport: palisade-wire frames over TCP between the nodes of a cluster.
//!
//! Why it looks like this. The Raft core tolerates lost, duplicated and reordered messages,
//! so the transport promises little and keeps that promise under any load: a message handed
//! to [`PeerTransport::send`] is delivered at most once, in order per connection, or dropped.
//! In exchange it never blocks the node loop and never grows without bound:
//!
//! - each peer has one outbound connection, dialed by this node, and a bounded queue of
//!   messages waiting for it; when the queue is full the **oldest** message is dropped (a newer
//!   heartbeat or AppendEntries supersedes an older one, and Raft retransmits what matters),
//!   and counted in [`TransportStats::frames_dropped`];
//! - a lost connection is redialed with exponential backoff, capped, with jitter (so that a
//!   restarted cluster does not reconnect in lockstep); messages wait in the queue meanwhile;
//! - messages from a peer arrive on the connection *it* dialed, are decoded and passed to one
//!   bounded channel ([`Inbound`]); when the node loop falls behind, the channel fills and TCP
//!   flow control pushes back on the peers rather than memory growing here. A newer inbound
//!   connection from the same peer (it restarted) replaces the older one;
//! - every connection starts with the handshake of [`handshake`]: cluster id, node id and
//!   protocol version from palisade-wire, then the settings fingerprint; a refused connection
//!   is logged (`tracing::warn`) with the reason on both sides, counted, remembered in
//!   [`PeerTransport::refusals`], and closed. Only configured peers are accepted;
//! - any framing error (bad CRC, unknown version, oversized frame, garbage) closes that one
//!   connection; nothing a peer sends can make this node allocate more than one frame of
//!   [`palisade_wire::FRAME_BYTES_MAX`] per connection, or panic.

mod codec;
mod handshake;
mod link;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_raft::NodeId;
use palisade_wire::WireError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use codec::WireCodec;
pub use handshake::{RefusalReason, SettingsHello};

use crate::config::{ConfigError, ServerConfig};
use link::Shared;

/// Default bound of each peer's outbound queue, in messages.
pub const OUTBOUND_FRAMES_MAX_DEFAULT: usize = 1024;
/// Default capacity of the inbound channel, in messages.
pub const INBOUND_FRAMES_MAX_DEFAULT: usize = 4096;
/// Default time to establish a TCP connection.
pub const CONNECT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(2);
/// Default time for the whole handshake.
pub const HANDSHAKE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(2);
/// Default first redial delay (before jitter).
pub const BACKOFF_MIN_DEFAULT: Duration = Duration::from_millis(50);
/// Default cap on the redial delay.
pub const BACKOFF_MAX_DEFAULT: Duration = Duration::from_secs(5);
/// Most inbound connections open at once (handshaking or established); more are closed at
/// once, so a port scan or a flood cannot exhaust file descriptors.
pub const INBOUND_CONNECTIONS_MAX: usize = 256;
/// Refusals remembered by [`PeerTransport::refusals`] (the oldest is forgotten first).
pub const REFUSALS_KEPT: usize = 32;
/// Most messages in any queue or channel, whatever the configuration says.
pub const QUEUE_FRAMES_LIMIT: usize = 1 << 20;

/// What the transport needs to run; build it with [`TransportConfig::new`] or
/// [`TransportConfig::from_server`] and adjust the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Our cluster id, checked in every handshake.
    pub cluster_id: u64,
    /// Our node id.
    pub node_id: NodeId,
    /// Where to listen (port 0 picks a free port: see [`PeerTransport::local_addr`]).
    pub listen: SocketAddr,
    /// Every other node and where to dial it (an entry for `node_id` itself is ignored).
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Fingerprint of the settings every node must share (0 if unused, on every node).
    pub settings_fingerprint: u64,
    /// Bound of each peer's outbound queue; the oldest message is dropped past it.
    pub outbound_frames_max: usize,
    /// Capacity of the inbound channel.
    pub inbound_frames_max: usize,
    /// Time to establish a TCP connection.
    pub connect_timeout: Duration,
    /// Time for the whole handshake.
    pub handshake_timeout: Duration,
    /// First redial delay.
    pub backoff_min: Duration,
    /// Cap on the redial delay.
    pub backoff_max: Duration,
}

impl TransportConfig {
    /// A configuration with the default limits and no settings fingerprint.
    pub fn new(
        cluster_id: u64,
        node_id: NodeId,
        listen: SocketAddr,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> TransportConfig {
        TransportConfig {
            cluster_id,
            node_id,
            listen,
            peers,
            settings_fingerprint: 0,
            outbound_frames_max: OUTBOUND_FRAMES_MAX_DEFAULT,
            inbound_frames_max: INBOUND_FRAMES_MAX_DEFAULT,
            connect_timeout: CONNECT_TIMEOUT_DEFAULT,
            handshake_timeout: HANDSHAKE_TIMEOUT_DEFAULT,
            backoff_min: BACKOFF_MIN_DEFAULT,
            backoff_max: BACKOFF_MAX_DEFAULT,
        }
    }

    /// The transport of a node's configuration: its ids, its peer listen address and peers
    /// (resolved), and its settings fingerprint.
    pub fn from_server(config: &ServerConfig) -> Result<TransportConfig, ConfigError> {
        let listen = config.peer_listen.resolve("peer_listen")?;
        let peers = config.resolve_peer_addrs()?;
        let mut transport = TransportConfig::new(config.cluster_id, config.node_id, listen, peers);
        transport.settings_fingerprint = config.settings_fingerprint();
        Ok(transport)
    }

    fn validate(&self) -> Result<(), TransportError> {
        let bad = |field: &'static str, reason: String| TransportError::Config { field, reason };
        for (field, value) in [
            ("outbound_frames_max", self.outbound_frames_max),
            ("inbound_frames_max", self.inbound_frames_max),
        ] {
            if value == 0 || value > QUEUE_FRAMES_LIMIT {
                return Err(bad(field, format!("{value} is outside 1..={QUEUE_FRAMES_LIMIT}")));
            }
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("backoff_min", self.backoff_min),
        ] {
            if value.is_zero() {
                return Err(bad(field, "must be greater than zero".to_owned()));
            }
        }
        if self.backoff_max < self.backoff_min {
            return Err(bad("backoff_max", "must not be below backoff_min".to_owned()));
        }
        if self.node_id == 0 || self.peers.contains_key(&0) {
            return Err(bad("node_id", "node id 0 is reserved".to_owned()));
        }
        Ok(())
    }
}

/// A message received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound<M> {
    /// The peer that sent it (as established by the handshake).
    pub from: NodeId,
    /// The message.
    pub msg: M,
}

/// Counters of a transport since it started; they only grow.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransportStats {
    /// Frames written to peers (after the handshake).
    pub frames_sent: u64,
    /// Frames read from peers and passed on (after the handshake).
    pub frames_received: u64,
    /// Messages dropped: a full queue, an unencodable (oversized) message, or a connection
    /// lost with messages in hand.
    pub frames_dropped: u64,
    /// Handshakes refused, by either side.
    pub handshakes_refused: u64,
    /// Handshakes that failed otherwise: connection errors, timeouts, garbage.
    pub handshakes_failed: u64,
    /// Established connections closed because a frame did not decode.
    pub decode_errors: u64,
    /// Outbound connections established.
    pub connections_dialed: u64,
    /// Inbound connections established.
    pub connections_accepted: u64,
}

/// Which side refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusedBy {
    /// This node refused the peer.
    Us,
    /// The peer refused this node.
    Peer,
}

/// One refused handshake, as remembered by [`PeerTransport::refusals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The other end's socket address.
    pub peer_addr: SocketAddr,
    /// The node id the other end claimed.
    pub peer_node: NodeId,
    /// Who refused.
    pub by: RefusedBy,
    /// Why.
    pub reason: RefusalReason,
}

/// Errors of the transport's API and of its connections.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A [`TransportConfig`] field is out of range.
    #[error("transport config: {field}: {reason}")]
    Config {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// [`PeerTransport::send`] to a node that is not a configured peer.
    #[error("node {0} is not a configured peer")]
    UnknownPeer(NodeId),
    /// The transport was shut down.
    #[error("the transport is shut down")]
    Shutdown,
    /// A connection's I/O failed.
    #[error("connection I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A frame could not be decoded or encoded.
    #[error("framing: {0}")]
    Wire(#[from] WireError),
    /// The peer closed the connection early.
    #[error("the peer closed the connection")]
    Closed,
    /// A deadline passed.
    #[error("{0} timed out")]
    Timeout(&'static str),
}

/// The handle of a running transport. Clones share it; the transport stops when
/// [`PeerTransport::shutdown`] is called or the last clone is dropped.
pub struct PeerTransport<M> {
    inner: Arc<Handle<M>>,
}

impl<M> Clone for PeerTransport<M> {
    fn clone(&self) -> Self {
        PeerTransport { inner: Arc::clone(&self.inner) }
    }
}

impl<M> fmt::Debug for PeerTransport<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerTransport")
            .field("node_id", &self.inner.shared.config.node_id)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

struct Handle<M> {
    shared: Arc<Shared<M>>,
    local_addr: SocketAddr,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl<M> Drop for Handle<M> {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

impl<M: Serialize + DeserializeOwned + Send + 'static> PeerTransport<M> {
    /// Binds `config.listen` and starts the transport: a listener task and one dialer task
    /// per peer. Returns the handle and the channel of received messages. Must be called
    /// within a tokio runtime.
    pub async fn start(
        config: TransportConfig,
    ) -> Result<(PeerTransport<M>, mpsc::Receiver<Inbound<M>>), TransportError> {
        let addr = config.listen;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| TransportError::Bind { addr, source })?;
        Self::start_on(config, listener)
    }

    /// Starts the transport on a listener bound by the caller (`config.listen` is ignored):
    /// lets tests bind every node's port before any node starts. Must be called within a
    /// tokio runtime.
    pub fn start_on(
        config: TransportConfig,
        listener: tokio::net::TcpListener,
    ) -> Result<(PeerTransport<M>, mpsc::Receiver<Inbound<M>>), TransportError> {
        config.validate()?;
        let local_addr = listener.local_addr()?;
        let (shared, inbound_rx) = Shared::new(config);
        let mut tasks = vec![tokio::spawn(link::run_acceptor(Arc::clone(&shared), listener))];
        for (&peer, &addr) in &shared.config.peers {
            if peer != shared.config.node_id {
                tasks.push(tokio::spawn(link::run_dialer(Arc::clone(&shared), peer, addr)));
            }
        }
        tracing::info!(node_id = shared.config.node_id, %local_addr, "peer transport started");
        let inner = Arc::new(Handle { shared, local_addr, tasks: Mutex::new(tasks) });
        Ok((PeerTransport { inner }, inbound_rx))
    }

    /// Queues `msg` for peer `to` without waiting; if the peer's queue is full, the oldest
    /// queued message is dropped (and counted) to make room.
    pub fn send(&self, to: NodeId, msg: M) -> Result<(), TransportError> {
        let shared = &self.inner.shared;
        if shared.cancel.is_cancelled() {
            return Err(TransportError::Shutdown);
        }
        let Some(queue) = shared.queues.get(&to) else {
            shared.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            return Err(TransportError::UnknownPeer(to));
        };
        if queue.push(msg, shared.config.outbound_frames_max) {
            shared.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl<M> PeerTransport<M> {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The counters so far.
    pub fn stats(&self) -> TransportStats {
        self.inner.shared.counters.snapshot()
    }

    /// The most recent refused handshakes (at most [`REFUSALS_KEPT`]), oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        let refusals = self.inner.shared.refusals.lock().expect("refusals lock");
        refusals.iter().copied().collect()
    }

    /// Whether the outbound connection to `peer` is established.
    pub fn is_connected(&self, peer: NodeId) -> bool {
        self.inner.shared.queues.get(&peer).is_some_and(|q| q.is_connected())
    }

    /// Messages queued for `peer` and not yet written.
    pub fn queued(&self, peer: NodeId) -> usize {
        self.inner.shared.queues.get(&peer).map_or(0, |q| q.len())
    }

    /// Stops every task, closes the listener and every connection, and waits until they are
    /// gone (every task waits on the cancellation, and the listener task aborts and awaits
    /// its connection readers). Later `send`s fail with [`TransportError::Shutdown`].
    pub async fn shutdown(&self) {
        self.inner.shared.cancel.cancel();
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().expect("tasks lock"));
        for task in tasks {
            // Err only if the task panicked; it is gone either way.
            let _ = task.await;
        }
    }
}

/// Keeps the most recent [`REFUSALS_KEPT`] refusals.
fn remember(refusals: &Mutex<VecDeque<Refusal>>, refusal: Refusal) {
    let mut refusals = refusals.lock().expect("refusals lock");
    if refusals.len() == REFUSALS_KEPT {
        refusals.pop_front();
    }
    refusals.push_back(refusal);
}
