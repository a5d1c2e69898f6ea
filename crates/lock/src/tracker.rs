//! `SessionTracker`: the volatile, per-node timers behind session expiry and lock-delay.
//!
//! Why a separate, volatile object: the replicated state machine cannot read a clock, so it
//! only stores, per session, a *basis* (the entry that last renewed or checkpointed it) and a
//! *remaining* time. Every node runs a tracker that turns those into local monotonic deadlines
//! as it applies entries; only the leader, once it is *ready* (it applied an entry of its own
//! term, so every earlier keepalive has been counted), turns a passed deadline into a proposal
//! (`ExpireSession`, `LockDelayOver`, `Checkpoint`). Nothing here touches the replicated state,
//! and losing the tracker (restart) is safe: it restarts timers from the log or snapshot, later
//! than before, never earlier.
//!
//! Driver order: feed every batch written to the local log to [`SessionTracker::handle_appended`]
//! (optional, sharpens the bound below), every applied entry's [`Applied`] to
//! [`SessionTracker::handle_applied`], every role change to [`SessionTracker::handle_role`];
//! call [`SessionTracker::handle_timeout`] at [`SessionTracker::poll_timeout`] and propose the
//! ops it returns. After installing a snapshot call [`SessionTracker::handle_restored`].
//!
//! ## Never early
//!
//! Notation: T the TTL, ρ the drift bound, `stretch`/`shrink` from palisade-clock. For a session
//! whose last renewal K was sent by the client at real time `s_K`, the client's local lease ends
//! by `X = s_K + T` (see `client`). Each timer keeps an *anchor* (local time) and a *remaining* R
//! with the invariant `X ≤ real(anchor) + R`, and its deadline is `anchor + stretch(R, ρ)`,
//! which arrives at least R real time after the anchor — so never before X.
//! - Renewal K: the anchor is when this node appended (or applied) K, which is after `s_K`.
//! - Checkpoint proposed at leader-local time `n` from a timer `(a, R)`: it carries
//!   `R' = R - shrink(n - a, ρ)`; since `real(n) - real(a) ≥ shrink(n - a, ρ)`,
//!   `X ≤ real(n) + R'`, and every node's anchor for the checkpoint is after `n`.
//! - A checkpoint never raises a timer a node already has (`min` rule); a detected self-pause
//!   only raises it. Both keep the invariant.
//!
//! ## How much a leader change can extend a session (etcd #9395)
//!
//! Resetting leases to the full TTL at every election lets a lease live forever under flapping
//! leadership. Here, call λ a node's *learning lag* for a basis entry: the real time between
//! the entry's creation and this node appending it (or applying it, if the driver does not
//! report appends; or replaying it after a restart or snapshot install). Then:
//! - A node that tracked the session since its last renewal K expires it by
//!   `X + λ(K) + 4ρT` (plus nanosecond rounding; 4ρT covers the stretches and the conversion of
//!   elapsed local time into real time over a chain whose remaining times sum to at most T).
//!   Later checkpoints can only lower its timer, so **any number of elections among such nodes
//!   extends nothing**.
//! - A leader that first learned the chain at a later basis B (it restarted, installed a
//!   snapshot, or learned the commit only when elected without append reports) adds its λ(B)
//!   to whatever slack B already carried. That is the whole extension of such a leader change.
//!   The leader checkpoints as soon as it is ready and every `checkpoint_interval` (validated
//!   shorter than the minimum election timeout), so B is at most one interval older than the
//!   previous leader's last act, and λ(B) is at most that interval plus the gap without a
//!   leader plus the new leader's restart/catch-up time.
//! - So only a succession of leaders that *each* learned the chain late, and each lost office
//!   before checkpointing away the time it had gained, can keep extending an unrenewed
//!   session; with no time that survives restarts no protocol can do better. Once leadership
//!   is stable, the session expires within `T + Σλ + 4ρT` of its last renewal.
//!
//! The design draft computed checkpoints as `stretch(deadline - now, 2ρ)` and anchored timers
//! at apply time; that inflates the remaining time by about 3ρ per carry-over and lets a new
//! leader that learned the commit only on election gain the whole election gap each time.
//! This module replaces it with the non-inflating `R - shrink(elapsed, ρ)`, the `min` rule
//! and optional append-time anchors.
//!
//! ## Self-pause
//!
//! While the leader is ready it asks to be woken at least every half `pause_detect_threshold`.
//! A gap between two inputs longer than the threshold means this process was stopped (GC, VM,
//! SIGSTOP): clients could not reach it either, so every session deadline is pushed back by the
//! gap before anything is expired. This only lengthens leases.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use palisade_clock::{MonoInstant, Now, shrink, stretch};
use palisade_raft::LogIndex;

