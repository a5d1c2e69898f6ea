//! Seeded synthetic heartbeat traces: what a detector would see from a live sender over a
//! network with a given delay distribution, and with given stop-the-world pauses.
//!
//! The sender loops "send, sleep one interval": each interval is the nominal heartbeat interval
//! times `1 + N(0, send_jitter_ratio)` (clamped to half and one and a half intervals), plus,
//! when the model has pauses, an occasional stop-the-world pause (a GC) drawn uniformly from
//! `[min, max]`, arriving as a Poisson process of mean spacing `mean_between`.
//!
//! Each heartbeat is delayed by `delay_base + |N(0, delay_jitter_std)|`, plus, when the model
//! has a heavy tail, a Pareto-distributed extra delay (scale `x_m`, shape `alpha`: `P(X > x) =
//! (x_m / x)^alpha`, capped at [`TAIL_DELAY_MAX`]). Delivery is in order, as over one TCP
//! connection: a heartbeat never overtakes the one before it, so one long delay stalls those
//! sent after it (head-of-line blocking) and shows up as one long gap in arrivals.
//!
//! Every draw comes from one `ChaCha8Rng` seeded by the caller: a trace is a pure function of
//! (model, interval, duration, seed).

use std::time::Duration;

use palisade_clock::{MonoInstant, duration_nanos};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::DURATION_MAX;
use crate::error::{DetectorError, check_duration_max};

/// Largest extra delay drawn from a heavy tail; longer draws are cut to this.
pub const TAIL_DELAY_MAX: Duration = Duration::from_secs(30);

/// Largest `send_jitter_ratio` a model may name (jitter is clamped to ±50% anyway).
pub const SEND_JITTER_RATIO_MAX: f64 = 0.5;

/// The monotonic reading at which every trace starts (any origin works; not zero, so that no
/// arithmetic near the origin saturates).
pub const TRACE_START: MonoInstant = MonoInstant::from_nanos(1_000_000_000);

/// A Pareto-distributed extra network delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParetoTail {
    /// The scale `x_m`: the smallest extra delay.
    pub scale: Duration,
    /// The shape `alpha`: smaller is heavier (below 2 the variance is infinite).
    pub alpha: f64,
}

/// Stop-the-world pauses of the sender.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PauseModel {
    /// Mean time between two pauses.
    pub mean_between: Duration,
    /// Shortest pause.
    pub min: Duration,
    /// Longest pause.
    pub max: Duration,
}

/// How a synthetic trace is drawn; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq)]
pub struct TraceModel {
    /// Name of the scenario, shown in the report.
    pub name: String,
    /// Standard deviation of the sender's interval, as a fraction of the interval.
    pub send_jitter_ratio: f64,
    /// Fixed part of the network delay.
    pub delay_base: Duration,
    /// Standard deviation of the half-normal part of the network delay.
    pub delay_jitter_std: Duration,
    /// Heavy-tailed extra network delay, if any.
    pub delay_tail: Option<ParetoTail>,
    /// Sender pauses, if any.
    pub pauses: Option<PauseModel>,
}

impl TraceModel {
    /// Normal jitter only: 5% jitter on the sender, 1 ms + |N(0, 2 ms)| on the network.
    pub fn normal_jitter() -> Self {
        TraceModel {
            name: "normal-jitter".to_string(),
            send_jitter_ratio: 0.05,
            delay_base: Duration::from_millis(1),
            delay_jitter_std: Duration::from_millis(2),
            delay_tail: None,
            pauses: None,
        }
    }

    /// Normal jitter plus a Pareto network delay (x_m = 10 ms, alpha = 1.5: mean 30 ms,
    /// infinite variance; about one delay past 2 s per hour at one heartbeat a second).
    pub fn heavy_tail() -> Self {
        TraceModel {
            name: "heavy-tail".to_string(),
            delay_tail: Some(ParetoTail { scale: Duration::from_millis(10), alpha: 1.5 }),
            ..TraceModel::normal_jitter()
        }
    }

    /// Normal jitter plus sender pauses of 1 to 5 s, every 10 minutes on average.
    pub fn pauses() -> Self {
        TraceModel {
            name: "pauses".to_string(),
            pauses: Some(PauseModel {
                mean_between: Duration::from_secs(600),
                min: Duration::from_secs(1),
                max: Duration::from_secs(5),
            }),
            ..TraceModel::normal_jitter()
        }
    }

    /// The three standard scenarios: normal jitter, heavy-tailed delay, pauses.
    pub fn standard_set() -> Vec<TraceModel> {
        vec![TraceModel::normal_jitter(), TraceModel::heavy_tail(), TraceModel::pauses()]
    }

