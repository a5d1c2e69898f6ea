//! ClientCore logic with explicit times (design: retries with the same id, leader discovery,
//! Unknown outcomes, the keepalive schedule and the lease anchored at the send time).

use std::time::Duration;

use palisade_clock::{MonoInstant, Now, WallTime, shrink};
use palisade_lock::{
    Expect, Fence, Holder, LEASE_SAFETY_MARGIN, LeaseState, Op, Outcome, Refused, Reply, SessionId,
};

use super::*;
use crate::protocol::{ClientReply, ReadReply, ReplyResult, RequestBody, RetryReason};

const TTL: Duration = Duration::from_secs(9);

fn at(ms: u64) -> Now {
    Now::new(MonoInstant::from_nanos(ms * 1_000_000), WallTime::from_nanos(ms * 1_000_000))
}

fn client() -> ClientCore {
    ClientCore::new(ClientConfig::new(vec![1, 2, 3], TTL), 77, 5, at(0)).expect("valid")
}

fn sent(c: &mut ClientCore) -> Vec<(NodeId, ClientRequest)> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn events(c: &mut ClientCore) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn answer(c: &mut ClientCore, ms: u64, from: NodeId, attempt: u64, result: ReplyResult) {
    c.handle_reply(at(ms), from, ClientReply { attempt, result });
}

fn done(events: &[ClientEvent]) -> Vec<(OpId, OpOutcome)> {
    events
        .iter()
        .filter_map(|e| match e {
            ClientEvent::OpDone { op, outcome } => Some((*op, outcome.clone())),
            _ => None,
        })
        .collect()
}

/// Opens the session at time 0, answered at `ms` by the node it was sent to.
fn opened(c: &mut ClientCore, ms: u64) -> SessionId {
    c.open_session(at(0));
    let [(to, req)] = &sent(c)[..] else { panic!("one OpenSession") };
    let reply = Reply::SessionOpened { session: SessionId(4), ttl: TTL };
    answer(c, ms, *to, req.attempt, ReplyResult::Done(Ok(reply)));
    events(c);
    SessionId(4)
}

#[test]
fn configurations_are_checked() {
    let ok = ClientConfig::new(vec![1, 2, 3], TTL);
    assert!(ok.validate().is_ok());
    let field = |c: ClientConfig| c.validate().unwrap_err().field;
    assert_eq!(field(ClientConfig { servers: vec![], ..ok.clone() }), "servers");
    assert_eq!(field(ClientConfig { servers: vec![1, 1], ..ok.clone() }), "servers");
    assert_eq!(field(ClientConfig { servers: vec![0], ..ok.clone() }), "servers");
    assert_eq!(field(ClientConfig { ttl: Duration::from_millis(10), ..ok.clone() }), "ttl");
    let slow = ClientConfig { attempt_timeout: Duration::from_secs(20), ..ok.clone() };
    assert_eq!(field(slow), "attempt_timeout");
    assert!(ClientCore::new(ok, 0, 1, at(0)).is_err(), "client id 0 is reserved");
}

#[test]
fn the_first_server_is_drawn_from_the_seed() {
    let targets: std::collections::BTreeSet<NodeId> = (0..32)
        .map(|seed| {
            let c = ClientCore::new(ClientConfig::new(vec![1, 2, 3], TTL), 9, seed, at(0));
            c.expect("valid").target()
        })
        .collect();
    assert_eq!(targets.len(), 3, "every server is a possible first target");
    let again = |seed| ClientCore::new(ClientConfig::new(vec![1, 2, 3], TTL), 9, seed, at(0));
    assert_eq!(again(4).unwrap().target(), again(4).unwrap().target());
}

