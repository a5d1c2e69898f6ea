//! The lab's checkers, kept apart from fault injection and from the workload: they see only
//! what the processes report (node events, client completions, store decisions), samples of
//! what clients believe, and, now and then, the replicas' state machines.
//!
//! - **Linearizability** of lock and kv operations (`palisade_linearize`, per lock and per
//!   key, unknown outcomes included) and the global order of fencing tokens (`check_tokens`).
//! - **Fencing**: the store that checks tokens never accepts one lower than it already
//!   accepted for that key; palisade's kv never accepts a fenced write invoked after the
//!   presented grant had ended. Lost updates on the unchecked store are counted and reported:
//!   they are the chapter's demonstration, not a failure.
//! - **Lease sanity**: whenever a client believes (its local lease says so) that it holds a
//!   lock or a session which the service had already ended — released it by expiry, handed it
//!   to someone else — that is a violation (the drift margin exists for exactly this). Writes
//!   that leave a client after the service ended their grant (the client was paused between
//!   its check and its send) are counted as stale writes; fencing must stop every one.
//! - **Replica agreement** and **election safety**: every node that applies an index applies
//!   the same entry and computes the same response; replicas at equal applied indexes hold
//!   equal state machines; at most one leader per term.
//! - **Durability**: every acknowledged mutation was applied at an index no node ever applied
//!   anything else at, and the final leader has applied past it.
//! - **Liveness** is judged by the runner, which knows when the faults stopped.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, hash_map};
use std::fmt;

use palisade_node::NodeEvent;
use palisade_node::event::CommandSummary;
use palisade_node::lock::{ReleaseCause, RequestId};
use palisade_node::raft::{LogIndex, Term};

use crate::ProcId;
use crate::service::StoreObs;

/// Violations whose details are kept per run (all are counted).
const VIOLATIONS_KEPT_MAX: usize = 16;

/// The lab's checkers, and a panic of the code under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LabCheck {
    /// Lock and kv operations are linearizable.
    Linearizability,
    /// Fencing tokens increase across all locks, in real time.
    TokenOrder,
    /// Stale tokens never pass a fence.
    Fencing,
    /// No client believes in a lease the service had ended.
    LeaseSanity,
    /// Replicas apply the same entries and reach the same states.
    ReplicaAgreement,
    /// At most one leader per term.
    ElectionSafety,
    /// Acknowledged mutations survive crashes.
    Durability,
    /// After the faults stop, the service serves, releases dead clients' locks and hands
    /// locks to waiters, each within a bound.
    Liveness,
    /// The code under test panicked (an `assert!` fired).
    Panic,
}

impl LabCheck {
    /// Every checker, in report order.
    pub const ALL: [LabCheck; 9] = [
        LabCheck::Linearizability,
        LabCheck::TokenOrder,
        LabCheck::Fencing,
        LabCheck::LeaseSanity,
        LabCheck::ReplicaAgreement,
        LabCheck::ElectionSafety,
        LabCheck::Durability,
        LabCheck::Liveness,
        LabCheck::Panic,
    ];

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            LabCheck::Linearizability => "linearizability",
            LabCheck::TokenOrder => "token order",
            LabCheck::Fencing => "fencing",
            LabCheck::LeaseSanity => "lease sanity",
            LabCheck::ReplicaAgreement => "replica agreement",
            LabCheck::ElectionSafety => "election safety",
            LabCheck::Durability => "durability",
            LabCheck::Liveness => "liveness",
            LabCheck::Panic => "panic",
        }
    }
}

/// One broken property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabViolation {
    /// Which checker found it.
    pub check: LabCheck,
    /// True time it was found at (or of the offending event), in nanoseconds.
    pub t_nanos: u64,
    /// What exactly broke.
    pub detail: String,
}

impl fmt::Display for LabViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at t={}ns: {}", self.check.name(), self.t_nanos, self.detail)
    }
}

