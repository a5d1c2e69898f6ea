//! Locks: grant, FIFO wait queue, release with hand-off, lock-delay after an expiry.
//!
//! Reentrancy rule: a session that already holds a lock and acquires it again gets the *same*
//! grant back (same token, `reentrant: true`); nothing is counted, and one release releases it.
//! Palisade locks are leases on a name, not recursive mutexes: a counter would let a confused
//! client believe it still holds a lock that one of its other code paths has released. A session
//! already queued that acquires again gets its current queue position (no double enqueue).
//!
//! Lock records exist only while a lock is held, waited for, or in lock-delay; a lock that
//! becomes free with nobody waiting is forgotten, which keeps the state bounded by the limits.

use palisade_raft::LogIndex;
use serde::{Deserialize, Serialize};

use super::{Event, LockStateMachine, ReleaseCause};
use crate::command::{SessionId, Token};
use crate::limits::{
    LOCKS_MAX, LOCKS_PER_SESSION_MAX, Limit, LimitExceeded, WAITERS_PER_LOCK_MAX, as_u64,
};
use crate::response::{Holder, Refused, Reply, Response};

/// A lock's state: who holds it, who waits, whether a lock-delay runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// The current grant.
    pub holder: Option<Holder>,
    /// Waiting sessions, first in line first.
    pub waiters: Vec<SessionId>,
    /// Index of the expiry whose lock-delay runs; no grant until `LockDelayOver`.
    pub delayed_since: Option<LogIndex>,
}

impl LockInfo {
    fn is_empty(&self) -> bool {
        self.holder.is_none() && self.waiters.is_empty() && self.delayed_since.is_none()
    }

    fn is_grantable(&self) -> bool {
        self.holder.is_none() && self.delayed_since.is_none()
    }
}

fn limit(limit: Limit, value: usize, max: usize) -> Refused {
    Refused::Limit(LimitExceeded::new(limit, as_u64(value), as_u64(max)))
}

fn position(p: usize) -> u32 {
    u32::try_from(p).unwrap_or(u32::MAX)
}

impl LockStateMachine {
    pub(super) fn acquire(
        &mut self,
        index: LogIndex,
        sid: SessionId,
        lock: &str,
        wait: bool,
        events: &mut Vec<Event>,
    ) -> Response {
        if let Some(info) = self.locks.get(lock) {
            if let Some(h) = info.holder.as_ref().filter(|h| h.session == sid) {
                let holder = h.clone();
                return Ok(Reply::Acquired { lock: lock.to_string(), holder, reentrant: true });
            }
            if let Some(p) = info.waiters.iter().position(|w| *w == sid) {
                return Ok(Reply::Queued { lock: lock.to_string(), position: position(p) });
            }
            if !info.is_grantable() && !wait {
                return Ok(Reply::Busy {
                    lock: lock.to_string(),
                    holder: info.holder.clone(),
                    delayed_since: info.delayed_since,
                });
            }
        }
        let count = self.sessions[&sid].lock_count() + 1;
        if count > LOCKS_PER_SESSION_MAX {
            return Err(limit(Limit::LocksPerSession, count, LOCKS_PER_SESSION_MAX));
        }
        if !self.locks.contains_key(lock) {
            if self.locks.len() >= LOCKS_MAX {
                return Err(limit(Limit::Locks, self.locks.len() + 1, LOCKS_MAX));
            }
            self.locks.insert(lock.to_string(), LockInfo::default());
        }
        let info = &self.locks[lock];
        if info.is_grantable() {
            // A grantable lock never has waiters: hand-off happens in the releasing step.
            assert!(info.waiters.is_empty(), "free lock {lock:?} with waiters");
            let holder = self.grant(index, lock, sid, events);
            return Ok(Reply::Acquired { lock: lock.to_string(), holder, reentrant: false });
        }
        self.enqueue(sid, lock, events)
    }

    fn enqueue(&mut self, sid: SessionId, lock: &str, events: &mut Vec<Event>) -> Response {
        let info = self.locks.get_mut(lock).expect("caller created the record");
        let n = info.waiters.len() + 1;
        if n > WAITERS_PER_LOCK_MAX {
            return Err(limit(Limit::WaitersPerLock, n, WAITERS_PER_LOCK_MAX));
        }
        assert!(info.holder.as_ref().is_none_or(|h| h.session != sid), "holder cannot wait");
        assert!(!info.waiters.contains(&sid), "no double enqueue");
        info.waiters.push(sid);
        let p = position(info.waiters.len() - 1);
        let inserted = self.sessions.get_mut(&sid).expect("waiter").waiting.insert(lock.into());
        assert!(inserted);
        events.push(Event::Queued { lock: lock.to_string(), session: sid, position: p });
        Ok(Reply::Queued { lock: lock.to_string(), position: p })
    }

