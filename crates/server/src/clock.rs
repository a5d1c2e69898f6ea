//! The operating system's clocks behind [`palisade_clock::Clock`].
//!
//! The core never reads a clock: the driver reads one and passes [`palisade_clock::Now`] in.
//! This is that one reading. The monotonic reading is `std::time::Instant` (on Linux
//! `CLOCK_MONOTONIC`, which NTP may slew but never steps) measured from a process-wide origin
//! fixed at the first reading, so that every [`SystemClock`] of the process agrees and
//! readings fit a `u64` of nanoseconds for 584 years. The time-of-day reading is
//! `SystemTime::now()` as nanoseconds since the Unix epoch; it may jump either way and is used
//! only for display, HLC timestamps and offset estimates. A time-of-day clock set before 1970
//! reads as the epoch itself rather than failing: nothing depends on it for safety.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use palisade_clock::{Clock, MonoInstant, WallTime, duration_nanos};

/// The origin of every monotonic reading of this process.
static MONO_ORIGIN: OnceLock<Instant> = OnceLock::new();

/// The OS clocks: `CLOCK_MONOTONIC` for [`Clock::mono`], the system time for [`Clock::wall`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// A clock reading the OS clocks. All values share one monotonic origin.
    pub fn new() -> Self {
        SystemClock
    }
}

impl Clock for SystemClock {
    fn mono(&self) -> MonoInstant {
        let origin = *MONO_ORIGIN.get_or_init(Instant::now);
        MonoInstant::from_nanos(duration_nanos(Instant::now().saturating_duration_since(origin)))
    }

    fn wall(&self) -> WallTime {
        let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH);
        WallTime::from_nanos(since_epoch.map(duration_nanos).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn mono_never_goes_backwards_and_is_shared_by_all_clocks() {
        let (a, b) = (SystemClock::new(), SystemClock);
        let first = a.mono();
        std::thread::sleep(Duration::from_millis(2));
        let second = b.mono();
        assert!(second >= first.saturating_add(Duration::from_millis(2)));
        assert!(a.mono() >= second);
    }

    #[test]
    fn wall_is_after_2020() {
        const JAN_1_2020_NANOS: u64 = 1_577_836_800 * 1_000_000_000;
        assert!(SystemClock.wall().as_nanos() > JAN_1_2020_NANOS);
        let now = SystemClock.now();
        assert!(now.wall.as_nanos() > JAN_1_2020_NANOS);
    }
}