/// Counters of what the checkers saw, for the report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Distinct log indexes applied.
    pub indexes: u64,
    /// Leaders elected.
    pub leaders: u64,
    /// Grants (distinct tokens).
    pub grants: u64,
    /// Sessions expired through the log.
    pub expiries: u64,
    /// Writes accepted / rejected by the checked store.
    pub checked_accepted: u64,
    /// Writes rejected by the checked store.
    pub checked_rejected: u64,
    /// Writes accepted by the unchecked store.
    pub unchecked_accepted: u64,
    /// Stale writes accepted by the unchecked store: lost updates (reported, not failures).
    pub lost_updates: u64,
    /// Guarded writes that left a client after the service had ended their grant.
    pub stale_writes: u64,
    /// Lease beliefs sampled.
    pub beliefs: u64,
    /// Acknowledged mutations checked for durability.
    pub acked: u64,
    /// Replica state comparisons made.
    pub state_comparisons: u64,
    /// Torn WAL tails cut at recovery.
    pub torn_tails: u64,
    /// Pauses of its own a leader detected.
    pub pauses_detected: u64,
}

/// A hash map with rustc's fixed FxHash: the checkers look these keys up on every node event
/// and every belief sample, where a B-tree's search cost more than the check. Only for maps
/// nobody iterates in an order that matters (the hash has no random state, so even their
/// iteration order is the same on every run).
pub(crate) type FxMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// The service as its log says: grants, their ends, sessions.
#[derive(Debug, Default)]
pub(crate) struct ServerView {
    first_apply: FxMap<LogIndex, (Term, CommandSummary, ProcId)>,
    leaders: BTreeMap<Term, ProcId>,
    /// (lock, token) -> (first true time seen granted, session).
    pub grants: BTreeMap<(String, u64), (u64, u64)>,
    /// lock -> token -> (first true time seen ended, cause). Nested so that a lookup needs no
    /// owned key (beliefs are sampled every tick for every client).
    ended: BTreeMap<String, FxMap<u64, (u64, ReleaseCause)>>,
    /// session -> client id.
    pub session_client: BTreeMap<u64, u64>,
    /// session -> first true time its expiry was applied (unordered: sort to report).
    pub expired: FxMap<u64, u64>,
    /// Request id -> the first index it was applied at.
    applied_ids: FxMap<RequestId, LogIndex>,
    /// Term -> first true time a node became its leader.
    leader_since: BTreeMap<Term, u64>,
    /// (index, term) of a proposed expiry -> first true time it was proposed.
    expiry_proposed: BTreeMap<(LogIndex, Term), u64>,
    /// Entries that ended a session (expiry or close), by index, as first applied.
    pub session_ends: BTreeMap<LogIndex, SessionEnd>,
}

/// An applied entry that ended a session: the lock model's `Expire` operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionEnd {
    /// The session.
    pub session: u64,
    /// True time of its first apply.
    pub applied_at: u64,
    /// Closed by its client (else expired by a leader).
    pub closed: bool,
}

impl ServerView {
    /// When and why the grant of `lock` with `token` ended, if it did.
    pub(crate) fn ended(&self, lock: &str, token: u64) -> Option<(u64, ReleaseCause)> {
        self.ended.get(lock).and_then(|grants| grants.get(&token)).copied()
    }

    /// The grant of `lock` with `token` ended at `t` (only the first report counts).
    pub(crate) fn end_grant(&mut self, lock: &str, token: u64, t: u64, cause: ReleaseCause) {
        if !self.ended.contains_key(lock) {
            self.ended.insert(lock.to_owned(), FxMap::default());
        }
        let grants = self.ended.get_mut(lock).expect("inserted above");
        grants.entry(token).or_insert((t, cause));
    }

    /// When the expiry or close at `index` was asked for, at the latest: the leader's proposal
    /// of an expiry (else the start of its term's leadership), the client's first call of a
    /// close (from `close_calls`: session -> call time). Never after its first apply; 0 if
    /// nothing is known (sound, only lenient).
    pub(crate) fn end_asked_at(
        &self,
        index: LogIndex,
        end: &SessionEnd,
        close_calls: &BTreeMap<u64, u64>,
    ) -> u64 {
        let asked = if end.closed {
            close_calls.get(&end.session).copied()
        } else {
            self.first_apply.get(&index).and_then(|(term, ..)| {
                let proposed = self.expiry_proposed.get(&(index, *term));
                proposed.or_else(|| self.leader_since.get(term)).copied()
            })
        };
        asked.unwrap_or(0).min(end.applied_at)
    }
}

