//! Log replication (Raft §5.3) and the commit rule (§5.4.2).
//!
//! The leader sends each follower the entries after the point where their logs match, found
//! by probing backwards with the follower's hint (a whole term per round trip), then pipelines
//! entries while the follower keeps up. AppendEntries doubles as the heartbeat; a heartbeat
//! uses the follower's match point as `prev_log_index`, which the follower is known to hold, so
//! a heartbeat never fails because pipelined entries are still in flight.
//!
//! The commit rule: an index is committed when a majority stores it durably *and* its entry is
//! of the leader's current term. Counting replicas of an older term's entry is not enough: Raft
//! figure 8 shows such an entry being overwritten after a majority stored it. The leader counts
//! its own log only up to what its driver reported durable (`handle_persisted`).
//!
//! Followers learn the commit index as the paper has it (§5.3): from the `leader_commit` of
//! the next AppendEntries, entries or heartbeat, never from a round of its own. A follower
//! applies an entry at most one heartbeat interval after the leader does (sooner under load,
//! when the next entries carry it). Nothing waits on a follower's apply: clients are answered
//! by the leader, and a new leader applies what it inherited once it commits an entry of its
//! own term. The eager alternative (etcd's leader sends an empty append to every follower
//! when the commit index moves) would double the messages per committed entry when entries
//! are not batched: an append and its answer to carry the entry, and again for the commit.

use crate::config::{REPLICATION_STALL_HEARTBEATS, TestingFault, UNCOMMITTED_ENTRIES_MAX};
use crate::error::ProposeError;
use crate::message::{AppendEntries, AppendEntriesResponse, AppendResult, Message};
use crate::node::{RaftNode, Role};
use crate::progress::{ProgressState, quorum_index};
use crate::timer::Timer;
use crate::types::{Entry, LogIndex, NodeId, Payload, Term};

impl RaftNode {
    /// Appends `command` to the log (leader only); it is committed once a majority stores it.
    /// Returns its index and term: the command took effect iff an entry with that index and
    /// term is later handed out in [`crate::Ready::committed`].
    pub fn propose(
        &mut self,
        now: palisade_clock::Now,
        command: Vec<u8>,
    ) -> Result<(LogIndex, Term), ProposeError> {
        self.observe(now);
        self.check_can_propose()?;
        let max = self.cfg.bytes_per_message_max;
        if command.len() > max {
            return Err(ProposeError::TooLarge { bytes: command.len(), max });
        }
        Ok(self.append_local(Payload::Command(command)))
    }

