//! The tasks behind a [`super::PeerTransport`]: one dialer per peer, one acceptor, and one
//! reader per inbound connection, sharing [`Shared`].
//!
//! Every loop here waits on the transport's cancellation token as well as on its I/O, so a
//! dropped handle stops everything; `shutdown` also aborts the tasks outright. The dialer owns
//! its connection (no task per outbound connection), the acceptor owns its readers in a
//! `JoinSet` (aborted with it), so no task outlives the transport.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use palisade_raft::NodeId;
use serde::Serialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::codec::WireCodec;
use super::handshake::{HandshakeError, Identity, RefusalReason, Side};
use super::{
    INBOUND_CONNECTIONS_MAX, Inbound, Refusal, RefusedBy, TransportConfig, TransportError,
    TransportStats, remember,
};

/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The transport's counters, as atomics.
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
    pub frames_dropped: AtomicU64,
    pub handshakes_refused: AtomicU64,
    pub handshakes_failed: AtomicU64,
    pub decode_errors: AtomicU64,
    pub connections_dialed: AtomicU64,
    pub connections_accepted: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

impl Counters {
    pub fn snapshot(&self) -> TransportStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransportStats {
            frames_sent: get(&self.frames_sent),
            frames_received: get(&self.frames_received),
            frames_dropped: get(&self.frames_dropped),
            handshakes_refused: get(&self.handshakes_refused),
            handshakes_failed: get(&self.handshakes_failed),
            decode_errors: get(&self.decode_errors),
            connections_dialed: get(&self.connections_dialed),
            connections_accepted: get(&self.connections_accepted),
        }
    }
}

/// The bounded queue of messages waiting for one peer's outbound connection.
#[derive(Debug)]
pub(super) struct PeerQueue<M> {
    frames: Mutex<VecDeque<M>>,
    /// Woken on every push; holds a permit if nobody waits.
    ready: Notify,
    connected: AtomicBool,
}

impl<M> PeerQueue<M> {
    fn new() -> Self {
        PeerQueue {
            frames: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            connected: false.into(),
        }
    }

    /// Appends `msg`, dropping the oldest message if `max` are queued; true if one was dropped.
    pub fn push(&self, msg: M, max: usize) -> bool {
        assert!(max > 0);
        let mut frames = self.frames.lock().expect("queue lock");
        let dropped = frames.len() >= max;
        if dropped {
            frames.pop_front();
        }
        frames.push_back(msg);
        assert!(frames.len() <= max);
        drop(frames);
        self.ready.notify_one();
        dropped
    }

    fn take_all(&self) -> VecDeque<M> {
        std::mem::take(&mut *self.frames.lock().expect("queue lock"))
    }

    pub fn len(&self) -> usize {
        self.frames.lock().expect("queue lock").len()
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }
}

/// What every task of one transport shares.
#[derive(Debug)]
pub(super) struct Shared<M> {
    pub config: TransportConfig,
    identity: Identity,
    pub queues: BTreeMap<NodeId, PeerQueue<M>>,
    inbound_tx: mpsc::Sender<Inbound<M>>,
    /// The live inbound connection of each peer: its id and its cancellation token.
    inbound_links: Mutex<BTreeMap<NodeId, (u64, CancellationToken)>>,
    next_link_id: AtomicU64,
    pub counters: Counters,
    pub refusals: Mutex<VecDeque<Refusal>>,
    pub cancel: CancellationToken,
}

impl<M> Shared<M> {
    pub fn new(config: TransportConfig) -> (Arc<Self>, mpsc::Receiver<Inbound<M>>) {
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_frames_max);
        let others: Vec<NodeId> =
            config.peers.keys().copied().filter(|&id| id != config.node_id).collect();
        let identity = Identity {
            cluster_id: config.cluster_id,
            node_id: config.node_id,
            known_nodes: others.clone(),
            settings_fingerprint: config.settings_fingerprint,
        };
        let shared = Shared {
            queues: others.iter().map(|&id| (id, PeerQueue::new())).collect(),
            config,
            identity,
            inbound_tx,
            inbound_links: Mutex::new(BTreeMap::new()),
            next_link_id: AtomicU64::new(0),
            counters: Counters::default(),
            refusals: Mutex::new(VecDeque::new()),
            cancel: CancellationToken::new(),
        };
        (Arc::new(shared), inbound_rx)
    }

    /// Runs the handshake under its deadline, and logs, counts and remembers a failure.
    async fn handshake<D: DeserializeOwned>(
        &self,
        stream: TcpStream,
        peer_addr: SocketAddr,
        side: Side,
    ) -> Option<(NodeId, Framed<TcpStream, WireCodec<D>>)> {
        let deadline = self.config.handshake_timeout;
        let result =
            match tokio::time::timeout(deadline, self.identity.handshake(stream, side)).await {
                Ok(result) => result,
                Err(_) => Err(HandshakeError::Broken(TransportError::Timeout("handshake"))),
            };
        match result {
            Ok(established) => Some(established),
            Err(HandshakeError::Broken(error)) => {
                bump(&self.counters.handshakes_failed, 1);
                tracing::debug!(%peer_addr, ?side, %error, "peer handshake failed");
                None
            }
            Err(HandshakeError::Refused { peer_node, by_us, by_peer }) => {
                bump(&self.counters.handshakes_refused, 1);
                if let Some(reason) = by_us {
                    tracing::warn!(%peer_addr, peer_node, %reason, "refused a peer connection");
                    let refusal = Refusal { peer_addr, peer_node, by: RefusedBy::Us, reason };
                    remember(&self.refusals, refusal);
                }
                if let Some(reason) = by_peer {
                    tracing::warn!(%peer_addr, peer_node, %reason, "a peer refused our connection");
                    let reason = RefusalReason::Hello(reason);
                    let refusal = Refusal { peer_addr, peer_node, by: RefusedBy::Peer, reason };
                    remember(&self.refusals, refusal);
                }
                None
            }
        }
    }
}

