//! Client requests: proposals waiting for their entry, long polls, linearizable reads.
//!
//! Every request is answered exactly once, with the most a node can honestly say:
//!
//! - A mutation is proposed by the leader and remembered as `(index, term) → (conn, attempt)`.
//!   When index applies with that term, the state machine's response goes back; with another
//!   term, `Retry { ProposalDropped }` (a given index and term name one entry: ours was
//!   overwritten, and an overwritten entry never applies). If the node loses the leadership
//!   first, `Unknown`: the entry may still commit under the next leader, and the client learns
//!   which by retrying with the same request id (the state machine answers a repeat from its
//!   dedup table).
//! - A blocking acquire that applied as `Queued` with a `wait` is parked on `(session, lock)`:
//!   the `Granted` event of the entry that hands the lock over answers it in that same apply
//!   step (no timer on the way); its bound answers `StillWaiting { position }`. A
//!   `WaitGrant` read parks the same way after its ReadIndex round.
//! - Linearizable reads go through ReadIndex: registered with Raft, confirmed by a heartbeat
//!   round, served once the state machine applied the confirmed index.
//!
//! Each queue is bounded by the configuration; past it the answer is `Retry { Overloaded }`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use palisade_clock::MonoInstant;
use palisade_lock::{Command, Holder, Op, Reply, Request, RequestId, Response, SessionId};
use palisade_raft::{LogIndex, ProposeError, Role, Term};
use palisade_storage::Disk;

use super::ServerCore;
use crate::event::NodeEvent;
use crate::protocol::{
    ClientReply, ClientRequest, ConnId, ReadOp, ReadReply, ReplyResult, RequestBody, RetryReason,
};

/// Where an answer goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) struct Waiter {
    conn: ConnId,
    attempt: u64,
}

/// A blocking acquire's long poll, to start when it applies as `Queued`.
#[derive(Clone, Debug)]
struct LongPoll {
    session: SessionId,
    lock: String,
    wait: Duration,
}

/// A client mutation this node proposed.
#[derive(Clone, Debug)]
pub(super) struct Proposal {
    pub term: Term,
    pub id: RequestId,
    /// `None` once its connection closed.
    pub waiter: Option<Waiter>,
    long_poll: Option<LongPoll>,
}

/// What a parked client asked for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum ParkKind {
    /// A blocking acquire: answered with `Done(Acquired)`.
    Acquire,
    /// A `WaitGrant` read: answered with `Read(Granted)`.
    WaitGrant,
}

#[derive(Clone, Debug)]
struct Parked {
    waiter: Waiter,
    kind: ParkKind,
    session: SessionId,
    lock: String,
    deadline: MonoInstant,
}

#[derive(Clone, Debug)]
struct PendingRead {
    waiter: Option<Waiter>,
    op: ReadOp,
    wait: Option<Duration>,
}

/// Where a session stands with a lock.
enum WaitState {
    Holds(Holder),
    Waiting(u32),
    Neither,
}

/// The node's client-facing queues.
#[derive(Debug, Default)]
pub(super) struct Requests {
    proposals: BTreeMap<LogIndex, Proposal>,
    by_id: BTreeMap<RequestId, LogIndex>,
    parked: BTreeMap<u64, Parked>,
    parked_by_key: BTreeMap<(SessionId, String), BTreeSet<u64>>,
    deadlines: BTreeSet<(MonoInstant, u64)>,
    next_park: u64,
    /// Reads by ReadIndex context, from registration until served.
    reads: BTreeMap<u64, PendingRead>,
    /// Confirmed reads waiting for the apply: (index, context).
    confirmed: BTreeSet<(LogIndex, u64)>,
    next_ctx: u64,
}

impl Requests {
    pub fn proposal_index(&self, id: RequestId) -> Option<LogIndex> {
        self.by_id.get(&id).copied()
    }

