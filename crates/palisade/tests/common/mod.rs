//! Real `palisade server` processes on 127.0.0.1, and a small blocking HTTP/JSON client.
//!
//! Why processes and not the in-process cluster of `crates/server/tests`: these tests check
//! what a user gets from the binary: the command line, the config file, the exit code and the
//! error text, and what survives `kill -9` of a whole process. Each node is started as
//! `palisade server --config FILE` with its data directory in a temporary directory and its
//! stderr (the logs) in a file beside it. Every process is held by a [`Proc`] guard that
//! SIGKILLs it by pid and reaps it when dropped, so a failing test leaves nothing behind.
//!
//! Robustness on a loaded machine: nothing sleeps for a fixed time and hopes; every condition
//! is polled until a generous [`DEADLINE`], and mutations are retried with the same
//! Idempotency-Key while the cluster answers "try again" (no leader yet, outcome unknown).
//! The HTTP client is a few lines over `std::net::TcpStream` (one request per connection) so
//! these tests need no client crate and no async runtime.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use palisade_server::{ElectionSettings, HostPort, PeerConfig, ServerConfig};
use serde_json::Value;

/// How long any condition may take to come true (elections, catch-up, expiry).
pub const DEADLINE: Duration = Duration::from_secs(30);
/// How often a condition is checked.
pub const POLL: Duration = Duration::from_millis(50);
/// Longest wait for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for an HTTP answer: above the nodes' request timeout and long polls.
const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a cluster start is tried with fresh ports (a port picked as free may be
/// taken by another process before the node binds it).
const START_ATTEMPTS: usize = 3;
/// Error codes after which a mutation is retried with the same Idempotency-Key.
const RETRY_CODES: [&str; 6] =
    ["no_leader", "not_leader", "unavailable", "timeout", "outcome_unknown", "overloaded"];

/// The `palisade` binary under test.
pub fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_palisade")
}

/// Polls `f` until it returns `Some`, panicking with `what` and `context()` at [`DEADLINE`].
pub fn wait_for<T>(
    what: &str,
    context: impl Fn() -> String,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(POLL);
    }
}

/// A child process, SIGKILLed and reaped when dropped.
#[derive(Debug)]
pub struct Proc {
    child: Child,
    /// Where its stderr goes.
    pub stderr: PathBuf,
    exit: Option<ExitStatus>,
}

impl Proc {
    /// Starts `command` with stdin closed, stdout discarded and stderr in the file `stderr`.
    pub fn spawn(command: Command, stderr: &Path) -> Proc {
        Proc::spawn_to(command, Stdio::null(), stderr)
    }

    /// Starts `command` with stdin closed, stdout to `stdout` and stderr in the file `stderr`.
    pub fn spawn_to(mut command: Command, stdout: Stdio, stderr: &Path) -> Proc {
        let file = File::create(stderr).expect("create the stderr file");
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Proc { child, stderr: stderr.to_path_buf(), exit: None }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited (reaps it).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        self.exit
    }

    /// Waits up to `limit` for it to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(POLL);
        }
        self.exited()
    }

    /// SIGKILL by pid, then reap.
    pub fn kill(&mut self) {
        if self.exited().is_none() {
            // Fails only if it exited in between; the wait below reaps it either way.
            let _ = self.child.kill();
            self.exit = Some(self.child.wait().expect("wait for the killed process"));
        }
    }

    /// The last `lines` lines of its stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        tail(&self.stderr, lines)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The last `lines` lines of the file at `path` (empty if unreadable).
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `n` distinct ports that were free on 127.0.0.1 a moment ago.
fn free_ports(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("local address")).collect()
}

