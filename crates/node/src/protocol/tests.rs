//! Protocol validation and the JSON form (design: "every input is validated against named
//! limits"; the HTTP API sends these types as JSON).

use std::time::Duration;

use palisade_lock::{Fence, Holder, Reply};

use super::*;

fn mutate(op: Op) -> ClientRequest {
    let id = Some(RequestId { client: 7, seq: 1 });
    ClientRequest { attempt: 1, id, body: RequestBody::Mutate(op), wait: None }
}

fn read(op: ReadOp) -> ClientRequest {
    ClientRequest { attempt: 1, id: None, body: RequestBody::Read(op), wait: None }
}

fn acquire(wait: bool) -> Op {
    Op::Acquire { session: SessionId(3), lock: "L".into(), wait }
}

#[test]
fn ids_belong_to_mutations_only() {
    assert_eq!(mutate(acquire(false)).validate(), Ok(()));
    let mut no_id = mutate(acquire(false));
    no_id.id = None;
    assert_eq!(no_id.validate(), Err(InvalidRequest::MissingId));
    let mut zero = mutate(acquire(false));
    zero.id = Some(RequestId { client: 0, seq: 1 });
    assert_eq!(zero.validate(), Err(InvalidRequest::ZeroClient));
    let mut with_id = read(ReadOp::Status);
    with_id.id = Some(RequestId { client: 7, seq: 1 });
    assert_eq!(with_id.validate(), Err(InvalidRequest::IdOnRead));
}

#[test]
fn only_blocking_requests_wait_and_never_past_the_bound() {
    let mut blocking = mutate(acquire(true));
    blocking.wait = Some(LONG_POLL_WAIT_MAX);
    assert_eq!(blocking.validate(), Ok(()));
    blocking.wait = Some(LONG_POLL_WAIT_MAX + Duration::from_nanos(1));
    assert!(matches!(blocking.validate(), Err(InvalidRequest::WaitTooLong { .. })));
    let mut try_acquire = mutate(acquire(false));
    try_acquire.wait = Some(Duration::from_secs(1));
    assert_eq!(try_acquire.validate(), Err(InvalidRequest::WaitNotAllowed));
    let mut get = read(ReadOp::Get { key: "k".into(), consistency: Consistency::Linearizable });
    get.wait = Some(Duration::from_secs(1));
    assert_eq!(get.validate(), Err(InvalidRequest::WaitNotAllowed));
    let mut wait = read(ReadOp::WaitGrant { session: SessionId(3), lock: "L".into() });
    wait.wait = Some(Duration::from_secs(1));
    assert_eq!(wait.validate(), Ok(()));
}

#[test]
fn names_in_reads_are_bounded() {
    let key = |k: String| read(ReadOp::Get { key: k, consistency: Consistency::Serializable });
    assert_eq!(key("k".repeat(KEY_BYTES_MAX)).validate(), Ok(()));
    assert!(matches!(
        key("k".repeat(KEY_BYTES_MAX + 1)).validate(),
        Err(InvalidRequest::NameTooLong { what: "key", .. })
    ));
    assert_eq!(key(String::new()).validate(), Err(InvalidRequest::EmptyName { what: "key" }));
    let lock =
        |n: String| read(ReadOp::LockInfo { name: n, consistency: Consistency::Serializable });
    assert!(matches!(
        lock("l".repeat(LOCK_NAME_BYTES_MAX + 1)).validate(),
        Err(InvalidRequest::NameTooLong { what: "lock name", .. })
    ));
}

#[test]
fn local_reads_are_exactly_the_serializable_ones_and_status() {
    let get = |consistency| ReadOp::Get { key: "k".into(), consistency };
    assert!(get(Consistency::Serializable).is_local());
    assert!(!get(Consistency::Linearizable).is_local());
    assert!(ReadOp::Status.is_local());
    assert!(!ReadOp::SessionInfo { session: SessionId(1) }.is_local());
    assert!(!ReadOp::WaitGrant { session: SessionId(1), lock: "L".into() }.is_local());
}

#[test]
fn requests_and_replies_round_trip_through_json() {
    let put = Op::Put {
        key: "k".into(),
        value: b"v".to_vec(),
        fence: Some(Fence { lock: "L".into(), token: 33 }),
        hlc: Default::default(),
    };
    let mut blocking = mutate(acquire(true));
    blocking.wait = Some(Duration::from_millis(1500));
    for req in [mutate(put), blocking, read(ReadOp::Status)] {
        let json = serde_json::to_string(&req).expect("serialises");
        let back: ClientRequest = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, req, "{json}");
    }
    let holder = Holder { session: SessionId(3), client: 7, token: 34, since_index: 34 };
    let replies = [
        ReplyResult::Done(Ok(Reply::Acquired { lock: "L".into(), holder, reentrant: false })),
        ReplyResult::NotLeader { leader: Some(2) },
        ReplyResult::Retry { reason: RetryReason::Overloaded },
        ReplyResult::Unknown,
        ReplyResult::StillWaiting { position: 2 },
        ReplyResult::Invalid("bad".into()),
    ];
    for result in replies {
        let reply = ClientReply { attempt: 9, result };
        let json = serde_json::to_string(&reply).expect("serialises");
        let back: ClientReply = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, reply, "{json}");
    }
}