    /// The term of this node's proposal at `index`, if it has one.
    pub fn proposal_term(&self, index: LogIndex) -> Option<Term> {
        self.proposals.get(&index).map(|p| p.term)
    }

    #[inline]
    pub fn next_deadline(&self) -> Option<MonoInstant> {
        self.deadlines.first().map(|&(d, _)| d)
    }

    pub fn take_proposal(&mut self, index: LogIndex) -> Option<Proposal> {
        let p = self.proposals.remove(&index)?;
        let removed = self.by_id.remove(&p.id);
        assert_eq!(removed, Some(index), "proposal tables agree");
        Some(p)
    }

    /// Removes the proposals whose term matches `orphaned`; returns their waiters.
    pub fn take_orphans(&mut self, orphaned: impl Fn(Term) -> bool) -> Vec<Waiter> {
        let indices: Vec<LogIndex> =
            self.proposals.iter().filter(|(_, p)| orphaned(p.term)).map(|(i, _)| *i).collect();
        indices.into_iter().filter_map(|i| self.take_proposal(i)?.waiter).collect()
    }

    /// Removes the proposals at or below `index` (covered by an installed snapshot).
    pub fn take_proposals_up_to(&mut self, index: LogIndex) -> Vec<Waiter> {
        let indices: Vec<LogIndex> = self.proposals.range(..=index).map(|(i, _)| *i).collect();
        indices.into_iter().filter_map(|i| self.take_proposal(i)?.waiter).collect()
    }

    fn park(&mut self, parked: Parked) {
        let id = self.next_park;
        self.next_park += 1;
        self.deadlines.insert((parked.deadline, id));
        let key = (parked.session, parked.lock.clone());
        self.parked_by_key.entry(key).or_default().insert(id);
        self.parked.insert(id, parked);
    }

    fn unpark(&mut self, id: u64) -> Option<Parked> {
        let p = self.parked.remove(&id)?;
        self.deadlines.remove(&(p.deadline, id));
        let key = (p.session, p.lock.clone());
        if let Some(ids) = self.parked_by_key.get_mut(&key) {
            ids.remove(&id);
            if ids.is_empty() {
                self.parked_by_key.remove(&key);
            }
        }
        Some(p)
    }

    fn parked_on(&self, session: SessionId, lock: &str) -> Vec<u64> {
        let key = (session, lock.to_string());
        self.parked_by_key.get(&key).map(|ids| ids.iter().copied().collect()).unwrap_or_default()
    }

    /// Forgets every answer owed to `conn`.
    pub fn forget_conn(&mut self, conn: ConnId) {
        for p in self.proposals.values_mut() {
            p.waiter = p.waiter.filter(|w| w.conn != conn);
        }
        let parked: Vec<u64> =
            self.parked.iter().filter(|(_, p)| p.waiter.conn == conn).map(|(id, _)| *id).collect();
        for id in parked {
            self.unpark(id);
        }
        for r in self.reads.values_mut() {
            r.waiter = r.waiter.filter(|w| w.conn != conn);
        }
    }

    pub fn proposals_len(&self) -> usize {
        self.proposals.len()
    }

    pub fn parked_len(&self) -> usize {
        self.parked.len()
    }

    pub fn reads_len(&self) -> usize {
        self.reads.len()
    }
}

/// The answer to a ProposeError (a refusal before anything was appended).
fn propose_refusal(e: ProposeError) -> ReplyResult {
    match e {
        ProposeError::NotLeader { leader } => ReplyResult::NotLeader { leader },
        ProposeError::TransferInProgress { .. } => {
            ReplyResult::Retry { reason: RetryReason::LeadershipTransfer }
        }
        ProposeError::Overloaded { .. } | ProposeError::ReadsPendingTooMany { .. } => {
            ReplyResult::Retry { reason: RetryReason::Overloaded }
        }
        ProposeError::NotCommittedInTerm => {
            ReplyResult::Retry { reason: RetryReason::LeaderNotReady }
        }
        e @ (ProposeError::TooLarge { .. }
        | ProposeError::MembershipChangePending { .. }
        | ProposeError::InvalidMembershipChange { .. }
        | ProposeError::InvalidTransferTarget { .. }) => ReplyResult::Invalid(e.to_string()),
    }
}

