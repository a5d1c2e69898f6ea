//! Unit tests of [`super::OffsetEstimator`]; the property test that the true offset always lies
//! within the bound is in `tests/offset_props.rs`.

use super::*;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;
/// Local time-of-day minus monotonic reading in these tests.
const LOCAL_WALL_BASE: u64 = 1_700_000_000 * SEC;

fn local(mono_nanos: u64) -> Now {
    Now::new(
        MonoInstant::from_nanos(mono_nanos),
        WallTime::from_nanos(LOCAL_WALL_BASE + mono_nanos),
    )
}

fn wall(nanos: u64) -> WallTime {
    WallTime::from_nanos(nanos)
}

fn estimator() -> OffsetEstimator {
    OffsetEstimator::new(OffsetConfig {
        window: Duration::from_secs(10),
        samples_max: 4,
        drift_ppm: 500,
    })
}

/// An exchange starting at local mono `t1`, with a remote `offset` ahead, legs `d1`, `d2` and a
/// remote hold of `hold` (all in ns; perfect clocks).
fn exchange(
    e: &mut OffsetEstimator,
    t1: u64,
    offset: u64,
    d1: u64,
    hold: u64,
    d2: u64,
) -> SampleOutcome {
    let t2 = LOCAL_WALL_BASE + t1 + d1 + offset;
    let t3 = t2 + hold;
    e.handle_sample(local(t1), wall(t2), wall(t3), local(t1 + d1 + hold + d2))
}

#[test]
fn symmetric_delays_give_the_exact_offset() {
    let mut e = estimator();
    assert_eq!(exchange(&mut e, SEC, 5 * MS, MS, MS / 2, MS), SampleOutcome::Kept);
    let now = MonoInstant::from_nanos(SEC + 2 * MS + MS / 2);
    let est = e.estimate(now).expect("one sample");
    assert_eq!(est.offset_nanos, 5_000_000);
    assert_eq!(est.rtt, Duration::from_millis(2));
    assert_eq!(est.age, Duration::ZERO);
    let drift = divergence(Duration::from_micros(2_500), 500);
    assert_eq!(est.error, Duration::from_millis(1) + drift + Duration::from_nanos(8));
}

#[test]
fn asymmetric_delays_stay_within_half_the_rtt() {
    let mut e = estimator();
    // All the delay on the way out: the estimate is off by d1/2 = 1.5 ms, and says so.
    exchange(&mut e, SEC, 5 * MS, 3 * MS, 0, 0);
    let est = e.estimate(MonoInstant::from_nanos(SEC + 3 * MS)).expect("one sample");
    assert_eq!(est.offset_nanos, 6_500_000);
    assert!(est.error >= Duration::from_micros(1_500));
    let (low, high) = est.bounds_nanos();
    assert!(low <= 5_000_000 && 5_000_000 <= high);
}

#[test]
fn the_sample_with_the_smallest_error_now_wins() {
    let mut e = estimator();
    exchange(&mut e, SEC, 5 * MS, 4 * MS, 0, 4 * MS); // rtt 8 ms
    exchange(&mut e, 2_500 * MS, 5 * MS, MS, 0, MS); // rtt 2 ms
    exchange(&mut e, 3 * SEC, 5 * MS, 2 * MS, 0, 2 * MS); // rtt 4 ms
    let est = e.estimate(MonoInstant::from_nanos(3 * SEC + 4 * MS)).expect("samples");
    assert_eq!(est.rtt, Duration::from_millis(2), "0.5 s of age costs ~0.5 ms: still the best");
    assert_eq!(est.age, Duration::from_millis(502));
    // Once the 2 ms sample has left the window, the 4 ms one is the best left.
    let est = e.estimate(MonoInstant::from_nanos(12_502 * MS + 1)).expect("samples");
    assert_eq!(est.rtt, Duration::from_millis(4));
}

#[test]
fn a_fresh_sample_beats_an_old_one_with_a_lower_rtt() {
    let mut e = estimator();
    exchange(&mut e, SEC, 5 * MS, MS, 0, MS); // rtt 2 ms
    exchange(&mut e, 5 * SEC, 5 * MS, 2 * MS, 0, MS); // rtt 3 ms, 4 s later
    let est = e.estimate(MonoInstant::from_nanos(5 * SEC + 3 * MS)).expect("samples");
    assert_eq!(est.rtt, Duration::from_millis(3), "4 s of drift (~4 ms) outweighs 0.5 ms");
    assert_eq!(est.offset_nanos, 5_500_000, "asymmetric: off by 0.5 ms, within its error");
    assert!(est.error >= Duration::from_micros(1_500));
}

