//! `palisade dev`: a local cluster in one command, as real processes.
//!
//! Why child processes and not nodes in this process: the dev cluster is where a newcomer
//! first kills a leader to watch the failover, so each node must be a process of its own
//! (`kill -9` one, see the others elect), running exactly the command a real deployment runs
//! (`palisade server --config nodeN.toml`, the files are written next to the data). The
//! parent only writes the configurations, checks the ports, starts the children in their own
//! process groups (so a Ctrl-C reaches the parent alone, which then stops them in order),
//! waits for a leader, prints where everything is, and on Ctrl-C or SIGTERM stops the children
//! by their pids: SIGTERM (each drains and stops gracefully), then SIGKILL after
//! [`DEV_STOP_WAIT`].

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::{ConfigError, DEV_HTTP_PORT_OFFSET, ServerConfig};
use crate::status::{RoleView, StatusView};

/// How long the parent waits for the first leader.
pub const DEV_LEADER_WAIT: Duration = Duration::from_secs(30);
/// How long the children get to stop after SIGTERM before SIGKILL.
pub const DEV_STOP_WAIT: Duration = Duration::from_secs(12);
/// How often the parent polls the children (status, exits).
pub const DEV_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Largest status answer read while waiting for the leader, in bytes.
const STATUS_BYTES_MAX: usize = 16 * 1024 * 1024;

/// What `palisade dev` was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevOptions {
    /// Number of nodes (1 to the peers limit).
    pub nodes: usize,
    /// Directory of the configurations, data directories and logs.
    pub dir: PathBuf,
    /// Peer port of node 1; node `i` uses `base_port + i - 1`, its HTTP port that plus
    /// [`DEV_HTTP_PORT_OFFSET`].
    pub base_port: u16,
    /// The executable to start as `EXE server --config FILE` (normally the current one).
    pub exe: PathBuf,
}

/// Why `palisade dev` could not start or run its cluster.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The cluster's configurations were refused (too many nodes, ports out of range).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A port the cluster needs is taken.
    #[error(
        "port {port} ({what}) is already in use; stop whatever holds it or choose other ports \
         with --base-port (e.g. --base-port {suggestion})"
    )]
    PortInUse {
        /// The port.
        port: u16,
        /// Which node uses it for what.
        what: String,
        /// A base port whose range starts past this one.
        suggestion: u32,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// No leader in time, or a node exited during start.
    #[error("{0}")]
    Start(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> DevError {
    let what = what.into();
    move |source| DevError::Io { what, source }
}

/// One child node.
struct Node {
    config: ServerConfig,
    log: PathBuf,
    child: Child,
    exited: bool,
}

/// Runs the dev cluster until Ctrl-C or SIGTERM; blocks. Returns once every child is gone.
pub fn run(options: DevOptions) -> Result<(), DevError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("starting the runtime"))?;
    runtime.block_on(run_async(options))
}

async fn run_async(options: DevOptions) -> Result<(), DevError> {
    std::fs::create_dir_all(&options.dir)
        .map_err(io(format!("creating {}", options.dir.display())))?;
    let dir =
        options.dir.canonicalize().map_err(io(format!("reading {}", options.dir.display())))?;
    let configs = ServerConfig::dev_cluster(&dir, options.nodes, options.base_port)?;
    check_ports(&configs, options.base_port)?;
    let mut nodes = Vec::with_capacity(configs.len());
    for config in configs {
        match spawn(&options.exe, &dir, config) {
            Ok(node) => nodes.push(node),
            Err(e) => {
                stop_all(&mut nodes).await;
                return Err(e);
            }
        }
    }
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let leader = tokio::select! {
        leader = wait_for_leader(&client, &mut nodes) => leader,
        _ = crate::server::wait_for_signal() => Err(DevError::Start("interrupted".into())),
    };
    let leader = match leader {
        Ok(leader) => leader,
        Err(e) => {
            stop_all(&mut nodes).await;
            return Err(e);
        }
    };
    print_welcome(&nodes, leader, &dir);
    let signal = watch_until_signal(&mut nodes).await;
    println!("\n{signal}: stopping the cluster...");
    stop_all(&mut nodes).await;
    println!("stopped. The data stays in {}; run `palisade dev` again to resume.", dir.display());
    Ok(())
}