fn granted(kind: ParkKind, lock: String, holder: Holder) -> ReplyResult {
    match kind {
        ParkKind::Acquire => {
            ReplyResult::Done(Ok(Reply::Acquired { lock, holder, reentrant: false }))
        }
        ParkKind::WaitGrant => ReplyResult::Read(ReadReply::Granted { lock, holder }),
    }
}

fn not_waiting(kind: ParkKind, lock: String, session: SessionId) -> ReplyResult {
    match kind {
        // The acquire applied (queued), and the session has left the queue since: released,
        // expired, closed. The lock crate's reply for "left the queue" says exactly that.
        ParkKind::Acquire => ReplyResult::Done(Ok(Reply::Dequeued { lock })),
        ParkKind::WaitGrant => ReplyResult::Read(ReadReply::NotWaiting { lock, session }),
    }
}

impl<D: Disk> ServerCore<D> {
    /// Answers `waiter`.
    pub(super) fn answer(&mut self, waiter: Waiter, result: ReplyResult) {
        self.reply(waiter.conn, ClientReply { attempt: waiter.attempt, result });
    }

    /// Validates and dispatches one request.
    pub(super) fn client_request(&mut self, conn: ConnId, req: ClientRequest) {
        let waiter = Waiter { conn, attempt: req.attempt };
        if let Err(e) = req.validate() {
            return self.answer(waiter, ReplyResult::Invalid(e.to_string()));
        }
        let ClientRequest { id, body, wait, .. } = req;
        match body {
            RequestBody::Mutate(op) => {
                let id = id.expect("validated: a mutation has an id");
                self.mutate(waiter, Request { id, op }, wait);
            }
            RequestBody::Read(op) => self.read(waiter, op, wait),
        }
    }

    fn mutate(&mut self, waiter: Waiter, mut request: Request, wait: Option<Duration>) {
        if let Err(refused) = request.validate(self.sm.config()) {
            return self.answer(waiter, ReplyResult::Done(Err(refused)));
        }
        if self.raft.role() != Role::Leader {
            let leader = self.raft.leader();
            return self.answer(waiter, ReplyResult::NotLeader { leader });
        }
        let long_poll = match (&request.op, wait) {
            (Op::Acquire { session, lock, wait: true }, Some(wait)) => {
                Some(LongPoll { session: *session, lock: lock.clone(), wait })
            }
            _ => None,
        };
        if let Some(index) = self.requests.proposal_index(request.id) {
            // A retry of a request still in flight here: the newer attempt gets the answer.
            let p = self.requests.proposals.get_mut(&index).expect("tables agree");
            let old = p.waiter.replace(waiter);
            p.long_poll = long_poll;
            if let Some(old) = old.filter(|o| *o != waiter) {
                self.answer(old, ReplyResult::Retry { reason: RetryReason::Superseded });
            }
            return;
        }
        if self.requests.proposals_len() >= self.config.pending_requests_max {
            return self.answer(waiter, ReplyResult::Retry { reason: RetryReason::Overloaded });
        }
        if request.op.hlc_mut().is_some() {
            let stamp = self.hlc.now(self.now.wall);
            request.stamp_hlc(stamp);
        }
        let id = request.id;
        let bytes = match Command::Client(request).encode() {
            Ok(bytes) => bytes,
            Err(e) => return self.answer(waiter, ReplyResult::Invalid(e.to_string())),
        };
        match self.raft.propose(self.now, bytes) {
            Ok((index, term)) => {
                let proposal = Proposal { term, id, waiter: Some(waiter), long_poll };
                assert!(self.requests.proposals.insert(index, proposal).is_none(), "fresh index");
                self.requests.by_id.insert(id, index);
            }
            Err(e) => self.answer(waiter, propose_refusal(e)),
        }
    }

