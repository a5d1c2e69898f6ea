//! Ordering events without trusting clocks: a hybrid logical clock and a Lamport clock.
//!
//! A Lamport clock orders events consistently with causality (if `e` happened before `f`, then
//! `L(e) < L(f)`), but its numbers mean nothing to a human. Time-of-day timestamps mean
//! something, but do not respect causality: a node whose clock is behind stamps a reply
//! *earlier* than the request it answers, and last-write-wins then silently drops the later
//! write.
//!
//! A hybrid logical clock (Kulkarni, Demirbas et al., "Logical Physical Clocks", 2014) has both
//! properties. A timestamp is `(l, c)`: `l` is the largest physical time-of-day reading the node
//! has heard of, from its own clock or in a message, and `c` counts events that share that `l`.
//! Timestamps compare lexicographically. The rules:
//!
//! * local or send event at physical reading `pt`: `l' = max(l, pt)`; `c' = c + 1` if `l`
//!   did not change, else 0;
//! * receive of `(l_m, c_m)`: `l' = max(l, l_m, pt)`; `c'` is one more than the largest
//!   counter among the inputs whose `l` equals `l'` (0 if only `pt` does).
//!
//! So timestamps strictly increase on a node and across every message (happens-before), even
//! when physical clocks step backwards: `pt` only ever raises `l`. And `l` stays close to
//! physical time: `l` is always some node's physical reading, so `l - pt` is at most the
//! largest skew between any two clocks in the system. That is the bound the optional
//! `max_offset` check enforces from the receiving side: a remote `l` further ahead of our `pt`
//! than the cluster's maximum offset means some clock is broken, and accepting it would drag
//! our `l` (and every timestamp after it) ahead with it. [`Hlc::update`] refuses it with
//! [`HlcError::RemoteAhead`] and leaves the clock unchanged.
//!
//! Counter overflow: when `c` would pass `u32::MAX` (four billion events within one nanosecond
//! of `l`, e.g. after a large backward step), the clock carries into `l` (`l + 1 ns`, `c = 0`)
//! rather than failing or wrapping: the result is still larger than every input, so both
//! guarantees hold, and `l` runs ahead of physical time by one nanosecond per four billion
//! events. Physical readings beyond [`HLC_WALL_NANOS_MAX`] (year 2262) are treated as that
//! value, and remote timestamps beyond it are refused, so carries can never overflow `l`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::{WallTime, duration_nanos};

/// Largest `wall_nanos` an HLC accepts or produces from a physical reading: `i64::MAX` ns after
/// the epoch (April 2262), the range most time libraries share.
pub const HLC_WALL_NANOS_MAX: u64 = i64::MAX as u64;

/// Largest remote value a [`Lamport`] clock accepts: half the range, so ticking can never
/// overflow.
pub const LAMPORT_VALUE_MAX: u64 = u64::MAX / 2;

/// Why a remote logical timestamp was refused. The clock is unchanged after an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HlcError {
    /// The remote timestamp is further ahead of the local physical clock than `max_offset`.
    #[error("remote timestamp {remote} is {ahead:?} ahead of the local clock (max {max_offset:?})")]
    RemoteAhead {
        /// The refused timestamp.
        remote: HlcTimestamp,
        /// How far `remote.wall_nanos` is ahead of the local physical reading.
        ahead: Duration,
        /// The configured maximum.
        max_offset: Duration,
    },
    /// The remote timestamp's `wall_nanos` is beyond [`HLC_WALL_NANOS_MAX`].
    #[error("remote timestamp {remote} is beyond the largest accepted wall time")]
    RemoteOutOfRange {
        /// The refused timestamp.
        remote: HlcTimestamp,
    },
    /// A remote Lamport value is beyond [`LAMPORT_VALUE_MAX`].
    #[error("remote Lamport value {remote} is above the maximum {max}")]
    LamportOutOfRange {
        /// The refused value.
        remote: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// Text that is not a timestamp of the form `<wall_nanos>+<logical>`.
    #[error("not an HLC timestamp (expected <wall_nanos>+<logical>): {text:?}")]
    Parse {
        /// The refused text.
        text: String,
    },
}

/// A hybrid logical clock timestamp `(l, c)`, ordered by `wall_nanos` then `logical`.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct HlcTimestamp {
    /// `l`: the largest physical time-of-day reading known, in nanoseconds since the epoch.
    pub wall_nanos: u64,
    /// `c`: events with the same `l`.
    pub logical: u32,
}

impl HlcTimestamp {
    /// The smallest timestamp.
    pub const ZERO: HlcTimestamp = HlcTimestamp { wall_nanos: 0, logical: 0 };

    /// `(wall_nanos, logical)`.
    pub const fn new(wall_nanos: u64, logical: u32) -> Self {
        HlcTimestamp { wall_nanos, logical }
    }

    /// The physical part, as a time-of-day reading.
    pub const fn wall(self) -> WallTime {
        WallTime::from_nanos(self.wall_nanos)
    }
}

impl fmt::Display for HlcTimestamp {
    /// `<wall_nanos>+<logical>`, e.g. `1700000000000000000+3`; [`FromStr`] reads it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.wall_nanos, self.logical)
    }
}

impl FromStr for HlcTimestamp {
    type Err = HlcError;

    fn from_str(s: &str) -> Result<Self, HlcError> {
        let parse = || {
            let (wall, logical) = s.split_once('+')?;
            Some(HlcTimestamp::new(wall.parse().ok()?, logical.parse().ok()?))
        };
        parse().ok_or_else(|| HlcError::Parse { text: s.to_owned() })
    }
}

