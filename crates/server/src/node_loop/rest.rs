//! REST calls turned into protocol requests, with request ids the node can vouch for.
//!
//! The protocol deduplicates mutations by `(client, seq)`, one slot per client: a seq equal to
//! the last applied one is answered from the cache, a lower one is refused as stale. A REST
//! caller that sends an `Idempotency-Key: <client>:<seq>` chooses the id itself and can retry
//! safely. Without one, the id is made here, and it must never repeat an id already used for
//! another request of that client, or the state machine would answer this request with the
//! other one's cached response. So ids are made only by a **ready leader** (one that applied an
//! entry of its own term): by then every entry of earlier leaders that can still commit is
//! applied, so `last_seq + 1` of the session's client is above every seq that may ever apply;
//! within the leadership, seqs handed out count up from there (a map per client, cleared when
//! the term changes). A follower answers `NotLeader` (the HTTP side forwards the call to the
//! leader) and an unready leader `Retry { LeaderNotReady }` (the HTTP side retries). A new
//! session's client id is drawn from a ChaCha8 generator seeded at start.

use std::collections::HashMap;
use std::time::Duration;

use palisade_node::lock::{Expect, Fence, Op, RequestId, SessionId};
use palisade_node::{ClientRequest, ReadOp, ReplyResult, RequestBody, RetryReason};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Core;

/// Most clients whose last generated seq is remembered. Past it, the clients with nothing in
/// flight (their last generated seq applied) are forgotten; if that is not enough, the call is
/// answered `Retry { Overloaded }`.
pub const REST_CLIENTS_TRACKED_MAX: usize = 65_536;

/// A REST operation, parsed and checked by the HTTP side.
#[derive(Debug, Clone, PartialEq)]
pub enum RestCall {
    /// `POST /v1/sessions`.
    OpenSession {
        /// The TTL asked for.
        ttl: Duration,
    },
    /// `POST /v1/sessions/{session}/keepalive`.
    KeepAlive {
        /// The session.
        session: SessionId,
    },
    /// `DELETE /v1/sessions/{session}`.
    CloseSession {
        /// The session.
        session: SessionId,
    },
    /// `POST /v1/locks/{name}/acquire`.
    Acquire {
        /// The session.
        session: SessionId,
        /// The lock.
        lock: String,
        /// `None`: try once; `Some(d)`: queue and wait up to `d` for the grant.
        wait: Option<Duration>,
    },
    /// `POST /v1/locks/{name}/release`.
    Release {
        /// The session.
        session: SessionId,
        /// The lock.
        lock: String,
    },
    /// `PUT /v1/kv/{key}`, `POST /v1/kv/{key}/cas` and `DELETE /v1/kv/{key}`.
    Write {
        /// The session whose client writes (unless the key names the client).
        session: Option<SessionId>,
        /// The operation (its HLC is stamped by the leader).
        op: Op,
    },
    /// A read: `GET /v1/locks/{name}`, `GET /v1/kv/{key}`.
    Read(ReadOp),
}

impl RestCall {
    /// A kv write of `value` to `key`, or a delete (`value == None`), fenced or not.
    pub fn write(
        session: Option<SessionId>,
        key: String,
        value: Option<Vec<u8>>,
        expected: Option<Expect>,
        fence: Option<Fence>,
    ) -> RestCall {
        let hlc = Default::default();
        let op = match (value, expected) {
            (Some(value), Some(expected)) => Op::Cas { key, expected, value, fence, hlc },
            (Some(value), None) => Op::Put { key, value, fence, hlc },
            (None, _) => Op::Delete { key, fence, hlc },
        };
        RestCall::Write { session, op }
    }

    /// The session the call acts for, if it names one.
    fn session(&self) -> Option<SessionId> {
        match self {
            RestCall::KeepAlive { session }
            | RestCall::CloseSession { session }
            | RestCall::Acquire { session, .. }
            | RestCall::Release { session, .. } => Some(*session),
            RestCall::Write { session, .. } => *session,
            RestCall::OpenSession { .. } | RestCall::Read(_) => None,
        }
    }