/// Configurations of an `n`-node cluster on fresh ports, data under `dir`, with timers fast
/// enough for short tests and slow enough that a loaded machine does not start elections.
pub fn configs(dir: &Path, n: usize) -> Vec<ServerConfig> {
    let ports = free_ports(2 * n);
    let mut configs = ServerConfig::dev_cluster(dir, n, 30_000).expect("dev configs");
    let peers: Vec<PeerConfig> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| PeerConfig {
            id: c.node_id,
            peer_addr: HostPort::from(ports[2 * i]),
            http_addr: HostPort::from(ports[2 * i + 1]),
        })
        .collect();
    for (i, c) in configs.iter_mut().enumerate() {
        c.peers = peers.clone();
        c.peer_listen = peers[i].peer_addr.clone();
        c.http_listen = peers[i].http_addr.clone();
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

/// A cluster of `palisade server` processes; dropping it kills them, then removes the files.
#[derive(Debug)]
pub struct Cluster {
    /// Holds the config files, data directories and logs; removed on drop, after the nodes
    /// were killed.
    pub dir: tempfile::TempDir,
    /// Each node's configuration (index `i` is node id `i + 1`).
    pub configs: Vec<ServerConfig>,
    /// Each node's config file.
    pub files: Vec<PathBuf>,
    procs: Vec<Option<Proc>>,
    starts: usize,
}

impl Cluster {
    /// Writes the configurations of `n` nodes and starts them; returns once a leader is
    /// known. Retries with fresh ports if a port was taken meanwhile.
    pub fn start(n: usize) -> Cluster {
        for attempt in 1..=START_ATTEMPTS {
            let mut cluster = Cluster::write(n);
            for i in 0..n {
                cluster.spawn(i);
            }
            match cluster.wait_for_leader_or_exit() {
                Ok(_) => return cluster,
                Err(why) if attempt < START_ATTEMPTS && why.contains("cannot listen") => {
                    eprintln!("attempt {attempt}: a port was taken, retrying: {why}");
                }
                Err(why) => panic!("the cluster did not start: {why}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Writes the configurations of `n` nodes without starting any.
    pub fn write(n: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let configs = configs(dir.path(), n);
        let files: Vec<PathBuf> = configs
            .iter()
            .map(|c| {
                let file = dir.path().join(format!("node{}.toml", c.node_id));
                std::fs::write(&file, c.to_toml().expect("config as TOML")).expect("write");
                file
            })
            .collect();
        let procs = (0..n).map(|_| None).collect();
        Cluster { dir, configs, files, procs, starts: 0 }
    }

    /// The command that starts node `i`: `palisade server --config FILE`.
    pub fn command(&self, i: usize) -> Command {
        let mut command = Command::new(exe());
        command.arg("server").arg("--config").arg(&self.files[i]);
        command
    }

    /// A fresh stderr file for a process of node `i`.
    pub fn next_log(&mut self, i: usize) -> PathBuf {
        self.starts += 1;
        self.dir.path().join(format!("node{}-{}.log", i + 1, self.starts))
    }

    /// Starts node `i` from its config file (again, after a kill).
    pub fn spawn(&mut self, i: usize) {
        assert!(self.procs[i].is_none(), "node {} is already running", i + 1);
        let log = self.next_log(i);
        self.procs[i] = Some(Proc::spawn(self.command(i), &log));
    }

    /// SIGKILLs node `i`.
    pub fn kill(&mut self, i: usize) {
        let mut proc = self.procs[i].take().expect("the node runs");
        proc.kill();
    }

    /// The process of node `i`, if started and not killed by [`Cluster::kill`].
    pub fn proc(&mut self, i: usize) -> Option<&mut Proc> {
        self.procs[i].as_mut()
    }

    /// The indexes of the nodes started and not killed.
    pub fn live(&self) -> Vec<usize> {
        (0..self.procs.len()).filter(|&i| self.procs[i].is_some()).collect()
    }

    /// `http://HOST:PORT` of node `i`.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.configs[i].http_listen)
    }

    /// Node `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.configs[i].data_dir.clone()
    }

    /// Node `i`'s `GET /v1/status`, if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        match request("GET", &format!("{}/v1/status", self.url(i)), None, &[]) {
            Ok((200, status)) => Some(status),
            _ => None,
        }
    }

    /// The last log lines of every node, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (i, proc) in self.procs.iter().enumerate() {
            if let Some(proc) = proc {
                out.push_str(&format!(
                    "--- node {} ({:?}):\n{}\n",
                    i + 1,
                    proc.stderr,
                    proc.stderr_tail(15)
                ));
            }
        }
        out
    }

    /// The index of a live node that reports itself leader (not `except`), waiting for one.
    pub fn leader_except(&self, except: Option<usize>) -> usize {
        wait_for("a leader", || self.logs(), || self.find_leader(except))
    }

    /// The index of the leader, waiting for one.
    pub fn leader(&self) -> usize {
        self.leader_except(None)
    }

    fn find_leader(&self, except: Option<usize>) -> Option<usize> {
        self.live().into_iter().filter(|&i| Some(i) != except).find(|&i| {
            self.status(i).is_some_and(|s| s["role"] == "leader" && s["node_id"] == i as u64 + 1)
        })
    }

    /// Waits for a leader; fails early, with the node's stderr, if a node exits meanwhile.
    fn wait_for_leader_or_exit(&mut self) -> Result<usize, String> {
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            for i in self.live() {
                let proc = self.procs[i].as_mut().expect("live");
                if let Some(status) = proc.exited() {
                    return Err(format!(
                        "node {} exited ({status}):\n{}",
                        i + 1,
                        proc.stderr_tail(10)
                    ));
                }
            }
            if let Some(leader) = self.find_leader(None) {
                return Ok(leader);
            }
            std::thread::sleep(POLL);
        }
        Err(format!("no leader within {DEADLINE:?}\n{}", self.logs()))
    }

    /// Sends a mutation with `client`'s next Idempotency-Key to live nodes in turn (followers
    /// forward to the leader), retrying with the same key on transport errors and on "try
    /// again" answers until [`DEADLINE`]; returns the first definite answer.
    pub fn mutate(
        &self,
        client: &mut Client,
        method: &str,
        path: &str,
        body: &Value,
    ) -> (u16, Value) {
        let key = client.next_key();
        self.send_retrying(method, path, Some(body), &[("Idempotency-Key", key.as_str())])
    }

    /// `GET path` from live nodes in turn until a definite answer (as [`Cluster::mutate`]).
    pub fn read(&self, path: &str) -> (u16, Value) {
        self.send_retrying("GET", path, None, &[])
    }

    fn send_retrying(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let start = Instant::now();
        for round in 0.. {
            let live = self.live();
            let i = live[round % live.len()];
            let last = match request(method, &format!("{}{path}", self.url(i)), body, headers) {
                Ok((status, answer)) if !is_retry(status, &answer) => return (status, answer),
                Ok((status, answer)) => format!("node {}: {status} {answer}", i + 1),
                Err(e) => format!("node {}: {e}", i + 1),
            };
            assert!(
                start.elapsed() < DEADLINE,
                "{method} {path} {body:?}: no definite answer in {DEADLINE:?}; last: {last}\n{}",
                self.logs()
            );
            std::thread::sleep(POLL);
        }
        unreachable!("the loop returns or panics")
    }

    /// `POST path body` through [`Cluster::mutate`].
    pub fn post(&self, client: &mut Client, path: &str, body: &Value) -> (u16, Value) {
        self.mutate(client, "POST", path, body)
    }

    /// `PUT path body` through [`Cluster::mutate`].
    pub fn put(&self, client: &mut Client, path: &str, body: &Value) -> (u16, Value) {
        self.mutate(client, "PUT", path, body)
    }

    /// Opens a session of `ttl_ms` for `client`; returns its id.
    pub fn open_session(&self, client: &mut Client, ttl_ms: u64) -> u64 {
        let (status, opened) =
            self.post(client, "/v1/sessions", &serde_json::json!({ "ttl_ms": ttl_ms }));
        assert_eq!(status, 200, "open session: {opened}");
        opened["session"].as_u64().unwrap_or_else(|| panic!("a session id in {opened}"))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Before the fields drop: the directory must outlive the processes writing into it.
        for proc in self.procs.iter_mut() {
            if let Some(proc) = proc.as_mut() {
                proc.kill();
            }
        }
    }
}