/// A hybrid logical clock. See the module documentation.
///
/// Call [`Hlc::now`] for a local or send event and [`Hlc::update`] when a message carrying a
/// timestamp is received, each with a fresh physical time-of-day reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hlc {
    last: HlcTimestamp,
    max_offset: Option<Duration>,
}

impl Hlc {
    /// A clock at [`HlcTimestamp::ZERO`] with no `max_offset` check.
    pub fn new() -> Self {
        Hlc::default()
    }

    /// A clock at [`HlcTimestamp::ZERO`] that refuses remote timestamps more than `max_offset`
    /// ahead of the local physical reading (`None`: accept any).
    pub fn with_max_offset(max_offset: Option<Duration>) -> Self {
        Hlc { last: HlcTimestamp::ZERO, max_offset }
    }

    /// A clock that continues after `last` (say, the largest timestamp found in storage after
    /// a restart), so it never issues a timestamp at or below it.
    pub fn resume(last: HlcTimestamp, max_offset: Option<Duration>) -> Self {
        Hlc { last, max_offset }
    }

    /// Changes the `max_offset` check (`None` disables it).
    pub fn set_max_offset(&mut self, max_offset: Option<Duration>) {
        self.max_offset = max_offset;
    }

    /// The configured `max_offset`.
    pub fn max_offset(&self) -> Option<Duration> {
        self.max_offset
    }

    /// The latest timestamp issued.
    pub fn last(&self) -> HlcTimestamp {
        self.last
    }

    /// A timestamp for a local or send event at physical reading `pt`: larger than every
    /// timestamp this clock issued before.
    pub fn now(&mut self, pt: WallTime) -> HlcTimestamp {
        let pt = clamp_physical(pt);
        let l = self.last.wall_nanos.max(pt);
        let c = if l == self.last.wall_nanos { u64::from(self.last.logical) + 1 } else { 0 };
        self.advance(l, c)
    }

    /// A timestamp for receiving a message stamped `remote`, at physical reading `pt`: larger
    /// than `remote` and than every timestamp this clock issued before.
    pub fn update(&mut self, pt: WallTime, remote: HlcTimestamp) -> Result<HlcTimestamp, HlcError> {
        if remote.wall_nanos > HLC_WALL_NANOS_MAX {
            return Err(HlcError::RemoteOutOfRange { remote });
        }
        let pt = clamp_physical(pt);
        if let Some(max_offset) = self.max_offset {
            let ahead = remote.wall_nanos.saturating_sub(pt);
            if ahead > duration_nanos(max_offset) {
                let ahead = Duration::from_nanos(ahead);
                return Err(HlcError::RemoteAhead { remote, ahead, max_offset });
            }
        }
        let own = self.last;
        let l = own.wall_nanos.max(remote.wall_nanos).max(pt);
        let c = if l == own.wall_nanos && l == remote.wall_nanos {
            u64::from(own.logical.max(remote.logical)) + 1
        } else if l == own.wall_nanos {
            u64::from(own.logical) + 1
        } else if l == remote.wall_nanos {
            u64::from(remote.logical) + 1
        } else {
            0
        };
        let next = self.advance(l, c);
        assert!(next > remote, "receive timestamp {next} not after the message's {remote}");
        Ok(next)
    }

    /// Issues `(l, c)`, carrying a counter past `u32::MAX` into `l`.
    fn advance(&mut self, l: u64, c: u64) -> HlcTimestamp {
        let next = match u32::try_from(c) {
            Ok(logical) => HlcTimestamp::new(l, logical),
            Err(_) => {
                assert!(l < u64::MAX, "hybrid logical clock exhausted");
                HlcTimestamp::new(l + 1, 0)
            }
        };
        assert!(next > self.last, "timestamp {next} not after {}", self.last);
        self.last = next;
        next
    }
}

fn clamp_physical(pt: WallTime) -> u64 {
    pt.as_nanos().min(HLC_WALL_NANOS_MAX)
}

/// A Lamport clock: a counter that orders events consistently with happens-before.
///
/// Call [`Lamport::tick`] for a local or send event and [`Lamport::update`] (or
/// [`Lamport::try_update`] for values from peers) on receive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lamport {
    counter: u64,
}

impl Lamport {
    /// A clock at 0; the first event gets 1.
    pub fn new() -> Self {
        Lamport::default()
    }

    /// The value of the latest event (0 before any).
    pub fn current(&self) -> u64 {
        self.counter
    }

    /// The value of a local or send event: one more than the previous.
    pub fn tick(&mut self) -> u64 {
        assert!(self.counter < u64::MAX, "Lamport clock exhausted");
        self.counter += 1;
        self.counter
    }

    /// The value of receiving a message stamped `remote`: more than `remote` and than every
    /// previous value.
    ///
    /// # Panics
    /// If `remote` is above [`LAMPORT_VALUE_MAX`]; use [`Lamport::try_update`] for untrusted
    /// input.
    pub fn update(&mut self, remote: u64) -> u64 {
        match self.try_update(remote) {
            Ok(value) => value,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Lamport::update`], refusing a `remote` above [`LAMPORT_VALUE_MAX`] (the clock is
    /// then unchanged).
    pub fn try_update(&mut self, remote: u64) -> Result<u64, HlcError> {
        if remote > LAMPORT_VALUE_MAX {
            return Err(HlcError::LamportOutOfRange { remote, max: LAMPORT_VALUE_MAX });
        }
        self.counter = self.counter.max(remote);
        let value = self.tick();
        assert!(value > remote);
        Ok(value)
    }
}

#[cfg(test)]
#[path = "hlc_tests.rs"]
mod tests;
