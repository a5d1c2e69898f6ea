//! `palisade check history.json`: checks a recorded history for linearizability.
//!
//! The history is a JSON file in the format of `palisade_linearize::json` (Jepsen-style
//! invoke/ok/fail/info events, or one entry per operation; see crates/linearize/README.md,
//! which also shows how to convert a Jepsen EDN history). The command prints the model, the
//! operation counts, the partitions, the search steps and the result; when the history is not
//! linearizable, the explanation names the operation that cannot be placed (process, what it
//! did and saw, times, lines in the file), the longest linearizable prefix and the state after
//! it. The output is a pure function of the file and the budget; `--timing` adds the elapsed
//! time, which is not.
//!
//! Exit codes: 0 linearizable, 1 not linearizable, 2 the file cannot be read or is not a valid
//! history, 3 unknown (the search ran out of its budget).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use palisade_linearize::{
    CACHE_ENTRIES_MAX_DEFAULT, CheckOptions, HISTORY_FILE_BYTES_MAX, SEARCH_STEPS_MAX_DEFAULT,
    check_json, check_size,
};

use super::CmdResult;

/// Arguments of `palisade check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The history file (JSON; see crates/linearize/README.md for the format).
    history: PathBuf,
    /// Also print how long parsing and checking took (wall-clock; varies from run to run).
    #[arg(long)]
    timing: bool,
    /// Search budget: most steps per partition before answering "unknown" (exit code 3).
    #[arg(long, default_value_t = SEARCH_STEPS_MAX_DEFAULT)]
    steps_max: u64,
    /// Memory budget: most memo cache entries per partition before answering "unknown".
    #[arg(long, default_value_t = CACHE_ENTRIES_MAX_DEFAULT)]
    cache_entries_max: usize,
}

/// Reads the file (refusing one past the size limit before reading it) and checks it.
pub fn run(args: Args) -> CmdResult {
    let text = read_history(&args.history)?;
    let options =
        CheckOptions { steps_max: args.steps_max, cache_entries_max: args.cache_entries_max };
    let start = Instant::now();
    let report = check_json(&text, &options)?;
    let elapsed = start.elapsed();
    println!("history: {}", args.history.display());
    print!("{report}");
    if args.timing {
        println!("elapsed: {:.3} ms", elapsed.as_secs_f64() * 1e3);
    }
    Ok(ExitCode::from(report.verdict.exit_code()))
}

fn read_history(path: &PathBuf) -> Result<String, Box<dyn std::error::Error>> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let bytes = file.metadata().map_err(|e| format!("cannot stat {}: {e}", path.display()))?.len();
    check_size(bytes)?;
    let mut text = String::new();
    // Read at most one byte past the limit, in case the file grows while we read it.
    file.take(HISTORY_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(text)
}