    /// The checks shared by every kind of proposal.
    pub(crate) fn check_can_propose(&self) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader { leader: self.leader });
        }
        if let Some(transfer) = &self.transfer {
            return Err(ProposeError::TransferInProgress { target: transfer.target });
        }
        let uncommitted = self.log.uncommitted_len();
        if uncommitted >= UNCOMMITTED_ENTRIES_MAX {
            return Err(ProposeError::Overloaded { uncommitted, max: UNCOMMITTED_ENTRIES_MAX });
        }
        Ok(())
    }

    /// Appends an entry of the current term as leader; it is sent with the next `Ready`.
    pub(crate) fn append_local(&mut self, payload: Payload) -> (LogIndex, Term) {
        assert!(self.role == Role::Leader, "only a leader appends its own entries");
        let index = self.log.last_index() + 1;
        self.log.append_as_leader(Entry { term: self.term, index, payload });
        self.out.broadcast_pending = true;
        (index, self.term)
    }

    /// Whether the leader has committed an entry of its own term.
    pub(crate) fn committed_in_term(&self) -> bool {
        self.log.term_at(self.log.committed()) == Some(self.term)
    }

    /// Sends pending entries to every follower.
    pub(crate) fn flush_broadcast(&mut self) {
        let entries = std::mem::take(&mut self.out.broadcast_pending);
        if self.role != Role::Leader || !entries {
            return;
        }
        let peers: Vec<NodeId> = self.tracker.keys().copied().collect();
        for peer in peers {
            self.send_appends(peer);
        }
    }

    /// Sends as many AppendEntries with entries to `to` as its progress allows.
    pub(crate) fn send_appends(&mut self, to: NodeId) -> bool {
        let mut sent = false;
        for _ in 0..self.cfg.inflight_messages_max {
            if !self.send_append(to, false) {
                break;
            }
            sent = true;
        }
        sent
    }

    /// Sends one AppendEntries (or a snapshot chunk) to `to`. Without `allow_empty`, sends
    /// only if there are entries to send. Returns whether something was sent.
    pub(crate) fn send_append(&mut self, to: NodeId, allow_empty: bool) -> bool {
        let inflight_max = self.cfg.inflight_messages_max;
        let Some(progress) = self.tracker.get_mut(&to) else { return false };
        if progress.state == ProgressState::Snapshot {
            return self.send_snapshot_chunk(to);
        }
        if progress.is_paused(inflight_max) {
            return false;
        }
        let next = progress.next_index;
        let prev = next - 1;
        let Some(prev_term) = self.log.term_at(prev) else {
            return self.start_snapshot(to);
        };
        let last = self.log.last_index();
        let (count_max, bytes_max) =
            (self.cfg.entries_per_message_max, self.cfg.bytes_per_message_max);
        let entries = self.log.slice(next, last, count_max, bytes_max);
        if entries.is_empty() && !allow_empty {
            return false;
        }
        if let Some(sent_last) = entries.last().map(|e| e.index) {
            progress.sent_entries(sent_last, self.now.mono);
        }
        let msg = AppendEntries {
            term: self.term,
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries,
            leader_commit: self.log.committed(),
            read_round: 0,
        };
        self.send(to, Message::AppendEntries(msg));
        true
    }

    /// Sends an empty AppendEntries anchored at the follower's match point.
    pub(crate) fn send_heartbeat(&mut self, to: NodeId, read_round: u64) {
        let Some(progress) = self.tracker.get(&to) else { return };
        let (prev, prev_term) = match self.log.term_at(progress.match_index) {
            Some(term) => (progress.match_index, term),
            None => (0, 0),
        };
        let msg = AppendEntries {
            term: self.term,
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries: Vec::new(),
            leader_commit: self.log.committed(),
            read_round,
        };
        self.send(to, Message::AppendEntries(msg));
    }

    /// The heartbeat timer fired: heartbeat everyone, retry stalled snapshot chunks, re-send
    /// TimeoutNow to a caught-up transfer target.
    pub(crate) fn heartbeat_tick(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let round = self.reads.last_round();
        let peers: Vec<NodeId> = self.tracker.keys().copied().collect();
        for peer in peers {
            self.send_heartbeat(peer, round);
            self.retry_snapshot_chunk(peer);
            self.retry_stalled_replication(peer);
        }
        self.maybe_send_timeout_now();
        self.timers.set(Timer::Heartbeat, self.now.mono + self.cfg.heartbeat_interval);
    }

    /// Falls back to probing a follower whose pipelined messages went unanswered for
    /// `REPLICATION_STALL_HEARTBEATS` heartbeat intervals, which re-sends from its match.
    fn retry_stalled_replication(&mut self, peer: NodeId) {
        let patience = self.cfg.heartbeat_interval * REPLICATION_STALL_HEARTBEATS;
        let now = self.now.mono;
        let Some(progress) = self.tracker.get_mut(&peer) else { return };
        if progress.is_stalled(now, patience) {
            progress.become_probe();
            self.send_append(peer, true);
        }
    }

    /// Follower side of AppendEntries (`m.term` equals the current term).
    pub(crate) fn handle_append(&mut self, from: NodeId, m: AppendEntries) {
        if !self.accept_leader(from) {
            return;
        }
        let read_round = m.read_round;
        let result = self.append_from_leader(m);
        let reply = AppendEntriesResponse { term: self.term, result, read_round };
        self.send(from, Message::AppendEntriesResponse(reply));
    }

    /// Records `from` as this term's leader; false if the message must be dropped.
    pub(crate) fn accept_leader(&mut self, from: NodeId) -> bool {
        match self.role {
            Role::Leader => {
                assert!(!self.strict(), "election safety: two leaders in term {}", self.term);
                return false;
            }
            Role::Candidate | Role::PreCandidate => self.become_follower(self.term, Some(from)),
            Role::Follower => {}
        }
        match self.leader {
            Some(leader) if leader != from => {
                assert!(!self.strict(), "election safety: two leaders in term {}", self.term);
                return false;
            }
            Some(_) => {}
            None => self.leader = Some(from),
        }
        self.leader_contact(from);
        true
    }

    /// Checks `prev` (log matching, §5.3), appends, advances the commit index.
    fn append_from_leader(&mut self, m: AppendEntries) -> AppendResult {
        assert!(self.role == Role::Follower, "leader append-only: a leader never takes entries");
        let AppendEntries {
            mut prev_log_index, mut prev_log_term, mut entries, leader_commit, ..
        } = m;
        let committed = self.log.committed();
        if prev_log_index < committed {
            // Entries up to the commit index are here already (Leader Completeness).
            let skip = usize::try_from(committed - prev_log_index).unwrap_or(usize::MAX);
            if entries.len() <= skip {
                return AppendResult::Success { match_index: committed };
            }
            prev_log_term = entries[skip - 1].term;
            prev_log_index = committed;
            entries.drain(..skip);
        }
        if self.log.term_at(prev_log_index) != Some(prev_log_term) {
            let (hint_index, hint_term) =
                self.log.find_conflict_by_term(prev_log_index, prev_log_term);
            return AppendResult::Reject { rejected: prev_log_index, hint_index, hint_term };
        }
        let added = entries.iter().any(|e| matches!(e.payload, Payload::Membership(_)));
        let last_new = prev_log_index + entries.len() as u64;
        let truncated = self.log.append_as_follower(prev_log_index, entries);
        self.membership_after_append(truncated, added);
        self.log.commit_to(leader_commit.min(last_new));
        AppendResult::Success { match_index: last_new }
    }

    /// Leader side of an AppendEntries answer (`m.term` equals the current term).
    pub(crate) fn handle_append_response(&mut self, from: NodeId, m: AppendEntriesResponse) {
        if self.role != Role::Leader {
            return;
        }
        let Some(progress) = self.tracker.get_mut(&from) else { return };
        let last = self.log.last_index();
        if matches!(m.result, AppendResult::Success { match_index } if match_index > last) {
            self.messages_rejected += 1;
            return;
        }
        progress.recent_active = true;
        if progress.state == ProgressState::Probe {
            progress.probe_sent = false;
        }
        if m.read_round > 0 {
            self.reads.ack(from, m.read_round);
            self.release_reads();
        }
        match m.result {
            AppendResult::Success { match_index } => self.append_succeeded(from, match_index),
            AppendResult::Reject { rejected, hint_index, hint_term } => {
                let probe = if hint_term > 0 {
                    self.log.find_conflict_by_term(hint_index, hint_term).0
                } else {
                    hint_index
                };
                let progress = self.tracker.get_mut(&from).expect("checked above");
                if progress.maybe_decrease_to(rejected, probe) {
                    self.send_append(from, true);
                }
            }
        }
    }

    fn append_succeeded(&mut self, from: NodeId, match_index: LogIndex) {
        let progress = self.tracker.get_mut(&from).expect("caller checked");
        let probe_point = progress.next_index.saturating_sub(1);
        let updated = progress.maybe_update(match_index, self.now.mono);
        if progress.state == ProgressState::Probe && match_index >= probe_point {
            progress.become_replicate();
        }
        let probing = progress.state == ProgressState::Probe;
        if updated && self.maybe_commit() {
            self.after_commit();
        }
        if probing && self.tracker.get(&from).is_some_and(|p| p.match_index < self.log.last_index())
        {
            // Keep probing even when there is nothing new to send: the follower's answer
            // moves `next_index` back to where the logs match.
            self.send_append(from, true);
        } else {
            self.send_appends(from);
        }
        if self.transfer_target() == Some(from) {
            self.maybe_send_timeout_now();
        }
    }

    /// Advances the commit index by the commit rule; returns whether it moved.
    pub(crate) fn maybe_commit(&mut self) -> bool {
        // Nothing to count when everything is committed: no match (and no durable index)
        // lies beyond the leader's last entry.
        if self.role != Role::Leader || self.log.committed() == self.log.last_index() {
            return false;
        }
        let (own, stable) = (self.cfg.id, self.log.stable());
        let index = quorum_index(&self.members.current.voters, |v| {
            if v == own { stable } else { self.tracker.get(&v).map_or(0, |p| p.match_index) }
        });
        if index <= self.log.committed() {
            return false;
        }
        let by_count = self.cfg.testing_fault == Some(TestingFault::CommitEarlierTermByCount);
        if self.log.term_at(index) != Some(self.term) && !by_count {
            return false;
        }
        self.log.commit_to(index)
    }

    /// After the commit index moved: release reads, step down if this leader's removal is
    /// now committed. Followers hear of the new index with the next append or heartbeat.
    pub(crate) fn after_commit(&mut self) {
        self.release_reads();
        self.maybe_step_down_removed();
    }
}

