//! [`RaftNode`]: the state of one Raft node and the entry points a driver calls.
//!
//! The node is a pure state machine. Inputs are method calls that carry the current time
//! (`handle_message`, `handle_timeout`, `propose`, `read_index`, `handle_persisted`, ...);
//! outputs accumulate in a batch the driver takes with [`RaftNode::ready`]. Nothing here reads a
//! clock, touches a file or a socket, or draws randomness other than from the `ChaCha8Rng`
//! seeded by the `u64` given to [`RaftNode::new`]: the same inputs give the same outputs, byte
//! for byte, which is what lets the simulator replay a failure from its seed.
//!
//! This file holds the struct, construction and message dispatch, including the term rules
//! every message passes first (Raft §5.1: a higher term makes a node a follower; a lower term
//! is answered so the stale sender learns the current term). The protocol itself lives in the
//! sibling modules: `election`, `replication`, `read_index`, `transfer`, `snapshot`,
//! `membership`, `clock_offset`, `ready`, `status`.

use std::time::Duration;

use palisade_clock::{MonoInstant, Now, duration_nanos};
use palisade_detector::PhiAccrual;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::clock_offset::ClockProbes;
use crate::config::{Config, ElectionConfig};
use crate::election::{LeaderWatch, VoteTally};
use crate::error::RaftError;
use crate::log::RaftLog;
use crate::membership::MembershipState;
use crate::message::{AppendEntriesResponse, AppendResult, Message, MessageLimits, VoteResponse};
use crate::peer_map::PeerMap;
use crate::progress::Progress;
use crate::read_index::ReadQueue;
use crate::ready::Outbox;
use crate::snapshot::IncomingSnapshot;
use crate::timer::{Timer, Timers};
use crate::transfer::Transfer;
use crate::types::{Entry, HardState, Membership, NodeId, Snapshot, Term};

/// The role of a node in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Runs a PreVote round: asks whether it could win, without changing its term.
    PreCandidate,
    /// Campaigns for votes in its term.
    Candidate,
    /// Leads its term.
    Leader,
}

/// What a node starts from: the durable state the storage recovered, or a fresh bootstrap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The persisted term, vote and commit index.
    pub hard_state: HardState,
    /// The latest persisted snapshot; the application restores its state machine from it.
    pub snapshot: Option<Snapshot>,
    /// The persisted entries (entries at or below the snapshot's index are ignored).
    pub entries: Vec<Entry>,
    /// The membership to use when neither the log nor the snapshot has one: the founding
    /// members for a new cluster; empty for a node that joins an existing cluster (it learns
    /// the membership from the leader and never campaigns before).
    pub initial_membership: Membership,
}

/// Alias of [`Recovered`] for a node that starts with nothing on disk.
pub type Bootstrap = Recovered;

impl Recovered {
    /// A node with an empty disk that founds (or joins, with an empty membership) a cluster.
    pub fn bootstrap(initial_membership: Membership) -> Recovered {
        Recovered { initial_membership, ..Recovered::default() }
    }
}

/// One Raft node.
///
/// Driver contract (see also the crate documentation and [`crate::ready`]):
///
/// 1. [`RaftNode::new`] from what the storage recovered (restore the application from
///    `recovered.snapshot` first).
/// 2. Feed inputs as they happen, each with the current time: [`RaftNode::handle_message`],
///    [`RaftNode::handle_timeout`] (whenever `now >= poll_timeout()`; spurious calls are
///    no-ops), and requests ([`RaftNode::propose`], [`RaftNode::read_index`],
///    [`RaftNode::propose_membership`], [`RaftNode::transfer_leadership`]). Inputs may keep
///    coming while a batch is being persisted.
/// 3. While [`RaftNode::has_ready`]: take [`RaftNode::ready`]; persist its snapshot, entries
///    and hard state durably; **then** send its messages; restore/apply its snapshot and
///    committed entries; serve its read states; call [`RaftNode::handle_persisted`] with its
///    token.
/// 4. Sleep until [`RaftNode::poll_timeout`] or the next input.
/// 5. From time to time, after persisting an application snapshot at an applied index,
///    call [`RaftNode::compact`].
#[derive(Debug)]
pub struct RaftNode {
    pub(crate) cfg: Config,
    pub(crate) rng: ChaCha8Rng,
    /// The latest time seen in an input; `mono` never goes back.
    pub(crate) now: Now,
    pub(crate) term: Term,
    pub(crate) vote: Option<NodeId>,
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) log: RaftLog,
    pub(crate) members: MembershipState,
    pub(crate) votes: VoteTally,
    /// Leader only: progress of every other voter.
    pub(crate) tracker: PeerMap<Progress>,
    pub(crate) reads: ReadQueue,
    pub(crate) transfer: Option<Transfer>,
    pub(crate) watch: LeaderWatch,
    pub(crate) timers: Timers,
    /// The latest snapshot this node holds (taken by `compact` or received), sent to laggards.
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) incoming: Option<IncomingSnapshot>,
    pub(crate) clocks: ClockProbes,
    /// A phi detector per peer fed by every message from it (for `Status` only).
    pub(crate) peer_detectors: PeerMap<PhiAccrual>,
    pub(crate) out: Outbox,
    pub(crate) messages_rejected: u64,
}

