//! "What time is it?" answered honestly: an interval, and how far to trust it.
//!
//! A clock reading is a point, but no node knows the time to a point. Spanner's TrueTime and
//! AWS ClockBound answer with an interval `[earliest, latest]` that contains the reference time
//! (here: the cluster's reference clock, say the leader's, or true time) together with a status
//! saying whether the interval can be believed at all. [`ClockBound`] is that answer for one
//! node, built from synchronisations: "at this moment the reference read my clock plus
//! `offset`, give or take `error`" (typically an [`crate::OffsetEstimate`] against the leader).
//!
//! Between synchronisations the error grows: the reference and the local monotonic clock each
//! drift by at most the bound `ρ`, so after an age `a` measured on the monotonic clock they may
//! have moved apart by [`crate::divergence`]`(a, ρ)` (about `2ρa`). The interval is therefore
//! `reference_at_sync + a ± (sync_error + divergence(a) + rounding slack)`. It is projected
//! along the *monotonic* clock, never the time-of-day clock: a step of the local time-of-day
//! clock after the sync cannot move the interval.
//!
//! The status ([`ClockStatus`], as in ClockBound) says what the interval is worth:
//! * `Unknown`: never synchronised; the interval is [`TimeInterval::UNBOUNDED`].
//! * `Synchronized`: the last sync is younger than `free_running_after`; the interval holds.
//! * `FreeRunning`: the last sync is older; the interval still holds (it keeps widening with
//!   age) but the synchronisation source has gone quiet, which an operator wants to know.
//! * `Disrupted`: between two readings, the time-of-day clock moved differently from the
//!   monotonic clock by more than drift allows plus `disrupted_error`. Either the time-of-day
//!   clock was stepped, which alone would be harmless here, or the monotonic clock missed time
//!   (a VM paused and restored, a suspended laptop): then the drift bound, the one assumption
//!   the interval rests on, did not hold, and the interval may be wrong. The two cannot be told
//!   apart locally, so the interval is withdrawn ([`TimeInterval::UNBOUNDED`]) until the next
//!   synchronisation.
//!
//! When the status is `Unknown` or `Disrupted`, [`BoundedNow::error`] is [`UNKNOWN_ERROR`] and
//! the interval contains every representable time: a caller that ignores the status still gets
//! a true (if useless) answer and can never conclude that a time has definitely passed.

use std::cell::Cell;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, check_drift};
use crate::time::{MonoInstant, Now, ROUNDING_SLACK_NANOS, WallTime, divergence, duration_nanos};

/// The error reported when there is no trustworthy bound (status `Unknown` or `Disrupted`):
/// the largest duration a reading can express, with [`TimeInterval::UNBOUNDED`] as interval.
pub const UNKNOWN_ERROR: Duration = Duration::from_nanos(u64::MAX);

/// A closed interval of time-of-day readings, `earliest <= latest`, that contains the
/// reference time.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeInterval {
    /// No earlier than this.
    pub earliest: WallTime,
    /// No later than this.
    pub latest: WallTime,
}

impl TimeInterval {
    /// Every representable time: the answer when nothing is known.
    pub const UNBOUNDED: TimeInterval =
        TimeInterval { earliest: WallTime::UNIX_EPOCH, latest: WallTime::from_nanos(u64::MAX) };

    /// `[earliest, latest]`.
    ///
    /// # Panics
    /// If `earliest > latest`.
    pub fn new(earliest: WallTime, latest: WallTime) -> Self {
        assert!(earliest <= latest, "interval ends before it starts: {earliest} > {latest}");
        TimeInterval { earliest, latest }
    }

    /// `center ± error` (nanoseconds since the epoch, possibly out of range), clamped to the
    /// representable readings.
    pub fn around(center_nanos: i128, error: Duration) -> Self {
        let error = i128::from(duration_nanos(error));
        let clamp = |n: i128| WallTime::from_nanos(u64::try_from(n.max(0)).unwrap_or(u64::MAX));
        TimeInterval::new(clamp(center_nanos - error), clamp(center_nanos + error))
    }

    /// Whether `t` lies in the interval (ends included).
    pub fn contains(&self, t: WallTime) -> bool {
        self.earliest <= t && t <= self.latest
    }

    /// `latest - earliest`.
    pub fn width(&self) -> Duration {
        Duration::from_nanos(self.latest.as_nanos() - self.earliest.as_nanos())
    }

    /// The middle of the interval, rounded down: the best single guess.
    pub fn midpoint(&self) -> WallTime {
        let (a, b) = (self.earliest.as_nanos(), self.latest.as_nanos());
        WallTime::from_nanos(a + (b - a) / 2)
    }

