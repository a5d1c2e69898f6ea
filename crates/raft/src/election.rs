//! Leader election (Raft §5.2), PreVote (thesis §9.6), leader stickiness (thesis §4.2.3) and
//! CheckQuorum (thesis §6.2), with two ways of noticing that a leader is gone.
//!
//! Why PreVote and stickiness: a node cut off from the cluster keeps timing out; without
//! PreVote it would raise its term each time and, on rejoining, force the healthy leader to
//! step down. With PreVote it first asks whether it *could* win, without changing any term,
//! and voters that heard from a leader recently say no. CheckQuorum is the mirror image: a
//! leader that cannot hear a majority steps down, so a partitioned leader does not keep
//! serving reads or accepting proposals it can never commit.
//!
//! Why two failure detectors: the classic randomized timeout waits a fixed-range time after
//! the last heartbeat. The phi accrual detector adapts to the observed heartbeat jitter, so it
//! can suspect a crashed leader sooner on a quiet network without more false suspicions on a
//! noisy one. Both are a configuration choice (`ElectionConfig`); the simulator compares them.
//! Whatever the detector says, a node refuses to campaign while it is not a voter or while its
//! clock is known to be too far from a majority's (see `clock_offset`).

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_clock::MonoInstant;
use palisade_detector::{FailureDetector, PhiAccrual, PhiAccrualConfig};

use crate::config::{Config, ElectionConfig, TestingFault, phi_detector_default};
use crate::error::RaftError;
use crate::message::{Message, VoteRequest, VoteResponse};
use crate::node::{RaftNode, Role};
use crate::progress::{Progress, has_quorum, majority};
use crate::timer::Timer;
use crate::types::{Entry, NodeId, Payload, Term};

/// The kind of election a node starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Campaign {
    /// A PreVote round for `term + 1`.
    Pre,
    /// A real election in `term + 1`.
    Real,
    /// A real election asked for by the leader (TimeoutNow): voters skip stickiness.
    Transfer,
}

/// Outcome of counting votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    /// A majority granted.
    Won,
    /// A majority can no longer grant.
    Lost,
    /// Not decided yet.
    Pending,
}

/// The votes received in the current (pre)campaign, one per voter.
#[derive(Clone, Debug, Default)]
pub(crate) struct VoteTally {
    votes: BTreeMap<NodeId, bool>,
}

impl VoteTally {
    /// Forgets every vote.
    pub fn clear(&mut self) {
        self.votes.clear();
    }

    /// Records the first answer of `voter`; later answers of the same voter are ignored.
    pub fn record(&mut self, voter: NodeId, granted: bool) {
        self.votes.entry(voter).or_insert(granted);
    }

    /// Votes granted by members of `voters` (plus the deliberately wrong extra own vote).
    pub fn granted(&self, voters: &[NodeId], own: NodeId, fault: Option<TestingFault>) -> usize {
        let real = voters.iter().filter(|v| self.votes.get(v) == Some(&true)).count();
        let double = fault == Some(TestingFault::DoubleCountOwnVote)
            && voters.contains(&own)
            && self.votes.get(&own) == Some(&true);
        real + usize::from(double)
    }

    /// Counts the votes of `voters`.
    pub fn result(
        &self,
        voters: &[NodeId],
        own: NodeId,
        fault: Option<TestingFault>,
    ) -> VoteResult {
        let quorum = majority(voters.len());
        let granted = self.granted(voters, own, fault);
        let rejected = voters.iter().filter(|v| self.votes.get(v) == Some(&false)).count();
        if granted >= quorum {
            VoteResult::Won
        } else if voters.len() - rejected < quorum {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }
}

/// What a follower knows about its leader's liveness.
#[derive(Debug)]
pub(crate) struct LeaderWatch {
    /// The leader and term the contacts below are about.
    leader: Option<(NodeId, Term)>,
    /// Last AppendEntries / InstallSnapshot from that leader.
    last_contact: Option<MonoInstant>,
    /// Phi election only: the detector over that leader's messages.
    detector: Option<PhiAccrual>,
}

impl LeaderWatch {
    /// A watch for the configured election.
    pub fn new(election: &ElectionConfig) -> Result<LeaderWatch, RaftError> {
        let detector = match election {
            ElectionConfig::RandomizedTimeout { .. } => None,
            ElectionConfig::PhiAccrual { detector, .. } => {
                Some(PhiAccrual::new(*detector).map_err(|e| RaftError::Detector(e.to_string()))?)
            }
        };
        Ok(LeaderWatch { leader: None, last_contact: None, detector })
    }

