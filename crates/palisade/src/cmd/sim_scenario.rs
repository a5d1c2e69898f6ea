//! `palisade sim scenario NAME [--report FILE.html] [--seed N]`: replays one of the chapter's
//! stories in the simulator, prints it step by step (tokens, the rejected write, the lost
//! update) and writes its HTML report. `--list` names the scenarios. All the work is in
//! `palisade_sim::scenario`; this file parses, prints and writes the file.

use std::path::PathBuf;
use std::process::ExitCode;

use palisade_sim::report::render_html;
use palisade_sim::scenario::{DEFAULT_SEED, SCENARIOS, run_scenario};

use super::CmdResult;
use super::sim_common::parse_window;

/// Arguments of `palisade sim scenario`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scenario: figure-8-5 or lww-clock-skew.
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Write the run's report (a self-contained HTML page) to this file.
    #[arg(long, value_name = "FILE.html")]
    report: Option<PathBuf>,
    /// The seed (network delays, election timing).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Draw only this slice of simulated time in the report, e.g. `2s..12s`.
    #[arg(long, value_name = "A..B", value_parser = parse_window)]
    window: Option<(u64, u64)>,
}

/// Runs `palisade sim scenario`.
pub fn run(args: Args) -> CmdResult {
    if args.list {
        for (name, what) in SCENARIOS {
            println!("{name:<16} {what}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = args.name.as_deref().unwrap_or_default();
    let run = run_scenario(name, args.seed)?;
    println!("scenario {} (seed {})", run.name, args.seed);
    for line in &run.story {
        println!("  {line}");
    }
    if let Some(path) = &args.report {
        std::fs::write(path, render_html(&run.timeline, args.window))?;
        println!("report: {}", path.display());
    }
    println!("reproduce: palisade sim scenario {} --seed {}", run.name, args.seed);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use crate::cmd::sim_common::parse_window;

    #[test]
    fn windows_parse_as_nanoseconds() {
        assert_eq!(parse_window("2s..12s"), Ok((2_000_000_000, 12_000_000_000)));
        assert_eq!(parse_window("1500ms..3s"), Ok((1_500_000_000, 3_000_000_000)));
        assert!(parse_window("3s..2s").is_err());
        assert!(parse_window("3s").is_err());
    }
}
