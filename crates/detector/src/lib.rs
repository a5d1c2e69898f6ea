//! Failure detectors, sans-IO: the phi accrual detector of Hayashibara et al. (2004) as Akka
//! implements it, and a fixed-timeout detector kept as the baseline it must beat.
//!
//! # Why two detectors
//!
//! A process cannot tell a crashed peer from a slow one: all it sees is that a heartbeat has not
//! arrived yet. A fixed timeout turns "not yet" into "dead" at one chosen instant, and whoever
//! chooses it trades detection time against false suspicions blind to the network it runs on.
//! The phi accrual detector ([`PhiAccrual`]) learns the distribution of heartbeat inter-arrival
//! times and reports a suspicion *level*, phi, on a scale that adapts to the observed jitter; the
//! caller picks a threshold on that scale. The fixed-timeout detector ([`FixedTimeout`]) is kept
//! so that every claim about phi can be checked against the simple alternative, on the same
//! traces, with the [`eval`] harness (`palisade detector-eval`).
//!
//! # Interface and call order
//!
//! Both implement [`FailureDetector`]. A driver calls [`FailureDetector::heartbeat`] with the
//! monotonic reading at which a heartbeat from the watched peer arrived, and asks
//! [`FailureDetector::is_available`] (or reads [`FailureDetector::phi`]) whenever it must decide.
//! Time is a [`MonoInstant`] passed in; nothing here reads a clock. Before the first heartbeat a
//! detector has nothing to suspect: it reports the peer available, with phi 0 (as Akka does).
//! A caller that must notice a peer that never speaks calls `heartbeat(now)` when it starts
//! watching. The inherent `suspect_at()` of each detector tells a driver when to wake up: the
//! first instant at which, without a further heartbeat, the verdict turns to "suspected".
//!
//! See [`phi`] for the formula and the meaning of each parameter.

pub mod any;
pub mod error;
pub mod eval;
pub mod fixed;
pub mod phi;
mod window;

use std::time::Duration;

pub use palisade_clock::MonoInstant;

pub use any::{AnyDetector, DetectorConfig};
pub use error::DetectorError;
pub use fixed::{FixedTimeout, FixedTimeoutConfig};
pub use phi::{PhiAccrual, PhiAccrualConfig, phi_of};

/// Largest phi threshold a configuration may name. Under Akka's approximation of the normal
/// distribution the largest finite phi is about 323 (then `exp` underflows and phi becomes
/// infinite); thresholds used in practice lie between 1 and 16.
pub const THRESHOLD_MAX: f64 = 100.0;

/// Largest `max_sample_size` (window of inter-arrival intervals) a configuration may name.
pub const SAMPLE_SIZE_MAX: usize = 10_000;

/// Largest duration any detector parameter may name (a timeout, a pause, an estimate).
pub const DURATION_MAX: Duration = Duration::from_secs(24 * 3600);

/// Longest inter-arrival interval recorded in a phi window; longer ones are recorded as this.
/// It keeps the exact integer sums of the window far from overflow (see `window.rs`); an
/// interval that long is only ever recorded when the acceptable pause is about a day.
pub const SAMPLE_INTERVAL_MAX: Duration = Duration::from_secs(24 * 3600);

/// A failure detector watching one peer through the heartbeats that arrive from it.
///
/// Call order: `heartbeat(now)` for each heartbeat that arrives, in arrival order (a `now` older
/// than the previous heartbeat counts as an interval of zero); `phi(now)` / `is_available(now)`
/// whenever a decision is needed; `reset()` to forget the peer (e.g. when it is replaced).
pub trait FailureDetector {
    /// Records a heartbeat from the peer that arrived at `now`.
    fn heartbeat(&mut self, now: MonoInstant);
    /// The suspicion level at `now`: 0 means no suspicion, larger is more suspicious, and
    /// `f64::INFINITY` means certain. Never NaN, never negative.
    fn phi(&self, now: MonoInstant) -> f64;
    /// Whether the peer is considered alive at `now`.
    fn is_available(&self, now: MonoInstant) -> bool;
    /// Forgets every heartbeat: the detector is as new (available, phi 0).
    fn reset(&mut self);
}
