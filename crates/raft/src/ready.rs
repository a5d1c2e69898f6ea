//! The output batch ([`Ready`], etcd's name) and the persistence handshake.
//!
//! Why a batch with a rule: Raft's promises are about durable state. A vote must be on disk
//! before the candidate hears about it, or a crash and restart could let this node vote twice in
//! one term; an acknowledged entry must be on disk before the leader counts it, or a committed
//! entry could vanish with a crash of the majority that "stored" it. So outputs come out
//! together with the state they depend on, and the driver follows one order:
//!
//! 1. persist `snapshot`, then `entries`, then `hard_state`, and make them durable (fsync);
//! 2. only then send `messages`;
//! 3. restore the state machine from `snapshot` (if any), then apply `committed` in order
//!    (they are always durable already), and serve `read_states` once applied;
//! 4. call [`RaftNode::handle_persisted`] with the token (required when
//!    [`Ready::needs_persist`]; a no-op otherwise).
//!
//! Until step 4, `has_ready()` is false and `ready()` must not be called: one batch is in
//! flight at a time, so the order of disk writes is the order of batches.

use palisade_clock::{MonoInstant, Now};
use serde::{Deserialize, Serialize};

use crate::config::COMMITTED_BYTES_PER_READY_MAX;
use crate::message::Message;
use crate::node::{RaftNode, Role};
use crate::read_index::ReadState;
use crate::types::{Entry, HardState, LogIndex, NodeId, Snapshot, Term};

/// The role, term and leader of a node, reported when any of them changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleChange {
    /// The new role.
    pub role: Role,
    /// The current term.
    pub term: Term,
    /// The leader known in this term.
    pub leader: Option<NodeId>,
}

/// Identifies a [`Ready`] for [`RaftNode::handle_persisted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadyToken {
    seq: u64,
}

/// One batch of outputs. **Persist `snapshot`, `entries` and `hard_state` (and make them
/// durable) before sending `messages`**: the messages may announce a vote or acknowledge
/// entries that must survive a crash. See the module documentation for the full order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ready {
    /// The term, vote and commit index to persist, if they changed.
    pub hard_state: Option<HardState>,
    /// Entries to append to the log on disk. An entry at index `i` not past the last stored
    /// index replaces the stored suffix from `i`.
    pub entries: Vec<Entry>,
    /// A snapshot received from the leader: persist it (it replaces the whole log on disk),
    /// then restore the state machine from it.
    pub snapshot: Option<Snapshot>,
    /// Messages to send, **only after the above are durable**.
    pub messages: Vec<(NodeId, Message)>,
    /// Committed entries to apply, in order. They are always durable already.
    pub committed: Vec<Entry>,
    /// Confirmed linearizable reads: serve each once the state machine applied its `index`.
    pub read_states: Vec<ReadState>,
    /// Contexts of reads abandoned because this node lost the leadership: retry elsewhere.
    pub reads_dropped: Vec<u64>,
    /// The role, term or leader changed since the last batch.
    pub role_change: Option<RoleChange>,
    /// [`RaftNode::poll_timeout`] when the batch was taken.
    pub next_timeout: Option<MonoInstant>,
    /// Set when the batch needs persisting; see [`Ready::token`].
    pub token: Option<ReadyToken>,
}

impl Ready {
    /// The token to pass to [`RaftNode::handle_persisted`].
    pub fn token(&self) -> ReadyToken {
        self.token.unwrap_or(ReadyToken { seq: 0 })
    }

    /// Whether something must be persisted (and `handle_persisted` called).
    pub fn needs_persist(&self) -> bool {
        self.hard_state.is_some() || !self.entries.is_empty() || self.snapshot.is_some()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        !self.needs_persist()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.read_states.is_empty()
            && self.reads_dropped.is_empty()
            && self.role_change.is_none()
    }
}

/// What a `Ready` handed out that is not durable yet.
#[derive(Clone, Debug)]
struct InFlight {
    seq: u64,
    hard_state: Option<HardState>,
    snapshot_index: Option<LogIndex>,
}

/// Outputs accumulated between two batches.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub messages: Vec<(NodeId, Message)>,
    pub read_states: Vec<ReadState>,
    pub reads_dropped: Vec<u64>,
    /// A received snapshot to hand out.
    pub snapshot: Option<Snapshot>,
    /// New entries to send to followers at the next batch.
    pub broadcast_pending: bool,
    handed_hard_state: HardState,
    persisted_hard_state: HardState,
    reported: (Role, Term, Option<NodeId>),
    in_flight: Option<InFlight>,
    seq: u64,
}

impl Outbox {
    /// An empty outbox for a node recovered with `hard_state` in the state `reported`.
    pub fn new(hard_state: HardState, reported: (Role, Term, Option<NodeId>)) -> Outbox {
        Outbox {
            messages: Vec::new(),
            read_states: Vec::new(),
            reads_dropped: Vec::new(),
            snapshot: None,
            broadcast_pending: false,
            handed_hard_state: hard_state,
            persisted_hard_state: hard_state,
            reported,
            in_flight: None,
            seq: 0,
        }
    }
}

impl RaftNode {
    /// Whether [`RaftNode::ready`] has something to hand out. False while a batch that needs
    /// persisting waits for [`RaftNode::handle_persisted`].
    pub fn has_ready(&self) -> bool {
        if self.out.in_flight.is_some() {
            return false;
        }
        let out = &self.out;
        out.broadcast_pending && self.role == Role::Leader
            || self.hard_state() != out.handed_hard_state
            || self.log.last_index() >= self.log_unstable_from()
            || out.snapshot.is_some()
            || !out.messages.is_empty()
            || self.log.has_committed_to_apply()
            || !out.read_states.is_empty()
            || !out.reads_dropped.is_empty()
            || (self.role, self.term, self.leader) != out.reported
    }

