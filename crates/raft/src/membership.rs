//! Single-server membership changes (Raft thesis §4.1).
//!
//! Why one server at a time: any majority of the old voters and any majority of the new voters
//! overlap when the two sets differ by one server, so no joint consensus is needed. The new
//! configuration takes effect as soon as its entry is *appended* (not committed): every node
//! uses the latest membership entry in its log. Two rules keep this safe: a leader proposes a
//! change only after committing an entry of its own term (the fix the thesis errata gives for
//! the single-server algorithm), and only one change may be uncommitted at a time.
//!
//! A follower may later truncate a membership entry it had appended; it then falls back to the
//! latest membership still in its log, or the snapshot's, or the bootstrap one. A leader that
//! removes itself keeps leading (without counting itself) until the removal commits, then
//! steps down; a node that is not a voter never campaigns.

use serde::{Deserialize, Serialize};

use crate::config::VOTERS_MAX;
use crate::error::ProposeError;
use crate::log::RaftLog;
use crate::node::{RaftNode, Role};
use crate::progress::Progress;
use crate::types::{LogIndex, Membership, NodeId, Payload, Term};

/// One change of the voting membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Make `NodeId` a voter.
    AddVoter(NodeId),
    /// Remove `NodeId` from the voters.
    RemoveVoter(NodeId),
}

impl MembershipChange {
    /// The membership after applying this change to `current`.
    pub fn apply(&self, current: &Membership) -> Result<Membership, ProposeError> {
        let invalid = |reason| Err(ProposeError::InvalidMembershipChange { reason });
        let mut next = current.clone();
        match *self {
            MembershipChange::AddVoter(0) => return invalid("node id 0 is reserved"),
            MembershipChange::AddVoter(id) => {
                if !next.voters.insert(id) {
                    return invalid("already a voter");
                }
                if next.voters.len() > VOTERS_MAX {
                    return invalid("too many voters");
                }
            }
            MembershipChange::RemoveVoter(id) => {
                if !next.voters.remove(&id) {
                    return invalid("not a voter");
                }
                if next.voters.is_empty() {
                    return invalid("cannot remove the last voter");
                }
            }
        }
        Ok(next)
    }
}

/// The membership in force and where it came from.
#[derive(Clone, Debug)]
pub(crate) struct MembershipState {
    /// The membership in force: the latest one in the log, the snapshot's, or the initial one.
    pub current: Membership,
    /// Index of the entry that set `current` (0 when it came from a snapshot or bootstrap).
    pub index: LogIndex,
    /// The membership at the snapshot point (or the bootstrap one without snapshot).
    pub base: Membership,
}

impl MembershipState {
    /// The membership of a recovered node.
    pub fn recover(
        log: &RaftLog,
        snapshot: Option<Membership>,
        initial: Membership,
    ) -> MembershipState {
        let base = snapshot.unwrap_or(initial);
        let mut state = MembershipState { current: base.clone(), index: 0, base };
        state.rescan(log);
        state
    }

    /// Recomputes `current` from the latest membership entry in the log.
    pub fn rescan(&mut self, log: &RaftLog) {
        let latest = log.iter_rev().find_map(|e| match &e.payload {
            Payload::Membership(m) => Some((e.index, m.clone())),
            _ => None,
        });
        (self.index, self.current) = latest.unwrap_or((0, self.base.clone()));
    }

    /// The membership in force at `index` (which must be in the log or at its snapshot).
    pub fn at(&self, log: &RaftLog, index: LogIndex) -> Membership {
        log.iter_rev()
            .filter(|e| e.index <= index)
            .find_map(|e| match &e.payload {
                Payload::Membership(m) => Some(m.clone()),
                _ => None,
            })
            .unwrap_or_else(|| self.base.clone())
    }
}

