//! The evaluation harness behind `palisade detector-eval`: how long each detector takes to
//! notice a crash, and how often it wrongly suspects a sender that is alive, on the same
//! seeded synthetic traces.
//!
//! Why: a failure detector is a trade-off between those two numbers, and the only honest way to
//! choose one (phi or a fixed timeout, and its threshold) is to put both on the same traces and
//! look at the whole curve. Each scenario ([`TraceModel`]: normal jitter, heavy-tailed network
//! delay, stop-the-world pauses) yields one trace of `live_hours` virtual hours of heartbeats,
//! and `crash_trials` crash instants drawn uniformly after a warm-up of
//! [`CRASH_WARMUP_HEARTBEATS`] intervals. Every detector replays the same trace (see
//! `replay.rs` for the exact, grid-free measurement) and reports:
//!
//! - the mean, 99th percentile and maximum *detection time*: from the crash to the first
//!   instant the detector reports the peer unavailable (zero if it already did);
//! - the *false suspicions per hour*: transitions from available to suspected while the sender
//!   was alive, divided by the live hours.
//!
//! Everything is a pure function of the [`EvalConfig`]: one `u64` seed derives, in order, a
//! trace seed and a crash seed per scenario. No I/O, no clock; the same configuration gives the
//! same [`EvalReport`], byte for byte when displayed.

mod replay;
mod report;
pub mod trace;

use std::time::Duration;

use palisade_clock::{MonoInstant, duration_nanos};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use trace::{ParetoTail, PauseModel, Trace, TraceModel, generate_trace};

use crate::error::DetectorError;
use crate::{DetectorConfig, FixedTimeoutConfig, PhiAccrualConfig};

/// Largest number of heartbeats one scenario may generate (memory: 16 bytes each).
pub const TRACE_HEARTBEATS_MAX: u64 = 10_000_000;

/// Largest number of crash trials per scenario.
pub const CRASH_TRIALS_MAX: usize = 1_000_000;

/// Longest live period per scenario, in virtual hours.
pub const LIVE_HOURS_MAX: f64 = 100_000.0;

/// Longest list of thresholds, pauses, timeouts or scenarios.
pub const EVAL_LIST_MAX: usize = 64;

/// Shortest heartbeat interval the harness accepts.
pub const HEARTBEAT_INTERVAL_MIN: Duration = Duration::from_millis(1);

/// Longest heartbeat interval the harness accepts.
pub const HEARTBEAT_INTERVAL_MAX: Duration = Duration::from_secs(60);

/// Heartbeat intervals at the start of a trace during which no crash is placed, so that the
/// detectors have a window to estimate from; the live period must be at least twice as long.
pub const CRASH_WARMUP_HEARTBEATS: u32 = 100;

/// What to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// The seed every random draw derives from.
    pub seed: u64,
    /// Nominal interval between two heartbeats of the sender.
    pub heartbeat_interval: Duration,
    /// Virtual hours of live heartbeats per scenario.
    pub live_hours: f64,
    /// Number of crash instants per scenario.
    pub crash_trials: usize,
    /// Phi thresholds to evaluate (each with each acceptable pause).
    pub phi_thresholds: Vec<f64>,
    /// Acceptable heartbeat pauses of the phi detectors.
    pub acceptable_pauses: Vec<Duration>,
    /// `min_std_deviation` of the phi detectors.
    pub min_std_deviation: Duration,
    /// `max_sample_size` of the phi detectors.
    pub max_sample_size: usize,
    /// Timeouts of the fixed-timeout detectors.
    pub fixed_timeouts: Vec<Duration>,
    /// The scenarios, each replayed by every detector.
    pub scenarios: Vec<TraceModel>,
}

impl Default for EvalConfig {
    /// The defaults of `palisade detector-eval`: seed 1, 1 s heartbeats, 100 hours and 1000
    /// crashes per scenario, phi thresholds 1 3 5 8 10 12 with pauses 0 and 3 s (Akka's), other
    /// phi parameters Akka's, fixed timeouts 1.5 2 3 5 s, the three standard scenarios.
    fn default() -> Self {
        let akka = PhiAccrualConfig::default();
        EvalConfig {
            seed: 1,
            heartbeat_interval: Duration::from_secs(1),
            live_hours: 100.0,
            crash_trials: 1000,
            phi_thresholds: vec![1.0, 3.0, 5.0, 8.0, 10.0, 12.0],
            acceptable_pauses: vec![Duration::ZERO, akka.acceptable_heartbeat_pause],
            min_std_deviation: akka.min_std_deviation,
            max_sample_size: akka.max_sample_size,
            fixed_timeouts: [1500, 2000, 3000, 5000].map(Duration::from_millis).to_vec(),
            scenarios: TraceModel::standard_set(),
        }
    }
}

