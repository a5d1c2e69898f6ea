//! Unit tests of [`super::ClockBound`] and [`super::TimeInterval`]; the property test that the
//! interval always contains the reference time is in `tests/bound_props.rs`.

use super::*;
use crate::DRIFT_BOUND_PPM_MAX;

const SEC: u64 = 1_000_000_000;

fn at(mono_nanos: u64, wall_nanos: u64) -> Now {
    Now::new(MonoInstant::from_nanos(mono_nanos), WallTime::from_nanos(wall_nanos))
}

fn config() -> BoundConfig {
    BoundConfig { free_running_after: Duration::from_secs(5), disrupted_error: Duration::ZERO }
}

#[test]
fn unknown_before_any_sync_contains_everything() {
    let bound = ClockBound::new(500, config());
    let b = bound.now(at(SEC, 1_000 * SEC));
    assert_eq!(b.status, ClockStatus::Unknown);
    assert_eq!(b.interval, TimeInterval::UNBOUNDED);
    assert_eq!(b.error, UNKNOWN_ERROR);
    assert!(!b.interval.definitely_after(WallTime::UNIX_EPOCH));
}

#[test]
fn error_grows_with_drift_times_monotonic_age() {
    let mut bound = ClockBound::new(500, config());
    // The reference is 2 ms ahead of the local wall clock, give or take 100 µs.
    bound.handle_sync(at(SEC, 1_000 * SEC), 2_000_000, Duration::from_micros(100));
    let b = bound.now(at(2 * SEC, 1_001 * SEC));
    assert_eq!(b.status, ClockStatus::Synchronized);
    // 1 s of age at 500 ppm each way: 1_000_500_250.1 ns * 2 * 500e-6 → divergence 1_000_501 ns.
    let expected = 100_000 + divergence(Duration::from_secs(1), 500).as_nanos() as u64 + 8;
    assert_eq!(b.error, Duration::from_nanos(expected));
    assert_eq!(b.interval.midpoint(), WallTime::from_nanos(1_001 * SEC + 2_000_000));
    assert_eq!(b.interval.width(), Duration::from_nanos(2 * expected));
    let b = bound.now(at(6 * SEC, 1_005 * SEC));
    assert_eq!(b.status, ClockStatus::FreeRunning, "5 s old: free-running");
    assert!(b.status.is_bounded());
    assert!(b.error > Duration::from_millis(5), "and still widening: {:?}", b.error);
}

#[test]
fn a_wall_step_disrupts_until_the_next_sync() {
    let mut bound = ClockBound::new(500, config());
    bound.handle_sync(at(SEC, 1_000 * SEC), 0, Duration::from_micros(50));
    assert_eq!(bound.now(at(2 * SEC, 1_001 * SEC)).status, ClockStatus::Synchronized);
    // The time-of-day clock jumps back 30 s while the monotonic clock advances 1 s.
    let b = bound.now(at(3 * SEC, 972 * SEC));
    assert_eq!(b.status, ClockStatus::Disrupted);
    assert_eq!(b.interval, TimeInterval::UNBOUNDED);
    assert_eq!(b.error, UNKNOWN_ERROR);
    // Sticky, even though wall and mono agree again between these two readings.
    assert_eq!(bound.now(at(4 * SEC, 973 * SEC)).status, ClockStatus::Disrupted);
    bound.handle_sync(at(5 * SEC, 974 * SEC), 30 * SEC as i64, Duration::from_micros(50));
    let b = bound.now(at(5 * SEC, 974 * SEC));
    assert_eq!(b.status, ClockStatus::Synchronized);
    assert!(b.interval.contains(WallTime::from_nanos(1_004 * SEC)));
}

