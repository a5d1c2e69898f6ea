//! [`ClientCore`]: the palisade client as one sans-IO state machine.
//!
//! Why the client is a protocol participant and not a thin RPC stub: the chapter's faults hit
//! it first. A request or its reply can be lost, so it retries — with the *same* request id,
//! which the state machine executes at most once. The node it talks to may not be the leader,
//! or stop being it mid-request, so it follows `NotLeader` hints and rotates through the
//! servers when an attempt times out. It may never find out whether a mutation ran, so it says
//! `Outcome::Unknown` then, never a guess. And it must know, without asking anybody, whether
//! its locks are still safe to use: it keeps the conservative [`ClientLease`], renewed by
//! keepalives that run independently of its one user operation.
//!
//! # Driver contract
//!
//! ```text
//! let mut client = ClientCore::new(config, client_id, seed, now)?;
//! let op = client.open_session(now);            // any operation returns an OpId at once
//! loop {
//!     while let Some((server, request)) = client.poll_transmit() { send it }
//!     while let Some(event) = client.poll_event() { OpDone / LeaseChanged / Granted }
//!     wait for a reply or client.poll_timeout();
//!     client.handle_reply(now, server, reply);  // or
//!     client.handle_timeout(now);
//! }
//! ```
//!
//! One user operation is in flight at a time; further operations **queue** (FIFO, at most
//! [`OPS_QUEUED_MAX`]; past that they complete at once with `Invalid`). This is what the state
//! machine's one-slot dedup requires: a new request id supersedes the previous one, so two
//! mutations in flight could lose the answer of the first. Keepalives are outside that slot
//! (the state machine does not deduplicate them: a repeat renews again, which is safe), so they
//! run on their own schedule ([`ClientLease::next_keepalive_at`]), also while an operation
//! waits, and each one's lease is anchored at the moment it was first sent.
//!
//! How an operation ends ([`ClientEvent::OpDone`] with an [`OpOutcome`]):
//! - `Done(Done(response))`, `Done(Read(..))`, `Done(StillWaiting { .. })`, `Done(Invalid(..))`
//!   — the final answer (`NotLeader`, `Retry` and `Unknown` replies are handled inside);
//! - `Unknown` — the client gave up after `op_timeout` without a final answer, or the answer it
//!   got cannot tell: the request's seq was already superseded (`StaleRequest`), or the
//!   session is gone (`NoSession`, `UnknownSession`: the dedup entry died with the session, so
//!   an earlier attempt may have run before it did). The caller must treat the effect as
//!   possible.

mod keepalive;
mod op;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use palisade_clock::{DRIFT_BOUND_PPM_MAX, MonoInstant, Now};
use palisade_lock::{
    ClientLease, ClientTestingFault, Expect, Fence, KeepaliveId, LeaseState, LockGuardState,
    LockUnsafe, Outcome, RequestId, SessionId, TTL_MAX, TTL_MIN, Token,
};
use palisade_raft::NodeId;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::earliest;
use crate::error::ClientConfigError;
use crate::protocol::{ClientRequest, Consistency, ReplyResult, RequestBody};

/// Most user operations queued behind the one in flight.
pub const OPS_QUEUED_MAX: usize = 1024;
/// Most events kept for [`ClientCore::poll_event`]; the oldest are dropped past it.
pub const CLIENT_EVENTS_MAX: usize = 4096;
/// Most transmissions whose replies are still recognised (older replies are ignored).
pub const ATTEMPTS_TRACKED_MAX: usize = 64;
/// Most servers a client is configured with (Raft's voter limit).
pub const SERVERS_MAX: usize = palisade_raft::config::VOTERS_MAX;
/// Longest `op_timeout` and `attempt_timeout`.
pub const OP_TIMEOUT_MAX: Duration = Duration::from_secs(3600);
/// After `Retry`, `Unknown` or a `NotLeader` without a hint, the next attempt waits
/// `attempt_timeout / RETRY_BACKOFF_DIVISOR`.
pub const RETRY_BACKOFF_DIVISOR: u32 = 8;

/// How a client is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The cluster's nodes.
    pub servers: Vec<NodeId>,
    /// The TTL of the session it opens.
    pub ttl: Duration,
    /// Without an answer after this long (plus the long-poll bound), an attempt is retried at
    /// the next server.
    pub attempt_timeout: Duration,
    /// Without a final answer after this long (plus the long-poll bound), the operation ends
    /// as `Unknown`.
    pub op_timeout: Duration,
    /// The assumed bound on clock rate drift (the cluster's), for the lease.
    pub drift_bound_ppm: u32,
    /// A deliberately broken lease, for tests only.
    pub testing_fault: Option<ClientTestingFault>,
}

