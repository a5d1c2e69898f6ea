//! Figures 8-4 and 8-5 of the chapter, at the state-machine level.
//!
//! Figure 8-4: client A holds the lock, pauses past its lease, the lock goes to B, B writes,
//! A wakes up believing it still holds the lock and overwrites B's write — a lost update.
//! Figure 8-5: with fencing tokens, storage refuses A's write because it has seen a newer token.
//!
//! The token numbers are log indices: A's grant is arranged at index 33. B's token is not 34 as
//! in the figure: A's session ends with a committed `ExpireSession` (index 34), the lock-delay
//! ends with a committed `LockDelayOver` (35), and that entry hands the lock to B: token 35.

mod common;

use std::time::Duration;

use common::{Replica, ms};
use palisade_lock::{
    ClientLease, Event, FenceGuard, FenceRejectReason, FenceRejection, LeaderOp, LockConfig,
    LockGuardState, LockTestingFault, MemoryPersist, Op, Refused, Reply,
};

const A: u64 = 0xA;
const B: u64 = 0xB;
const TTL_A: Duration = Duration::from_secs(10);
const TTL_B: Duration = Duration::from_secs(120);

/// A's write and B's write, and what the store ended with.
struct Story {
    a_token: u64,
    b_token: u64,
    a_write: palisade_lock::Response,
    final_value: Vec<u8>,
}

/// The common story: A gets token 33, pauses 30 s after checking its lease, its session is
/// expired through the log, B (queued) gets the lock after the lock-delay and writes; A wakes
/// and writes with its old fence.
fn story(config: LockConfig) -> Story {
    let mut r = Replica::new(config.clone());
    r.lead();
    let a = r.open(A, TTL_A);
    let mut a_lease = ClientLease::new(TTL_A, config.drift_bound_ppm);
    let ka = a_lease.handle_keepalive_sent(ms(0).mono);
    a_lease.handle_keepalive_acked(ka, ms(0).mono);
    let b = r.open(B, TTL_B);

    r.next_index_is(33);
    let a_token = match r.request(A, Op::Acquire { session: a, lock: "L".into(), wait: false }) {
        Ok(Reply::Acquired { holder, .. }) => holder.token,
        other => panic!("A acquire: {other:?}"),
    };
    assert_eq!(a_token, 33);
    let queued = r.request(B, Op::Acquire { session: b, lock: "L".into(), wait: true });
    assert_eq!(queued, Ok(Reply::Queued { lock: "L".into(), position: 0 }));

    // A checks "is my lock still safe?" — yes — and is then stopped for 30 s.
    let guard = LockGuardState::new("L", a_token, a);
    let fence_a = guard.check(&a_lease, ms(1_000).mono).expect("safe right after renewal");

    // Meanwhile the leader times A's session, commits its expiry, then the lock-delay's end.
    let proposed = r.run_until(ms(31_000));
    let expiry =
        |op: &LeaderOp| matches!(op, LeaderOp::ExpireSession { session, .. } if *session == a);
    assert_eq!(proposed.iter().filter(|op| expiry(op)).count(), 1, "A expired through the log");
    let granted_b: Vec<u64> = r
        .log
        .iter()
        .flat_map(|(_, _, applied)| applied.events.iter())
        .filter_map(|e| match e {
            Event::Granted { session, token, .. } if *session == b => Some(*token),
            _ => None,
        })
        .collect();
    assert_eq!(granted_b.len(), 1, "B got the lock exactly once");
    let b_token = granted_b[0];
    assert!(b_token > a_token);
    // A's own lease had run out long before, on A's clock — but A is not looking.
    assert!(!a_lease.is_safe_now(ms(31_000).mono));

    // B writes with its fence; A wakes and writes with the fence it checked before the pause.
    let fence_b = palisade_lock::Fence { lock: "L".into(), token: b_token };
    assert!(r.put(B, "shared", b"B's update", Some(fence_b)).is_ok());
    let first_try = r.put(A, "shared", b"A's stale data", Some(fence_a.clone()));
    // A's session is gone, so the request is refused before the fence is even looked at...
    assert_eq!(first_try, Err(Refused::NoSession { client: A }));
    // ...but a naive client library reconnects, opens a new session and replays the write.
    r.open(A, TTL_A);
    let a_write = r.put(A, "shared", b"A's stale data", Some(fence_a));
    let final_value = r.sm.get("shared").map(|v| v.data.clone()).unwrap_or_default();
    Story { a_token, b_token, a_write, final_value }
}

