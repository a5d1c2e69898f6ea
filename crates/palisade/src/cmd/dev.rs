//! `palisade dev`: a local cluster in one command.
//!
//! Writes a configuration per node into `--dir`, starts each node as a child process of this
//! executable (`palisade server --config DIR/nodeN.toml`), waits for a leader, prints the
//! endpoints, the status page and a few commands to try, and on Ctrl-C (or SIGTERM) stops the
//! children by their pids (SIGTERM, then SIGKILL after a bound). The data stays in `--dir`;
//! running it again resumes the same cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use palisade_server::dev::{DevOptions, run as run_dev};

use super::CmdResult;

/// Arguments of `palisade dev`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Directory of the configurations, data and logs.
    #[arg(long, default_value = ".palisade-dev")]
    pub dir: PathBuf,
    /// Peer port of node 1; node i listens on BASE+i-1 for peers and BASE+100+i-1 for HTTP.
    #[arg(long, default_value_t = 7001)]
    pub base_port: u16,
}

/// Runs `palisade dev`.
pub fn run(args: Args) -> CmdResult {
    let exe = std::env::current_exe()?;
    run_dev(DevOptions { nodes: args.nodes, dir: args.dir, base_port: args.base_port, exe })?;
    Ok(ExitCode::SUCCESS)
}
