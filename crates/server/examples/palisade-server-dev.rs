//! TEMPORARY stand-in for the `palisade` binary while its `main.rs` is being edited: the same
//! `server` and `dev` subcommands, compiled from the binary's own `cmd/server.rs` and
//! `cmd/dev.rs`. Remove once `palisade server` / `palisade dev` are registered there.
//!
//! `cargo run -p palisade-server --example palisade-server-dev -- dev`

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// What a subcommand returns (as in the binary's `cmd/mod.rs`).
type CmdResult = Result<std::process::ExitCode, Box<dyn std::error::Error>>;

#[path = "../../palisade/src/cmd/dev.rs"]
mod dev;
#[path = "../../palisade/src/cmd/server.rs"]
mod server;

#[derive(Debug, Parser)]
#[command(name = "palisade")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one node.
    Server(server::Args),
    /// Run a local cluster.
    Dev(dev::Args),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Server(args) => server::run(args),
        Command::Dev(args) => dev::run(args),
    };
    result.unwrap_or_else(|err| {
        eprintln!("error: {err:#}");
        ExitCode::from(2)
    })
}
