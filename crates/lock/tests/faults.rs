//! Testing faults show that the mechanisms they remove matter (design notes: "Sessions").
//!
//! `ExpireWithoutLog`: a leader that was deposed without noticing (paused, partitioned away)
//! expires a session on its own timer, in its own state. The real cluster, where the client
//! kept renewing at the new leader, still has the client holding the lock: two replicas now
//! disagree about who holds it, and the deposed one hands out a token nobody else knows.
//! With the fault off, the same node proposes nothing until it is a *ready* leader, and any
//! expiry it proposes takes effect only once a majority commits it.

mod common;

use std::time::Duration;

use common::{Replica, ms};
use palisade_lock::{Command, LeaderOp, LockConfig, LockTestingFault, Op, Reply};

const TTL: Duration = Duration::from_secs(10);

fn two_replicas(config: LockConfig) -> (Replica, Replica, palisade_lock::SessionId) {
    let mut old = Replica::new(config.clone());
    let mut new = Replica::new(config);
    let mut a = None;
    for r in [&mut old, &mut new] {
        a = Some(r.open(1, TTL));
        let b = r.open(2, TTL * 6);
        let sa = a.unwrap();
        r.request(1, Op::Acquire { session: sa, lock: "L".into(), wait: false }).unwrap();
        let queued = r.request(2, Op::Acquire { session: b, lock: "L".into(), wait: true });
        assert!(matches!(queued, Ok(Reply::Queued { .. })));
    }
    (old, new, a.unwrap())
}

/// The client renews at the new leader every 3 s; the old leader never hears of it.
fn renew_at_new_leader(new: &mut Replica, a: palisade_lock::SessionId, until_ms: u64) {
    let mut t = 3_000;
    while t < until_ms {
        new.now = ms(t);
        new.request(1, Op::KeepAlive { session: a }).unwrap();
        t += 3_000;
    }
}

#[test]
fn expire_without_log_lets_a_deposed_leader_split_the_brain() {
    let config = LockConfig {
        testing_fault: Some(LockTestingFault::ExpireWithoutLog),
        ..Default::default()
    };
    let (mut old, mut new, a) = two_replicas(config);
    // The old leader still believes it leads (it never applied an entry of a new term).
    old.tracker.handle_role(ms(0), true, false);
    renew_at_new_leader(&mut new, a, 30_000);
    let mut local_events = Vec::new();
    let mut t = 0;
    while t < 30_000 {
        t += 250;
        for op in old.tracker.handle_timeout(ms(t)) {
            if let LeaderOp::ExpireSession { session, .. } = op {
                assert!(old.tracker.expires_without_log());
                let applied = old.sm.apply_unlogged_expiry(session);
                old.tracker.handle_applied(ms(t), &applied);
                local_events.extend(applied.events);
            }
        }
    }
    assert!(!local_events.is_empty(), "the deposed leader expired A locally");
    // The deposed leader now answers "A's session is gone, nobody holds L" ...
    assert!(old.sm.session(a).is_none());
    assert!(old.sm.holder("L").is_none_or(|h| h.session != a));
    // ... while the cluster, where A kept renewing, knows A holds L.
    let cluster = new.sm.holder("L").expect("held in the cluster").clone();
    assert_eq!(cluster.session, a);
    println!("cluster: {cluster:?}; deposed leader: {:?}", old.sm.lock_info("L"));
}

#[test]
fn without_the_fault_an_unready_leader_expires_nothing() {
    let (mut old, _new, a) = two_replicas(LockConfig::default());
    old.tracker.handle_role(ms(0), true, false);
    for t in (0..60_000).step_by(250) {
        assert!(old.tracker.handle_timeout(ms(t)).is_empty());
    }
    // Even a *ready* leader only proposes; nothing changes until the entry is applied.
    old.tracker.handle_role(ms(60_000), true, true);
    let ops = old.tracker.handle_timeout(ms(60_000));
    assert!(
        ops.iter().any(|op| matches!(op, LeaderOp::ExpireSession { session, .. } if *session == a))
    );
    assert_eq!(old.sm.holder("L").unwrap().session, a, "proposing is not applying");
    for op in ops {
        old.apply(Command::Leader(op));
    }
    assert!(old.sm.session(a).is_none(), "applied through the log: now it is expired");
}
