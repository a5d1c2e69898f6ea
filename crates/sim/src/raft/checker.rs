//! The checkers of the Raft simulation, kept apart from fault injection (as in TigerBeetle's
//! VOPR): they never see a fault, only what the nodes report ([`RaftObs`]) and, from time to
//! time, the nodes' durable logs. A fault injector that gets cleverer cannot make them more
//! lenient, and a checker that gets stricter needs no change to the faults.
//!
//! - **Election safety** (Raft §5.2): at most one leader per term, over the whole run,
//!   restarts included.
//! - **Log matching** (§5.3): if two durable logs hold an entry with the same index and term,
//!   they hold the same entries up to that index; and no node's durable log holds, at an index
//!   it knows to be committed, anything but the committed entry.
//! - **State machine safety** (§5.4.3): no two nodes apply different entries at one index, and
//!   a node's state after applying an index (its hash chain) is the state every node reached
//!   there, whether it applied the entries one by one or restored a snapshot.
//! - **Leader completeness** (§5.4): whenever an index is committed, no node whose log lacks
//!   it could be elected (see `completeness.rs`).
//! - **Durability**: a command the client was told is committed at index `i` is the entry at
//!   `i` on every node that ever applies `i`, whatever crashed since.
//!
//! Liveness is judged by the runner, which knows when the faults stopped; it reports its
//! verdicts here too, so one list holds every violation of a seed.

use std::collections::BTreeMap;
use std::fmt;

use palisade_raft::{LogIndex, Role, Term};

use crate::raft::msg::{RaftObs, chain_next};
use crate::raft::server::LogMirror;
use crate::{Observed, ProcId};

/// Violations whose details are kept per run (all are counted).
const VIOLATIONS_KEPT_MAX: usize = 16;

/// The checkers, and two kinds of failure that are not properties.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckerKind {
    /// At most one leader per term.
    ElectionSafety,
    /// Durable logs agree up to any index where their terms agree; committed entries stay.
    LogMatching,
    /// No node lacking a committed entry can be elected.
    LeaderCompleteness,
    /// No two different entries applied at one index; equal states at equal indexes.
    StateMachineSafety,
    /// Acknowledged commands are never lost.
    Durability,
    /// After the faults stop, a leader, a commit and catching up, each within a bound.
    Liveness,
    /// Raft or the driver panicked (an `assert!` fired).
    Panic,
}

impl CheckerKind {
    /// Every kind, in report order.
    pub const ALL: [CheckerKind; 7] = [
        CheckerKind::ElectionSafety,
        CheckerKind::LogMatching,
        CheckerKind::LeaderCompleteness,
        CheckerKind::StateMachineSafety,
        CheckerKind::Durability,
        CheckerKind::Liveness,
        CheckerKind::Panic,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            CheckerKind::ElectionSafety => "election safety",
            CheckerKind::LogMatching => "log matching",
            CheckerKind::LeaderCompleteness => "leader completeness",
            CheckerKind::StateMachineSafety => "state machine safety",
            CheckerKind::Durability => "durability",
            CheckerKind::Liveness => "liveness",
            CheckerKind::Panic => "panic",
        }
    }
}

/// One broken property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which checker found it.
    pub kind: CheckerKind,
    /// True time it was found at, in nanoseconds.
    pub t_nanos: u64,
    /// What exactly broke.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at t={}ns: {}", self.kind.name(), self.t_nanos, self.detail)
    }
}

/// The first application of an index, which every later one must equal.
#[derive(Clone, Copy, Debug)]
struct Applied {
    term: Term,
    payload: u64,
    chain: u64,
    by: ProcId,
}

/// An acknowledged command.
#[derive(Clone, Copy, Debug)]
struct Ack {
    seq: u64,
    term: Term,
    payload: u64,
}