    /// The last contact with `leader` in `term`, if that is who is watched.
    pub fn contact(&self, leader: NodeId, term: Term) -> Option<MonoInstant> {
        if self.leader == Some((leader, term)) { self.last_contact } else { None }
    }

    /// The watched leader's phi at `now` (phi election only).
    pub fn phi(&self, now: MonoInstant) -> Option<f64> {
        self.detector.as_ref().map(|d| d.phi(now))
    }
}

/// The detector configuration used for the per-peer phi shown in `Status`.
pub(crate) fn peer_detector_config(cfg: &Config) -> PhiAccrualConfig {
    match cfg.election {
        ElectionConfig::PhiAccrual { detector, .. } => detector,
        ElectionConfig::RandomizedTimeout { .. } => phi_detector_default(cfg.heartbeat_interval),
    }
}

impl RaftNode {
    /// Starts an election now, as if the election timer fired (PreVote first if configured).
    /// Returns false if this node may not campaign: it leads already, is not a voter, or its
    /// clock is too far from a majority's. Used by tests, the simulator and operators.
    pub fn campaign(&mut self, now: palisade_clock::Now) -> bool {
        self.observe(now);
        let kind = if self.cfg.pre_vote { Campaign::Pre } else { Campaign::Real };
        self.start_election(kind)
    }

    /// Whether this node may campaign at all.
    pub(crate) fn may_campaign(&self) -> bool {
        self.role != Role::Leader
            && self.members.current.contains(self.cfg.id)
            && !self.clock_unfit()
    }

    /// Starts a (pre)election; returns false if this node may not campaign.
    pub(crate) fn start_election(&mut self, kind: Campaign) -> bool {
        if !self.may_campaign() {
            return false;
        }
        let next_term = self.term + 1;
        match kind {
            Campaign::Pre => {
                self.role = Role::PreCandidate;
            }
            Campaign::Real | Campaign::Transfer => {
                self.set_term(next_term);
                self.vote = Some(self.cfg.id);
                self.role = Role::Candidate;
            }
        }
        self.leader = None;
        self.votes.clear();
        self.votes.record(self.cfg.id, true);
        self.reset_election_timer();
        let request = VoteRequest {
            term: next_term,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer: kind == Campaign::Transfer,
        };
        for peer in self.peers() {
            let msg = match kind {
                Campaign::Pre => Message::PreVote(request.clone()),
                _ => Message::RequestVote(request.clone()),
            };
            self.send(peer, msg);
        }
        self.count_votes();
        true
    }

