//! Properties of the phi detector over arbitrary heartbeat sequences (module docs of `phi`).

use std::time::Duration;

use palisade_detector::{FailureDetector, MonoInstant, PhiAccrual, PhiAccrualConfig, phi_of};
use proptest::prelude::*;

fn detector(threshold: f64, pause_ms: u64, max_sample_size: usize) -> PhiAccrual {
    PhiAccrual::new(PhiAccrualConfig {
        threshold,
        max_sample_size,
        acceptable_heartbeat_pause: Duration::from_millis(pause_ms),
        ..Default::default()
    })
    .unwrap()
}

/// The first instant at which phi reaches `threshold`, by bisection over `[last, u64::MAX]`
/// on phi itself (how `suspect_at` was computed before it was cached).
fn bisect_crossing(d: &PhiAccrual, last: u64, threshold: f64) -> u64 {
    let suspected = |t: u64| d.phi(MonoInstant::from_nanos(t)) >= threshold;
    if suspected(last) {
        return last;
    }
    assert!(suspected(u64::MAX), "a finite window is suspected at the end of time");
    let (mut lo, mut hi) = (last, u64::MAX);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if suspected(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

proptest! {
    /// Between heartbeats phi never decreases, and `suspect_at` is exactly the first instant
    /// at which phi reaches the threshold (and at which `is_available` turns false): it is
    /// cached per heartbeat, so it is checked here against phi itself and against a plain
    /// bisection over all of time.
    #[test]
    fn suspect_at_is_the_exact_crossing(
        gaps in prop::collection::vec(1_u64..5_000_000_000, 1..50),
        threshold in 0.5_f64..20.0,
        pause_ms in 0_u64..5_000,
        probes in prop::collection::vec(0_u64..20_000_000_000, 1..20),
    ) {
        let mut d = detector(threshold, pause_ms, 16);
        let mut t = 1_000_000_000_u64;
        for gap in gaps {
            d.heartbeat(MonoInstant::from_nanos(t));
            t += gap;
        }
        // Before `suspect_at` is first asked, `is_available` takes another path: check both.
        let unasked = d.clone();
        let last = d.last_heartbeat().unwrap().as_nanos();
        let at = d.suspect_at().unwrap().as_nanos();
        prop_assert_eq!(at, bisect_crossing(&d, last, threshold));
        prop_assert!(at >= last);
        prop_assert!(!d.is_available(MonoInstant::from_nanos(at)));
        prop_assert!(d.phi(MonoInstant::from_nanos(at)) >= threshold);
        if at > last {
            prop_assert!(d.is_available(MonoInstant::from_nanos(at - 1)));
            prop_assert!(d.phi(MonoInstant::from_nanos(at - 1)) < threshold);
        }
        let mut probes = probes;
        probes.sort_unstable();
        let mut previous = 0.0;
        for p in probes {
            let now = MonoInstant::from_nanos(last + p);
            let phi = d.phi(now);
            prop_assert!(phi >= previous);
            prop_assert!(phi >= 0.0);
            prop_assert_eq!(d.is_available(now), last + p < at);
            prop_assert_eq!(phi < threshold, last + p < at);
            prop_assert_eq!(unasked.is_available(now), phi < threshold);
            previous = phi;
        }
    }

    /// The window's statistics are those of the last `max_sample_size` recorded intervals
    /// (starter intervals included), computed the slow way.
    #[test]
    fn window_statistics_match_a_naive_computation(
        gaps in prop::collection::vec(0_u64..10_000_000_000, 0..100),
        max_sample_size in 1_usize..40,
    ) {
        // A one-day acceptable pause: every heartbeat is "available", so every gap is recorded.
        let config = PhiAccrualConfig {
            max_sample_size,
            acceptable_heartbeat_pause: palisade_detector::DURATION_MAX,
            ..Default::default()
        };
        let mut d = PhiAccrual::new(config).unwrap();
        let mut recorded: Vec<u64> = vec![750_000_000, 1_250_000_000];
        let mut t = 0_u64;
        d.heartbeat(MonoInstant::from_nanos(t));
        for gap in gaps {
            t += gap;
            d.heartbeat(MonoInstant::from_nanos(t));
            recorded.push(gap);
        }
        let window = &recorded[recorded.len().saturating_sub(max_sample_size)..];
        prop_assert_eq!(d.sample_count(), window.len());
        let n = window.len() as f64;
        let mean = window.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = window.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        prop_assert!((d.mean_interval_nanos() - mean).abs() <= 1e-6 * mean.max(1.0));
        prop_assert!((d.std_deviation_nanos() - var.sqrt()).abs() <= 1e-3 * var.sqrt().max(1.0));
    }

    /// `phi_of` is non-decreasing in the elapsed time and never NaN or negative.
    #[test]
    fn phi_of_is_monotone(
        a in -1e12_f64..1e12,
        b in -1e12_f64..1e12,
        mean in 0.0_f64..1e11,
        std in 1.0_f64..1e10,
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let (p, q) = (phi_of(lo, mean, std), phi_of(hi, mean, std));
        prop_assert!(p >= 0.0 && !p.is_nan());
        prop_assert!(p <= q);
    }
}
