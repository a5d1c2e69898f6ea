//! The uncertainty interval's promise: whenever [`ClockBound`] reports a bounded status, the
//! interval contains the reference time, for clocks drifting within the bound (drift changing
//! at any time) and local time-of-day steps at any time; and a step is never reported where
//! there was none. The local clock and the reference are [`SimClock`]s on one true time.

use std::time::Duration;

use palisade_clock::{
    BoundConfig, ClockBound, ClockStatus, MonoInstant, SimClock, TimeInterval, WallTime,
};
use proptest::prelude::*;

const SEC: u64 = 1_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// A synchronisation with this error; the offset passed is off by `noise` (|noise| <= error).
    Sync { error: u64, noise_pick: u64 },
    /// A local time-of-day step.
    Step(i64),
    /// New drifts for the local clock and the reference (picks within the bound).
    Drift(u32, u32),
    /// A question.
    Now,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u64..10_000_000, any::<u64>())
            .prop_map(|(error, noise_pick)| Op::Sync { error, noise_pick }),
        1 => prop_oneof![-10_000i64..10_000, -100 * SEC as i64..100 * SEC as i64]
            .prop_map(Op::Step),
        1 => (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Op::Drift(a, b)),
        4 => Just(Op::Now),
    ]
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
    fn a_bounded_interval_contains_the_reference_time(
        drift_ppm in prop_oneof![Just(0u32), Just(500), 1u32..=100_000],
        disrupted_error in 0u64..2_000_000,
        local_wall in 1u64 << 60..1 << 61,
        offset in -3_600 * SEC as i64..3_600 * SEC as i64,
        ops in prop::collection::vec((0u64..30 * SEC, op()), 1..64),
    ) {
        let pick = |p: u32| pick_drift(p, drift_ppm);
        let mut local = clock(5, local_wall, 0);
        let mut reference = clock(0, local_wall.saturating_add_signed(offset), 0);
        let config = BoundConfig {
            free_running_after: Duration::from_secs(10),
            disrupted_error: Duration::from_nanos(disrupted_error),
        };
        let mut bound = ClockBound::new(drift_ppm, config);
        let mut at = 0u64;
        let mut synced = false;
        let mut steps_since_sync = 0u32;
        for (gap, op) in ops {
            at += gap;
            let now = local.reading(at);
            let truth = reference.reading(at).wall;
            match op {
                Op::Sync { error, noise_pick } => {
                    let true_offset = truth.signed_nanos_since(now.wall);
                    let noise = i128::from(noise_pick % (2 * error + 1)) - i128::from(error);
                    let given = i64::try_from(true_offset + noise).expect("fits");
                    bound.handle_sync(now, given, Duration::from_nanos(error));
                    synced = true;
                    steps_since_sync = 0;
                }
                Op::Step(delta) => {
                    local.step_wall(at, delta);
                    steps_since_sync += 1;
                }
                Op::Drift(a, b) => {
                    local.set_drift(at, pick(a));
                    reference.set_drift(at, pick(b));
                }
                Op::Now => {
                    let b = bound.now(now);
                    prop_assert!(b.interval.contains(truth), "{} outside {:?}", truth, b);
                    if !synced {
                        prop_assert_eq!(b.status, ClockStatus::Unknown);
                    } else if steps_since_sync == 0 {
                        prop_assert!(b.status.is_bounded(), "disruption without a step: {:?}", b);
                    }
                    if !b.status.is_bounded() {
                        prop_assert_eq!(b.interval, TimeInterval::UNBOUNDED);
                    }
                }
            }
        }
    }
}