    /// Acts on the votes counted so far.
    fn count_votes(&mut self) {
        let voters: Vec<NodeId> = self.members.current.voters.iter().copied().collect();
        match self.votes.result(&voters, self.cfg.id, self.cfg.testing_fault) {
            VoteResult::Won if self.role == Role::PreCandidate => {
                self.start_election(Campaign::Real);
            }
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    /// Whether a (pre)vote request must be refused because a leader is known to be alive.
    pub(crate) fn is_sticky(&self, pre: bool, transfer: bool) -> bool {
        !transfer && (pre || self.cfg.check_quorum) && self.leader_is_fresh()
    }

    /// Whether this node heard from its leader recently enough to refuse elections.
    pub(crate) fn leader_is_fresh(&self) -> bool {
        if self.role == Role::Leader {
            return true;
        }
        let Some(leader) = self.leader else { return false };
        let Some(last) = self.watch.contact(leader, self.term) else { return false };
        let now = self.now.mono;
        match self.election() {
            ElectionConfig::RandomizedTimeout { min, .. } => now - last < min,
            ElectionConfig::PhiAccrual { timeout_max, .. } => {
                let alive = self.watch.detector.as_ref().is_none_or(|d| d.is_available(now));
                alive && now - last < timeout_max
            }
        }
    }

    pub(crate) fn handle_vote_request(&mut self, from: NodeId, r: VoteRequest, pre: bool) {
        let log_ok = self.log.is_up_to_date(r.last_log_index, r.last_log_term);
        if pre {
            let granted = r.term > self.term && log_ok;
            let term = if granted { r.term } else { self.term };
            self.send_vote_response(from, true, term, granted);
            return;
        }
        assert!(r.term == self.term, "vote requests are handled in their term");
        let can_vote = self.vote == Some(from) || (self.vote.is_none() && self.leader.is_none());
        let granted = can_vote && log_ok;
        if granted {
            // A pre-candidate that votes for another candidate gives up its own round.
            self.become_follower(self.term, None);
            self.vote = Some(from);
        }
        self.send_vote_response(from, false, self.term, granted);
    }

    pub(crate) fn handle_vote_response(&mut self, from: NodeId, r: VoteResponse, pre: bool) {
        let (role, term) =
            if pre { (Role::PreCandidate, self.term + 1) } else { (Role::Candidate, self.term) };
        if self.role != role || (r.granted && r.term != term) {
            return;
        }
        if !self.members.current.contains(from) {
            return;
        }
        self.votes.record(from, r.granted);
        self.count_votes();
    }

    /// Election safety: becomes leader only with a majority of votes in this term.
    fn become_leader(&mut self) {
        assert!(self.role == Role::Candidate, "only a candidate becomes leader");
        assert!(self.vote == Some(self.cfg.id), "a leader voted for itself");
        let voters: Vec<NodeId> = self.members.current.voters.iter().copied().collect();
        let granted = self.votes.granted(&voters, self.cfg.id, self.cfg.testing_fault);
        assert!(granted >= majority(voters.len()), "election safety: leader without a majority");
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        self.votes.clear();
        self.timers.stop(Timer::Election);
        let next = self.log.last_index() + 1;
        self.tracker = self.peers().into_iter().map(|p| (p, Progress::new(next))).collect();
        self.reads.reset();
        self.transfer = None;
        // A no-op of the new term lets the leader commit earlier entries (§5.4.2) and learn
        // the commit index it needs for ReadIndex (thesis §6.4).
        self.log.append_as_leader(Entry { term: self.term, index: next, payload: Payload::Noop });
        let now = self.now.mono;
        self.timers.set(Timer::Heartbeat, now + self.cfg.heartbeat_interval);
        self.timers.set(Timer::CheckQuorum, now + self.election().timeout_max());
        for peer in self.peers() {
            self.send_append(peer, true);
        }
    }

    /// The election timer fired.
    pub(crate) fn election_tick(&mut self) {
        if self.role == Role::Leader {
            return;
        }
        let kind = if self.cfg.pre_vote { Campaign::Pre } else { Campaign::Real };
        if !self.start_election(kind) {
            // This node may not campaign (its clock is unfit, or it is not a voter). Look
            // again after a fresh round: re-arming from the last leader contact, as
            // `reset_election_timer` does for the phi election, would put the deadline in
            // the past once that contact is older than `timeout_max`, and the timer would
            // fire again at once, for ever.
            let (lo, hi) = self.election().round_range();
            let delay = self.random_duration(lo, hi);
            self.timers.set(Timer::Election, self.now.mono + delay);
        }
    }

    /// The CheckQuorum timer fired: a leader that did not hear from a majority during the
    /// last period (or whose clock is too far off) steps down.
    pub(crate) fn check_quorum_tick(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let own = self.cfg.id;
        let heard = has_quorum(&self.members.current.voters, |v| {
            v == own || self.tracker.get(&v).is_some_and(|p| p.recent_active)
        });
        for progress in self.tracker.values_mut() {
            progress.recent_active = false;
        }
        if (self.cfg.check_quorum && !heard) || self.clock_unfit() {
            self.become_follower(self.term, None);
            return;
        }
        self.timers.set(Timer::CheckQuorum, self.now.mono + self.election().timeout_max());
    }

    /// A valid AppendEntries or InstallSnapshot arrived from the leader of this term.
    pub(crate) fn leader_contact(&mut self, leader: NodeId) {
        let now = self.now.mono;
        let key = (leader, self.term);
        if self.watch.leader != Some(key) {
            self.watch.leader = Some(key);
            if let Some(detector) = self.watch.detector.as_mut() {
                detector.reset();
            }
        }
        self.watch.last_contact = Some(now);
        if let Some(detector) = self.watch.detector.as_mut() {
            detector.heartbeat(now);
        }
        self.reset_election_timer();
    }

    /// Sets the election timer for the current role and knowledge of the leader.
    pub(crate) fn reset_election_timer(&mut self) {
        let now = self.now.mono;
        let contact = match (self.role, self.leader) {
            (Role::Follower, Some(leader)) => self.watch.contact(leader, self.term),
            _ => None,
        };
        let deadline = match (self.election(), contact) {
            (ElectionConfig::PhiAccrual { jitter_max, timeout_max, .. }, Some(last)) => {
                // Campaign a random jitter after the detector suspects the leader, and in
                // any case `timeout_max` after the last contact.
                let fallback = last + timeout_max;
                let suspect = self.watch.detector.as_ref().and_then(|d| d.suspect_at());
                let jitter = self.random_duration(Duration::ZERO, jitter_max);
                suspect.map_or(fallback, |s| fallback.min(s + jitter))
            }
            (election, _) => {
                let (lo, hi) = election.round_range();
                now + self.random_duration(lo, hi)
            }
        };
        self.timers.set(Timer::Election, deadline);
    }

    /// Feeds the per-peer detector shown in `Status`.
    pub(crate) fn note_peer_message(&mut self, from: NodeId) {
        if !self.members.current.contains(from) {
            return;
        }
        let now = self.now.mono;
        let cfg = &self.cfg;
        let detector = self.peer_detectors.get_or_insert_with(from, || {
            PhiAccrual::new(peer_detector_config(cfg)).expect("validated detector configuration")
        });
        detector.heartbeat(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_counts_each_voter_once() {
        let mut t = VoteTally::default();
        let voters = [1, 2, 3];
        t.record(1, true);
        assert_eq!(t.result(&voters, 1, None), VoteResult::Pending);
        t.record(2, false);
        t.record(2, true);
        assert_eq!(t.result(&voters, 1, None), VoteResult::Pending, "first answer counts");
        t.record(3, false);
        assert_eq!(t.result(&voters, 1, None), VoteResult::Lost);
        t.record(9, true);
        assert_eq!(t.granted(&voters, 1, None), 1, "non-voters do not count");
    }

    fn at(ms: u64) -> palisade_clock::Now {
        let nanos = ms * 1_000_000;
        palisade_clock::Now::new(
            MonoInstant::from_nanos(nanos),
            palisade_clock::WallTime::from_nanos(nanos),
        )
    }

    fn vote(term: Term, last_log_index: u64, last_log_term: Term) -> Message {
        Message::RequestVote(VoteRequest { term, last_log_index, last_log_term, transfer: false })
    }

    /// Regression (found by `palisade sim raft`, pre-vote off: a leader took 12 s to come
    /// back with 2 of 3 nodes live): Raft figure 2 resets the election timer only on leader
    /// contact or a granted vote. A refused candidate with a higher term used to reset it, so
    /// a node whose log is behind could postpone the up-to-date node's campaign every round.
    #[test]
    fn a_refused_vote_request_does_not_postpone_the_election() {
        let recovered = crate::node::Recovered {
            hard_state: crate::types::HardState { term: 1, vote: None, commit: 0 },
            entries: vec![Entry { term: 1, index: 1, payload: Payload::Noop }],
            initial_membership: crate::types::Membership::new([1, 2, 3]),
            ..crate::node::Recovered::default()
        };
        let mut node = RaftNode::new(Config::default_for(1), recovered, at(0), 5).expect("ok");
        let deadline = node.timers.deadline(Timer::Election).expect("followers time out");
        node.handle_message(at(500), 2, vote(5, 0, 0));
        assert_eq!(node.term(), 5, "the higher term is adopted");
        assert_eq!(node.status().vote, None, "a shorter log gets no vote");
        assert_eq!(node.timers.deadline(Timer::Election), Some(deadline), "timer kept");
        node.handle_message(at(600), 3, vote(6, 1, 1));
        assert_eq!(node.status().vote, Some(3), "an up-to-date candidate gets the vote");
        let reset = node.timers.deadline(Timer::Election).expect("set");
        assert!(reset > at(600).mono + Duration::from_millis(999), "a granted vote resets it");
    }

    #[test]
    fn double_counting_fault_wins_alone_in_three() {
        let mut t = VoteTally::default();
        t.record(1, true);
        let fault = Some(TestingFault::DoubleCountOwnVote);
        assert_eq!(t.result(&[1, 2, 3], 1, fault), VoteResult::Won);
        assert_eq!(t.result(&[1, 2, 3, 4, 5], 1, fault), VoteResult::Pending);
    }
}
