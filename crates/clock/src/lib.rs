//! Clocks for palisade, sans-IO: this crate never reads the operating system's clocks.
//!
//! Safety in palisade assumes one thing about time: each node's monotonic clock drifts by at
//! most a bounded rate ([`DRIFT_BOUND_PPM_DEFAULT`]). Everything here is built on that and on
//! nothing more:
//!
//! * [`time`]: the two readings, [`MonoInstant`] (durations) and [`WallTime`] (time of day),
//!   kept apart by type, and the [`Clock`] trait that supplies both;
//! * [`manual`] and [`sim`]: clocks for tests ([`ManualClock`]) and for the simulator
//!   ([`SimClock`], a drifting, stepping clock as a function of true time);
//! * [`offset`]: NTP-style offset estimation between two nodes, with an error bound;
//! * [`bound`]: `now() -> [earliest, latest]` plus a status, as in TrueTime and AWS ClockBound;
//! * [`hlc`]: hybrid logical clocks and Lamport clocks, which order events by causality
//!   whatever the physical clocks do.
//!
//! Errors: [`ConfigError`] for refused tracker configurations, [`HlcError`] for refused remote
//! logical timestamps. Everything else (a discarded sample, an untrustworthy bound) is a value.

pub mod bound;
pub mod error;
pub mod hlc;
pub mod manual;
pub mod offset;
pub mod sim;
pub mod time;

pub use bound::{BoundConfig, BoundedNow, ClockBound, ClockStatus, TimeInterval, UNKNOWN_ERROR};
pub use error::ConfigError;
pub use hlc::{HLC_WALL_NANOS_MAX, Hlc, HlcError, HlcTimestamp, LAMPORT_VALUE_MAX, Lamport};
pub use manual::ManualClock;
pub use offset::{
    OFFSET_SAMPLES_MAX, OffsetConfig, OffsetEstimate, OffsetEstimator, READ_SKEW_NANOS_MAX,
    SampleOutcome,
};
pub use sim::{SIM_DRIFT_PPM_MAX, SimClock};
pub use time::{
    Clock, DRIFT_BOUND_PPM_DEFAULT, DRIFT_BOUND_PPM_MAX, MonoInstant, Now, ROUNDING_SLACK_NANOS,
    WallTime, divergence, duration_nanos, shrink, stretch,
};
