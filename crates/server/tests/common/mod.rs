//! An in-process cluster on 127.0.0.1 ephemeral ports with temporary data directories, and a
//! small JSON HTTP client. Shared by the integration tests and the throughput example.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use palisade_node::{ClientReply, ClientRequest};
use palisade_server::{ElectionSettings, HostPort, Server, ServerConfig};
use serde_json::Value;
use tokio::net::TcpListener;

/// How long any condition may take to come true.
pub const DEADLINE: Duration = Duration::from_secs(15);
/// How often a condition is checked.
pub const POLL: Duration = Duration::from_millis(10);

/// Configurations of an `n`-node cluster on the given listeners' ports, with fast timers.
pub fn configs(
    dir: &std::path::Path,
    peers: &[SocketAddr],
    https: &[SocketAddr],
) -> Vec<ServerConfig> {
    let n = peers.len();
    let mut configs = ServerConfig::dev_cluster(dir, n, 30_000).expect("dev configs");
    let entries: Vec<_> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| palisade_server::PeerConfig {
            id: c.node_id,
            peer_addr: HostPort::from(peers[i]),
            http_addr: HostPort::from(https[i]),
        })
        .collect();
    for (i, c) in configs.iter_mut().enumerate() {
        c.peers = entries.clone();
        c.peer_listen = HostPort::from(peers[i]);
        c.http_listen = HostPort::from(https[i]);
        // Fast enough to keep the tests short, slow enough that a loaded machine (a slow fsync,
        // a descheduled thread) does not start elections in the middle of a test.
        c.heartbeat_interval = Duration::from_millis(50);
        c.election = ElectionSettings::Fixed {
            min: Duration::from_millis(600),
            max: Duration::from_millis(1200),
        };
        c.checkpoint_interval = Duration::from_millis(200);
        c.ttl_min = Duration::from_secs(1);
        c.lock_delay = Duration::from_millis(500);
        c.request_timeout = Duration::from_secs(5);
        c.validate().expect("test config is valid");
    }
    configs
}

/// A running in-process cluster.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub configs: Vec<ServerConfig>,
    pub nodes: Vec<Option<Server>>,
    pub http: Http,
}

async fn listener(addr: &str) -> TcpListener {
    TcpListener::bind(addr).await.expect("bind")
}

impl Cluster {
    /// Starts `n` nodes.
    pub async fn start(n: usize) -> Cluster {
        Cluster::start_with(n, |_| {}).await
    }

    /// Starts `n` nodes, each configuration adjusted by `adjust`.
    pub async fn start_with(n: usize, adjust: impl Fn(&mut ServerConfig)) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut peer_listeners = Vec::new();
        let mut http_listeners = Vec::new();
        for _ in 0..n {
            peer_listeners.push(listener("127.0.0.1:0").await);
            http_listeners.push(listener("127.0.0.1:0").await);
        }
        let peers: Vec<SocketAddr> =
            peer_listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let https: Vec<SocketAddr> =
            http_listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let mut configs = configs(dir.path(), &peers, &https);
        for config in &mut configs {
            adjust(config);
            config.validate().expect("adjusted config is valid");
        }
        let mut nodes = Vec::new();
        for ((config, peer), http) in configs.iter().zip(peer_listeners).zip(http_listeners) {
            let server = Server::start_on(config.clone(), peer, http).await.expect("node starts");
            nodes.push(Some(server));
        }
        Cluster { dir, configs, nodes, http: Http::new() }
    }

    /// The node at index `i` (node id `i + 1`).
    pub fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("running")
    }

    /// `http://addr` of node index `i`.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.configs[i].http_listen)
    }

    /// The index of the ready leader, waiting for one.
    pub async fn leader(&self) -> usize {
        wait_for("a ready leader", || {
            self.nodes.iter().position(|n| n.as_ref().is_some_and(|s| s.snapshot().leader_ready))
        })
        .await
    }

    /// Stops node `i` abruptly (no drain).
    pub async fn abort(&mut self, i: usize) {
        let server = self.nodes[i].take().expect("running");
        server.abort().await.expect("stops");
    }

    /// Starts node `i` again on its ports and data directory.
    pub async fn restart(&mut self, i: usize) {
        let config = self.configs[i].clone();
        let peer = listener(&config.peer_listen.to_string()).await;
        let http = listener(&config.http_listen.to_string()).await;
        let server = Server::start_on(config, peer, http).await.expect("restarts");
        self.nodes[i] = Some(server);
    }

    /// Stops every node still running.
    pub async fn stop(mut self) {
        for node in self.nodes.iter_mut() {
            if let Some(server) = node.take() {
                server.abort().await.expect("stops");
            }
        }
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.configs[i].data_dir.clone()
    }
}

/// Waits until `f` returns `Some`.
pub async fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = std::time::Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

/// A JSON HTTP client.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Http {
        Http { client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// Sends a request; returns the status and the body (JSON, or a string if not JSON).
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut builder = hyper::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let bytes = body.map(|b| Bytes::from(serde_json::to_vec(b).unwrap())).unwrap_or_default();
        let request = builder.body(Full::new(bytes)).unwrap();
        let response = self.client.request(request).await.expect("HTTP exchange");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        (status, value)
    }

    pub async fn get(&self, url: &str) -> (u16, Value) {
        self.send("GET", url, None, &[]).await
    }

    pub async fn post(&self, url: &str, body: &Value) -> (u16, Value) {
        self.send("POST", url, Some(body), &[]).await
    }

    pub async fn put(&self, url: &str, body: &Value) -> (u16, Value) {
        self.send("PUT", url, Some(body), &[]).await
    }

    /// `POST /v1/rpc`.
    pub async fn rpc(&self, base: &str, request: &ClientRequest) -> ClientReply {
        let body = serde_json::to_value(request).unwrap();
        let (status, reply) = self.post(&format!("{base}/v1/rpc"), &body).await;
        assert_eq!(status, 200, "{reply}");
        serde_json::from_value(reply).expect("a ClientReply")
    }

    /// The raw text of a GET.
    pub async fn text(&self, url: &str) -> (u16, String) {
        let request = hyper::Request::builder().uri(url).body(Full::new(Bytes::new())).unwrap();
        let response = self.client.request(request).await.expect("HTTP exchange");
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}