/// What the checkers saw, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Leaders elected (role changes to leader).
    pub leaders: u64,
    /// Highest term with a leader.
    pub term_max: Term,
    /// Distinct indexes applied by some node.
    pub indexes: u64,
    /// Applications (all nodes, all incarnations).
    pub applies: u64,
    /// Snapshots restored from a leader.
    pub restores: u64,
    /// Compactions.
    pub compactions: u64,
    /// Commands acknowledged to the client.
    pub acked: u64,
    /// Highest acknowledged index.
    pub acked_index_max: LogIndex,
    /// Server starts (first boots and restarts).
    pub starts: u64,
    /// Starts that cut a torn tail off the WAL.
    pub torn_tails: u64,
    /// Starts refused.
    pub refusals: u64,
    /// Log-matching rounds run.
    pub log_checks: u64,
    /// Leader-completeness checks run (one per newly committed index, at most).
    pub completeness_checks: u64,
}

/// The checkers of one run. Feed every observation to [`RaftCheckers::observe`] in order, and
/// the durable logs to [`RaftCheckers::check_logs`] from time to time.
#[derive(Debug, Default)]
pub struct RaftCheckers {
    leaders: BTreeMap<Term, Vec<ProcId>>,
    applied: BTreeMap<LogIndex, Applied>,
    acked: BTreeMap<LogIndex, Ack>,
    violations: Vec<Violation>,
    counts: BTreeMap<CheckerKind, u64>,
    seen: Seen,
    /// The highest index committed since the last [`RaftCheckers::take_new_commit`].
    new_commit: Option<(LogIndex, Term, u64)>,
}

impl RaftCheckers {
    /// Checkers that saw nothing yet.
    pub fn new() -> RaftCheckers {
        RaftCheckers::default()
    }

    /// Records a violation (details of the first few are kept).
    pub fn violation(&mut self, kind: CheckerKind, t_nanos: u64, detail: String) {
        *self.counts.entry(kind).or_default() += 1;
        if self.violations.len() < VIOLATIONS_KEPT_MAX {
            self.violations.push(Violation { kind, t_nanos, detail });
        }
    }

    /// The violations kept, in the order found.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// How many violations `kind` found.
    pub fn count(&self, kind: CheckerKind) -> u64 {
        self.counts.get(&kind).copied().unwrap_or(0)
    }

    /// Whether no checker found anything.
    pub fn passed(&self) -> bool {
        self.counts.is_empty()
    }

    /// What the checkers saw.
    pub fn seen(&self) -> Seen {
        let mut seen = self.seen;
        seen.indexes = self.applied.len() as u64;
        seen
    }

    /// Highest index some node applied.
    pub fn applied_index_max(&self) -> LogIndex {
        self.applied.keys().next_back().copied().unwrap_or(0)
    }

    /// The state hash chain every node reaches at `index`, if some node applied it.
    pub fn chain_at(&self, index: LogIndex) -> Option<u64> {
        self.applied.get(&index).map(|a| a.chain)
    }

    /// Takes one observation.
    pub fn observe(&mut self, o: &Observed<RaftObs>) {
        let (t, p) = (o.t_nanos, o.proc);
        match &o.obs {
            RaftObs::Started { torn_bytes, .. } => {
                self.seen.starts += 1;
                self.seen.torn_tails += u64::from(*torn_bytes > 0);
            }
            RaftObs::Refused { .. } => {
                self.seen.starts += 1;
                self.seen.refusals += 1;
            }
            RaftObs::Role { role: Role::Leader, term } => self.leader(t, p, *term),
            RaftObs::Role { .. } | RaftObs::LeaderCommit { .. } => {}
            &RaftObs::Applied { index, term, payload, chain } => {
                self.seen.applies += 1;
                self.applied_entry(t, p, index, Applied { term, payload, chain, by: p });
            }
            &RaftObs::Restored { index, chain } => {
                self.seen.restores += 1;
                if let Some(a) = self.applied.get(&index).filter(|a| a.chain != chain) {
                    let detail = format!(
                        "{p} restored a snapshot at {index} with state {chain:x}, but {} \
                         reached {:x} there",
                        a.by, a.chain
                    );
                    self.violation(CheckerKind::StateMachineSafety, t, detail);
                }
            }
            RaftObs::Compacted { .. } => self.seen.compactions += 1,
            &RaftObs::Acked { seq, index, term, payload } => {
                self.ack(t, index, Ack { seq, term, payload })
            }
        }
    }