    /// Whether `t` has definitely passed: every time in the interval is after it
    /// (TrueTime's `TT.after(t)`).
    pub fn definitely_after(&self, t: WallTime) -> bool {
        self.earliest > t
    }

    /// Whether `t` has definitely not arrived: every time in the interval is before it
    /// (TrueTime's `TT.before(t)`).
    pub fn definitely_before(&self, t: WallTime) -> bool {
        self.latest < t
    }
}

impl fmt::Display for TimeInterval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}, {}]", self.earliest, self.latest)
    }
}

/// How far the interval of a [`ClockBound`] can be trusted. See the module documentation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClockStatus {
    /// Never synchronised: no bound.
    Unknown,
    /// Synchronised recently (within `free_running_after`): the bound holds.
    Synchronized,
    /// The last synchronisation is old: the bound holds but keeps widening.
    FreeRunning,
    /// A clock disruption was detected since the last synchronisation: no bound.
    Disrupted,
}

impl ClockStatus {
    /// Whether the interval reported with this status contains the reference time under the
    /// drift bound (`Synchronized` or `FreeRunning`).
    pub fn is_bounded(self) -> bool {
        matches!(self, ClockStatus::Synchronized | ClockStatus::FreeRunning)
    }
}

impl fmt::Display for ClockStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ClockStatus::Unknown => "unknown",
            ClockStatus::Synchronized => "synchronized",
            ClockStatus::FreeRunning => "free-running",
            ClockStatus::Disrupted => "disrupted",
        };
        f.write_str(name)
    }
}

/// Tuning of a [`ClockBound`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundConfig {
    /// A synchronisation older than this (on the monotonic clock) turns the status from
    /// `Synchronized` to `FreeRunning`. Must be > 0.
    pub free_running_after: Duration,
    /// Slack, on top of what drift allows, by which the time-of-day and monotonic clocks may
    /// disagree between two readings before the status becomes `Disrupted`. It absorbs the
    /// two readings of a `Now` being taken a moment apart; steps are usually far larger.
    pub disrupted_error: Duration,
}

impl BoundConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.free_running_after.is_zero() {
            return Err(ConfigError::DurationZero { name: "free_running_after" });
        }
        Ok(())
    }
}

impl Default for BoundConfig {
    /// Free-running after 10 s without a sync (heartbeats sync many times a second); a
    /// disagreement of 1 ms beyond drift counts as a disruption.
    fn default() -> Self {
        BoundConfig {
            free_running_after: Duration::from_secs(10),
            disrupted_error: Duration::from_millis(1),
        }
    }
}

/// The answer of [`ClockBound::now`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundedNow {
    /// Contains the reference time if `status.is_bounded()`; [`TimeInterval::UNBOUNDED`]
    /// otherwise.
    pub interval: TimeInterval,
    /// How far to trust the interval.
    pub status: ClockStatus,
    /// Half the width of the interval before clamping: sync error + drift × age + rounding
    /// slack; [`UNKNOWN_ERROR`] without a bound.
    pub error: Duration,
}

/// The latest synchronisation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct SyncPoint {
    /// The local readings when it was taken.
    local: Now,
    /// The reference time then, in nanoseconds since the epoch.
    reference_nanos: i128,
    /// How far the reference may have been from `reference_nanos`.
    error: Duration,
}

/// Tracks one node's uncertainty about the reference time. See the module documentation.
///
/// Call order: [`ClockBound::handle_sync`] whenever a new offset estimate against the reference
/// is available; [`ClockBound::now`] whenever an interval is needed, with a fresh `Now`; both
/// with monotonic readings that never go backwards. `now` takes `&self` but remembers the last
/// reading (in a [`Cell`]) to detect disruptions between calls.
#[derive(Debug, Clone)]
pub struct ClockBound {
    drift_ppm: u32,
    config: BoundConfig,
    sync: Option<SyncPoint>,
    /// The latest reading seen, by monotonic time, for disruption detection.
    last_reading: Cell<Option<Now>>,
    /// Set when a disruption is detected; cleared by the next sync.
    disrupted: Cell<bool>,
}

impl ClockBound {
    /// A tracker for a node whose monotonic clock, like the reference, drifts by at most
    /// `drift_ppm` (normally [`crate::DRIFT_BOUND_PPM_DEFAULT`]). Both drifts are accounted
    /// for: the error grows by about twice `drift_ppm`.
    ///
    /// # Panics
    /// If the configuration is refused by [`ClockBound::try_new`].
    pub fn new(drift_ppm: u32, config: BoundConfig) -> Self {
        match ClockBound::try_new(drift_ppm, config) {
            Ok(bound) => bound,
            Err(e) => panic!("invalid clock bound configuration: {e}"),
        }
    }