impl ClientConfig {
    /// `servers`, a session TTL, attempts of 1 s, operations of 10 s, a 500 ppm drift bound.
    pub fn new(servers: Vec<NodeId>, ttl: Duration) -> ClientConfig {
        ClientConfig {
            servers,
            ttl,
            attempt_timeout: Duration::from_secs(1),
            op_timeout: Duration::from_secs(10),
            drift_bound_ppm: palisade_clock::DRIFT_BOUND_PPM_DEFAULT,
            testing_fault: None,
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ClientConfigError> {
        let bad = |field, reason: &str| Err(ClientConfigError { field, reason: reason.into() });
        if self.servers.is_empty() || self.servers.len() > SERVERS_MAX {
            return bad("servers", "between 1 and SERVERS_MAX servers");
        }
        let mut sorted = self.servers.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != self.servers.len() || sorted[0] == 0 {
            return bad("servers", "node ids must be distinct and non-zero");
        }
        if self.ttl < TTL_MIN || self.ttl > TTL_MAX {
            return bad("ttl", "outside [TTL_MIN, TTL_MAX]");
        }
        if self.attempt_timeout.is_zero() || self.attempt_timeout > self.op_timeout {
            return bad("attempt_timeout", "must be positive and at most op_timeout");
        }
        if self.op_timeout > OP_TIMEOUT_MAX {
            return bad("op_timeout", "above OP_TIMEOUT_MAX");
        }
        if self.drift_bound_ppm > DRIFT_BOUND_PPM_MAX {
            return bad("drift_bound_ppm", "above DRIFT_BOUND_PPM_MAX");
        }
        Ok(())
    }
}

/// Identifies one user operation of a client.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub u64);

/// How an operation ended: a final [`ReplyResult`] (`Done`, `Read`, `StillWaiting`,
/// `Invalid`), or `Unknown`.
pub type OpOutcome = Outcome<ReplyResult>;

/// A user operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserOp {
    /// Open the client's session (TTL from the configuration).
    OpenSession,
    /// Close it: its locks are released at once.
    CloseSession,
    /// Acquire a lock, queueing behind the holder; with `wait`, the node holds the answer up
    /// to that long for the grant (a long poll), else a queued acquire answers `Queued`.
    Acquire {
        /// The lock.
        lock: String,
        /// The long-poll bound.
        wait: Option<Duration>,
    },
    /// Acquire a lock if it is free; `Busy` otherwise.
    TryAcquire {
        /// The lock.
        lock: String,
    },
    /// Release a held lock, or leave its queue.
    Release {
        /// The lock.
        lock: String,
    },
    /// Write a value, fenced or not.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// The fence the write must pass.
        fence: Option<Fence>,
    },
    /// Compare-and-swap.
    Cas {
        /// The key.
        key: String,
        /// What must be there.
        expected: Expect,
        /// The new value.
        value: Vec<u8>,
        /// The fence the write must pass.
        fence: Option<Fence>,
    },
    /// Delete a key.
    Delete {
        /// The key.
        key: String,
        /// The fence the delete must pass.
        fence: Option<Fence>,
    },
    /// Read a key.
    Get {
        /// The key.
        key: String,
        /// How fresh.
        consistency: Consistency,
    },
    /// Read a lock's state.
    LockInfo {
        /// The lock.
        name: String,
        /// How fresh.
        consistency: Consistency,
    },
    /// Wait (long poll) for the grant of a lock this session is queued for.
    WaitGrant {
        /// The lock.
        lock: String,
        /// The long-poll bound.
        wait: Option<Duration>,
    },
    /// Read this client's session as the leader sees it.
    SessionInfo,
}

/// What the client tells its user.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientEvent {
    /// An operation ended.
    OpDone {
        /// Which.
        op: OpId,
        /// How.
        outcome: OpOutcome,
    },
    /// The lease changed state (Pending, Held, Jeopardy, Lost).
    LeaseChanged(LeaseState),
    /// A blocking acquire (or a wait for a grant) got the lock.
    Granted {
        /// The lock.
        lock: String,
        /// The grant's fencing token: attach it to every write the lock guards.
        token: Token,
    },
}

/// Who a transmission was for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Purpose {
    Op(OpId),
    Keepalive(RequestId),
}

