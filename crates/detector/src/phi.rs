//! The phi accrual failure detector (Hayashibara, Défago, Yared, Katayama, 2004), computed
//! exactly as Akka's `PhiAccrualFailureDetector` computes it, in nanoseconds.
//!
//! # The formula
//!
//! The detector keeps the last `max_sample_size` inter-arrival intervals of heartbeats, their
//! mean `μ` and their (population) standard deviation `σ`. At time `now`, with `Δ = now - last
//! heartbeat`, it models the next interval as normal with
//!
//! ```text
//! μ' = μ + acceptable_heartbeat_pause
//! σ' = max(σ, min_std_deviation)
//! ```
//!
//! and reports how unlikely it is that a heartbeat sent by a live peer is still missing:
//!
//! ```text
//! φ(Δ) = -log10(1 - F(Δ))        F = CDF of N(μ', σ')
//! ```
//!
//! so φ = 1 means a 10% chance the peer is alive, φ = 2 a 1% chance, φ = 8 one in 10^8.
//! Like Akka, F is the logistic approximation of the normal CDF (Bowling et al. 2009, "A
//! logistic approximation to the cumulative normal distribution"; absolute error below 1.4e-4):
//!
//! ```text
//! y = (Δ - μ') / σ'
//! e = exp(-y * (1.5976 + 0.070566 * y²))      F(Δ) ≈ 1 / (1 + e)
//! φ = -log10(e / (1 + e))          if Δ > μ'   (1 - F = e / (1 + e), no cancellation)
//! φ = -log10(1 - 1 / (1 + e))      otherwise
//! ```
//!
//! [`phi_of`] is that function. It is increasing in `Δ`, so between two heartbeats phi only
//! grows and [`PhiAccrual::suspect_at`] can find the crossing of the threshold by bisection.
//! In the far tail the approximation overstates phi compared with the exact normal tail: the
//! default threshold 8 is reached at `y ≈ 5.23`, where the exact tail would give φ ≈ 7.06
//! (thresholds 1, 3, 5, 10, 12 are reached at y ≈ 1.28, 3.06, 4.12, 5.80, 6.29). We keep
//! Akka's numbers so that thresholds tuned for Akka (and Cassandra) mean the same here.
//!
//! # The parameters (Akka's names and defaults)
//!
//! - `threshold` (8.0): phi at or above which the peer is suspected. Low values detect a crash
//!   sooner and suspect live peers more often; high values the reverse.
//! - `max_sample_size` (1000): how many recent intervals estimate `μ` and `σ`.
//! - `min_std_deviation` (100 ms): floor on `σ`, so that a very regular peer is not suspected
//!   the moment one heartbeat is a little late.
//! - `acceptable_heartbeat_pause` (3 s): added to `μ`: the pause (GC, lost heartbeats) that is
//!   tolerated before phi starts to climb in earnest. It dominates the detection time.
//! - `first_heartbeat_estimate` (1 s): the expected interval before anything was measured. The
//!   first heartbeat bootstraps the window with two intervals, `estimate ± estimate / 4`, so
//!   that a peer that sends one heartbeat and dies is still detected.
//!
//! Two further rules come from Akka: a heartbeat that arrives while the peer is suspected does
//! not add its interval to the window (one long pause would skew the statistics for the next
//! thousand heartbeats); and before the first heartbeat phi is 0.

use std::time::Duration;

use palisade_clock::{MonoInstant, duration_nanos};
use serde::{Deserialize, Serialize};

use crate::error::{DetectorError, check_duration_max, check_positive_duration};
use crate::window::IntervalWindow;
use crate::{DURATION_MAX, FailureDetector, SAMPLE_SIZE_MAX, THRESHOLD_MAX};

/// Parameters of a [`PhiAccrual`] detector; see the [module documentation](self) for each.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PhiAccrualConfig {
    /// Phi at or above which the peer is suspected; in `(0, THRESHOLD_MAX]`.
    pub threshold: f64,
    /// Number of recent inter-arrival intervals kept; in `[1, SAMPLE_SIZE_MAX]`.
    pub max_sample_size: usize,
    /// Floor on the standard deviation of the intervals; in `(0, DURATION_MAX]`.
    pub min_std_deviation: Duration,
    /// Pause tolerated on top of the mean interval; in `[0, DURATION_MAX]`.
    pub acceptable_heartbeat_pause: Duration,
    /// Expected interval before any was measured; in `(0, DURATION_MAX]`.
    pub first_heartbeat_estimate: Duration,
}

impl Default for PhiAccrualConfig {
    /// Akka's defaults: threshold 8, 1000 samples, 100 ms, 3 s, 1 s.
    fn default() -> Self {
        PhiAccrualConfig {
            threshold: 8.0,
            max_sample_size: 1000,
            min_std_deviation: Duration::from_millis(100),
            acceptable_heartbeat_pause: Duration::from_secs(3),
            first_heartbeat_estimate: Duration::from_secs(1),
        }
    }
}

