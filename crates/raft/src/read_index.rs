//! Linearizable reads without writing to the log: ReadIndex (Raft thesis §6.4).
//!
//! Why it is correct: a read must see every write committed before it started. The leader
//! records its commit index when the read arrives, then confirms it was still the leader *after*
//! that moment by a heartbeat round answered by a majority in its term (a newer leader would
//! have made a majority move to a newer term, and they would not answer). Once the application
//! has applied up to the recorded index, the read can be served from the local state machine.
//!
//! Two guards: the leader must have committed an entry of its current term (its no-op) first,
//! otherwise its commit index may lag what earlier leaders committed; and only rounds *started
//! after* a read was registered count for it. Rounds are numbered; an answer to round `r`
//! confirms every read registered at or before `r`, so reads leave the queue in order.

use std::collections::{BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::config::READS_PENDING_MAX;
use crate::error::ProposeError;
use crate::node::{RaftNode, Role};
use crate::progress::has_quorum;
use crate::types::{LogIndex, NodeId};

/// A confirmed read: serve the request tagged `ctx` once the state machine applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    /// The context given to [`RaftNode::read_index`].
    pub ctx: u64,
    /// The commit index recorded when the read arrived.
    pub index: LogIndex,
}

/// A read waiting for its heartbeat round.
#[derive(Clone, Debug)]
pub(crate) struct PendingRead {
    /// The caller's context.
    pub ctx: u64,
    /// The commit index when the read arrived.
    pub index: LogIndex,
    /// The round started for this read.
    pub round: u64,
    /// Voters that answered a round `>= round`.
    pub acks: BTreeSet<NodeId>,
}

/// Pending reads in arrival order.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadQueue {
    pending: VecDeque<PendingRead>,
    last_round: u64,
}

impl ReadQueue {
    /// Registers a read; returns the new round number to send.
    pub fn push(&mut self, ctx: u64, index: LogIndex, own: Option<NodeId>) -> u64 {
        self.last_round += 1;
        let acks = own.into_iter().collect();
        self.pending.push_back(PendingRead { ctx, index, round: self.last_round, acks });
        self.last_round
    }

    /// `from` answered round `round`: it confirms every read registered up to that round.
    pub fn ack(&mut self, from: NodeId, round: u64) {
        for read in self.pending.iter_mut().take_while(|r| r.round <= round) {
            read.acks.insert(from);
        }
    }

    /// Removes and returns the reads at the front confirmed by `confirmed`.
    pub fn take_confirmed(
        &mut self,
        confirmed: impl Fn(&BTreeSet<NodeId>) -> bool,
    ) -> Vec<ReadState> {
        let mut out = Vec::new();
        while self.pending.front().is_some_and(|r| confirmed(&r.acks)) {
            let read = self.pending.pop_front().expect("front exists");
            out.push(ReadState { ctx: read.ctx, index: read.index });
        }
        out
    }

    /// The latest round number (0 if none was started); heartbeats carry it so that a lost
    /// round is retried.
    pub fn last_round(&self) -> u64 {
        if self.pending.is_empty() { 0 } else { self.last_round }
    }

    /// Number of pending reads.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Removes every pending read (leadership lost).
    pub fn drain(&mut self) -> impl Iterator<Item = PendingRead> + '_ {
        self.pending.drain(..)
    }

    /// Forgets everything for a new term.
    pub fn reset(&mut self) {
        self.pending.clear();
    }
}

impl RaftNode {
    /// Asks for a linearizable read tagged `ctx` (leader only). The answer comes as a
    /// [`ReadState`] in a later `Ready` once a heartbeat round confirmed the leadership; if
    /// leadership is lost first, `ctx` appears in `Ready::reads_dropped` instead.
    pub fn read_index(&mut self, now: palisade_clock::Now, ctx: u64) -> Result<(), ProposeError> {
        self.observe(now);
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader { leader: self.leader });
        }
        if !self.committed_in_term() {
            return Err(ProposeError::NotCommittedInTerm);
        }
        if self.reads.len() >= READS_PENDING_MAX {
            return Err(ProposeError::ReadsPendingTooMany { max: READS_PENDING_MAX });
        }
        let own = self.members.current.contains(self.cfg.id).then_some(self.cfg.id);
        let round = self.reads.push(ctx, self.log.committed(), own);
        let peers: Vec<NodeId> = self.tracker.keys().copied().collect();
        for peer in peers {
            self.send_heartbeat(peer, round);
        }
        self.release_reads();
        Ok(())
    }

    /// Moves confirmed reads to the output.
    pub(crate) fn release_reads(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let voters = &self.members.current.voters;
        let confirmed = self.reads.take_confirmed(|acks| has_quorum(voters, |v| acks.contains(&v)));
        self.out.read_states.extend(confirmed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_confirms_reads_up_to_its_round_only() {
        let mut q = ReadQueue::default();
        let voters: BTreeSet<NodeId> = [1, 2, 3].into();
        let quorum = |acks: &BTreeSet<NodeId>| has_quorum(&voters, |v| acks.contains(&v));
        let r1 = q.push(10, 5, Some(1));
        let r2 = q.push(11, 6, Some(1));
        q.ack(2, r1);
        assert_eq!(q.take_confirmed(quorum), vec![ReadState { ctx: 10, index: 5 }]);
        assert_eq!(q.len(), 1, "round 1's answer does not confirm the read of round 2");
        q.ack(3, r2);
        assert_eq!(q.take_confirmed(quorum), vec![ReadState { ctx: 11, index: 6 }]);
        assert_eq!(q.last_round(), 0);
    }
}