impl RaftNode {
    /// A node starting from `recovered` at time `now`, drawing randomness from `rng_seed` only.
    pub fn new(
        config: Config,
        recovered: Recovered,
        now: Now,
        rng_seed: u64,
    ) -> Result<RaftNode, RaftError> {
        config.validate()?;
        let Recovered { hard_state, snapshot, entries, initial_membership } = recovered;
        check_recovered(&hard_state, snapshot.as_ref())?;
        let meta = snapshot.as_ref().map(|s| &s.meta);
        let log = RaftLog::recover(meta, entries, hard_state.commit)
            .map_err(|reason| RaftError::InvalidRecovered { reason })?;
        if log.snapshot_index() == 0 && log.first_index() > 1 {
            return Err(RaftError::InvalidRecovered { reason: "log starts after 1".into() });
        }
        let snapshot_membership = snapshot.as_ref().map(|s| s.meta.membership.clone());
        let members = MembershipState::recover(&log, snapshot_membership, initial_membership);
        // Every entry of term T was accepted while this node's term was at least T; a lost
        // hard-state write is repaired by adopting that term with no vote (no vote in it
        // was ever sent, because votes are sent only after they are durable).
        let (term, vote) = if log.last_term() > hard_state.term {
            (log.last_term(), None)
        } else {
            (hard_state.term, hard_state.vote)
        };
        let watch = LeaderWatch::new(&config.election)?;
        let mut node = RaftNode {
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            now,
            term,
            vote,
            role: Role::Follower,
            leader: None,
            log,
            members,
            votes: VoteTally::default(),
            tracker: PeerMap::new(),
            reads: ReadQueue::default(),
            transfer: None,
            watch,
            timers: Timers::default(),
            snapshot,
            incoming: None,
            clocks: ClockProbes::new(&config),
            peer_detectors: PeerMap::new(),
            out: Outbox::new(hard_state, (Role::Follower, term, None)),
            messages_rejected: 0,
            cfg: config,
        };
        node.reset_election_timer();
        node.timers.set(Timer::TimeProbe, now.mono);
        Ok(node)
    }

    /// Handles a message `msg` from peer `from` that arrived at `now`. Malformed messages are
    /// counted in `Status::messages_rejected` and dropped.
    ///
    /// # Panics
    ///
    /// Only if a safety invariant breaks (two leaders in one term, a committed entry being
    /// replaced): a bug here or a peer that is not a correct Raft node. Never for bad input.
    pub fn handle_message(&mut self, now: Now, from: NodeId, msg: Message) {
        self.observe(now);
        if from == 0 || from == self.cfg.id || msg.validate(&self.limits()).is_err() {
            self.messages_rejected += 1;
            return;
        }
        self.note_peer_message(from);
        let term = match msg {
            Message::TimePing(ping) => return self.handle_time_ping(from, ping),
            Message::TimePong(pong) => return self.handle_time_pong(from, pong),
            ref raft => raft.term().expect("every Raft message carries a term"),
        };
        if !self.step_term(from, &msg, term) {
            return;
        }
        match msg {
            Message::PreVote(r) => self.handle_vote_request(from, r, true),
            Message::RequestVote(r) => self.handle_vote_request(from, r, false),
            Message::PreVoteResponse(r) => self.handle_vote_response(from, r, true),
            Message::RequestVoteResponse(r) => self.handle_vote_response(from, r, false),
            Message::AppendEntries(m) => self.handle_append(from, m),
            Message::AppendEntriesResponse(m) => self.handle_append_response(from, m),
            Message::InstallSnapshot(m) => self.handle_snapshot_chunk(from, *m),
            Message::InstallSnapshotResponse(m) => self.handle_snapshot_response(from, m),
            Message::TimeoutNow { .. } => self.handle_timeout_now(from),
            Message::TimePing(_) | Message::TimePong(_) => unreachable!("handled above"),
        }
    }

    /// Fires every timer due at `now`. Calls with nothing due are no-ops.
    pub fn handle_timeout(&mut self, now: Now) {
        self.observe(now);
        for timer in Timer::ALL {
            if self.timers.take_due(timer, self.now.mono) {
                match timer {
                    Timer::TimeProbe => self.probe_clocks(),
                    Timer::CheckQuorum => self.check_quorum_tick(),
                    Timer::TransferAbort => self.abort_transfer(),
                    Timer::Heartbeat => self.heartbeat_tick(),
                    Timer::Election => self.election_tick(),
                }
            }
        }
    }