    /// Like [`ClockBound::new`], refusing a drift above [`crate::DRIFT_BOUND_PPM_MAX`] or an
    /// invalid [`BoundConfig`].
    pub fn try_new(drift_ppm: u32, config: BoundConfig) -> Result<Self, ConfigError> {
        check_drift(drift_ppm)?;
        config.validate()?;
        Ok(ClockBound {
            drift_ppm,
            config,
            sync: None,
            last_reading: Cell::new(None),
            disrupted: Cell::new(false),
        })
    }

    /// Records a synchronisation: at `now`, the reference read `now.wall +
    /// offset_to_reference_nanos`, give or take `error`. Replaces the previous one and clears a
    /// disruption.
    ///
    /// # Panics
    /// If `now.mono` is earlier than the previous synchronisation's.
    pub fn handle_sync(&mut self, now: Now, offset_to_reference_nanos: i64, error: Duration) {
        if let Some(previous) = self.sync {
            assert!(
                now.mono >= previous.local.mono,
                "sync at {:?} before the previous one at {:?}",
                now.mono,
                previous.local.mono
            );
        }
        let reference_nanos =
            i128::from(now.wall.as_nanos()) + i128::from(offset_to_reference_nanos);
        self.sync = Some(SyncPoint { local: now, reference_nanos, error });
        self.disrupted.set(false);
        self.last_reading.set(Some(now));
    }

    /// Reports a disruption the driver detected by other means (say, the process was
    /// suspended): the status is `Disrupted` until the next synchronisation.
    pub fn handle_disruption(&mut self) {
        self.disrupted.set(true);
    }

    /// The interval containing the reference time at `now`, its status and error.
    pub fn now(&self, now: Now) -> BoundedNow {
        self.check_disruption(now);
        let Some(sync) = self.sync else {
            return unbounded(ClockStatus::Unknown);
        };
        if self.disrupted.get() {
            return unbounded(ClockStatus::Disrupted);
        }
        let age_signed = i128::from(now.mono.as_nanos()) - i128::from(sync.local.mono.as_nanos());
        let age =
            Duration::from_nanos(u64::try_from(age_signed.unsigned_abs()).unwrap_or(u64::MAX));
        let error = sync
            .error
            .saturating_add(divergence(age, self.drift_ppm))
            .saturating_add(Duration::from_nanos(ROUNDING_SLACK_NANOS));
        let status = if age_signed < 0 || age < self.config.free_running_after {
            ClockStatus::Synchronized
        } else {
            ClockStatus::FreeRunning
        };
        let interval = TimeInterval::around(sync.reference_nanos + age_signed, error);
        BoundedNow { interval, status, error }
    }

    /// The monotonic reading of the latest synchronisation, if any.
    pub fn last_sync(&self) -> Option<MonoInstant> {
        self.sync.map(|s| s.local.mono)
    }

    /// The drift bound this tracker assumes, in ppm.
    pub fn drift_ppm(&self) -> u32 {
        self.drift_ppm
    }

    /// The configuration.
    pub fn config(&self) -> &BoundConfig {
        &self.config
    }

    /// Compares `now` with the last reading and with the sync point: a time-of-day clock that
    /// moved differently from the monotonic clock by more than drift and `disrupted_error`
    /// allow marks the bound disrupted. Readings older than the last one are not compared.
    fn check_disruption(&self, now: Now) {
        let Some(sync) = self.sync else {
            return;
        };
        let last = self.last_reading.get().unwrap_or(sync.local);
        if now.mono < last.mono {
            return;
        }
        if self.stepped(last, now) || self.stepped(sync.local, now) {
            self.disrupted.set(true);
        }
        self.last_reading.set(Some(now));
    }

    /// Whether the readings disagree between `from` and `to` (`to.mono >= from.mono`).
    fn stepped(&self, from: Now, to: Now) -> bool {
        assert!(to.mono >= from.mono);
        let elapsed = to.mono - from.mono;
        let wall_moved = to.wall.signed_nanos_since(from.wall);
        let disagreement = (wall_moved - i128::from(duration_nanos(elapsed))).unsigned_abs();
        let allowed = divergence(elapsed, self.drift_ppm)
            .saturating_add(self.config.disrupted_error)
            .saturating_add(Duration::from_nanos(ROUNDING_SLACK_NANOS));
        disagreement > allowed.as_nanos()
    }
}

fn unbounded(status: ClockStatus) -> BoundedNow {
    BoundedNow { interval: TimeInterval::UNBOUNDED, status, error: UNKNOWN_ERROR }
}

#[cfg(test)]
#[path = "bound_tests.rs"]
mod tests;
