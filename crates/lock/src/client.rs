//! The client's lease core, sans-IO: "is my lock still safe to use right now?".
//!
//! Why the client keeps its own, shorter lease: the server decides expiry, but the client
//! cannot ask the server before every write — the answer would be stale on arrival anyway. So
//! the client keeps a conservative local belief that provably ends before the server can
//! expire the session:
//!
//! - it is counted from when the keepalive was **sent** (the server renewed the session at some
//!   later moment, so this under-estimates), and only once the keepalive is **acknowledged** (the
//!   server acknowledges only after the keepalive committed and applied, so a deposed leader
//!   cannot acknowledge one);
//! - it lasts `shrink(T, 2ρ) - LEASE_SAFETY_MARGIN` on the client's monotonic clock. With every
//!   clock within ρ of real time, that local wait lasts at most `T(1-2ρ)/(1-ρ) < T` real time,
//!   while the server's deadline (`stretch(T, ρ)` on its clock from after the send) lasts at
//!   least `T`. So the local lease ends before the server's deadline for every drift within the
//!   bound (property-tested in `tests/lease.rs`; the `TrustLeaseWithoutDriftMargin` fault shows
//!   the margin is needed).
//!
//! States: `Pending` (no acknowledgement yet), `Held`, `Jeopardy` (renewal is late: less than
//! `T / JEOPARDY_THRESHOLD_DIVISOR` left, or the last keepalive failed — warn, stop starting new
//! work), `Lost` (the local lease ran out, or the server said the session expired; final — open
//! a new session). A pause between `is_safe_now()` and the write it guards is *not* covered: that
//! is what the fencing token ([`LockGuardState::fence`]) is for.
//!
//! A retransmission of the same keepalive request (same `RequestId`) must keep the
//! [`KeepaliveId`] of its first send: the lease must count from the earliest send.

use std::collections::VecDeque;
use std::time::Duration;

use palisade_clock::{MonoInstant, shrink};
use serde::{Deserialize, Serialize};

use crate::command::{Fence, SessionId, Token};
use crate::limits::{
    JEOPARDY_THRESHOLD_DIVISOR, KEEPALIVE_INTERVAL_DIVISOR, KEEPALIVE_RETRY_DIVISOR,
    KEEPALIVES_IN_FLIGHT_MAX, LEASE_SAFETY_MARGIN,
};

/// Deliberately broken client variants, **for tests only**.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientTestingFault {
    /// The local lease runs `sent + T`, without the drift margin: a slow client clock can
    /// believe in the lease after the server expired the session.
    TrustLeaseWithoutDriftMargin,
}

/// Identifies one sent keepalive (or OpenSession) for its acknowledgement.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeepaliveId(u64);

/// The client's view of its session.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LeaseState {
    /// Nothing acknowledged yet: not safe.
    Pending,
    /// Renewed recently: safe.
    Held,
    /// Still safe, but renewal is overdue or failing: finish, don't start.
    Jeopardy,
    /// Not safe, and never again for this session.
    Lost,
}

/// The sans-IO client lease core; one per session. Call order: `handle_keepalive_sent` when
/// sending OpenSession or KeepAlive, then `handle_keepalive_acked` or
/// `handle_keepalive_failed`; `handle_session_expired` when the server says so; query
/// `state`/`is_safe_now` before acting and `next_keepalive_at` to schedule the next send.
#[derive(Clone, Debug)]
pub struct ClientLease {
    ttl: Duration,
    drift_bound_ppm: u32,
    fault: Option<ClientTestingFault>,
    in_flight: VecDeque<(KeepaliveId, MonoInstant)>,
    next_id: u64,
    valid_until: Option<MonoInstant>,
    last_sent: Option<MonoInstant>,
    failing_since: Option<MonoInstant>,
    lost: bool,
}

impl ClientLease {
    /// A lease for a session with TTL `ttl` under the drift bound `drift_bound_ppm`.
    pub fn new(ttl: Duration, drift_bound_ppm: u32) -> Self {
        assert!(!ttl.is_zero(), "a lease needs a positive TTL");
        ClientLease {
            ttl,
            drift_bound_ppm,
            fault: None,
            in_flight: VecDeque::new(),
            next_id: 0,
            valid_until: None,
            last_sent: None,
            failing_since: None,
            lost: false,
        }
    }