impl PhiAccrualConfig {
    /// Checks every parameter against its range.
    pub fn validate(&self) -> Result<(), DetectorError> {
        check_threshold(self.threshold)?;
        if self.max_sample_size == 0 {
            return Err(DetectorError::SampleSizeZero);
        }
        if self.max_sample_size > SAMPLE_SIZE_MAX {
            return Err(DetectorError::SampleSizeTooLarge {
                size: self.max_sample_size,
                max: SAMPLE_SIZE_MAX,
            });
        }
        check_positive_duration("min_std_deviation", self.min_std_deviation, DURATION_MAX)?;
        check_duration_max(
            "acceptable_heartbeat_pause",
            self.acceptable_heartbeat_pause,
            DURATION_MAX,
        )?;
        check_positive_duration(
            "first_heartbeat_estimate",
            self.first_heartbeat_estimate,
            DURATION_MAX,
        )
    }
}

/// Checks that a phi threshold is a finite number in `(0, THRESHOLD_MAX]`.
pub(crate) fn check_threshold(threshold: f64) -> Result<(), DetectorError> {
    if !threshold.is_finite() || threshold <= 0.0 {
        return Err(DetectorError::ThresholdInvalid { threshold });
    }
    if threshold > THRESHOLD_MAX {
        return Err(DetectorError::ThresholdTooLarge { threshold, max: THRESHOLD_MAX });
    }
    Ok(())
}

/// Akka's phi for a heartbeat missing for `time_diff_nanos`, when intervals are modelled as
/// normal with mean `mean_nanos` (acceptable pause included) and deviation `std_deviation_nanos`
/// (floor applied). See the [module documentation](self) for the formula.
///
/// Returns a value in `[0, +inf]`, never NaN, for any finite mean and positive deviation.
///
/// # Panics
///
/// If `std_deviation_nanos` is not positive or `mean_nanos` is not finite.
pub fn phi_of(time_diff_nanos: f64, mean_nanos: f64, std_deviation_nanos: f64) -> f64 {
    assert!(std_deviation_nanos > 0.0, "phi needs a positive standard deviation");
    assert!(mean_nanos.is_finite(), "phi needs a finite mean");
    let y = (time_diff_nanos - mean_nanos) / std_deviation_nanos;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    let phi = if time_diff_nanos > mean_nanos {
        -(e / (1.0 + e)).log10()
    } else {
        -(1.0 - 1.0 / (1.0 + e)).log10()
    };
    // Never NaN: if Δ > μ' then y > 0 and e is in [0, 1]; otherwise 1 / (1 + e) is in [0, 1]
    // even when e overflows to +inf. `-log10(1.0)` is -0.0: report a plain zero.
    if phi > 0.0 { phi } else { 0.0 }
}

/// The phi accrual failure detector watching one peer. See the [module documentation](self).
#[derive(Debug, Clone)]
pub struct PhiAccrual {
    config: PhiAccrualConfig,
    window: IntervalWindow,
    last_heartbeat: Option<MonoInstant>,
}

impl PhiAccrual {
    /// A detector that has not heard from the peer yet, or an error if `config` is invalid.
    pub fn new(config: PhiAccrualConfig) -> Result<Self, DetectorError> {
        config.validate()?;
        let mut detector = PhiAccrual {
            config,
            window: IntervalWindow::new(config.max_sample_size),
            last_heartbeat: None,
        };
        detector.bootstrap();
        Ok(detector)
    }

    /// The configuration.
    pub fn config(&self) -> &PhiAccrualConfig {
        &self.config
    }

    /// The arrival time of the latest heartbeat, if any arrived since creation or reset.
    pub fn last_heartbeat(&self) -> Option<MonoInstant> {
        self.last_heartbeat
    }

    /// Number of intervals in the window (2 after bootstrap, then up to `max_sample_size`).
    pub fn sample_count(&self) -> usize {
        self.window.len()
    }

    /// Mean of the intervals in the window, in nanoseconds (acceptable pause not included).
    pub fn mean_interval_nanos(&self) -> f64 {
        self.window.mean_nanos()
    }

    /// Standard deviation of the intervals in the window, in nanoseconds, before the
    /// `min_std_deviation` floor is applied.
    pub fn std_deviation_nanos(&self) -> f64 {
        self.window.std_deviation_nanos()
    }

