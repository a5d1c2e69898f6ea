//! An in-process cluster on 127.0.0.1 ephemeral ports with temporary data directories, and a
//! TCP proxy that can swallow answers (to make the client retry, or never learn an outcome).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use palisade_client::ClientOptions;
use palisade_server::{ElectionSettings, HostPort, PeerConfig, Server, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long any condition may take to come true.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// A running in-process cluster.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub configs: Vec<ServerConfig>,
    pub nodes: Vec<Option<Server>>,
}

impl Cluster {
    /// Starts `n` nodes with fast timers (TTLs from 1 s, lock-delay 300 ms).
    pub async fn start(n: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut peers = Vec::new();
        let mut https = Vec::new();
        for _ in 0..n {
            peers.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
            https.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        let addr = |l: &TcpListener| HostPort::from(l.local_addr().expect("addr"));
        let mut configs = ServerConfig::dev_cluster(dir.path(), n, 30_000).expect("configs");
        let entries: Vec<PeerConfig> = configs
            .iter()
            .enumerate()
            .map(|(i, c)| PeerConfig {
                id: c.node_id,
                peer_addr: addr(&peers[i]),
                http_addr: addr(&https[i]),
            })
            .collect();
        for (i, c) in configs.iter_mut().enumerate() {
            c.peers = entries.clone();
            c.peer_listen = addr(&peers[i]);
            c.http_listen = addr(&https[i]);
            c.heartbeat_interval = Duration::from_millis(50);
            c.election = ElectionSettings::Fixed {
                min: Duration::from_millis(600),
                max: Duration::from_millis(1200),
            };
            c.checkpoint_interval = Duration::from_millis(200);
            c.ttl_min = Duration::from_secs(1);
            c.lock_delay = Duration::from_millis(300);
            c.request_timeout = Duration::from_secs(5);
            c.validate().expect("test config is valid");
        }
        let mut nodes = Vec::new();
        for ((config, peer), http) in configs.iter().zip(peers).zip(https) {
            nodes.push(Some(Server::start_on(config.clone(), peer, http).await.expect("starts")));
        }
        Cluster { dir, configs, nodes }
    }

    /// `http://addr` of node index `i`.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.configs[i].http_listen)
    }

    /// Every node's URL.
    pub fn urls(&self) -> Vec<String> {
        (0..self.configs.len()).map(|i| self.url(i)).collect()
    }

    /// The index of the ready leader, waiting for one.
    pub async fn leader(&self) -> usize {
        let start = std::time::Instant::now();
        loop {
            let ready = self
                .nodes
                .iter()
                .position(|n| n.as_ref().is_some_and(|s| s.snapshot().leader_ready));
            if let Some(i) = ready {
                return i;
            }
            assert!(start.elapsed() < DEADLINE, "no leader within {DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Client options for every node, with short timeouts for the tests.
    pub fn options(&self, ttl: Duration) -> ClientOptions {
        quick(ClientOptions::new(self.urls()).with_ttl(ttl))
    }

    /// Stops node `i` abruptly.
    pub async fn abort(&mut self, i: usize) {
        if let Some(server) = self.nodes[i].take() {
            server.abort().await.expect("stops");
        }
    }

    /// Stops every node.
    pub async fn stop(mut self) {
        for i in 0..self.nodes.len() {
            self.abort(i).await;
        }
    }
}

/// Shorter attempt and operation timeouts than the defaults.
pub fn quick(mut options: ClientOptions) -> ClientOptions {
    options.attempt_timeout = Duration::from_millis(500);
    options.op_timeout = Duration::from_secs(4);
    options.connect_timeout = Duration::from_secs(2);
    options
}

/// A TCP proxy in front of one node that swallows the answers to requests containing a
/// marker: the request reaches the node (and runs), the client never hears back.
pub struct Proxy {
    pub addr: SocketAddr,
    /// Answers still to swallow (`usize::MAX`: all).
    pub swallow: Arc<AtomicUsize>,
    /// Answers swallowed so far.
    pub swallowed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Proxy {
    /// A proxy to `upstream` swallowing the answers of the first `swallow` requests whose
    /// bytes contain `marker`.
    pub async fn start(upstream: SocketAddr, marker: &'static [u8], swallow: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let swallow = Arc::new(AtomicUsize::new(swallow));
        let swallowed = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, d, st) = (Arc::clone(&swallow), Arc::clone(&swallowed), Arc::clone(&stop));
        tokio::spawn(async move {
            while !st.load(Ordering::SeqCst) {
                let Ok((conn, _)) = listener.accept().await else { return };
                let Ok(up) = TcpStream::connect(upstream).await else { continue };
                tokio::spawn(pipe(conn, up, marker, Arc::clone(&s), Arc::clone(&d)));
            }
        });
        Proxy { addr, swallow, swallowed, stop }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

async fn pipe(
    conn: TcpStream,
    up: TcpStream,
    marker: &'static [u8],
    swallow: Arc<AtomicUsize>,
    swallowed: Arc<AtomicUsize>,
) {
    let (mut conn_r, mut conn_w) = conn.into_split();
    let (mut up_r, mut up_w) = up.into_split();
    let doomed = Arc::new(AtomicBool::new(false));
    let doomed_w = Arc::clone(&doomed);
    let to_up = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match conn_r.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            if chunk.windows(marker.len()).any(|w| w == marker)
                && swallow
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1))
                    .is_ok()
            {
                doomed_w.store(true, Ordering::SeqCst);
            }
            if up_w.write_all(chunk).await.is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match up_r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if doomed.load(Ordering::SeqCst) {
            // The request ran; its answer is lost with the connection.
            swallowed.fetch_add(1, Ordering::SeqCst);
            break;
        }
        if conn_w.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    to_up.abort();
}
