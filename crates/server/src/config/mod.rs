//! The server's configuration: one TOML file per node, overridable by flags, checked at start.
//!
//! Why so much checking: a distributed system is configured in N places that must agree, and
//! a mistake shows up late and far from its cause: a typo in a duration becomes a flapping
//! cluster, a copied file with the wrong `node_id` becomes two nodes with one vote, a data
//! directory mounted on the wrong machine becomes someone else's log. So every field is
//! checked when the node starts, each error names the field and the offending text
//! ([`ConfigError`]), the data directory is tied to its cluster and node
//! ([`ServerConfig::check_data_dir`]), and the settings that must agree across the cluster
//! are hashed into a fingerprint that the peer handshake compares
//! ([`ServerConfig::settings_fingerprint`]).
//!
//! The file format is documented field by field in `docs/examples/node1.toml`. In short:
//! durations are humantime strings ("150ms", "10s"); addresses are `host:port`; the cluster is
//! named either by `cluster = "name"` (hashed with 64-bit FNV-1a, [`cluster_id_from_name`])
//! or by `cluster_id = <integer>`; `peers` lists every node, this one included, and the
//! listen addresses default to this node's own entry.

mod address;
mod error;
mod raw;
#[cfg(test)]
mod tests;
mod validate;
mod write;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use palisade_detector::PhiAccrualConfig;
use palisade_lock::LockConfig;
use palisade_raft::config::phi_detector_default;
use palisade_raft::{ElectionConfig, NodeId};
use serde::{Deserialize, Serialize};

pub use address::{AddressSyntax, HOST_BYTES_MAX, HostPort};
pub use error::ConfigError;
pub use raw::ConfigOverrides;

/// Most peers (voters) a configuration may list: the Raft core's limit.
pub const PEERS_MAX: usize = palisade_raft::config::VOTERS_MAX;
/// Longest cluster name, in bytes.
pub const CLUSTER_NAME_BYTES_MAX: usize = 128;
/// Largest `snapshot_every_entries`.
pub const SNAPSHOT_EVERY_ENTRIES_MAX: u64 = 100_000_000;
/// Longest `request_timeout`.
pub const REQUEST_TIMEOUT_MAX: Duration = Duration::from_secs(600);
/// Longest value of any other duration field: the Raft core's limit.
pub const DURATION_FIELD_MAX: Duration = palisade_raft::config::DURATION_LIMIT;
/// Name of the cluster [`ServerConfig::dev_cluster`] builds.
pub const DEV_CLUSTER_NAME: &str = "palisade-dev";
/// In a dev cluster, node `i`'s HTTP port is its peer port plus this.
pub const DEV_HTTP_PORT_OFFSET: u16 = 100;

/// Defaults of the optional fields.
pub mod defaults {
    use std::time::Duration;

    /// `ttl_min`: the lock service's default.
    pub const TTL_MIN: Duration = palisade_lock::TTL_MIN_DEFAULT;
    /// `ttl_max`: the lock service's default.
    pub const TTL_MAX: Duration = palisade_lock::TTL_MAX_DEFAULT;
    /// `lock_delay`: the lock service's default.
    pub const LOCK_DELAY: Duration = palisade_lock::LOCK_DELAY_DEFAULT;
    /// `checkpoint_interval`: the lock service's default.
    pub const CHECKPOINT_INTERVAL: Duration = palisade_lock::CHECKPOINT_INTERVAL_DEFAULT;
    /// `pause_detect_threshold`: the lock service's default.
    pub const PAUSE_DETECT_THRESHOLD: Duration = palisade_lock::PAUSE_DETECT_THRESHOLD_DEFAULT;
    /// `heartbeat_interval`.
    pub const HEARTBEAT: Duration = Duration::from_millis(100);
    /// `election.min` (kind "fixed").
    pub const ELECTION_MIN: Duration = Duration::from_millis(1000);
    /// `election.max` (kind "fixed").
    pub const ELECTION_MAX: Duration = Duration::from_millis(2000);
    /// `clock_offset_max`.
    pub const CLOCK_OFFSET_MAX: Duration = Duration::from_millis(500);
    /// `drift_bound_ppm`.
    pub const DRIFT_BOUND_PPM: u32 = palisade_clock::DRIFT_BOUND_PPM_DEFAULT;
    /// `snapshot_every_entries`.
    pub const SNAPSHOT_EVERY_ENTRIES: u64 = 10_000;
    /// `request_timeout`.
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
    /// `log_level`.
    pub const LOG_LEVEL: &str = "info";
}

