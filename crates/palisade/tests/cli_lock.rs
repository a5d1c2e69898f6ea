//! `palisade lock NAME -- COMMAND` end to end: real `palisade server` processes on 127.0.0.1,
//! the real binary as the client.
//!
//! What it checks (docs/DESIGN.md, "Fencing, end to end" and the CLI contract of issue 6):
//! the command gets its fencing token in `PALISADE_FENCE_TOKEN`; two competing commands never
//! overlap and get strictly increasing tokens; a command whose lock is lost (the whole cluster
//! gone, so the lease runs out) has its process group killed and palisade exits non-zero
//! saying so. Every process started here is held by a guard that SIGKILLs it by pid on drop.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use palisade_server::{HostPort, PeerConfig, ServerConfig};

/// How long the cluster may take to elect a leader.
const LEADER_DEADLINE: Duration = Duration::from_secs(20);
/// Exit code of `palisade lock` when the lock was lost while the command ran.
const EXIT_LOCK_LOST: i32 = 4;

/// A child process, SIGKILLed (by pid) and reaped on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Three `palisade server` processes with their files in a temporary directory.
struct Cluster {
    dir: tempfile::TempDir,
    endpoints: String,
    nodes: Vec<Proc>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut configs = ServerConfig::dev_cluster(dir.path(), 3, 30_000).unwrap();
        let addr = |port: u16| HostPort::from(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        let peers: Vec<PeerConfig> = configs
            .iter()
            .map(|c| PeerConfig {
                id: c.node_id,
                peer_addr: addr(free_port()),
                http_addr: addr(free_port()),
            })
            .collect();
        let mut nodes = Vec::new();
        for (i, c) in configs.iter_mut().enumerate() {
            c.peers = peers.clone();
            c.peer_listen = peers[i].peer_addr.clone();
            c.http_listen = peers[i].http_addr.clone();
            c.ttl_min = Duration::from_secs(1);
            c.lock_delay = Duration::from_millis(300);
            c.validate().unwrap();
            let file = dir.path().join(format!("node{}.toml", c.node_id));
            std::fs::write(&file, c.to_toml().unwrap()).unwrap();
            let log = File::create(dir.path().join(format!("node{}.log", c.node_id))).unwrap();
            let child = Command::new(env!("CARGO_BIN_EXE_palisade"))
                .arg("server")
                .arg("--config")
                .arg(&file)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            nodes.push(Proc(child));
        }
        let endpoints: Vec<String> = peers.iter().map(|p| p.http_addr.to_string()).collect();
        let cluster = Cluster { dir, endpoints: endpoints.join(","), nodes };
        cluster.wait_for_leader();
        cluster
    }

    /// A `palisade` command pointed at this cluster.
    fn palisade(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_palisade"));
        command.env("PALISADE_ENDPOINTS", &self.endpoints).stdin(Stdio::null());
        command
    }