    fn leader(&mut self, t: u64, p: ProcId, term: Term) {
        self.seen.leaders += 1;
        self.seen.term_max = self.seen.term_max.max(term);
        let leaders = self.leaders.entry(term).or_default();
        if leaders.contains(&p) {
            return;
        }
        leaders.push(p);
        if leaders.len() > 1 {
            let detail = format!("term {term} has leaders {leaders:?}");
            self.violation(CheckerKind::ElectionSafety, t, detail);
        }
    }

    fn applied_entry(&mut self, t: u64, p: ProcId, index: LogIndex, new: Applied) {
        let Some(first) = self.applied.get(&index).copied() else {
            self.check_chain(t, p, index, new);
            self.applied.insert(index, new);
            if self.new_commit.is_none_or(|(i, ..)| i < index) {
                self.new_commit = Some((index, new.term, new.payload));
            }
            return;
        };
        if (first.term, first.payload) != (new.term, new.payload) {
            let detail = format!(
                "{p} applied (term {}, {:x}) at {index}, but {} applied (term {}, {:x}) there",
                new.term, new.payload, first.by, first.term, first.payload
            );
            self.violation(CheckerKind::StateMachineSafety, t, detail);
            if let Some(ack) = self.acked.get(&index).copied() {
                let detail = format!(
                    "acknowledged command #{} at {index} (term {}) lost: {p} applied \
                     (term {}, {:x}) there",
                    ack.seq, ack.term, new.term, new.payload
                );
                self.violation(CheckerKind::Durability, t, detail);
            }
        } else if first.chain != new.chain {
            let detail = format!(
                "{p} reached state {:x} at {index}, but {} reached {:x}: their histories \
                 differ before {index}",
                new.chain, first.by, first.chain
            );
            self.violation(CheckerKind::StateMachineSafety, t, detail);
        }
    }

    /// The first application of `index`: its chain must follow from the chain at `index - 1`.
    fn check_chain(&mut self, t: u64, p: ProcId, index: LogIndex, new: Applied) {
        let Some(prev) = index.checked_sub(1).and_then(|i| self.applied.get(&i)) else {
            return;
        };
        if chain_next(prev.chain, index, new.term, new.payload) != new.chain {
            let detail = format!(
                "{p} reached state {:x} at {index}, which does not follow from the state {:x} \
                 at {} (of {})",
                new.chain,
                prev.chain,
                index - 1,
                prev.by
            );
            self.violation(CheckerKind::StateMachineSafety, t, detail);
        }
    }

    fn ack(&mut self, t: u64, index: LogIndex, ack: Ack) {
        self.seen.acked += 1;
        self.seen.acked_index_max = self.seen.acked_index_max.max(index);
        match self.applied.get(&index) {
            Some(a) if (a.term, a.payload) == (ack.term, ack.payload) => {}
            Some(a) => {
                let detail = format!(
                    "command #{} acknowledged at {index} (term {}, {:x}), but {} applied \
                     (term {}, {:x}) there",
                    ack.seq, ack.term, ack.payload, a.by, a.term, a.payload
                );
                self.violation(CheckerKind::Durability, t, detail);
            }
            None => {
                let detail = format!("command #{} acknowledged at {index}, never applied", ack.seq);
                self.violation(CheckerKind::Durability, t, detail);
            }
        }
        if let Some(other) = self.acked.get(&index).filter(|o| o.payload != ack.payload) {
            let detail =
                format!("commands #{} and #{} both acknowledged at {index}", other.seq, ack.seq);
            self.violation(CheckerKind::Durability, t, detail);
        }
        self.acked.entry(index).or_insert(ack);
    }

