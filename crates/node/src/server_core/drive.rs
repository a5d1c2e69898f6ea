//! The drive loop: Raft's `Ready` batches, handled strictly by Raft's driver contract.
//!
//! Per batch, in this order and no other: (1) persist — save a received snapshot, append the
//! entries, set the hard state, then ONE `fsync` for all of it (group commit: every entry and
//! vote of the batch shares it; a batch that only moves the commit index is not synced, see
//! `persist`); (2) queue the messages, which may announce that vote or
//! acknowledge those entries, so only now; (3) restore a received snapshot, apply the committed
//! entries in order, answer what they answer, serve confirmed reads, fail dropped ones;
//! (4) `handle_persisted`, which lets Raft count its own log towards commitment. Then, between
//! batches, snapshot and compact if enough was applied.
//!
//! The session tracker is fed on the way: appends (its anchors: a session's renewal is
//! counted from when this node first had it in its log), applies, and role changes (a leader
//! is *ready* once it applied an entry of its own term: every keepalive an earlier leader
//! committed has then been applied and counted, and only then may it expire anything).

use palisade_lock::{
    Applied, Command, Event, Holder, LockStateMachine, RequestId, Response, SessionId,
};
use palisade_raft::{
    Entry, HardState, LogIndex, Payload, Ready, Role, RoleChange, Snapshot, SnapshotMeta, Term,
};
use palisade_storage::{Disk, WalError};

use super::{AppliedPoint, Output, ServerCore};
use crate::config::DRIVE_ROUNDS_MAX;
use crate::event::{CommandSummary, NodeEvent};
use crate::protocol::{ReplyResult, RetryReason};

impl<D: Disk> ServerCore<D> {
    /// Takes and handles `Ready` batches until Raft has nothing more.
    pub(super) fn drive(&mut self) {
        let mut rounds = 0;
        while self.stopped.is_none() && self.raft.has_ready() {
            rounds += 1;
            assert!(rounds <= DRIVE_ROUNDS_MAX, "the node does not quiesce");
            let ready = self.raft.ready();
            self.handle_ready(ready);
        }
    }

    fn handle_ready(&mut self, ready: Ready) {
        let token = ready.token();
        let Ready {
            hard_state,
            entries,
            snapshot,
            messages,
            committed,
            read_states,
            reads_dropped,
            role_change,
            ..
        } = ready;
        if let Err(e) = self.persist(snapshot.as_ref(), &entries, hard_state) {
            self.stop(format!("write-ahead log failed: {e}"));
            return;
        }
        self.outputs.extend(messages.into_iter().map(|(to, msg)| Output::Peer { to, msg }));
        if let Some(change) = role_change {
            self.handle_role_change(change);
        }
        if let Some(snapshot) = snapshot {
            self.install_snapshot(snapshot);
            if self.stopped.is_some() {
                return;
            }
        }
        for entry in committed {
            self.apply_entry(entry);
        }
        self.answer_orphaned_proposals();
        self.confirm_reads(read_states.into_iter().map(|r| (r.ctx, r.index)));
        self.drop_reads(reads_dropped);
        self.raft.handle_persisted(self.now, token);
        self.maybe_snapshot();
    }

