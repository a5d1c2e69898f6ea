//! `palisade time`: the cluster's time of day as an interval, TrueTime style.
//!
//! A node does not claim to know the time: it answers `[earliest, latest]`, built from its
//! offset estimates against the leader (error = rtt/2 + drift x age), with a status saying how
//! far the bound can be trusted. Without a bound (never synchronised, or a clock disruption
//! detected) it says so instead of printing a number.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::CmdResult;
use super::client_args::{EXIT_REFUSED, EndpointArgs, ask};

/// Arguments of `palisade time`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the cluster is.
    #[command(flatten)]
    pub endpoints: EndpointArgs,
}

/// Runs `palisade time`.
pub fn run(args: Args) -> CmdResult {
    let reading = ask(&args.endpoints, async |client| client.time().await)??;
    let at = |ms: u64| {
        let time = SystemTime::UNIX_EPOCH + Duration::from_millis(ms);
        humantime::format_rfc3339_millis(time).to_string()
    };
    match (reading.earliest_unix_ms, reading.latest_unix_ms) {
        (Some(earliest), Some(latest)) => {
            println!("earliest {}", at(earliest));
            println!("latest   {}", at(latest));
            let error = reading.error_ms.map_or("?".to_string(), |e| format!("{e:.3}"));
            println!("error    ±{error} ms  ({}, node {})", reading.status, reading.node);
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            println!(
                "node {} has no bound on the time of day (status: {}); it will have one \
                 once it has synchronised with the leader",
                reading.node, reading.status
            );
            Ok(ExitCode::from(EXIT_REFUSED))
        }
    }
}
