//! A node's clock in the simulator, as a function of true (virtual) time.
//!
//! The simulator keeps one true time for the whole cluster and gives each node a clock that
//! reads it wrongly: too fast or too slow (rate drift, in ppm) and, for the time-of-day reading,
//! stepped forwards or backwards. [`SimClock`] is that wrong reading, as a pure function of true
//! time, so the simulator can ask two questions exactly and cheaply:
//!
//! * "what does node n read at true time t?" ([`SimClock::reading`]), to build each [`Now`];
//! * "at what true time does node n's monotonic clock reach m?"
//!   ([`SimClock::true_nanos_at_mono`]), to schedule the timer a node asked for in its own time.
//!
//! The function is piecewise linear. Each change (a new drift, a step) starts a segment at the
//! true time it happens, from the readings at that moment, so both readings are continuous
//! across a drift change and only the time-of-day reading jumps at a step. Within a segment both
//! readings advance by `elapsed * (1e6 + ppm) / 1e6` from the segment's start: the same amount,
//! so the time-of-day reading differs from the monotonic one only by the sum of the steps. The
//! state is kept exactly, to the millionth of a nanosecond, and only a reading is rounded down
//! to the nanosecond: changes never accumulate rounding, so over any span the clock advances by
//! its drift-scaled true time to within one nanosecond. All arithmetic is on integers (`i128`,
//! and `u64` where it cannot overflow), so a run replays bit for bit on any machine.
//!
//! Only the latest segment is kept: true time may not go backwards across a change, and readings
//! before the latest change cannot be asked for (both are asserted).

use crate::time::{MonoInstant, Now, WallTime};

/// Largest drift, either way, a [`SimClock`] accepts: ±50%. Far beyond the bound protocol safety
/// assumes ([`crate::DRIFT_BOUND_PPM_DEFAULT`]), so the simulator can also show what breaks when
/// the assumption does; the rate stays positive, so the monotonic reading keeps increasing.
pub const SIM_DRIFT_PPM_MAX: i32 = 500_000;

const PPM: i128 = 1_000_000;
/// [`PPM`] as a `u64`, for the fast path of [`SimClock::reading`].
const PPM_U64: u64 = 1_000_000;

/// One node's clock as a function of true time. See the module documentation.
///
/// The exact readings at the latest change are kept as whole nanoseconds plus one shared
/// fraction in millionths of a nanosecond: the time-of-day reading differs from the monotonic
/// one by whole nanoseconds only (the initial difference and the steps), so both have the same
/// fraction, and a reading needs one division by a constant, on `u64` in the common case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimClock {
    /// True time of the latest change (the start of the current segment).
    change_true_nanos: u64,
    /// Monotonic reading at the latest change, whole nanoseconds (rounded down).
    change_mono_nanos: i128,
    /// Time-of-day reading at the latest change, whole nanoseconds (rounded down). Steps may
    /// take it below the epoch or past `u64::MAX`: readings saturate, the state does not.
    change_wall_nanos: i128,
    /// The fraction both readings had beyond their whole nanoseconds at the latest change, in
    /// millionths of a nanosecond (`0..PPM`): kept so that changes never lose what a reading
    /// rounds away.
    change_fraction: u64,
    /// Rate drift of the current segment.
    drift_ppm: i32,
}

impl SimClock {
    /// A clock that reads `mono_start` and `wall_start` at true time `true_nanos` and runs
    /// `drift_ppm` parts per million fast (negative: slow).
    ///
    /// # Panics
    /// If `|drift_ppm|` is above [`SIM_DRIFT_PPM_MAX`].
    pub fn new(
        true_nanos: u64,
        mono_start: MonoInstant,
        wall_start: WallTime,
        drift_ppm: i32,
    ) -> Self {
        assert_drift(drift_ppm);
        SimClock {
            change_true_nanos: true_nanos,
            change_mono_nanos: i128::from(mono_start.as_nanos()),
            change_wall_nanos: i128::from(wall_start.as_nanos()),
            change_fraction: 0,
            drift_ppm,
        }
    }

    /// Both readings at true time `true_nanos`: the exact piecewise-linear values, rounded down
    /// to the nanosecond.
    ///
    /// # Panics
    /// If `true_nanos` is before the latest change.
    pub fn reading(&self, true_nanos: u64) -> Now {
        let whole = self.whole_nanos_since_change(true_nanos);
        let mono = saturate(self.change_mono_nanos + whole);
        let wall = saturate(self.change_wall_nanos + whole);
        Now::new(MonoInstant::from_nanos(mono), WallTime::from_nanos(wall))
    }

    /// From true time `true_nanos` on, the clock runs `ppm` parts per million fast (negative:
    /// slow). Both readings are continuous at `true_nanos`.
    ///
    /// # Panics
    /// If `true_nanos` is before the latest change, or `|ppm|` is above [`SIM_DRIFT_PPM_MAX`].
    pub fn set_drift(&mut self, true_nanos: u64, ppm: i32) {
        assert_drift(ppm);
        self.rebase(true_nanos);
        self.drift_ppm = ppm;
    }