#[test]
fn opening_a_session_anchors_the_lease_at_the_send_time() {
    let mut c = client();
    c.open_session(at(0));
    let [(to, req)] = &sent(&mut c)[..] else { panic!() };
    assert!(matches!(req.body, RequestBody::Mutate(Op::OpenSession { ttl: TTL })));
    assert_eq!(req.id, Some(RequestId { client: 77, seq: 1 }));
    assert_eq!(events(&mut c), vec![ClientEvent::LeaseChanged(LeaseState::Pending)]);
    // Acknowledged 2 s later: the lease still counts from the send at 0.
    let reply = Reply::SessionOpened { session: SessionId(4), ttl: TTL };
    answer(&mut c, 2_000, *to, req.attempt, ReplyResult::Done(Ok(reply)));
    let expected = at(0).mono + (shrink(TTL, 1000) - LEASE_SAFETY_MARGIN);
    assert_eq!(c.lease_valid_until(), Some(expected));
    assert_eq!(c.session(), Some(SessionId(4)));
    let evs = events(&mut c);
    assert!(evs.contains(&ClientEvent::LeaseChanged(LeaseState::Held)));
    assert!(matches!(done(&evs)[..], [(OpId(1), Outcome::Done(ReplyResult::Done(Ok(_))))]));
}

#[test]
fn not_leader_hints_are_followed_and_timeouts_rotate_with_the_same_id() {
    let mut c = client();
    opened(&mut c, 1);
    c.put(at(10), "k", b"v".to_vec(), None);
    let [(first, req)] = &sent(&mut c)[..] else { panic!() };
    let id = req.id;
    let other = if *first == 3 { 2 } else { 3 };
    answer(&mut c, 11, *first, req.attempt, ReplyResult::NotLeader { leader: Some(other) });
    let [(to, retry)] = &sent(&mut c)[..] else { panic!() };
    assert_eq!((*to, retry.id), (other, id), "to the hinted leader, same request id");
    assert!(retry.attempt > req.attempt, "a new attempt");
    // No answer: after the attempt timeout the next server gets the same id.
    c.handle_timeout(at(11 + 1_000));
    let [(next, third)] = &sent(&mut c)[..] else { panic!() };
    assert_ne!(*next, other);
    assert_eq!(third.id, id);
    // A slow non-final answer to an old attempt is ignored; a final one is taken.
    answer(&mut c, 1_100, other, retry.attempt, ReplyResult::NotLeader { leader: None });
    assert!(sent(&mut c).is_empty());
    let written = Reply::Written { key: "k".into(), version: Default::default() };
    answer(&mut c, 1_200, other, retry.attempt, ReplyResult::Done(Ok(written)));
    assert!(matches!(done(&events(&mut c))[..], [(OpId(2), Outcome::Done(_))]));
}

#[test]
fn unknown_and_retry_answers_retry_later_and_the_deadline_ends_in_unknown() {
    let mut c = client();
    opened(&mut c, 1);
    c.cas(at(10), "k", Expect::Absent, b"1".to_vec(), None);
    let [(to, req)] = &sent(&mut c)[..] else { panic!() };
    answer(&mut c, 20, *to, req.attempt, ReplyResult::Unknown);
    assert!(sent(&mut c).is_empty(), "not at once");
    let resend = c.poll_timeout().expect("a backoff");
    assert_eq!(resend, at(20).mono + Duration::from_secs(1) / RETRY_BACKOFF_DIVISOR);
    c.handle_timeout(Now::new(resend, at(145).wall));
    let [(again_to, again)] = &sent(&mut c)[..] else { panic!() };
    assert_eq!((*again_to, again.id), (*to, req.id), "same node, same id");
    let overloaded = ReplyResult::Retry { reason: RetryReason::Overloaded };
    answer(&mut c, 150, *to, again.attempt, overloaded);
    // Nothing final ever comes: the operation gives up at op_timeout with Unknown.
    let mut ms = 150;
    while ms < 10_100 {
        ms += 100;
        c.handle_timeout(at(ms));
        sent(&mut c);
    }
    let evs = events(&mut c);
    assert_eq!(done(&evs), vec![(OpId(2), Outcome::Unknown)], "never a guess");
}

