//! The configuration of a node and every limit of the node layer, in one place.
//!
//! Why here: the node holds client-driven state the lower crates do not — proposals waiting
//! for their entry to apply, clients parked on a long poll, reads waiting for a heartbeat
//! round. Each is a queue a client can grow, so each has a configured bound (within a hard
//! `*_LIMIT`) and a `Retry { Overloaded }` answer past it. Durations a client can ask for (the
//! long-poll bound) have a hard maximum too. Relations between constants are checked at
//! compile time below them.

use std::time::Duration;

use palisade_lock::LockConfig;
use palisade_raft::NodeId;
use palisade_storage::WalOptions;

use crate::error::NodeError;

/// Default [`NodeConfig::snapshot_every_entries`].
pub const SNAPSHOT_EVERY_ENTRIES_DEFAULT: u64 = 10_000;
/// Largest [`NodeConfig::snapshot_every_entries`]: the log between snapshots stays bounded.
pub const SNAPSHOT_EVERY_ENTRIES_LIMIT: u64 = 10_000_000;
/// Default [`NodeConfig::pending_requests_max`].
pub const PENDING_REQUESTS_MAX_DEFAULT: usize = 4096;
/// Largest [`NodeConfig::pending_requests_max`].
pub const PENDING_REQUESTS_LIMIT: usize = 65_536;
/// Default [`NodeConfig::parked_waiters_max`].
pub const PARKED_WAITERS_MAX_DEFAULT: usize = 4096;
/// Largest [`NodeConfig::parked_waiters_max`].
pub const PARKED_WAITERS_LIMIT: usize = 65_536;
/// Default [`NodeConfig::reads_pending_max`].
pub const READS_PENDING_MAX_DEFAULT: usize = 1024;
/// Largest [`NodeConfig::reads_pending_max`] (Raft's own bound on pending ReadIndex reads).
pub const READS_PENDING_LIMIT: usize = palisade_raft::config::READS_PENDING_MAX;
/// Longest long poll a client may ask for (`ClientRequest::wait`).
pub const LONG_POLL_WAIT_MAX: Duration = Duration::from_secs(60);
/// Most observations kept for [`crate::ServerCore::poll_event`]; the oldest are dropped (and
/// counted) when the driver does not drain them.
pub const EVENTS_QUEUED_MAX: usize = 4096;
/// Most `ready()` batches one input may take before the node must be quiescent: a bound on the
/// drive loop that only a bug can reach.
pub const DRIVE_ROUNDS_MAX: usize = 100_000;
/// Most sessions and most locks listed in a [`crate::NodeStatus`] (the counts are complete).
pub const STATUS_ITEMS_MAX: usize = 1000;

const _: () = assert!(PENDING_REQUESTS_MAX_DEFAULT <= PENDING_REQUESTS_LIMIT);
const _: () = assert!(PARKED_WAITERS_MAX_DEFAULT <= PARKED_WAITERS_LIMIT);
const _: () = assert!(READS_PENDING_MAX_DEFAULT <= READS_PENDING_LIMIT);
const _: () = assert!(SNAPSHOT_EVERY_ENTRIES_DEFAULT <= SNAPSHOT_EVERY_ENTRIES_LIMIT);

/// Everything a node is configured with. Every node of a cluster should use the same `lock`
/// configuration (the state machine's copy travels in snapshots).
#[derive(Clone, Debug, PartialEq)]
pub struct NodeConfig {
    /// The cluster this node belongs to; written to and checked against the data directory.
    pub cluster_id: u64,
    /// Raft's configuration; `raft.id` is this node's id.
    pub raft: palisade_raft::Config,
    /// The lock service's configuration.
    pub lock: LockConfig,
    /// Snapshot the state machine and compact the log every this many applied entries.
    pub snapshot_every_entries: u64,
    /// Most client mutations proposed and not yet applied; past it: `Retry { Overloaded }`.
    pub pending_requests_max: usize,
    /// Most clients parked on a long poll; past it: `Retry { Overloaded }`.
    pub parked_waiters_max: usize,
    /// Most linearizable reads waiting for their heartbeat round or for the apply.
    pub reads_pending_max: usize,
    /// Options of the write-ahead log.
    pub wal: WalOptions,
}