    /// The same lease with a testing fault (tests only).
    pub fn with_testing_fault(mut self, fault: ClientTestingFault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// How long after its send an acknowledged keepalive keeps the lease.
    pub fn lease_len(&self) -> Duration {
        match self.fault {
            Some(ClientTestingFault::TrustLeaseWithoutDriftMargin) => self.ttl,
            None => shrink(self.ttl, self.drift_bound_ppm.saturating_mul(2))
                .saturating_sub(LEASE_SAFETY_MARGIN),
        }
    }

    /// A keepalive (or the OpenSession) is being sent now.
    pub fn handle_keepalive_sent(&mut self, now: MonoInstant) -> KeepaliveId {
        let id = KeepaliveId(self.next_id);
        self.next_id += 1;
        if self.in_flight.len() == KEEPALIVES_IN_FLIGHT_MAX {
            self.in_flight.pop_front();
        }
        self.in_flight.push_back((id, now));
        self.last_sent = Some(now);
        id
    }

    /// The server acknowledged keepalive `id` (it committed and applied).
    pub fn handle_keepalive_acked(&mut self, id: KeepaliveId, now: MonoInstant) {
        let Some(pos) = self.in_flight.iter().position(|(k, _)| *k == id) else { return };
        let (_, sent) = self.in_flight.remove(pos).expect("position is in range");
        if self.lost || self.valid_until.is_some_and(|v| now >= v) {
            // The lease ran out before this ack: the session may already be expired.
            self.lost = true;
            return;
        }
        let until = sent + self.lease_len();
        self.valid_until = Some(self.valid_until.map_or(until, |v| v.max(until)));
        self.failing_since = None;
    }

    /// A keepalive failed (timeout, no leader, connection lost); the lease keeps running out.
    pub fn handle_keepalive_failed(&mut self, now: MonoInstant) {
        self.failing_since.get_or_insert(now);
    }

    /// The server said the session is gone: the lease is lost for good.
    pub fn handle_session_expired(&mut self) {
        self.lost = true;
    }

    /// The state at `now`.
    #[inline]
    pub fn state(&self, now: MonoInstant) -> LeaseState {
        if self.lost {
            return LeaseState::Lost;
        }
        match self.valid_until {
            None => LeaseState::Pending,
            Some(v) if now >= v => LeaseState::Lost,
            Some(v) => {
                let jeopardy = self.ttl / JEOPARDY_THRESHOLD_DIVISOR;
                if self.failing_since.is_some() || v - now < jeopardy {
                    LeaseState::Jeopardy
                } else {
                    LeaseState::Held
                }
            }
        }
    }

    /// The end of the local lease, if one was ever acknowledged.
    pub fn valid_until(&self) -> Option<MonoInstant> {
        if self.lost { None } else { self.valid_until }
    }

    /// Held or Jeopardy: the lease has not run out.
    #[inline]
    pub fn is_safe_now(&self, now: MonoInstant) -> bool {
        matches!(self.state(now), LeaseState::Held | LeaseState::Jeopardy)
    }

    /// When to send the next keepalive: `T / KEEPALIVE_INTERVAL_DIVISOR` after the last send,
    /// or, while keepalives fail, `T / KEEPALIVE_RETRY_DIVISOR` after the later of the last send
    /// and the first failure. `None` once lost or before any send.
    pub fn next_keepalive_at(&self) -> Option<MonoInstant> {
        if self.lost {
            return None;
        }
        let last = self.last_sent?;
        Some(match self.failing_since {
            Some(f) => last.max(f) + self.ttl / KEEPALIVE_RETRY_DIVISOR,
            None => last + self.ttl / KEEPALIVE_INTERVAL_DIVISOR,
        })
    }

    /// The session TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// Why a held lock must not be used right now.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum LockUnsafe {
    /// The lock was released.
    Released,
    /// The session lease is not safe (`Pending` or `Lost`).
    Lease(LeaseState),
}

/// A held lock tied to its session's lease: the client-side answer to "may I use it now?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockGuardState {
    lock: String,
    token: Token,
    session: SessionId,
    released: bool,
}

impl LockGuardState {
    /// A lock granted to `session` with `token`.
    pub fn new(lock: impl Into<String>, token: Token, session: SessionId) -> Self {
        LockGuardState { lock: lock.into(), token, session, released: false }
    }

    /// The lock name.
    pub fn lock(&self) -> &str {
        &self.lock
    }

    /// The grant's fencing token.
    pub fn token(&self) -> Token {
        self.token
    }

