//! How far another node's time-of-day clock is from ours, and how sure we are of it.
//!
//! The NTP exchange: we send a ping at local `t1`, the remote receives it at its `t2` and
//! answers at its `t3`, we receive the answer at local `t4`. If the two legs took `d1` and `d2`
//! and the remote's clock is ahead of ours by `θ`, then `t2 - t1 = θ + d1` and
//! `t3 - t4 = θ - d2`, so
//!
//! ```text
//! offset = ((t2 - t1) + (t3 - t4)) / 2 = θ + (d1 - d2) / 2
//! rtt    = (t4 - t1) - (t3 - t2)       = d1 + d2
//! ```
//!
//! Neither leg can be negative, so however asymmetric the network, `|d1 - d2| / 2 <= rtt / 2`:
//! the true offset lies within `offset ± rtt/2`. The sample with the smallest rtt gives the
//! tightest bound, which is why NTP's clock filter keeps the lowest-delay sample.
//!
//! Three refinements make the bound hold under this project's clock model, not just in a
//! perfect world:
//! * Durations are measured on the monotonic clocks, which drift by at most `ρ`. The local
//!   side of the exchange uses `t1.mono` and `t4.mono`; the remote's hold time `t3 - t2` is all
//!   it reports. Drift during the exchange and during the sample's age (the time since `t4`)
//!   adds [`crate::divergence`] of each (about `2ρ` times it: both clocks drift).
//! * The sample is stored as the offset to our *monotonic* clock and turned into an offset to
//!   our time-of-day clock with the latest known difference between the two. A step of our
//!   time-of-day clock, before, during or after an exchange, therefore never corrupts a stored
//!   sample; a sample whose exchange spans such a step is discarded anyway, as suspect.
//! * Every bound carries [`crate::ROUNDING_SLACK_NANOS`] for whole-nanosecond readings.
//!
//! What cannot be caught: a step of the *remote's* time-of-day clock. One during its hold time
//! corrupts that sample (only a hold longer than the round trip is recognised); one between
//! samples changes the true offset, and older samples keep describing the old one until they
//! leave the window or a newer sample's error is smaller. Keep the window short.
//!
//! [`OffsetEstimator::estimate`] returns the sample with the smallest error *now* (rtt/2 plus
//! drift over its age): among samples of the same age, that is the lowest-rtt one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, check_drift};
use crate::time::{
    DRIFT_BOUND_PPM_DEFAULT, MonoInstant, Now, ROUNDING_SLACK_NANOS, WallTime, divergence,
    duration_nanos,
};

/// Largest `samples_max` an [`OffsetConfig`] may name.
pub const OFFSET_SAMPLES_MAX: usize = 1024;

/// How far apart the two readings of one [`Now`] may be taken, beyond drift, before an
/// exchange is taken to span a local time-of-day step: 10 µs, for a preempted driver.
pub const READ_SKEW_NANOS_MAX: u64 = 10_000;

/// Tuning of an [`OffsetEstimator`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetConfig {
    /// Samples older than this (on the local monotonic clock) are forgotten. Must be > 0.
    pub window: Duration,
    /// At most this many samples are kept (the oldest go first); 1..=[`OFFSET_SAMPLES_MAX`].
    pub samples_max: usize,
    /// Drift bound of each node's monotonic clock, in ppm (the same value for both nodes,
    /// normally [`crate::DRIFT_BOUND_PPM_DEFAULT`]); both drifts are accounted for.
    pub drift_ppm: u32,
}

impl OffsetConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_drift(self.drift_ppm)?;
        if self.window.is_zero() {
            return Err(ConfigError::DurationZero { name: "window" });
        }
        if self.samples_max == 0 || self.samples_max > OFFSET_SAMPLES_MAX {
            let (samples_max, max) = (self.samples_max, OFFSET_SAMPLES_MAX);
            return Err(ConfigError::SamplesMaxOutOfRange { samples_max, max });
        }
        Ok(())
    }
}

impl Default for OffsetConfig {
    /// A 30 s window of at most 16 samples, at the default drift bound.
    fn default() -> Self {
        OffsetConfig {
            window: Duration::from_secs(30),
            samples_max: 16,
            drift_ppm: DRIFT_BOUND_PPM_DEFAULT,
        }
    }
}

/// What [`OffsetEstimator::handle_sample`] did with a sample.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SampleOutcome {
    /// The sample was stored.
    Kept,
    /// `received` is before `sent` on the monotonic clock: not a round trip.
    ReceivedBeforeSent,
    /// The local time-of-day clock moved differently from the monotonic clock during the
    /// exchange (a step): discarded as suspect.
    LocalWallStepped,
    /// The remote's hold time `t3 - t2` is longer than the whole round trip could allow: its
    /// clock stepped forward while it held the ping. Discarded.
    RemoteHoldTooLong,
    /// The offset does not fit in an `i64` of nanoseconds (292 years). Discarded.
    OffsetOutOfRange,
}