    /// The operation and the long-poll bound.
    fn into_op(self) -> (Op, Option<Duration>) {
        match self {
            RestCall::OpenSession { ttl } => (Op::OpenSession { ttl }, None),
            RestCall::KeepAlive { session } => (Op::KeepAlive { session }, None),
            RestCall::CloseSession { session } => (Op::CloseSession { session }, None),
            RestCall::Acquire { session, lock, wait } => {
                (Op::Acquire { session, lock, wait: wait.is_some() }, wait)
            }
            RestCall::Release { session, lock } => (Op::Release { session, lock }, None),
            RestCall::Write { op, .. } => (op, None),
            RestCall::Read(_) => unreachable!("reads have no op"),
        }
    }
}

/// The ids this node hands out to REST calls without an `Idempotency-Key`.
#[derive(Debug)]
pub(super) struct RestIds {
    rng: ChaCha8Rng,
    term: u64,
    last_seq: HashMap<u64, u64>,
}

impl RestIds {
    pub fn new(seed: u64) -> RestIds {
        RestIds { rng: ChaCha8Rng::seed_from_u64(seed), term: 0, last_seq: HashMap::new() }
    }

    /// Forgets the seqs of an earlier leadership.
    pub fn observe_term(&mut self, term: u64) {
        if term != self.term {
            self.term = term;
            self.last_seq.clear();
        }
    }

    /// The protocol request of `call` (attempt 0), or the answer to give at once.
    pub fn build(
        &mut self,
        core: &Core,
        call: RestCall,
        key: Option<RequestId>,
    ) -> Result<ClientRequest, ReplyResult> {
        if let RestCall::Read(op) = call {
            return Ok(ClientRequest {
                attempt: 0,
                id: None,
                body: RequestBody::Read(op),
                wait: None,
            });
        }
        let id = match key {
            Some(id) => id,
            None => self.generate(core, &call)?,
        };
        let (op, wait) = call.into_op();
        Ok(ClientRequest { attempt: 0, id: Some(id), body: RequestBody::Mutate(op), wait })
    }

    fn generate(&mut self, core: &Core, call: &RestCall) -> Result<RequestId, ReplyResult> {
        if !core.is_leader() {
            return Err(ReplyResult::NotLeader { leader: core.raft().leader() });
        }
        if !core.is_leader_ready() {
            return Err(ReplyResult::Retry { reason: RetryReason::LeaderNotReady });
        }
        self.observe_term(core.raft().term());
        let sm = core.state_machine();
        let owner = call.session().and_then(|s| sm.session(s)).map(|s| (s.client, s.last_seq));
        // A new session, or one that does not exist (the state machine refuses it with
        // `NoSession` through the log: a ready leader's state could still be stale): a fresh
        // client, whose first seq cannot collide with anything.
        let Some((client, applied_seq)) = owner else {
            return Ok(RequestId { client: self.fresh_client(), seq: 1 });
        };
        if self.last_seq.len() >= REST_CLIENTS_TRACKED_MAX {
            let applied = |client: u64| {
                sm.session_of_client(client).and_then(|s| sm.session(s)).map_or(0, |s| s.last_seq)
            };
            self.last_seq.retain(|client, last| applied(*client) < *last);
            if self.last_seq.len() >= REST_CLIENTS_TRACKED_MAX {
                return Err(ReplyResult::Retry { reason: RetryReason::Overloaded });
            }
        }
        let last = self.last_seq.entry(client).or_insert(0);
        let seq = applied_seq.max(*last) + 1;
        *last = seq;
        Ok(RequestId { client, seq })
    }

    fn fresh_client(&mut self) -> u64 {
        loop {
            let client: u64 = self.rng.random();
            if client != 0 {
                return client;
            }
        }
    }
}
