//! The phi formula against independent reference numbers (module docs of `phi`, "The formula").
//!
//! References: the standard normal CDF table (Φ(0.6) = 0.72575, Φ(1.5) = 0.93319, Φ(2) =
//! 0.97725, Φ(2.5) = 0.99379, Φ(3.5) = 0.99977, Φ(4) = 0.99997), exact tail values
//! -log10(1 - Φ(y)) computed with erfc, and detector states worked out by hand.

use std::time::Duration;

use palisade_detector::{FailureDetector, MonoInstant, PhiAccrual, PhiAccrualConfig, phi_of};

fn ms(n: u64) -> MonoInstant {
    MonoInstant::from_nanos(n * 1_000_000)
}

/// 1 - 10^-phi: the CDF value the formula implies.
fn cdf(phi: f64) -> f64 {
    1.0 - 10f64.powf(-phi)
}

/// At the mean, F = 1/2 exactly, so phi = log10(2).
#[test]
fn phi_at_the_mean_is_log10_of_two() {
    assert_eq!(phi_of(1e9, 1e9, 1e8), 2f64.log10());
    assert_eq!(phi_of(0.0, 0.0, 10.0), 2f64.log10());
}

/// The implied CDF matches the normal table to 1e-3 (the logistic approximation's accuracy).
#[test]
fn implied_cdf_matches_the_normal_table() {
    let table = [(0.6, 0.72575), (1.5, 0.93319), (2.0, 0.97725), (2.5, 0.99379)];
    for (y, expected) in table {
        let got = cdf(phi_of(y * 10.0, 0.0, 10.0));
        assert!((got - expected).abs() < 1e-3, "y = {y}: {got} vs {expected}");
    }
    for (y, expected) in [(3.5, 0.99977), (4.0, 0.99997)] {
        let got = cdf(phi_of(y * 10.0, 0.0, 10.0));
        assert!((got - expected).abs() < 1e-4, "y = {y}: {got} vs {expected}");
    }
}

/// Phi at mean + 1σ, + 2σ, - 1σ against the exact normal tail (-log10(1 - Φ(y)) via erfc):
/// 0.79955, 1.64302, 0.07503. The approximation agrees to 1e-3 here; the exact values of the
/// approximation itself (worked out separately from the formula) are pinned to 1e-12.
#[test]
fn phi_near_the_mean_matches_the_exact_tail() {
    let cases = [
        (1.0, 0.799_545_541_491_970_4, 0.799_508_320_839_559_8),
        (2.0, 1.643_016_080_140_936_8, 1.642_827_885_487_112_3),
        (-1.0, 0.075_026_012_957_818_02, 0.075_033_032_140_939_9),
    ];
    for (y, exact, approximation) in cases {
        let phi = phi_of(1e9 + y * 1e8, 1e9, 1e8);
        assert!((phi - exact).abs() < 1e-3, "y = {y}: {phi} vs exact {exact}");
        assert!((phi - approximation).abs() < 1e-12, "y = {y}: {phi} vs {approximation}");
    }
}

/// In the far tail the logistic approximation overstates phi: at y = 3 it gives 2.9095 where
/// the exact tail gives 2.8697; threshold 8 is reached near y = 5.226.
#[test]
fn far_tail_follows_akka_not_the_exact_normal() {
    let phi = phi_of(3.0, 0.0, 1.0);
    assert!((phi - 2.909_475_326_484_953_8).abs() < 1e-12, "{phi}");
    assert!(phi_of(5.22, 0.0, 1.0) < 8.0);
    assert!(phi_of(5.23, 0.0, 1.0) > 8.0);
}

/// Extreme inputs: never NaN, never negative; +inf far past the mean, 0 far before it.
#[test]
fn extreme_inputs_stay_in_range() {
    assert_eq!(phi_of(-25.0, 0.0, 1.0), 0.0);
    assert_eq!(phi_of(0.0, 1e18, 1.0), 0.0);
    assert_eq!(phi_of(1.8e19, 0.0, 1.0), f64::INFINITY);
    let p = phi_of(10.0, 0.0, 1.0);
    assert!(p > 37.0 && p < 39.0, "{p}");
    let mut previous = 0.0;
    for i in 0..=400 {
        let p = phi_of(f64::from(i), 0.0, 10.0);
        assert!(!p.is_nan());
        assert!(p >= previous, "phi decreased at {i}");
        previous = p;
    }
}

/// A detector worked out by hand. Heartbeats at 0, 1, 2, 3 s with a 1 s estimate: the window
/// holds 750, 1250, 1000, 1000, 1000 ms, so μ = 1000 ms and σ = sqrt(25000) ms = 158.11 ms.
/// With no acceptable pause, phi 1 s after the last heartbeat is log10(2), and 1 s + 2σ after
/// it is the approximation's value at y = 2.
#[test]
fn detector_state_worked_out_by_hand() {
    let config =
        PhiAccrualConfig { acceptable_heartbeat_pause: Duration::ZERO, ..Default::default() };
    let mut d = PhiAccrual::new(config).unwrap();
    for t in [0, 1000, 2000, 3000] {
        d.heartbeat(ms(t));
    }
    assert_eq!(d.sample_count(), 5);
    assert_eq!(d.mean_interval_nanos(), 1e9);
    let sigma = 25_000_f64.sqrt() * 1e6;
    assert!((d.std_deviation_nanos() - sigma).abs() < 1e-3);
    assert!((d.phi(ms(4000)) - 2f64.log10()).abs() < 1e-12);
    let two_sigma_later = MonoInstant::from_nanos(4_000_000_000 + (2.0 * sigma).round() as u64);
    assert!((d.phi(two_sigma_later) - 1.642_827_885_487_112_3).abs() < 1e-6);
}

/// With Akka's defaults (pause 3 s) the mean becomes 1 s + 3 s: phi 4 s after the last
/// heartbeat is log10(2); the floor σ = 100 ms applies when the peer is perfectly regular.
#[test]
fn acceptable_pause_shifts_the_mean_and_min_std_floors_sigma() {
    let mut d = PhiAccrual::new(PhiAccrualConfig::default()).unwrap();
    for i in 0..=2000 {
        d.heartbeat(ms(i * 1000));
    }
    // 1000 equal intervals: σ = 0 before the floor.
    assert_eq!(d.std_deviation_nanos(), 0.0);
    let last = 2_000_000;
    assert!((d.phi(ms(last + 4000)) - 2f64.log10()).abs() < 1e-12);
    let expected = phi_of(200e6, 0.0, 100e6); // y = 2 with the 100 ms floor
    assert!((d.phi(ms(last + 4200)) - expected).abs() < 1e-12);
    // Threshold 8 is crossed at 4 s + 5.226 * 100 ms = 4.5226 s.
    let at = d.suspect_at().unwrap();
    let after_last = at.saturating_duration_since(ms(last));
    assert!(after_last > Duration::from_millis(4522), "{after_last:?}");
    assert!(after_last < Duration::from_millis(4523), "{after_last:?}");
}
