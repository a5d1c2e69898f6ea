//! [`ServerCore`]: the whole palisade node as one sans-IO state machine.
//!
//! Why one object: the rules that make the lock service safe are rules about *order* across
//! the lower crates — persist before send, apply before answer, answer a proposal only if the
//! entry that applied at its index is the one it proposed, expire nothing before the leader
//! applied an entry of its own term, hand a lock to the next waiter in the step that released
//! it. Putting the wiring in one place lets it be written once, tested in the simulator under
//! every fault, and run unchanged behind the tokio server.
//!
//! # Driver contract
//!
//! ```text
//! let mut core = ServerCore::open(config, disk, initial_membership, now, seed)?;  // or refuse
//! loop {
//!     // one input at a time, each with the current time (monotonic never goes back):
//!     core.handle_peer_message(now, from, msg);
//!     core.handle_client_request(now, conn, request);
//!     core.handle_timeout(now);                 // when now >= core.poll_timeout()
//!     core.handle_conn_closed(conn);
//!     core.handle_batch(now, inputs);           // several of the above, one drive: one fsync
//!     core.transfer_leadership(now, to) / drain(now) / propose_membership(now, change);
//!     // after EVERY input, drain the outputs (already durable: send them as they come):
//!     while let Some(out) = core.poll_output() { send it (Peer) or answer it (Reply) }
//!     while let Some(ev) = core.poll_event() { log / count / check it }  // optional, bounded
//!     sleep until core.poll_timeout() or the next input;
//! }
//! ```
//!
//! Each input runs to quiescence before it returns: Raft's `ready()` batches are taken one by
//! one and handled strictly by Raft's contract — save a received snapshot, append the entries,
//! set the hard state, ONE fsync for all of it (group commit; none when only the commit index
//! moved: it is written with the next fsync); [`ServerCore::handle_batch`] feeds many inputs
//! before one drive, so they share those fsyncs too; then queue the messages; then
//! restore the snapshot, apply the committed entries (answering the clients whose proposals
//! they are, and the long polls their grants end), serve confirmed reads, fail dropped ones;
//! then `handle_persisted`. The session tracker hears of every append, apply and role change,
//! and its leader ops (expiries, lock-delay ends, checkpoints) are proposed like any command.
//! Every `snapshot_every_entries` applied entries the state machine is snapshotted, saved, and
//! the log compacted.
//!
//! A write to the WAL that fails stops the node for good ([`NodeEvent::Stopped`]): what reached
//! the disk is unknown, so it must restart and recover from what is durable.
//!
//! Submodules: `drive` (the ready loop, persistence, apply, snapshots), `requests` (client
//! requests: proposals, long polls, reads), `report` (status).

mod drive;
mod report;
mod requests;

use std::collections::VecDeque;
use std::time::Duration;

use palisade_clock::{Hlc, MonoInstant, Now};
use palisade_lock::{Command, LeaderOp, LockStateMachine, SessionTracker};
use palisade_raft::{
    LogIndex, Membership, MembershipChange, Message, NodeId, RaftNode, Role, Term,
};
use palisade_storage::{DirMeta, Disk, Wal, init_or_check_meta};

use crate::config::{EVENTS_QUEUED_MAX, NodeConfig};
use crate::earliest;
use crate::error::{AdminError, NodeError};
use crate::event::NodeEvent;
use crate::protocol::{ClientReply, ClientRequest, ConnId};
use requests::Requests;

/// Something the driver must do: send a peer message, or answer a client. Both are only ever
/// produced after what they depend on is durable.
#[derive(Clone, Debug, PartialEq)]
pub enum Output {
    /// Send `msg` to peer `to`.
    Peer {
        /// The peer.
        to: NodeId,
        /// The message.
        msg: Message,
    },
    /// Answer the client on connection `conn`.
    Reply {
        /// The connection the request came on.
        conn: ConnId,
        /// The answer.
        reply: ClientReply,
    },
}

/// One input of a batch given to [`ServerCore::handle_batch`].
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// A message from peer `from` (as [`ServerCore::handle_peer_message`]).
    PeerMessage {
        /// The peer.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// A client request on connection `conn` (as [`ServerCore::handle_client_request`]).
    ClientRequest {
        /// The connection it came on; the answer goes back to it.
        conn: ConnId,
        /// The request.
        request: ClientRequest,
    },
    /// The connection closed (as [`ServerCore::handle_conn_closed`]).
    ConnClosed {
        /// The connection.
        conn: ConnId,
    },
}