impl NodeConfig {
    /// The defaults for node `id` in cluster `cluster_id`: Raft's and the lock service's
    /// defaults, and the `*_DEFAULT` limits above.
    pub fn default_for(cluster_id: u64, id: NodeId) -> NodeConfig {
        NodeConfig {
            cluster_id,
            raft: palisade_raft::Config::default_for(id),
            lock: LockConfig::default(),
            snapshot_every_entries: SNAPSHOT_EVERY_ENTRIES_DEFAULT,
            pending_requests_max: PENDING_REQUESTS_MAX_DEFAULT,
            parked_waiters_max: PARKED_WAITERS_MAX_DEFAULT,
            reads_pending_max: READS_PENDING_MAX_DEFAULT,
            wal: WalOptions::default(),
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.raft.id
    }

    /// Checks every field, Raft's and the lock service's configurations, and the relation
    /// between them (the leader checkpoints sessions more often than an election can finish).
    pub fn validate(&self) -> Result<(), NodeError> {
        self.raft.validate()?;
        let election_min = self.raft.election.timeout_min();
        self.lock.validate_for_election_timeout(election_min)?;
        if self.lock.drift_bound_ppm != self.raft.drift_bound_ppm {
            let (lock, raft) = (self.lock.drift_bound_ppm, self.raft.drift_bound_ppm);
            let reason = format!("{lock} differs from raft.drift_bound_ppm {raft}");
            return Err(invalid("lock.drift_bound_ppm", reason));
        }
        check_count(
            "snapshot_every_entries",
            self.snapshot_every_entries,
            SNAPSHOT_EVERY_ENTRIES_LIMIT,
        )?;
        let limits = [
            ("pending_requests_max", self.pending_requests_max, PENDING_REQUESTS_LIMIT),
            ("parked_waiters_max", self.parked_waiters_max, PARKED_WAITERS_LIMIT),
            ("reads_pending_max", self.reads_pending_max, READS_PENDING_LIMIT),
        ];
        for (field, value, limit) in limits {
            check_count(field, value as u64, limit as u64)?;
        }
        if self.wal.segment_bytes_max == 0
            || self.wal.segment_bytes_max > palisade_storage::SEGMENT_BYTES_MAX
        {
            return Err(invalid("wal.segment_bytes_max", "outside (0, SEGMENT_BYTES_MAX]".into()));
        }
        Ok(())
    }
}

fn invalid(field: &'static str, reason: String) -> NodeError {
    NodeError::Config { field, reason }
}

fn check_count(field: &'static str, value: u64, limit: u64) -> Result<(), NodeError> {
    if value == 0 {
        return Err(invalid(field, "must be positive".into()));
    }
    if value > limit {
        return Err(invalid(field, format!("{value} is above the limit {limit}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_each_bound_is_checked() {
        NodeConfig::default_for(7, 1).validate().unwrap();
        let field_of = |c: NodeConfig| match c.validate() {
            Err(NodeError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        let base = NodeConfig::default_for(7, 1);
        let c = NodeConfig { snapshot_every_entries: 0, ..base.clone() };
        assert_eq!(field_of(c), "snapshot_every_entries");
        let c = NodeConfig { pending_requests_max: PENDING_REQUESTS_LIMIT + 1, ..base.clone() };
        assert_eq!(field_of(c), "pending_requests_max");
        let c = NodeConfig { reads_pending_max: 0, ..base.clone() };
        assert_eq!(field_of(c), "reads_pending_max");
        let mut c = base.clone();
        c.lock.drift_bound_ppm = 100;
        assert_eq!(field_of(c), "lock.drift_bound_ppm");
    }

    #[test]
    fn checkpoints_must_be_more_frequent_than_elections() {
        let mut c = NodeConfig::default_for(7, 1);
        c.raft.election = palisade_raft::ElectionConfig::RandomizedTimeout {
            min: Duration::from_millis(300),
            max: Duration::from_millis(600),
        };
        assert!(matches!(c.validate(), Err(NodeError::Lock(_))), "500 ms checkpoints > 300 ms");
        c.lock.checkpoint_interval = Duration::from_millis(200);
        c.validate().unwrap();
    }
}
