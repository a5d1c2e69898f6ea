//! Every limit of the lock service, in one place, and the configuration that chooses within them.
//!
//! Why a file of constants: anything a client can make bigger — a name, a value, the number of
//! sessions, of locks a session holds, of waiters in a queue — is a way to exhaust a replica's
//! memory or to make one log entry take seconds to apply. TigerBeetle's rule is that every such
//! quantity has a named bound and a typed error past it; here the bound is a `*_MAX` constant
//! (unit last), the error is [`LimitExceeded`] naming the [`Limit`], and the leader checks it
//! before proposing *and* the state machine checks it again when applying (so a buggy or old
//! leader cannot smuggle an oversized entry into the replicated state).
//!
//! Durations that are a matter of taste rather than of memory (the TTL range a cluster allows,
//! the lock-delay, how often the leader checkpoints, how long a gap counts as a pause of the
//! leader's own process) are fields of [`LockConfig`], validated against hard bounds here.
//! Relations between constants are checked at compile time at the bottom of the constants.

use std::fmt;
use std::time::Duration;

use palisade_clock::{DRIFT_BOUND_PPM_DEFAULT, DRIFT_BOUND_PPM_MAX, shrink};
use serde::{Deserialize, Serialize};

use crate::error::LockError;

/// Shortest session TTL any configuration may allow.
pub const TTL_MIN: Duration = Duration::from_secs(1);
/// Longest session TTL any configuration may allow. Long TTLs are cheap for the server but
/// every leader restart may extend an unrenewed session by up to the restart time, so a cluster
/// that wants dead clients' locks back within minutes should not allow hours.
pub const TTL_MAX: Duration = Duration::from_secs(3600);
/// Default lower end of the TTL range a cluster accepts.
pub const TTL_MIN_DEFAULT: Duration = Duration::from_secs(5);
/// Default upper end of the TTL range a cluster accepts.
pub const TTL_MAX_DEFAULT: Duration = Duration::from_secs(600);

/// Longest lock name, in bytes of UTF-8.
pub const LOCK_NAME_BYTES_MAX: usize = 256;
/// Longest key of the fenced key-value store, in bytes of UTF-8.
pub const KEY_BYTES_MAX: usize = 512;
/// Largest value of the fenced key-value store.
pub const VALUE_BYTES_MAX: usize = 64 * 1024;
/// Most locks one session may hold or wait for at a time (held + queued).
pub const LOCKS_PER_SESSION_MAX: usize = 64;
/// Most sessions queued behind one lock.
pub const WAITERS_PER_LOCK_MAX: usize = 1024;
/// Most open sessions in the cluster.
pub const SESSIONS_MAX: usize = 10_000;
/// Most lock records (held, waited for, or in lock-delay) in the cluster.
pub const LOCKS_MAX: usize = 100_000;
/// Most keys in the fenced key-value store.
pub const KEYS_MAX: usize = 100_000;
/// Most bytes (keys + values) in the fenced key-value store: bounds snapshot size.
pub const KV_BYTES_MAX: usize = 256 * 1024 * 1024;
/// Most sessions one `Checkpoint` entry carries; the tracker splits larger checkpoints.
pub const CHECKPOINT_SESSIONS_MAX: usize = 1024;
/// Largest encoded [`crate::Command`].
pub const COMMAND_BYTES_MAX: usize = 256 * 1024;
/// Largest encoded snapshot [`crate::LockStateMachine::restore`] accepts.
pub const SNAPSHOT_BYTES_MAX: usize = 1024 * 1024 * 1024;

/// Default lock-delay: after an expiry released a lock, nobody gets it for this long (Chubby).
pub const LOCK_DELAY_DEFAULT: Duration = Duration::from_secs(5);
/// Longest lock-delay a configuration may ask for (Chubby caps it at one minute too).
pub const LOCK_DELAY_MAX: Duration = Duration::from_secs(60);