/// The checkers of one run.
#[derive(Debug, Default)]
pub struct LabCheckers {
    pub(crate) view: ServerView,
    violations: Vec<LabViolation>,
    counts: BTreeMap<LabCheck, u64>,
    pub(crate) seen: Seen,
    /// (store, key) -> highest token accepted.
    store_highest: BTreeMap<(ProcId, String), u64>,
    /// Beliefs already reported, so one long belief counts once.
    reported_beliefs: BTreeSet<(ProcId, String, u64)>,
}

impl LabCheckers {
    /// No violation yet.
    pub fn new() -> LabCheckers {
        LabCheckers::default()
    }

    /// Records a violation.
    pub fn violation(&mut self, check: LabCheck, t_nanos: u64, detail: String) {
        *self.counts.entry(check).or_default() += 1;
        if self.violations.len() < VIOLATIONS_KEPT_MAX {
            self.violations.push(LabViolation { check, t_nanos, detail });
        }
    }

    /// The kept violations (the first few).
    pub fn violations(&self) -> &[LabViolation] {
        &self.violations
    }

    /// Violations found by `check`.
    pub fn count(&self, check: LabCheck) -> u64 {
        self.counts.get(&check).copied().unwrap_or(0)
    }

    /// Whether nothing was violated so far.
    pub fn passed(&self) -> bool {
        self.counts.values().all(|&n| n == 0)
    }

    /// A node reported `e` at `t`.
    pub(crate) fn node_event(&mut self, t: u64, p: ProcId, e: &NodeEvent) {
        let v = &mut self.view;
        match e {
            NodeEvent::Applied { index, term, command } => {
                if let CommandSummary::Client { id, .. } = command {
                    v.applied_ids.entry(*id).or_insert(*index);
                }
                match v.first_apply.get(index) {
                    None => {
                        v.first_apply.insert(*index, (*term, command.clone(), p));
                        self.seen.indexes += 1;
                    }
                    Some((t0, c0, by)) if (t0, c0) != (term, command) => {
                        let detail = format!(
                            "index {index}: {by} applied {c0:?} (term {t0}), {p} applied \
                             {command:?} (term {term})"
                        );
                        self.violation(LabCheck::ReplicaAgreement, t, detail);
                    }
                    Some(_) => {}
                }
            }
            NodeEvent::BecameLeader { term } => {
                self.seen.leaders += 1;
                v.leader_since.entry(*term).or_insert(t);
                match v.leaders.get(term) {
                    Some(&other) if other != p => {
                        let detail = format!("{other} and {p} both led term {term}");
                        self.violation(LabCheck::ElectionSafety, t, detail);
                    }
                    _ => {
                        v.leaders.insert(*term, p);
                    }
                }
            }
            NodeEvent::Granted { lock, session, token, .. } => {
                if let Entry::Vacant(e) = v.grants.entry((lock.clone(), *token)) {
                    self.seen.grants += 1;
                    e.insert((t, session.0));
                }
            }
            NodeEvent::Released { lock, token, cause, .. } => {
                v.end_grant(lock, *token, t, *cause);
            }
            NodeEvent::SessionOpened { session, client, .. } => {
                v.session_client.insert(session.0, *client);
            }
            NodeEvent::ExpiryProposed { index, term, .. } => {
                v.expiry_proposed.entry((*index, *term)).or_insert(t);
            }
            NodeEvent::SessionExpired { session, index } => {
                if let hash_map::Entry::Vacant(e) = v.expired.entry(session.0) {
                    self.seen.expiries += 1;
                    e.insert(t);
                }
                let end = SessionEnd { session: session.0, applied_at: t, closed: false };
                v.session_ends.entry(*index).or_insert(end);
            }
            NodeEvent::SessionClosed { session, index } => {
                let end = SessionEnd { session: session.0, applied_at: t, closed: true };
                v.session_ends.entry(*index).or_insert(end);
            }
            NodeEvent::Recovered { torn_tail_bytes, .. } if *torn_tail_bytes > 0 => {
                self.seen.torn_tails += 1;
            }
            NodeEvent::PauseDetected { .. } => self.seen.pauses_detected += 1,
            _ => {}
        }
    }