use crate::command::{CheckpointEntry, LeaderOp, SessionId};
use crate::limits::{CHECKPOINT_SESSIONS_MAX, LockConfig, LockTestingFault};
use crate::state::{Applied, Event, LockStateMachine};

/// Most append marks kept; dropping the oldest only makes anchors later (conservative).
pub const APPEND_MARKS_MAX: usize = 4096;

#[derive(Clone, Debug)]
struct SessionTimer {
    basis: LogIndex,
    anchor: MonoInstant,
    remaining: Duration,
    deadline: MonoInstant,
    proposed_at: Option<MonoInstant>,
}

#[derive(Clone, Debug)]
struct DelayTimer {
    since: LogIndex,
    ends: MonoInstant,
    proposed_at: Option<MonoInstant>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Role {
    Follower,
    Leader { ready: bool },
}

/// The per-node session and lock-delay timers (see the module doc for the rules).
#[derive(Clone, Debug)]
pub struct SessionTracker {
    config: LockConfig,
    timers: BTreeMap<SessionId, SessionTimer>,
    delays: BTreeMap<String, DelayTimer>,
    /// `(last index, time)`: entries up to `last` (after the previous mark) were in the local
    /// log at `time`. Increasing in both.
    marks: VecDeque<(LogIndex, MonoInstant)>,
    role: Role,
    next_checkpoint: Option<MonoInstant>,
    last_input: Option<MonoInstant>,
    pauses_detected: u64,
    /// While proposing: the earliest time a session or lock-delay timer is due (retries
    /// included), refreshed whenever a timer changes, so that [`SessionTracker::poll_timeout`],
    /// asked after every input, does not scan them all. `None` while not proposing.
    timers_due: Option<MonoInstant>,
}

impl SessionTracker {
    /// A tracker with no timers, in the follower role.
    pub fn new(config: LockConfig) -> Self {
        SessionTracker {
            config,
            timers: BTreeMap::new(),
            delays: BTreeMap::new(),
            marks: VecDeque::new(),
            role: Role::Follower,
            next_checkpoint: None,
            last_input: None,
            pauses_detected: 0,
            timers_due: None,
        }
    }

    /// Entries `first..=last` were written to the local log at `now` (replacing anything at
    /// those indices). Optional: without it anchors are apply times, which are later.
    pub fn handle_appended(&mut self, now: Now, first: LogIndex, last: LogIndex) {
        self.observe(now.mono);
        assert!(first <= last, "empty append range");
        while self.marks.back().is_some_and(|&(i, _)| i >= first) {
            self.marks.pop_back();
        }
        if self.marks.len() == APPEND_MARKS_MAX {
            self.marks.pop_front();
        }
        self.marks.push_back((last, now.mono));
    }

    /// The local time to anchor a basis entry at: when it was appended, if known, else now.
    fn basis_time(&self, index: LogIndex, now: MonoInstant) -> MonoInstant {
        match self.marks.iter().find(|&&(i, _)| i >= index) {
            Some(&(_, t)) => t.min(now),
            None => now,
        }
    }

    /// Updates timers from one applied entry (every node, leader or not).
    pub fn handle_applied(&mut self, now: Now, applied: &Applied) {
        self.observe(now.mono);
        for event in &applied.events {
            self.apply_event(now.mono, event);
        }
        if !applied.events.is_empty() {
            self.refresh_timers_due();
        }
        while self.marks.front().is_some_and(|&(i, _)| i <= applied.index) {
            self.marks.pop_front();
        }
    }

