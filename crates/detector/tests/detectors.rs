//! Both detectors on heartbeat traces (crate docs, "Why two detectors"): a crashed sender is
//! suspected within a bound, a live but jittery one is not suspected by phi at threshold 8,
//! and the fixed-timeout baseline behaves as its definition says.

use std::time::Duration;

use palisade_detector::eval::{Trace, TraceModel, generate_trace};
use palisade_detector::{
    AnyDetector, DetectorConfig, FailureDetector, FixedTimeout, FixedTimeoutConfig, MonoInstant,
    PhiAccrual, PhiAccrualConfig,
};

const SEED: u64 = 20_040_101;

fn ms(n: u64) -> MonoInstant {
    MonoInstant::from_nanos(n * 1_000_000)
}

/// Feeds every arrival of `trace`; returns how many times the detector suspected the live
/// sender (not available at the instant a heartbeat arrived).
fn false_suspicions(detector: &mut impl FailureDetector, trace: &Trace) -> usize {
    let mut count = 0;
    for &arrival in &trace.arrivals {
        if !detector.is_available(arrival) {
            count += 1;
        }
        detector.heartbeat(arrival);
    }
    count
}

fn jittery() -> TraceModel {
    // σ = 20% of the interval on the sender: far more than a healthy sender shows.
    TraceModel { name: "jittery".into(), send_jitter_ratio: 0.2, ..TraceModel::normal_jitter() }
}

fn phi(threshold: f64, pause: Duration) -> PhiAccrual {
    let config =
        PhiAccrualConfig { threshold, acceptable_heartbeat_pause: pause, ..Default::default() };
    PhiAccrual::new(config).unwrap()
}

/// A live sender with 20% jitter, 10 virtual hours: phi at threshold 8 never suspects it, not
/// even without an acceptable pause, because σ is learned; a fixed 1.2 s timeout suspects it
/// thousands of times (about 16% of the gaps are longer).
#[test]
fn jittery_live_sender_is_not_suspected_by_phi_8() {
    let interval = Duration::from_secs(1);
    let trace = generate_trace(&jittery(), interval, Duration::from_secs(36_000), SEED);
    println!("seed {SEED}");
    let mut akka = phi(8.0, Duration::from_secs(3));
    assert_eq!(false_suspicions(&mut akka, &trace), 0);
    let mut bare = phi(8.0, Duration::ZERO);
    assert_eq!(false_suspicions(&mut bare, &trace), 0);
    let sigma = bare.std_deviation_nanos() / 1e6;
    assert!((150.0..250.0).contains(&sigma), "learned σ = {sigma} ms");
    let mut fixed = FixedTimeout::new(FixedTimeoutConfig { timeout: ms(1200) - ms(0) }).unwrap();
    let fixed_count = false_suspicions(&mut fixed, &trace);
    assert!(fixed_count > 3_000, "fixed 1.2 s suspected {fixed_count} times");
}

/// The same sender crashes after an hour: both detectors suspect it, phi (Akka defaults)
/// within 1 s + 3 s + 5.23σ' of the last heartbeat, the fixed timeout exactly at its timeout.
#[test]
fn crashed_sender_is_suspected_within_a_bound() {
    let interval = Duration::from_secs(1);
    for model in [TraceModel::normal_jitter(), jittery()] {
        let trace = generate_trace(&model, interval, Duration::from_secs(3_600), SEED);
        let last = *trace.arrivals.last().unwrap();
        let mut d = phi(8.0, Duration::from_secs(3));
        false_suspicions(&mut d, &trace);
        let sigma = (d.std_deviation_nanos() / 1e9).max(0.1);
        let bound = Duration::from_secs_f64(d.mean_interval_nanos() / 1e9 + 3.0 + 5.23 * sigma);
        let suspected = d.suspect_at().unwrap();
        assert!(suspected - last <= bound, "{}: {:?} > {bound:?}", model.name, suspected - last);
        assert!(suspected - last >= Duration::from_secs(4), "{}", model.name);
        assert!(d.is_available(last + Duration::from_secs(4)));
        assert!(!d.is_available(last + bound));
        assert!(!d.is_available(last + Duration::from_secs(3600)));

        let mut f = FixedTimeout::new(FixedTimeoutConfig::default()).unwrap();
        false_suspicions(&mut f, &trace);
        assert_eq!(f.suspect_at(), Some(last + Duration::from_secs(4)));
    }
}

/// Akka's rule: a pause longer than tolerated is suspected, the next heartbeat clears the
/// suspicion, and that long interval does not enter the window.
#[test]
fn suspicion_ends_with_the_next_heartbeat() {
    let mut d = phi(3.0, Duration::ZERO);
    for t in [0, 1000, 1100, 1200] {
        d.heartbeat(ms(t));
    }
    assert!(d.is_available(ms(1300)));
    assert!(!d.is_available(ms(8200)));
    let samples = d.sample_count();
    d.heartbeat(ms(8200));
    assert_eq!(d.sample_count(), samples);
    assert!(d.is_available(ms(8300)));
}