    /// A store (`checked` or not) reported `o` at `t`; returns whether it was a lost update.
    pub(crate) fn store_event(
        &mut self,
        t: u64,
        store: ProcId,
        checked: bool,
        o: &StoreObs,
    ) -> bool {
        match o {
            StoreObs::Accepted { from, key, token, .. } => {
                let token = token.unwrap_or(0);
                let highest = self.store_highest.entry((store, key.clone())).or_insert(0);
                let stale = token < *highest;
                *highest = (*highest).max(token);
                if checked {
                    self.seen.checked_accepted += 1;
                    if stale {
                        let detail = format!(
                            "the checked store accepted token {token} from {from} for {key:?} \
                             after accepting a higher one"
                        );
                        self.violation(LabCheck::Fencing, t, detail);
                    }
                    false
                } else {
                    self.seen.unchecked_accepted += 1;
                    self.seen.lost_updates += u64::from(stale);
                    stale
                }
            }
            StoreObs::Rejected { .. } => {
                self.seen.checked_rejected += u64::from(checked);
                false
            }
        }
    }

    /// A guarded write with `token` of `lock` left client `p` at `t`: counted if the service
    /// had ended that grant before.
    pub(crate) fn write_sent(&mut self, t: u64, lock: &str, token: u64) {
        if self.view.ended(lock, token).is_some_and(|(end, _)| end < t) {
            self.seen.stale_writes += 1;
        }
    }

    /// A fenced kv put presenting `token` of `lock`, invoked at `call`, was acknowledged as
    /// written at `t`.
    pub(crate) fn kv_fenced_written(&mut self, t: u64, call: u64, lock: &str, token: u64) {
        if let Some((end, cause)) = self.view.ended(lock, token)
            && end < call
        {
            let detail = format!(
                "palisade's kv accepted a write fenced with token {token} of {lock:?}, invoked \
                 at t={call}ns, after that grant ended at t={end}ns ({cause:?})"
            );
            self.violation(LabCheck::Fencing, t, detail);
        }
    }

    /// Client `p` believed at `t` that it held `lock` with `token` (`Some`), or that its
    /// session `session` was live; `excused`: it had asked to give it up.
    pub(crate) fn belief(
        &mut self,
        t: u64,
        p: ProcId,
        session: u64,
        lock: Option<(&str, u64)>,
        excused: bool,
    ) {
        self.seen.beliefs += 1;
        if excused {
            return;
        }
        let (what, end) = match lock {
            Some((lock, token)) => {
                let Some((end, cause)) = self.view.ended(lock, token) else {
                    return;
                };
                if cause != ReleaseCause::SessionExpired {
                    return;
                }
                ((lock.to_owned(), token), end)
            }
            None => {
                let Some(&end) = self.view.expired.get(&session) else { return };
                ((String::new(), session), end)
            }
        };
        if end >= t || !self.reported_beliefs.insert((p, what.0.clone(), what.1)) {
            return;
        }
        let detail = match lock {
            Some((lock, token)) => format!(
                "{p} believed it held {lock:?} with token {token} at t={t}ns; the service \
                 expired that grant at t={end}ns"
            ),
            None => format!(
                "{p} believed its session {session} live at t={t}ns; the service expired it \
                 at t={end}ns"
            ),
        };
        self.violation(LabCheck::LeaseSanity, t, detail);
    }

