//! Starting and stopping one node: the data directory, the core, the peer transport, the node
//! thread and the HTTP API, in that order, and the reverse order on the way out.
//!
//! Start refuses early and says why in one line ([`ServerError`]): a data directory of another
//! cluster or node, a corrupt WAL (file and offset), an address in use (which field). Once
//! running, the node stops in one of two ways:
//!
//! - **gracefully** ([`Server::shutdown`], on SIGTERM or SIGINT): a leader first hands its
//!   leadership to the most caught-up voter and waits briefly ([`DRAIN_WAIT`]) for the transfer,
//!   so the cluster does not sit through an election timeout; then the HTTP server stops
//!   accepting connections and in-flight requests finish (within [`IN_FLIGHT_WAIT`]; the node
//!   thread keeps serving them, so they get real answers, forwarded to the new leader where
//!   needed); then the node thread ends with a final fsync (every batch is durable before
//!   anything of it leaves the process; the final one adds the commit index, which batches
//!   write lazily, so a restart replays everything at once) and the transport closes;
//! - **on a storage failure** ([`Server::stopped`]): the core stopped for good (what reached
//!   the disk is unknown); the process must exit non-zero and be restarted to recover from
//!   what is durable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Duration;

use palisade_clock::Clock;
use palisade_node::raft::{Membership, Message, Role};
use palisade_node::storage::FileDisk;
use palisade_node::{NodeError, ServerCore};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::api::{self, AppState};
use crate::clock::SystemClock;
use crate::config::{ConfigError, LogFormat, ServerConfig};
use crate::disk::{FsyncCounter, TimedDisk};
use crate::error::ServerError;
use crate::metrics::Metrics;
use crate::node_loop::{INPUTS_QUEUED_MAX, Input, NodeLoop, NodeSnapshot};
use crate::transport::{Inbound, PeerTransport, TransportConfig};

/// How long a draining leader waits for its leadership transfer before going on with the stop.
pub const DRAIN_WAIT: Duration = Duration::from_secs(3);
/// How long a stopping node waits for its in-flight HTTP requests.
pub const IN_FLIGHT_WAIT: Duration = Duration::from_secs(5);

/// A running node. Stop it with [`Server::shutdown`] (graceful) or [`Server::abort`].
#[derive(Debug)]
pub struct Server {
    config: Arc<ServerConfig>,
    http_addr: SocketAddr,
    inputs: SyncSender<Input>,
    snapshot: watch::Receiver<NodeSnapshot>,
    node_exit: Option<oneshot::Receiver<Result<(), ServerError>>>,
    node_thread: Option<std::thread::JoinHandle<()>>,
    http_task: Option<JoinHandle<std::io::Result<()>>>,
    http_stop: Option<oneshot::Sender<()>>,
    transport: PeerTransport<Message>,
    metrics: Arc<Metrics>,
    fsyncs: Arc<FsyncCounter>,
}

/// What [`Server::shutdown`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// The node was leader and handed leadership to this voter.
    pub transferred_to: Option<u64>,
    /// The transfer completed (this node saw itself step down) within [`DRAIN_WAIT`].
    pub transfer_completed: bool,
    /// Every in-flight HTTP request finished within [`IN_FLIGHT_WAIT`].
    pub requests_finished: bool,
}

/// A seed for the node's randomness (Raft's election jitter, REST client ids): the clock, the
/// node id and the process id, mixed (splitmix64). Logged at start.
fn node_seed(node_id: u64) -> u64 {
    let mut z = SystemClock.wall().as_nanos() ^ (node_id << 48) ^ u64::from(std::process::id());
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

async fn bind(field: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| ServerError::Bind { field, addr, source })
}

/// Opens the core on the data directory (refusing another node's directory or a corrupt WAL).
fn open_core(
    config: &ServerConfig,
    metrics: &Arc<Metrics>,
    fsyncs: &Arc<FsyncCounter>,
    seed: u64,
) -> Result<crate::node_loop::Core, ServerError> {
    config.check_data_dir()?;
    let dir = &config.data_dir;
    let disk = FileDisk::open(dir).map_err(|e| {
        ServerError::Config(ConfigError::DataDir { path: dir.clone(), reason: e.to_string() })
    })?;
    let disk = TimedDisk::new(disk, Arc::clone(metrics), Arc::clone(fsyncs));
    let members = Membership::new(config.peers.iter().map(|p| p.id));
    let node_config = config.to_node_config()?;
    ServerCore::open(node_config, disk, members, SystemClock.now(), seed)
        .map_err(|e: NodeError| ServerError::open(dir.clone(), e))
}