/// Every port of the cluster must be free on 127.0.0.1.
fn check_ports(configs: &[ServerConfig], base_port: u16) -> Result<(), DevError> {
    let n = configs.len() as u32;
    let suggestion = u32::from(base_port) + u32::from(DEV_HTTP_PORT_OFFSET) + n;
    for config in configs {
        let id = config.node_id;
        for (listen, what) in [(&config.peer_listen, "peer"), (&config.http_listen, "HTTP")] {
            let addr: SocketAddr = listen.resolve("listen")?;
            if TcpListener::bind(addr).is_err() {
                let what = format!("{what} port of node {id}");
                return Err(DevError::PortInUse { port: addr.port(), what, suggestion });
            }
        }
    }
    Ok(())
}

/// Writes node `config`'s file and starts it as `EXE server --config FILE` in its own process
/// group, with its output in `nodeN.log`.
fn spawn(exe: &Path, dir: &Path, config: ServerConfig) -> Result<Node, DevError> {
    let id = config.node_id;
    let file = dir.join(format!("node{id}.toml"));
    let text = config.to_toml()?;
    std::fs::write(&file, text).map_err(io(format!("writing {}", file.display())))?;
    let log = dir.join(format!("node{id}.log"));
    let out = File::create(&log).map_err(io(format!("creating {}", log.display())))?;
    let err = out.try_clone().map_err(io(format!("opening {}", log.display())))?;
    let child = Command::new(exe)
        .arg("server")
        .arg("--config")
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(io(format!("starting {} server --config {}", exe.display(), file.display())))?;
    Ok(Node { config, log, child, exited: false })
}

/// The last lines of a node's log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n    ")
}

/// Notes children that exited; returns a description of each new exit.
fn reap(nodes: &mut [Node]) -> Vec<String> {
    let mut exits = Vec::new();
    for node in nodes.iter_mut().filter(|n| !n.exited) {
        if let Ok(Some(status)) = node.child.try_wait() {
            node.exited = true;
            let id = node.config.node_id;
            exits.push(format!(
                "node {id} exited ({status}); its log:\n    {}",
                log_tail(&node.log)
            ));
        }
    }
    exits
}

async fn status_of(client: &Client<HttpConnector, Empty<Bytes>>, addr: &str) -> Option<StatusView> {
    let uri: hyper::Uri = format!("http://{addr}/v1/status").parse().ok()?;
    let response = tokio::time::timeout(DEV_POLL_INTERVAL * 5, client.get(uri)).await.ok()?.ok()?;
    let body = Limited::new(response.into_body(), STATUS_BYTES_MAX).collect().await.ok()?;
    serde_json::from_slice(&body.to_bytes()).ok()
}

/// Polls every node's status until one of them leads; fails if a node exits meanwhile.
async fn wait_for_leader(
    client: &Client<HttpConnector, Empty<Bytes>>,
    nodes: &mut [Node],
) -> Result<u64, DevError> {
    let start = Instant::now();
    while start.elapsed() < DEV_LEADER_WAIT {
        if let Some(exit) = reap(nodes).into_iter().next() {
            return Err(DevError::Start(exit));
        }
        for node in nodes.iter() {
            let addr = node.config.http_listen.to_string();
            if let Some(status) = status_of(client, &addr).await
                && status.role == RoleView::Leader
            {
                return Ok(status.node_id);
            }
        }
        tokio::time::sleep(DEV_POLL_INTERVAL).await;
    }
    Err(DevError::Start(format!("no leader was elected within {DEV_LEADER_WAIT:?}; see the logs")))
}

