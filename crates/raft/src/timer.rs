//! Timers as plain data (the quinn-proto design): a fixed table of deadlines, one per kind.
//!
//! Why: a sans-IO core cannot sleep. It tells the driver the earliest deadline
//! (`poll_timeout`), and the driver calls `handle_timeout(now)` at or after it. Every timer
//! that is due fires; one that is not due, or a call with nothing due, is a no-op, so a driver
//! may call `handle_timeout` spuriously (early wake-ups, coarse timers) without harm.

use palisade_clock::MonoInstant;

/// The kinds of timer a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Follower / candidate: campaign (or give up the round and campaign again).
    Election,
    /// Leader: send heartbeats.
    Heartbeat,
    /// Leader: check that a majority was heard from during the last period.
    CheckQuorum,
    /// Leader: give up a leadership transfer that did not finish.
    TransferAbort,
    /// Every role: send clock-offset probes.
    TimeProbe,
}

impl Timer {
    /// Every kind, in the order they fire when several are due at once.
    pub const ALL: [Timer; 5] = [
        Timer::TimeProbe,
        Timer::CheckQuorum,
        Timer::TransferAbort,
        Timer::Heartbeat,
        Timer::Election,
    ];

    fn slot(self) -> usize {
        match self {
            Timer::Election => 0,
            Timer::Heartbeat => 1,
            Timer::CheckQuorum => 2,
            Timer::TransferAbort => 3,
            Timer::TimeProbe => 4,
        }
    }
}

/// One optional deadline per timer kind.
#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    deadlines: [Option<MonoInstant>; 5],
}

impl Timers {
    /// Sets (or moves) a timer.
    pub fn set(&mut self, timer: Timer, at: MonoInstant) {
        self.deadlines[timer.slot()] = Some(at);
    }

    /// Cancels a timer.
    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.slot()] = None;
    }

    /// The deadline of `timer`, if it is set.
    pub fn deadline(&self, timer: Timer) -> Option<MonoInstant> {
        self.deadlines[timer.slot()]
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<MonoInstant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// If `timer` is due at `now`, cancels it and returns true.
    pub fn take_due(&mut self, timer: Timer, now: MonoInstant) -> bool {
        let slot = &mut self.deadlines[timer.slot()];
        if slot.is_some_and(|at| at <= now) {
            *slot = None;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_the_minimum_and_due_timers_fire_once() {
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Election, MonoInstant::from_nanos(50));
        t.set(Timer::Heartbeat, MonoInstant::from_nanos(20));
        assert_eq!(t.next(), Some(MonoInstant::from_nanos(20)));
        assert!(!t.take_due(Timer::Election, MonoInstant::from_nanos(49)));
        assert!(t.take_due(Timer::Election, MonoInstant::from_nanos(50)));
        assert!(!t.take_due(Timer::Election, MonoInstant::from_nanos(60)));
        t.stop(Timer::Heartbeat);
        assert_eq!(t.next(), None);
    }
}