impl Server {
    /// Starts the node on the addresses of its configuration.
    pub async fn start(config: ServerConfig) -> Result<Server, ServerError> {
        let http_addr = config.http_listen.resolve("http_listen")?;
        let peer_addr = config.peer_listen.resolve("peer_listen")?;
        let http = bind("http_listen", http_addr).await?;
        let peer = bind("peer_listen", peer_addr).await?;
        Server::start_on(config, peer, http).await
    }

    /// Starts the node on listeners bound by the caller (tests bind port 0 first). Opens the
    /// data directory, starts the transport, the node thread and the HTTP API.
    pub async fn start_on(
        config: ServerConfig,
        peer: TcpListener,
        http: TcpListener,
    ) -> Result<Server, ServerError> {
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::new());
        let fsyncs = Arc::new(FsyncCounter::default());
        let seed = node_seed(config.node_id);
        let core = open_core(&config, &metrics, &fsyncs, seed)?;
        let transport_config = TransportConfig::from_server(&config)?;
        let (transport, inbound) = PeerTransport::start_on(transport_config, peer)?;
        let (inputs, inputs_rx) = sync_channel(INPUTS_QUEUED_MAX);
        forward_peer_messages(inbound, inputs.clone())?;
        let (node, snapshot) =
            NodeLoop::new(core, Arc::clone(&config), transport.clone(), Arc::clone(&metrics), seed);
        let (exit_tx, node_exit) = oneshot::channel();
        let node_thread = std::thread::Builder::new()
            .name(format!("palisade-node-{}", config.node_id))
            .spawn(move || {
                let _ = exit_tx.send(node.run(inputs_rx));
            })?;
        let http_addr = http.local_addr()?;
        let state = AppState::new(Arc::clone(&config), inputs.clone(), Arc::clone(&metrics));
        let (http_stop, stop_rx) = oneshot::channel::<()>();
        let app = api::router(state);
        let http_task = tokio::spawn(async move {
            axum::serve(http, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await
        });
        tracing::info!(
            node = config.node_id,
            cluster = %format!("{:#x}", config.cluster_id),
            http = %http_addr,
            peer = %transport.local_addr(),
            data_dir = %config.data_dir.display(),
            seed,
            "palisade node started"
        );
        Ok(Server {
            config,
            http_addr,
            inputs,
            snapshot,
            node_exit: Some(node_exit),
            node_thread: Some(node_thread),
            http_task: Some(http_task),
            http_stop: Some(http_stop),
            transport,
            metrics,
            fsyncs,
        })
    }

    /// The address the HTTP API listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The address the peer transport listens on.
    pub fn peer_addr(&self) -> SocketAddr {
        self.transport.local_addr()
    }

