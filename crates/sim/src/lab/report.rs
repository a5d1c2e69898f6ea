//! The result of one seed, as data and as the text `palisade sim --seed N` prints.
//!
//! The text is a pure function of the seed and the pinned options (no wall-clock time, no
//! addresses, no hash-map order): two runs of a seed print the same bytes, trace hash
//! included, which is what the determinism test compares.

use std::fmt;

use crate::lab::checkers::{LabCheck, LabViolation, Seen};
use crate::lab::options::LabSeed;
use crate::lab::run::{LIVENESS_LEADER_NANOS_MAX, LIVENESS_REQUEST_NANOS_MAX};
use crate::{ProcId, Stats, Swarm};

/// How the liveness phase went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabLiveness {
    /// Whether the run got that far.
    pub reached: bool,
    /// Whether it was judged (not in the asynchronous model).
    pub judged: bool,
    /// True time the phase began at.
    pub start_nanos: u64,
    /// When a leader was first ready, after the start.
    pub leader_after: Option<u64>,
    /// Operations judged.
    pub requests_judged: u64,
    /// Of which late or without a definite outcome.
    pub requests_late: u64,
    /// Sessions of live clients that expired in calm.
    pub live_sessions_expired: u64,
    /// Locks of dead clients still held at the end.
    pub dead_locks_held: u64,
    /// Locks nobody got in calm.
    pub locks_never_granted: Vec<String>,
}

/// What the linearizability checker did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinSummary {
    /// Lock operations in the history.
    pub lock_ops: usize,
    /// Kv operations in the history.
    pub kv_ops: usize,
    /// Partitions (locks and keys) checked.
    pub partitions: usize,
    /// Search steps.
    pub steps: u64,
    /// Partitions whose search ran out of budget (neither shown linearizable nor not).
    pub inconclusive: Vec<String>,
}

/// Everything one seed produced.
#[derive(Clone, Debug)]
pub struct LabReport {
    /// What the seed drew.
    pub seed: LabSeed,
    /// The core fault plan's kinds and counts.
    pub swarm: Swarm,
    /// The simulator's counters.
    pub stats: Stats,
    /// What the checkers saw.
    pub seen: Seen,
    /// Client crashes applied.
    pub client_crashes: u32,
    /// Clients crashed for good.
    pub dead_clients: Vec<ProcId>,
    /// Guarded writes paused between their lease check and their send.
    pub check_write_pauses: u64,
    /// Writes that presented a remembered token.
    pub stale_token_writes: u64,
    /// Client operations completed.
    pub ops_completed: u64,
    /// Of which (or abandoned at the end) with an unknown outcome.
    pub ops_unknown: u64,
    /// The linearizability check.
    pub lin: LinSummary,
    /// The liveness phase.
    pub liveness: LabLiveness,
    /// The first violations.
    pub violations: Vec<LabViolation>,
    /// Violations per checker.
    pub counts: Vec<(LabCheck, u64)>,
    /// The trace hash at the end.
    pub trace_hash: u64,
    /// True time simulated, in nanoseconds.
    pub virtual_nanos: u64,
}

impl LabReport {
    /// Whether every checker passed.
    pub fn passed(&self) -> bool {
        self.counts.iter().all(|&(_, n)| n == 0)
    }

    /// Violations found by `check`.
    pub fn count(&self, check: LabCheck) -> u64 {
        self.counts.iter().find(|(k, _)| *k == check).map_or(0, |&(_, n)| n)
    }

    /// Names of the checkers that failed, comma-separated.
    pub fn failed_checks(&self) -> String {
        let failed: Vec<&str> =
            self.counts.iter().filter(|(_, n)| *n > 0).map(|(k, _)| k.name()).collect();
        failed.join(", ")
    }

    /// The command that reproduces this run.
    pub fn reproduce(&self) -> String {
        format!("palisade sim --seed {}{}", self.seed.options.seed, self.seed.options.flags())
    }