    /// Takes the pending batch.
    ///
    /// # Panics
    ///
    /// If a previous batch that needed persisting has not been acknowledged with
    /// [`RaftNode::handle_persisted`] (a driver bug: `has_ready()` was false).
    pub fn ready(&mut self) -> Ready {
        assert!(self.out.in_flight.is_none(), "ready() called before handle_persisted()");
        self.flush_broadcast();
        let hard_state = self.hard_state();
        let hard_state_changed = (hard_state != self.out.handed_hard_state).then_some(hard_state);
        self.out.handed_hard_state = hard_state;
        let entries = self.log.take_unstable();
        let snapshot = self.out.snapshot.take();
        let committed = self.log.take_committed(COMMITTED_BYTES_PER_READY_MAX);
        let current = (self.role, self.term, self.leader);
        let role_change = (current != self.out.reported).then_some(RoleChange {
            role: current.0,
            term: current.1,
            leader: current.2,
        });
        self.out.reported = current;
        let mut ready = Ready {
            hard_state: hard_state_changed,
            entries,
            snapshot,
            messages: std::mem::take(&mut self.out.messages),
            committed,
            read_states: std::mem::take(&mut self.out.read_states),
            reads_dropped: std::mem::take(&mut self.out.reads_dropped),
            role_change,
            next_timeout: self.poll_timeout(),
            token: None,
        };
        if ready.needs_persist() {
            self.out.seq += 1;
            ready.token = Some(ReadyToken { seq: self.out.seq });
            self.out.in_flight = Some(InFlight {
                seq: self.out.seq,
                hard_state: ready.hard_state,
                snapshot_index: ready.snapshot.as_ref().map(|s| s.meta.index),
            });
        }
        ready
    }

    /// The driver made the batch identified by `token` durable. Unknown tokens are ignored.
    ///
    /// # Panics
    ///
    /// If the persisted term, vote or commit index would go backwards (a bug).
    pub fn handle_persisted(&mut self, now: Now, token: ReadyToken) {
        self.observe(now);
        let Some(in_flight) = self.out.in_flight.take_if(|f| f.seq == token.seq) else {
            return;
        };
        if let Some(hs) = in_flight.hard_state {
            let old = self.out.persisted_hard_state;
            assert!(hs.term >= old.term, "persisted term must never decrease");
            if hs.term == old.term && old.vote.is_some() {
                assert!(hs.vote == old.vote, "persisted vote must never change within a term");
            }
            assert!(hs.commit >= old.commit, "persisted commit must never decrease");
            self.out.persisted_hard_state = hs;
        }
        if let Some(index) = in_flight.snapshot_index {
            assert!(self.log.snapshot_index() >= index, "a persisted snapshot stays in effect");
        }
        self.log.persisted();
        if self.maybe_commit() {
            self.after_commit();
        }
    }

    fn log_unstable_from(&self) -> LogIndex {
        self.log.unstable_from()
    }
}

#[cfg(test)]
mod tests {
    use palisade_clock::{MonoInstant, Now, WallTime};

    use crate::config::Config;
    use crate::message::{Message, VoteRequest};
    use crate::node::{RaftNode, Recovered};
    use crate::types::{HardState, Membership};

    fn now() -> Now {
        Now::new(MonoInstant::from_nanos(10), WallTime::from_nanos(10))
    }

    fn follower() -> RaftNode {
        let recovered = Recovered::bootstrap(Membership::new([1, 2, 3]));
        RaftNode::new(Config::default_for(1), recovered, now(), 3).expect("valid")
    }

    fn vote_request(term: u64) -> Message {
        Message::RequestVote(VoteRequest {
            term,
            last_log_index: 0,
            last_log_term: 0,
            transfer: false,
        })
    }

    #[test]
    fn a_vote_leaves_only_with_the_hard_state_that_records_it() {
        let mut node = follower();
        node.handle_message(now(), 2, vote_request(4));
        assert!(node.has_ready());
        let ready = node.ready();
        assert_eq!(ready.hard_state, Some(HardState { term: 4, vote: Some(2), commit: 0 }));
        assert!(
            matches!(ready.messages[..], [(2, Message::RequestVoteResponse(ref r))] if r.granted)
        );
        assert!(ready.needs_persist());
        node.handle_message(now(), 3, vote_request(5));
        assert!(!node.has_ready(), "nothing comes out before the batch is durable");
        node.handle_persisted(now(), crate::ready::ReadyToken { seq: 99 });
        assert!(!node.has_ready(), "an unknown token is ignored");
        node.handle_persisted(now(), ready.token());
        let next = node.ready();
        assert_eq!(next.hard_state, Some(HardState { term: 5, vote: Some(3), commit: 0 }));
    }

    #[test]
    #[should_panic(expected = "ready() called before handle_persisted()")]
    fn taking_a_second_batch_before_persisting_the_first_is_a_driver_bug() {
        let mut node = follower();
        node.handle_message(now(), 2, vote_request(4));
        let _ = node.ready();
        let _ = node.ready();
    }

    #[test]
    fn a_batch_without_anything_to_persist_needs_no_acknowledgement() {
        let mut node = follower();
        node.handle_timeout(now());
        let ready = node.ready();
        assert!(!ready.needs_persist());
        assert_eq!(ready.messages.len(), 2, "time probes to both peers");
        assert!(!node.has_ready());
        node.handle_timeout(Now::new(
            MonoInstant::from_nanos(2_000_000_000),
            WallTime::from_nanos(2),
        ));
        assert!(node.has_ready(), "next probes (and the election) come out without a handshake");
    }
}
