//! Sessions and request deduplication.
//!
//! A session's lifetime is described by its *basis* (the latest entry that renewed or
//! checkpointed it) and *remaining* (an upper bound on the real time anyone may still consider
//! it alive, counted from that entry's creation). The state machine never interprets these as
//! times — it only stores them for the trackers of all replicas and for snapshots; the leader's
//! tracker turns them into deadlines and proposes `ExpireSession` for the basis it timed.

use std::collections::BTreeSet;
use std::time::Duration;

use palisade_raft::LogIndex;
use serde::{Deserialize, Serialize};

use super::{Event, LockStateMachine, ReleaseCause};
use crate::command::{CheckpointEntry, Op, Request, SessionId};
use crate::limits::{Limit, LimitExceeded, SESSIONS_MAX, as_u64};
use crate::response::{Refused, Reply, Response};

/// An open session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Its id: the index of the OpenSession entry.
    pub id: SessionId,
    /// The client that opened it.
    pub client: u64,
    /// Its TTL.
    pub ttl: Duration,
    /// The latest entry that renewed or checkpointed it.
    pub basis: LogIndex,
    /// Upper bound on its remaining real lifetime, counted from the basis entry's creation.
    pub remaining: Duration,
    /// Locks it holds.
    pub held: BTreeSet<String>,
    /// Locks it waits for.
    pub waiting: BTreeSet<String>,
    /// The last request seq applied for its client.
    pub last_seq: u64,
    /// The response to that request, returned to duplicates.
    pub last_response: Response,
}

impl Session {
    /// Locks held plus locks waited for: what [`crate::LOCKS_PER_SESSION_MAX`] bounds.
    pub fn lock_count(&self) -> usize {
        self.held.len() + self.waiting.len()
    }
}

impl LockStateMachine {
    /// Dedup, session lookup, then execution.
    pub(super) fn apply_request(
        &mut self,
        index: LogIndex,
        req: &Request,
        events: &mut Vec<Event>,
    ) -> Response {
        let Some(&sid) = self.clients.get(&req.id.client) else {
            return match req.op {
                Op::OpenSession { ttl } => self.open_session(index, req, ttl, events),
                _ => Err(Refused::NoSession { client: req.id.client }),
            };
        };
        if matches!(req.op, Op::KeepAlive { .. }) {
            // Idempotent: outside the one-slot dedup table (see the module doc of `state`).
            return self.execute(index, sid, req, events);
        }
        let session = &self.sessions[&sid];
        if req.id.seq == session.last_seq {
            return session.last_response.clone();
        }
        if req.id.seq < session.last_seq {
            return Err(Refused::StaleRequest { seq: req.id.seq, last: session.last_seq });
        }
        let response = self.execute(index, sid, req, events);
        // CloseSession removes the session and its dedup entry with it.
        if let Some(s) = self.sessions.get_mut(&sid) {
            s.last_seq = req.id.seq;
            s.last_response = response.clone();
        }
        response
    }

    fn execute(
        &mut self,
        index: LogIndex,
        sid: SessionId,
        req: &Request,
        events: &mut Vec<Event>,
    ) -> Response {
        req.validate(&self.config)?;
        if let Some(named) = req.op.session().filter(|named| *named != sid) {
            return Err(if self.sessions.contains_key(&named) {
                Refused::NotSessionOwner { session: named }
            } else {
                Refused::UnknownSession { session: named }
            });
        }
        match &req.op {
            Op::OpenSession { .. } => Err(Refused::SessionExists { session: sid }),
            Op::KeepAlive { .. } => Ok(self.keep_alive(index, sid, events)),
            Op::CloseSession { .. } => {
                let basis = self.sessions[&sid].basis;
                self.end_session(index, sid, ReleaseCause::SessionClosed, events);
                events.push(Event::SessionClosed { session: sid, basis });
                Ok(Reply::SessionClosed { session: sid })
            }
            Op::Acquire { lock, wait, .. } => self.acquire(index, sid, lock, *wait, events),
            Op::Release { lock, .. } => self.release(index, sid, lock, events),
            Op::Put { key, value, fence, hlc } => self.put(index, key, value, fence.as_ref(), *hlc),
            Op::Cas { key, expected, value, fence, hlc } => {
                self.cas(index, key, expected, value, fence.as_ref(), *hlc)
            }
            Op::Delete { key, fence, hlc } => self.delete(key, fence.as_ref(), *hlc),
        }
    }

