//! The checks a configuration must pass before the node starts.
//!
//! The order is the order in which a person fixes a broken file: identity first (who am I,
//! who are my peers, are the addresses distinct), then each duration on its own, then the
//! relations between them (TTL range, election above heartbeat, checkpoint below election),
//! and last the core crates' own validation of the derived configurations, which catches
//! anything the checks here do not name. The data directory is checked separately because it
//! touches the file system.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::time::Duration;

use palisade_clock::DRIFT_BOUND_PPM_MAX;
use palisade_storage::{DirMeta, FileDisk, WalError, init_or_check_meta};

use super::{
    CLUSTER_NAME_BYTES_MAX, ConfigError, DURATION_FIELD_MAX, ElectionSettings, PEERS_MAX,
    REQUEST_TIMEOUT_MAX, SNAPSHOT_EVERY_ENTRIES_MAX, ServerConfig,
};

/// Name of the file written and removed to prove the data directory is writable.
const WRITE_PROBE_FILE: &str = ".palisade-write-probe";

fn check_duration(field: &str, value: Duration, max: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::ZeroDuration { field: field.to_owned() });
    }
    if value > max {
        return Err(ConfigError::invalid(field, format!("{value:?} is above the maximum {max:?}")));
    }
    Ok(())
}

impl ServerConfig {
    /// Checks every field and the relations between fields, without touching the file
    /// system or the network; the error names the first field that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_identity()?;
        self.validate_addresses()?;
        self.validate_durations()?;
        self.validate_relations()?;
        if self.snapshot_every_entries == 0
            || self.snapshot_every_entries > SNAPSHOT_EVERY_ENTRIES_MAX
        {
            let reason = format!(
                "{} is outside 1..={SNAPSHOT_EVERY_ENTRIES_MAX}",
                self.snapshot_every_entries
            );
            return Err(ConfigError::invalid("snapshot_every_entries", reason));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&self.log_level) {
            let reason = format!("{:?} is not a log filter ({e}); try \"info\"", self.log_level);
            return Err(ConfigError::invalid("log_level", reason));
        }
        self.to_raft_config()?;
        self.to_lock_config()?;
        Ok(())
    }

    fn validate_identity(&self) -> Result<(), ConfigError> {
        if self.cluster_id == 0 {
            return Err(ConfigError::invalid("cluster_id", "0 is reserved"));
        }
        if let Some(name) = &self.cluster_name
            && (name.is_empty() || name.len() > CLUSTER_NAME_BYTES_MAX)
        {
            return Err(ConfigError::invalid("cluster", "the name is empty or too long"));
        }
        if self.node_id == 0 {
            return Err(ConfigError::invalid("node_id", "0 is reserved"));
        }
        if self.peers.is_empty() {
            return Err(ConfigError::invalid("peers", "no peers: list every node, this one too"));
        }
        if self.peers.len() > PEERS_MAX {
            let reason = format!("{} peers, more than the maximum {PEERS_MAX}", self.peers.len());
            return Err(ConfigError::invalid("peers", reason));
        }
        let mut seen = std::collections::BTreeSet::new();
        for peer in &self.peers {
            if peer.id == 0 {
                return Err(ConfigError::invalid("peers", "node id 0 is reserved"));
            }
            if !seen.insert(peer.id) {
                return Err(ConfigError::DuplicateNodeId { id: peer.id });
            }
        }
        if !seen.contains(&self.node_id) {
            let peers = seen.into_iter().collect();
            return Err(ConfigError::UnknownSelf { node_id: self.node_id, peers });
        }
        Ok(())
    }

    /// No address may be named twice: two nodes on one address would receive each other's
    /// traffic (the handshake would refuse it, but only at run time and only by luck).
    fn validate_addresses(&self) -> Result<(), ConfigError> {
        let mut seen: BTreeMap<super::HostPort, String> = BTreeMap::new();
        let mut named =
            |address: &super::HostPort, field: String| match seen.get(&address.normalized()) {
                Some(first) => Err(ConfigError::DuplicateAddress {
                    address: address.to_string(),
                    first: first.clone(),
                    second: field,
                }),
                None => {
                    seen.insert(address.normalized(), field);
                    Ok(())
                }
            };
        for peer in &self.peers {
            named(&peer.peer_addr, format!("peers[id={}].peer_addr", peer.id))?;
            named(&peer.http_addr, format!("peers[id={}].http_addr", peer.id))?;
        }
        if self.peer_listen.normalized() == self.http_listen.normalized() {
            return Err(ConfigError::DuplicateAddress {
                address: self.http_listen.to_string(),
                first: "peer_listen".to_owned(),
                second: "http_listen".to_owned(),
            });
        }
        Ok(())
    }

    fn validate_durations(&self) -> Result<(), ConfigError> {
        let fields = [
            ("ttl_min", self.ttl_min),
            ("ttl_max", self.ttl_max),
            ("lock_delay", self.lock_delay),
            ("checkpoint_interval", self.checkpoint_interval),
            ("pause_detect_threshold", self.pause_detect_threshold),
            ("heartbeat_interval", self.heartbeat_interval),
            ("clock_offset_max", self.clock_offset_max),
        ];
        for (field, value) in fields {
            check_duration(field, value, DURATION_FIELD_MAX)?;
        }
        check_duration("request_timeout", self.request_timeout, REQUEST_TIMEOUT_MAX)?;
        match self.election {
            ElectionSettings::Fixed { min, max } => {
                check_duration("election.min", min, DURATION_FIELD_MAX)?;
                check_duration("election.max", max, DURATION_FIELD_MAX)?;
            }
            ElectionSettings::Phi {
                acceptable_pause,
                min_std_deviation,
                jitter_max,
                timeout_max,
                ..
            } => {
                check_duration(
                    "election.min_std_deviation",
                    min_std_deviation,
                    DURATION_FIELD_MAX,
                )?;
                check_duration("election.timeout_max", timeout_max, DURATION_FIELD_MAX)?;
                if acceptable_pause > DURATION_FIELD_MAX || jitter_max > DURATION_FIELD_MAX {
                    let reason = format!("above the maximum {DURATION_FIELD_MAX:?}");
                    return Err(ConfigError::invalid(
                        "election.acceptable_pause/jitter_max",
                        reason,
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_relations(&self) -> Result<(), ConfigError> {
        if self.ttl_min > self.ttl_max {
            let reason = format!("{:?} is above ttl_max {:?}", self.ttl_min, self.ttl_max);
            return Err(ConfigError::invalid("ttl_min", reason));
        }
        if self.drift_bound_ppm > DRIFT_BOUND_PPM_MAX {
            let reason = format!(
                "{} ppm is above DRIFT_BOUND_PPM_MAX ({DRIFT_BOUND_PPM_MAX} ppm)",
                self.drift_bound_ppm
            );
            return Err(ConfigError::invalid("drift_bound_ppm", reason));
        }
        let heartbeat = self.heartbeat_interval;
        match self.election {
            ElectionSettings::Fixed { min, max } => {
                if min <= heartbeat {
                    let reason =
                        format!("{min:?} must be greater than heartbeat_interval {heartbeat:?}");
                    return Err(ConfigError::invalid("election.min", reason));
                }
                if max <= min {
                    let reason = format!("{max:?} must be greater than election.min {min:?}");
                    return Err(ConfigError::invalid("election.max", reason));
                }
            }
            ElectionSettings::Phi { threshold, jitter_max, timeout_max, .. } => {
                if timeout_max / 2 <= heartbeat {
                    let reason = format!(
                        "{timeout_max:?}: half of it must be greater than heartbeat_interval \
                         {heartbeat:?}"
                    );
                    return Err(ConfigError::invalid("election.timeout_max", reason));
                }
                if jitter_max >= timeout_max {
                    let reason = format!(
                        "{jitter_max:?} must be below election.timeout_max {timeout_max:?}"
                    );
                    return Err(ConfigError::invalid("election.jitter_max", reason));
                }
                let max = palisade_detector::THRESHOLD_MAX;
                if !threshold.is_finite() || threshold <= 0.0 || threshold > max {
                    let reason = format!("{threshold} is outside (0, {max}]");
                    return Err(ConfigError::invalid("election.threshold", reason));
                }
            }
        }
        let election_min = self.election_timeout_min();
        if self.checkpoint_interval >= election_min {
            let reason = format!(
                "{:?} must be below the minimum election timeout {election_min:?}",
                self.checkpoint_interval
            );
            return Err(ConfigError::invalid("checkpoint_interval", reason));
        }
        Ok(())
    }

    /// Creates the data directory if needed and proves it writable by writing, syncing and
    /// removing a probe file.
    pub fn check_data_dir_writable(&self) -> Result<(), ConfigError> {
        let dir = &self.data_dir;
        let not_writable = |e: std::io::Error| ConfigError::DataDirNotWritable {
            path: dir.clone(),
            reason: e.to_string(),
        };
        if dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid("data_dir", "the path is empty"));
        }
        fs::create_dir_all(dir).map_err(not_writable)?;
        let probe = dir.join(WRITE_PROBE_FILE);
        let mut file = fs::File::create(&probe).map_err(not_writable)?;
        file.write_all(b"palisade").and_then(|()| file.sync_all()).map_err(not_writable)?;
        drop(file);
        fs::remove_file(&probe).map_err(not_writable)
    }

    /// Ties the data directory to this cluster and node: on a new directory records them in
    /// its `meta` file; on an existing one refuses to go on if they differ, naming both.
    pub fn check_data_dir(&self) -> Result<(), ConfigError> {
        self.check_data_dir_writable()?;
        let dir = &self.data_dir;
        let failed = |reason: String| ConfigError::DataDir { path: dir.clone(), reason };
        let mut disk = FileDisk::open(dir).map_err(|e| failed(e.to_string()))?;
        let expected = DirMeta::new(self.cluster_id, self.node_id);
        match init_or_check_meta(&mut disk, &expected) {
            Ok(_) => Ok(()),
            Err(WalError::MetaMismatch { found, .. }) => Err(ConfigError::DataDirMismatch {
                path: dir.clone(),
                cluster_id: self.cluster_id,
                node_id: self.node_id,
                found_cluster: found.cluster_id,
                found_node: found.node_id,
            }),
            Err(e) => Err(failed(e.to_string())),
        }
    }
}