/// One node of the cluster, as every node's configuration lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerConfig {
    /// The node's id; never 0.
    pub id: NodeId,
    /// Where the other nodes reach its peer transport.
    pub peer_addr: HostPort,
    /// Where clients reach its HTTP API and status page.
    pub http_addr: HostPort,
}

impl FromStr for PeerConfig {
    type Err = ConfigError;

    /// Parses the flag form `ID=PEER_ADDR,HTTP_ADDR`, e.g. `2=10.0.0.2:7001,10.0.0.2:8001`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        raw::parse_peer_flag("peers", text)
    }
}

/// How followers decide that the leader is gone (the `[election]` table). The default is
/// `kind = "phi"` with [`ElectionSettings::phi_default`] for the heartbeat interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum ElectionSettings {
    /// `kind = "fixed"`: Raft's randomized timeout drawn from `[min, max)` after each contact.
    Fixed {
        /// Shortest timeout; must exceed the heartbeat interval.
        min: Duration,
        /// Longest timeout (exclusive); must exceed `min`.
        max: Duration,
    },
    /// `kind = "phi"`: a phi accrual detector over the leader's heartbeats.
    Phi {
        /// Phi at which the leader is suspected (8 means a 1e-8 chance it is alive).
        threshold: f64,
        /// Pause tolerated on top of the mean heartbeat interval.
        acceptable_pause: Duration,
        /// Floor on the standard deviation of the intervals.
        min_std_deviation: Duration,
        /// Most random wait between suspicion and campaign.
        jitter_max: Duration,
        /// Fallback timeout since the last leader contact; half of it must exceed the
        /// heartbeat interval.
        timeout_max: Duration,
    },
}

impl ElectionSettings {
    /// The phi election with the core's defaults for `heartbeat`
    /// ([`ElectionConfig::phi_default`]).
    pub fn phi_default(heartbeat: Duration) -> ElectionSettings {
        let ElectionConfig::PhiAccrual { detector, jitter_max, timeout_max } =
            ElectionConfig::phi_default(heartbeat)
        else {
            unreachable!("phi_default is a phi election")
        };
        ElectionSettings::Phi {
            threshold: detector.threshold,
            acceptable_pause: detector.acceptable_heartbeat_pause,
            min_std_deviation: detector.min_std_deviation,
            jitter_max,
            timeout_max,
        }
    }