    /// The highest (index, term, payload hash) first applied since the last call, if any:
    /// what the leader-completeness check looks at.
    pub fn take_new_commit(&mut self) -> Option<(LogIndex, Term, u64)> {
        let commit = self.new_commit.take();
        self.seen.completeness_checks += u64::from(commit.is_some());
        commit
    }

    /// Log matching over the durable logs of the running servers: `(server, log, committed)`,
    /// where `committed` is an index the server knows is committed and holds durably.
    pub fn check_logs(&mut self, t: u64, logs: &[(ProcId, &LogMirror, LogIndex)]) {
        self.seen.log_checks += 1;
        for (i, &(a, log_a, _)) in logs.iter().enumerate() {
            for &(b, log_b, _) in &logs[i + 1..] {
                if let Some(detail) = mismatch(a, log_a, b, log_b) {
                    self.violation(CheckerKind::LogMatching, t, detail);
                }
            }
        }
        for &(p, log, commit) in logs {
            let (lo, hi) = (log.first_index(), commit.min(log.last_index()));
            for index in lo..=hi {
                let (Some(held), Some(a)) = (log.get(index), self.applied.get(&index)) else {
                    continue;
                };
                if held != (a.term, a.payload) {
                    let detail = format!(
                        "{p} holds (term {}, {:x}) at committed index {index}, but {} applied \
                         (term {}, {:x})",
                        held.0, held.1, a.by, a.term, a.payload
                    );
                    self.violation(CheckerKind::LogMatching, t, detail);
                    break;
                }
            }
        }
    }
}

/// The first place where two logs break log matching, if any: the highest common index where
/// their terms agree must be preceded by identical entries (and be identical itself).
fn mismatch(a: ProcId, log_a: &LogMirror, b: ProcId, log_b: &LogMirror) -> Option<String> {
    let lo = log_a.first_index().max(log_b.first_index());
    let hi = log_a.last_index().min(log_b.last_index());
    if lo > hi {
        return None;
    }
    let agree = (lo..=hi).rev().find(|&i| log_a.term_at(i) == log_b.term_at(i))?;
    (lo..=agree).find(|&i| log_a.get(i) != log_b.get(i)).map(|i| {
        let (ea, eb) = (log_a.get(i), log_b.get(i));
        format!("{a} and {b} agree on the term at {agree} but differ at {i}: {ea:x?} vs {eb:x?}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(t: u64, p: u32, obs: RaftObs) -> Observed<RaftObs> {
        Observed { t_nanos: t, proc: ProcId(p), obs }
    }

    #[test]
    fn two_leaders_in_a_term_are_caught() {
        let mut c = RaftCheckers::new();
        c.observe(&obs(1, 0, RaftObs::Role { role: Role::Leader, term: 3 }));
        c.observe(&obs(2, 0, RaftObs::Role { role: Role::Leader, term: 3 }));
        assert!(c.passed(), "the same leader twice is fine");
        c.observe(&obs(3, 1, RaftObs::Role { role: Role::Leader, term: 3 }));
        assert_eq!(c.count(CheckerKind::ElectionSafety), 1);
    }

    #[test]
    fn different_entries_at_one_index_are_caught_and_blamed_on_acks() {
        let mut c = RaftCheckers::new();
        let applied = |term, payload, chain| RaftObs::Applied { index: 1, term, payload, chain };
        c.observe(&obs(1, 0, applied(1, 7, 70)));
        c.observe(&obs(2, 2, RaftObs::Acked { seq: 4, index: 1, term: 1, payload: 7 }));
        c.observe(&obs(3, 1, applied(1, 7, 70)));
        assert!(c.passed());
        c.observe(&obs(4, 1, applied(2, 8, 80)));
        assert_eq!(c.count(CheckerKind::StateMachineSafety), 1);
        assert_eq!(c.count(CheckerKind::Durability), 1);
        c.observe(&obs(5, 1, RaftObs::Restored { index: 1, chain: 71 }));
        assert_eq!(c.count(CheckerKind::StateMachineSafety), 2);
    }
}