#[cfg(test)]
mod tests {
    use palisade_clock::{MonoInstant, Now, WallTime};

    use crate::config::Config;
    use crate::message::{AppendEntries, AppendResult, Message};
    use crate::node::{RaftNode, Recovered};
    use crate::types::{Entry, HardState, Membership, Payload};

    fn follower_with(terms: &[u64], commit: u64) -> RaftNode {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &term)| Entry { term, index: i as u64 + 1, payload: Payload::Noop })
            .collect();
        let recovered = Recovered {
            hard_state: HardState { term: 5, vote: None, commit },
            snapshot: None,
            entries,
            initial_membership: Membership::new([1, 2, 3]),
        };
        let now = Now::new(MonoInstant::from_nanos(1), WallTime::from_nanos(1));
        RaftNode::new(Config::default_for(2), recovered, now, 7).expect("valid node")
    }

    fn append(prev: u64, prev_term: u64, terms: &[u64], commit: u64) -> Message {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &term)| Entry { term, index: prev + 1 + i as u64, payload: Payload::Noop })
            .collect();
        Message::AppendEntries(AppendEntries {
            term: 5,
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries,
            leader_commit: commit,
            read_round: 0,
        })
    }

    fn last_result(node: &mut RaftNode) -> AppendResult {
        let ready = node.ready();
        node.handle_persisted(now(), ready.token());
        match ready.messages.last() {
            Some((1, Message::AppendEntriesResponse(r))) => r.result.clone(),
            other => panic!("expected an AppendEntriesResponse to 1, got {other:?}"),
        }
    }

    fn now() -> Now {
        Now::new(MonoInstant::from_nanos(2), WallTime::from_nanos(2))
    }

    #[test]
    fn reject_hints_skip_a_whole_term() {
        // Raft §5.3: the follower has [1 1 2 2 2] and the leader probes at 6 (term 4).
        let mut node = follower_with(&[1, 1, 2, 2, 2], 0);
        node.handle_message(now(), 1, append(6, 4, &[], 0));
        let expected = AppendResult::Reject { rejected: 6, hint_index: 5, hint_term: 2 };
        assert_eq!(last_result(&mut node), expected);
        // A leader with [1 1 1 3 3 4] finds its last entry of term <= 2 at 3 and probes there.
        node.handle_message(now(), 1, append(3, 1, &[], 0));
        let expected = AppendResult::Reject { rejected: 3, hint_index: 2, hint_term: 1 };
        assert_eq!(last_result(&mut node), expected);
    }

    #[test]
    fn conflicting_suffix_is_replaced_and_commit_follows() {
        let mut node = follower_with(&[1, 1, 2, 2], 1);
        node.handle_message(now(), 1, append(2, 1, &[3, 3], 9));
        assert_eq!(last_result(&mut node), AppendResult::Success { match_index: 4 });
        assert_eq!(node.status().last_index, 4);
        assert_eq!(node.status().commit, 4, "commit = min(leader commit, last new entry)");
        assert_eq!(node.log.term_at(3), Some(3));
    }

    #[test]
    fn old_prev_below_commit_is_trimmed() {
        let mut node = follower_with(&[1, 1, 2], 3);
        node.handle_message(now(), 1, append(1, 1, &[1, 2, 5], 0));
        assert_eq!(last_result(&mut node), AppendResult::Success { match_index: 4 });
        node.handle_message(now(), 1, append(0, 0, &[1], 0));
        assert_eq!(last_result(&mut node), AppendResult::Success { match_index: 3 });
    }
}
