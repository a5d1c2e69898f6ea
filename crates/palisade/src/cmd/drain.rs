//! `palisade drain NODE`: prepare a node for a planned restart.
//!
//! A process pause or a restart of the leader costs the cluster an election timeout of
//! unavailability; a planned one need not. Drain asks the node to hand its leadership to the
//! most caught-up voter first (`POST /v1/admin/drain`). A follower has nothing to hand over
//! and can be restarted at once (`palisade server` also drains by itself on SIGTERM).

use std::process::ExitCode;

use palisade_client::DrainResult;

use super::CmdResult;
use super::client_args::{EndpointArgs, ask};

/// Arguments of `palisade drain`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node id to drain.
    pub node: u64,
    /// Where the cluster is.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
}

/// Runs `palisade drain`.
pub fn run(args: Args) -> CmdResult {
    match ask(&args.endpoints, async |client| client.drain(args.node).await)?? {
        DrainResult::TransferredTo(to) => println!(
            "node {} is handing its leadership to node {to}; it can be restarted once \
             `palisade status` shows node {to} leading",
            args.node
        ),
        DrainResult::NotLeader(leader) => println!(
            "node {} is not the leader (leader: {}); it can be restarted without a drain",
            args.node,
            leader.map_or("unknown".to_string(), |l| format!("node {l}"))
        ),
    }
    Ok(ExitCode::SUCCESS)
}
