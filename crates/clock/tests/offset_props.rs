//! The offset estimator's promise: the true offset between two nodes always lies within
//! `offset ± error`, for symmetric and asymmetric delays, any remote hold time, clocks drifting
//! within the configured bound, and local time-of-day steps before, during and after exchanges.
//! The clocks are [`SimClock`]s driven by one true time, so the true offset is known exactly.

use std::time::Duration;

use palisade_clock::{
    MonoInstant, Now, OffsetConfig, OffsetEstimate, OffsetEstimator, SampleOutcome, SimClock,
    WallTime,
};
use proptest::prelude::*;

const SEC: u64 = 1_000_000_000;

/// One exchange: gap since the previous one, legs, hold, local steps, and a wait before the
/// estimate is checked.
#[derive(Debug, Clone)]
struct Ping {
    gap: u64,
    d1: u64,
    hold: u64,
    d2: u64,
    step_before: Option<i64>,
    step_during: Option<i64>,
    wait: u64,
}

fn delay() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0u64), 0u64..1_000, 0u64..50_000_000, 0u64..2 * SEC]
}

fn step() -> impl Strategy<Value = Option<i64>> {
    prop::option::weighted(0.15, -100_000_000_000i64..100_000_000_000)
}

fn ping() -> impl Strategy<Value = Ping> {
    (0u64..20 * SEC, delay(), delay(), delay(), any::<bool>(), step(), step(), 0u64..20 * SEC)
        .prop_map(|(gap, d1, hold, d2, symmetric, step_before, step_during, wait)| Ping {
            gap,
            d1,
            hold,
            d2: if symmetric { d1 } else { d2 },
            step_before,
            step_during,
            wait,
        })
}

/// True offset (remote minus local time-of-day) at true time `at`.
fn true_offset(local: &SimClock, remote: &SimClock, at: u64) -> i128 {
    remote.reading(at).wall.signed_nanos_since(local.reading(at).wall)
}

fn assert_within(est: &OffsetEstimate, truth: i128) -> Result<(), TestCaseError> {
    let (low, high) = est.bounds_nanos();
    prop_assert!(low <= truth && truth <= high, "true offset {} outside {:?}", truth, est);
    Ok(())
}

/// A drift in `-bound..=bound` ppm, from an arbitrary number.
fn pick_drift(p: u32, bound: u32) -> i32 {
    let bound = i64::from(bound);
    i32::try_from(i64::from(p) % (2 * bound + 1) - bound).expect("within the SimClock's range")
}

fn clock(mono: u64, wall: u64, drift_ppm: i32) -> SimClock {
    SimClock::new(0, MonoInstant::from_nanos(mono), WallTime::from_nanos(wall), drift_ppm)
}

proptest! {
    #[test]
    fn the_true_offset_lies_within_the_error(
        drift_ppm in prop_oneof![Just(0u32), Just(1), Just(500), Just(100_000)],
        drift_picks in (any::<u32>(), any::<u32>()),
        mono_start in 0u64..1 << 50,
        local_wall in 1u64 << 60..1 << 61,
        offset in -3_600 * SEC as i64..3_600 * SEC as i64,
        pings in prop::collection::vec(ping(), 1..24),
    ) {
        let pick = |p: u32| pick_drift(p, drift_ppm);
        let mut local = clock(mono_start, local_wall, pick(drift_picks.0));
        let remote = clock(0, local_wall.saturating_add_signed(offset), pick(drift_picks.1));
        let config = OffsetConfig { window: Duration::from_secs(60), samples_max: 8, drift_ppm };
        let mut estimator = OffsetEstimator::new(config);
        let mut at = 0u64;
        for p in pings {
            at += p.gap;
            if let Some(s) = p.step_before {
                local.step_wall(at, s);
            }
            let t1 = local.reading(at);
            let t2 = remote.reading(at + p.d1).wall;
            if let Some(s) = p.step_during {
                local.step_wall(at + p.d1, s);
            }
            let t3 = remote.reading(at + p.d1 + p.hold).wall;
            at += p.d1 + p.hold + p.d2;
            let t4 = local.reading(at);
            let outcome = estimator.handle_sample(t1, t2, t3, t4);
            if p.step_during.is_none_or(|s| s.unsigned_abs() < 1_000_000) {
                prop_assert_ne!(outcome, SampleOutcome::LocalWallStepped);
            }
            // Every kept sample, alone, keeps the promise...
            if outcome == SampleOutcome::Kept {
                let mut alone = OffsetEstimator::new(config);
                prop_assert_eq!(alone.handle_sample(t1, t2, t3, t4), SampleOutcome::Kept);
                let est = alone.estimate(t4.mono).expect("a fresh sample");
                assert_within(&est, true_offset(&local, &remote, at))?;
            }
            // ...and so does the best of all of them, later.
            let check = at + p.wait;
            let now: Now = local.reading(check);
            if let Some(est) = estimator.estimate_at(now) {
                assert_within(&est, true_offset(&local, &remote, check))?;
                prop_assert_eq!(estimator.estimate(now.mono), Some(est), "no step since t4");
            }
        }
    }
}