#[test]
fn figure_8_5_fenced_kv_rejects_the_paused_holder() {
    let s = story(LockConfig::default());
    let why = FenceRejection::StaleToken { lock: "L".into(), presented: 33, current: s.b_token };
    assert_eq!(s.a_write, Err(Refused::Fence(why)));
    assert_eq!(s.final_value, b"B's update".to_vec());
}

#[test]
fn figure_8_5_stale_token_is_refused_even_from_a_live_session() {
    // A worker of B's client that still carries A's old fence (or A re-opened a session and
    // replays its pending write): the fence decides, and says why.
    let mut r = Replica::new(LockConfig::default());
    r.lead();
    let a = r.open(A, TTL_A);
    let b = r.open(B, TTL_B);
    r.next_index_is(33);
    r.request(A, Op::Acquire { session: a, lock: "L".into(), wait: false }).unwrap();
    r.request(B, Op::Acquire { session: b, lock: "L".into(), wait: true }).unwrap();
    r.run_until(ms(31_000));
    let b_token = r.sm.holder("L").expect("B holds L").token;
    let stale = palisade_lock::Fence { lock: "L".into(), token: 33 };
    let write = r.put(B, "shared", b"late", Some(stale));
    let why = FenceRejection::StaleToken { lock: "L".into(), presented: 33, current: b_token };
    assert_eq!(write, Err(Refused::Fence(why)));
}

#[test]
fn figure_8_4_without_fence_checks_the_update_is_lost() {
    let config =
        LockConfig { testing_fault: Some(LockTestingFault::FenceCheckOff), ..Default::default() };
    let s = story(config);
    assert!(s.a_write.is_ok(), "no check: the stale write is accepted");
    assert_eq!(s.final_value, b"A's stale data".to_vec(), "B's update is lost");
}

/// A storage service of somebody else's, which knows nothing about palisade.
#[derive(Default)]
struct ToyStore {
    value: Vec<u8>,
}

impl ToyStore {
    fn write(&mut self, value: &[u8]) {
        self.value = value.to_vec();
    }

    /// The same store with a FenceGuard in front: check and write in one critical section.
    fn guarded_write(
        &mut self,
        guard: &mut FenceGuard<MemoryPersist>,
        token: u64,
        value: &[u8],
    ) -> Result<(), palisade_lock::FenceRejected> {
        guard.check_and_record("shared", token)?;
        self.write(value);
        Ok(())
    }
}

#[test]
fn figure_8_4_and_8_5_with_an_external_store() {
    let s = story(LockConfig::default());
    assert!(s.a_write.is_err());
    // B's write, then A's late write, against storage that does not check tokens...
    let mut unchecked = ToyStore::default();
    unchecked.write(b"B's update");
    unchecked.write(b"A's stale data");
    assert_eq!(unchecked.value, b"A's stale data".to_vec(), "figure 8-4: B's update is lost");

    // ...and the same two writes through a FenceGuard (figure 8-5).
    let mut guard = FenceGuard::new(MemoryPersist::default());
    let mut checked = ToyStore::default();
    checked.guarded_write(&mut guard, s.b_token, b"B's update").expect("B's token accepted");
    let rejected = checked.guarded_write(&mut guard, s.a_token, b"A's stale data").unwrap_err();
    assert_eq!(rejected.reason, FenceRejectReason::StaleToken);
    assert_eq!((rejected.presented, rejected.highest), (33, Some(s.b_token)));
    assert_eq!(checked.value, b"B's update".to_vec(), "figure 8-5: A's write never happens");
    assert_eq!(s.final_value, b"B's update".to_vec());
}