/// How far the state machine has applied the log, and the membership in force there (the
/// metadata of a snapshot taken now).
#[derive(Clone, Debug)]
struct AppliedPoint {
    index: LogIndex,
    term: Term,
    membership: Membership,
}

/// One palisade node: Raft, the WAL, the lock state machine and the session tracker. See the
/// module documentation for the driver contract.
#[derive(Debug)]
pub struct ServerCore<D: Disk> {
    config: NodeConfig,
    raft: RaftNode,
    wal: Wal<D>,
    sm: LockStateMachine,
    tracker: SessionTracker,
    hlc: Hlc,
    /// The latest time given; `mono` never goes back.
    now: Now,
    last_input: Option<MonoInstant>,
    applied: AppliedPoint,
    snapshot_index: LogIndex,
    /// Role and term as last handled by this core.
    role: Role,
    term: Term,
    /// Leader only: applied an entry of its own term.
    leader_ready: bool,
    requests: Requests,
    outputs: VecDeque<Output>,
    events: VecDeque<NodeEvent>,
    events_dropped: u64,
    stopped: Option<String>,
}

impl<D: Disk> ServerCore<D> {
    /// Opens the node on `disk`: checks that the directory belongs to this cluster and node,
    /// recovers the WAL (a corrupt WAL or snapshot is an error: the node refuses to start),
    /// restores the state machine from the snapshot, replays the committed log, and builds
    /// Raft (randomness from `seed` only) and the session tracker. `initial_membership` is
    /// the founding voters of a new cluster (empty for a node joining an existing one); it is
    /// ignored once the log or a snapshot holds a membership.
    pub fn open(
        config: NodeConfig,
        mut disk: D,
        initial_membership: Membership,
        now: Now,
        seed: u64,
    ) -> Result<ServerCore<D>, NodeError> {
        config.validate()?;
        init_or_check_meta(&mut disk, &DirMeta::new(config.cluster_id, config.id()))?;
        let (wal, recovered) = Wal::open_with(disk, config.wal)?;
        let sm = match &recovered.snapshot {
            Some(s) => LockStateMachine::restore(&s.data)
                .map_err(|source| NodeError::Snapshot { index: s.meta.index, source })?,
            None => LockStateMachine::new(config.lock.clone()),
        };
        let mut tracker = SessionTracker::new(config.lock.clone());
        if recovered.snapshot.is_some() {
            tracker.handle_restored(now, &sm);
        }
        let applied = match &recovered.snapshot {
            Some(s) => AppliedPoint {
                index: s.meta.index,
                term: s.meta.term,
                membership: s.meta.membership.clone(),
            },
            None => AppliedPoint { index: 0, term: 0, membership: initial_membership.clone() },
        };
        let opened = NodeEvent::Recovered {
            snapshot_index: applied.index,
            last_index: wal.last_index(),
            torn_tail_bytes: recovered.torn_tail_bytes,
        };
        let raft_recovered = palisade_raft::Recovered {
            hard_state: recovered.hard_state,
            snapshot: recovered.snapshot,
            entries: recovered.entries,
            initial_membership,
        };
        let raft = RaftNode::new(config.raft.clone(), raft_recovered, now, seed)?;
        let hlc = Hlc::resume(sm.last_version(), None);
        let mut core = ServerCore {
            snapshot_index: applied.index,
            requests: Requests::default(),
            role: raft.role(),
            term: raft.term(),
            raft,
            wal,
            sm,
            tracker,
            hlc,
            now,
            last_input: Some(now.mono),
            applied,
            leader_ready: false,
            outputs: VecDeque::new(),
            events: VecDeque::new(),
            events_dropped: 0,
            stopped: None,
            config,
        };
        core.emit(opened);
        // Replays the committed log now, so the state is current before the first input.
        core.drive();
        Ok(core)
    }

    /// A message from peer `from` arrived.
    pub fn handle_peer_message(&mut self, now: Now, from: NodeId, msg: Message) {
        self.input(now, |core| core.raft.handle_message(core.now, from, msg));
    }

