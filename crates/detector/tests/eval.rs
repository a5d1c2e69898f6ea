//! The evaluation harness (module docs of `eval`): seeded, deterministic, and measuring what
//! the definitions say, on small parameters so that it runs in CI.

use std::time::Duration;

use palisade_detector::DetectorConfig;
use palisade_detector::eval::{EvalConfig, EvalReport, EvalRow, run_eval};

fn small(seed: u64) -> EvalConfig {
    EvalConfig {
        seed,
        live_hours: 3.0,
        crash_trials: 300,
        phi_thresholds: vec![3.0, 8.0, 12.0],
        fixed_timeouts: [1500, 5000].map(Duration::from_millis).to_vec(),
        ..EvalConfig::default()
    }
}

fn find<'a>(report: &'a EvalReport, scenario: &str, label: &str) -> &'a EvalRow {
    report
        .rows
        .iter()
        .find(|r| r.scenario == scenario && r.detector.to_string() == label)
        .unwrap_or_else(|| panic!("no row {scenario} / {label}"))
}

/// Same configuration, same report and same bytes; another seed, another report.
#[test]
fn same_seed_same_bytes() {
    let seed = 7;
    println!("seed {seed}");
    let a = run_eval(&small(seed)).unwrap();
    let b = run_eval(&small(seed)).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), b.to_string());
    let c = run_eval(&small(seed + 1)).unwrap();
    assert_ne!(a.to_string(), c.to_string());
    // 3 scenarios x (3 thresholds x 2 pauses + 2 timeouts).
    assert_eq!(a.rows.len(), 3 * 8);
    assert_eq!(a.scenarios.len(), 3);
}

/// The table is aligned: every row of the table has the header's width or less, and the
/// numeric columns end at the same column.
#[test]
fn table_is_aligned() {
    let report = run_eval(&small(3)).unwrap();
    let text = report.to_string();
    let table: Vec<&str> =
        text.lines().skip_while(|l| !l.starts_with("scenario")).filter(|l| !l.is_empty()).collect();
    assert_eq!(table.len(), 1 + report.rows.len());
    let width = table[0].len();
    for line in &table {
        assert_eq!(line.len(), width, "{line:?}");
    }
}

/// What the numbers must look like, from the definitions:
/// - detection time grows with the threshold and with the timeout;
/// - a fixed timeout T on a 1 s sender detects in about T - 0.5 s on average (crash uniform
///   within the interval), never later than T plus the network delay;
/// - on normal jitter, phi at threshold 8 never suspects the live sender;
/// - on pauses, the 1.5 s timeout suspects at least once per pause (about 6 per hour).
#[test]
fn numbers_follow_the_definitions() {
    let report = run_eval(&small(11)).unwrap();
    for scenario in ["normal-jitter", "heavy-tail", "pauses"] {
        for pause in ["0s", "3s"] {
            let m = |t: u32| find(&report, scenario, &format!("phi {t} (pause {pause})"));
            assert!(m(3).detection_mean < m(8).detection_mean, "{scenario} {pause}");
            assert!(m(8).detection_mean < m(12).detection_mean, "{scenario} {pause}");
            assert!(m(3).false_suspicions >= m(12).false_suspicions, "{scenario} {pause}");
        }
        let short = find(&report, scenario, "fixed 1.5s");
        let long = find(&report, scenario, "fixed 5s");
        assert!(short.detection_mean < long.detection_mean);
        assert!(short.false_suspicions >= long.false_suspicions);
    }
    let fixed5 = find(&report, "normal-jitter", "fixed 5s");
    let mean = fixed5.detection_mean.as_secs_f64();
    assert!((4.4..4.6).contains(&mean), "fixed 5s detects in {mean} s");
    assert!(fixed5.detection_max <= Duration::from_millis(5_020));
    assert_eq!(fixed5.false_suspicions, 0);
    for pause in ["0s", "3s"] {
        let row = find(&report, "normal-jitter", &format!("phi 8 (pause {pause})"));
        assert_eq!(row.false_suspicions, 0);
    }
    let akka = find(&report, "normal-jitter", "phi 8 (pause 3s)");
    let akka_mean = akka.detection_mean.as_secs_f64();
    assert!((3.9..4.2).contains(&akka_mean), "phi 8 (pause 3s) detects in {akka_mean} s");
    let pauses = &report.scenarios[2];
    let short = find(&report, "pauses", "fixed 1.5s");
    assert!(short.false_suspicions as usize >= pauses.long_gaps);
    assert!(short.false_suspicions_per_hour > 2.0);
    assert!(matches!(short.detector, DetectorConfig::FixedTimeout(_)));
}
