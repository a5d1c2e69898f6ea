//! A clock that moves only when told to, for unit tests.
//!
//! Protocol code takes a [`Now`] as an argument and never reads a clock itself, so most tests
//! need no clock at all. [`ManualClock`] is for the tests in between: a driver-like loop or a
//! component that holds a `&dyn Clock`. Its two readings move together under
//! [`ManualClock::advance`], and apart only when a test says so ([`ManualClock::step_wall`]),
//! which is how a test shows that a lease or a timeout ignores the time-of-day clock.
//!
//! The monotonic reading can never move backwards: [`ManualClock::set`] asserts it, since a
//! monotonic clock that goes back is not one and would only hide a bug in the test.

use std::cell::Cell;
use std::time::Duration;

use crate::time::{Clock, MonoInstant, Now, WallTime};

/// A clock whose readings change only through its methods. Interior mutability ([`Cell`]) lets
/// a test move it while other code holds a shared reference.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Cell<Now>,
}

impl ManualClock {
    /// A clock reading `now`.
    pub fn new(now: Now) -> Self {
        ManualClock { now: Cell::new(now) }
    }

    /// Sets both readings.
    ///
    /// # Panics
    /// If `now.mono` is earlier than the current monotonic reading.
    pub fn set(&self, now: Now) {
        let current = self.now.get();
        assert!(now.mono >= current.mono, "monotonic clock set backwards: {now:?} < {current:?}");
        self.now.set(now);
    }

    /// Advances both readings by `d` (saturating), as time passing does.
    pub fn advance(&self, d: Duration) {
        let current = self.now.get();
        self.now.set(Now::new(current.mono + d, current.wall.saturating_add(d)));
    }

    /// Steps the time-of-day reading by `delta_nanos` (negative: backwards), saturating at the
    /// epoch and at the largest reading. The monotonic reading does not move.
    pub fn step_wall(&self, delta_nanos: i64) {
        let current = self.now.get();
        let magnitude = Duration::from_nanos(delta_nanos.unsigned_abs());
        let wall = if delta_nanos >= 0 {
            current.wall.saturating_add(magnitude)
        } else {
            current.wall.saturating_sub(magnitude)
        };
        self.now.set(Now::new(current.mono, wall));
    }

    /// Advances only the monotonic reading by `d`: the time-of-day clock stood still (or, seen
    /// the other way, was stepped back by `d` while `d` passed).
    pub fn advance_mono(&self, d: Duration) {
        let current = self.now.get();
        self.now.set(Now::new(current.mono + d, current.wall));
    }
}

impl Clock for ManualClock {
    fn mono(&self) -> MonoInstant {
        self.now.get().mono
    }

    fn wall(&self) -> WallTime {
        self.now.get().wall
    }

    fn now(&self) -> Now {
        self.now.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start() -> Now {
        Now::new(MonoInstant::from_nanos(1_000), WallTime::from_nanos(1_700_000_000_000_000_000))
    }

    #[test]
    fn advance_moves_both_readings_together() {
        let clock = ManualClock::new(start());
        clock.advance(Duration::from_millis(5));
        assert_eq!(clock.mono(), MonoInstant::from_nanos(5_001_000));
        assert_eq!(clock.wall(), WallTime::from_nanos(1_700_000_000_005_000_000));
    }

    #[test]
    fn step_wall_moves_only_the_wall_either_way() {
        let clock = ManualClock::new(start());
        clock.step_wall(-3_600_000_000_000);
        assert_eq!(clock.mono(), start().mono);
        assert_eq!(clock.wall(), WallTime::from_nanos(1_699_996_400_000_000_000));
        clock.step_wall(7);
        assert_eq!(clock.wall(), WallTime::from_nanos(1_699_996_400_000_000_007));
        clock.step_wall(i64::MIN);
        assert_eq!(clock.wall(), WallTime::UNIX_EPOCH, "saturates at the epoch");
    }

    #[test]
    fn set_and_advance_mono() {
        let clock = ManualClock::new(start());
        clock.advance_mono(Duration::from_nanos(10));
        assert_eq!(clock.now(), Now::new(MonoInstant::from_nanos(1_010), start().wall));
        let later = Now::new(MonoInstant::from_nanos(2_000), WallTime::from_nanos(3));
        clock.set(later);
        assert_eq!(clock.now(), later);
    }

    #[test]
    #[should_panic(expected = "monotonic clock set backwards")]
    fn set_refuses_to_move_mono_backwards() {
        let clock = ManualClock::new(start());
        clock.set(Now::new(MonoInstant::from_nanos(999), start().wall));
    }
}