    /// The next instant at which [`RaftNode::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<MonoInstant> {
        self.timers.next()
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.cfg.id
    }

    /// This node's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// This node's current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// The leader this node knows of in its current term.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The latest snapshot this node holds (its own or one it received).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// Applies the term rules; returns whether the message should be handled further.
    fn step_term(&mut self, from: NodeId, msg: &Message, term: Term) -> bool {
        if term > self.term {
            match msg {
                Message::PreVote(r) | Message::RequestVote(r) => {
                    let pre = matches!(msg, Message::PreVote(_));
                    if self.is_sticky(pre, r.transfer) {
                        if pre {
                            self.send_vote_response(from, true, self.term, false);
                        }
                        return false;
                    }
                    if !pre {
                        // Raft figure 2: only hearing from the leader or granting a vote
                        // resets the election timer. A candidate whose log is behind (its
                        // vote is refused below) must not keep postponing this node's own
                        // campaign: without PreVote it could do so round after round.
                        // `handle_vote_request` resets the timer if the vote is granted.
                        let deadline = self.timers.deadline(Timer::Election);
                        self.become_follower(term, None);
                        if let Some(deadline) = deadline {
                            self.timers.set(Timer::Election, deadline);
                        }
                    }
                }
                // A granted PreVote carries the term this node asked for, not a newer one.
                Message::PreVoteResponse(r) if r.granted => {}
                Message::AppendEntries(_)
                | Message::InstallSnapshot(_)
                | Message::TimeoutNow { .. } => self.become_follower(term, Some(from)),
                _ => self.become_follower(term, None),
            }
            return true;
        }
        if term < self.term {
            self.answer_stale(from, msg);
            return false;
        }
        true
    }

    /// Tells the sender of a message from an older term about the current term.
    fn answer_stale(&mut self, from: NodeId, msg: &Message) {
        match msg {
            Message::AppendEntries(_) | Message::InstallSnapshot(_) => {
                let result = AppendResult::Reject { rejected: 0, hint_index: 0, hint_term: 0 };
                let reply = AppendEntriesResponse { term: self.term, result, read_round: 0 };
                self.send(from, Message::AppendEntriesResponse(reply));
            }
            Message::PreVote(_) => self.send_vote_response(from, true, self.term, false),
            Message::RequestVote(_) => self.send_vote_response(from, false, self.term, false),
            _ => {}
        }
    }

    pub(crate) fn send_vote_response(&mut self, to: NodeId, pre: bool, term: Term, granted: bool) {
        let response = VoteResponse { term, granted };
        let msg = if pre {
            Message::PreVoteResponse(response)
        } else {
            Message::RequestVoteResponse(response)
        };
        self.send(to, msg);
    }

    /// Moves the time forward (never back) and returns it.
    pub(crate) fn observe(&mut self, now: Now) -> Now {
        let mono = self.now.mono.max(now.mono);
        self.now = Now { mono, wall: now.wall };
        self.now
    }

    /// Queues a message for the next `Ready`.
    pub(crate) fn send(&mut self, to: NodeId, msg: Message) {
        assert!(to != self.cfg.id, "a node never sends to itself");
        self.out.messages.push((to, msg));
    }

    /// Adopts a newer term, forgetting the vote. Term never decreases.
    pub(crate) fn set_term(&mut self, term: Term) {
        assert!(term > self.term, "term must never decrease");
        self.term = term;
        self.vote = None;
    }

    /// Becomes a follower of `leader` (if known) in `term` (>= the current term).
    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.set_term(term);
        }
        assert!(term == self.term, "a node follows only in its current term");
        if self.role == Role::Leader {
            self.tracker.clear();
            self.out.reads_dropped.extend(self.reads.drain().map(|r| r.ctx));
            self.transfer = None;
            self.timers.stop(Timer::Heartbeat);
            self.timers.stop(Timer::CheckQuorum);
            self.timers.stop(Timer::TransferAbort);
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.reset_election_timer();
    }

    /// The voters other than this node, in id order.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.members.current.voters.iter().copied().filter(|&v| v != self.cfg.id).collect()
    }

    /// Limits received messages are checked against.
    pub(crate) fn limits(&self) -> MessageLimits {
        MessageLimits {
            entries_per_message_max: self.cfg.entries_per_message_max,
            bytes_per_message_max: self.cfg.bytes_per_message_max,
        }
    }

    /// The election configuration.
    pub(crate) fn election(&self) -> ElectionConfig {
        self.cfg.election
    }

    /// A duration drawn uniformly from `[lo, hi)` (`lo` if the range is empty).
    pub(crate) fn random_duration(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (duration_nanos(lo), duration_nanos(hi));
        if hi <= lo {
            return Duration::from_nanos(lo);
        }
        Duration::from_nanos(self.rng.random_range(lo..hi))
    }

    /// Whether the invariants about *other* nodes' behaviour are enforced by assertion. They
    /// are relaxed when a testing fault is configured, so that a test observes the broken
    /// property through its checker instead of a panic.
    pub(crate) fn strict(&self) -> bool {
        self.cfg.testing_fault.is_none()
    }

    /// The hard state as it is in memory.
    pub(crate) fn hard_state(&self) -> HardState {
        HardState { term: self.term, vote: self.vote, commit: self.log.committed() }
    }
}

