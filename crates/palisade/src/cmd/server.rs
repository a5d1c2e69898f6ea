//! `palisade server`: run one node of a cluster.
//!
//! The configuration comes from a TOML file (`docs/examples/node1.toml` documents every
//! field) and from flags of the same names, which replace the file's values; everything is
//! checked before the node starts, and a refusal names the field. The node runs until SIGTERM
//! or SIGINT, then drains (a leader hands its leadership away first), finishes the requests in
//! flight and exits 0; it exits non-zero with a one-line error if it cannot start (another
//! node's data directory, a corrupt WAL, an address in use) or if its disk fails.

use std::path::PathBuf;
use std::process::ExitCode;

use palisade_server::{ConfigOverrides, ServerConfig};

use super::CmdResult;

/// Arguments of `palisade server`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The node's TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Fields of the configuration, replacing the file's values (boxed: they are many).
    #[command(flatten)]
    pub fields: Box<FieldArgs>,
}

/// The configuration fields as flags (`docs/examples/node1.toml` documents each).
#[derive(Debug, clap::Args)]
pub struct FieldArgs {
    /// The cluster's name (hashed to the cluster id).
    #[arg(long)]
    pub cluster: Option<String>,
    /// The cluster id, as a number (instead of --cluster).
    #[arg(long)]
    pub cluster_id: Option<u64>,
    /// This node's id.
    #[arg(long)]
    pub node_id: Option<u64>,
    /// Every node of the cluster as ID=PEER_ADDR,HTTP_ADDR (repeat; replaces the file's list).
    #[arg(long = "peers", value_name = "ID=PEER_ADDR,HTTP_ADDR")]
    pub peers: Vec<String>,
    /// Where the WAL and snapshots live (relative to the working directory).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the peer transport's listener (default: this node's peer_addr).
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_listen: Option<String>,
    /// Address of the HTTP API's listener (default: this node's http_addr).
    #[arg(long, value_name = "HOST:PORT")]
    pub http_listen: Option<String>,
    /// Shortest session TTL a client may ask for ("5s").
    #[arg(long, value_name = "DURATION")]
    pub ttl_min: Option<String>,
    /// Longest session TTL a client may ask for ("10m").
    #[arg(long, value_name = "DURATION")]
    pub ttl_max: Option<String>,
    /// Lock-delay after an expiry released a lock ("5s").
    #[arg(long, value_name = "DURATION")]
    pub lock_delay: Option<String>,
    /// How often the leader checkpoints remaining session TTLs ("500ms").
    #[arg(long, value_name = "DURATION")]
    pub checkpoint_interval: Option<String>,
    /// How often the leader sends heartbeats ("100ms").
    #[arg(long, value_name = "DURATION")]
    pub heartbeat_interval: Option<String>,
    /// A node further than this from a majority's clocks does not lead ("500ms").
    #[arg(long, value_name = "DURATION")]
    pub clock_offset_max: Option<String>,
    /// Assumed bound on monotonic clock drift, in parts per million.
    #[arg(long, value_name = "PPM")]
    pub drift_bound_ppm: Option<u32>,
    /// Snapshot and compact the log every this many applied entries.
    #[arg(long, value_name = "N")]
    pub snapshot_every_entries: Option<u64>,
    /// How long the HTTP API waits for an outcome ("5s").
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// Log filter: "info", "debug", "palisade_raft=debug,info", ...
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format: "text" or "json".
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
}

impl FieldArgs {
    /// The flags as configuration overrides.
    pub fn overrides(&self) -> ConfigOverrides {
        ConfigOverrides {
            cluster: self.cluster.clone(),
            cluster_id: self.cluster_id,
            node_id: self.node_id,
            peers: (!self.peers.is_empty()).then(|| self.peers.clone()),
            data_dir: self.data_dir.clone(),
            peer_listen: self.peer_listen.clone(),
            http_listen: self.http_listen.clone(),
            ttl_min: self.ttl_min.clone(),
            ttl_max: self.ttl_max.clone(),
            lock_delay: self.lock_delay.clone(),
            checkpoint_interval: self.checkpoint_interval.clone(),
            heartbeat_interval: self.heartbeat_interval.clone(),
            clock_offset_max: self.clock_offset_max.clone(),
            drift_bound_ppm: self.drift_bound_ppm,
            snapshot_every_entries: self.snapshot_every_entries,
            request_timeout: self.request_timeout.clone(),
            log_level: self.log_level.clone(),
            log_format: self.log_format.clone(),
        }
    }
}

/// Runs `palisade server`.
pub fn run(args: Args) -> CmdResult {
    let config = ServerConfig::load(args.config.as_deref(), &args.fields.overrides())?;
    palisade_server::run_blocking(config)?;
    Ok(ExitCode::SUCCESS)
}