/// Default interval between two session checkpoints of the leader. Must be shorter than the
/// minimum election timeout (see [`LockConfig::validate_for_election_timeout`]).
pub const CHECKPOINT_INTERVAL_DEFAULT: Duration = Duration::from_millis(500);
/// Shortest checkpoint interval (each checkpoint is a log entry).
pub const CHECKPOINT_INTERVAL_MIN: Duration = Duration::from_millis(10);
/// Longest checkpoint interval.
pub const CHECKPOINT_INTERVAL_MAX: Duration = Duration::from_secs(30);

/// Default gap between two inputs of the leader's tracker that counts as a pause of the
/// leader's own process (GC, VM migration, SIGSTOP).
pub const PAUSE_DETECT_THRESHOLD_DEFAULT: Duration = Duration::from_secs(1);
/// Shortest pause-detection threshold (the tracker asks to be woken every half of it).
pub const PAUSE_DETECT_THRESHOLD_MIN: Duration = Duration::from_millis(20);
/// Longest pause-detection threshold.
pub const PAUSE_DETECT_THRESHOLD_MAX: Duration = Duration::from_secs(60);

/// What the client's local lease gives up at its end, on top of the drift margin: covers
/// rounding and the time between reading the clock and acting on the answer.
pub const LEASE_SAFETY_MARGIN: Duration = Duration::from_millis(10);
/// A client sends a keepalive every `ttl / KEEPALIVE_INTERVAL_DIVISOR`.
pub const KEEPALIVE_INTERVAL_DIVISOR: u32 = 3;
/// After a failed keepalive a client retries after `ttl / KEEPALIVE_RETRY_DIVISOR`.
pub const KEEPALIVE_RETRY_DIVISOR: u32 = 10;
/// A client lease is in jeopardy once less than `ttl / JEOPARDY_THRESHOLD_DIVISOR` of it remains.
pub const JEOPARDY_THRESHOLD_DIVISOR: u32 = 2;
/// Most keepalives a client lease tracks as in flight; older ones are forgotten (their acks
/// then cannot extend the lease, which is only conservative).
pub const KEEPALIVES_IN_FLIGHT_MAX: usize = 8;

/// Longest resource name a [`crate::FenceGuard`] accepts, in bytes.
pub const FENCE_RESOURCE_BYTES_MAX: usize = 1024;
/// Most resources one [`crate::FenceGuard`] tracks.
pub const FENCE_RESOURCES_MAX: usize = 1_000_000;

const _: () = assert!(TTL_MIN.as_nanos() <= TTL_MIN_DEFAULT.as_nanos());
const _: () = assert!(TTL_MIN_DEFAULT.as_nanos() <= TTL_MAX_DEFAULT.as_nanos());
const _: () = assert!(TTL_MAX_DEFAULT.as_nanos() <= TTL_MAX.as_nanos());
const _: () = assert!(LOCK_DELAY_DEFAULT.as_nanos() <= LOCK_DELAY_MAX.as_nanos());
const _: () = assert!(LEASE_SAFETY_MARGIN.as_nanos() * 10 < TTL_MIN.as_nanos());
const _: () = assert!(CHECKPOINT_INTERVAL_MIN.as_nanos() <= CHECKPOINT_INTERVAL_DEFAULT.as_nanos());
const _: () = assert!(CHECKPOINT_INTERVAL_DEFAULT.as_nanos() <= CHECKPOINT_INTERVAL_MAX.as_nanos());
const _: () =
    assert!(PAUSE_DETECT_THRESHOLD_MIN.as_nanos() <= PAUSE_DETECT_THRESHOLD_DEFAULT.as_nanos());
