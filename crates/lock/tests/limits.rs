//! Every named limit gives a clear, typed refusal at apply (and from `validate`, for the static
//! ones, so the leader can refuse before proposing). Design notes: "Locks and tokens", limits.

mod common;

use std::time::Duration;

use common::Replica;
use palisade_lock::{
    CHECKPOINT_SESSIONS_MAX, COMMAND_BYTES_MAX, CheckpointEntry, Command, KEY_BYTES_MAX, KEYS_MAX,
    KV_BYTES_MAX, LOCK_NAME_BYTES_MAX, LOCKS_MAX, LOCKS_PER_SESSION_MAX, LeaderOp, Limit,
    LimitExceeded, LockConfig, LockError, NameKind, Op, Refused, Reply, Request, RequestId,
    SESSIONS_MAX, SessionId, VALUE_BYTES_MAX, WAITERS_PER_LOCK_MAX,
};

const TTL: Duration = Duration::from_secs(30);

fn limit(r: palisade_lock::Response) -> LimitExceeded {
    match r {
        Err(Refused::Limit(e)) => e,
        other => panic!("expected a limit refusal, got {other:?}"),
    }
}

fn n(x: usize) -> u64 {
    x as u64
}

#[test]
fn ttl_outside_the_configured_range() {
    let config = LockConfig::default();
    let mut r = Replica::bulk(config.clone());
    let low = limit(r.request(1, Op::OpenSession { ttl: Duration::from_secs(1) }));
    assert_eq!(low.limit, Limit::TtlMin);
    assert_eq!(low.bound, config.ttl_min.as_nanos() as u64);
    let high = limit(r.request(1, Op::OpenSession { ttl: Duration::from_secs(100_000) }));
    assert_eq!(high.limit, Limit::TtlMax);
    assert!(high.to_string().contains("ttl_max"), "{high}");
}

#[test]
fn name_key_and_value_sizes() {
    let mut r = Replica::bulk(LockConfig::default());
    let s = r.open(1, TTL);
    let long_lock = "l".repeat(LOCK_NAME_BYTES_MAX + 1);
    let e = limit(r.request(1, Op::Acquire { session: s, lock: long_lock, wait: false }));
    assert_eq!(
        e,
        LimitExceeded::new(
            Limit::LockNameBytes,
            n(LOCK_NAME_BYTES_MAX + 1),
            n(LOCK_NAME_BYTES_MAX)
        )
    );
    let empty = r.request(1, Op::Acquire { session: s, lock: String::new(), wait: false });
    assert_eq!(empty, Err(Refused::EmptyName { kind: NameKind::Lock }));
    let e = limit(r.put(1, &"k".repeat(KEY_BYTES_MAX + 1), b"v", None));
    assert_eq!(e.limit, Limit::KeyBytes);
    let e = limit(r.put(1, "k", &vec![0; VALUE_BYTES_MAX + 1], None));
    assert_eq!(
        e,
        LimitExceeded::new(Limit::ValueBytes, n(VALUE_BYTES_MAX + 1), n(VALUE_BYTES_MAX))
    );
    // Exactly at the limits is fine.
    assert!(r.put(1, &"k".repeat(KEY_BYTES_MAX), &vec![0; VALUE_BYTES_MAX], None).is_ok());
}

#[test]
fn static_limits_are_refused_before_proposing() {
    let config = LockConfig::default();
    let req = Request {
        id: RequestId { client: 1, seq: 1 },
        op: Op::Acquire {
            session: SessionId(1),
            lock: "x".repeat(LOCK_NAME_BYTES_MAX + 1),
            wait: true,
        },
    };
    assert!(matches!(req.validate(&config), Err(Refused::Limit(_))));
    let lines = (0..=CHECKPOINT_SESSIONS_MAX as u64)
        .map(|i| CheckpointEntry { session: SessionId(i), basis: i, remaining: TTL })
        .collect();
    let e = Command::Leader(LeaderOp::Checkpoint(lines)).validate(&config).unwrap_err();
    assert_eq!(
        e,
        Refused::Limit(LimitExceeded::new(
            Limit::CheckpointSessions,
            n(CHECKPOINT_SESSIONS_MAX + 1),
            n(CHECKPOINT_SESSIONS_MAX),
        ))
    );
    // An oversized command cannot even be encoded.
    let huge = Command::Client(Request {
        id: RequestId { client: 1, seq: 1 },
        op: Op::Put {
            key: "k".into(),
            value: vec![0; COMMAND_BYTES_MAX],
            fence: None,
            hlc: Default::default(),
        },
    });
    assert!(matches!(huge.encode(), Err(LockError::TooLarge { what: "command", .. })));
}

