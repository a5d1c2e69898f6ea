//! Unit tests of the state machine's rules (design notes: "Locks and tokens", "Exactly once").

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::command::{Expect, Fence, Op, Request};
use crate::response::{FenceRejection, Refused, Reply};

const TTL: Duration = Duration::from_secs(10);

struct H {
    sm: LockStateMachine,
    index: LogIndex,
    seq: BTreeMap<u64, u64>,
}

impl H {
    fn new() -> Self {
        H { sm: LockStateMachine::new(LockConfig::default()), index: 0, seq: BTreeMap::new() }
    }

    fn apply(&mut self, cmd: Command) -> Applied {
        self.index += 1;
        let a = self.sm.apply(self.index, &cmd);
        self.sm.check_invariants().unwrap();
        a
    }

    fn req(&mut self, client: u64, op: Op) -> Response {
        let seq = self.seq.entry(client).or_insert(0);
        *seq += 1;
        let id = RequestId { client, seq: *seq };
        self.apply(Command::Client(Request { id, op })).response.unwrap().1
    }

    fn open(&mut self, client: u64) -> SessionId {
        match self.req(client, Op::OpenSession { ttl: TTL }) {
            Ok(Reply::SessionOpened { session, .. }) => session,
            other => panic!("open: {other:?}"),
        }
    }

    fn acquire(&mut self, client: u64, session: SessionId, lock: &str, wait: bool) -> Response {
        self.req(client, Op::Acquire { session, lock: lock.into(), wait })
    }

    fn put(&mut self, client: u64, key: &str, fence: Option<Fence>) -> Response {
        let hlc = HlcTimestamp::new(1_000, 0);
        self.req(client, Op::Put { key: key.into(), value: b"v".to_vec(), fence, hlc })
    }
}

fn token_of(r: &Response) -> Token {
    match r {
        Ok(Reply::Acquired { holder, .. }) => holder.token,
        other => panic!("not acquired: {other:?}"),
    }
}

#[test]
fn session_id_is_the_open_index_and_one_session_per_client() {
    let mut h = H::new();
    h.index = 6;
    let s = h.open(1);
    assert_eq!(s, SessionId(7));
    assert_eq!(h.req(1, Op::OpenSession { ttl: TTL }), Err(Refused::SessionExists { session: s }));
    let r = h.req(2, Op::KeepAlive { session: s });
    assert_eq!(r, Err(Refused::NoSession { client: 2 }));
}

#[test]
fn token_is_the_granting_index() {
    let mut h = H::new();
    let a = h.open(1);
    h.index = 32;
    assert_eq!(token_of(&h.acquire(1, a, "L", false)), 33);
    assert_eq!(h.sm.last_token(), 33);
}

#[test]
fn reentrant_acquire_returns_the_same_grant() {
    let mut h = H::new();
    let a = h.open(1);
    let first = token_of(&h.acquire(1, a, "L", false));
    match h.acquire(1, a, "L", true) {
        Ok(Reply::Acquired { holder, reentrant: true, .. }) => assert_eq!(holder.token, first),
        other => panic!("{other:?}"),
    }
    // One release releases it.
    assert!(h.req(1, Op::Release { session: a, lock: "L".into() }).is_ok());
    assert!(h.sm.lock_info("L").is_none());
}