    /// Steps the time-of-day reading by `delta_nanos` (negative: backwards) at true time
    /// `true_nanos`. The monotonic reading is unaffected.
    ///
    /// # Panics
    /// If `true_nanos` is before the latest change.
    pub fn step_wall(&mut self, true_nanos: u64, delta_nanos: i64) {
        self.rebase(true_nanos);
        self.change_wall_nanos += i128::from(delta_nanos);
    }

    /// The earliest true time, no earlier than the latest change, at which the monotonic
    /// reading is at least `mono`: the true time at which a timer set for `mono` fires.
    /// `reading(result).mono >= mono` always holds, and one nanosecond earlier (if still after
    /// the latest change) the reading is below `mono`. Returns `u64::MAX` if true time would
    /// overflow first (a timer that never fires).
    pub fn true_nanos_at_mono(&self, mono: MonoInstant) -> u64 {
        // Smallest e >= 0 with floor((start + e * rate) / PPM) >= mono,
        // i.e. start + e * rate >= mono * PPM.
        let needed = (i128::from(mono.as_nanos()) - self.change_mono_nanos) * PPM
            - i128::from(self.change_fraction);
        if needed <= 0 {
            return self.change_true_nanos;
        }
        let rate = self.rate();
        let elapsed = (needed + rate - 1) / rate;
        let result = i128::from(self.change_true_nanos) + elapsed;
        u64::try_from(result).unwrap_or(u64::MAX)
    }

    /// The drift of the current segment, in ppm.
    pub fn drift_ppm(&self) -> i32 {
        self.drift_ppm
    }

    /// True time of the latest change: readings before it cannot be asked for.
    pub fn changed_at_true_nanos(&self) -> u64 {
        self.change_true_nanos
    }

    /// Time-of-day minus monotonic reading, in nanoseconds: the initial difference plus the sum
    /// of the steps. Constant between steps, since both readings advance at the same rate.
    pub fn wall_minus_mono_nanos(&self) -> i128 {
        self.change_wall_nanos - self.change_mono_nanos
    }

    /// Millionths of a nanosecond both readings advance per true nanosecond.
    fn rate(&self) -> i128 {
        let rate = PPM + i128::from(self.drift_ppm);
        assert!(rate > 0, "drift made the rate non-positive");
        rate
    }

    /// How far both readings have advanced between the latest change and `true_nanos`, in
    /// millionths of a nanosecond.
    fn advance_fine(&self, true_nanos: u64) -> i128 {
        assert!(
            true_nanos >= self.change_true_nanos,
            "true time {true_nanos} before the clock's latest change at {}",
            self.change_true_nanos
        );
        i128::from(true_nanos - self.change_true_nanos) * self.rate()
    }

    /// Whole nanoseconds both readings gained between the latest change and `true_nanos`,
    /// counting the fraction carried from the change: `floor((fraction + advance) / PPM)`.
    fn whole_nanos_since_change(&self, true_nanos: u64) -> i128 {
        assert!(
            true_nanos >= self.change_true_nanos,
            "true time {true_nanos} before the clock's latest change at {}",
            self.change_true_nanos
        );
        let elapsed = true_nanos - self.change_true_nanos;
        let rate = u64::try_from(self.rate()).expect("the rate is positive and small");
        // Fast path, exact: without overflow the sum is the same non-negative number on u64.
        match elapsed.checked_mul(rate).and_then(|a| a.checked_add(self.change_fraction)) {
            Some(fine) => i128::from(fine / PPM_U64),
            None => (i128::from(self.change_fraction) + self.advance_fine(true_nanos)) / PPM,
        }
    }

    /// Starts a new segment at `true_nanos` from the exact readings there.
    fn rebase(&mut self, true_nanos: u64) {
        let fine = i128::from(self.change_fraction) + self.advance_fine(true_nanos);
        let whole = fine.div_euclid(PPM);
        self.change_mono_nanos += whole;
        self.change_wall_nanos += whole;
        self.change_fraction = u64::try_from(fine.rem_euclid(PPM)).expect("below PPM");
        self.change_true_nanos = true_nanos;
    }
}

fn assert_drift(ppm: i32) {
    assert!(ppm >= -SIM_DRIFT_PPM_MAX, "drift {ppm} ppm below -{SIM_DRIFT_PPM_MAX}");
    assert!(ppm <= SIM_DRIFT_PPM_MAX, "drift {ppm} ppm above {SIM_DRIFT_PPM_MAX}");
}

