//! Properties of [`SimClock`], the simulator's drifting, stepping clock: the inverse the
//! simulator schedules timers with is exact, the monotonic reading never goes back, and over any
//! span the clock advances by its drift-scaled true time to within a nanosecond.

use palisade_clock::{MonoInstant, SIM_DRIFT_PPM_MAX, SimClock, WallTime};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Change {
    Drift(i32),
    Step(i64),
}

fn change(drift_ppm_max: i32) -> impl Strategy<Value = Change> {
    prop_oneof![
        (-drift_ppm_max..=drift_ppm_max).prop_map(Change::Drift),
        (-1_000_000_000_000i64..=1_000_000_000_000).prop_map(Change::Step),
    ]
}

/// A clock with `changes` applied at increasing true times; returns it with the true time of
/// each change.
fn build(start: u64, mono: u64, drift: i32, changes: &[(u64, Change)]) -> (SimClock, Vec<u64>) {
    let mut clock =
        SimClock::new(start, MonoInstant::from_nanos(mono), WallTime::from_nanos(1 << 60), drift);
    let mut at = start;
    let mut times = vec![start];
    for (gap, c) in changes {
        at += gap;
        match c {
            Change::Drift(ppm) => clock.set_drift(at, *ppm),
            Change::Step(delta) => clock.step_wall(at, *delta),
        }
        times.push(at);
    }
    (clock, times)
}

proptest! {
    /// The simulator fires a timer for `mono` at `true_nanos_at_mono(mono)`: the node must read
    /// at least `mono` then, and must not have read it one nanosecond earlier.
    #[test]
    fn timer_inverse_is_exact(
        start in 0u64..1 << 50,
        mono in 0u64..1 << 50,
        drift in -SIM_DRIFT_PPM_MAX..=SIM_DRIFT_PPM_MAX,
        changes in prop::collection::vec((0u64..1 << 40, change(SIM_DRIFT_PPM_MAX)), 0..8),
        targets in prop::collection::vec(0u64..1 << 45, 1..16),
    ) {
        let (clock, times) = build(start, mono, drift, &changes);
        let last_change = *times.last().expect("at least the start");
        prop_assert_eq!(clock.changed_at_true_nanos(), last_change);
        let base = clock.reading(last_change).mono.as_nanos();
        for offset in targets {
            // Targets on both sides of the reading at the latest change.
            let target = MonoInstant::from_nanos((base + offset).saturating_sub(1 << 44));
            let at = clock.true_nanos_at_mono(target);
            prop_assert!(at >= last_change);
            prop_assert!(clock.reading(at).mono >= target, "timer fired early");
            if at > last_change {
                prop_assert!(clock.reading(at - 1).mono < target, "timer fired late");
            } else {
                prop_assert!(base >= target.as_nanos());
            }
        }
    }

    /// Monotonic readings never decrease across changes; the time-of-day reading moves with the
    /// monotonic one except for the steps.
    #[test]
    fn mono_never_goes_back_and_wall_moves_only_by_steps(
        drift in -SIM_DRIFT_PPM_MAX..=SIM_DRIFT_PPM_MAX,
        plan in prop::collection::vec((0u64..1 << 36, change(SIM_DRIFT_PPM_MAX)), 1..32),
    ) {
        let mut clock = SimClock::new(0, MonoInstant::ZERO, WallTime::from_nanos(1 << 60), drift);
        let mut at = 0;
        let mut previous = clock.reading(0);
        let mut steps: i128 = 0;
        for (gap, c) in plan {
            at += gap;
            let now = clock.reading(at);
            prop_assert!(now.mono >= previous.mono);
            let wall_moved = now.wall.signed_nanos_since(previous.wall);
            let mono_moved = i128::from(now.mono.as_nanos() - previous.mono.as_nanos());
            // Both readings round down from exact values that advanced equally: at most 1 ns
            // apart, plus the steps since the previous reading.
            prop_assert!((wall_moved - mono_moved - steps).abs() <= 1);
            steps = 0;
            match c {
                Change::Drift(ppm) => clock.set_drift(at, ppm),
                Change::Step(delta) => {
                    clock.step_wall(at, delta);
                    steps = i128::from(delta);
                }
            }
            prop_assert_eq!(clock.reading(at).mono, now.mono, "a change never moves mono");
            previous = now;
        }
    }

    /// Over any span, the clock advances by the true span scaled by the drift of the segments
    /// it crossed, to within one nanosecond: rounding never accumulates across changes.
    #[test]
    fn drift_is_exact_to_a_nanosecond(
        drift_max in prop_oneof![Just(0i32), Just(500), 1..=SIM_DRIFT_PPM_MAX],
        gaps in prop::collection::vec((1u64..1 << 34, any::<u32>()), 1..32),
    ) {
        let mut clock = SimClock::new(7, MonoInstant::from_nanos(11), WallTime::from_nanos(13), 0);
        let mut at = 7;
        let mut exact_fine: i128 = 11 * 1_000_000; // millionths of a nanosecond
        for (gap, pick) in gaps {
            let ppm = i32::try_from(i64::from(pick) % (2 * i64::from(drift_max) + 1)).expect("fits")
                - drift_max;
            clock.set_drift(at, ppm);
            at += gap;
            exact_fine += i128::from(gap) * i128::from(1_000_000 + ppm);
            let read = i128::from(clock.reading(at).mono.as_nanos());
            prop_assert_eq!(read, exact_fine / 1_000_000, "the exact value, floored");
        }
    }
}
