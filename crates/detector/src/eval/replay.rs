//! Replaying one trace through one detector: false suspicions while the sender lives, and the
//! detection time of a crash at each of a set of instants.
//!
//! Both measures are exact, not sampled on a polling grid. Between two heartbeats a detector's
//! suspicion only grows (phi is increasing in the time since the last heartbeat), so:
//!
//! - the detector falsely suspected the live sender during the gap before a heartbeat iff it is
//!   not available at the instant that heartbeat arrives: one available-to-suspected transition
//!   per such gap (the heartbeat then makes it available again);
//! - after a crash at `c`, the heartbeats sent before `c` still arrive (they are in flight);
//!   once they are consumed, or as soon as the detector suspects before the next of them, the
//!   first instant of suspicion is the detector's own `suspect_at()`. Detection time is that
//!   instant minus `c`, or zero if the detector was already suspecting at `c`.
//!
//! Each crash is hypothetical: the detector state at `c` is cloned and the live replay goes on,
//! so one pass over the trace serves every crash trial.

use std::time::Duration;

use palisade_clock::MonoInstant;

use super::trace::Trace;
use crate::{AnyDetector, FailureDetector};

/// What one replay measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReplayOutcome {
    /// Transitions from available to suspected while the sender was alive.
    pub false_suspicions: u64,
    /// Time from each crash to its detection, in the order of the crashes.
    pub detections: Vec<Duration>,
}

/// Replays `trace` into `detector` (fresh), with hypothetical crashes at `crashes` (sorted).
pub(crate) fn replay(
    mut detector: AnyDetector,
    trace: &Trace,
    crashes: &[MonoInstant],
) -> ReplayOutcome {
    assert!(crashes.is_sorted(), "crash instants must be sorted");
    assert_eq!(trace.sends.len(), trace.arrivals.len());
    let mut outcome =
        ReplayOutcome { false_suspicions: 0, detections: Vec::with_capacity(crashes.len()) };
    let mut next_crash = 0;
    for (i, &arrival) in trace.arrivals.iter().enumerate() {
        // Crashes in (previous arrival, this arrival]: the detector has seen exactly the
        // heartbeats that arrived before the crash.
        while next_crash < crashes.len() && crashes[next_crash] <= arrival {
            outcome.detections.push(detect_crash(&detector, trace, i, crashes[next_crash]));
            next_crash += 1;
        }
        if !detector.is_available(arrival) {
            outcome.false_suspicions += 1;
        }
        detector.heartbeat(arrival);
    }
    for &crash in &crashes[next_crash..] {
        outcome.detections.push(detect_crash(&detector, trace, trace.arrivals.len(), crash));
    }
    assert_eq!(outcome.detections.len(), crashes.len());
    outcome
}

/// Detection time of a crash at `crash`, given `detector` as it was just after the heartbeats
/// before index `first_unseen`.
fn detect_crash(
    detector: &AnyDetector,
    trace: &Trace,
    first_unseen: usize,
    crash: MonoInstant,
) -> Duration {
    let mut d = detector.clone();
    for j in first_unseen..trace.sends.len() {
        if trace.sends[j] >= crash {
            break;
        }
        let arrival = trace.arrivals[j];
        if !d.is_available(arrival) {
            break;
        }
        d.heartbeat(arrival);
    }
    let suspected = d.suspect_at().expect("a crash comes after the first heartbeat");
    suspected.saturating_duration_since(crash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DetectorConfig, FixedTimeoutConfig};

    fn s(n: u64) -> MonoInstant {
        MonoInstant::from_nanos(n * 1_000_000_000)
    }

    fn fixed(secs: u64) -> AnyDetector {
        let config = FixedTimeoutConfig { timeout: Duration::from_secs(secs) };
        DetectorConfig::FixedTimeout(config).build().unwrap()
    }

    /// Hand-made trace: heartbeats every second with one 5 s gap; a 3 s timeout suspects once;
    /// a crash at 2.5 s is detected at 2 + 3 = 5 s, 2.5 s after the crash; a crash inside the
    /// gap, after the timeout expired, is detected at once.
    #[test]
    fn counts_gaps_and_measures_detection_by_hand() {
        let sends = vec![s(0), s(1), s(2), s(7), s(8)];
        let trace = Trace { arrivals: sends.clone(), sends, end: s(9) };
        let crashes = [MonoInstant::from_nanos(2_500_000_000), s(6)];
        let outcome = replay(fixed(3), &trace, &crashes);
        assert_eq!(outcome.false_suspicions, 1);
        assert_eq!(outcome.detections, vec![Duration::from_millis(2_500), Duration::ZERO]);
    }

    /// Heartbeats in flight at the crash still arrive and push detection later.
    #[test]
    fn in_flight_heartbeats_delay_detection() {
        let sends = vec![s(0), s(1), s(2)];
        let arrivals = vec![s(0), s(1), s(4)];
        let trace = Trace { sends, arrivals, end: s(3) };
        let outcome = replay(fixed(10), &trace, &[MonoInstant::from_nanos(2_500_000_000)]);
        // Last heartbeat arrives at 4 s, suspicion at 14 s, crash at 2.5 s.
        assert_eq!(outcome.detections, vec![Duration::from_millis(11_500)]);
        assert_eq!(outcome.false_suspicions, 0);
    }
}