    /// Durability: every acknowledged mutation was applied at an index whose entry every node
    /// agrees on (checked as they apply), and `final_applied` (the final leader's) is past it.
    pub(crate) fn check_durability(
        &mut self,
        t: u64,
        acked: &[(RequestId, u64)],
        final_applied: Option<LogIndex>,
    ) {
        for &(id, at) in acked {
            self.seen.acked += 1;
            match self.view.applied_ids.get(&id).copied() {
                None => {
                    let detail =
                        format!("request {id:?} acknowledged at t={at}ns, applied nowhere");
                    self.violation(LabCheck::Durability, t, detail);
                }
                Some(index) if final_applied.is_some_and(|f| f < index) => {
                    let detail = format!(
                        "request {id:?} acknowledged at index {index}, the final leader applied \
                         only up to {}",
                        final_applied.unwrap_or(0)
                    );
                    self.violation(LabCheck::Durability, t, detail);
                }
                Some(_) => {}
            }
        }
    }

    /// Replicas at the same applied index must hold the same state machine.
    pub(crate) fn compare_states(&mut self, t: u64, states: &[(ProcId, LogIndex, Vec<u8>)]) {
        let mut by_index: BTreeMap<LogIndex, (ProcId, &[u8])> = BTreeMap::new();
        for (p, index, bytes) in states {
            match by_index.get(index) {
                None => {
                    by_index.insert(*index, (*p, bytes));
                }
                Some(&(q, other)) => {
                    self.seen.state_comparisons += 1;
                    if other != bytes.as_slice() {
                        let detail = format!(
                            "{q} and {p} both applied up to index {index} and hold different \
                             state machines"
                        );
                        self.violation(LabCheck::ReplicaAgreement, t, detail);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use palisade_node::lock::SessionId;

    use super::*;

    /// Hand-made violations: a checked store that goes back, two leaders of one term, two
    /// different entries at one index, a client believing in an expired grant.
    #[test]
    fn hand_made_violations_are_caught() {
        let mut c = LabCheckers::new();
        let w = |token| StoreObs::Accepted {
            from: ProcId(4),
            key: "s0".into(),
            value: vec![],
            token: Some(token),
            replaced: None,
        };
        assert!(!c.store_event(1, ProcId(9), false, &w(5)));
        assert!(c.store_event(2, ProcId(9), false, &w(3)), "a lost update on the unchecked store");
        assert!(c.passed(), "lost updates are reported, not failures");
        c.store_event(3, ProcId(8), true, &w(5));
        c.store_event(4, ProcId(8), true, &w(3));
        assert_eq!(c.count(LabCheck::Fencing), 1);
        c.node_event(5, ProcId(0), &NodeEvent::BecameLeader { term: 2 });
        c.node_event(6, ProcId(1), &NodeEvent::BecameLeader { term: 2 });
        assert_eq!(c.count(LabCheck::ElectionSafety), 1);
        let noop = NodeEvent::Applied { index: 3, term: 2, command: CommandSummary::Noop };
        let other = NodeEvent::Applied {
            index: 3,
            term: 2,
            command: CommandSummary::Checkpoint { sessions: 1 },
        };
        c.node_event(7, ProcId(0), &noop);
        c.node_event(8, ProcId(1), &noop);
        c.node_event(9, ProcId(2), &other);
        assert_eq!(c.count(LabCheck::ReplicaAgreement), 1);
        let released = NodeEvent::Released {
            lock: "L".into(),
            session: SessionId(4),
            token: 7,
            cause: ReleaseCause::SessionExpired,
            index: 9,
        };
        c.node_event(10, ProcId(0), &released);
        c.belief(9, ProcId(5), 4, Some(("L", 7)), false);
        assert_eq!(c.count(LabCheck::LeaseSanity), 0, "before the expiry: fine");
        c.belief(11, ProcId(5), 4, Some(("L", 7)), true);
        assert_eq!(c.count(LabCheck::LeaseSanity), 0, "excused: it released");
        c.belief(12, ProcId(5), 4, Some(("L", 7)), false);
        assert_eq!(c.count(LabCheck::LeaseSanity), 1);
        c.compare_states(13, &[(ProcId(0), 5, vec![1]), (ProcId(1), 5, vec![2])]);
        assert_eq!(c.count(LabCheck::ReplicaAgreement), 2);
        c.kv_fenced_written(20, 15, "L", 7);
        assert_eq!(c.count(LabCheck::Fencing), 2);
    }
}
