//! How fast the fault laboratory runs: exactly what `palisade sim --bench` runs (5 servers,
//! 10 clients, 30 s of swarm faults then 30 s of calm, every checker), without building the
//! binary. Prints each seed's trace hash (compare two builds: a speed change must not change a
//! run) and, at the end, simulated seconds per CPU second of this thread.
//!
//! Run: `cargo run --release -p palisade-sim --example lab_speed -- [--seeds N] [--first S]`.
//! On a shared machine count instructions instead of seconds:
//! `perf stat -e instructions:u target/release/examples/lab_speed --seeds 10`.

use std::time::{Duration, Instant};

use palisade_sim::lab::{LabOptions, run_lab};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}: not a number: {v}")))
}

/// CPU time of this thread (wall time is meaningless on a busy machine).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // Clock ticks are 100 per second on Linux.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seeds = arg(&args, "--seeds", 10);
    let first = arg(&args, "--first", 0);
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    let mut virtual_nanos = 0u64;
    for seed in first..first + seeds {
        let mut o = LabOptions::new(seed);
        o.nodes = Some(5);
        o.clients = Some(10);
        o.safety = Duration::from_secs(30);
        o.liveness = Duration::from_secs(30);
        let report = run_lab(&o);
        virtual_nanos += report.virtual_nanos;
        println!("seed {seed}: passed {} trace {:#018x}", report.passed(), report.trace_hash);
    }
    let (cpu, wall) = (thread_cpu() - cpu0, wall0.elapsed());
    let simulated = virtual_nanos as f64 / 1e9;
    println!(
        "{seeds} seeds, {simulated:.0} simulated s: cpu {:.2}s ({:.0}x), wall {:.2}s ({:.0}x)",
        cpu.as_secs_f64(),
        simulated / cpu.as_secs_f64().max(1e-9),
        wall.as_secs_f64(),
        simulated / wall.as_secs_f64().max(1e-9),
    );
}
