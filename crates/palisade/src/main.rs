//! The `palisade` binary: the server, the dev cluster, the CLI, and the fault laboratory.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// mimalloc, for the simulator's many small allocations (see the root Cargo.toml).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// palisade — locks and leases with fencing tokens that stay correct when networks, clocks,
/// processes and disks misbehave; and the laboratory (simulator, chaos harness) that proves it.
#[derive(Debug, Parser)]
#[command(name = "palisade", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the primitives at work: frames, clocks, HLC and the failure detectors.
    Demo(cmd::demo::Args),
    /// Compare the phi-accrual and fixed-timeout failure detectors on seeded synthetic traces.
    DetectorEval(cmd::detector_eval::Args),
    /// The deterministic simulator: seeded runs under every fault, checked for safety and
    /// liveness.
    Sim(cmd::sim::SimArgs),
    /// Run one node of a cluster (config file + flags).
    Server(cmd::server::Args),
    /// Start a local cluster of N nodes as child processes: the quickest way to try palisade.
    Dev(cmd::dev::Args),
    /// Check a recorded history (JSON) for linearizability.
    Check(cmd::check::Args),
    /// Show every member's view: role, term, leader, indices, locks and sessions.
    Status(cmd::status::Args),
    /// Run a command while holding a lock (its fencing token in PALISADE_FENCE_TOKEN).
    Lock(cmd::lock::Args),
    /// The fenced key-value store: get, put, cas, delete (writes take --fence LOCK:TOKEN).
    Kv(cmd::kv::Args),
    /// The cluster's time of day as an uncertainty interval [earliest, latest].
    Time(cmd::time::Args),
    /// Ask a node to hand its leadership away before a planned restart.
    Drain(cmd::drain::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cmd::demo::run(args),
        Command::DetectorEval(args) => cmd::detector_eval::run(args),
        Command::Sim(which) => cmd::sim::run(which),
        Command::Server(args) => cmd::server::run(args),
        Command::Dev(args) => cmd::dev::run(args),
        Command::Check(args) => cmd::check::run(args),
        Command::Status(args) => cmd::status::run(args),
        Command::Lock(args) => cmd::lock::run(args),
        Command::Kv(args) => cmd::kv::run(args),
        Command::Time(args) => cmd::time::run(args),
        Command::Drain(args) => cmd::drain::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
