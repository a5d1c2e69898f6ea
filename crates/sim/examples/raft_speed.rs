//! How fast the Raft simulation runs, without building the `palisade` binary: simulated
//! seconds per wall-clock second and seeds per minute over a few seeds, on one thread. The
//! same measurement as `palisade sim raft --bench`.
//!
//! Run: `cargo run --release -p palisade-sim --example raft_speed -- [key=value ...]` with
//! `seeds=A..B` (default 0..20), `nodes=N` (default 5; `any`: drawn per seed),
//! `election=fixed|phi`, `faults=swarm|all|none|<kinds>`, `client=<ms>` (default 20),
//! `broken=double-vote|earlier-term`, `show=failed|all` (print those reports).

use std::time::{Duration, Instant};

use palisade_sim::raft::{
    Broken, ElectionKind, FaultSelection, RaftSimOptions, capture_panics, run_seed,
};

fn main() {
    let (mut first, mut end) = (0u64, 20u64);
    let mut template = RaftSimOptions::new(0);
    template.nodes = Some(5);
    let mut show = String::new();
    for arg in std::env::args().skip(1) {
        let (key, value) = arg.split_once('=').expect("arguments are key=value");
        match key {
            "seeds" => {
                let (a, b) = value.split_once("..").expect("seeds=A..B");
                (first, end) = (a.parse().expect("A"), b.parse().expect("B"));
            }
            "nodes" => template.nodes = value.parse().ok(),
            "election" => template.election = Some(ElectionKind::parse(value).expect("election")),
            "faults" => template.faults = FaultSelection::parse(value).expect("faults"),
            "client" => {
                template.client_interval = Duration::from_millis(value.parse().expect("ms"));
            }
            "broken" => template.broken = Some(Broken::parse(value).expect("broken")),
            "show" => show = value.to_owned(),
            _ => panic!("unknown argument {key}"),
        }
    }
    capture_panics();
    let (mut virtual_nanos, mut events, mut failed) = (0u64, 0u64, Vec::new());
    let start = Instant::now();
    for seed in first..end {
        let report = run_seed(&RaftSimOptions { seed, ..template.clone() });
        virtual_nanos += report.virtual_nanos;
        events += report.counters.stats.events;
        if !report.passed() {
            failed.push(seed);
        }
        if show == "all" || (show == "failed" && !report.passed()) {
            print!("{report}");
        }
    }
    let wall = start.elapsed().as_secs_f64();
    println!(
        "{} seeds in {wall:.2}s wall: {:.0} simulated s per wall s, {:.1} seeds/minute, \
         {:.2}M events/s; failed: {failed:?}",
        end - first,
        virtual_nanos as f64 / 1e9 / wall,
        (end - first) as f64 * 60.0 / wall,
        events as f64 / wall / 1e6
    );
}