fn is_retry(status: u16, answer: &Value) -> bool {
    let code = answer["code"].as_str().unwrap_or_default();
    status >= 500 || RETRY_CODES.contains(&code)
}

/// A logical client: its id and the sequence of its Idempotency-Keys.
#[derive(Debug)]
pub struct Client {
    id: u64,
    seq: u64,
}

impl Client {
    /// The client with id `id` (distinct per client of a test).
    pub fn new(id: u64) -> Client {
        Client { id, seq: 0 }
    }

    /// The next `Idempotency-Key` value, `<client-hex>:<seq>`.
    pub fn next_key(&mut self) -> String {
        self.seq += 1;
        format!("{:x}:{}", self.id, self.seq)
    }
}

/// One HTTP/1.1 exchange on a fresh connection: the status and the body as JSON (or a JSON
/// string holding the text, if the body is not JSON).
pub fn request(
    method: &str,
    url: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, Value)> {
    let (status, text) = request_text(method, url, body, headers)?;
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, value))
}

/// `GET url` as JSON; panics if the node does not answer.
pub fn get(url: &str) -> (u16, Value) {
    request("GET", url, None, &[]).unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// One HTTP/1.1 exchange on a fresh connection: the status and the body as text.
pub fn request_text(
    method: &str,
    url: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{authority} resolves to nothing")))?;
    let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        payload.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(payload.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> std::io::Result<(u16, String)> {
    let bad = |what: &str| std::io::Error::other(format!("bad HTTP answer: {what}"));
    let split =
        raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("no status"))?;
    let body = &raw[split + 4..];
    let body =
        if head.contains("transfer-encoding: chunked") { dechunk(body)? } else { body.to_vec() };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut body: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = || std::io::Error::other("bad chunked body");
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&body[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(body.get(..size).ok_or_else(bad)?);
        body = body.get(size + 2..).ok_or_else(bad)?;
    }
}