    fn apply_event(&mut self, now: MonoInstant, event: &Event) {
        match event {
            Event::SessionOpened { session, basis, ttl: remaining, .. }
            | Event::SessionRenewed { session, basis, remaining } => {
                let anchor = self.basis_time(*basis, now);
                self.timers.insert(*session, self.timer(*basis, anchor, *remaining));
            }
            Event::SessionCheckpointed { session, basis, remaining } => {
                let anchor = self.basis_time(*basis, now);
                let fresh = self.timer(*basis, anchor, *remaining);
                let t = self.timers.entry(*session).or_insert_with(|| fresh.clone());
                if fresh.deadline < t.deadline {
                    *t = fresh;
                }
                t.basis = *basis;
                t.proposed_at = None;
            }
            Event::SessionExpired { session, .. } | Event::SessionClosed { session, .. } => {
                self.timers.remove(session);
            }
            Event::LockDelayStarted { lock, since } => {
                // Measured from the local apply of the expiry (after its commit): never early.
                let ends = now + stretch(self.config.lock_delay, self.config.drift_bound_ppm);
                let timer = DelayTimer { since: *since, ends, proposed_at: None };
                self.delays.insert(lock.clone(), timer);
            }
            Event::LockDelayEnded { lock, .. } => {
                self.delays.remove(lock);
            }
            Event::Granted { .. }
            | Event::Queued { .. }
            | Event::Dequeued { .. }
            | Event::Released { .. } => {}
        }
    }

    fn timer(&self, basis: LogIndex, anchor: MonoInstant, remaining: Duration) -> SessionTimer {
        let deadline = anchor + stretch(remaining, self.config.drift_bound_ppm);
        SessionTimer { basis, anchor, remaining, deadline, proposed_at: None }
    }

    /// Restarts every timer from `sm` as of `now` (after a snapshot install or at boot from a
    /// snapshot): every basis counts as just created, which is late, never early.
    pub fn handle_restored(&mut self, now: Now, sm: &LockStateMachine) {
        self.observe(now.mono);
        self.timers.clear();
        self.delays.clear();
        self.marks.clear();
        for s in sm.sessions() {
            self.timers.insert(s.id, self.timer(s.basis, now.mono, s.remaining));
        }
        let ends = now.mono + stretch(self.config.lock_delay, self.config.drift_bound_ppm);
        for (name, info) in sm.locks() {
            if let Some(since) = info.delayed_since {
                let timer = DelayTimer { since, ends, proposed_at: None };
                self.delays.insert(name.to_string(), timer);
            }
        }
        self.refresh_timers_due();
    }

    /// This node became leader / follower, or (as leader) applied an entry of its own term.
    pub fn handle_role(&mut self, now: Now, is_leader: bool, ready: bool) {
        self.observe(now.mono);
        let was_proposing = self.may_propose();
        self.role = if is_leader { Role::Leader { ready } } else { Role::Follower };
        if self.may_propose() && !was_proposing {
            // Checkpoint at once on taking office, then every interval.
            self.next_checkpoint = Some(now.mono);
            self.last_input = Some(now.mono);
        }
        if !self.may_propose() {
            self.next_checkpoint = None;
            self.timers.values_mut().for_each(|t| t.proposed_at = None);
            self.delays.values_mut().for_each(|d| d.proposed_at = None);
        }
        self.refresh_timers_due();
    }

    /// Whether this node may propose leader ops now.
    pub fn may_propose(&self) -> bool {
        match self.role {
            Role::Follower => false,
            Role::Leader { ready } => ready || self.expires_without_log(),
        }
    }

    /// Whether the `ExpireWithoutLog` testing fault is on: the driver must then apply each
    /// `ExpireSession` it gets with [`LockStateMachine::apply_unlogged_expiry`] instead of
    /// proposing it.
    pub fn expires_without_log(&self) -> bool {
        self.config.has_fault(LockTestingFault::ExpireWithoutLog)
    }

    /// Pause detection: a gap longer than the threshold while proposing pushes every session
    /// deadline back by the gap.
    fn observe(&mut self, now: MonoInstant) {
        if let Some(last) = self.last_input {
            let gap = now.saturating_duration_since(last);
            if self.may_propose() && gap > self.config.pause_detect_threshold {
                self.pauses_detected += 1;
                for t in self.timers.values_mut() {
                    t.anchor = t.anchor + gap;
                    t.deadline = t.deadline + gap;
                }
                self.refresh_timers_due();
            }
        }
        self.last_input = Some(self.last_input.map_or(now, |l| l.max(now)));
    }

    fn due(proposed_at: Option<MonoInstant>, retry: Duration, now: MonoInstant) -> bool {
        proposed_at.is_none_or(|p| now >= p + retry)
    }