    /// The core's election configuration; the phi detector keeps the core's sample window
    /// and takes the heartbeat interval as its first estimate.
    pub fn to_raft(&self, heartbeat: Duration) -> ElectionConfig {
        match *self {
            ElectionSettings::Fixed { min, max } => ElectionConfig::RandomizedTimeout { min, max },
            ElectionSettings::Phi {
                threshold,
                acceptable_pause,
                min_std_deviation,
                jitter_max,
                timeout_max,
            } => ElectionConfig::PhiAccrual {
                detector: PhiAccrualConfig {
                    threshold,
                    min_std_deviation,
                    acceptable_heartbeat_pause: acceptable_pause,
                    first_heartbeat_estimate: heartbeat,
                    ..phi_detector_default(heartbeat)
                },
                jitter_max,
                timeout_max,
            },
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("{other:?} is neither \"text\" nor \"json\"")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// A node's whole configuration, typed. Build it with [`ServerConfig::load`] (file and flags)
/// or [`ServerConfig::dev_cluster`]; both return it validated ([`ServerConfig::validate`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// The cluster's id, carried in every handshake and recorded in the data directory.
    pub cluster_id: u64,
    /// The cluster's name, when the id was derived from one.
    pub cluster_name: Option<String>,
    /// This node's id; one of `peers`.
    pub node_id: NodeId,
    /// Every node of the cluster, this one included, in the order written.
    pub peers: Vec<PeerConfig>,
    /// The address the peer transport listens on (default: this node's `peer_addr`).
    pub peer_listen: HostPort,
    /// The address the HTTP API listens on (default: this node's `http_addr`).
    pub http_listen: HostPort,
    /// Where the WAL, snapshots and the `meta` file live.
    pub data_dir: PathBuf,
    /// Shortest session TTL a client may ask for.
    pub ttl_min: Duration,
    /// Longest session TTL a client may ask for.
    pub ttl_max: Duration,
    /// After an expiry released a lock, nobody gets it for this long.
    pub lock_delay: Duration,
    /// How often the leader checkpoints remaining session TTLs; below the election timeout.
    pub checkpoint_interval: Duration,
    /// A gap this long between the leader's own inputs counts as a pause of its process.
    pub pause_detect_threshold: Duration,
    /// How often the leader sends heartbeats.
    pub heartbeat_interval: Duration,
    /// How followers detect a failed leader.
    pub election: ElectionSettings,
    /// A node further than this from a majority's clocks does not lead.
    pub clock_offset_max: Duration,
    /// Assumed bound on monotonic clock rate drift, in parts per million.
    pub drift_bound_ppm: u32,
    /// Take a snapshot and compact the log after this many applied entries.
    pub snapshot_every_entries: u64,
    /// How long the HTTP API waits for a request's outcome before answering "unknown".
    pub request_timeout: Duration,
    /// A tracing `EnvFilter` directive: `info`, `debug`, `palisade_raft=debug,info`, ...
    pub log_level: String,
    /// How log lines are written.
    pub log_format: LogFormat,
}

/// 64-bit FNV-1a: small, stable across Rust versions and platforms (unlike `DefaultHasher`),
/// which is what a cluster id or a fingerprint compared between builds needs.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The cluster id of a cluster named `name`: 64-bit FNV-1a of its UTF-8 bytes.
pub fn cluster_id_from_name(name: &str) -> u64 {
    fnv1a64(name.as_bytes())
}

fn check_cluster_name(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::invalid("cluster", "the cluster name is empty"));
    }
    if name.len() > CLUSTER_NAME_BYTES_MAX {
        let reason = format!("the name is longer than {CLUSTER_NAME_BYTES_MAX} bytes");
        return Err(ConfigError::invalid("cluster", reason));
    }
    Ok(())
}

