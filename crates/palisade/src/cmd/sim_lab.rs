//! `palisade sim`: the whole-service fault laboratory of `palisade_sim::lab` from the command
//! line.
//!
//! - `--seed N` runs one seed and prints what it drew, what happened and every checker's
//!   verdict: the same bytes on every run of that seed (wall-clock figures only with
//!   `--timing`). `--trace FILE` writes every event as JSON lines; `--report FILE` writes a
//!   self-contained HTML page of the run (`--window A..B` for a part of it).
//! - `--seeds A..B` sweeps seeds A to B-1 with a progress bar on stderr, prints each failure
//!   with the command that reproduces it, and ends with `seeds: N, failed: F, ...`.
//! - `--bench` measures simulated seconds per wall-clock second and seeds per minute for 5
//!   servers and 10 clients, 60 simulated seconds per seed, on one thread.
//!
//! The exit status is 1 when any seed fails. All simulation work is in the library.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use palisade_sim::TraceEvent;
use palisade_sim::lab::{
    LIVENESS_DEFAULT, LabBroken, LabFaults, LabOptions, LabReport, NetworkKind, SAFETY_DEFAULT,
    TraceCallback, capture_lab_panics, run_lab, run_lab_with,
};
use palisade_sim::report::render_html;

use super::CmdResult;
use super::sim_common::{
    exit, parallel, parse_nodes, parse_range, parse_window, progress, speed_line,
};

/// Seeds `--bench` runs when `--seeds` is not given.
const BENCH_SEEDS: Range<u64> = 0..10;
/// The simulated length of a bench seed: safety and liveness phases.
const BENCH_PHASE: Duration = Duration::from_secs(30);

/// Arguments of the laboratory (`palisade sim` without a subcommand).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run this one seed and print what it drew and every checker's verdict.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Sweep the seeds A..B (B excluded) with a progress bar.
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    seeds: Option<Range<u64>>,
    /// Servers: 3 or 5 [default: drawn from the seed].
    #[arg(long, value_parser = parse_nodes)]
    nodes: Option<usize>,
    /// Clients [default: 2 to 10, drawn from the seed].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=32))]
    clients: Option<u64>,
    /// Fault kinds: swarm (each on or off by the seed), all, none, or a comma-separated list
    /// of partitions, crashes, pauses, mid-handler-pauses, drift, wall-steps, bit-flips,
    /// network, client-crashes, check-write-pauses, quiet-clients, stale-tokens, bad-clocks,
    /// clock-offsets.
    #[arg(long, default_value = "swarm", value_parser = LabFaults::parse)]
    faults: LabFaults,
    /// Length of the safety phase, in which faults happen (simulated time) [default: 60s].
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Length of the liveness phase that follows, without faults [default: 30s].
    #[arg(long, value_parser = humantime::parse_duration)]
    liveness: Option<Duration>,
    /// The network's system model: synchronous, partial or asynchronous [default: drawn].
    #[arg(long, value_parser = NetworkKind::parse)]
    network: Option<NetworkKind>,
    /// A deliberately broken build, for tests of the checkers: fence-check-off,
    /// expire-without-log or trust-lease-without-drift.
    #[arg(long, hide = true, value_parser = LabBroken::parse)]
    broken: Option<LabBroken>,
    /// Write a self-contained HTML report of the run to this file (with --seed).
    #[arg(long, requires = "seed")]
    report: Option<PathBuf>,
    /// Only this part of the run in the report: A..B in simulated time (`12s..15s`, `12..15`).
    #[arg(long, requires = "report", value_parser = parse_window)]
    window: Option<(u64, u64)>,
    /// Write every event of the run as JSON lines to this file (with --seed).
    #[arg(long, requires = "seed")]
    trace: Option<PathBuf>,
    /// Also print wall-clock time and speed (these differ from run to run).
    #[arg(long)]
    timing: bool,
    /// Measure speed: 5 servers and 10 clients (unless pinned otherwise), 60 simulated
    /// seconds per seed, one thread, seeds 0..10 unless --seeds.
    #[arg(long, conflicts_with = "seed")]
    bench: bool,
    /// Threads for --seeds sweeps.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
}

impl Args {
    fn options(&self, seed: u64) -> LabOptions {
        LabOptions {
            seed,
            nodes: self.nodes,
            clients: self.clients.map(|c| c as usize),
            faults: self.faults,
            safety: self.duration.unwrap_or(SAFETY_DEFAULT),
            liveness: self.liveness.unwrap_or(LIVENESS_DEFAULT),
            network: self.network,
            broken: self.broken,
        }
    }
}

/// Runs the laboratory.
pub fn run(args: Args) -> CmdResult {
    capture_lab_panics();
    if args.bench {
        return bench(&args);
    }
    if let Some(seeds) = args.seeds.clone() {
        return sweep(&args, seeds);
    }
    let Some(seed) = args.seed else {
        let usage = "give --seed N, --seeds A..B or --bench (or a subcommand: raft, scenario)";
        return Err(usage.into());
    };
    one_seed(&args, seed)
}