    /// Answers a proposal that applied with its own term.
    pub(super) fn finish_mutation(&mut self, proposal: Proposal, response: Response) {
        let Some(waiter) = proposal.waiter else { return };
        match (proposal.long_poll, &response) {
            (Some(lp), Ok(Reply::Queued { .. })) => {
                // A repeat gets the first execution's `Queued` even if the lock was granted
                // since: the long poll looks at the current state first.
                self.long_poll(waiter, ParkKind::Acquire, lp.session, lp.lock, lp.wait);
            }
            _ => self.answer(waiter, ReplyResult::Done(response)),
        }
    }

    fn wait_state(&self, session: SessionId, lock: &str) -> WaitState {
        if let Some(holder) = self.holder_of(session, lock) {
            return WaitState::Holds(holder);
        }
        let position = self
            .sm
            .lock_info(lock)
            .and_then(|info| info.waiters.iter().position(|w| *w == session));
        match position {
            Some(p) => WaitState::Waiting(u32::try_from(p).unwrap_or(u32::MAX)),
            None => WaitState::Neither,
        }
    }

    /// Answers at once if the session holds the lock or left its queue; parks otherwise.
    fn long_poll(
        &mut self,
        waiter: Waiter,
        kind: ParkKind,
        session: SessionId,
        lock: String,
        wait: Duration,
    ) {
        match self.wait_state(session, &lock) {
            WaitState::Holds(holder) => self.answer(waiter, granted(kind, lock, holder)),
            WaitState::Neither => self.answer(waiter, not_waiting(kind, lock, session)),
            WaitState::Waiting(position) => {
                let full = self.requests.parked_len() >= self.config.parked_waiters_max;
                if wait.is_zero() || full {
                    return self.answer(waiter, ReplyResult::StillWaiting { position });
                }
                let deadline = self.now.mono + wait;
                self.requests.park(Parked { waiter, kind, session, lock, deadline });
            }
        }
    }

    /// Answers the long polls on `(session, lock)` that the current state settles.
    pub(super) fn settle_long_polls(&mut self, session: SessionId, lock: &str) {
        for id in self.requests.parked_on(session, lock) {
            let result = match self.wait_state(session, lock) {
                WaitState::Waiting(_) => continue,
                WaitState::Holds(holder) => {
                    let kind = self.requests.parked[&id].kind;
                    granted(kind, lock.to_string(), holder)
                }
                WaitState::Neither => {
                    let kind = self.requests.parked[&id].kind;
                    not_waiting(kind, lock.to_string(), session)
                }
            };
            let parked = self.requests.unpark(id).expect("listed");
            self.answer(parked.waiter, result);
        }
    }

    /// Re-examines every long poll (after a snapshot replaced the state).
    pub(super) fn settle_all_long_polls(&mut self) {
        let keys: Vec<(SessionId, String)> = self.requests.parked_by_key.keys().cloned().collect();
        for (session, lock) in keys {
            self.settle_long_polls(session, &lock);
        }
    }

    /// Answers the long polls whose bound has passed.
    pub(super) fn expire_long_polls(&mut self) {
        while let Some(&(deadline, id)) = self.requests.deadlines.first() {
            if deadline > self.now.mono {
                break;
            }
            let p = self.requests.unpark(id).expect("a deadline belongs to a parked waiter");
            let result = match self.wait_state(p.session, &p.lock) {
                WaitState::Waiting(position) => ReplyResult::StillWaiting { position },
                WaitState::Holds(holder) => granted(p.kind, p.lock, holder),
                WaitState::Neither => not_waiting(p.kind, p.lock, p.session),
            };
            self.answer(p.waiter, result);
        }
    }