/// The user operation in flight.
#[derive(Clone, Debug)]
struct InFlight {
    op: OpId,
    user: UserOp,
    id: Option<RequestId>,
    body: RequestBody,
    wait: Option<Duration>,
    /// Gives up (Unknown) at this time.
    deadline: MonoInstant,
    /// The latest attempt.
    attempt: u64,
    attempt_deadline: MonoInstant,
    /// Set after a `Retry`-like answer: the next attempt goes out then.
    resend_at: Option<MonoInstant>,
    /// OpenSession only: the lease's id for its first send (the lease counts from it).
    open_kid: Option<KeepaliveId>,
    /// The server the latest attempt went to.
    sent_to: NodeId,
}

/// A keepalive in flight.
#[derive(Clone, Debug)]
struct KeepaliveInFlight {
    id: RequestId,
    attempt: u64,
    attempt_deadline: MonoInstant,
    /// The server the latest attempt went to.
    sent_to: NodeId,
}

/// A sent keepalive whose acknowledgement still counts.
#[derive(Copy, Clone, Debug)]
struct SentKeepalive {
    id: RequestId,
    kid: KeepaliveId,
    session: SessionId,
}

/// One palisade client. See the module documentation for the driver contract.
#[derive(Debug)]
pub struct ClientCore {
    config: ClientConfig,
    client_id: u64,
    now: Now,
    next_seq: u64,
    next_attempt: u64,
    next_op: u64,
    /// Index in `config.servers` of the server requests go to.
    target: usize,
    session: Option<SessionId>,
    lease: Option<ClientLease>,
    lease_reported: Option<LeaseState>,
    locks: BTreeMap<String, LockGuardState>,
    current: Option<InFlight>,
    queue: VecDeque<(OpId, UserOp)>,
    keepalive: Option<KeepaliveInFlight>,
    sent_keepalives: VecDeque<SentKeepalive>,
    keepalives_enabled: bool,
    attempts: VecDeque<(u64, Purpose)>,
    transmits: VecDeque<(NodeId, ClientRequest)>,
    events: VecDeque<ClientEvent>,
    events_dropped: u64,
}