#[test]
fn answers_that_cannot_tell_become_unknown() {
    let mut c = client();
    opened(&mut c, 1);
    c.put(at(10), "k", vec![], None);
    let [(to, req)] = &sent(&mut c)[..] else { panic!() };
    let stale = Refused::StaleRequest { seq: 1, last: 2 };
    answer(&mut c, 20, *to, req.attempt, ReplyResult::Done(Err(stale)));
    assert_eq!(done(&events(&mut c)), vec![(OpId(2), Outcome::Unknown)]);
    c.put(at(30), "k", vec![], None);
    let [(to, req)] = &sent(&mut c)[..] else { panic!() };
    let gone = Refused::NoSession { client: 77 };
    answer(&mut c, 40, *to, req.attempt, ReplyResult::Done(Err(gone)));
    let evs = events(&mut c);
    assert_eq!(done(&evs), vec![(OpId(3), Outcome::Unknown)]);
    assert!(evs.contains(&ClientEvent::LeaseChanged(LeaseState::Lost)));
    assert_eq!(c.session(), None);
    // Without a session, session operations are refused locally.
    c.acquire(at(50), "L", None);
    assert!(sent(&mut c).is_empty());
    assert!(matches!(done(&events(&mut c))[..], [(_, Outcome::Done(ReplyResult::Invalid(_)))]));
}

#[test]
fn operations_queue_behind_the_one_in_flight_with_fresh_ids() {
    let mut c = client();
    opened(&mut c, 1);
    let first = c.put(at(10), "a", vec![], None);
    let second = c.put(at(10), "b", vec![], None);
    assert_eq!(c.queued(), 1);
    let [(to, req)] = &sent(&mut c)[..] else { panic!("only the first goes out") };
    let written = |k: &str| Reply::Written { key: k.into(), version: Default::default() };
    answer(&mut c, 20, *to, req.attempt, ReplyResult::Done(Ok(written("a"))));
    let [(_, next)] = &sent(&mut c)[..] else { panic!("the second starts") };
    assert_eq!(next.id.unwrap().seq, req.id.unwrap().seq + 1);
    let evs = events(&mut c);
    assert_eq!(done(&evs).iter().map(|d| d.0).collect::<Vec<_>>(), vec![first]);
    assert_eq!(c.in_flight(), Some(second));
}

#[test]
fn keepalives_run_beside_an_operation_and_renew_from_their_send_time() {
    let mut c = client();
    let s = opened(&mut c, 1);
    // A blocking acquire long-polls for 20 s.
    c.acquire(at(100), "L", Some(Duration::from_secs(20)));
    let [(leader, acquire)] = &sent(&mut c)[..] else { panic!() };
    assert_eq!(acquire.wait, Some(Duration::from_secs(20)));
    // T/3 after the open's send, a keepalive goes out with a fresh id.
    assert_eq!(c.poll_timeout(), Some(at(3_000).mono));
    c.handle_timeout(at(3_000));
    let [(_, keep)] = &sent(&mut c)[..] else { panic!("a keepalive") };
    assert_eq!(keep.body, RequestBody::Mutate(Op::KeepAlive { session: s }));
    assert_ne!(keep.id, acquire.id);
    answer(
        &mut c,
        3_500,
        *leader,
        keep.attempt,
        ReplyResult::Done(Ok(Reply::Renewed { session: s, ttl: TTL })),
    );
    let expected = at(3_000).mono + (shrink(TTL, 1000) - LEASE_SAFETY_MARGIN);
    assert_eq!(c.lease_valid_until(), Some(expected), "anchored at the keepalive's send");
    // The long poll ends with the grant: a Granted event and a guard with the token.
    let holder = Holder { session: s, client: 77, token: 34, since_index: 34 };
    let acquired = Reply::Acquired { lock: "L".into(), holder, reentrant: false };
    answer(&mut c, 4_000, *leader, acquire.attempt, ReplyResult::Done(Ok(acquired)));
    let evs = events(&mut c);
    assert!(evs.contains(&ClientEvent::Granted { lock: "L".into(), token: 34 }));
    assert_eq!(c.fence("L", at(4_000)), Ok(Fence { lock: "L".into(), token: 34 }));
    assert!(c.is_safe_now(at(4_000)));
}

