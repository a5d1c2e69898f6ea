//! `palisade sim ...`: the deterministic simulator. One subcommand per simulation.

use super::CmdResult;

/// The simulations `palisade sim` runs.
#[derive(Debug, clap::Subcommand)]
pub enum SimCmd {
    /// Raft alone under every fault, with safety and liveness checkers (one seed, a sweep, a
    /// benchmark, or the failover comparison of the two elections).
    Raft(super::sim_raft::Args),
}

/// Runs `palisade sim <which>`.
pub fn run(cmd: SimCmd) -> CmdResult {
    match cmd {
        SimCmd::Raft(args) => super::sim_raft::run(args),
    }
}