fn check_recovered(hs: &HardState, snapshot: Option<&Snapshot>) -> Result<(), RaftError> {
    let invalid = |reason: &str| Err(RaftError::InvalidRecovered { reason: reason.into() });
    if hs.vote == Some(0) {
        return invalid("vote for node 0");
    }
    if hs.term == 0 && hs.vote.is_some() {
        return invalid("vote in term 0");
    }
    if let Some(s) = snapshot {
        if s.meta.index == 0 {
            return invalid("snapshot at index 0");
        }
        if s.meta.membership.voters.contains(&0) {
            return invalid("snapshot membership names node 0");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use palisade_clock::{MonoInstant, Now, WallTime};

    use super::*;
    use crate::types::Payload;

    fn at(ms: u64) -> Now {
        Now::new(MonoInstant::from_nanos(ms * 1_000_000), WallTime::from_nanos(ms * 1_000_000))
    }

    fn entry(term: Term, index: u64) -> Entry {
        Entry { term, index, payload: Payload::Noop }
    }

    #[test]
    fn inconsistent_recovered_state_is_refused() {
        let members = Membership::new([1, 2, 3]);
        let bad_vote = Recovered {
            hard_state: HardState { term: 1, vote: Some(0), commit: 0 },
            initial_membership: members.clone(),
            ..Recovered::default()
        };
        let new = |r| RaftNode::new(Config::default_for(1), r, at(0), 1);
        assert!(matches!(new(bad_vote), Err(RaftError::InvalidRecovered { .. })));
        let gap = Recovered {
            entries: vec![entry(1, 1), entry(1, 3)],
            initial_membership: members.clone(),
            ..Recovered::default()
        };
        assert!(matches!(new(gap), Err(RaftError::InvalidRecovered { .. })));
        let lost_term = Recovered {
            hard_state: HardState { term: 1, vote: Some(2), commit: 0 },
            entries: vec![entry(1, 1), entry(3, 2)],
            initial_membership: members,
            ..Recovered::default()
        };
        let node = new(lost_term).expect("a lost hard-state write is repaired");
        assert_eq!((node.term(), node.status().vote), (3, None));
    }

    #[test]
    fn malformed_messages_are_counted_and_dropped() {
        let recovered = Recovered::bootstrap(Membership::new([1, 2, 3]));
        let mut node = RaftNode::new(Config::default_for(1), recovered, at(0), 1).expect("ok");
        node.handle_message(at(1), 0, Message::TimeoutNow { term: 1 });
        node.handle_message(at(1), 1, Message::TimeoutNow { term: 1 });
        node.handle_message(at(1), 2, Message::TimeoutNow { term: 0 });
        assert_eq!(node.status().messages_rejected, 3);
        assert_eq!(node.term(), 0, "nothing was acted upon");
    }

    #[test]
    fn a_single_node_elects_itself_and_commits_after_persisting() {
        let recovered = Recovered::bootstrap(Membership::new([1]));
        let mut node = RaftNode::new(Config::default_for(1), recovered, at(0), 1).expect("ok");
        let mut now = at(0);
        for _ in 0..3 {
            let deadline = node.poll_timeout().expect("timers run");
            now = Now::new(deadline, WallTime::from_nanos(deadline.as_nanos()));
            node.handle_timeout(now);
        }
        assert_eq!(node.role(), Role::Leader);
        let (index, term) = node.propose(now, b"x".to_vec()).expect("leader accepts");
        let ready = node.ready();
        assert_eq!(ready.entries.len(), 2, "the no-op and the command");
        assert!(ready.committed.is_empty(), "nothing commits before it is durable");
        node.handle_persisted(now, ready.token());
        let ready = node.ready();
        let last = ready.committed.last().expect("committed");
        assert_eq!((last.index, last.term), (index, term));
        assert_eq!(node.read_index(now, 5), Ok(()));
        node.handle_persisted(now, ready.token());
        let ready = node.ready();
        assert_eq!(ready.read_states, vec![crate::ReadState { ctx: 5, index }]);
    }
}