/// Redial delays: doubling from `min` to `max`, each drawn uniformly from its upper half
/// ("equal jitter"), so that delays grow but nodes that lost each other at the same instant
/// do not redial in lockstep. The jitter needs no quality, only spread: splitmix64 seeded
/// from the two node ids and the start time.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    state: u64,
}

impl Backoff {
    fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        assert!(min <= max);
        Backoff { min, max, next: min, state: seed }
    }

    fn reset(&mut self) {
        self.next = self.min;
    }

    fn delay(&mut self) -> Duration {
        let ceiling = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = ceiling / 2;
        let spread = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        let jitter = if spread == 0 { 0 } else { self.random() % (spread + 1) };
        let delay = half + Duration::from_nanos(jitter);
        assert!(delay <= ceiling);
        delay
    }

    fn random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn jitter_seed(node: NodeId, peer: NodeId) -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    let nanos = now.map_or(0, |d| d.subsec_nanos().into());
    node.rotate_left(32) ^ peer ^ nanos
}

/// How one outbound connection attempt ended.
enum LinkEnd {
    /// The transport is shutting down.
    Shutdown,
    /// The connection was established and later lost.
    Lost,
    /// No connection was established.
    Failed,
}

/// Keeps one outbound connection to `peer` up for the life of the transport.
pub(super) async fn run_dialer<M: Serialize + Send + 'static>(
    shared: Arc<Shared<M>>,
    peer: NodeId,
    addr: SocketAddr,
) {
    let config = &shared.config;
    let seed = jitter_seed(config.node_id, peer);
    let mut backoff = Backoff::new(config.backoff_min, config.backoff_max, seed);
    loop {
        match dial_and_serve(&shared, peer, addr).await {
            LinkEnd::Shutdown => return,
            LinkEnd::Lost => backoff.reset(),
            LinkEnd::Failed => {}
        }
        tokio::select! {
            () = shared.cancel.cancelled() => return,
            () = tokio::time::sleep(backoff.delay()) => {}
        }
    }
}

async fn dial_and_serve<M: Serialize>(
    shared: &Shared<M>,
    peer: NodeId,
    addr: SocketAddr,
) -> LinkEnd {
    let connect = tokio::time::timeout(shared.config.connect_timeout, TcpStream::connect(addr));
    let stream = tokio::select! {
        () = shared.cancel.cancelled() => return LinkEnd::Shutdown,
        connected = connect => match connected {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(peer, %addr, %error, "cannot connect to peer");
                return LinkEnd::Failed;
            }
            Err(_) => return LinkEnd::Failed,
        },
    };
    // Small frames (heartbeats, votes) must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let handshake = shared.handshake::<IgnoredAny>(stream, addr, Side::Dialer(peer));
    let established = tokio::select! {
        () = shared.cancel.cancelled() => return LinkEnd::Shutdown,
        established = handshake => established,
    };
    let Some((_, framed)) = established else { return LinkEnd::Failed };
    bump(&shared.counters.connections_dialed, 1);
    tracing::info!(peer, %addr, "connected to peer");
    let queue = &shared.queues[&peer];
    queue.connected.store(true, Ordering::Relaxed);
    let end = write_queue(shared, queue, framed).await;
    queue.connected.store(false, Ordering::Relaxed);
    if matches!(end, LinkEnd::Lost) {
        tracing::info!(peer, %addr, "lost the connection to peer");
    }
    end
}

/// Writes the peer's queue to the connection until it breaks or the transport stops. The
/// peer never writes on a connection we dialed, so a readable stream means it closed (or
/// broke the protocol).
async fn write_queue<M: Serialize>(
    shared: &Shared<M>,
    queue: &PeerQueue<M>,
    mut framed: Framed<TcpStream, WireCodec<IgnoredAny>>,
) -> LinkEnd {
    loop {
        let batch = queue.take_all();
        if batch.is_empty() {
            tokio::select! {
                () = shared.cancel.cancelled() => return LinkEnd::Shutdown,
                () = queue.ready.notified() => continue,
                _ = framed.next() => return LinkEnd::Lost,
            }
        }
        let count = batch.len() as u64;
        let written = tokio::select! {
            () = shared.cancel.cancelled() => return LinkEnd::Shutdown,
            written = write_batch(&mut framed, batch) => written,
        };
        match written {
            Ok(unencodable) => {
                bump(&shared.counters.frames_sent, count - unencodable);
                bump(&shared.counters.frames_dropped, unencodable);
            }
            Err(error) => {
                tracing::debug!(%error, "writing to a peer failed");
                bump(&shared.counters.frames_dropped, count);
                return LinkEnd::Lost;
            }
        }
    }
}

