//! Leadership transfer (Raft thesis §3.10), used to drain a node before a planned restart.
//!
//! Why: stopping a leader costs the cluster an election timeout of unavailability; handing
//! leadership over first costs about one round trip. The leader stops accepting proposals (so
//! the target can catch up), replicates to the target until its log matches, then sends
//! TimeoutNow. The target campaigns at once, without PreVote, and its vote requests carry the
//! `transfer` flag so that voters do not refuse them for having heard from the leader recently.
//! If the transfer does not finish within an election timeout, the leader gives up and accepts
//! proposals again.

use crate::election::Campaign;
use crate::error::ProposeError;
use crate::message::Message;
use crate::node::{RaftNode, Role};
use crate::timer::Timer;
use crate::types::NodeId;

/// A leadership transfer in progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Transfer {
    /// The node that should become leader.
    pub target: NodeId,
}

impl RaftNode {
    /// Hands leadership to voter `to` (leader only): catches it up, then sends TimeoutNow.
    /// Proposals are refused until the transfer ends; it is abandoned after an election
    /// timeout. Asking again for the same target is a no-op.
    pub fn transfer_leadership(
        &mut self,
        now: palisade_clock::Now,
        to: NodeId,
    ) -> Result<(), ProposeError> {
        self.observe(now);
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader { leader: self.leader });
        }
        if to == self.cfg.id || !self.tracker.contains_key(&to) {
            return Err(ProposeError::InvalidTransferTarget { target: to });
        }
        if let Some(transfer) = &self.transfer {
            if transfer.target == to {
                return Ok(());
            }
            return Err(ProposeError::TransferInProgress { target: transfer.target });
        }
        self.transfer = Some(Transfer { target: to });
        let deadline = self.now.mono + self.election().timeout_max();
        self.timers.set(Timer::TransferAbort, deadline);
        if !self.maybe_send_timeout_now() {
            self.send_append(to, true);
        }
        Ok(())
    }

    /// The transfer target, if a transfer is in progress.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.as_ref().map(|t| t.target)
    }

    /// Sends TimeoutNow if the target's log matches the leader's; returns whether it did.
    pub(crate) fn maybe_send_timeout_now(&mut self) -> bool {
        let Some(target) = self.transfer_target() else { return false };
        let caught_up =
            self.tracker.get(&target).is_some_and(|p| p.match_index == self.log.last_index());
        if caught_up {
            self.send(target, Message::TimeoutNow { term: self.term });
        }
        caught_up
    }

    /// The transfer took too long: accept proposals again.
    pub(crate) fn abort_transfer(&mut self) {
        self.transfer = None;
    }

    /// The leader asks this node to campaign now.
    pub(crate) fn handle_timeout_now(&mut self, from: NodeId) {
        if self.role != Role::Follower || self.leader != Some(from) {
            return;
        }
        self.start_election(Campaign::Transfer);
    }
}
