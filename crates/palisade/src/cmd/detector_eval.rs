//! `palisade detector-eval`: replays seeded synthetic heartbeat traces (normal jitter,
//! heavy-tailed network delay, sender pauses) through the phi accrual and fixed-timeout failure
//! detectors, and prints for each detector and threshold the mean detection time after a crash
//! and the false suspicions per hour of live heartbeats.
//!
//! All the work is in `palisade_detector::eval`; this file only parses arguments and prints.
//! The output is a pure function of the arguments: the same arguments print the same bytes.

use std::time::Duration;

use palisade_detector::eval::{EvalConfig, run_eval};

use super::CmdResult;

/// Arguments of `palisade detector-eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Seed of every random draw (printed at the top; rerun with it to reproduce).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Virtual hours of live heartbeats per scenario.
    #[arg(long, default_value_t = 100.0)]
    hours: f64,
    /// Heartbeat interval of the sender (also the phi detectors' first heartbeat estimate).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Crash trials per scenario.
    #[arg(long, default_value_t = 1000)]
    trials: usize,
    /// Phi thresholds, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,3,5,8,10,12")]
    thresholds: Vec<f64>,
    /// Acceptable heartbeat pauses of the phi detectors, comma-separated (3s is Akka's).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0s,3s",
        value_parser = humantime::parse_duration
    )]
    acceptable_pauses: Vec<Duration>,
    /// Minimum standard deviation of the phi detectors (Akka's default: 100ms).
    #[arg(long, default_value = "100ms", value_parser = humantime::parse_duration)]
    min_std_deviation: Duration,
    /// Timeouts of the fixed-timeout detectors, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1500ms,2s,3s,5s",
        value_parser = humantime::parse_duration
    )]
    timeouts: Vec<Duration>,
}

/// Runs the evaluation and prints the parameters and the table on stdout.
pub fn run(args: Args) -> CmdResult {
    let config = EvalConfig {
        seed: args.seed,
        heartbeat_interval: args.interval,
        live_hours: args.hours,
        crash_trials: args.trials,
        phi_thresholds: args.thresholds,
        acceptable_pauses: args.acceptable_pauses,
        min_std_deviation: args.min_std_deviation,
        fixed_timeouts: args.timeouts,
        ..EvalConfig::default()
    };
    let report = run_eval(&config)?;
    println!("palisade detector-eval (reproduce with --seed {})", config.seed);
    print!("{config}");
    println!();
    print!("{report}");
    Ok(std::process::ExitCode::SUCCESS)
}