/// The current best estimate of a remote clock's offset.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetEstimate {
    /// Remote time-of-day minus local time-of-day, in nanoseconds (saturating).
    pub offset_nanos: i64,
    /// Round-trip time of the sample, remote hold time excluded.
    pub rtt: Duration,
    /// The true offset lies within `offset_nanos ± error`: rtt/2 + drift over the exchange and
    /// the age + rounding slack.
    pub error: Duration,
    /// Time since the sample's answer arrived, on the local monotonic clock.
    pub age: Duration,
}

impl OffsetEstimate {
    /// Whether the offset is definitely larger than `max` in magnitude:
    /// `|offset| - error > max`.
    pub fn exceeds(&self, max: Duration) -> bool {
        let magnitude = u128::from(self.offset_nanos.unsigned_abs());
        magnitude > self.error.as_nanos() + max.as_nanos()
    }

    /// Whether the offset is definitely at most `max` in magnitude: `|offset| + error <= max`.
    pub fn within(&self, max: Duration) -> bool {
        let magnitude = u128::from(self.offset_nanos.unsigned_abs());
        magnitude + self.error.as_nanos() <= max.as_nanos()
    }

    /// The interval `[offset - error, offset + error]`, in nanoseconds.
    pub fn bounds_nanos(&self) -> (i128, i128) {
        let error = self.error.as_nanos() as i128;
        (i128::from(self.offset_nanos) - error, i128::from(self.offset_nanos) + error)
    }
}

/// One kept sample.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Sample {
    /// Remote time-of-day minus local monotonic reading, at `received`.
    mono_offset_nanos: i128,
    /// Round trip, hold time excluded.
    rtt: Duration,
    /// Error at `received`: rtt/2 + drift over the exchange.
    error: Duration,
    /// Local monotonic reading when the answer arrived.
    received: MonoInstant,
}

/// Keeps recent ping/pong samples against one remote node and answers with the best offset
/// estimate. Sans-IO: the caller timestamps the exchange; see the module documentation.
///
/// Call order: [`OffsetEstimator::handle_sample`] for every completed exchange, in any order;
/// [`OffsetEstimator::estimate`] (or [`OffsetEstimator::estimate_at`]) whenever an estimate is
/// needed.
#[derive(Debug, Clone)]
pub struct OffsetEstimator {
    config: OffsetConfig,
    samples: Vec<Sample>,
    /// Local time-of-day minus monotonic reading, from the latest (by monotonic time) reading
    /// seen, and that reading's monotonic time.
    wall_minus_mono: Option<(MonoInstant, i128)>,
}

impl OffsetEstimator {
    /// An estimator with no samples.
    ///
    /// # Panics
    /// If the configuration is refused by [`OffsetConfig::validate`].
    pub fn new(config: OffsetConfig) -> Self {
        match OffsetEstimator::try_new(config) {
            Ok(estimator) => estimator,
            Err(e) => panic!("invalid offset estimator configuration: {e}"),
        }
    }

    /// Like [`OffsetEstimator::new`], returning the refusal instead.
    pub fn try_new(config: OffsetConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(OffsetEstimator { config, samples: Vec::new(), wall_minus_mono: None })
    }

    /// Takes one completed exchange: `sent` (local, t1), `remote_received` (t2),
    /// `remote_sent` (t3), `received` (local, t4).
    pub fn handle_sample(
        &mut self,
        sent: Now,
        remote_received: WallTime,
        remote_sent: WallTime,
        received: Now,
    ) -> SampleOutcome {
        self.observe(sent);
        self.observe(received);
        if received.mono < sent.mono {
            return SampleOutcome::ReceivedBeforeSent;
        }
        let elapsed = received.mono - sent.mono;
        let elapsed_nanos = i128::from(duration_nanos(elapsed));
        let tolerance = divergence(elapsed, self.config.drift_ppm).as_nanos() as i128
            + i128::from(ROUNDING_SLACK_NANOS);
        let wall_moved = received.wall.signed_nanos_since(sent.wall);
        if (wall_moved - elapsed_nanos).abs() > tolerance + i128::from(READ_SKEW_NANOS_MAX) {
            return SampleOutcome::LocalWallStepped;
        }
        let hold = remote_sent.signed_nanos_since(remote_received).max(0);
        if hold > elapsed_nanos + tolerance {
            return SampleOutcome::RemoteHoldTooLong;
        }
        let rtt_nanos = (elapsed_nanos - hold).max(0);
        // Offset to the local monotonic clock, from the monotonic readings only.
        let sum = remote_received.signed_nanos_since(WallTime::UNIX_EPOCH)
            - i128::from(sent.mono.as_nanos())
            + remote_sent.signed_nanos_since(WallTime::UNIX_EPOCH)
            - i128::from(received.mono.as_nanos());
        let mono_offset_nanos = sum.div_euclid(2);
        let local_wall_minus_mono =
            i128::from(received.wall.as_nanos()) - i128::from(received.mono.as_nanos());
        if i64::try_from(mono_offset_nanos - local_wall_minus_mono).is_err() {
            return SampleOutcome::OffsetOutOfRange;
        }
        let rtt = Duration::from_nanos(u64::try_from(rtt_nanos).unwrap_or(u64::MAX));
        let half_rtt =
            Duration::from_nanos(u64::try_from(rtt_nanos).unwrap_or(u64::MAX).div_ceil(2));
        let error = half_rtt.saturating_add(divergence(elapsed, self.config.drift_ppm));
        self.store(Sample { mono_offset_nanos, rtt, error, received: received.mono });
        SampleOutcome::Kept
    }