impl EvalConfig {
    /// The live period of each scenario. `live_hours` must be valid (see [`Self::validate`]).
    pub fn live_duration(&self) -> Duration {
        Duration::from_secs_f64(self.live_hours * 3600.0)
    }

    /// The detectors to evaluate, in table order: phi by pause then threshold, then fixed.
    pub fn detectors(&self) -> Vec<DetectorConfig> {
        let mut detectors = Vec::new();
        for &pause in &self.acceptable_pauses {
            for &threshold in &self.phi_thresholds {
                detectors.push(DetectorConfig::PhiAccrual(PhiAccrualConfig {
                    threshold,
                    max_sample_size: self.max_sample_size,
                    min_std_deviation: self.min_std_deviation,
                    acceptable_heartbeat_pause: pause,
                    first_heartbeat_estimate: self.heartbeat_interval,
                }));
            }
        }
        for &timeout in &self.fixed_timeouts {
            detectors.push(DetectorConfig::FixedTimeout(FixedTimeoutConfig { timeout }));
        }
        detectors
    }

    /// Checks every parameter, every detector and every scenario.
    pub fn validate(&self) -> Result<(), DetectorError> {
        let interval = self.heartbeat_interval;
        let (min, max) =
            (HEARTBEAT_INTERVAL_MIN.as_secs_f64(), HEARTBEAT_INTERVAL_MAX.as_secs_f64());
        check_range("heartbeat_interval (s)", interval.as_secs_f64(), min, max)?;
        let warmup_hours = 2.0 * f64::from(CRASH_WARMUP_HEARTBEATS) * interval.as_secs_f64();
        check_range("live_hours", self.live_hours, warmup_hours / 3600.0, LIVE_HOURS_MAX)?;
        let heartbeats = (self.live_hours * 3600.0 / interval.as_secs_f64()).ceil() as u64;
        if heartbeats > TRACE_HEARTBEATS_MAX {
            return Err(DetectorError::TraceTooLong { heartbeats, max: TRACE_HEARTBEATS_MAX });
        }
        let trials = self.crash_trials as f64;
        check_range("crash_trials", trials, 1.0, CRASH_TRIALS_MAX as f64)?;
        check_list("phi_thresholds", self.phi_thresholds.len(), true)?;
        check_list("acceptable_pauses", self.acceptable_pauses.len(), true)?;
        check_list("fixed_timeouts", self.fixed_timeouts.len(), true)?;
        check_list("scenarios", self.scenarios.len(), false)?;
        let detectors = self.detectors();
        if detectors.is_empty() {
            return Err(DetectorError::ListEmpty { name: "detectors" });
        }
        for detector in &detectors {
            detector.validate()?;
        }
        for scenario in &self.scenarios {
            scenario.validate()?;
        }
        Ok(())
    }
}

fn check_range(name: &'static str, value: f64, min: f64, max: f64) -> Result<(), DetectorError> {
    // Written so that NaN fails too.
    if value >= min && value <= max {
        Ok(())
    } else {
        Err(DetectorError::OutOfRange { name, value, min, max })
    }
}

fn check_list(name: &'static str, len: usize, may_be_empty: bool) -> Result<(), DetectorError> {
    if len == 0 && !may_be_empty {
        return Err(DetectorError::ListEmpty { name });
    }
    if len > EVAL_LIST_MAX {
        return Err(DetectorError::ListTooLong { name, len, max: EVAL_LIST_MAX });
    }
    Ok(())
}

/// What one scenario's trace looked like, to read the table against.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSummary {
    /// The scenario's name.
    pub name: String,
    /// Heartbeats sent during the live period.
    pub heartbeats: usize,
    /// Mean gap between two arrivals.
    pub arrival_gap_mean: Duration,
    /// Longest gap between two arrivals.
    pub arrival_gap_max: Duration,
    /// Arrival gaps of at least two heartbeat intervals.
    pub long_gaps: usize,
}