    /// Grants a free, undelayed lock to `sid` (taking it out of the queue if it waited).
    fn grant(
        &mut self,
        index: LogIndex,
        lock: &str,
        sid: SessionId,
        events: &mut Vec<Event>,
    ) -> Holder {
        let token = self.next_token(index);
        assert!(token > self.last_token, "tokens strictly increase");
        let session = self.sessions.get_mut(&sid).expect("grantee session exists");
        let holder = Holder { session: sid, client: session.client, token, since_index: index };
        let info = self.locks.get_mut(lock).expect("lock record exists");
        assert!(info.holder.is_none(), "at most one holder per lock");
        assert!(info.delayed_since.is_none(), "no grant during lock-delay");
        assert!(!info.waiters.contains(&sid), "holder is never in its own wait queue");
        info.holder = Some(holder.clone());
        self.last_token = token;
        session.waiting.remove(lock);
        let inserted = session.held.insert(lock.to_string());
        assert!(inserted, "held lock is in the holder's set exactly once");
        events.push(Event::Granted { lock: lock.to_string(), session: sid, token, index });
        holder
    }

    /// Grants the lock to the first waiter if it is grantable; forgets it if it is empty.
    fn hand_off(&mut self, index: LogIndex, lock: &str, events: &mut Vec<Event>) -> Option<Holder> {
        let info = self.locks.get_mut(lock)?;
        let mut granted = None;
        if info.is_grantable() && !info.waiters.is_empty() {
            let next = info.waiters.remove(0);
            granted = Some(self.grant(index, lock, next, events));
        }
        if self.locks.get(lock).is_some_and(LockInfo::is_empty) {
            self.locks.remove(lock);
        }
        granted
    }

    pub(super) fn release(
        &mut self,
        index: LogIndex,
        sid: SessionId,
        lock: &str,
        events: &mut Vec<Event>,
    ) -> Response {
        let not_holder = || Refused::NotHolder { lock: lock.to_string(), session: sid };
        let info = self.locks.get(lock).ok_or_else(not_holder)?;
        if info.holder.as_ref().is_some_and(|h| h.session == sid) {
            let (token, next) = self.release_held(index, sid, lock, ReleaseCause::Released, events);
            return Ok(Reply::Released { lock: lock.to_string(), token, next });
        }
        if info.waiters.contains(&sid) {
            self.leave_queue(sid, lock, events);
            return Ok(Reply::Dequeued { lock: lock.to_string() });
        }
        Err(not_holder())
    }

    /// Ends `sid`'s grant of `lock`. An expiry starts the lock-delay; anything else hands the
    /// lock to the next waiter in this same step.
    pub(super) fn release_held(
        &mut self,
        index: LogIndex,
        sid: SessionId,
        lock: &str,
        cause: ReleaseCause,
        events: &mut Vec<Event>,
    ) -> (Token, Option<Holder>) {
        let info = self.locks.get_mut(lock).expect("held lock has a record");
        let holder = info.holder.take().expect("released lock is held");
        assert_eq!(holder.session, sid, "only the holder releases");
        let removed = self.sessions.get_mut(&sid).expect("holder session").held.remove(lock);
        assert!(removed, "held lock is in the holder's set");
        events.push(Event::Released {
            lock: lock.to_string(),
            session: sid,
            token: holder.token,
            cause,
        });
        if cause == ReleaseCause::SessionExpired {
            info.delayed_since = Some(index);
            events.push(Event::LockDelayStarted { lock: lock.to_string(), since: index });
        }
        let next = self.hand_off(index, lock, events);
        (holder.token, next)
    }

    pub(super) fn leave_queue(&mut self, sid: SessionId, lock: &str, events: &mut Vec<Event>) {
        let info = self.locks.get_mut(lock).expect("waited-for lock has a record");
        let before = info.waiters.len();
        info.waiters.retain(|w| *w != sid);
        assert_eq!(info.waiters.len() + 1, before, "waiter was queued exactly once");
        let removed = self.sessions.get_mut(&sid).expect("waiter session").waiting.remove(lock);
        assert!(removed);
        events.push(Event::Dequeued { lock: lock.to_string(), session: sid });
        if self.locks.get(lock).is_some_and(LockInfo::is_empty) {
            self.locks.remove(lock);
        }
    }

    pub(super) fn lock_delay_over(
        &mut self,
        index: LogIndex,
        lock: &str,
        since: LogIndex,
        events: &mut Vec<Event>,
    ) {
        let Some(info) = self.locks.get_mut(lock) else { return };
        if info.delayed_since != Some(since) {
            return;
        }
        info.delayed_since = None;
        events.push(Event::LockDelayEnded { lock: lock.to_string(), since });
        self.hand_off(index, lock, events);
    }
}