    /// The best estimate at local monotonic time `now`, as an offset to the local time-of-day
    /// clock as it read at the latest reading passed to
    /// [`handle_sample`](OffsetEstimator::handle_sample). `None` if no sample is within the
    /// window. To account for a local step since then, use
    /// [`estimate_at`](OffsetEstimator::estimate_at).
    pub fn estimate(&self, now: MonoInstant) -> Option<OffsetEstimate> {
        let (_, wall_minus_mono) = self.wall_minus_mono?;
        self.estimate_with(now, wall_minus_mono)
    }

    /// The best estimate at `now`, as an offset to the local time-of-day clock as it reads in
    /// `now`: exact even if that clock stepped since the latest sample.
    pub fn estimate_at(&self, now: Now) -> Option<OffsetEstimate> {
        let wall_minus_mono = i128::from(now.wall.as_nanos()) - i128::from(now.mono.as_nanos());
        self.estimate_with(now.mono, wall_minus_mono)
    }

    /// Number of samples currently kept (some may be outside the window until the next
    /// sample prunes them).
    pub fn samples_len(&self) -> usize {
        self.samples.len()
    }

    /// The configuration.
    pub fn config(&self) -> &OffsetConfig {
        &self.config
    }

    fn estimate_with(&self, now: MonoInstant, wall_minus_mono: i128) -> Option<OffsetEstimate> {
        let best = self
            .samples
            .iter()
            .filter(|s| age(now, s.received) <= self.config.window)
            .map(|s| (self.error_at(s, now), s))
            .min_by(|(ea, a), (eb, b)| {
                ea.cmp(eb).then(a.rtt.cmp(&b.rtt)).then(b.received.cmp(&a.received))
            })?;
        let (error, sample) = best;
        let offset = sample.mono_offset_nanos - wall_minus_mono;
        let offset_nanos =
            i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
        Some(OffsetEstimate {
            offset_nanos,
            rtt: sample.rtt,
            error,
            age: age(now, sample.received),
        })
    }

    /// Error of `sample` at `now`: its error at reception, drift over its age, rounding slack.
    fn error_at(&self, sample: &Sample, now: MonoInstant) -> Duration {
        let age = age(now, sample.received);
        sample
            .error
            .saturating_add(divergence(age, self.config.drift_ppm))
            .saturating_add(Duration::from_nanos(ROUNDING_SLACK_NANOS))
    }

    /// Remembers the latest local time-of-day minus monotonic difference.
    fn observe(&mut self, reading: Now) {
        let newer = self.wall_minus_mono.is_none_or(|(mono, _)| reading.mono >= mono);
        if newer {
            let difference =
                i128::from(reading.wall.as_nanos()) - i128::from(reading.mono.as_nanos());
            self.wall_minus_mono = Some((reading.mono, difference));
        }
    }

    /// Stores a sample, forgetting samples outside the window and the oldest beyond
    /// `samples_max`.
    fn store(&mut self, sample: Sample) {
        let window = self.config.window;
        let newest = self
            .samples
            .iter()
            .map(|s| s.received)
            .max()
            .map_or(sample.received, |m| m.max(sample.received));
        self.samples.retain(|s| age(newest, s.received) <= window);
        self.samples.push(sample);
        while self.samples.len() > self.config.samples_max {
            let oldest = (0..self.samples.len())
                .min_by_key(|&i| self.samples[i].received)
                .expect("a non-empty list has a minimum");
            self.samples.swap_remove(oldest);
        }
        assert!(self.samples.len() <= self.config.samples_max);
    }
}

/// Distance between `now` and `received` on the monotonic clock, either way: a sample "from
/// the future" (a caller passing an older `now`) ages by the same drift as one from the past.
fn age(now: MonoInstant, received: MonoInstant) -> Duration {
    if now >= received { now - received } else { received - now }
}

#[cfg(test)]
#[path = "offset_tests.rs"]
mod tests;