#[test]
fn a_step_then_a_step_back_between_two_calls_is_still_caught() {
    let mut bound = ClockBound::new(500, config());
    bound.handle_sync(at(SEC, 1_000 * SEC), 0, Duration::ZERO);
    // Forward 10 s: caught against the previous reading and against the sync point.
    assert_eq!(bound.now(at(2 * SEC, 1_011 * SEC)).status, ClockStatus::Disrupted);
    bound.handle_sync(at(3 * SEC, 1_002 * SEC), 0, Duration::ZERO);
    // Creeping: each call within tolerance of the previous one, but far from the sync point.
    let mut bound = ClockBound::new(0, config());
    bound.handle_sync(at(SEC, 1_000 * SEC), 0, Duration::ZERO);
    assert_eq!(bound.now(at(2 * SEC, 1_001 * SEC + 5)).status, ClockStatus::Synchronized);
    assert_eq!(bound.now(at(3 * SEC, 1_002 * SEC + 10)).status, ClockStatus::Disrupted);
}

#[test]
fn the_interval_follows_the_monotonic_clock_not_the_wall() {
    let cfg = BoundConfig { disrupted_error: Duration::from_millis(1), ..config() };
    let mut bound = ClockBound::new(500, cfg);
    bound.handle_sync(at(SEC, 1_000 * SEC), 7, Duration::ZERO);
    let a = bound.now(at(2 * SEC, 1_001 * SEC));
    // A wall reading 0.9 ms off (within disrupted_error) does not move the interval.
    let b = bound.now(at(2 * SEC, 1_001 * SEC + 900_000));
    assert_eq!(b.status, ClockStatus::Synchronized);
    assert_eq!(a.interval, b.interval);
    assert_eq!(a.interval.midpoint(), WallTime::from_nanos(1_001 * SEC + 7));
}

#[test]
fn a_reported_disruption_withdraws_the_bound() {
    let mut bound = ClockBound::new(500, config());
    bound.handle_sync(at(SEC, 1_000 * SEC), 0, Duration::ZERO);
    bound.handle_disruption();
    assert_eq!(bound.now(at(SEC, 1_000 * SEC)).status, ClockStatus::Disrupted);
    assert_eq!(bound.last_sync(), Some(MonoInstant::from_nanos(SEC)));
}

#[test]
fn configurations_are_checked() {
    let too_much = ClockBound::try_new(DRIFT_BOUND_PPM_MAX + 1, config());
    assert_eq!(
        too_much.err(),
        Some(ConfigError::DriftTooLarge { ppm: DRIFT_BOUND_PPM_MAX + 1, max: DRIFT_BOUND_PPM_MAX })
    );
    let zero = BoundConfig { free_running_after: Duration::ZERO, ..config() };
    assert_eq!(
        ClockBound::try_new(500, zero).err(),
        Some(ConfigError::DurationZero { name: "free_running_after" })
    );
    assert!(BoundConfig::default().validate().is_ok());
}

#[test]
fn interval_queries() {
    let i = TimeInterval::new(WallTime::from_nanos(10), WallTime::from_nanos(20));
    assert!(i.contains(WallTime::from_nanos(10)));
    assert!(i.contains(WallTime::from_nanos(20)));
    assert!(!i.contains(WallTime::from_nanos(21)));
    assert_eq!(i.width(), Duration::from_nanos(10));
    assert_eq!(i.midpoint(), WallTime::from_nanos(15));
    assert!(i.definitely_after(WallTime::from_nanos(9)));
    assert!(!i.definitely_after(WallTime::from_nanos(10)));
    assert!(i.definitely_before(WallTime::from_nanos(21)));
    assert!(!i.definitely_before(WallTime::from_nanos(20)));
    assert_eq!(i.to_string(), "[wall:0.000000010s, wall:0.000000020s]");
    let clamped = TimeInterval::around(-5, Duration::from_nanos(10));
    assert_eq!(clamped, TimeInterval::new(WallTime::UNIX_EPOCH, WallTime::from_nanos(5)));
    assert_eq!(TimeInterval::around(0, UNKNOWN_ERROR), TimeInterval::UNBOUNDED);
}

#[test]
#[should_panic(expected = "interval ends before it starts")]
fn an_inverted_interval_is_refused() {
    let _ = TimeInterval::new(WallTime::from_nanos(2), WallTime::from_nanos(1));
}