#[test]
fn locks_per_session() {
    let mut r = Replica::bulk(LockConfig::default());
    let s = r.open(1, TTL);
    for i in 0..LOCKS_PER_SESSION_MAX {
        r.request(1, Op::Acquire { session: s, lock: format!("l{i}"), wait: false }).unwrap();
    }
    let e = limit(r.request(1, Op::Acquire { session: s, lock: "one-more".into(), wait: false }));
    assert_eq!(
        e,
        LimitExceeded::new(
            Limit::LocksPerSession,
            n(LOCKS_PER_SESSION_MAX + 1),
            n(LOCKS_PER_SESSION_MAX)
        )
    );
    // Re-acquiring a held lock is not a new lock.
    assert!(r.request(1, Op::Acquire { session: s, lock: "l0".into(), wait: false }).is_ok());
    r.finish();
}

#[test]
fn waiters_per_lock() {
    let mut r = Replica::bulk(LockConfig::default());
    let holder = r.open(1, TTL);
    r.request(1, Op::Acquire { session: holder, lock: "L".into(), wait: false }).unwrap();
    for c in 0..WAITERS_PER_LOCK_MAX as u64 {
        let s = r.open(100 + c, TTL);
        let queued = r.request(100 + c, Op::Acquire { session: s, lock: "L".into(), wait: true });
        assert!(matches!(queued, Ok(Reply::Queued { .. })));
    }
    let late = r.open(99, TTL);
    let e = limit(r.request(99, Op::Acquire { session: late, lock: "L".into(), wait: true }));
    assert_eq!(
        e,
        LimitExceeded::new(
            Limit::WaitersPerLock,
            n(WAITERS_PER_LOCK_MAX + 1),
            n(WAITERS_PER_LOCK_MAX)
        )
    );
    // Try-acquire still answers with the holder.
    assert!(matches!(
        r.request(99, Op::Acquire { session: late, lock: "L".into(), wait: false }),
        Ok(Reply::Busy { .. })
    ));
    r.finish();
}

#[test]
fn sessions() {
    let mut r = Replica::bulk(LockConfig::default());
    for c in 0..SESSIONS_MAX as u64 {
        r.open(c + 1, TTL);
    }
    let e = limit(r.request(u64::MAX, Op::OpenSession { ttl: TTL }));
    assert_eq!(e, LimitExceeded::new(Limit::Sessions, n(SESSIONS_MAX + 1), n(SESSIONS_MAX)));
    r.finish();
}

#[test]
fn locks_in_the_cluster() {
    let mut r = Replica::bulk(LockConfig::default());
    let mut made = 0;
    let mut client = 1;
    while made < LOCKS_MAX {
        let s = r.open(client, TTL);
        for _ in 0..LOCKS_PER_SESSION_MAX.min(LOCKS_MAX - made) {
            r.request(client, Op::Acquire { session: s, lock: format!("l{made}"), wait: false })
                .unwrap();
            made += 1;
        }
        client += 1;
    }
    let s = r.open(client, TTL);
    let e = limit(r.request(client, Op::Acquire { session: s, lock: "new".into(), wait: false }));
    assert_eq!(e, LimitExceeded::new(Limit::Locks, n(LOCKS_MAX + 1), n(LOCKS_MAX)));
    r.finish();
}

#[test]
fn keys() {
    let mut r = Replica::bulk(LockConfig::default());
    r.open(1, TTL);
    for i in 0..KEYS_MAX {
        r.put(1, &format!("k{i}"), b"", None).unwrap();
    }
    let e = limit(r.put(1, "new", b"", None));
    assert_eq!(e, LimitExceeded::new(Limit::Keys, n(KEYS_MAX + 1), n(KEYS_MAX)));
    // Overwriting an existing key is not a new key.
    assert!(r.put(1, "k0", b"x", None).is_ok());
    r.finish();
}

#[test]
fn kv_bytes() {
    let mut r = Replica::bulk(LockConfig::default());
    r.open(1, TTL);
    let value = vec![7u8; VALUE_BYTES_MAX];
    let mut i = 0;
    let e = loop {
        match r.put(1, &format!("k{i:05}"), &value, None) {
            Ok(_) => i += 1,
            Err(Refused::Limit(e)) => break e,
            Err(other) => panic!("{other:?}"),
        }
    };
    assert_eq!(e.limit, Limit::KvBytes);
    assert_eq!(e.bound, n(KV_BYTES_MAX));
    assert!(i * (VALUE_BYTES_MAX + 6) <= KV_BYTES_MAX);
    r.finish();
}