    /// This node's id.
    pub fn node_id(&self) -> u64 {
        self.config.node_id
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Role, term and leader as last published by the node thread.
    pub fn snapshot(&self) -> NodeSnapshot {
        *self.snapshot.borrow()
    }

    /// File fsyncs of this node's WAL so far.
    pub fn fsyncs(&self) -> u64 {
        self.fsyncs.syncs()
    }

    /// Time spent in them so far.
    pub fn fsync_time(&self) -> Duration {
        Duration::from_nanos(self.fsyncs.nanos())
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Resolves when the node thread ended on its own: the core stopped after a storage
    /// failure (the error), or its input channel closed. Call [`Server::abort`] then.
    pub async fn stopped(&mut self) -> Result<(), ServerError> {
        let Some(exit) = &mut self.node_exit else { return std::future::pending().await };
        let result = exit.await.unwrap_or(Ok(()));
        self.node_exit = None;
        result
    }

    /// Stops gracefully: drain (leader), stop accepting, finish in-flight requests, stop the
    /// node thread and the transport. See the module documentation.
    pub async fn shutdown(mut self) -> Result<ShutdownReport, ServerError> {
        let mut report = ShutdownReport {
            transferred_to: None,
            transfer_completed: false,
            requests_finished: true,
        };
        if self.snapshot().role == Role::Leader {
            let (reply, answer) = oneshot::channel();
            if self.inputs.try_send(Input::Drain(reply)).is_ok()
                && let Ok(Ok(Ok(to))) = tokio::time::timeout(DRAIN_WAIT, answer).await
            {
                report.transferred_to = Some(to);
                let mut watch = self.snapshot.clone();
                let stepped_down = watch.wait_for(|s| s.role != Role::Leader);
                report.transfer_completed =
                    matches!(tokio::time::timeout(DRAIN_WAIT, stepped_down).await, Ok(Ok(_)));
            }
            tracing::info!(
                to = ?report.transferred_to,
                completed = report.transfer_completed,
                "drained leadership before stopping"
            );
        }
        report.requests_finished = self.stop_http(IN_FLIGHT_WAIT).await;
        let result = self.stop_node().await;
        tracing::info!(node = self.config.node_id, "palisade node stopped");
        result.map(|()| report)
    }

    /// Stops at once, without draining and without waiting for requests in flight (their
    /// clients see the connection close). Everything acknowledged is durable already.
    pub async fn abort(mut self) -> Result<(), ServerError> {
        self.stop_http(Duration::ZERO).await;
        self.stop_node().await
    }

    /// Stops the HTTP server; waits up to `wait` for in-flight requests. Returns whether they
    /// all finished.
    async fn stop_http(&mut self, wait: Duration) -> bool {
        if let Some(stop) = self.http_stop.take() {
            let _ = stop.send(());
        }
        let Some(mut task) = self.http_task.take() else { return true };
        match tokio::time::timeout(wait, &mut task).await {
            Ok(_) => true,
            Err(_) => {
                task.abort();
                let _ = task.await;
                false
            }
        }
    }

    /// Ends the node thread (after the batch it is in) and the transport.
    async fn stop_node(&mut self) -> Result<(), ServerError> {
        let inputs = self.inputs.clone();
        // A blocking send: the queue may be full, and the shutdown must get in.
        let _ = tokio::task::spawn_blocking(move || inputs.send(Input::Shutdown).is_ok()).await;
        let result = match self.node_exit.take() {
            Some(exit) => exit.await.unwrap_or(Ok(())),
            None => Ok(()),
        };
        if let Some(thread) = self.node_thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        self.transport.shutdown().await;
        result
    }
}

/// Moves the transport's received messages into the node thread's queue, on a thread of its
/// own: a blocking send, so a node thread that falls behind pushes back on the peers' TCP
/// connections instead of growing a queue.
fn forward_peer_messages(
    mut inbound: tokio::sync::mpsc::Receiver<Inbound<Message>>,
    inputs: SyncSender<Input>,
) -> std::io::Result<()> {
    std::thread::Builder::new().name("palisade-peer-in".into()).spawn(move || {
        while let Some(Inbound { from, msg }) = inbound.blocking_recv() {
            if inputs.send(Input::Peer { from, msg }).is_err() {
                return;
            }
        }
    })?;
    Ok(())
}

/// Sets up the log output of the process from the configuration (`log_level`, `log_format`),
/// on stderr. A second call is ignored.
pub fn init_logging(config: &ServerConfig) {
    let filter = tracing_subscriber::EnvFilter::builder()
        .parse(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Waits for SIGTERM or SIGINT; returns the signal's name.
pub async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    })
}

/// Runs one node until SIGTERM/SIGINT (then stops gracefully and returns `Ok`) or until it
/// stops on its own after a storage failure (the error).
pub async fn run(config: ServerConfig) -> Result<(), ServerError> {
    let mut server = Server::start(config).await?;
    let outcome = tokio::select! {
        signal = wait_for_signal() => Ok(signal?),
        stopped = server.stopped() => Err(stopped),
    };
    match outcome {
        Ok(signal) => {
            tracing::info!(signal, "stopping gracefully");
            server.shutdown().await.map(|_| ())
        }
        Err(stopped) => {
            let _ = server.abort().await;
            stopped.and(Err(ServerError::Stopped("the node thread ended".into())))
        }
    }
}

/// [`run`] on a new multi-threaded tokio runtime, with logging set up from the configuration:
/// what `palisade server` calls.
pub fn run_blocking(config: ServerConfig) -> Result<(), ServerError> {
    init_logging(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("palisade-io")
        .build()?;
    runtime.block_on(run(config))
}