const _: () = assert!(JEOPARDY_THRESHOLD_DIVISOR < KEEPALIVE_INTERVAL_DIVISOR);
const _: () = assert!(KEEPALIVE_INTERVAL_DIVISOR < KEEPALIVE_RETRY_DIVISOR);
// A Cas carries a key, an expected value and a new value; a checkpoint ~24 bytes per session.
const _: () = assert!(COMMAND_BYTES_MAX > 2 * VALUE_BYTES_MAX + KEY_BYTES_MAX + 2 * 1024);
const _: () = assert!(COMMAND_BYTES_MAX > CHECKPOINT_SESSIONS_MAX * 64);
const _: () = assert!(LOCKS_MAX >= LOCKS_PER_SESSION_MAX);
const _: () = assert!(KV_BYTES_MAX >= VALUE_BYTES_MAX + KEY_BYTES_MAX);

/// Names one limit, for [`LimitExceeded`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Limit {
    /// A requested TTL below the configured `ttl_min`.
    TtlMin,
    /// A requested TTL above the configured `ttl_max`.
    TtlMax,
    /// [`LOCK_NAME_BYTES_MAX`].
    LockNameBytes,
    /// [`KEY_BYTES_MAX`].
    KeyBytes,
    /// [`VALUE_BYTES_MAX`].
    ValueBytes,
    /// [`LOCKS_PER_SESSION_MAX`].
    LocksPerSession,
    /// [`WAITERS_PER_LOCK_MAX`].
    WaitersPerLock,
    /// [`SESSIONS_MAX`].
    Sessions,
    /// [`LOCKS_MAX`].
    Locks,
    /// [`KEYS_MAX`].
    Keys,
    /// [`KV_BYTES_MAX`].
    KvBytes,
    /// [`CHECKPOINT_SESSIONS_MAX`].
    CheckpointSessions,
}

impl Limit {
    /// The constant's name, as written in this module (or the config field for TTLs).
    pub fn name(self) -> &'static str {
        match self {
            Limit::TtlMin => "ttl_min",
            Limit::TtlMax => "ttl_max",
            Limit::LockNameBytes => "LOCK_NAME_BYTES_MAX",
            Limit::KeyBytes => "KEY_BYTES_MAX",
            Limit::ValueBytes => "VALUE_BYTES_MAX",
            Limit::LocksPerSession => "LOCKS_PER_SESSION_MAX",
            Limit::WaitersPerLock => "WAITERS_PER_LOCK_MAX",
            Limit::Sessions => "SESSIONS_MAX",
            Limit::Locks => "LOCKS_MAX",
            Limit::Keys => "KEYS_MAX",
            Limit::KvBytes => "KV_BYTES_MAX",
            Limit::CheckpointSessions => "CHECKPOINT_SESSIONS_MAX",
        }
    }
}

/// A request went past a limit. For TTLs `value` and `bound` are nanoseconds; for sizes bytes;
/// for counts the count the request would reach and the largest allowed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitExceeded {
    /// Which limit.
    pub limit: Limit,
    /// The value the request asked for (or would have reached).
    pub value: u64,
    /// The bound it crossed (a minimum for [`Limit::TtlMin`], a maximum otherwise).
    pub bound: u64,
}

impl LimitExceeded {
    /// A limit crossed by `value`; sizes given as `usize` are converted losslessly on 64-bit.
    pub fn new(limit: Limit, value: u64, bound: u64) -> Self {
        LimitExceeded { limit, value, bound }
    }

    /// `Err` when `value > max`.
    pub fn check_max(limit: Limit, value: usize, max: usize) -> Result<(), LimitExceeded> {
        if value > max {
            Err(LimitExceeded::new(limit, as_u64(value), as_u64(max)))
        } else {
            Ok(())
        }
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Limit::TtlMin => write!(
                f,
                "ttl {:?} is below the cluster's ttl_min {:?}",
                Duration::from_nanos(self.value),
                Duration::from_nanos(self.bound)
            ),
            Limit::TtlMax => write!(
                f,
                "ttl {:?} is above the cluster's ttl_max {:?}",
                Duration::from_nanos(self.value),
                Duration::from_nanos(self.bound)
            ),
            _ => write!(f, "{} exceeded: {} > {}", self.limit.name(), self.value, self.bound),
        }
    }
}

