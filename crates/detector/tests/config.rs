//! Configuration validation (CONTRIBUTING, "Limits"): every bad value is a typed error.

use std::time::Duration;

use palisade_detector::eval::{EvalConfig, TraceModel};
use palisade_detector::{
    DURATION_MAX, DetectorError, FixedTimeout, FixedTimeoutConfig, PhiAccrual, PhiAccrualConfig,
    SAMPLE_SIZE_MAX, THRESHOLD_MAX,
};

fn phi_err(config: PhiAccrualConfig) -> DetectorError {
    PhiAccrual::new(config).unwrap_err()
}

#[test]
fn defaults_are_akkas_and_valid() {
    let c = PhiAccrualConfig::default();
    assert_eq!(c.threshold, 8.0);
    assert_eq!(c.max_sample_size, 1000);
    assert_eq!(c.min_std_deviation, Duration::from_millis(100));
    assert_eq!(c.acceptable_heartbeat_pause, Duration::from_secs(3));
    assert_eq!(c.first_heartbeat_estimate, Duration::from_secs(1));
    assert!(c.validate().is_ok());
    assert!(FixedTimeoutConfig::default().validate().is_ok());
    assert!(EvalConfig::default().validate().is_ok());
}

#[test]
fn bad_thresholds_are_refused() {
    for threshold in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let err = phi_err(PhiAccrualConfig { threshold, ..Default::default() });
        assert!(matches!(err, DetectorError::ThresholdInvalid { .. }), "{threshold}: {err}");
    }
    let err = phi_err(PhiAccrualConfig { threshold: THRESHOLD_MAX + 1.0, ..Default::default() });
    assert!(matches!(err, DetectorError::ThresholdTooLarge { .. }));
    assert!(
        PhiAccrual::new(PhiAccrualConfig { threshold: THRESHOLD_MAX, ..Default::default() })
            .is_ok()
    );
}

#[test]
fn bad_sample_sizes_are_refused() {
    let err = phi_err(PhiAccrualConfig { max_sample_size: 0, ..Default::default() });
    assert_eq!(err, DetectorError::SampleSizeZero);
    let size = SAMPLE_SIZE_MAX + 1;
    let err = phi_err(PhiAccrualConfig { max_sample_size: size, ..Default::default() });
    assert_eq!(err, DetectorError::SampleSizeTooLarge { size, max: SAMPLE_SIZE_MAX });
    assert!(PhiAccrual::new(PhiAccrualConfig { max_sample_size: 1, ..Default::default() }).is_ok());
}

#[test]
fn bad_durations_are_refused() {
    let zero = Duration::ZERO;
    let err = phi_err(PhiAccrualConfig { min_std_deviation: zero, ..Default::default() });
    assert_eq!(err, DetectorError::DurationZero { name: "min_std_deviation" });
    let err = phi_err(PhiAccrualConfig { first_heartbeat_estimate: zero, ..Default::default() });
    assert_eq!(err, DetectorError::DurationZero { name: "first_heartbeat_estimate" });
    let too_long = DURATION_MAX + Duration::from_nanos(1);
    let err =
        phi_err(PhiAccrualConfig { acceptable_heartbeat_pause: too_long, ..Default::default() });
    assert!(matches!(
        err,
        DetectorError::DurationTooLarge { name: "acceptable_heartbeat_pause", .. }
    ));
    let ok = PhiAccrualConfig { acceptable_heartbeat_pause: zero, ..Default::default() };
    assert!(PhiAccrual::new(ok).is_ok());

    let err = FixedTimeout::new(FixedTimeoutConfig { timeout: zero }).unwrap_err();
    assert_eq!(err, DetectorError::DurationZero { name: "timeout" });
    let err = FixedTimeout::new(FixedTimeoutConfig { timeout: too_long }).unwrap_err();
    assert!(matches!(err, DetectorError::DurationTooLarge { name: "timeout", .. }));
}

#[test]
fn bad_eval_configs_are_refused() {
    let base = EvalConfig::default();
    let cases: Vec<(EvalConfig, &str)> = vec![
        (EvalConfig { live_hours: f64::NAN, ..base.clone() }, "live_hours"),
        (EvalConfig { live_hours: 0.01, ..base.clone() }, "live_hours"),
        (EvalConfig { crash_trials: 0, ..base.clone() }, "crash_trials"),
        (EvalConfig { heartbeat_interval: Duration::ZERO, ..base.clone() }, "heartbeat_interval"),
        (EvalConfig { scenarios: vec![], ..base.clone() }, "scenarios"),
        (EvalConfig { phi_thresholds: vec![8.0; 65], ..base.clone() }, "phi_thresholds"),
        (EvalConfig { phi_thresholds: vec![-1.0], ..base.clone() }, "threshold"),
        (EvalConfig { fixed_timeouts: vec![Duration::ZERO], ..base.clone() }, "timeout"),
        (
            EvalConfig { phi_thresholds: vec![], fixed_timeouts: vec![], ..base.clone() },
            "detectors",
        ),
        (
            EvalConfig {
                heartbeat_interval: Duration::from_millis(1),
                live_hours: 10.0,
                ..base.clone()
            },
            "heartbeats per scenario",
        ),
        (
            EvalConfig {
                scenarios: vec![TraceModel {
                    send_jitter_ratio: 0.9,
                    ..TraceModel::normal_jitter()
                }],
                ..base.clone()
            },
            "send_jitter_ratio",
        ),
    ];
    for (config, needle) in cases {
        let err = config.validate().unwrap_err();
        assert!(err.to_string().contains(needle), "expected {needle:?} in {err}");
        let run_err = palisade_detector::eval::run_eval(&config).unwrap_err();
        assert_eq!(run_err.to_string(), err.to_string());
    }
}
