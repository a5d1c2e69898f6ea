//! A quick throughput check (not a benchmark of record): the lock-cycle workload of
//! `shared/bench/WORKLOAD.md` against an in-process three-node cluster with fsync on.
//!
//! `cargo run --release -p palisade-server --example throughput -- [CLIENTS] [SECONDS] [none|one]`
//!
//! Each client task opens a session (TTL 10 s) and loops: blocking acquire of `L<i>` (or `L0`
//! with `one`), a fenced put of `res/<lock>` carrying the token, release; all through
//! `POST /v1/rpc` on the leader, as the Rust client sends them. Prints one JSON line: cycles,
//! cycles/s, latency percentiles, and the WAL fsyncs per cycle (leader, and all nodes).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Cluster, Http};
use palisade_node::lock::{Fence, Op, Reply, RequestId, SessionId};
use palisade_node::{ClientRequest, ReplyResult, RequestBody};
use palisade_server::ElectionSettings;

struct Client {
    http: Http,
    urls: Vec<String>,
    leader: usize,
    id: u64,
    seq: u64,
    attempt: u64,
}

impl Client {
    /// Sends a mutation until it is answered for good: a new leader is followed, a retry or
    /// an unknown outcome is sent again with the same id (as ClientCore does).
    async fn send(&mut self, op: Op, wait: Option<Duration>) -> ReplyResult {
        self.seq += 1;
        let id = Some(RequestId { client: self.id, seq: self.seq });
        loop {
            self.attempt += 1;
            let body = RequestBody::Mutate(op.clone());
            let request = ClientRequest { attempt: self.attempt, id, body, wait };
            match self.http.rpc(&self.urls[self.leader], &request).await.result {
                ReplyResult::NotLeader { leader: Some(l) } => self.leader = l as usize - 1,
                ReplyResult::NotLeader { leader: None }
                | ReplyResult::Retry { .. }
                | ReplyResult::Unknown => tokio::time::sleep(Duration::from_millis(20)).await,
                result => return result,
            }
        }
    }

    async fn open(&mut self) -> SessionId {
        match self.send(Op::OpenSession { ttl: Duration::from_secs(10) }, None).await {
            ReplyResult::Done(Ok(Reply::SessionOpened { session, .. })) => session,
            other => panic!("open: {other:?}"),
        }
    }

    /// One lock cycle; returns its latency.
    async fn cycle(&mut self, session: SessionId, lock: &str) -> Duration {
        let start = Instant::now();
        let acquire = Op::Acquire { session, lock: lock.into(), wait: true };
        let token = match self.send(acquire, Some(Duration::from_secs(30))).await {
            ReplyResult::Done(Ok(Reply::Acquired { holder, .. })) => holder.token,
            other => panic!("acquire: {other:?}"),
        };
        let fence = Some(Fence { lock: lock.into(), token });
        let value = format!("token {token}").into_bytes();
        let put = Op::Put { key: format!("res/{lock}"), value, fence, hlc: Default::default() };
        match self.send(put, None).await {
            ReplyResult::Done(Ok(Reply::Written { .. })) => {}
            other => panic!("put: {other:?}"),
        }
        match self.send(Op::Release { session, lock: lock.into() }, None).await {
            ReplyResult::Done(Ok(Reply::Released { .. })) => {}
            other => panic!("release: {other:?}"),
        }
        start.elapsed()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let clients: usize = args.get(1).map_or(16, |a| a.parse().expect("CLIENTS"));
    let seconds: u64 = args.get(2).map_or(5, |a| a.parse().expect("SECONDS"));
    let contention = args.get(3).cloned().unwrap_or_else(|| "none".into());
    // The default timings of a real node (heartbeat 100 ms, election 1-2 s).
    let cluster = Cluster::start_with(3, |c| {
        c.heartbeat_interval = Duration::from_millis(100);
        c.election =
            ElectionSettings::Fixed { min: Duration::from_secs(1), max: Duration::from_secs(2) };
        c.checkpoint_interval = Duration::from_millis(500);
    })
    .await;
    let leader = cluster.leader().await;
    let urls: Vec<String> = (0..3).map(|i| cluster.url(i)).collect();
    let fsyncs = |c: &Cluster| -> Vec<u64> { (0..3).map(|i| c.node(i).fsyncs()).collect() };
    let fsync_time = |c: &Cluster| -> Duration { (0..3).map(|i| c.node(i).fsync_time()).sum() };
    let mut tasks = Vec::new();
    let start_line = Instant::now() + Duration::from_millis(500);
    let deadline = start_line + Duration::from_secs(seconds);
    for i in 0..clients {
        let id = 0x5000 + i as u64;
        let urls = urls.clone();
        let mut client = Client { http: Http::new(), urls, leader, id, seq: 0, attempt: 0 };
        let lock = if contention == "one" { "L0".to_owned() } else { format!("L{i}") };
        tasks.push(tokio::spawn(async move {
            let session = client.open().await;
            tokio::time::sleep_until(start_line.into()).await;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                latencies.push(client.cycle(session, &lock).await);
            }
            latencies
        }));
    }
    tokio::time::sleep_until(start_line.into()).await;
    let before = fsyncs(&cluster);
    let time_before = fsync_time(&cluster);
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client task"));
    }
    let elapsed = start_line.elapsed().as_secs_f64();
    let after = fsyncs(&cluster);
    let time_in_fsync = fsync_time(&cluster) - time_before;
    latencies.sort();
    let cycles = latencies.len() as f64;
    let leader_fsyncs = (after[leader] - before[leader]) as f64;
    let all_fsyncs: u64 = after.iter().zip(&before).map(|(a, b)| a - b).sum();
    println!(
        "{{\"system\":\"palisade\",\"mode\":\"{contention}\",\"clients\":{clients},\
         \"seconds\":{elapsed:.1},\"cycles\":{cycles},\"cycles_per_s\":{:.1},\"p50_ms\":{:.2},\
         \"p99_ms\":{:.2},\"max_ms\":{:.2},\"leader_fsyncs_per_cycle\":{:.3},\
         \"all_fsyncs_per_cycle\":{:.3},\"fsync_ms_mean\":{:.3}}}",
        cycles / elapsed,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        leader_fsyncs / cycles.max(1.0),
        all_fsyncs as f64 / cycles.max(1.0),
        time_in_fsync.as_secs_f64() * 1e3 / (all_fsyncs as f64).max(1.0),
    );
    cluster.stop().await;
}