impl ClientCore {
    /// A client with random id `client_id` (non-zero, unique per client process), drawing
    /// its first server from `seed`.
    pub fn new(
        config: ClientConfig,
        client_id: u64,
        seed: u64,
        now: Now,
    ) -> Result<ClientCore, ClientConfigError> {
        config.validate()?;
        if client_id == 0 {
            let reason = "client id 0 is reserved".into();
            return Err(ClientConfigError { field: "client_id", reason });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let target = rng.random_range(0..config.servers.len());
        Ok(ClientCore {
            config,
            client_id,
            now,
            next_seq: 1,
            next_attempt: 1,
            next_op: 1,
            target,
            session: None,
            lease: None,
            lease_reported: None,
            locks: BTreeMap::new(),
            current: None,
            queue: VecDeque::new(),
            keepalive: None,
            sent_keepalives: VecDeque::new(),
            keepalives_enabled: true,
            attempts: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            events_dropped: 0,
        })
    }

    /// Starts (or queues) a user operation.
    pub fn submit(&mut self, now: Now, op: UserOp) -> OpId {
        self.observe(now);
        let id = OpId(self.next_op);
        self.next_op += 1;
        if self.queue.len() < OPS_QUEUED_MAX {
            self.queue.push_back((id, op));
        } else {
            let reason = "the client's operation queue is full".to_string();
            self.emit(ClientEvent::OpDone { op: id, outcome: Outcome::Done(invalid(reason)) });
        }
        self.after_input();
        id
    }

    /// Opens the session.
    pub fn open_session(&mut self, now: Now) -> OpId {
        self.submit(now, UserOp::OpenSession)
    }

    /// Closes the session.
    pub fn close_session(&mut self, now: Now) -> OpId {
        self.submit(now, UserOp::CloseSession)
    }

    /// Acquires `lock`, waiting in its queue; `wait` bounds the long poll for the grant.
    pub fn acquire(&mut self, now: Now, lock: &str, wait: Option<Duration>) -> OpId {
        self.submit(now, UserOp::Acquire { lock: lock.into(), wait })
    }

    /// Acquires `lock` if it is free.
    pub fn try_acquire(&mut self, now: Now, lock: &str) -> OpId {
        self.submit(now, UserOp::TryAcquire { lock: lock.into() })
    }

    /// Releases `lock` (or leaves its queue).
    pub fn release(&mut self, now: Now, lock: &str) -> OpId {
        self.submit(now, UserOp::Release { lock: lock.into() })
    }

    /// Writes `key`.
    pub fn put(&mut self, now: Now, key: &str, value: Vec<u8>, fence: Option<Fence>) -> OpId {
        self.submit(now, UserOp::Put { key: key.into(), value, fence })
    }

    /// Compare-and-swap on `key`.
    pub fn cas(
        &mut self,
        now: Now,
        key: &str,
        expected: Expect,
        value: Vec<u8>,
        fence: Option<Fence>,
    ) -> OpId {
        self.submit(now, UserOp::Cas { key: key.into(), expected, value, fence })
    }

    /// Deletes `key`.
    pub fn delete(&mut self, now: Now, key: &str, fence: Option<Fence>) -> OpId {
        self.submit(now, UserOp::Delete { key: key.into(), fence })
    }

    /// Reads `key`.
    pub fn get(&mut self, now: Now, key: &str, consistency: Consistency) -> OpId {
        self.submit(now, UserOp::Get { key: key.into(), consistency })
    }

    /// Reads a lock's state.
    pub fn lock_info(&mut self, now: Now, name: &str, consistency: Consistency) -> OpId {
        self.submit(now, UserOp::LockInfo { name: name.into(), consistency })
    }

    /// Waits for the grant of a lock the session is queued for.
    pub fn wait_grant(&mut self, now: Now, lock: &str, wait: Option<Duration>) -> OpId {
        self.submit(now, UserOp::WaitGrant { lock: lock.into(), wait })
    }

    /// Reads the session as the leader sees it.
    pub fn session_info(&mut self, now: Now) -> OpId {
        self.submit(now, UserOp::SessionInfo)
    }

    /// A reply from server `from` arrived.
    pub fn handle_reply(&mut self, now: Now, from: NodeId, reply: crate::ClientReply) {
        self.observe(now);
        let purpose = self.attempts.iter().find(|(a, _)| *a == reply.attempt).map(|(_, p)| *p);
        match purpose {
            Some(Purpose::Op(op)) if self.current.as_ref().is_some_and(|c| c.op == op) => {
                self.op_reply(from, reply);
            }
            Some(Purpose::Keepalive(id)) => self.keepalive_reply(from, id, reply),
            _ => {}
        }
        self.after_input();
    }

    /// Attempt `attempt` never reached its server: the connection was refused, the address
    /// did not resolve — the driver knows the request was not delivered. The attempt is over
    /// at once instead of at its timeout: an operation moves to the next server and resends
    /// after the retry backoff (`attempt_timeout / RETRY_BACKOFF_DIVISOR`, so a cluster that
    /// is all down is not hammered); a keepalive counts as failed and the next one goes to the
    /// next server. Attempts that are not the latest of their purpose are ignored. Saying this
    /// of an attempt that *was* delivered is harmless for safety: the operation keeps its
    /// request id, so a retry is deduplicated.
    pub fn handle_unreachable(&mut self, now: Now, attempt: u64) {
        self.observe(now);
        let op = self.current.as_ref().filter(|c| c.attempt == attempt && c.resend_at.is_none());
        if let Some(server) = op.map(|c| c.sent_to) {
            self.rotate_from(server);
            self.resend_later();
        }
        if let Some(server) =
            self.keepalive.as_ref().filter(|k| k.attempt == attempt).map(|k| k.sent_to)
        {
            self.keepalive_failed();
            self.rotate_from(server);
        }
        self.after_input();
    }

    /// Fires whatever is due: attempt timeouts, operation deadlines, keepalives, lease state
    /// changes. Calls with nothing due are harmless.
    pub fn handle_timeout(&mut self, now: Now) {
        self.observe(now);
        self.op_timeouts();
        self.keepalive_timeouts();
        self.after_input();
    }

    /// The next request to send, and to which server.
    #[inline]
    pub fn poll_transmit(&mut self) -> Option<(NodeId, ClientRequest)> {
        self.transmits.pop_front()
    }

    /// The next event.
    #[inline]
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When [`ClientCore::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<MonoInstant> {
        let op = self
            .current
            .as_ref()
            .map(|c| c.deadline.min(c.resend_at.unwrap_or(c.attempt_deadline)));
        let keepalive = self.keepalive.as_ref().map(|k| k.attempt_deadline);
        let lease = earliest(self.next_keepalive_due(), self.next_lease_change());
        earliest(earliest(op, keepalive), lease)
    }

    /// This client's id.
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The open session, if any (`None` after the server said it is gone, or after a close).
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    /// The lease's state at `now`: `None` before the first `OpenSession`; `Lost` once the
    /// session ended (ran out, expired on the server, closed) until the next `OpenSession`.
    pub fn lease_state(&self, now: Now) -> Option<LeaseState> {
        self.lease.as_ref().map(|l| l.state(now.mono))
    }

    /// The end of the local lease on this client's monotonic clock, if it is not lost.
    pub fn lease_valid_until(&self) -> Option<MonoInstant> {
        self.lease.as_ref().and_then(ClientLease::valid_until)
    }

    /// Whether the lease is safe to act on at `now` (Held or Jeopardy). A pause after this
    /// call is not covered: that is what the fencing token is for.
    #[inline]
    pub fn is_safe_now(&self, now: Now) -> bool {
        self.lease.as_ref().is_some_and(|l| l.is_safe_now(now.mono))
    }

    /// The locks this client holds, with their tokens.
    pub fn held_locks(&self) -> impl Iterator<Item = &LockGuardState> + '_ {
        self.locks.values()
    }

    /// The guard of a held lock.
    pub fn guard(&self, lock: &str) -> Option<&LockGuardState> {
        self.locks.get(lock)
    }

    /// The fence to write with under `lock` at `now`, if the lock is held and the lease safe.
    pub fn fence(&self, lock: &str, now: Now) -> Result<Fence, LockUnsafe> {
        let guard = self.locks.get(lock).ok_or(LockUnsafe::Released)?;
        match &self.lease {
            Some(lease) => guard.check(lease, now.mono),
            None => Err(LockUnsafe::Lease(LeaseState::Lost)),
        }
    }

    /// The operation in flight, if any.
    pub fn in_flight(&self) -> Option<OpId> {
        self.current.as_ref().map(|c| c.op)
    }

    /// The request id of the mutation in flight, if any (the same in every attempt).
    pub fn in_flight_request(&self) -> Option<RequestId> {
        self.current.as_ref().and_then(|c| c.id)
    }

    /// Operations queued behind it.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The server requests currently go to.
    pub fn target(&self) -> NodeId {
        self.config.servers[self.target]
    }

    /// Events dropped because they were not polled.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// Turns keepalives off (a client that stops renewing, e.g. to let its session expire in
    /// a test) or back on.
    pub fn set_keepalives_enabled(&mut self, enabled: bool) {
        self.keepalives_enabled = enabled;
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    fn observe(&mut self, now: Now) {
        let mono = self.now.mono.max(now.mono);
        self.now = Now { mono, wall: now.wall };
    }

    fn emit(&mut self, event: ClientEvent) {
        if self.events.len() == CLIENT_EVENTS_MAX {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Queues a transmission of `request` to the current target, remembering its purpose.
    fn transmit(&mut self, purpose: Purpose, request: ClientRequest) {
        if self.attempts.len() == ATTEMPTS_TRACKED_MAX {
            self.attempts.pop_front();
        }
        self.attempts.push_back((request.attempt, purpose));
        self.transmits.push_back((self.target(), request));
    }

    fn fresh_attempt(&mut self) -> u64 {
        let a = self.next_attempt;
        self.next_attempt += 1;
        a
    }

    fn fresh_id(&mut self) -> RequestId {
        let seq = self.next_seq;
        self.next_seq += 1;
        RequestId { client: self.client_id, seq }
    }

    /// Moves to the next server.
    fn rotate(&mut self) {
        self.target = (self.target + 1) % self.config.servers.len();
    }

    /// An attempt sent to `server` timed out: moves on from it, unless the target already
    /// moved (the operation and the keepalives share it: a hint the other one followed, or
    /// its own timeout, since). Rotating from wherever the target is now would leave a leader
    /// just found for a server that may be down (seed 92 of `palisade sim --faults all`: the
    /// keepalives cycled through two dead servers and the session expired).
    fn rotate_from(&mut self, server: NodeId) {
        if self.target() == server {
            self.rotate();
        }
    }

    /// Follows a `NotLeader` answer from `from`; returns whether it named another server.
    fn follow_hint(&mut self, from: NodeId, leader: Option<NodeId>) -> bool {
        let hinted = leader.filter(|&l| l != from);
        match hinted.and_then(|l| self.config.servers.iter().position(|&s| s == l)) {
            Some(i) => {
                self.target = i;
                true
            }
            None => {
                if self.target() == from {
                    self.rotate();
                }
                false
            }
        }
    }

    fn backoff(&self) -> Duration {
        self.config.attempt_timeout / RETRY_BACKOFF_DIVISOR
    }

    /// Keepalives and lease-state events after every input.
    fn after_input(&mut self) {
        self.pump_queue();
        self.maybe_send_keepalive();
        self.report_lease();
    }
}

fn invalid(reason: String) -> ReplyResult {
    ReplyResult::Invalid(reason)
}

#[cfg(test)]
mod tests;