    /// Makes the batch durable with one sync, and tells the tracker what was appended.
    ///
    /// A batch that changes only the commit index is not synced: the new hard state is handed
    /// to the WAL, which writes it with the next sync. Persisting the commit index is an
    /// optimisation (a restarted node applies sooner); safety does not depend on it
    /// (`HardState::commit`), and the entries it covers are durable on a majority already.
    /// Without this, every commit would cost the leader a second fsync on the path of each
    /// request, and each follower one more per round. Term and vote always sync, so the WAL
    /// never holds an unsynced term or vote.
    fn persist(
        &mut self,
        snapshot: Option<&Snapshot>,
        entries: &[Entry],
        hard_state: Option<HardState>,
    ) -> Result<(), WalError> {
        let syncs = self.wal.stats().syncs;
        let written = self.wal.hard_state();
        let term_or_vote =
            hard_state.is_some_and(|hs| (hs.term, hs.vote) != (written.term, written.vote));
        let must_sync = snapshot.is_some() || !entries.is_empty() || term_or_vote;
        if let Some(s) = snapshot {
            self.wal.save_snapshot(s)?;
        }
        self.wal.append_entries(entries)?;
        if let Some(hs) = hard_state {
            self.wal.set_hard_state(hs)?;
        }
        if must_sync {
            self.wal.sync()?;
        }
        if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
            self.tracker.handle_appended(self.now, first.index, last.index);
        }
        if !entries.is_empty() || snapshot.is_some() {
            let fsyncs = self.wal.stats().syncs - syncs;
            self.emit(NodeEvent::Persisted { entries: entries.len(), fsyncs });
        }
        Ok(())
    }

    fn handle_role_change(&mut self, change: RoleChange) {
        let was_leader = self.role == Role::Leader;
        let is_leader = change.role == Role::Leader;
        let new_term = change.term != self.term;
        if was_leader && (!is_leader || new_term) {
            let leader = change.leader;
            self.emit(NodeEvent::SteppedDown { term: self.term, now_term: change.term, leader });
            self.leader_ready = false;
            self.tracker.handle_role(self.now, false, false);
        }
        if is_leader && (!was_leader || new_term) {
            self.emit(NodeEvent::BecameLeader { term: change.term });
            self.leader_ready = false;
            self.tracker.handle_role(self.now, true, false);
        }
        self.role = change.role;
        self.term = change.term;
    }

    /// Applies one committed entry and answers what it answers.
    fn apply_entry(&mut self, entry: Entry) {
        let Entry { term, index, payload } = entry;
        assert_eq!(index, self.applied.index + 1, "committed entries apply in order, no gaps");
        let (summary, response, events) = match payload {
            Payload::Command(bytes) => self.apply_command(index, term, &bytes),
            Payload::Membership(m) => {
                let voters = m.voters.iter().copied().collect();
                self.applied.membership = m;
                (CommandSummary::Membership { voters }, None, Vec::new())
            }
            Payload::Noop => (CommandSummary::Noop, None, Vec::new()),
        };
        self.applied.index = index;
        self.applied.term = term;
        self.emit(NodeEvent::Applied { index, term, command: summary });
        self.answer_proposal(index, term, response);
        self.observe_events(index, events);
        if self.role == Role::Leader && term == self.term && !self.leader_ready {
            self.leader_ready = true;
            self.tracker.handle_role(self.now, true, true);
            self.emit(NodeEvent::LeaderReady { term });
        }
        self.serve_confirmed_reads();
    }

    /// Applies the command of the entry at `index` and `term`; returns its summary, the
    /// response if this node's own proposal at `index` and `term` awaits it, and the events.
    fn apply_command(
        &mut self,
        index: LogIndex,
        term: Term,
        bytes: &[u8],
    ) -> (CommandSummary, Option<(RequestId, Response)>, Vec<Event>) {
        // Every command was validated and encoded by a leader of this code: a committed entry
        // that does not decode is a bug (or undetected corruption), never input to tolerate.
        let cmd = Command::decode(bytes)
            .unwrap_or_else(|e| panic!("committed entry {index} does not decode: {e}"));
        let applied = self.sm.apply(index, &cmd);
        self.tracker.handle_applied(self.now, &applied);
        let Applied { response, events, .. } = applied;
        // Only a proposal of this node at this index and term is answered (`answer_proposal`):
        // otherwise the summary takes the response as it is, without a copy.
        let (answer, summarised) = match response {
            Some((id, r)) if self.requests.proposal_term(index) == Some(term) => {
                let copy = r.clone();
                (Some((id, r)), Some(copy))
            }
            Some((_, r)) => (None, Some(r)),
            None => (None, None),
        };
        (CommandSummary::of_applied(cmd, summarised), answer, events)
    }

    /// Turns the state machine's events into observations and wakes the long polls they end.
    pub(super) fn observe_events(&mut self, index: LogIndex, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Granted { lock, session, token, index } => {
                    self.emit(NodeEvent::Granted { lock: lock.clone(), session, token, index });
                    self.settle_long_polls(session, &lock);
                }
                Event::Dequeued { lock, session } => self.settle_long_polls(session, &lock),
                Event::Released { lock, session, token, cause } => {
                    self.emit(NodeEvent::Released { lock, session, token, cause, index });
                }
                Event::SessionOpened { session, client, ttl, .. } => {
                    self.emit(NodeEvent::SessionOpened { session, client, ttl });
                }
                Event::SessionExpired { session, .. } => {
                    self.emit(NodeEvent::SessionExpired { session, index });
                }
                Event::SessionClosed { session, .. } => {
                    self.emit(NodeEvent::SessionClosed { session, index });
                }
                Event::SessionRenewed { .. }
                | Event::SessionCheckpointed { .. }
                | Event::Queued { .. }
                | Event::LockDelayStarted { .. }
                | Event::LockDelayEnded { .. } => {}
            }
        }
    }

    /// A grant as the protocol reports it.
    pub(super) fn holder_of(&self, session: SessionId, lock: &str) -> Option<Holder> {
        self.sm.holder(lock).filter(|h| h.session == session).cloned()
    }

    /// After the committed entries of a batch: proposals of a leadership this node no longer
    /// has may still commit under the next leader, or not — the honest answer is "unknown".
    fn answer_orphaned_proposals(&mut self) {
        let (leader, term) = (self.role == Role::Leader, self.term);
        for waiter in self.requests.take_orphans(|p_term| !leader || p_term != term) {
            self.answer(waiter, ReplyResult::Unknown);
        }
    }

    /// Restores the state machine from a snapshot the leader sent (already durable).
    fn install_snapshot(&mut self, snapshot: Snapshot) {
        let Snapshot { meta, data } = snapshot;
        match LockStateMachine::restore(&data) {
            Ok(sm) => self.sm = sm,
            Err(e) => {
                self.stop(format!(
                    "the snapshot at {} from the leader is invalid: {e}",
                    meta.index
                ));
                return;
            }
        }
        assert!(meta.index > self.applied.index, "a snapshot only ever moves the state forward");
        self.tracker.handle_restored(self.now, &self.sm);
        let SnapshotMeta { index, term, membership } = meta;
        self.applied = AppliedPoint { index, term, membership };
        self.snapshot_index = index;
        self.emit(NodeEvent::SnapshotInstalled { index });
        for waiter in self.requests.take_proposals_up_to(index) {
            self.answer(waiter, ReplyResult::Unknown);
        }
        self.settle_all_long_polls();
        self.serve_confirmed_reads();
    }

    /// Snapshots the state machine, saves it, and compacts Raft's log, every
    /// `snapshot_every_entries` applied entries.
    fn maybe_snapshot(&mut self) {
        let due = self.snapshot_index.saturating_add(self.config.snapshot_every_entries);
        if self.stopped.is_some() || self.applied.index < due {
            return;
        }
        let AppliedPoint { index, term, ref membership } = self.applied;
        let meta = SnapshotMeta { index, term, membership: membership.clone() };
        let snapshot = Snapshot { meta: meta.clone(), data: self.sm.snapshot() };
        if let Err(e) = self.wal.save_snapshot(&snapshot) {
            self.stop(format!("saving the snapshot at {index} failed: {e}"));
            return;
        }
        let bytes = snapshot.data.len();
        self.raft.compact(index, snapshot.data).expect("compacting at an applied index");
        // The same metadata computed on two paths: Raft's log and this node's apply.
        assert_eq!(self.raft.snapshot().map(|s| &s.meta), Some(&meta), "snapshot metadata");
        self.snapshot_index = index;
        self.emit(NodeEvent::SnapshotTaken { index, bytes });
    }

    /// The term of the entry this node proposed at `index`, and answers its client.
    fn answer_proposal(
        &mut self,
        index: LogIndex,
        term: Term,
        response: Option<(RequestId, Response)>,
    ) {
        let Some(proposal) = self.requests.take_proposal(index) else { return };
        if proposal.term != term {
            // Another leader's entry took the index: this proposal was not applied, anywhere.
            if let Some(waiter) = proposal.waiter {
                self.answer(waiter, ReplyResult::Retry { reason: RetryReason::ProposalDropped });
            }
            return;
        }
        let (id, response) = response.expect("the entry at the proposal's index and term is it");
        assert_eq!(id, proposal.id, "the proposal's own request applied at its index");
        self.finish_mutation(proposal, response);
    }
}