    /// The earliest instant at which, if no heartbeat arrives before it, the peer is suspected
    /// (`is_available` turns false and stays false); `None` before the first heartbeat. A
    /// driver sets its timer to it. Found by bisection on the exact predicate, so it agrees
    /// with [`FailureDetector::is_available`] to the nanosecond.
    pub fn suspect_at(&self) -> Option<MonoInstant> {
        let last = self.last_heartbeat?;
        if !self.is_available(last) {
            return Some(last);
        }
        if self.is_available(MonoInstant::MAX) {
            return None;
        }
        // Invariant: available at `lo`, suspected at `hi`.
        let (mut lo, mut hi) = (last.as_nanos(), u64::MAX);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.is_available(MonoInstant::from_nanos(mid)) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(MonoInstant::from_nanos(hi))
    }

    /// Refills the window with Akka's two starter intervals, `estimate ± estimate / 4`.
    fn bootstrap(&mut self) {
        let mean = duration_nanos(self.config.first_heartbeat_estimate);
        let spread = mean / 4;
        self.window.clear();
        self.window.push(Duration::from_nanos(mean - spread));
        self.window.push(Duration::from_nanos(mean + spread));
    }
}

impl FailureDetector for PhiAccrual {
    fn heartbeat(&mut self, now: MonoInstant) {
        match self.last_heartbeat {
            None => self.bootstrap(),
            Some(last) => {
                // A heartbeat that ends a suspicion does not teach the window a long pause.
                if self.is_available(now) {
                    self.window.push(now.saturating_duration_since(last));
                }
            }
        }
        self.last_heartbeat = Some(self.last_heartbeat.map_or(now, |last| last.max(now)));
    }

    fn phi(&self, now: MonoInstant) -> f64 {
        let Some(last) = self.last_heartbeat else {
            return 0.0;
        };
        let time_diff = duration_nanos(now.saturating_duration_since(last)) as f64;
        let mean = self.window.mean_nanos()
            + duration_nanos(self.config.acceptable_heartbeat_pause) as f64;
        let std = self
            .window
            .std_deviation_nanos()
            .max(duration_nanos(self.config.min_std_deviation) as f64);
        phi_of(time_diff, mean, std)
    }

    fn is_available(&self, now: MonoInstant) -> bool {
        self.phi(now) < self.config.threshold
    }

    fn reset(&mut self) {
        self.last_heartbeat = None;
        self.bootstrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> MonoInstant {
        MonoInstant::from_nanos(n * 1_000_000)
    }

    /// The first heartbeat bootstraps the window as Akka does: two intervals, 750 ms and
    /// 1250 ms for a 1 s estimate.
    #[test]
    fn first_heartbeat_bootstraps_two_samples() {
        let mut d = PhiAccrual::new(PhiAccrualConfig::default()).unwrap();
        assert_eq!(d.phi(ms(5_000)), 0.0);
        d.heartbeat(ms(1_000));
        assert_eq!(d.sample_count(), 2);
        assert_eq!(d.mean_interval_nanos(), 1e9);
        assert_eq!(d.std_deviation_nanos(), 250e6);
    }

    /// A heartbeat that arrives while the peer is suspected is not recorded.
    #[test]
    fn heartbeat_after_suspicion_is_not_recorded() {
        let config =
            PhiAccrualConfig { acceptable_heartbeat_pause: Duration::ZERO, ..Default::default() };
        let mut d = PhiAccrual::new(config).unwrap();
        d.heartbeat(ms(0));
        d.heartbeat(ms(1_000));
        assert_eq!(d.sample_count(), 3);
        assert!(!d.is_available(ms(61_000)));
        d.heartbeat(ms(61_000));
        assert_eq!(d.sample_count(), 3);
        assert_eq!(d.last_heartbeat(), Some(ms(61_000)));
        assert!(d.is_available(ms(61_500)));
    }

    /// A `now` older than the last heartbeat counts as an interval of zero and does not move
    /// the last heartbeat back.
    #[test]
    fn stale_now_is_a_zero_interval() {
        let mut d = PhiAccrual::new(PhiAccrualConfig::default()).unwrap();
        d.heartbeat(ms(2_000));
        d.heartbeat(ms(1_000));
        assert_eq!(d.last_heartbeat(), Some(ms(2_000)));
        assert_eq!(d.sample_count(), 3);
        assert!(d.phi(ms(1_000)) < 1.0);
    }

    /// `reset` forgets the peer: available, phi 0, bootstrap window.
    #[test]
    fn reset_forgets_everything() {
        let mut d = PhiAccrual::new(PhiAccrualConfig::default()).unwrap();
        for i in 0..10 {
            d.heartbeat(ms(i * 500));
        }
        d.reset();
        assert_eq!(d.last_heartbeat(), None);
        assert_eq!(d.phi(ms(1_000_000)), 0.0);
        assert!(d.is_available(ms(1_000_000)));
        assert_eq!(d.sample_count(), 2);
        assert_eq!(d.suspect_at(), None);
    }
}
