//! Unit tests of the tracker's timer rules (design notes: "Sessions").

use palisade_clock::WallTime;

use super::*;
use crate::command::{Command, Op, Request, RequestId};

const TTL: Duration = Duration::from_secs(10);

fn now(ms: u64) -> Now {
    Now::new(MonoInstant::from_nanos(ms * 1_000_000), WallTime::from_nanos(0))
}

fn open(sm: &mut LockStateMachine, index: LogIndex, client: u64) -> Applied {
    let id = RequestId { client, seq: 1 };
    sm.apply(index, &Command::Client(Request { id, op: Op::OpenSession { ttl: TTL } }))
}

fn config() -> LockConfig {
    LockConfig { drift_bound_ppm: 1_000, ..LockConfig::default() }
}

#[test]
fn deadline_is_apply_time_plus_stretched_remaining() {
    let mut sm = LockStateMachine::new(config());
    let mut tr = SessionTracker::new(config());
    tr.handle_applied(now(100), &open(&mut sm, 1, 7));
    let expected = now(100).mono + stretch(TTL, 1_000);
    assert_eq!(tr.deadline(SessionId(1)), Some(expected));
    assert_eq!(tr.poll_timeout(), None, "followers propose nothing");
}

#[test]
fn append_time_anchors_earlier_than_apply() {
    let mut sm = LockStateMachine::new(config());
    let mut tr = SessionTracker::new(config());
    tr.handle_appended(now(40), 1, 3);
    tr.handle_applied(now(100), &open(&mut sm, 1, 7));
    assert_eq!(tr.deadline(SessionId(1)), Some(now(40).mono + stretch(TTL, 1_000)));
    // A truncation re-marks the overwritten suffix later.
    tr.handle_appended(now(120), 2, 2);
    tr.handle_applied(now(130), &open(&mut sm, 2, 8));
    assert_eq!(tr.deadline(SessionId(2)), Some(now(120).mono + stretch(TTL, 1_000)));
}

#[test]
fn leader_proposes_only_when_ready_and_checkpoints_at_once() {
    let mut sm = LockStateMachine::new(config());
    let mut tr = SessionTracker::new(config());
    tr.handle_applied(now(0), &open(&mut sm, 1, 7));
    tr.handle_role(now(10), true, false);
    assert!(tr.handle_timeout(now(20_000)).is_empty(), "not ready: nothing");
    tr.handle_role(now(20_000), true, true);
    let ops = tr.handle_timeout(now(20_000));
    assert_eq!(ops, vec![LeaderOp::ExpireSession { session: SessionId(1), basis: 1 }]);
    // Not applied (lost proposal): proposed again after an interval, not before.
    assert!(tr.handle_timeout(now(20_100)).is_empty());
    let again = tr.handle_timeout(now(20_600));
    assert!(again.contains(&LeaderOp::ExpireSession { session: SessionId(1), basis: 1 }));
}

#[test]
fn checkpoint_carries_remaining_minus_elapsed() {
    let mut sm = LockStateMachine::new(config());
    let mut tr = SessionTracker::new(config());
    tr.handle_applied(now(0), &open(&mut sm, 1, 7));
    tr.handle_role(now(4_000), true, true);
    let ops = tr.handle_timeout(now(4_000));
    let elapsed = shrink(Duration::from_secs(4), 1_000);
    let line = CheckpointEntry { session: SessionId(1), basis: 1, remaining: TTL - elapsed };
    assert_eq!(ops, vec![LeaderOp::Checkpoint(vec![line])]);
    // Applying its own checkpoint never raises the deadline (min rule).
    let before = tr.deadline(SessionId(1)).unwrap();
    let applied = sm.apply(2, &Command::Leader(ops[0].clone()));
    tr.handle_applied(now(4_300), &applied);
    assert!(tr.deadline(SessionId(1)).unwrap() <= before);
    assert_eq!(sm.session(SessionId(1)).unwrap().basis, 2);
}

#[test]
fn pause_longer_than_threshold_extends_before_expiring() {
    let mut sm = LockStateMachine::new(config());
    let mut tr = SessionTracker::new(config());
    tr.handle_applied(now(0), &open(&mut sm, 1, 7));
    tr.handle_role(now(0), true, true);
    tr.handle_timeout(now(0));
    let before = tr.deadline(SessionId(1)).unwrap();
    // Woken regularly until 9 s, then stopped for 5 s: the deadline (10.01 s) has passed.
    let mut t = 0;
    while t < 9_000 {
        t = tr.poll_timeout().unwrap().as_nanos() / 1_000_000;
        tr.handle_timeout(now(t));
    }
    let ops = tr.handle_timeout(now(t + 5_000));
    assert!(!ops.iter().any(|o| matches!(o, LeaderOp::ExpireSession { .. })), "{ops:?}");
    assert_eq!(tr.pauses_detected(), 1);
    assert_eq!(tr.deadline(SessionId(1)).unwrap(), before + Duration::from_secs(5));
}