fn print_welcome(nodes: &[Node], leader: u64, dir: &Path) {
    let first = nodes.first().map(|n| n.config.http_listen.to_string()).unwrap_or_default();
    println!(
        "palisade dev: {} nodes, node {leader} leads. Files in {}",
        nodes.len(),
        dir.display()
    );
    for node in nodes {
        let c = &node.config;
        let role = if c.node_id == leader { "  (leader)" } else { "" };
        println!(
            "  node {}  http://{}  peers on {}  pid {}  log {}{role}",
            c.node_id,
            c.http_listen,
            c.peer_listen,
            node.child.id(),
            node.log.display()
        );
    }
    let endpoints: Vec<String> =
        nodes.iter().map(|n| format!("http://{}", n.config.http_listen)).collect();
    println!("\nStatus page: http://{first}/");
    println!("HTTP API:    {}  (OpenAPI: http://{first}/openapi.json)", endpoints.join(" "));
    println!("\nTry:");
    println!("  palisade status");
    println!("  palisade lock demo -- sh -c 'echo $PALISADE_FENCE_TOKEN'");
    println!("  palisade kv put greeting hello");
    println!("  curl -s -X POST http://{first}/v1/sessions -d '{{\"ttl_ms\": 10000}}'");
    println!("  kill -9 <pid of the leader>   # and watch the others elect a new one");
    println!("\nCtrl-C stops the cluster.");
}

/// Waits for Ctrl-C or SIGTERM, reporting children that exit meanwhile.
async fn watch_until_signal(nodes: &mut [Node]) -> &'static str {
    let signal = crate::server::wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            signal = &mut signal => return signal.unwrap_or("signal handling failed"),
            _ = tokio::time::sleep(DEV_POLL_INTERVAL) => {
                for exit in reap(nodes) {
                    println!("{exit}");
                }
            }
        }
    }
}

/// SIGTERM to every running child by pid, then SIGKILL to those still running after
/// [`DEV_STOP_WAIT`]; waits for all.
async fn stop_all(nodes: &mut [Node]) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    for node in nodes.iter_mut().filter(|n| !n.exited) {
        if let Ok(pid) = i32::try_from(node.child.id()) {
            // Fails only if the child is gone already.
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
    }
    let start = Instant::now();
    while start.elapsed() < DEV_STOP_WAIT && nodes.iter().any(|n| !n.exited) {
        for exit in reap(nodes) {
            tracing::debug!("{exit}");
        }
        tokio::time::sleep(DEV_POLL_INTERVAL / 4).await;
    }
    for node in nodes.iter_mut().filter(|n| !n.exited) {
        println!("node {} did not stop in {DEV_STOP_WAIT:?}: SIGKILL", node.config.node_id);
        let _ = node.child.kill();
        let _ = node.child.wait();
        node.exited = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_is_named_with_a_base_port_to_try() {
        // Other tests bind ports at the same time, so a port of the cluster other than ours
        // may be taken too, and named first: then try another ephemeral port.
        for _ in 0..20 {
            let taken = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = taken.local_addr().unwrap().port();
            // Node 2's HTTP port is the taken one: base + 1 + offset.
            let Some(base) = port.checked_sub(DEV_HTTP_PORT_OFFSET + 1).filter(|b| *b > 0) else {
                continue;
            };
            let dir = tempfile::tempdir().unwrap();
            let configs = ServerConfig::dev_cluster(dir.path(), 3, base).unwrap();
            let message = match check_ports(&configs, base) {
                Err(e @ DevError::PortInUse { .. }) => e.to_string(),
                other => panic!("{other:?}"),
            };
            if !message.contains(&format!("port {port} ")) {
                continue;
            }
            assert!(message.contains(&format!("port {port} (HTTP port of node 2)")), "{message}");
            let suggestion = u32::from(base) + u32::from(DEV_HTTP_PORT_OFFSET) + 3;
            assert!(message.contains(&format!("--base-port {suggestion}")), "{message}");
            return;
        }
        panic!("20 ephemeral ports in a row had another taken port in their cluster's range");
    }

    #[test]
    fn the_log_tail_is_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("node1.log");
        let text: String = (1..=8).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&log, text).unwrap();
        assert_eq!(log_tail(&log), "line 4\n    line 5\n    line 6\n    line 7\n    line 8");
    }
}