    /// Polls `palisade status` (exit 0: a leader is known).
    fn wait_for_leader(&self) {
        let start = Instant::now();
        loop {
            let out = self.palisade().arg("status").output().unwrap();
            if out.status.success() {
                return;
            }
            assert!(
                start.elapsed() < LEADER_DEADLINE,
                "no leader: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn logs(&self) -> String {
        (1..=3)
            .map(|i| {
                let path = self.dir.path().join(format!("node{i}.log"));
                let text = std::fs::read_to_string(path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!("--- node {i}:\n{}", lines[lines.len().saturating_sub(10)..].join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The command sees its token; competing commands never overlap, tokens increase.
#[test]
fn lock_runs_the_command_with_its_token_and_competitors_never_overlap() {
    let cluster = Cluster::start();
    let out = cluster
        .palisade()
        .args(["lock", "demo", "--", "sh", "-c", "echo $PALISADE_LOCK $PALISADE_FENCE_TOKEN"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let (lock, token) = stdout.trim().split_once(' ').expect("lock and token printed");
    assert_eq!(lock, "demo");
    let token: u64 = token.parse().unwrap_or_else(|_| panic!("not a token: {stdout}"));
    assert!(token > 0);

    // The command's exit code is palisade's.
    let out = cluster.palisade().args(["lock", "demo", "--", "sh", "-c", "exit 7"]).output();
    assert_eq!(out.unwrap().status.code(), Some(7));

    let journal = cluster.path("journal");
    let script = format!(
        "echo start $PALISADE_FENCE_TOKEN >> {0}; sleep 0.4; echo end $PALISADE_FENCE_TOKEN >> {0}",
        journal.display()
    );
    let competitors: Vec<Proc> = (0..3)
        .map(|_| {
            let child = cluster
                .palisade()
                .args(["lock", "race", "--wait", "20s", "--", "sh", "-c", &script])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            Proc(child)
        })
        .collect();
    for mut proc in competitors {
        let status = proc.0.wait().unwrap();
        assert!(status.success(), "a competitor failed: {status:?}\n{}", cluster.logs());
    }
    check_journal(&journal, token);
    interactive_command_reads_the_terminal(&cluster);
}

/// Run from a terminal's foreground, the command gets the terminal: it can read it (in a
/// background process group `read` would be stopped by SIGTTIN and hang). `script` (util-linux)
/// gives palisade a pseudo-terminal and types the line into it.
fn interactive_command_reads_the_terminal(cluster: &Cluster) {
    let inner =
        format!("{} lock tty -- sh -c 'read line; echo got:$line'", env!("CARGO_BIN_EXE_palisade"));
    let child = Command::new("script")
        .args(["-q", "-e", "-c", &inner, "/dev/null"])
        .env("PALISADE_ENDPOINTS", &cluster.endpoints)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux) runs");
    let mut script = Proc(child);
    std::io::Write::write_all(script.0.stdin.as_mut().unwrap(), b"hello\n").unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = script.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the command never read the terminal (stopped by SIGTTIN?)"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    std::io::Read::read_to_string(script.0.stdout.as_mut().unwrap(), &mut stdout).unwrap();
    assert!(status.success(), "{status:?}: {stdout}");
    assert!(stdout.contains("got:hello"), "{stdout}");
}

/// Every `start T` is followed by its own `end T` before the next start; tokens increase.
fn check_journal(journal: &Path, first_token: u64) {
    let text = std::fs::read_to_string(journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 6, "three runs, two lines each:\n{text}");
    let mut last = first_token;
    for pair in lines.chunks(2) {
        let start = pair[0].strip_prefix("start ").unwrap_or_else(|| panic!("{text}"));
        let end = pair[1].strip_prefix("end ").unwrap_or_else(|| panic!("overlap:\n{text}"));
        assert_eq!(start, end, "interleaved runs:\n{text}");
        let token: u64 = start.parse().unwrap();
        assert!(token > last, "tokens must increase:\n{text}");
        last = token;
    }
}

/// A lost lock kills the command's whole process group, and palisade says so.
#[test]
fn a_lost_lock_kills_the_commands_process_group() {
    let mut cluster = Cluster::start();
    let pids = cluster.path("pids");
    let ready = cluster.path("ready");
    // The shell starts a grandchild in the same group and waits; both must die.
    let script = format!(
        "sleep 60 & echo $! > {0}; echo $$ >> {0}; touch {1}; wait",
        pids.display(),
        ready.display()
    );
    let child = cluster
        .palisade()
        .args(["lock", "doomed", "--ttl", "2s", "--grace", "1s", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lock = Proc(child);
    let start = Instant::now();
    while !ready.exists() {
        assert!(start.elapsed() < Duration::from_secs(15), "the command did not start");
        assert!(lock.0.try_wait().unwrap().is_none(), "palisade lock exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The whole cluster goes: no keepalive can succeed, the local lease runs out.
    cluster.nodes.clear();
    let lost_at = Instant::now();
    let status = loop {
        if let Some(status) = lock.0.try_wait().unwrap() {
            break status;
        }
        assert!(lost_at.elapsed() < Duration::from_secs(10), "palisade lock did not give up");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(EXIT_LOCK_LOST));
    let mut stderr = String::new();
    std::io::Read::read_to_string(lock.0.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("lost lock \"doomed\""), "{stderr}");
    for pid in std::fs::read_to_string(&pids).unwrap().split_whitespace() {
        let alive = Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "process {pid} of the command's group still runs");
    }
}