    /// A client request arrived on connection `conn`. It is answered through
    /// [`ServerCore::poll_output`], now or later (a proposal, a long poll, a read).
    pub fn handle_client_request(&mut self, now: Now, conn: ConnId, req: ClientRequest) {
        self.input(now, |core| core.client_request(conn, req));
    }

    /// Several inputs that arrived together, all at `now`: each is handed to Raft (or the
    /// request queues) in order, and only then is the node driven to quiescence, once. So the
    /// whole batch shares Raft's `Ready` batches and their fsyncs: N client requests queued
    /// behind one disk write cost one fsync on the leader (and one per follower per append
    /// round) instead of N. The outcome is the one of feeding the inputs one by one with no
    /// time passing between them, except that nothing is persisted, sent or applied until the
    /// last one is in (a serializable read in the batch sees the state from before it).
    pub fn handle_batch(&mut self, now: Now, inputs: impl IntoIterator<Item = Input>) {
        self.input(now, |core| {
            for input in inputs {
                match input {
                    Input::PeerMessage { from, msg } => {
                        core.raft.handle_message(core.now, from, msg)
                    }
                    Input::ClientRequest { conn, request } => core.client_request(conn, request),
                    Input::ConnClosed { conn } => core.requests.forget_conn(conn),
                }
            }
        });
    }

    /// Fires whatever is due: Raft's timers, the session tracker's leader ops, long polls
    /// that reached their bound. Calls with nothing due are harmless.
    pub fn handle_timeout(&mut self, now: Now) {
        self.input(now, |core| {
            core.raft.handle_timeout(core.now);
            core.drive();
            core.tracker_tick();
            core.expire_long_polls();
        });
    }

    /// The connection `conn` closed: its pending answers are forgotten (a proposal of it still
    /// applies; nobody is told).
    pub fn handle_conn_closed(&mut self, conn: ConnId) {
        self.requests.forget_conn(conn);
    }

    /// Hands leadership to voter `to` (leader only), e.g. before a planned restart.
    pub fn transfer_leadership(&mut self, now: Now, to: NodeId) -> Result<(), AdminError> {
        self.admin(now, |core| Ok(core.raft.transfer_leadership(core.now, to)?))
    }

    /// Drains this node before a planned stop: hands leadership to the most caught-up other
    /// voter (leader only). Returns that voter.
    pub fn drain(&mut self, now: Now) -> Result<NodeId, AdminError> {
        self.admin(now, |core| {
            if core.raft.role() != Role::Leader {
                return Err(AdminError::NotLeader { leader: core.raft.leader() });
            }
            let status = core.raft.status();
            let best = status
                .peers
                .iter()
                .filter_map(|p| p.progress.map(|progress| (progress.match_index, p.id)))
                .max_by_key(|&(match_index, id)| (match_index, std::cmp::Reverse(id)));
            let (_, to) = best.ok_or(AdminError::NoPeer)?;
            core.raft.transfer_leadership(core.now, to)?;
            Ok(to)
        })
    }

    /// Proposes adding or removing one voter (leader only). Returns the entry's index and
    /// term; the change is in force once that entry is appended, durable once committed.
    pub fn propose_membership(
        &mut self,
        now: Now,
        change: MembershipChange,
    ) -> Result<(LogIndex, Term), AdminError> {
        self.admin(now, |core| Ok(core.raft.propose_membership(core.now, change)?))
    }

