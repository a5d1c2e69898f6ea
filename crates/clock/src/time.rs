//! The two readings of a clock, kept apart by type.
//!
//! A [`MonoInstant`] is a reading of a node's monotonic clock: nanoseconds since an arbitrary
//! origin of that process. It only means something when subtracted from another reading of the
//! same clock, and it is the only reading that may time a lease, a timeout or a TTL.
//!
//! A [`WallTime`] is a reading of the time-of-day clock: nanoseconds since the Unix epoch, as the
//! node believes it. It can jump backwards or forwards (NTP steps, an operator, a VM migration)
//! and may disagree with other nodes by any amount. It is used for display, for hybrid logical
//! clock timestamps and for the uncertainty-interval API, never for safety.
//!
//! [`Now`] carries both readings taken at one moment; every sans-IO input takes one.

use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The bound this project assumes on the rate drift of every node's monotonic clock, in parts per
/// million: during any interval of true length `d`, a node's monotonic clock advances by some
/// amount in `[d * (1 - ρ), d * (1 + ρ)]` with `ρ = DRIFT_BOUND_PPM_DEFAULT / 1_000_000`.
///
/// This is the only assumption about clocks that safety depends on. It is a default: a cluster
/// may configure a larger bound, and every margin derived from it grows with it.
pub const DRIFT_BOUND_PPM_DEFAULT: u32 = 500;

/// Largest drift bound a configuration may name (10%): past that, a "clock" is not a clock.
pub const DRIFT_BOUND_PPM_MAX: u32 = 100_000;

/// A reading of a node's monotonic clock, in nanoseconds since an arbitrary per-process origin.
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MonoInstant(u64);

impl MonoInstant {
    /// The origin of the clock.
    pub const ZERO: MonoInstant = MonoInstant(0);
    /// The largest representable reading; used as "never" by timers.
    pub const MAX: MonoInstant = MonoInstant(u64::MAX);

    /// A reading `nanos` nanoseconds after the origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        MonoInstant(nanos)
    }

    /// Nanoseconds since the origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: MonoInstant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self + d`, saturating at [`MonoInstant::MAX`].
    pub fn saturating_add(self, d: Duration) -> MonoInstant {
        MonoInstant(self.0.saturating_add(duration_nanos(d)))
    }

    /// `self - d`, saturating at [`MonoInstant::ZERO`].
    pub fn saturating_sub(self, d: Duration) -> MonoInstant {
        MonoInstant(self.0.saturating_sub(duration_nanos(d)))
    }
}

impl Add<Duration> for MonoInstant {
    type Output = MonoInstant;
    /// Saturating: a deadline past the end of time is "never".
    fn add(self, d: Duration) -> MonoInstant {
        self.saturating_add(d)
    }
}

impl Sub<MonoInstant> for MonoInstant {
    type Output = Duration;
    /// Saturating at zero, like [`MonoInstant::saturating_duration_since`].
    fn sub(self, earlier: MonoInstant) -> Duration {
        self.saturating_duration_since(earlier)
    }
}

impl fmt::Debug for MonoInstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mono:{}", fmt_nanos(self.0))
    }
}

impl fmt::Display for MonoInstant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A reading of a node's time-of-day clock: nanoseconds since 1970-01-01T00:00:00Z, as the node
/// believes it. Never used to time a lease.
#[derive(Copy, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WallTime(u64);

impl WallTime {
    /// The Unix epoch.
    pub const UNIX_EPOCH: WallTime = WallTime(0);

    /// A reading `nanos` nanoseconds after the Unix epoch.
    pub const fn from_nanos(nanos: u64) -> Self {
        WallTime(nanos)
    }

    /// Nanoseconds since the Unix epoch.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> WallTime {
        WallTime(self.0.saturating_add(duration_nanos(d)))
    }

    /// `self - d`, saturating at the epoch.
    pub fn saturating_sub(self, d: Duration) -> WallTime {
        WallTime(self.0.saturating_sub(duration_nanos(d)))
    }

    /// Signed difference `self - other` in nanoseconds (wall clocks may disagree either way).
    pub fn signed_nanos_since(self, other: WallTime) -> i128 {
        i128::from(self.0) - i128::from(other.0)
    }
}

impl fmt::Debug for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "wall:{}", fmt_nanos(self.0))
    }
}

impl fmt::Display for WallTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Both readings of a node's clock, taken at one moment. Every sans-IO input takes one; protocol
/// code times things with `mono` only and uses `wall` for timestamps it shows or exchanges.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Now {
    /// The monotonic reading: the only one that may time a duration.
    pub mono: MonoInstant,
    /// The time-of-day reading: for display, HLC and offset estimates only.
    pub wall: WallTime,
}