#[test]
fn a_failing_keepalive_puts_the_lease_in_jeopardy_and_an_expired_session_is_lost() {
    let mut c = client();
    let s = opened(&mut c, 1);
    c.handle_timeout(at(3_000));
    let [(to, keep)] = &sent(&mut c)[..] else { panic!() };
    answer(&mut c, 3_010, *to, keep.attempt, ReplyResult::NotLeader { leader: None });
    assert_eq!(c.lease_state(at(3_010)), Some(LeaseState::Jeopardy));
    assert!(events(&mut c).contains(&ClientEvent::LeaseChanged(LeaseState::Jeopardy)));
    // Retried T/10 later; the server says the session is gone.
    assert_eq!(c.poll_timeout(), Some(at(3_010).mono + TTL / 10));
    c.handle_timeout(at(3_910));
    let [(to, keep)] = &sent(&mut c)[..] else { panic!() };
    let gone = Refused::UnknownSession { session: s };
    answer(&mut c, 3_920, *to, keep.attempt, ReplyResult::Done(Err(gone)));
    assert_eq!(c.lease_state(at(3_920)), Some(LeaseState::Lost));
    assert!(!c.is_safe_now(at(3_920)));
    assert_eq!(c.session(), None);
    assert!(events(&mut c).contains(&ClientEvent::LeaseChanged(LeaseState::Lost)));
}

#[test]
fn the_lease_runs_out_by_itself_without_renewals() {
    let mut c = client();
    opened(&mut c, 1);
    c.set_keepalives_enabled(false);
    let until = c.lease_valid_until().expect("held");
    let mut seen = Vec::new();
    let mut now = at(1);
    while let Some(t) = c.poll_timeout() {
        now = Now::new(t, now.wall);
        c.handle_timeout(now);
        assert!(sent(&mut c).is_empty(), "keepalives are off");
        seen.extend(events(&mut c));
        if t >= until {
            break;
        }
    }
    let states = [LeaseState::Jeopardy, LeaseState::Lost].map(ClientEvent::LeaseChanged);
    assert_eq!(seen, states.to_vec());
    assert_eq!(now.mono, until, "woken exactly when it ran out");
}

#[test]
fn wait_grant_and_release_keep_the_held_locks_in_step() {
    let mut c = client();
    let s = opened(&mut c, 1);
    c.wait_grant(at(10), "L", Some(Duration::from_secs(5)));
    let [(to, req)] = &sent(&mut c)[..] else { panic!() };
    assert!(req.id.is_none(), "a read");
    let holder = Holder { session: s, client: 77, token: 40, since_index: 40 };
    let granted = ReadReply::Granted { lock: "L".into(), holder };
    answer(&mut c, 20, *to, req.attempt, ReplyResult::Read(granted));
    assert!(events(&mut c).contains(&ClientEvent::Granted { lock: "L".into(), token: 40 }));
    assert_eq!(c.held_locks().map(|g| g.token()).collect::<Vec<_>>(), vec![40]);
    c.release(at(30), "L");
    let [(to, req)] = &sent(&mut c)[..] else { panic!() };
    let released = Reply::Released { lock: "L".into(), token: 40, next: None };
    answer(&mut c, 40, *to, req.attempt, ReplyResult::Done(Ok(released)));
    assert_eq!(c.held_locks().count(), 0);
    assert!(c.fence("L", at(40)).is_err());
}