#[test]
fn fifo_hand_off_in_the_release_step() {
    let mut h = H::new();
    let (a, b, c) = (h.open(1), h.open(2), h.open(3));
    h.acquire(1, a, "L", false).unwrap();
    assert_eq!(h.acquire(2, b, "L", true), Ok(Reply::Queued { lock: "L".into(), position: 0 }));
    assert_eq!(h.acquire(3, c, "L", true), Ok(Reply::Queued { lock: "L".into(), position: 1 }));
    // Retried acquire by a waiter: same position, no double enqueue.
    assert_eq!(h.acquire(3, c, "L", true), Ok(Reply::Queued { lock: "L".into(), position: 1 }));
    match h.req(1, Op::Release { session: a, lock: "L".into() }) {
        Ok(Reply::Released { next: Some(next), .. }) => {
            assert_eq!(next.session, b);
            assert_eq!(next.token, h.index);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.sm.holder("L").unwrap().session, b);
    assert_eq!(h.sm.lock_info("L").unwrap().waiters, vec![c]);
}

#[test]
fn try_acquire_reports_the_holder() {
    let mut h = H::new();
    let (a, b) = (h.open(1), h.open(2));
    let t = token_of(&h.acquire(1, a, "L", false));
    match h.acquire(2, b, "L", false) {
        Ok(Reply::Busy { holder: Some(holder), delayed_since: None, .. }) => {
            assert_eq!((holder.session, holder.token, holder.client), (a, t, 1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn release_by_non_holder_is_refused_and_by_waiter_dequeues() {
    let mut h = H::new();
    let (a, b, c) = (h.open(1), h.open(2), h.open(3));
    h.acquire(1, a, "L", false).unwrap();
    h.acquire(2, b, "L", true).unwrap();
    let r = h.req(3, Op::Release { session: c, lock: "L".into() });
    assert_eq!(r, Err(Refused::NotHolder { lock: "L".into(), session: c }));
    let r = h.req(2, Op::Release { session: b, lock: "L".into() });
    assert_eq!(r, Ok(Reply::Dequeued { lock: "L".into() }));
    // Using another client's session is refused.
    let r = h.req(3, Op::Release { session: a, lock: "L".into() });
    assert_eq!(r, Err(Refused::NotSessionOwner { session: a }));
}

#[test]
fn expiry_releases_with_lock_delay_then_hands_off() {
    let mut h = H::new();
    let (a, b) = (h.open(1), h.open(2));
    h.acquire(1, a, "L", false).unwrap();
    h.acquire(2, b, "L", true).unwrap();
    let basis = h.sm.session(a).unwrap().basis;
    // A stale expiry (wrong basis) is a no-op.
    let stale = h.apply(Command::Leader(LeaderOp::ExpireSession { session: a, basis: basis - 1 }));
    assert!(stale.events.is_empty());
    let exp = h.apply(Command::Leader(LeaderOp::ExpireSession { session: a, basis }));
    let since = h.index;
    assert!(exp.events.contains(&Event::LockDelayStarted { lock: "L".into(), since }));
    assert!(h.sm.session(a).is_none());
    let info = h.sm.lock_info("L").unwrap();
    assert_eq!((info.holder.clone(), info.delayed_since), (None, Some(since)));
    // Nobody gets it during the delay.
    let c = h.open(3);
    assert!(matches!(h.acquire(3, c, "L", false), Ok(Reply::Busy { holder: None, .. })));
    let over = h.apply(Command::Leader(LeaderOp::LockDelayOver { lock: "L".into(), since }));
    let granted =
        over.events.iter().any(|e| matches!(e, Event::Granted { session, .. } if *session == b));
    assert!(granted, "{:?}", over.events);
}

#[test]
fn close_hands_off_at_once() {
    let mut h = H::new();
    let (a, b) = (h.open(1), h.open(2));
    h.acquire(1, a, "L", false).unwrap();
    h.acquire(2, b, "L", true).unwrap();
    assert_eq!(h.req(1, Op::CloseSession { session: a }), Ok(Reply::SessionClosed { session: a }));
    assert_eq!(h.sm.holder("L").unwrap().session, b);
    assert_eq!(h.sm.lock_info("L").unwrap().delayed_since, None);
}

#[test]
fn one_expiry_releasing_two_locks_gives_increasing_tokens() {
    let mut h = H::new();
    let (a, b) = (h.open(1), h.open(2));
    h.acquire(1, a, "L1", false).unwrap();
    h.acquire(1, a, "L2", false).unwrap();
    h.acquire(2, b, "L1", true).unwrap();
    h.acquire(2, b, "L2", true).unwrap();
    h.req(1, Op::CloseSession { session: a }).unwrap();
    let t1 = h.sm.holder("L1").unwrap().token;
    let t2 = h.sm.holder("L2").unwrap().token;
    assert_eq!((t1, t2), (h.index, h.index + 1));
    // The next entry's grant must still be above: max(index, last + 1).
    let c = h.open(3);
    let t3 = token_of(&h.acquire(3, c, "L3", false));
    assert!(t3 > t2);
}

#[test]
fn fence_rejections_say_why() {
    let mut h = H::new();
    let (a, b) = (h.open(1), h.open(2));
    let ta = token_of(&h.acquire(1, a, "L", false));
    assert!(h.put(1, "k", Some(Fence { lock: "L".into(), token: ta })).is_ok());
    let r = h.put(1, "k", Some(Fence { lock: "M".into(), token: ta }));
    let unknown = FenceRejection::UnknownLock { lock: "M".into(), presented: ta };
    assert_eq!(r, Err(Refused::Fence(unknown)));
    h.acquire(2, b, "L", true).unwrap();
    h.req(1, Op::Release { session: a, lock: "L".into() }).unwrap();
    let tb = h.sm.holder("L").unwrap().token;
    let r = h.put(1, "k", Some(Fence { lock: "L".into(), token: ta }));
    let stale = FenceRejection::StaleToken { lock: "L".into(), presented: ta, current: tb };
    assert_eq!(r, Err(Refused::Fence(stale)));
    // Expiry with lock-delay: the lock is known but not held.
    let basis = h.sm.session(b).unwrap().basis;
    let c = h.open(3);
    h.acquire(3, c, "L", true).unwrap();
    h.apply(Command::Leader(LeaderOp::ExpireSession { session: b, basis }));
    let r = h.put(3, "k", Some(Fence { lock: "L".into(), token: tb }));
    let not_held = FenceRejection::LockNotHeld { lock: "L".into(), presented: tb };
    assert_eq!(r, Err(Refused::Fence(not_held)));
}

#[test]
fn dedup_returns_the_first_result_and_refuses_older_seqs() {
    let mut h = H::new();
    let a = h.open(1);
    let id = RequestId { client: 1, seq: 10 };
    let acquire = Command::Client(Request {
        id,
        op: Op::Acquire { session: a, lock: "L".into(), wait: false },
    });
    let first = h.apply(acquire.clone());
    let again = h.apply(acquire.clone());
    assert_eq!(first.response, again.response);
    assert!(again.events.is_empty(), "a duplicate changes nothing");
    let old = Command::Client(Request {
        id: RequestId { client: 1, seq: 9 },
        op: Op::Release { session: a, lock: "L".into() },
    });
    let r = h.apply(old).response.unwrap().1;
    assert_eq!(r, Err(Refused::StaleRequest { seq: 9, last: 10 }));
    assert_eq!(h.sm.holder("L").map(|h| h.session), Some(a), "the stale release did not run");
}

#[test]
fn keepalives_bypass_the_dedup_slot() {
    let mut h = H::new();
    let a = h.open(1);
    let acquire = Command::Client(Request {
        id: RequestId { client: 1, seq: 10 },
        op: Op::Acquire { session: a, lock: "L".into(), wait: false },
    });
    let first = h.apply(acquire.clone());
    // Keepalives with any seq (older, equal, newer) renew and leave the slot alone.
    for seq in [3, 10, 11, 11] {
        let keep = Command::Client(Request {
            id: RequestId { client: 1, seq },
            op: Op::KeepAlive { session: a },
        });
        let applied = h.apply(keep);
        assert_eq!(applied.response.unwrap().1, Ok(Reply::Renewed { session: a, ttl: TTL }));
        assert_eq!(
            applied.events,
            vec![Event::SessionRenewed { session: a, basis: h.index, remaining: TTL }],
            "a repeated keepalive renews again, from its own entry"
        );
        assert_eq!(h.sm.session(a).unwrap().basis, h.index);
    }
    // The acquire (seq 10) is still the one the slot remembers: its retry is deduplicated.
    let again = h.apply(acquire);
    assert_eq!(first.response, again.response);
    assert!(again.events.is_empty());
    assert_eq!(h.sm.session(a).unwrap().last_seq, 10);
}

#[test]
fn cas_and_versions() {
    let mut h = H::new();
    h.open(1);
    let hlc = HlcTimestamp::new(5, 0);
    let cas =
        |expected| Op::Cas { key: "k".into(), expected, value: b"1".to_vec(), fence: None, hlc };
    let v1 = match h.req(1, cas(Expect::Absent)) {
        Ok(Reply::Written { version, .. }) => version,
        other => panic!("{other:?}"),
    };
    assert_eq!(v1, hlc);
    let r = h.req(1, cas(Expect::Absent));
    assert_eq!(r, Err(Refused::CasMismatch { current: Some(v1) }));
    // The same (old) HLC again gets a strictly larger version.
    let v2 = match h.req(1, cas(Expect::Version(v1))) {
        Ok(Reply::Written { version, .. }) => version,
        other => panic!("{other:?}"),
    };
    assert!(v2 > v1);
    assert!(h.req(1, cas(Expect::Value(b"1".to_vec()))).is_ok());
    let del = h.req(1, Op::Delete { key: "k".into(), fence: None, hlc });
    assert!(matches!(del, Ok(Reply::Deleted { existed: true, .. })));
    assert!(h.sm.get("k").is_none());
}

#[test]
fn checkpoint_moves_basis_only_if_unchanged() {
    let mut h = H::new();
    let a = h.open(1);
    let basis = h.sm.session(a).unwrap().basis;
    let line = |basis| crate::command::CheckpointEntry { session: a, basis, remaining: TTL / 2 };
    h.apply(Command::Leader(LeaderOp::Checkpoint(vec![line(basis)])));
    assert_eq!(h.sm.session(a).unwrap().basis, h.index);
    assert_eq!(h.sm.session(a).unwrap().remaining, TTL / 2);
    let now_basis = h.index;
    h.apply(Command::Leader(LeaderOp::Checkpoint(vec![line(basis)])));
    assert_eq!(h.sm.session(a).unwrap().basis, now_basis, "stale line ignored");
}

#[test]
fn restore_rejects_garbage_without_panicking() {
    assert!(LockStateMachine::restore(&[]).is_err());
    assert!(LockStateMachine::restore(&[9, 1, 2]).is_err());
    let mut h = H::new();
    let a = h.open(1);
    h.acquire(1, a, "L", false).unwrap();
    let snap = h.sm.snapshot();
    for cut in 0..snap.len() {
        let _ = LockStateMachine::restore(&snap[..cut]);
    }
    let mut flipped = snap.clone();
    for i in 1..flipped.len() {
        flipped[i] ^= 0x55;
        let _ = LockStateMachine::restore(&flipped);
        flipped[i] ^= 0x55;
    }
    assert_eq!(LockStateMachine::restore(&snap).unwrap(), h.sm);
}