impl Now {
    /// Both readings.
    pub const fn new(mono: MonoInstant, wall: WallTime) -> Self {
        Now { mono, wall }
    }
}

/// A clock with both readings. The server implements it over the OS (`CLOCK_MONOTONIC` and the
/// system time); the simulator and tests use [`crate::ManualClock`] and [`crate::SimClock`].
pub trait Clock {
    /// The monotonic reading.
    fn mono(&self) -> MonoInstant;
    /// The time-of-day reading.
    fn wall(&self) -> WallTime;
    /// Both readings at once.
    fn now(&self) -> Now {
        Now { mono: self.mono(), wall: self.wall() }
    }
}

/// Whole nanoseconds of a duration, saturating at `u64::MAX` (584 years).
pub fn duration_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `d * (1 + ppm / 1e6)`, rounded up: a duration stretched by a drift bound.
pub fn stretch(d: Duration, ppm: u32) -> Duration {
    let n = u128::from(duration_nanos(d));
    let extra = (n * u128::from(ppm)).div_ceil(1_000_000);
    Duration::from_nanos(u64::try_from(n + extra).unwrap_or(u64::MAX))
}

/// `d * (1 - ppm / 1e6)`, rounded down: a duration shrunk by a drift bound.
pub fn shrink(d: Duration, ppm: u32) -> Duration {
    let n = u128::from(duration_nanos(d));
    let less = (n * u128::from(ppm)).div_ceil(1_000_000);
    Duration::from_nanos(u64::try_from(n.saturating_sub(less)).unwrap_or(u64::MAX))
}

/// Nanoseconds added to every error bound this crate computes ([`crate::ClockBound`],
/// [`crate::OffsetEstimate`]). Readings are whole nanoseconds and the bounds are computed with
/// integer division, so each reading and each division can be off by less than one nanosecond;
/// this slack covers the handful of them in any one bound (five at most), so the bounds hold
/// exactly, not just "up to rounding". Negligible against any real round trip.
pub const ROUNDING_SLACK_NANOS: u64 = 8;

/// The most two clocks, each within `ppm` of true time, can move apart while one of them
/// measures `d`: `d * 2ρ / (1 - ρ)` with `ρ = ppm / 1e6`, rounded up.
///
/// Why not `d * 2ρ`: the clock that measured `d` may be slow, so the true elapsed time is up to
/// `d / (1 - ρ)`; during it the other clock may gain up to `2ρ` per true second against it.
/// This is the "drift × age" term of every error bound in this crate.
///
/// # Panics
/// If `ppm` is above [`DRIFT_BOUND_PPM_MAX`].
pub fn divergence(d: Duration, ppm: u32) -> Duration {
    assert!(ppm <= DRIFT_BOUND_PPM_MAX, "drift bound {ppm} ppm above the maximum");
    let n = u128::from(duration_nanos(d));
    let grown = (n * 2 * u128::from(ppm)).div_ceil(1_000_000 - u128::from(ppm));
    Duration::from_nanos(u64::try_from(grown).unwrap_or(u64::MAX))
}

fn fmt_nanos(n: u64) -> String {
    format!("{}.{:09}s", n / 1_000_000_000, n % 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stretch_and_shrink_bracket_the_duration() {
        let d = Duration::from_secs(10);
        assert_eq!(stretch(d, 500), Duration::from_millis(10_005));
        assert_eq!(shrink(d, 500), Duration::from_millis(9_995));
        assert_eq!(stretch(d, 0), d);
    }

    #[test]
    fn divergence_is_twice_the_drift_of_a_slow_clock() {
        // 1 s measured by a clock 10% slow is 1/0.9 s of true time; the other clock may gain
        // 2 * 10% of that: 0.2222.. s, rounded up to the nanosecond.
        assert_eq!(divergence(Duration::from_secs(1), 100_000), Duration::from_nanos(222_222_223));
        assert_eq!(divergence(Duration::from_secs(1), 0), Duration::ZERO);
        assert_eq!(divergence(Duration::from_secs(1000), 500), Duration::from_nanos(1_000_500_251));
    }

    #[test]
    fn mono_arithmetic_saturates() {
        assert_eq!(MonoInstant::MAX + Duration::from_secs(1), MonoInstant::MAX);
        assert_eq!(MonoInstant::ZERO - MonoInstant::from_nanos(5), Duration::ZERO);
    }
}