    fn open_session(
        &mut self,
        index: LogIndex,
        req: &Request,
        ttl: Duration,
        events: &mut Vec<Event>,
    ) -> Response {
        req.validate(&self.config)?;
        if self.sessions.len() >= SESSIONS_MAX {
            let value = as_u64(self.sessions.len() + 1);
            return Err(Refused::Limit(LimitExceeded::new(
                Limit::Sessions,
                value,
                as_u64(SESSIONS_MAX),
            )));
        }
        let id = SessionId(index);
        let client = req.id.client;
        let reply = Reply::SessionOpened { session: id, ttl };
        let session = Session {
            id,
            client,
            ttl,
            basis: index,
            remaining: ttl,
            held: BTreeSet::new(),
            waiting: BTreeSet::new(),
            last_seq: req.id.seq,
            last_response: Ok(reply.clone()),
        };
        assert!(!self.sessions.contains_key(&id), "session ids are fresh log indices");
        self.sessions.insert(id, session);
        let previous = self.clients.insert(client, id);
        assert!(previous.is_none(), "a client has at most one session");
        events.push(Event::SessionOpened { session: id, client, basis: index, ttl });
        Ok(reply)
    }

    fn keep_alive(&mut self, index: LogIndex, sid: SessionId, events: &mut Vec<Event>) -> Reply {
        let s = self.sessions.get_mut(&sid).expect("caller checked the session exists");
        s.basis = index;
        s.remaining = s.ttl;
        events.push(Event::SessionRenewed { session: sid, basis: index, remaining: s.ttl });
        Reply::Renewed { session: sid, ttl: s.ttl }
    }

    pub(super) fn checkpoint(
        &mut self,
        index: LogIndex,
        entries: &[CheckpointEntry],
        events: &mut Vec<Event>,
    ) {
        for e in entries {
            let Some(s) = self.sessions.get_mut(&e.session) else { continue };
            // Stale line (renewed since), or a remaining time larger than the TTL, which no
            // correct tracker produces: ignore, keeping the older (still valid) basis.
            if s.basis != e.basis || e.remaining > s.ttl {
                continue;
            }
            s.basis = index;
            s.remaining = e.remaining;
            events.push(Event::SessionCheckpointed {
                session: e.session,
                basis: index,
                remaining: e.remaining,
            });
        }
    }

    pub(super) fn expire_session(
        &mut self,
        index: LogIndex,
        sid: SessionId,
        basis: LogIndex,
        events: &mut Vec<Event>,
    ) {
        match self.sessions.get(&sid) {
            Some(s) if s.basis == basis => {}
            // Renewed or checkpointed since the leader timed it, or already gone: no-op.
            _ => return,
        }
        self.end_session(index, sid, ReleaseCause::SessionExpired, events);
        events.push(Event::SessionExpired { session: sid, basis });
    }

    /// Removes the session from every wait queue, releases every lock it holds (hand-off for a
    /// close, lock-delay for an expiry), and forgets it and its dedup entry.
    fn end_session(
        &mut self,
        index: LogIndex,
        sid: SessionId,
        cause: ReleaseCause,
        events: &mut Vec<Event>,
    ) {
        let waiting: Vec<String> = self.sessions[&sid].waiting.iter().cloned().collect();
        for lock in waiting {
            self.leave_queue(sid, &lock, events);
        }
        let held: Vec<String> = self.sessions[&sid].held.iter().cloned().collect();
        for lock in held {
            self.release_held(index, sid, &lock, cause, events);
        }
        let s = self.sessions.remove(&sid).expect("session exists");
        assert!(s.held.is_empty());
        assert!(s.waiting.is_empty());
        let removed = self.clients.remove(&s.client);
        assert_eq!(removed, Some(sid));
    }
}
