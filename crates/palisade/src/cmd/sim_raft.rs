//! `palisade sim raft`: the Raft simulation of `palisade_sim::raft` from the command line.
//!
//! - `--seed N` runs one seed and prints its options and result: the same bytes on every run
//!   of that seed (wall-clock figures only with `--timing`). `--trace FILE` writes every event
//!   of the run as JSON lines.
//! - `--seeds A..B` sweeps seeds A to B-1 with a progress bar on stderr, then prints each
//!   failure with the command that reproduces it and a last line `seeds: N, failed: F`.
//! - `--bench` measures simulated seconds per wall-clock second and seeds per minute.
//! - `--failover-compare` compares the fixed-timeout and phi-accrual elections on the seeds.
//!
//! The exit status is 1 when any seed fails. All simulation work is in the library; this file
//! parses arguments, spreads seeds over `--jobs` threads, and prints.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use palisade_sim::TraceSink;
use palisade_sim::raft::{
    Broken, ElectionKind, FailoverOptions, FailoverReport, FailoverStats, FaultSelection,
    RaftRunReport, RaftSimOptions, capture_panics, failover_seed, run_seed, run_seed_with_trace,
};

use super::CmdResult;
use super::sim_common::{exit, parallel, parse_nodes, parse_range, progress, speed_line};

/// Seeds `--bench` and `--failover-compare` use when `--seeds` is not given.
const DEFAULT_BENCH_SEEDS: Range<u64> = 0..20;

/// Arguments of `palisade sim raft`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run this one seed and print its options and result.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Sweep the seeds A..B (B excluded) with a progress bar.
    #[arg(long, value_name = "A..B", value_parser = parse_range)]
    seeds: Option<Range<u64>>,
    /// Cluster size [default: 3 or 5, drawn from the seed].
    #[arg(long, value_parser = parse_nodes)]
    nodes: Option<usize>,
    /// How followers detect a failed leader: fixed or phi [default: drawn from the seed].
    #[arg(long, value_parser = ElectionKind::parse)]
    election: Option<ElectionKind>,
    /// Fault kinds: swarm (each on or off by the seed), all, none, or a comma-separated list
    /// of partitions, crashes, pauses, mid-handler-pauses, drift, wall-steps, bit-flips,
    /// network, leader.
    #[arg(long, default_value = "swarm", value_parser = FaultSelection::parse)]
    faults: FaultSelection,
    /// Length of the safety phase (simulated time); the liveness phase follows it.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The client proposes a new command every this long (simulated time).
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    client_interval: Duration,
    /// A deliberately broken Raft, for tests of the checkers: double-vote or earlier-term.
    #[arg(long, hide = true, value_parser = Broken::parse)]
    broken: Option<Broken>,
    /// Write every event of the run as JSON lines to this file (with --seed).
    #[arg(long, requires = "seed")]
    trace: Option<PathBuf>,
    /// Also print wall-clock time and speed (these differ from run to run).
    #[arg(long)]
    timing: bool,
    /// Measure speed: simulated seconds per wall-clock second and seeds per minute, on one
    /// thread, 5 nodes unless --nodes says otherwise (seeds 0..20 unless --seeds).
    #[arg(long, conflicts_with_all = ["seed", "failover_compare"])]
    bench: bool,
    /// Compare the failover time of the fixed-timeout and phi-accrual elections on the same
    /// seeds (0..20 unless --seeds): the leader is crashed or isolated every 10 s.
    #[arg(long, conflicts_with = "seed")]
    failover_compare: bool,
    /// Threads for --seeds sweeps and --failover-compare.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
}

impl Args {
    fn options(&self, seed: u64) -> RaftSimOptions {
        RaftSimOptions {
            seed,
            nodes: self.nodes,
            election: self.election,
            faults: self.faults,
            safety: self.duration,
            broken: self.broken,
            client_interval: self.client_interval,
        }
    }
}

/// Runs `palisade sim raft`.
pub fn run(args: Args) -> CmdResult {
    capture_panics();
    if args.failover_compare {
        return failover(&args);
    }
    if args.bench {
        return bench(&args);
    }
    if let Some(seeds) = args.seeds.clone() {
        return sweep(&args, seeds);
    }
    let Some(seed) = args.seed else {
        return Err("give --seed N, --seeds A..B, --bench or --failover-compare".into());
    };
    one_seed(&args, seed)
}

fn one_seed(args: &Args, seed: u64) -> CmdResult {
    let options = args.options(seed);
    let start = Instant::now();
    let report = match &args.trace {
        Some(path) => {
            let mut out = BufWriter::new(File::create(path)?);
            let sink = TraceSink::Stream(Box::new(move |event| {
                // A failed write shows as a short trace file; the run itself goes on.
                if serde_json::to_writer(&mut out, event).is_ok() {
                    let _ = out.write_all(b"\n");
                }
            }));
            run_seed_with_trace(&options, sink)
        }
        None => run_seed(&options),
    };
    let wall = start.elapsed();
    print!("{report}");
    if args.timing {
        println!("{}", speed_line(1, report.virtual_nanos, wall));
    }
    Ok(exit(report.passed()))
}