/// `usize` to `u64` (lossless on every platform palisade supports).
pub(crate) fn as_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Deliberately broken variants of the lock service, **for tests only**: each removes one
/// safety mechanism so tests and the simulator can show that the mechanism matters.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LockTestingFault {
    /// The fenced kv store accepts any fencing token (and writes without a fence): the lost
    /// update of figure 8-4 becomes possible.
    FenceCheckOff,
    /// The leader expires sessions in its own local state, without a log entry
    /// ([`crate::LockStateMachine::apply_unlogged_expiry`]) and without waiting until it is
    /// ready: a deposed or paused leader can release locks the rest of the cluster still
    /// considers held.
    ExpireWithoutLog,
}

/// The lock service's configuration. Every replica must use the same one (it is part of the
/// snapshot, so a restored replica carries it along).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockConfig {
    /// Shortest TTL a session may ask for; in `[TTL_MIN, ttl_max]`.
    pub ttl_min: Duration,
    /// Longest TTL a session may ask for; in `[ttl_min, TTL_MAX]`.
    pub ttl_max: Duration,
    /// Wait after an expiry released a lock before it is granted again; in
    /// `(0, LOCK_DELAY_MAX]`.
    pub lock_delay: Duration,
    /// Interval between two session checkpoints of the leader; in
    /// `[CHECKPOINT_INTERVAL_MIN, CHECKPOINT_INTERVAL_MAX]`, shorter than the pause threshold
    /// and than the minimum election timeout.
    pub checkpoint_interval: Duration,
    /// A gap between consecutive inputs of the leader's tracker longer than this is a pause of
    /// the leader's own process; in `[PAUSE_DETECT_THRESHOLD_MIN, PAUSE_DETECT_THRESHOLD_MAX]`.
    pub pause_detect_threshold: Duration,
    /// The assumed bound on monotonic clock rate drift, parts per million; at most
    /// [`DRIFT_BOUND_PPM_MAX`].
    pub drift_bound_ppm: u32,
    /// A deliberately broken variant, for tests only. `None` in production.
    pub testing_fault: Option<LockTestingFault>,
}

impl Default for LockConfig {
    fn default() -> Self {
        LockConfig {
            ttl_min: TTL_MIN_DEFAULT,
            ttl_max: TTL_MAX_DEFAULT,
            lock_delay: LOCK_DELAY_DEFAULT,
            checkpoint_interval: CHECKPOINT_INTERVAL_DEFAULT,
            pause_detect_threshold: PAUSE_DETECT_THRESHOLD_DEFAULT,
            drift_bound_ppm: DRIFT_BOUND_PPM_DEFAULT,
            testing_fault: None,
        }
    }
}

fn invalid(field: &'static str, reason: String) -> LockError {
    LockError::InvalidConfig { field, reason }
}

fn check_range(
    field: &'static str,
    v: Duration,
    lo: Duration,
    hi: Duration,
) -> Result<(), LockError> {
    if v < lo || v > hi {
        return Err(invalid(field, format!("{v:?} is outside [{lo:?}, {hi:?}]")));
    }
    Ok(())
}