    /// The leader ops due at `now`: expiries, lock-delays over, a checkpoint. Empty unless
    /// this node is a ready leader. An op not applied within `checkpoint_interval` (lost
    /// proposal) is proposed again.
    pub fn handle_timeout(&mut self, now: Now) -> Vec<LeaderOp> {
        self.observe(now.mono);
        let mut ops = Vec::new();
        if !self.may_propose() {
            return ops;
        }
        let (now, retry) = (now.mono, self.config.checkpoint_interval);
        for (session, t) in self.timers.iter_mut() {
            if t.deadline <= now && Self::due(t.proposed_at, retry, now) {
                t.proposed_at = Some(now);
                ops.push(LeaderOp::ExpireSession { session: *session, basis: t.basis });
            }
        }
        for (lock, d) in self.delays.iter_mut() {
            if d.ends <= now && Self::due(d.proposed_at, retry, now) {
                d.proposed_at = Some(now);
                ops.push(LeaderOp::LockDelayOver { lock: lock.clone(), since: d.since });
            }
        }
        if self.next_checkpoint.is_some_and(|c| c <= now) {
            self.next_checkpoint = Some(now + self.config.checkpoint_interval);
            ops.extend(self.checkpoint_ops(now));
        }
        self.refresh_timers_due();
        ops
    }

    /// Checkpoint lines for every session not yet due, split into entries of at most
    /// [`CHECKPOINT_SESSIONS_MAX`] lines.
    fn checkpoint_ops(&self, now: MonoInstant) -> Vec<LeaderOp> {
        let ppm = self.config.drift_bound_ppm;
        let lines: Vec<CheckpointEntry> = self
            .timers
            .iter()
            .filter(|(_, t)| t.deadline > now)
            .map(|(session, t)| CheckpointEntry {
                session: *session,
                basis: t.basis,
                remaining: t.remaining.saturating_sub(shrink(now - t.anchor, ppm)),
            })
            .collect();
        lines
            .chunks(CHECKPOINT_SESSIONS_MAX)
            .map(|chunk| LeaderOp::Checkpoint(chunk.to_vec()))
            .collect()
    }

    /// When [`SessionTracker::handle_timeout`] must next be called; `None` unless proposing.
    #[inline]
    pub fn poll_timeout(&self) -> Option<MonoInstant> {
        if !self.may_propose() {
            return None;
        }
        debug_assert_eq!(self.timers_due, self.scan_timers_due(), "timers_due is stale");
        let tick = self.last_input.map(|l| l + self.config.pause_detect_threshold / 2);
        [self.timers_due, self.next_checkpoint, tick].into_iter().flatten().min()
    }

    /// Recomputes `timers_due` after a change to the timers, the retries or the role.
    fn refresh_timers_due(&mut self) {
        self.timers_due = if self.may_propose() { self.scan_timers_due() } else { None };
    }

    /// The earliest time a session or lock-delay timer is due: its deadline, or a retry
    /// `checkpoint_interval` after it was last proposed.
    fn scan_timers_due(&self) -> Option<MonoInstant> {
        let retry = self.config.checkpoint_interval;
        let at = |deadline: MonoInstant, proposed: Option<MonoInstant>| match proposed {
            None => deadline,
            Some(p) => deadline.max(p + retry),
        };
        let sessions = self.timers.values().map(|t| at(t.deadline, t.proposed_at));
        let delays = self.delays.values().map(|d| at(d.ends, d.proposed_at));
        sessions.chain(delays).min()
    }

    /// This node's current deadline for `session`, for status pages and tests.
    pub fn deadline(&self, session: SessionId) -> Option<MonoInstant> {
        self.timers.get(&session).map(|t| t.deadline)
    }

    /// Every timed session and its deadline.
    pub fn deadlines(&self) -> impl Iterator<Item = (SessionId, MonoInstant)> + '_ {
        self.timers.iter().map(|(s, t)| (*s, t.deadline))
    }

    /// When the lock-delay of `lock` ends on this node, if one runs.
    pub fn lock_delay_ends(&self, lock: &str) -> Option<MonoInstant> {
        self.delays.get(lock).map(|d| d.ends)
    }

    /// How many self-pauses this node detected while leader.
    pub fn pauses_detected(&self) -> u64 {
        self.pauses_detected
    }
}

#[cfg(test)]
mod tests;