/// A timeout moves the client off the server that stayed silent, not off the server the other
/// exchange has found since (seed 92 of `palisade sim --faults all`: an operation's hint led
/// the client to the leader, the keepalive sent before it timed out and rotated the shared
/// target on to a dead server; the keepalives cycled through dead servers and the session
/// expired while the leader was healthy).
#[test]
fn a_timeout_does_not_rotate_away_from_a_leader_found_meanwhile() {
    let mut c = client();
    let session = opened(&mut c, 10);
    let silent = c.target();
    let leader = c.config().servers.iter().copied().find(|&s| s != silent).expect("3 servers");
    // The first keepalive goes to the current target, which never answers it.
    let mut ms = 10;
    let ka = loop {
        ms += 10;
        c.handle_timeout(at(ms));
        if let Some(ka) = sent(&mut c).into_iter().next() {
            break ka;
        }
    };
    assert_eq!(ka, (silent, ka.1.clone()));
    assert!(matches!(ka.1.body, RequestBody::Mutate(Op::KeepAlive { session: s }) if s == session));
    // An operation meanwhile: the same server answers it with a hint, the leader finally.
    c.get(at(ms + 1), "k", crate::protocol::Consistency::Linearizable);
    let [(to, req)] = &sent(&mut c)[..] else { panic!("one Get") };
    assert_eq!(*to, silent);
    answer(&mut c, ms + 2, silent, req.attempt, ReplyResult::NotLeader { leader: Some(leader) });
    let [(to, req)] = &sent(&mut c)[..] else { panic!("the Get again") };
    assert_eq!(*to, leader);
    answer(&mut c, ms + 3, leader, req.attempt, ReplyResult::Invalid("done".into()));
    // The keepalive times out: it failed (Jeopardy), but the client stays with the leader...
    c.handle_timeout(at(ms + 1_000));
    assert_eq!(c.target(), leader, "rotated away from the leader the hint named");
    // ... and the retried keepalive goes there.
    let retry = loop {
        ms += 10;
        c.handle_timeout(at(ms));
        if let Some(ka) = sent(&mut c).into_iter().next() {
            break ka;
        }
    };
    assert_eq!(retry.0, leader);
}

/// A refused connection ends the attempt at once: the operation goes to the next server after
/// the short retry backoff, not after the attempt timeout, with the same request id; the
/// keepalive counts as failed and moves on. An attempt already superseded is ignored.
#[test]
fn an_unreachable_server_is_left_at_once() {
    let mut c = client();
    opened(&mut c, 10);
    c.put(at(20), "k", b"v".to_vec(), None);
    let [(first, req)] = &sent(&mut c)[..] else { panic!("one Put") };
    let (first, req) = (*first, req.clone());
    c.handle_unreachable(at(21), req.attempt);
    assert_ne!(c.target(), first, "moved off the unreachable server");
    assert!(sent(&mut c).is_empty(), "waits the backoff, no hammering");
    let backoff = c.config().attempt_timeout / RETRY_BACKOFF_DIVISOR;
    let resend_ms = 21 + u64::try_from(backoff.as_millis()).expect("small");
    assert!(resend_ms < 20 + 1_000, "well before the attempt timeout");
    c.handle_timeout(at(resend_ms));
    let [(second, again)] = &sent(&mut c)[..] else { panic!("the Put again") };
    assert_ne!(*second, first);
    assert_eq!(again.id, req.id, "the same request id: a retry, deduplicated");
    // The old attempt's failure arriving late changes nothing.
    let target = c.target();
    c.handle_unreachable(at(resend_ms + 1), req.attempt);
    assert_eq!(c.target(), target);
    assert!(sent(&mut c).is_empty());
    // A keepalive to an unreachable server fails at once and the target moves on.
    let mut ms = resend_ms + 1;
    let ka = loop {
        ms += 10;
        c.handle_timeout(at(ms));
        if let Some(ka) = sent(&mut c)
            .into_iter()
            .find(|(_, r)| matches!(r.body, RequestBody::Mutate(Op::KeepAlive { .. })))
        {
            break ka;
        }
    };
    c.handle_unreachable(at(ms + 1), ka.1.attempt);
    assert_ne!(c.target(), ka.0, "the keepalive moved off the unreachable server");
}