#[test]
fn samples_leave_the_window_and_the_oldest_go_first() {
    let mut e = estimator();
    exchange(&mut e, SEC, 0, MS, 0, MS);
    assert!(e.estimate(MonoInstant::from_nanos(11 * SEC + 2 * MS)).is_some());
    assert!(e.estimate(MonoInstant::from_nanos(11 * SEC + 2 * MS + 1)).is_none());
    for i in 2..=6 {
        exchange(&mut e, i * SEC, 0, 2 * MS, 0, 2 * MS);
    }
    assert_eq!(e.samples_len(), 4, "samples_max");
    let est = e.estimate(MonoInstant::from_nanos(6 * SEC + 4 * MS)).expect("samples");
    assert_eq!(est.rtt, Duration::from_millis(4), "the 2 ms sample was the oldest: evicted");
}

#[test]
fn a_local_step_during_the_exchange_discards_it() {
    let mut e = estimator();
    let sent = local(SEC);
    let received = Now::new(MonoInstant::from_nanos(SEC + 2 * MS), wall(LOCAL_WALL_BASE));
    let outcome =
        e.handle_sample(sent, wall(LOCAL_WALL_BASE + SEC), wall(LOCAL_WALL_BASE + SEC), received);
    assert_eq!(outcome, SampleOutcome::LocalWallStepped);
    assert_eq!(e.samples_len(), 0);
}

#[test]
fn a_local_step_between_exchanges_moves_the_offset_not_the_error() {
    let mut e = estimator();
    exchange(&mut e, SEC, 5 * MS, MS, 0, MS);
    // The local time-of-day clock is stepped back 1 s; the next exchange is a poor one.
    let stepped =
        |mono: u64| Now::new(MonoInstant::from_nanos(mono), wall(LOCAL_WALL_BASE + mono - SEC));
    let t1 = 2 * SEC;
    let t2 = LOCAL_WALL_BASE + t1 + 5 * MS + 20 * MS;
    let outcome = e.handle_sample(stepped(t1), wall(t2), wall(t2), stepped(t1 + 40 * MS));
    assert_eq!(outcome, SampleOutcome::Kept);
    let now = MonoInstant::from_nanos(t1 + 40 * MS);
    let est = e.estimate(now).expect("samples");
    assert_eq!(est.rtt, Duration::from_millis(2), "the old sample still wins");
    assert_eq!(est.offset_nanos, 1_005_000_000, "relative to the stepped wall clock");
    assert_eq!(e.estimate_at(stepped(now.as_nanos())), Some(est));
    // Stepped forward again after the last sample: only estimate_at can know.
    let est = e.estimate_at(local(now.as_nanos())).expect("samples");
    assert_eq!(est.offset_nanos, 5_000_000);
}

#[test]
fn impossible_exchanges_are_refused() {
    let mut e = estimator();
    let out = e.handle_sample(local(2 * SEC), wall(0), wall(0), local(SEC));
    assert_eq!(out, SampleOutcome::ReceivedBeforeSent);
    // The remote claims to have held the ping for 1 s of a 2 ms round trip.
    let out = e.handle_sample(local(SEC), wall(0), wall(SEC), local(SEC + 2 * MS));
    assert_eq!(out, SampleOutcome::RemoteHoldTooLong);
    // A remote at the epoch is 54 years behind: fine. One at the end of time is not.
    let out = e.handle_sample(local(SEC), wall(0), wall(0), local(SEC + 2 * MS));
    assert_eq!(out, SampleOutcome::Kept);
    let far = wall(u64::MAX);
    let out = e.handle_sample(local(SEC), far, far, local(SEC + 2 * MS));
    assert_eq!(out, SampleOutcome::OffsetOutOfRange);
}

#[test]
fn exceeds_and_within_are_definite_answers() {
    let est = |offset_nanos: i64, error_ms: u64| OffsetEstimate {
        offset_nanos,
        rtt: Duration::ZERO,
        error: Duration::from_millis(error_ms),
        age: Duration::ZERO,
    };
    let max = Duration::from_millis(250);
    assert!(est(-300 * MS as i64, 49).exceeds(max));
    assert!(!est(-300 * MS as i64, 50).exceeds(max), "could be exactly 250 ms");
    assert!(!est(-300 * MS as i64, 50).within(max));
    assert!(est(200 * MS as i64, 50).within(max));
    assert!(!est(200 * MS as i64, 51).within(max));
    assert!(!est(200 * MS as i64, 51).exceeds(max), "uncertain: neither");
    assert!(est(i64::MIN, 0).exceeds(max));
}

#[test]
fn configurations_are_checked() {
    let ok = OffsetConfig::default();
    assert!(ok.validate().is_ok());
    let err = |c: OffsetConfig| OffsetEstimator::try_new(c).err();
    assert_eq!(
        err(OffsetConfig { samples_max: 0, ..ok }),
        Some(ConfigError::SamplesMaxOutOfRange { samples_max: 0, max: OFFSET_SAMPLES_MAX })
    );
    assert!(err(OffsetConfig { samples_max: OFFSET_SAMPLES_MAX + 1, ..ok }).is_some());
    assert_eq!(
        err(OffsetConfig { window: Duration::ZERO, ..ok }),
        Some(ConfigError::DurationZero { name: "window" })
    );
    assert!(err(OffsetConfig { drift_ppm: crate::DRIFT_BOUND_PPM_MAX + 1, ..ok }).is_some());
}