/// What a sweep keeps of one seed.
struct Outcome {
    seed: u64,
    passed: bool,
    failed: String,
    first: String,
    virtual_nanos: u64,
}

impl Outcome {
    fn of(report: &RaftRunReport) -> Outcome {
        Outcome {
            seed: report.options.seed,
            passed: report.passed(),
            failed: report.failed_checkers(),
            first: report.violations.first().map(ToString::to_string).unwrap_or_default(),
            virtual_nanos: report.virtual_nanos,
        }
    }
}

fn sweep(args: &Args, seeds: Range<u64>) -> CmdResult {
    let bar = progress(seeds.end - seeds.start, "seeds");
    let start = Instant::now();
    let mut failed_so_far = 0u64;
    let outcomes = parallel(
        seeds.clone(),
        args.jobs,
        |seed| Outcome::of(&run_seed(&args.options(seed))),
        |o| {
            failed_so_far += u64::from(!o.passed);
            bar.set_message(format!("({failed_so_far} failed)"));
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    let wall = start.elapsed();
    let flags = args.options(0).flags();
    let mut failed = 0;
    for (_, o) in outcomes.iter().filter(|(_, o)| !o.passed) {
        failed += 1;
        println!("seed {}: FAIL ({}): {}", o.seed, o.failed, o.first);
        println!("reproduce: palisade sim raft --seed {}{flags}", o.seed);
    }
    if args.timing {
        let virtual_nanos = outcomes.iter().map(|(_, o)| o.virtual_nanos).sum();
        println!("{} ({} jobs)", speed_line(outcomes.len() as u64, virtual_nanos, wall), args.jobs);
    }
    println!("seeds: {}, failed: {failed}", outcomes.len());
    Ok(exit(failed == 0))
}

fn bench(args: &Args) -> CmdResult {
    let seeds = args.seeds.clone().unwrap_or(DEFAULT_BENCH_SEEDS);
    let nodes = args.nodes.unwrap_or(5);
    println!(
        "bench: seeds {}..{}, {nodes} nodes, a command every {}, {} of faults (--faults {}) \
         then the liveness phase, one thread",
        seeds.start,
        seeds.end,
        humantime::format_duration(args.client_interval),
        humantime::format_duration(args.duration),
        args.faults
    );
    let mut by_election: [(u64, u64, Duration); 2] = [(0, 0, Duration::ZERO); 2];
    let mut failed = Vec::new();
    let start = Instant::now();
    for seed in seeds.clone() {
        let mut options = args.options(seed);
        options.nodes = Some(nodes);
        let one = Instant::now();
        let report = run_seed(&options);
        let slot = &mut by_election[usize::from(report.options.election == ElectionKind::Phi)];
        slot.0 += 1;
        slot.1 += report.virtual_nanos;
        slot.2 += one.elapsed();
        if !report.passed() {
            failed.push(seed);
        }
    }
    let wall = start.elapsed();
    for (kind, (n, virtual_nanos, wall)) in
        [ElectionKind::Fixed, ElectionKind::Phi].iter().zip(by_election)
    {
        if n > 0 {
            println!(
                "  election {:<5} {n:>3} seeds, {}",
                kind.name(),
                speed_line(n, virtual_nanos, wall)
            );
        }
    }
    let total: u64 = by_election.iter().map(|e| e.1).sum();
    println!("all: {}", speed_line(seeds.end - seeds.start, total, wall));
    println!("seeds: {}, failed: {}", seeds.end - seeds.start, failed.len());
    Ok(exit(failed.is_empty()))
}

fn failover(args: &Args) -> CmdResult {
    let seeds = args.seeds.clone().unwrap_or(DEFAULT_BENCH_SEEDS);
    let mut options = FailoverOptions::new(seeds.clone());
    if let Some(nodes) = args.nodes {
        options.nodes = nodes;
    }
    let bar = progress(seeds.end - seeds.start, "seeds");
    let start = Instant::now();
    let runs = parallel(
        seeds,
        args.jobs,
        |seed| {
            let fixed = failover_seed(seed, ElectionKind::Fixed, &options);
            let phi = failover_seed(seed, ElectionKind::Phi, &options);
            (fixed, phi)
        },
        |_| bar.inc(1),
    );
    bar.finish_and_clear();
    let mut report = FailoverReport {
        options: options.clone(),
        fixed: FailoverStats::new(ElectionKind::Fixed),
        phi: FailoverStats::new(ElectionKind::Phi),
    };
    for (_, (fixed, phi)) in &runs {
        report.fixed.add(fixed);
        report.phi.add(phi);
    }
    print!("{report}");
    if args.timing {
        println!("wall {:.2}s ({} jobs)", start.elapsed().as_secs_f64(), args.jobs);
    }
    let failed = report.fixed.failed_runs + report.phi.failed_runs;
    Ok(exit(failed == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_parse_and_must_be_nonempty() {
        assert_eq!(parse_range("0..1000"), Ok(0..1000));
        assert_eq!(parse_range(" 5 .. 7"), Ok(5..7));
        assert!(parse_range("7..7").is_err());
        assert!(parse_range("7").is_err());
        assert!(parse_nodes("0").is_err());
        assert_eq!(parse_nodes("5"), Ok(5));
    }
}