    /// Checks every parameter against its range.
    pub fn validate(&self) -> Result<(), DetectorError> {
        let ratio = self.send_jitter_ratio;
        if !(0.0..=SEND_JITTER_RATIO_MAX).contains(&ratio) {
            return Err(DetectorError::OutOfRange {
                name: "send_jitter_ratio",
                value: ratio,
                min: 0.0,
                max: SEND_JITTER_RATIO_MAX,
            });
        }
        check_duration_max("delay_base", self.delay_base, DURATION_MAX)?;
        check_duration_max("delay_jitter_std", self.delay_jitter_std, DURATION_MAX)?;
        if let Some(tail) = self.delay_tail {
            check_duration_max("delay_tail.scale", tail.scale, TAIL_DELAY_MAX)?;
            if !(0.5..=10.0).contains(&tail.alpha) {
                let (name, value) = ("delay_tail.alpha", tail.alpha);
                return Err(DetectorError::OutOfRange { name, value, min: 0.5, max: 10.0 });
            }
        }
        if let Some(p) = self.pauses {
            crate::error::check_positive_duration(
                "pauses.mean_between",
                p.mean_between,
                DURATION_MAX,
            )?;
            check_duration_max("pauses.max", p.max, DURATION_MAX)?;
            check_duration_max("pauses.min", p.min, p.max)?;
        }
        Ok(())
    }
}

/// A heartbeat trace: send and arrival instants of every heartbeat, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// When each heartbeat left the sender (increasing).
    pub sends: Vec<MonoInstant>,
    /// When each heartbeat reached the detector (non-decreasing; `arrivals[i] >= sends[i]`).
    pub arrivals: Vec<MonoInstant>,
    /// End of the live period: no heartbeat is sent at or after it.
    pub end: MonoInstant,
}

/// Draws a trace of `live` duration, starting at [`TRACE_START`], from `model` and `seed`.
/// The model must be valid and `interval` positive.
pub fn generate_trace(model: &TraceModel, interval: Duration, live: Duration, seed: u64) -> Trace {
    assert!(!interval.is_zero(), "heartbeat interval must be positive");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = TRACE_START + live;
    let interval_nanos = duration_nanos(interval) as f64;
    let pause_probability = model
        .pauses
        .map_or(0.0, |p| (interval.as_secs_f64() / p.mean_between.as_secs_f64()).min(1.0));
    let capacity = (live.as_secs_f64() / interval.as_secs_f64()).ceil() as usize + 1;
    let mut trace =
        Trace { sends: Vec::with_capacity(capacity), arrivals: Vec::with_capacity(capacity), end };
    let mut send = TRACE_START;
    let mut last_arrival = TRACE_START;
    while send < end {
        let arrival = (send + draw_delay(model, &mut rng)).max(last_arrival);
        trace.sends.push(send);
        trace.arrivals.push(arrival);
        last_arrival = arrival;
        let jitter = (normal(&mut rng) * model.send_jitter_ratio).clamp(-0.5, 0.5);
        let mut gap = Duration::from_nanos((interval_nanos * (1.0 + jitter)).round() as u64);
        if let Some(p) = model.pauses
            && rng.random_bool(pause_probability)
        {
            gap += uniform_duration(&mut rng, p.min, p.max);
        }
        send = send + gap.max(Duration::from_nanos(1));
    }
    trace
}

/// One network delay drawn from the model.
fn draw_delay(model: &TraceModel, rng: &mut ChaCha8Rng) -> Duration {
    let jitter_nanos = (normal(rng).abs() * duration_nanos(model.delay_jitter_std) as f64).round();
    let mut delay = model.delay_base + Duration::from_nanos(jitter_nanos as u64);
    if let Some(tail) = model.delay_tail {
        let u = 1.0 - rng.random::<f64>(); // in (0, 1]
        let extra = tail.scale.as_secs_f64() * u.powf(-1.0 / tail.alpha);
        delay += Duration::from_secs_f64(extra.min(TAIL_DELAY_MAX.as_secs_f64()));
    }
    delay
}

/// A standard normal draw (Box-Muller; one of the pair is discarded to keep draws simple).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // in (0, 1]: ln is finite
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A duration drawn uniformly from `[min, max]`.
fn uniform_duration(rng: &mut ChaCha8Rng, min: Duration, max: Duration) -> Duration {
    assert!(min <= max);
    Duration::from_nanos(rng.random_range(duration_nanos(min)..=duration_nanos(max)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed gives the same trace; arrivals never precede sends nor each other.
    #[test]
    fn traces_are_seeded_and_in_order() {
        let live = Duration::from_secs(3600);
        for model in TraceModel::standard_set() {
            model.validate().unwrap();
            let a = generate_trace(&model, Duration::from_secs(1), live, 7);
            let b = generate_trace(&model, Duration::from_secs(1), live, 7);
            assert_eq!(a, b, "{}", model.name);
            assert!(a.sends.len() > 3000, "{}: {}", model.name, a.sends.len());
            for i in 0..a.sends.len() {
                assert!(a.arrivals[i] >= a.sends[i]);
                assert!(a.sends[i] < a.end);
                if i > 0 {
                    assert!(a.sends[i] > a.sends[i - 1]);
                    assert!(a.arrivals[i] >= a.arrivals[i - 1]);
                }
            }
        }
    }

    /// The pause model produces gaps of at least a second on top of the interval, at about the
    /// configured rate (6 per hour; over 20 hours, well inside 60..=180).
    #[test]
    fn pauses_appear_at_the_configured_rate() {
        let interval = Duration::from_secs(1);
        let trace = generate_trace(&TraceModel::pauses(), interval, Duration::from_secs(72_000), 3);
        let long_gaps =
            trace.sends.windows(2).filter(|w| w[1] - w[0] >= Duration::from_millis(1600)).count();
        assert!((60..=180).contains(&long_gaps), "{long_gaps} pauses in 20 hours");
    }
}
