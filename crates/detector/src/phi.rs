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
//! grows and the threshold is crossed at one instant, [`PhiAccrual::suspect_at`]. That instant
//! only changes when a heartbeat arrives, so the detector finds it at most once per heartbeat
//! (when first asked) and keeps it: `is_available(now)` is then a comparison, not an `exp`
//! and a `log10`. Finding it is cheap too: solving `φ = threshold` for `y` is a cubic
//! (Cardano's formula, solved once per detector), which puts the crossing within a few
//! nanoseconds; a short search on the exact predicate `phi(now) < threshold` then fixes the
//! exact nanosecond. That predicate is decided from the exponent inside `exp` wherever it is
//! clearly away from the threshold's (`ExponentBand`), so the search rarely needs the `exp`
//! and the `log10` at all.
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

use std::cell::Cell;
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
    /// [`threshold_y`] of the configured threshold.
    threshold_y: f64,
    /// [`ExponentBand::of`] the configured threshold.
    band: ExponentBand,
    /// The first instant at which phi reaches the threshold for the current window and last
    /// heartbeat (inner `None`: never, or no heartbeat yet), once computed; every heartbeat
    /// and reset clears it.
    suspect_at: Cell<Option<Option<MonoInstant>>>,
}

impl PhiAccrual {
    /// A detector that has not heard from the peer yet, or an error if `config` is invalid.
    pub fn new(config: PhiAccrualConfig) -> Result<Self, DetectorError> {
        config.validate()?;
        let mut detector = PhiAccrual {
            config,
            window: IntervalWindow::new(config.max_sample_size),
            last_heartbeat: None,
            threshold_y: threshold_y(config.threshold),
            band: ExponentBand::of(config.threshold),
            suspect_at: Cell::new(None),
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
    /// driver sets its timer to it. Computed when the last heartbeat arrived, on the exact
    /// predicate `phi < threshold`, so it agrees with [`PhiAccrual::phi`] to the nanosecond.
    pub fn suspect_at(&self) -> Option<MonoInstant> {
        if let Some(known) = self.suspect_at.get() {
            return known;
        }
        let found = self.compute_suspect_at();
        self.suspect_at.set(Some(found));
        found
    }

    /// `μ + acceptable pause`: the mean of the model of the next interval.
    fn model_mean(&self) -> f64 {
        self.window.mean_nanos() + duration_nanos(self.config.acceptable_heartbeat_pause) as f64
    }

    /// The normal model of the next interval: `μ + acceptable pause` and `max(σ, floor)`.
    fn model(&self) -> Model {
        let mean = self.model_mean();
        let std = self
            .window
            .std_deviation_nanos()
            .max(duration_nanos(self.config.min_std_deviation) as f64);
        Model { mean, std }
    }

    /// Finds the first suspected instant after the last heartbeat: an estimate from the
    /// inverse of the formula, then a galloping search and a bisection on the exact predicate
    /// (phi is non-decreasing in `now`, so the first suspected instant is unique).
    fn compute_suspect_at(&self) -> Option<MonoInstant> {
        let last = self.last_heartbeat?;
        let model = self.model();
        let base = last.as_nanos();
        let available = |t: u64| model.available(base, t, self.config.threshold, self.band);
        // At `base` the interval is 0, not above the mean: phi is at most log10(2) there (see
        // `is_available`), so only a threshold that low needs the `exp` and the `log10`.
        let surely_available = self.config.threshold > PHI_AT_MEAN_BOUND && model.mean >= 0.0;
        if !surely_available && !available(base) {
            return Some(last);
        }
        // No separate check that the peer is ever suspected (an `exp` and a `log10` at the end
        // of time, a third of the cost): the galloping search below returns `None` itself if it
        // reaches the end of time still available, and otherwise finds the same instant.
        let estimate = model.mean + self.threshold_y * model.std;
        let guess = if estimate.is_finite() && estimate > 0.0 {
            // Saturating float-to-int conversion; clamped into (last, MAX] below.
            base.saturating_add(estimate.ceil() as u64)
        } else {
            base
        };
        let guess = guess.max(base.saturating_add(1));
        // Invariant sought: available at `lo`, suspected at `hi`.
        let (mut lo, mut hi);
        if available(guess) {
            lo = guess;
            let mut step = 1u64;
            loop {
                if lo == u64::MAX {
                    return None;
                }
                let next = lo.saturating_add(step);
                if !available(next) {
                    hi = next;
                    break;
                }
                lo = next;
                step = step.saturating_mul(2);
            }
        } else {
            hi = guess;
            let mut step = 1u64;
            loop {
                let next = hi.saturating_sub(step).max(base);
                if available(next) {
                    lo = next;
                    break;
                }
                hi = next;
                step = step.saturating_mul(2);
            }
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if available(mid) {
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

/// An upper bound on phi while `Δ` is at most the model's mean: `log10(2)` plus a margin for
/// rounding.
const PHI_AT_MEAN_BOUND: f64 = 0.302;

/// The window's model of the next interval, in nanoseconds (pause and floor applied).
#[derive(Clone, Copy, Debug)]
struct Model {
    mean: f64,
    std: f64,
}

impl Model {
    /// Phi at `now_nanos` after a last heartbeat at `last_nanos` (an earlier `now` counts as
    /// the last heartbeat).
    fn phi(self, last_nanos: u64, now_nanos: u64) -> f64 {
        phi_of(now_nanos.saturating_sub(last_nanos) as f64, self.mean, self.std)
    }

    /// Exactly `self.phi(last_nanos, now_nanos) < threshold`, where `band` is
    /// [`ExponentBand::of`] `threshold`; most of the time without the `exp` and the `log10`.
    fn available(
        self,
        last_nanos: u64,
        now_nanos: u64,
        threshold: f64,
        band: ExponentBand,
    ) -> bool {
        let time_diff = now_nanos.saturating_sub(last_nanos) as f64;
        if time_diff > self.mean {
            // The exponent exactly as `phi_of` computes it (same operations, same order).
            let y = (time_diff - self.mean) / self.std;
            let z = -y * (1.5976 + 0.070566 * y * y);
            if z > band.available_above {
                return true;
            }
            if z < band.suspected_below {
                return false;
            }
        }
        phi_of(time_diff, self.mean, self.std) < threshold
    }
}

/// Where `phi_of` can be decided from its exponent `z` (`e = exp(z)`, in the branch `Δ > μ'`)
/// without computing the `exp` and the `log10`, with the same answer.
///
/// In exact arithmetic `φ = -log10(q)` with `q = e^z / (1 + e^z)` decreases in `z`, and equals
/// the threshold at `z* = ln(p / (1 - p))`, `p = 10^-threshold`. Moving `z` by `ε` away from
/// `z*` moves the exact `φ` by at least `ε (1 - q) / ln 10 ≥ 0.2 ε` (`q ≤ 1/2` in that branch,
/// `z ≤ 0`; a threshold below `log10 2` has `z* > 0` and the whole branch is far below it,
/// where `φ ≥ log10 2`).
/// The computed `φ` is off the exact one by far less than that for `ε = 1e-9 (1 + |z*|)`:
/// `exp`, `1 + e` and the division each err by at most an ulp or two (relative ~1e-15 on `q`,
/// ~1e-15 on `log10 q`) and `log10` by at most 2 ulps of a value below 101 (~3e-14), where
/// `0.2 ε ≥ 2e-10`. So above the band the computed `φ` is surely below the threshold, below the
/// band surely at or above it; only inside the band (a few percent of the searches for the
/// crossing touch it) is `φ` computed.
#[derive(Clone, Copy, Debug)]
struct ExponentBand {
    /// Above this exponent, phi is below the threshold.
    available_above: f64,
    /// Below this exponent, phi is at or above the threshold.
    suspected_below: f64,
}

impl ExponentBand {
    /// The band around the exponent at which phi equals `threshold` (validated: finite, in
    /// `(0, THRESHOLD_MAX]`).
    fn of(threshold: f64) -> ExponentBand {
        let z = threshold_exponent(threshold);
        let margin = 1e-9 * (1.0 + z.abs());
        ExponentBand { available_above: z + margin, suspected_below: z - margin }
    }
}

/// `ln(p / (1 - p))` with `p = 10^-threshold`: the exponent `z` at which Akka's phi equals
/// `threshold` (from `p = e / (1 + e)`, `e = exp(z)`).
fn threshold_exponent(threshold: f64) -> f64 {
    let p = 10f64.powf(-threshold);
    p.ln() - (-p).ln_1p()
}

/// The `y = (Δ - μ') / σ'` at which Akka's phi equals `threshold`: the real root of
/// `0.070566 y³ + 1.5976 y + ln(p / (1 - p)) = 0` with `p = 10^-threshold` (from
/// `p = e / (1 + e)`, `e = exp(-y (1.5976 + 0.070566 y²))`), by Cardano's formula. Only an
/// estimate: the caller confirms the instant on the exact predicate.
fn threshold_y(threshold: f64) -> f64 {
    let ln_e = threshold_exponent(threshold);
    // Depressed cubic y³ + a y + b = 0 with a > 0: one real root.
    let a = 1.5976 / 0.070566;
    let b = ln_e / 0.070566;
    let root = (b * b / 4.0 + a * a * a / 27.0).sqrt();
    (-b / 2.0 + root).cbrt() + (-b / 2.0 - root).cbrt()
}

impl FailureDetector for PhiAccrual {
    fn heartbeat(&mut self, now: MonoInstant) {
        match self.last_heartbeat {
            None => self.bootstrap(),
            Some(last) => {
                // A heartbeat that ends a suspicion does not teach the window a long pause.
                if self.is_available(now) {
                    self.window.push_nanos(now.as_nanos().saturating_sub(last.as_nanos()));
                }
            }
        }
        self.last_heartbeat = Some(self.last_heartbeat.map_or(now, |last| last.max(now)));
        self.suspect_at.set(None);
    }

    fn phi(&self, now: MonoInstant) -> f64 {
        let Some(last) = self.last_heartbeat else {
            return 0.0;
        };
        self.model().phi(last.as_nanos(), now.as_nanos())
    }

    /// A comparison with [`PhiAccrual::suspect_at`] once that is known; until then (a
    /// detector whose driver never asks when it will suspect), phi itself.
    fn is_available(&self, now: MonoInstant) -> bool {
        let Some(last) = self.last_heartbeat else {
            return true;
        };
        match self.suspect_at.get() {
            // A `now` before the last heartbeat counts as the last heartbeat, as in `phi`.
            Some(known) => known.is_none_or(|s| now.max(last) < s),
            None => {
                // Up to the model's mean phi is at most log10(2) ≈ 0.30103 (`e >= 1` there):
                // below any threshold above that, without an `exp` and a `log10`.
                let time_diff = now.as_nanos().saturating_sub(last.as_nanos()) as f64;
                if self.config.threshold > PHI_AT_MEAN_BOUND && time_diff <= self.model_mean() {
                    return true;
                }
                self.phi(now) < self.config.threshold
            }
        }
    }

    fn reset(&mut self) {
        self.last_heartbeat = None;
        self.suspect_at.set(None);
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

    /// The inverse of the formula lands on the module documentation's figures (threshold 8 at
    /// y ≈ 5.23, 1 at y ≈ 1.28, 12 at y ≈ 6.29), where `phi_of` gives back the threshold.
    #[test]
    fn threshold_y_inverts_the_formula() {
        for (threshold, y) in [(8.0, 5.23), (1.0, 1.28), (12.0, 6.29)] {
            let found = threshold_y(threshold);
            assert!((found - y).abs() < 0.01, "threshold {threshold}: y {found}");
            assert!((phi_of(found, 0.0, 1.0) - threshold).abs() < 1e-6, "threshold {threshold}");
        }
    }

    /// The predicate through the exponent band agrees with `phi_of` everywhere, and in
    /// particular nanosecond by nanosecond around the crossing, for several thresholds and
    /// models (including a threshold low enough for the `Δ <= μ'` branch to matter).
    #[test]
    fn exponent_band_agrees_with_phi() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for threshold in [0.1, 0.302, 0.5, 1.0, 3.0, 8.0, 12.0, 16.0, 50.0, 100.0] {
            let band = ExponentBand::of(threshold);
            for _ in 0..200 {
                let mean = (next() % 5_000_000_000) as f64;
                let std = (1 + next() % 1_000_000_000) as f64;
                let model = Model { mean, std };
                let crossing = mean + threshold_y(threshold) * std;
                let last = next() % 1_000_000_000_000;
                let centre = last + crossing.max(0.0) as u64;
                for t in centre.saturating_sub(300)..centre + 300 {
                    let exact = model.phi(last, t) < threshold;
                    assert_eq!(model.available(last, t, threshold, band), exact, "{threshold}");
                }
                let far = last + next() % 100_000_000_000;
                let exact = model.phi(last, far) < threshold;
                assert_eq!(model.available(last, far, threshold, band), exact, "{threshold}");
            }
        }
    }

    /// `suspect_at` is the exact nanosecond at which `phi` (computed in full) reaches the
    /// threshold, over random configurations and heartbeat streams.
    #[test]
    fn suspect_at_is_the_exact_crossing() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        for round in 0..300 {
            let config = PhiAccrualConfig {
                threshold: [0.2, 0.5, 1.0, 3.0, 8.0, 12.0, 40.0][round % 7],
                max_sample_size: 1 + next(50) as usize,
                min_std_deviation: Duration::from_nanos(1 + next(200_000_000)),
                acceptable_heartbeat_pause: Duration::from_nanos(next(3_000_000_000)),
                first_heartbeat_estimate: Duration::from_nanos(1 + next(1_000_000_000)),
            };
            let mut d = PhiAccrual::new(config).unwrap();
            let mut now = next(1_000_000_000_000);
            for _ in 0..20 {
                now += next(300_000_000);
                d.heartbeat(MonoInstant::from_nanos(now));
                let at = d.suspect_at().expect("suspected some day").as_nanos();
                let phi = |t: u64| d.phi(MonoInstant::from_nanos(t));
                assert!(phi(at) >= config.threshold, "{config:?}");
                if at > now {
                    assert!(phi(at - 1) < config.threshold, "{config:?}");
                }
            }
        }
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
