//! One module per subcommand. Each exposes `Args` (clap) and `run(Args) -> CmdResult`.

pub mod check;
pub mod client_args;
pub mod demo;
pub mod detector_eval;
pub mod dev;
pub mod drain;
pub mod kv;
pub mod lock;
pub mod server;
pub mod sim;
pub mod sim_common;
pub mod sim_lab;
pub mod sim_raft;
pub mod sim_scenario;
pub mod status;
pub mod time;

/// What a subcommand returns: an exit code, or an error printed as `error: ...` with exit code 2.
pub type CmdResult = Result<std::process::ExitCode, Box<dyn std::error::Error>>;
