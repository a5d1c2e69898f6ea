//! The result of one seed, as data and as the text `palisade sim raft --seed N` prints.
//!
//! The text is a pure function of the seed and the pinned options: no wall-clock time, no
//! addresses, no hash-map order. Two runs of a seed print the same bytes, and the determinism
//! test compares exactly that (with the trace hash, which covers every event of the run).

use std::fmt;

use crate::raft::checker::{CheckerKind, Seen, Violation};
use crate::raft::options::{
    LIVENESS_COMMIT_NANOS_MAX, LIVENESS_CONVERGE_NANOS_MAX, LIVENESS_LEADER_NANOS_MAX, SeedOptions,
};
use crate::{ProcId, Stats, Swarm};

/// Counters of a run for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// The simulator's counters.
    pub stats: Stats,
    /// What the checkers saw.
    pub seen: Seen,
    /// Proposals the client sent (first sends and re-sends).
    pub client_sends: u64,
}

/// How the liveness phase went. Times are true nanoseconds after the phase began.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LivenessOutcome {
    /// Whether the run got that far (a panic or a shortened run may stop before).
    pub reached: bool,
    /// True time the phase began at.
    pub start_nanos: u64,
    /// Servers that refused to start (counted as stopped).
    pub refused: Vec<ProcId>,
    /// Servers in the cluster.
    pub servers: usize,
    /// When a leader was first seen.
    pub leader_after: Option<u64>,
    /// When a command proposed in the phase was first acknowledged, and its index.
    pub commit_after: Option<(u64, u64)>,
    /// When every live server had applied up to that index (and every earlier acknowledged
    /// command).
    pub converged_after: Option<u64>,
}

/// Everything one seed produced.
#[derive(Clone, Debug)]
pub struct RaftRunReport {
    /// The options the seed drew (and the pinned ones).
    pub options: SeedOptions,
    /// The fault kinds and counts the plan drew.
    pub swarm: Swarm,
    /// Faults aimed at the leader that found one.
    pub leader_faults_applied: u32,
    /// New leaders crashed or paused by the churn.
    pub leader_churned: u32,
    /// Crashes that found an fsync in flight.
    pub io_crashes_applied: u32,
    /// Counters.
    pub counters: Counters,
    /// The liveness phase.
    pub liveness: LivenessOutcome,
    /// Violations kept (the first few).
    pub violations: Vec<Violation>,
    /// Violations per checker (all of them).
    pub counts: Vec<(CheckerKind, u64)>,
    /// The trace hash at the end of the run.
    pub trace_hash: u64,
    /// True time simulated, in nanoseconds.
    pub virtual_nanos: u64,
}

impl RaftRunReport {
    /// Whether every checker passed.
    pub fn passed(&self) -> bool {
        self.counts.iter().all(|&(_, n)| n == 0)
    }

    /// Violations found by `kind`.
    pub fn count(&self, kind: CheckerKind) -> u64 {
        self.counts.iter().find(|(k, _)| *k == kind).map_or(0, |&(_, n)| n)
    }

    /// Names of the checkers that failed, comma-separated.
    pub fn failed_checkers(&self) -> String {
        let failed: Vec<&str> =
            self.counts.iter().filter(|(_, n)| *n > 0).map(|(k, _)| k.name()).collect();
        failed.join(", ")
    }