    /// The holding session.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The fence to attach to every write guarded by this lock.
    pub fn fence(&self) -> Fence {
        Fence { lock: self.lock.clone(), token: self.token }
    }

    /// The lock was released (by us, or the server reported it).
    pub fn handle_released(&mut self) {
        self.released = true;
    }

    /// The fence to write with, if the lock may be used at `now`; otherwise why not. Even
    /// `Ok` does not cover a pause after this call: the storage must check the fence.
    pub fn check(&self, lease: &ClientLease, now: MonoInstant) -> Result<Fence, LockUnsafe> {
        if self.released {
            return Err(LockUnsafe::Released);
        }
        match lease.state(now) {
            LeaseState::Held | LeaseState::Jeopardy => Ok(self.fence()),
            other => Err(LockUnsafe::Lease(other)),
        }
    }

    /// [`LockGuardState::check`] as a boolean.
    pub fn is_safe_now(&self, lease: &ClientLease, now: MonoInstant) -> bool {
        self.check(lease, now).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(9);

    fn at(ms: u64) -> MonoInstant {
        MonoInstant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn lease_runs_from_send_not_from_ack() {
        let mut l = ClientLease::new(T, 500);
        let id = l.handle_keepalive_sent(at(0));
        assert_eq!(l.state(at(1)), LeaseState::Pending);
        l.handle_keepalive_acked(id, at(2_000));
        let until = l.valid_until().unwrap();
        assert_eq!(until, (at(0) + shrink(T, 1000)).saturating_sub(LEASE_SAFETY_MARGIN));
        assert!(until < at(9_000));
        assert_eq!(l.state(at(2_000)), LeaseState::Held);
        assert_eq!(l.state(until.saturating_sub(Duration::from_nanos(1))), LeaseState::Jeopardy);
        assert_eq!(l.state(until), LeaseState::Lost);
    }

    #[test]
    fn failures_give_jeopardy_then_lost_is_final() {
        let mut l = ClientLease::new(T, 500);
        let id = l.handle_keepalive_sent(at(0));
        l.handle_keepalive_acked(id, at(10));
        assert_eq!(l.next_keepalive_at(), Some(at(3_000)));
        let late = l.handle_keepalive_sent(at(3_000));
        l.handle_keepalive_failed(at(3_500));
        assert_eq!(l.state(at(3_600)), LeaseState::Jeopardy);
        assert_eq!(l.next_keepalive_at(), Some(at(4_400)));
        // Retrying does not make the next retry due at once.
        l.handle_keepalive_sent(at(4_400));
        assert_eq!(l.next_keepalive_at(), Some(at(5_300)));
        // The ack arrives after the lease ran out: it cannot revive it.
        l.handle_keepalive_acked(late, at(9_500));
        assert_eq!(l.state(at(9_500)), LeaseState::Lost);
        assert!(!l.is_safe_now(at(9_500)));
        assert_eq!(l.next_keepalive_at(), None);
    }

    #[test]
    fn server_expiry_is_lost_even_with_time_left() {
        let mut l = ClientLease::new(T, 500);
        let id = l.handle_keepalive_sent(at(0));
        l.handle_keepalive_acked(id, at(1));
        let guard = LockGuardState::new("L", 33, SessionId(1));
        assert_eq!(guard.check(&l, at(2)), Ok(Fence { lock: "L".into(), token: 33 }));
        l.handle_session_expired();
        assert_eq!(guard.check(&l, at(2)), Err(LockUnsafe::Lease(LeaseState::Lost)));
    }

    #[test]
    fn released_guard_is_not_safe() {
        let mut l = ClientLease::new(T, 500);
        let id = l.handle_keepalive_sent(at(0));
        l.handle_keepalive_acked(id, at(1));
        let mut guard = LockGuardState::new("L", 7, SessionId(1));
        guard.handle_released();
        assert_eq!(guard.check(&l, at(2)), Err(LockUnsafe::Released));
    }

    #[test]
    fn unknown_or_forgotten_acks_are_ignored() {
        let mut l = ClientLease::new(T, 500);
        let first = l.handle_keepalive_sent(at(0));
        for i in 1..=KEEPALIVES_IN_FLIGHT_MAX as u64 {
            l.handle_keepalive_sent(at(i));
        }
        l.handle_keepalive_acked(first, at(100));
        assert_eq!(l.state(at(100)), LeaseState::Pending);
    }
}