    fn details(&self, check: LabCheck) -> String {
        let s = &self.seen;
        match check {
            LabCheck::Linearizability => {
                let mut out = format!(
                    "{} lock and {} kv operations, {} partitions, {} steps",
                    self.lin.lock_ops, self.lin.kv_ops, self.lin.partitions, self.lin.steps
                );
                if !self.lin.inconclusive.is_empty() {
                    out.push_str(&format!("; inconclusive: {}", self.lin.inconclusive.join(", ")));
                }
                out
            }
            LabCheck::Fencing => format!(
                "checked store accepted {} and rejected {}; unchecked store accepted {} of which \
                 {} lost updates (reported, not failures); {} stale writes sent",
                s.checked_accepted,
                s.checked_rejected,
                s.unchecked_accepted,
                s.lost_updates,
                s.stale_writes
            ),
            LabCheck::LeaseSanity => format!("{} beliefs sampled", s.beliefs),
            LabCheck::ReplicaAgreement => {
                format!("{} indexes, {} state comparisons", s.indexes, s.state_comparisons)
            }
            LabCheck::ElectionSafety => format!("{} leaders", s.leaders),
            LabCheck::Durability => format!("{} acknowledged mutations", s.acked),
            LabCheck::Liveness => self.liveness_details(),
            LabCheck::TokenOrder => format!("{} grants", s.grants),
            LabCheck::Panic => String::new(),
        }
    }

    fn liveness_details(&self) -> String {
        let l = &self.liveness;
        if !l.reached {
            return "not reached".into();
        }
        if !l.judged {
            return "not judged (asynchronous network)".into();
        }
        let leader = l.leader_after.map_or_else(|| "never".into(), secs);
        format!(
            "leader after {leader} (bound {}), {} requests judged, {} late (bound {}), {} live \
             sessions expired, {} dead clients' locks held, never granted: [{}]",
            secs(LIVENESS_LEADER_NANOS_MAX),
            l.requests_judged,
            l.requests_late,
            secs(LIVENESS_REQUEST_NANOS_MAX),
            l.live_sessions_expired,
            l.dead_locks_held,
            l.locks_never_granted.join(", ")
        )
    }
}

/// Nanoseconds as seconds with millisecond precision.
pub(crate) fn secs(nanos: u64) -> String {
    format!("{}.{:03}s", nanos / 1_000_000_000, nanos / 1_000_000 % 1000)
}

impl fmt::Display for LabReport {
    /// The full report, several lines, each ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.seed.options;
        writeln!(f, "palisade sim --seed {}{}", o.seed, o.flags())?;
        write!(f, "{}", self.seed)?;
        let w = &self.swarm;
        writeln!(
            f,
            "faults ({}): partitions {}, crashes {}, pauses {}, mid-handler pauses {}, drift {}, \
             wall steps {}, bit flips {}, network changes {}; client crashes {} (dead: {:?}), \
             check-write pauses {}, stale-token writes {}",
            o.faults,
            w.partitions,
            w.crashes,
            w.pauses,
            w.mid_handler_pauses,
            w.drift,
            w.wall_steps,
            w.bit_flips,
            w.network,
            self.client_crashes,
            self.dead_clients,
            self.check_write_pauses,
            self.stale_token_writes
        )?;
        writeln!(
            f,
            "phases: safety {}, then liveness from {} (simulated {} in all)",
            secs(self.seed.safety_nanos()),
            secs(self.liveness.start_nanos),
            secs(self.virtual_nanos)
        )?;
        let (s, seen) = (&self.stats, &self.seen);
        writeln!(
            f,
            "service: {} ops completed ({} unknown), {} grants, {} expiries, {} leaders, {} \
             torn tails, {} leader pauses detected",
            self.ops_completed,
            self.ops_unknown,
            seen.grants,
            seen.expiries,
            seen.leaders,
            seen.torn_tails,
            seen.pauses_detected
        )?;
        writeln!(
            f,
            "network: {} sent, {} delivered, {} lost, {} cut, {} to down, {} duplicated, {} \
             reordered, {} corrupted ({} undetected); {} crashes, {} pauses",
            s.messages_sent,
            s.messages_delivered,
            s.messages_dropped,
            s.messages_dropped_partition,
            s.messages_dropped_down,
            s.messages_duplicated,
            s.messages_reordered,
            s.corrupt_detected + s.corrupt_undetected,
            s.corrupt_undetected,
            s.crashes,
            s.pauses
        )?;
        writeln!(f, "checkers:")?;
        for &(check, n) in &self.counts {
            let d = self.details(check);
            let d = if d.is_empty() { d } else { format!(" ({d})") };
            match (check, n) {
                (LabCheck::Panic, 0) => {}
                (_, 0) => writeln!(f, "  {}: ok{d}", check.name())?,
                (_, n) => writeln!(f, "  {}: VIOLATED ({n}){d}", check.name())?,
            }
        }
        for v in &self.violations {
            writeln!(f, "  - {v}")?;
        }
        writeln!(f, "trace hash: {:#018x}", self.trace_hash)?;
        if self.passed() {
            writeln!(f, "result: PASS")
        } else {
            writeln!(f, "result: FAIL ({})", self.failed_checks())?;
            writeln!(f, "reproduce: {}", self.reproduce())
        }
    }
}