    fn write_counters(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, seen) = (&self.counters.stats, &self.counters.seen);
        writeln!(
            f,
            "raft: {} leaders elected (highest term {}), {} indexes committed, {} applies, \
             {} commands acknowledged ({} proposals sent), {} compactions, {} snapshots \
             installed",
            seen.leaders,
            seen.term_max,
            seen.indexes,
            seen.applies,
            seen.acked,
            self.counters.client_sends,
            seen.compactions,
            seen.restores
        )?;
        writeln!(
            f,
            "nodes: {} starts, {} crashes, {} torn tails cut, {} refused to start, {} pauses, \
             {} bit flips",
            seen.starts, s.crashes, seen.torn_tails, seen.refusals, s.pauses, s.bit_flips
        )?;
        writeln!(
            f,
            "network: {} sent, {} delivered, {} lost, {} cut by partitions, {} to down nodes, \
             {} duplicated, {} reordered, {} corrupted (all caught: {})",
            s.messages_sent,
            s.messages_delivered,
            s.messages_dropped,
            s.messages_dropped_partition,
            s.messages_dropped_down,
            s.messages_duplicated,
            s.messages_reordered,
            s.corrupt_detected + s.corrupt_undetected,
            s.corrupt_undetected == 0
        )
    }

    /// The details of the liveness phase, for its checker line.
    fn liveness_details(&self) -> String {
        let l = &self.liveness;
        if !l.reached {
            return "not reached".to_owned();
        }
        let at = |t: Option<u64>| t.map_or_else(|| "never".to_owned(), secs);
        let mut out = format!(
            "{} of {} servers live; leader after {} (bound {}), commit after {} (bound {}), \
             all caught up after {} (bound {})",
            l.servers - l.refused.len(),
            l.servers,
            at(l.leader_after),
            secs(LIVENESS_LEADER_NANOS_MAX),
            at(l.commit_after.map(|(t, _)| t)),
            secs(LIVENESS_COMMIT_NANOS_MAX),
            at(l.converged_after),
            secs(LIVENESS_CONVERGE_NANOS_MAX),
        );
        if !l.refused.is_empty() {
            out.push_str(&format!("; refused to start: {:?}", l.refused));
        }
        out
    }
}

/// Nanoseconds as seconds with millisecond precision.
pub(crate) fn secs(nanos: u64) -> String {
    format!("{}.{:03}s", nanos / 1_000_000_000, nanos / 1_000_000 % 1000)
}

impl fmt::Display for RaftRunReport {
    /// The full report, several lines, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.options;
        writeln!(f, "palisade sim raft --seed {}{}", o.seed, o.flags)?;
        write!(f, "{o}")?;
        let w = &self.swarm;
        writeln!(
            f,
            "faults ({}): partitions {}, crashes {}, pauses {}, mid-handler pauses {}, drift {}, \
             wall steps {}, bit flips {}, network changes {}",
            o.faults,
            w.partitions,
            w.crashes,
            w.pauses,
            w.mid_handler_pauses,
            w.drift,
            w.wall_steps,
            w.bit_flips,
            w.network,
        )?;
        writeln!(
            f,
            "targeted faults: at the leader {} ({} found one), new leaders churned {} (churn \
             {:.1}), crashes in fsync {} ({} done, with the churn's)",
            o.leader_faults,
            self.leader_faults_applied,
            self.leader_churned,
            o.leader_churn,
            o.io_crashes,
            self.io_crashes_applied
        )?;
        writeln!(
            f,
            "phases: safety {}, then liveness from {} (simulated {} in all)",
            secs(o.safety_nanos),
            secs(self.liveness.start_nanos),
            secs(self.virtual_nanos)
        )?;
        self.write_counters(f)?;
        writeln!(f, "checkers:")?;
        for (kind, n) in &self.counts {
            let details = match kind {
                CheckerKind::Liveness => format!(" ({})", self.liveness_details()),
                _ => String::new(),
            };
            match (kind, n) {
                (CheckerKind::Panic, 0) => {}
                (_, 0) => writeln!(f, "  {}: ok{details}", kind.name())?,
                (_, n) => writeln!(f, "  {}: VIOLATED ({n}){details}", kind.name())?,
            }
        }
        for v in &self.violations {
            writeln!(f, "  - {v}")?;
        }
        writeln!(f, "trace hash: {:#018x}", self.trace_hash)?;
        if self.passed() {
            writeln!(f, "result: PASS")
        } else {
            writeln!(f, "result: FAIL ({})", self.failed_checkers())?;
            writeln!(f, "reproduce: palisade sim raft --seed {}{}", o.seed, o.flags)
        }
    }
}