/// Feeds a batch and flushes it once; returns how many messages could not be encoded (too
/// large for a frame: dropped, logged). An I/O error loses the whole batch.
async fn write_batch<M: Serialize>(
    framed: &mut Framed<TcpStream, WireCodec<IgnoredAny>>,
    batch: VecDeque<M>,
) -> Result<u64, TransportError> {
    let mut unencodable = 0;
    for msg in batch {
        match framed.feed(msg).await {
            Ok(()) => {}
            Err(TransportError::Wire(error)) => {
                tracing::warn!(%error, "dropped a message that does not fit in a frame");
                unencodable += 1;
            }
            Err(error) => return Err(error),
        }
    }
    SinkExt::<M>::flush(framed).await?;
    Ok(unencodable)
}

/// Accepts connections until the transport stops; each gets a reader task.
pub(super) async fn run_acceptor<M: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared<M>>,
    listener: TcpListener,
) {
    let mut readers = JoinSet::new();
    loop {
        tokio::select! {
            () = shared.cancel.cancelled() => break,
            Some(_) = readers.join_next(), if !readers.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) if readers.len() < INBOUND_CONNECTIONS_MAX => {
                    let _ = stream.set_nodelay(true);
                    readers.spawn(serve_inbound(Arc::clone(&shared), stream, addr));
                }
                Ok((_, addr)) => {
                    bump(&shared.counters.handshakes_failed, 1);
                    tracing::warn!(%addr, "too many inbound connections: closed a new one");
                }
                Err(error) => {
                    tracing::warn!(%error, "accepting a peer connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                }
            },
        }
    }
    readers.shutdown().await;
}

/// Handshakes an inbound connection, then passes its messages on until it ends, the peer
/// connects again (the newer connection wins), or the transport stops.
async fn serve_inbound<M: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared<M>>,
    stream: TcpStream,
    addr: SocketAddr,
) {
    let Some((peer, mut framed)) = shared.handshake::<M>(stream, addr, Side::Acceptor).await else {
        return;
    };
    bump(&shared.counters.connections_accepted, 1);
    tracing::info!(peer, %addr, "accepted a connection from peer");
    let link_id = shared.next_link_id.fetch_add(1, Ordering::Relaxed);
    let token = shared.cancel.child_token();
    let replaced =
        shared.inbound_links.lock().expect("links lock").insert(peer, (link_id, token.clone()));
    if let Some((_, older)) = replaced {
        older.cancel();
    }
    read_frames(&shared, peer, &token, &mut framed).await;
    let mut links = shared.inbound_links.lock().expect("links lock");
    if links.get(&peer).is_some_and(|(id, _)| *id == link_id) {
        links.remove(&peer);
    }
}

async fn read_frames<M: DeserializeOwned>(
    shared: &Shared<M>,
    peer: NodeId,
    token: &CancellationToken,
    framed: &mut Framed<TcpStream, WireCodec<M>>,
) {
    loop {
        let msg = tokio::select! {
            () = token.cancelled() => return,
            item = framed.next() => match item {
                Some(Ok(msg)) => msg,
                Some(Err(error)) => {
                    bump(&shared.counters.decode_errors, 1);
                    tracing::warn!(peer, %error, "closed a peer connection: bad frame");
                    return;
                }
                None => return,
            },
        };
        bump(&shared.counters.frames_received, 1);
        tokio::select! {
            () = token.cancelled() => return,
            sent = shared.inbound_tx.send(Inbound { from: peer, msg }) => if sent.is_err() {
                return;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_with_jitter_in_the_upper_half() {
        let (min, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let mut backoff = Backoff::new(min, max, 42);
        let ceilings = [100, 200, 400, 800, 1000, 1000, 1000];
        for ceiling in ceilings.map(Duration::from_millis) {
            let delay = backoff.delay();
            assert!(delay >= ceiling / 2 && delay <= ceiling, "{delay:?} for {ceiling:?}");
        }
        backoff.reset();
        assert!(backoff.delay() <= min);
        let delays: Vec<Duration> = (0..20)
            .map(|_| {
                backoff.reset();
                backoff.delay()
            })
            .collect();
        assert!(delays.iter().any(|&d| d != delays[0]), "the jitter spreads delays");
    }

    #[test]
    fn a_full_queue_drops_its_oldest_message() {
        let queue = PeerQueue::new();
        assert!(!queue.push(1, 2));
        assert!(!queue.push(2, 2));
        assert!(queue.push(3, 2));
        assert_eq!(queue.take_all(), VecDeque::from([2, 3]));
        assert_eq!(queue.len(), 0);
    }
}