fn one_seed(args: &Args, seed: u64) -> CmdResult {
    let options = args.options(seed);
    println!("seed: {seed}");
    let start = Instant::now();
    let trace: Option<TraceCallback> = match &args.trace {
        Some(path) => {
            let mut out = BufWriter::new(File::create(path)?);
            Some(Box::new(move |event: &TraceEvent| {
                // A failed write shows as a short trace file; the run itself goes on.
                if serde_json::to_writer(&mut out, event).is_ok() {
                    let _ = out.write_all(b"\n");
                }
            }))
        }
        None => None,
    };
    let window = args.report.as_ref().map(|_| args.window);
    let run = run_lab_with(&options, trace, window);
    let wall = start.elapsed();
    print!("{}", run.report);
    if let (Some(path), Some(timeline)) = (&args.report, &run.timeline) {
        std::fs::write(path, render_html(timeline, args.window))?;
        println!("report: {}", path.display());
    }
    if let Some(path) = &args.trace {
        println!("trace: {}", path.display());
    }
    if args.timing {
        println!("{}", speed_line(1, run.report.virtual_nanos, wall));
    }
    Ok(exit(run.report.passed()))
}

/// What a sweep keeps of one seed.
struct Outcome {
    passed: bool,
    failed: String,
    first: String,
    reproduce: String,
    virtual_nanos: u64,
    lost_updates: u64,
    stale_writes: u64,
    rejected: u64,
    inconclusive: usize,
}

impl Outcome {
    fn of(report: &LabReport) -> Outcome {
        Outcome {
            passed: report.passed(),
            failed: report.failed_checks(),
            first: report.violations.first().map(ToString::to_string).unwrap_or_default(),
            reproduce: report.reproduce(),
            virtual_nanos: report.virtual_nanos,
            lost_updates: report.seen.lost_updates,
            stale_writes: report.seen.stale_writes,
            rejected: report.seen.checked_rejected,
            inconclusive: report.lin.inconclusive.len(),
        }
    }
}

fn sweep(args: &Args, seeds: Range<u64>) -> CmdResult {
    let bar = progress(seeds.end - seeds.start, "seeds");
    let start = Instant::now();
    let mut failed_so_far = 0u64;
    let outcomes = parallel(
        seeds,
        args.jobs,
        |seed| Outcome::of(&run_lab(&args.options(seed))),
        |o| {
            failed_so_far += u64::from(!o.passed);
            bar.set_message(format!("({failed_so_far} failed)"));
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    let wall = start.elapsed();
    let mut failed = 0;
    for (seed, o) in outcomes.iter().filter(|(_, o)| !o.passed) {
        failed += 1;
        println!("seed {seed}: FAIL ({}): {}", o.failed, o.first);
        println!("reproduce: {}", o.reproduce);
    }
    if args.timing {
        let virtual_nanos = outcomes.iter().map(|(_, o)| o.virtual_nanos).sum();
        println!("{} ({} jobs)", speed_line(outcomes.len() as u64, virtual_nanos, wall), args.jobs);
    }
    let sum = |f: fn(&Outcome) -> u64| outcomes.iter().map(|(_, o)| f(o)).sum::<u64>();
    println!(
        "seeds: {}, failed: {failed}, stale writes: {}, fenced off: {}, lost updates on the \
         unchecked store: {}, inconclusive linearizability checks: {}",
        outcomes.len(),
        sum(|o| o.stale_writes),
        sum(|o| o.rejected),
        sum(|o| o.lost_updates),
        sum(|o| o.inconclusive as u64),
    );
    Ok(exit(failed == 0))
}

fn bench(args: &Args) -> CmdResult {
    let seeds = args.seeds.clone().unwrap_or(BENCH_SEEDS);
    let mut base = args.options(0);
    base.nodes = Some(args.nodes.unwrap_or(5));
    base.clients = Some(args.clients.map_or(10, |c| c as usize));
    base.safety = args.duration.unwrap_or(BENCH_PHASE);
    base.liveness = args.liveness.unwrap_or(BENCH_PHASE);
    println!(
        "bench: seeds {}..{}, {} servers, {} clients, {} of faults (--faults {}) then {} of \
         calm, one thread",
        seeds.start,
        seeds.end,
        base.nodes.unwrap_or(5),
        base.clients.unwrap_or(10),
        humantime::format_duration(base.safety),
        args.faults,
        humantime::format_duration(base.liveness),
    );
    let mut failed = Vec::new();
    let mut virtual_nanos = 0;
    let start = Instant::now();
    for seed in seeds.clone() {
        let options = LabOptions { seed, ..base.clone() };
        let report = run_lab(&options);
        virtual_nanos += report.virtual_nanos;
        if !report.passed() {
            failed.push(report.reproduce());
        }
    }
    let wall = start.elapsed();
    println!("all: {}", speed_line(seeds.end - seeds.start, virtual_nanos, wall));
    for r in &failed {
        println!("reproduce: {r}");
    }
    println!("seeds: {}, failed: {}", seeds.end - seeds.start, failed.len());
    Ok(exit(failed.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_windows_parse() {
        assert_eq!(parse_range("0..200"), Ok(0..200));
        assert!(parse_range("3..3").is_err());
        assert_eq!(parse_window("12..15"), Ok((12_000_000_000, 15_000_000_000)));
        assert_eq!(parse_window("1500ms..2s"), Ok((1_500_000_000, 2_000_000_000)));
        assert!(parse_window("5s..1s").is_err());
    }
}
