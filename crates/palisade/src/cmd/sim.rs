//! `palisade sim ...`: the deterministic simulator.
//!
//! Without a subcommand, `palisade sim` runs the whole-service fault laboratory
//! (`palisade sim --seed N`, `palisade sim --seeds A..B`, see `sim_lab.rs`); each subcommand
//! runs another simulation (`palisade sim raft ...`). The laboratory's flags and the
//! subcommands exclude each other.

use super::CmdResult;

/// Arguments of `palisade sim`: the laboratory's flags, or one subcommand.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SimArgs {
    /// Another simulation than the whole-service laboratory.
    #[command(subcommand)]
    pub which: Option<SimCmd>,
    /// The laboratory's flags.
    #[command(flatten)]
    pub lab: super::sim_lab::Args,
}

/// The simulations `palisade sim` runs besides the laboratory.
#[derive(Debug, clap::Subcommand)]
pub enum SimCmd {
    /// Raft alone under every fault, with safety and liveness checkers (one seed, a sweep, a
    /// benchmark, or the failover comparison of the two elections).
    Raft(super::sim_raft::Args),
    /// One of the chapter's stories, replayed with a report: figure-8-5, lww-clock-skew.
    Scenario(super::sim_scenario::Args),
}

/// Runs `palisade sim [<which>]`.
pub fn run(args: SimArgs) -> CmdResult {
    match args.which {
        Some(SimCmd::Raft(args)) => super::sim_raft::run(args),
        Some(SimCmd::Scenario(args)) => super::sim_scenario::run(args),
        None => super::sim_lab::run(args.lab),
    }
}