impl RaftNode {
    /// Proposes adding or removing one voter (leader only). Refused until the leader has
    /// committed an entry of its term, and while another change is uncommitted.
    pub fn propose_membership(
        &mut self,
        now: palisade_clock::Now,
        change: MembershipChange,
    ) -> Result<(LogIndex, Term), ProposeError> {
        self.observe(now);
        self.check_can_propose()?;
        if !self.committed_in_term() {
            return Err(ProposeError::NotCommittedInTerm);
        }
        if self.members.index > self.log.committed() {
            return Err(ProposeError::MembershipChangePending { index: self.members.index });
        }
        let next = change.apply(&self.members.current)?;
        let (index, term) = self.append_local(Payload::Membership(next.clone()));
        self.members.current = next;
        self.members.index = index;
        self.leader_membership_changed();
        Ok((index, term))
    }

    /// Leader: track exactly the new voters.
    fn leader_membership_changed(&mut self) {
        let next = self.log.last_index() + 1;
        let peers = self.peers();
        self.tracker.retain(|id, _| peers.contains(id));
        for peer in peers {
            if !self.tracker.contains_key(&peer) {
                self.tracker.insert(peer, Progress::new(next));
                self.send_append(peer, true);
            }
        }
        if self.transfer.as_ref().is_some_and(|t| !self.members.current.contains(t.target)) {
            self.transfer = None;
        }
        self.prune_peer_state();
        self.release_reads();
    }

    /// Follower: after appending entries (and truncating from `truncated`), adopt the
    /// latest membership in the log; `added`: the appended entries carried a membership.
    pub(crate) fn membership_after_append(&mut self, truncated: Option<LogIndex>, added: bool) {
        let reverted = truncated.is_some_and(|t| t <= self.members.index);
        if reverted || added {
            self.members.rescan(&self.log);
            self.prune_peer_state();
        }
    }

    /// Drops per-peer state of nodes that are no longer voters.
    pub(crate) fn prune_peer_state(&mut self) {
        let voters = self.members.current.voters.clone();
        self.peer_detectors.retain(|id, _| voters.contains(id));
        self.clocks.retain(|id| voters.contains(&id));
    }

    /// A leader whose removal is committed steps down (after telling followers the commit).
    pub(crate) fn maybe_step_down_removed(&mut self) {
        let removed = !self.members.current.contains(self.cfg.id);
        if self.role != Role::Leader || !removed || self.members.index > self.log.committed() {
            return;
        }
        let peers: Vec<NodeId> = self.tracker.keys().copied().collect();
        for peer in peers {
            self.send_heartbeat(peer, 0);
        }
        self.become_follower(self.term, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Entry;

    #[test]
    fn changes_are_checked() {
        let m = Membership::new([1, 2, 3]);
        assert_eq!(MembershipChange::AddVoter(4).apply(&m), Ok(Membership::new([1, 2, 3, 4])));
        assert_eq!(MembershipChange::RemoveVoter(2).apply(&m), Ok(Membership::new([1, 3])));
        assert!(MembershipChange::AddVoter(3).apply(&m).is_err());
        assert!(MembershipChange::AddVoter(0).apply(&m).is_err());
        assert!(MembershipChange::RemoveVoter(9).apply(&m).is_err());
        assert!(MembershipChange::RemoveVoter(1).apply(&Membership::new([1])).is_err());
    }

    #[test]
    fn membership_follows_the_log_and_reverts_on_truncation() {
        let entry = |index, payload| Entry { term: 1, index, payload };
        let entries = vec![
            entry(1, Payload::Noop),
            entry(2, Payload::Membership(Membership::new([1, 2, 3, 4]))),
            entry(3, Payload::Noop),
        ];
        let mut log = RaftLog::recover(None, entries, 0).expect("valid");
        let mut state = MembershipState::recover(&log, None, Membership::new([1, 2, 3]));
        assert_eq!((state.index, state.current.voters.len()), (2, 4));
        assert_eq!(state.at(&log, 1), Membership::new([1, 2, 3]));
        log.append_as_follower(1, vec![Entry { term: 2, index: 2, payload: Payload::Noop }]);
        state.rescan(&log);
        assert_eq!((state.index, state.current.clone()), (0, Membership::new([1, 2, 3])));
    }
}