/// One line of the table: one detector on one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalRow {
    /// The scenario's name.
    pub scenario: String,
    /// The detector.
    pub detector: DetectorConfig,
    /// Mean time from a crash to its detection.
    pub detection_mean: Duration,
    /// 99th percentile (nearest rank) of the detection time.
    pub detection_p99: Duration,
    /// Longest detection time.
    pub detection_max: Duration,
    /// Transitions from available to suspected while the sender was alive.
    pub false_suspicions: u64,
    /// `false_suspicions` per live hour.
    pub false_suspicions_per_hour: f64,
}

/// The result of [`run_eval`]; its `Display` is the aligned table the command prints.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// One summary per scenario, in configuration order.
    pub scenarios: Vec<ScenarioSummary>,
    /// One row per scenario and detector, scenario-major, detectors in
    /// [`EvalConfig::detectors`] order.
    pub rows: Vec<EvalRow>,
}

/// Runs the evaluation described by `config`; see the [module documentation](self).
pub fn run_eval(config: &EvalConfig) -> Result<EvalReport, DetectorError> {
    config.validate()?;
    let detectors = config.detectors();
    let interval = config.heartbeat_interval;
    let warmup = interval * CRASH_WARMUP_HEARTBEATS;
    let mut seeds = ChaCha8Rng::seed_from_u64(config.seed);
    let mut report = EvalReport { scenarios: Vec::new(), rows: Vec::new() };
    for model in &config.scenarios {
        let trace_seed: u64 = seeds.random();
        let crash_seed: u64 = seeds.random();
        let trace = generate_trace(model, interval, config.live_duration(), trace_seed);
        let crashes = crash_instants(&trace, warmup, config.crash_trials, crash_seed);
        report.scenarios.push(summarize(model, &trace, interval));
        for detector in &detectors {
            let outcome = replay::replay(detector.build()?, &trace, &crashes);
            report.rows.push(row(model, detector, outcome, config.live_hours));
        }
    }
    Ok(report)
}

/// `count` crash instants drawn uniformly from `[start + warmup, end)`, sorted.
fn crash_instants(trace: &Trace, warmup: Duration, count: usize, seed: u64) -> Vec<MonoInstant> {
    let first = trace::TRACE_START + warmup;
    assert!(first < trace.end, "the live period must be longer than the warm-up");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut crashes: Vec<MonoInstant> = (0..count)
        .map(|_| MonoInstant::from_nanos(rng.random_range(first.as_nanos()..trace.end.as_nanos())))
        .collect();
    crashes.sort_unstable();
    crashes
}

fn summarize(model: &TraceModel, trace: &Trace, interval: Duration) -> ScenarioSummary {
    let gaps = || trace.arrivals.windows(2).map(|w| w[1] - w[0]);
    let gap_count = trace.arrivals.len().saturating_sub(1).max(1);
    let total: u128 = gaps().map(|g| g.as_nanos()).sum();
    ScenarioSummary {
        name: model.name.clone(),
        heartbeats: trace.arrivals.len(),
        arrival_gap_mean: Duration::from_nanos((total / gap_count as u128) as u64),
        arrival_gap_max: gaps().max().unwrap_or(Duration::ZERO),
        long_gaps: gaps().filter(|&g| g >= interval * 2).count(),
    }
}

fn row(
    model: &TraceModel,
    detector: &DetectorConfig,
    outcome: replay::ReplayOutcome,
    live_hours: f64,
) -> EvalRow {
    let mut detections = outcome.detections;
    assert!(!detections.is_empty(), "at least one crash trial");
    detections.sort_unstable();
    let n = detections.len();
    let total: u128 = detections.iter().map(|d| u128::from(duration_nanos(*d))).sum();
    let p99_rank = (n * 99).div_ceil(100).max(1);
    EvalRow {
        scenario: model.name.clone(),
        detector: *detector,
        detection_mean: Duration::from_nanos((total / n as u128) as u64),
        detection_p99: detections[p99_rank - 1],
        detection_max: detections[n - 1],
        false_suspicions: outcome.false_suspicions,
        false_suspicions_per_hour: outcome.false_suspicions as f64 / live_hours,
    }
}