    /// Makes everything handed to the WAL durable, the commit index included (which batches
    /// write lazily): the last call of a graceful stop, so a restart replays all it applied.
    /// A failure stops the node, like any failed write.
    pub fn handle_shutdown(&mut self) {
        if self.stopped.is_some() || !self.wal.needs_sync() {
            return;
        }
        if let Err(e) = self.wal.sync() {
            self.stop(format!("write-ahead log failed: {e}"));
        }
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The next observation, in order.
    pub fn poll_event(&mut self) -> Option<NodeEvent> {
        self.events.pop_front()
    }

    /// When [`ServerCore::handle_timeout`] must next be called: the earliest of Raft's timers,
    /// the tracker's leader ops and the long polls' bounds. `None` once stopped.
    pub fn poll_timeout(&self) -> Option<MonoInstant> {
        if self.stopped.is_some() {
            return None;
        }
        let timers = earliest(self.raft.poll_timeout(), self.tracker.poll_timeout());
        earliest(timers, self.requests.next_deadline())
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id()
    }

    /// The configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Raft (read-only), for status and tests.
    pub fn raft(&self) -> &RaftNode {
        &self.raft
    }

    /// The lock state machine (read-only).
    pub fn state_machine(&self) -> &LockStateMachine {
        &self.sm
    }

    /// The session tracker (read-only).
    pub fn tracker(&self) -> &SessionTracker {
        &self.tracker
    }

    /// The WAL (read-only), e.g. for its stats or its disk.
    pub fn wal(&self) -> &Wal<D> {
        &self.wal
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.raft.role() == Role::Leader
    }

    /// Whether this node is a leader that applied an entry of its own term.
    pub fn is_leader_ready(&self) -> bool {
        self.is_leader() && self.leader_ready
    }

    /// The last log index applied to the state machine.
    pub fn applied_index(&self) -> LogIndex {
        self.applied.index
    }

    /// The log index this node proposed a client request at, while it waits to apply.
    pub fn pending_proposal(&self, id: palisade_lock::RequestId) -> Option<LogIndex> {
        self.requests.proposal_index(id)
    }

    /// Why the node stopped, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// The latest time this node was given.
    pub fn now(&self) -> Now {
        self.now
    }

    /// Runs one input: time, the input itself, the drive to quiescence, pause reporting.
    fn input(&mut self, now: Now, f: impl FnOnce(&mut Self)) {
        if self.stopped.is_some() {
            return;
        }
        let pauses = self.tracker.pauses_detected();
        let gap = self.observe(now);
        f(self);
        self.drive();
        if self.tracker.pauses_detected() > pauses {
            self.emit(NodeEvent::PauseDetected { gap });
        }
    }

    fn admin<T>(
        &mut self,
        now: Now,
        f: impl FnOnce(&mut Self) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        if let Some(reason) = &self.stopped {
            return Err(AdminError::Stopped(reason.clone()));
        }
        let mut result = None;
        self.input(now, |core| result = Some(f(core)));
        result.expect("the input ran")
    }

    /// Moves time forward (monotonic never back); returns the gap since the last input.
    fn observe(&mut self, now: Now) -> Duration {
        let mono = self.now.mono.max(now.mono);
        let gap = self.last_input.map_or(Duration::ZERO, |l| mono.saturating_duration_since(l));
        self.now = Now { mono, wall: now.wall };
        self.last_input = Some(mono);
        gap
    }

    /// Runs the tracker's due leader ops: proposes them (or, under the `ExpireWithoutLog`
    /// testing fault, applies expiries locally without the log).
    fn tracker_tick(&mut self) {
        if !self.tracker.may_propose() {
            return;
        }
        let ops = self.tracker.handle_timeout(self.now);
        for op in ops {
            match op {
                LeaderOp::ExpireSession { session, .. } if self.tracker.expires_without_log() => {
                    self.unlogged_expiry(session);
                }
                op => {
                    let expiring = match op {
                        LeaderOp::ExpireSession { session, .. } => Some(session),
                        _ => None,
                    };
                    let bytes = Command::Leader(op).encode().expect("leader ops are bounded");
                    // Refused (deposed, transfer, overloaded): the tracker proposes it again
                    // after `checkpoint_interval` if it is still due.
                    if let (Ok((index, term)), Some(session)) =
                        (self.raft.propose(self.now, bytes), expiring)
                    {
                        self.emit(NodeEvent::ExpiryProposed { session, index, term });
                    }
                }
            }
        }
        self.drive();
    }

    /// Queues an observation, dropping the oldest past [`EVENTS_QUEUED_MAX`].
    fn emit(&mut self, event: NodeEvent) {
        if self.events.len() == EVENTS_QUEUED_MAX {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Queues an answer to a client.
    fn reply(&mut self, conn: ConnId, reply: ClientReply) {
        self.outputs.push_back(Output::Reply { conn, reply });
    }

    /// Stops the node for good.
    fn stop(&mut self, reason: String) {
        if self.stopped.is_none() {
            self.emit(NodeEvent::Stopped { reason: reason.clone() });
            self.stopped = Some(reason);
        }
    }
}

#[cfg(test)]
mod tests;