/// A reading in whole nanoseconds, saturated to what a `u64` holds.
fn saturate(nanos: i128) -> u64 {
    u64::try_from(nanos.max(0)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn clock(drift_ppm: i32) -> SimClock {
        SimClock::new(
            10 * SEC,
            MonoInstant::from_nanos(5),
            WallTime::from_nanos(1_000 * SEC),
            drift_ppm,
        )
    }

    #[test]
    fn a_fast_clock_gains_its_drift() {
        let c = clock(500);
        let r = c.reading(20 * SEC);
        assert_eq!(r.mono.as_nanos(), 5 + 10 * SEC + 5_000_000);
        assert_eq!(r.wall.as_nanos(), 1_010 * SEC + 5_000_000);
    }

    #[test]
    fn a_slow_clock_loses_its_drift_and_rounds_down() {
        let c = clock(-1);
        // 3 ns of true time at 0.999999 is 2.999997 ns: 2 whole nanoseconds.
        assert_eq!(c.reading(10 * SEC + 3).mono.as_nanos(), 7);
        assert_eq!(c.reading(11 * SEC).mono.as_nanos(), 5 + SEC - 1_000);
    }

    #[test]
    fn drift_change_is_continuous() {
        let mut c = clock(200);
        let before = c.reading(12 * SEC);
        c.set_drift(12 * SEC, -300);
        assert_eq!(c.reading(12 * SEC), before);
        assert_eq!(c.drift_ppm(), -300);
        let later = c.reading(13 * SEC);
        assert_eq!(later.mono.as_nanos() - before.mono.as_nanos(), SEC - 300_000);
    }

    #[test]
    fn a_step_moves_only_the_wall() {
        let mut c = clock(0);
        c.step_wall(11 * SEC, -2_000 * 1_000_000_000);
        let r = c.reading(11 * SEC);
        assert_eq!(r.mono.as_nanos(), 5 + SEC);
        assert_eq!(r.wall, WallTime::UNIX_EPOCH, "a step below the epoch saturates the reading");
        // The state is not saturated: stepping back up restores the exact reading.
        c.step_wall(11 * SEC, 2_000 * 1_000_000_000);
        assert_eq!(c.reading(12 * SEC).wall.as_nanos(), 1_002 * SEC);
        assert_eq!(c.wall_minus_mono_nanos(), i128::from(1_000 * SEC) - 5);
    }

    #[test]
    fn timer_lands_on_the_first_nanosecond_reaching_it() {
        let c = clock(-1);
        let at = c.true_nanos_at_mono(MonoInstant::from_nanos(7));
        assert_eq!(at, 10 * SEC + 3);
        assert_eq!(c.true_nanos_at_mono(MonoInstant::from_nanos(3)), 10 * SEC, "already past");
        assert_eq!(c.true_nanos_at_mono(MonoInstant::MAX), u64::MAX);
    }

    #[test]
    #[should_panic(expected = "before the clock's latest change")]
    fn true_time_may_not_go_backwards_across_a_change() {
        let mut c = clock(0);
        c.set_drift(20 * SEC, 1);
        c.step_wall(19 * SEC, 1);
    }

    #[test]
    #[should_panic(expected = "above 500000")]
    fn drift_is_bounded() {
        let _ = clock(SIM_DRIFT_PPM_MAX + 1);
    }

    /// The readings equal the plain formula on the exact state in millionths of a nanosecond,
    /// on both the `u64` path and the `i128` one (an advance too large for `u64`), and saturate.
    #[test]
    fn readings_match_the_exact_formula() {
        let fine_floor = |fine: i128| u64::try_from(fine.max(0) / PPM).unwrap_or(u64::MAX);
        for drift in [-SIM_DRIFT_PPM_MAX, -333_333, -1, 0, 7, 499_999] {
            let mut c = SimClock::new(3, MonoInstant::from_nanos(11), WallTime::from_nanos(5), 1);
            c.set_drift(1_000_000_007, drift);
            c.step_wall(1_000_000_009, -17);
            // The exact state at the latest change, computed independently of `SimClock`.
            let first = i128::from(1_000_000_007u64 - 3) * (PPM + 1);
            let rate = PPM + i128::from(drift);
            let at_change = first + i128::from(1_000_000_009u64 - 1_000_000_007) * rate;
            let (mono0, wall0) = (11 * PPM + at_change, (5 - 17) * PPM + at_change);
            for elapsed in [0u64, 1, 999_999, 123_456_789_012, u64::MAX / 2_000_000, 1 << 62] {
                let t = 1_000_000_009 + elapsed;
                let advance = i128::from(elapsed) * rate;
                let r = c.reading(t);
                assert_eq!(r.mono.as_nanos(), fine_floor(mono0 + advance), "{drift} {elapsed}");
                assert_eq!(r.wall.as_nanos(), fine_floor(wall0 + advance), "{drift} {elapsed}");
            }
        }
        let mut low = SimClock::new(0, MonoInstant::ZERO, WallTime::from_nanos(1), 0);
        low.step_wall(0, -10);
        assert_eq!(low.reading(5).wall, WallTime::UNIX_EPOCH, "below the epoch saturates");
        assert_eq!(low.reading(u64::MAX).mono.as_nanos(), u64::MAX);
    }
}