impl ServerConfig {
    /// Reads the TOML file at `path` (if any), applies `overrides`, fills in defaults,
    /// validates, and checks that the data directory can be created and written (creating
    /// it if needed). A relative `data_dir` in the file is relative to the file's directory.
    pub fn load(
        path: Option<&Path>,
        overrides: &ConfigOverrides,
    ) -> Result<ServerConfig, ConfigError> {
        let mut raw = match path {
            None => raw::RawConfig::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    message: e.to_string(),
                })?
            }
        };
        let file_dir = path.and_then(Path::parent);
        let file_data_dir = overrides.data_dir.is_none();
        raw::apply_overrides(&mut raw, overrides);
        let base = file_dir.filter(|_| file_data_dir);
        let config = raw::into_config(raw, overrides.peers.as_deref(), base)?;
        config.validate()?;
        config.check_data_dir_writable()?;
        Ok(config)
    }

    /// Configurations of an `n`-node cluster on 127.0.0.1 for `palisade dev`: node `i`
    /// (1-based) has peer port `base_port + i - 1`, HTTP port that plus
    /// [`DEV_HTTP_PORT_OFFSET`], and data directory `base_dir/node<i>`; every other field has
    /// its default. Validated, but the directories are not touched.
    pub fn dev_cluster(
        base_dir: &Path,
        n: usize,
        base_port: u16,
    ) -> Result<Vec<ServerConfig>, ConfigError> {
        if n == 0 || n > PEERS_MAX {
            return Err(ConfigError::invalid("nodes", format!("{n} is outside 1..={PEERS_MAX}")));
        }
        let last_http = u32::from(base_port) + n as u32 - 1 + u32::from(DEV_HTTP_PORT_OFFSET);
        if base_port == 0 || last_http > u32::from(u16::MAX) {
            let reason = format!("{base_port}: the {n} nodes' ports do not fit in 1..=65535");
            return Err(ConfigError::invalid("base_port", reason));
        }
        let address = |port: u32| HostPort::parse(&format!("127.0.0.1:{port}"));
        let peers: Vec<PeerConfig> = (0..n as u32)
            .map(|i| PeerConfig {
                id: u64::from(i) + 1,
                peer_addr: address(u32::from(base_port) + i).expect("a valid port"),
                http_addr: address(u32::from(base_port) + i + u32::from(DEV_HTTP_PORT_OFFSET))
                    .expect("a valid port"),
            })
            .collect();
        let configs: Vec<ServerConfig> = peers
            .iter()
            .map(|own| ServerConfig {
                node_id: own.id,
                peer_listen: own.peer_addr.clone(),
                http_listen: own.http_addr.clone(),
                data_dir: base_dir.join(format!("node{}", own.id)),
                peers: peers.clone(),
                ..ServerConfig::defaults_for(cluster_id_from_name(DEV_CLUSTER_NAME), own.id)
            })
            .map(|c| ServerConfig { cluster_name: Some(DEV_CLUSTER_NAME.to_owned()), ..c })
            .collect();
        for config in &configs {
            config.validate()?;
        }
        Ok(configs)
    }

    /// A configuration with every optional field at its default, no peers, and placeholder
    /// addresses: a base for building configurations in code (tests, `dev_cluster`).
    fn defaults_for(cluster_id: u64, node_id: NodeId) -> ServerConfig {
        let placeholder = HostPort::parse("127.0.0.1:1").expect("a valid address");
        ServerConfig {
            cluster_id,
            cluster_name: None,
            node_id,
            peers: Vec::new(),
            peer_listen: placeholder.clone(),
            http_listen: placeholder,
            data_dir: PathBuf::new(),
            ttl_min: defaults::TTL_MIN,
            ttl_max: defaults::TTL_MAX,
            lock_delay: defaults::LOCK_DELAY,
            checkpoint_interval: defaults::CHECKPOINT_INTERVAL,
            pause_detect_threshold: defaults::PAUSE_DETECT_THRESHOLD,
            heartbeat_interval: defaults::HEARTBEAT,
            // The core's default (`palisade_raft::Config::default_for` says why: it fails
            // over in about half the time of the fixed timeout in the simulator).
            election: ElectionSettings::phi_default(defaults::HEARTBEAT),
            clock_offset_max: defaults::CLOCK_OFFSET_MAX,
            drift_bound_ppm: defaults::DRIFT_BOUND_PPM,
            snapshot_every_entries: defaults::SNAPSHOT_EVERY_ENTRIES,
            request_timeout: defaults::REQUEST_TIMEOUT,
            log_level: defaults::LOG_LEVEL.to_owned(),
            log_format: LogFormat::Text,
        }
    }

    /// This node's own entry of `peers` (validation guarantees there is one).
    pub fn own_peer(&self) -> &PeerConfig {
        self.peers.iter().find(|p| p.id == self.node_id).expect("validated: self is in peers")
    }

    /// The shortest election timeout: what `checkpoint_interval` must stay below.
    pub fn election_timeout_min(&self) -> Duration {
        self.election.to_raft(self.heartbeat_interval).timeout_min()
    }

    /// The other nodes' peer addresses, resolved (DNS for names; blocking): the transport's
    /// address book.
    pub fn resolve_peer_addrs(
        &self,
    ) -> Result<std::collections::BTreeMap<NodeId, SocketAddr>, ConfigError> {
        let others = self.peers.iter().filter(|p| p.id != self.node_id);
        others
            .map(|p| Ok((p.id, p.peer_addr.resolve(&format!("peers[id={}].peer_addr", p.id))?)))
            .collect()
    }

    /// The Raft core's configuration, validated by the core.
    pub fn to_raft_config(&self) -> Result<palisade_raft::Config, ConfigError> {
        let mut config = palisade_raft::Config::default_for(self.node_id);
        config.heartbeat_interval = self.heartbeat_interval;
        config.election = self.election.to_raft(self.heartbeat_interval);
        config.clock_offset_max = self.clock_offset_max;
        config.drift_bound_ppm = self.drift_bound_ppm;
        config.validate()?;
        Ok(config)
    }

    /// The lock service's configuration, validated by the lock service (with the election
    /// timeout it must checkpoint faster than).
    pub fn to_lock_config(&self) -> Result<LockConfig, ConfigError> {
        let config = LockConfig {
            ttl_min: self.ttl_min,
            ttl_max: self.ttl_max,
            lock_delay: self.lock_delay,
            checkpoint_interval: self.checkpoint_interval,
            pause_detect_threshold: self.pause_detect_threshold,
            drift_bound_ppm: self.drift_bound_ppm,
            testing_fault: None,
        };
        config.validate_for_election_timeout(self.election_timeout_min())?;
        Ok(config)
    }

    /// The node core's configuration: Raft's and the lock service's, the snapshot interval,
    /// and the core's default queue bounds.
    pub fn to_node_config(&self) -> Result<palisade_node::NodeConfig, ConfigError> {
        let node = palisade_node::NodeConfig {
            raft: self.to_raft_config()?,
            lock: self.to_lock_config()?,
            snapshot_every_entries: self.snapshot_every_entries,
            ..palisade_node::NodeConfig::default_for(self.cluster_id, self.node_id)
        };
        node.validate().map_err(|e| ConfigError::invalid("node", e.to_string()))?;
        Ok(node)
    }

    /// A hash of the settings every node of the cluster must share, compared in the peer
    /// handshake: the TTL limits, the lock-delay and the drift bound of this configuration,
    /// and the message limits of this build (frame size, Raft message limits, lock service
    /// limits). Stable across Rust versions (64-bit FNV-1a over a fixed encoding).
    pub fn settings_fingerprint(&self) -> u64 {
        let raft = palisade_raft::Config::default_for(self.node_id.max(1));
        let fields: [(&str, u64); 12] = [
            ("ttl_min_nanos", duration_nanos(self.ttl_min)),
            ("ttl_max_nanos", duration_nanos(self.ttl_max)),
            ("lock_delay_nanos", duration_nanos(self.lock_delay)),
            ("drift_bound_ppm", u64::from(self.drift_bound_ppm)),
            ("frame_bytes_max", palisade_wire::FRAME_BYTES_MAX as u64),
            ("entries_per_message_max", raft.entries_per_message_max as u64),
            ("bytes_per_message_max", raft.bytes_per_message_max as u64),
            ("command_bytes_max", palisade_lock::COMMAND_BYTES_MAX as u64),
            ("lock_name_bytes_max", palisade_lock::LOCK_NAME_BYTES_MAX as u64),
            ("key_bytes_max", palisade_lock::KEY_BYTES_MAX as u64),
            ("value_bytes_max", palisade_lock::VALUE_BYTES_MAX as u64),
            ("waiters_per_lock_max", palisade_lock::WAITERS_PER_LOCK_MAX as u64),
        ];
        let mut bytes = b"palisade-settings-v1".to_vec();
        for (name, value) in fields {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(b'=');
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        fnv1a64(&bytes)
    }
}

fn duration_nanos(d: Duration) -> u64 {
    palisade_clock::duration_nanos(d)
}