/// A pause within the acceptable pause is tolerated (and learned); one well beyond it is not.
#[test]
fn acceptable_pause_tolerates_missing_heartbeats() {
    let mut d = phi(8.0, Duration::from_secs(3));
    for t in [0, 1000, 2000, 3000] {
        d.heartbeat(ms(t));
    }
    assert!(d.is_available(ms(7000)));
    d.heartbeat(ms(7000));
    assert!(d.is_available(ms(8000)));
    // The 4 s interval entered the window (μ = 1.5 s, σ = 1.13 s): 9 s of silence is still
    // tolerated (y = 3.99, phi = 4.7), 15 s is not.
    assert!(d.is_available(ms(7000 + 9000)));
    assert!(!d.is_available(ms(7000 + 15_000)));
}

/// Nanosecond resolution: a sender beating every 100 µs is learned and its crash detected
/// within a millisecond (a millisecond clock, as in Akka, could not tell these apart).
#[test]
fn sub_millisecond_heartbeats_work_in_nanoseconds() {
    let config = PhiAccrualConfig {
        min_std_deviation: Duration::from_micros(10),
        acceptable_heartbeat_pause: Duration::ZERO,
        first_heartbeat_estimate: Duration::from_micros(100),
        ..Default::default()
    };
    let mut d = PhiAccrual::new(config).unwrap();
    let us = |n: u64| MonoInstant::from_nanos(n * 1_000);
    for i in 0..2000 {
        assert!(d.is_available(us(i * 100)));
        d.heartbeat(us(i * 100));
    }
    let last = us(199_900);
    assert!((d.mean_interval_nanos() - 100_000.0).abs() < 1e-6);
    let detected = d.suspect_at().unwrap() - last;
    assert!(detected > Duration::from_micros(100), "{detected:?}");
    assert!(detected < Duration::from_millis(1), "{detected:?}");
}

/// The baseline: available before the first heartbeat, phi 0 until the timeout, +inf from the
/// instant it expires, available again after a heartbeat, and back to new after `reset`.
#[test]
fn fixed_timeout_baseline() {
    let mut f = FixedTimeout::new(FixedTimeoutConfig { timeout: Duration::from_secs(2) }).unwrap();
    assert!(f.is_available(ms(10_000)));
    assert_eq!(f.phi(ms(10_000)), 0.0);
    assert_eq!(f.suspect_at(), None);
    f.heartbeat(ms(1_000));
    assert!(f.is_available(ms(2_999)));
    assert_eq!(f.phi(ms(2_999)), 0.0);
    assert!(!f.is_available(ms(3_000)));
    assert_eq!(f.phi(ms(3_000)), f64::INFINITY);
    assert_eq!(f.suspect_at(), Some(ms(3_000)));
    f.heartbeat(ms(500)); // stale: does not move the last heartbeat back
    assert_eq!(f.last_heartbeat(), Some(ms(1_000)));
    f.heartbeat(ms(4_000));
    assert!(f.is_available(ms(5_000)));
    f.reset();
    assert!(f.is_available(ms(100_000)));
    assert_eq!(f.last_heartbeat(), None);
}

/// The window holds at most `max_sample_size` intervals: after 100 ms intervals then three of
/// 500 ms, a window of 3 has forgotten the 100 ms ones entirely.
#[test]
fn window_is_bounded_by_max_sample_size() {
    let config = PhiAccrualConfig {
        max_sample_size: 3,
        acceptable_heartbeat_pause: Duration::ZERO,
        ..Default::default()
    };
    let mut d = PhiAccrual::new(config).unwrap();
    for t in [0, 100, 200, 300, 400] {
        d.heartbeat(ms(t));
    }
    assert_eq!(d.sample_count(), 3);
    assert_eq!(d.mean_interval_nanos(), 100e6);
    let phi_fast = d.phi(ms(450));
    for t in [900, 1400, 1900] {
        d.heartbeat(ms(t));
    }
    assert_eq!(d.sample_count(), 3);
    assert_eq!(d.mean_interval_nanos(), 500e6);
    assert_eq!(d.std_deviation_nanos(), 0.0);
    // Same σ floor, same relative position: y = -0.5 in both cases.
    assert!((d.phi(ms(1900 + 450)) - phi_fast).abs() < 1e-12);

    let mut big = PhiAccrual::new(PhiAccrualConfig::default()).unwrap();
    for i in 0..5_000 {
        big.heartbeat(ms(i * 10));
    }
    assert_eq!(big.sample_count(), 1000);
}

/// `AnyDetector` forwards to the detector it holds.
#[test]
fn any_detector_forwards() {
    let mut a = DetectorConfig::PhiAccrual(PhiAccrualConfig::default()).build().unwrap();
    let mut b = PhiAccrual::new(PhiAccrualConfig::default()).unwrap();
    for t in [0, 1000, 2100, 2900] {
        a.heartbeat(ms(t));
        b.heartbeat(ms(t));
    }
    assert_eq!(a.phi(ms(6000)), b.phi(ms(6000)));
    assert_eq!(a.suspect_at(), b.suspect_at());
    assert!(matches!(a, AnyDetector::PhiAccrual(_)));
    a.reset();
    assert_eq!(a.phi(ms(60_000)), 0.0);
}