    fn read(&mut self, waiter: Waiter, op: ReadOp, wait: Option<Duration>) {
        if op.is_local() {
            let result = self.read_result(&op);
            return self.answer(waiter, result);
        }
        if self.raft.role() != Role::Leader {
            let leader = self.raft.leader();
            return self.answer(waiter, ReplyResult::NotLeader { leader });
        }
        if self.requests.reads_len() >= self.config.reads_pending_max {
            return self.answer(waiter, ReplyResult::Retry { reason: RetryReason::Overloaded });
        }
        let ctx = self.requests.next_ctx;
        self.requests.next_ctx += 1;
        match self.raft.read_index(self.now, ctx) {
            Ok(()) => {
                let read = PendingRead { waiter: Some(waiter), op, wait };
                self.requests.reads.insert(ctx, read);
            }
            Err(e) => self.answer(waiter, propose_refusal(e)),
        }
    }

    /// Reads confirmed by a heartbeat round: served once their index is applied.
    pub(super) fn confirm_reads(&mut self, confirmed: impl Iterator<Item = (u64, LogIndex)>) {
        for (ctx, index) in confirmed {
            if self.requests.reads.contains_key(&ctx) {
                self.requests.confirmed.insert((index, ctx));
            }
        }
        self.serve_confirmed_reads();
    }

    /// Serves the confirmed reads whose index is applied.
    pub(super) fn serve_confirmed_reads(&mut self) {
        while let Some(&(index, ctx)) = self.requests.confirmed.first() {
            if index > self.applied.index {
                break;
            }
            self.requests.confirmed.pop_first();
            let read = self.requests.reads.remove(&ctx).expect("confirmed reads are pending");
            let Some(waiter) = read.waiter else { continue };
            match read.op {
                ReadOp::WaitGrant { session, lock } => {
                    let wait = read.wait.unwrap_or(Duration::ZERO);
                    self.long_poll(waiter, ParkKind::WaitGrant, session, lock, wait);
                }
                op => {
                    let result = self.read_result(&op);
                    self.answer(waiter, result);
                }
            }
        }
    }

    /// Reads Raft abandoned because this node lost the leadership.
    pub(super) fn drop_reads(&mut self, dropped: Vec<u64>) {
        let leader = self.raft.leader();
        for ctx in dropped {
            let Some(read) = self.requests.reads.remove(&ctx) else { continue };
            if let Some(waiter) = read.waiter {
                self.answer(waiter, ReplyResult::NotLeader { leader });
            }
        }
    }

    /// The answer to a read from the local state.
    fn read_result(&self, op: &ReadOp) -> ReplyResult {
        let index = self.applied.index;
        let reply = match op {
            ReadOp::Get { key, .. } => {
                ReadReply::Value { key: key.clone(), value: self.sm.get(key).cloned(), index }
            }
            ReadOp::LockInfo { name, .. } => {
                let info = self.sm.lock_info(name).cloned();
                ReadReply::Lock { name: name.clone(), info, index }
            }
            ReadOp::SessionInfo { session } => {
                ReadReply::Session { session: *session, info: self.session_view(*session) }
            }
            ReadOp::WaitGrant { session, lock } => match self.wait_state(*session, lock) {
                WaitState::Holds(holder) => ReadReply::Granted { lock: lock.clone(), holder },
                WaitState::Waiting(position) => return ReplyResult::StillWaiting { position },
                WaitState::Neither => {
                    ReadReply::NotWaiting { lock: lock.clone(), session: *session }
                }
            },
            ReadOp::Status => ReadReply::Status(Box::new(self.status(self.now))),
        };
        ReplyResult::Read(reply)
    }

    /// **Testing fault `ExpireWithoutLog` only**: expires a session in the local state, the
    /// way a naive leader would, and answers the long polls its hand-offs end.
    pub(super) fn unlogged_expiry(&mut self, session: SessionId) {
        let applied = self.sm.apply_unlogged_expiry(session);
        self.tracker.handle_applied(self.now, &applied);
        self.emit(NodeEvent::UnloggedExpiry { session });
        self.observe_events(applied.index, applied.events);
    }
}