impl LockConfig {
    /// Checks every field against its bounds and the relations between fields.
    pub fn validate(&self) -> Result<(), LockError> {
        check_range("ttl_min", self.ttl_min, TTL_MIN, TTL_MAX)?;
        check_range("ttl_max", self.ttl_max, self.ttl_min, TTL_MAX)?;
        if self.lock_delay.is_zero() {
            return Err(invalid("lock_delay", "must be positive".into()));
        }
        check_range("lock_delay", self.lock_delay, Duration::from_nanos(1), LOCK_DELAY_MAX)?;
        check_range(
            "checkpoint_interval",
            self.checkpoint_interval,
            CHECKPOINT_INTERVAL_MIN,
            CHECKPOINT_INTERVAL_MAX,
        )?;
        check_range(
            "pause_detect_threshold",
            self.pause_detect_threshold,
            PAUSE_DETECT_THRESHOLD_MIN,
            PAUSE_DETECT_THRESHOLD_MAX,
        )?;
        if self.checkpoint_interval >= self.pause_detect_threshold {
            return Err(invalid(
                "checkpoint_interval",
                format!(
                    "{:?} must be shorter than pause_detect_threshold {:?}",
                    self.checkpoint_interval, self.pause_detect_threshold
                ),
            ));
        }
        if self.drift_bound_ppm > DRIFT_BOUND_PPM_MAX {
            return Err(invalid(
                "drift_bound_ppm",
                format!("{} > DRIFT_BOUND_PPM_MAX {}", self.drift_bound_ppm, DRIFT_BOUND_PPM_MAX),
            ));
        }
        // The client's lease must be positive for the shortest TTL after both margins.
        if shrink(self.ttl_min, self.drift_bound_ppm.saturating_mul(2)) <= LEASE_SAFETY_MARGIN * 2 {
            return Err(invalid(
                "ttl_min",
                "no client lease is left after the drift margin".into(),
            ));
        }
        Ok(())
    }

    /// [`LockConfig::validate`], plus the relation with Raft's election timing that bounds
    /// how much a leader change can extend an unrenewed session (see the tracker's module
    /// doc): the leader checkpoints more often than an election can complete.
    pub fn validate_for_election_timeout(
        &self,
        election_timeout_min: Duration,
    ) -> Result<(), LockError> {
        self.validate()?;
        if self.checkpoint_interval >= election_timeout_min {
            return Err(invalid(
                "checkpoint_interval",
                format!(
                    "{:?} must be shorter than the minimum election timeout {:?}",
                    self.checkpoint_interval, election_timeout_min
                ),
            ));
        }
        Ok(())
    }

    /// Whether `fault` is the configured testing fault.
    pub fn has_fault(&self, fault: LockTestingFault) -> bool {
        self.testing_fault == Some(fault)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        LockConfig::default().validate().unwrap();
        LockConfig::default().validate_for_election_timeout(Duration::from_secs(1)).unwrap();
    }

    #[test]
    fn each_bound_is_checked() {
        let bad: Vec<(&str, LockConfig)> = vec![
            ("ttl_min", LockConfig { ttl_min: Duration::from_millis(10), ..Default::default() }),
            ("ttl_max", LockConfig { ttl_max: TTL_MAX * 2, ..Default::default() }),
            ("ttl_max", LockConfig { ttl_max: Duration::from_secs(2), ..Default::default() }),
            ("lock_delay", LockConfig { lock_delay: Duration::ZERO, ..Default::default() }),
            ("lock_delay", LockConfig { lock_delay: LOCK_DELAY_MAX * 2, ..Default::default() }),
            (
                "checkpoint_interval",
                LockConfig { checkpoint_interval: Duration::from_secs(2), ..Default::default() },
            ),
            (
                "pause_detect_threshold",
                LockConfig { pause_detect_threshold: Duration::ZERO, ..Default::default() },
            ),
            ("drift_bound_ppm", LockConfig { drift_bound_ppm: 200_000, ..Default::default() }),
        ];
        for (field, c) in bad {
            match c.validate() {
                Err(LockError::InvalidConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected InvalidConfig, got {other:?}"),
            }
        }
        let c = LockConfig::default();
        assert!(c.validate_for_election_timeout(Duration::from_millis(400)).is_err());
    }

    #[test]
    fn limit_errors_say_which_limit() {
        let e = LimitExceeded::check_max(Limit::KeyBytes, 600, KEY_BYTES_MAX).unwrap_err();
        assert_eq!(e.to_string(), "KEY_BYTES_MAX exceeded: 600 > 512");
        assert!(LimitExceeded::check_max(Limit::KeyBytes, 512, KEY_BYTES_MAX).is_ok());
    }
}
