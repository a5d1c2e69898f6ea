//! Hand-made lock histories: the rules of palisade's lock service (docs/DESIGN.md §2, safety
//! 3–5; docs/notes/LOCK-DESIGN.md "Locks and tokens", "Fenced kv"), under both expiry rules.

use palisade_linearize::{
    CheckOptions, CheckResult, ExpiryRule, Holder, LockInput, LockModel, LockOp, LockOutput,
    LockState, Operation, TokenKnown, check_operations,
};

type Op = Operation<LockInput, LockOutput>;

fn op(session: u64, call: u64, ret: u64, lock_op: LockOp, out: LockOutput) -> Op {
    Operation::returned(session, LockInput::new("L", session, lock_op), call, ret, out)
}

fn granted(s: u64, call: u64, ret: u64, token: u64) -> Op {
    op(s, call, ret, LockOp::Acquire, LockOutput::Granted { token })
}

fn busy(s: u64, call: u64, ret: u64) -> Op {
    op(s, call, ret, LockOp::Acquire, LockOutput::Busy)
}

fn released(s: u64, call: u64, ret: u64) -> Op {
    op(s, call, ret, LockOp::Release, LockOutput::Released)
}

fn not_holder(s: u64, call: u64, ret: u64) -> Op {
    op(s, call, ret, LockOp::Release, LockOutput::NotHolder)
}

fn fenced(call: u64, ret: u64, token: u64, accepted: bool) -> Op {
    let out = if accepted { LockOutput::Accepted } else { LockOutput::Rejected };
    op(9, call, ret, LockOp::FencedWrite { token }, out)
}

fn expire(s: u64, call: u64, ret: u64) -> Op {
    op(99, call, ret, LockOp::Expire, LockOutput::Expired).with_session(s)
}

trait WithSession {
    fn with_session(self, s: u64) -> Self;
}

impl WithSession for Op {
    fn with_session(mut self, s: u64) -> Self {
        self.input.session = s;
        self
    }
}

fn check(rule: ExpiryRule, h: &[Op]) -> CheckResult<String, LockState> {
    check_operations(&LockModel::new(rule), h, &CheckOptions::default()).unwrap().result
}

fn both(h: &[Op]) -> [bool; 2] {
    [check(ExpiryRule::Logged, h).is_ok(), check(ExpiryRule::Silent, h).is_ok()]
}

const OK: [bool; 2] = [true, true];
const ILLEGAL: [bool; 2] = [false, false];
/// Illegal only when every expiry is in the history.
const ONLY_SILENT_OK: [bool; 2] = [false, true];

#[test]
fn a_grant_after_a_release_is_fine() {
    assert_eq!(both(&[granted(1, 0, 10, 5), released(1, 20, 30), granted(2, 40, 50, 6)]), OK);
}

#[test]
fn two_overlapping_grants_are_illegal_when_expiries_are_logged() {
    // Mutual exclusion: nobody released or expired between the grants.
    let h = [granted(1, 0, 10, 5), granted(2, 20, 30, 6)];
    assert_eq!(both(&h), ONLY_SILENT_OK);
    let CheckResult::Illegal(v) = check(ExpiryRule::Logged, &h) else { panic!() };
    assert_eq!(v.op, 1);
    let held = Holder::Held { session: 1, token: TokenKnown::Exactly(5) };
    assert_eq!(v.state, LockState { holder: held, next_token_min: 6 });
    // With the expiry from the server's log, it is the normal story of figure 8-5.
    assert_eq!(both(&[granted(1, 0, 10, 5), expire(1, 12, 14), granted(2, 20, 30, 6)]), OK);
}

#[test]
fn overlapping_grants_are_caught_silently_once_the_first_holder_shows_it_still_held() {
    // Session 1 releases successfully after session 2's grant: both held at once.
    let h = [granted(1, 0, 10, 5), granted(2, 20, 30, 6), released(1, 40, 50)];
    assert_eq!(both(&h), ILLEGAL);
    // Or the store accepted session 1's token after session 2 was granted.
    let h = [granted(1, 0, 10, 5), granted(2, 20, 30, 6), fenced(40, 50, 5, true)];
    assert_eq!(both(&h), ILLEGAL);
}

#[test]
fn tokens_of_one_lock_strictly_increase() {
    assert_eq!(both(&[granted(1, 0, 10, 5), released(1, 20, 30), granted(2, 40, 50, 4)]), ILLEGAL);
    assert_eq!(both(&[granted(1, 0, 10, 5), released(1, 20, 30), granted(2, 40, 50, 5)]), ILLEGAL);
}

#[test]
fn a_repeated_acquire_by_the_holder_returns_the_same_grant() {
    assert_eq!(both(&[granted(1, 0, 10, 5), granted(1, 20, 30, 5)]), OK);
    assert_eq!(both(&[granted(1, 0, 10, 5), granted(1, 20, 30, 4)]), ILLEGAL);
    // A larger token means the session lost the lock and was granted it anew.
    assert_eq!(both(&[granted(1, 0, 10, 5), granted(1, 20, 30, 7)]), ONLY_SILENT_OK);
}

#[test]
fn busy_needs_a_holder_or_a_lock_delay() {
    assert_eq!(both(&[busy(1, 0, 10)]), ILLEGAL);
    assert_eq!(both(&[granted(1, 0, 10, 5), released(1, 20, 30), busy(2, 40, 50)]), ILLEGAL);
    assert_eq!(both(&[granted(1, 0, 10, 5), busy(2, 20, 30)]), OK);
    // After an expiry, the lock-delay answers busy with nobody holding the lock.
    assert_eq!(both(&[granted(1, 0, 10, 5), expire(1, 12, 14), busy(2, 20, 30)]), OK);
    // The holder itself is never told busy, unless it lost the lock.
    assert_eq!(both(&[granted(1, 0, 10, 5), busy(1, 20, 30)]), ONLY_SILENT_OK);
}

#[test]
fn only_the_holder_releases() {
    assert_eq!(both(&[released(1, 0, 10)]), ILLEGAL);
    assert_eq!(both(&[granted(1, 0, 10, 5), released(2, 20, 30)]), ILLEGAL);
    assert_eq!(both(&[granted(1, 0, 10, 5), not_holder(2, 20, 30)]), OK);
    // The holder told "not holder" must have lost it; then its release cannot succeed.
    assert_eq!(both(&[granted(1, 0, 10, 5), not_holder(1, 20, 30)]), ONLY_SILENT_OK);
    let h = [granted(1, 0, 10, 5), not_holder(1, 20, 30), released(1, 40, 50)];
    assert_eq!(both(&h), ILLEGAL);
}

#[test]
fn the_fenced_store_accepts_exactly_the_current_grant() {
    assert_eq!(both(&[granted(1, 0, 10, 5), fenced(20, 30, 5, true)]), OK);
    assert_eq!(both(&[granted(1, 0, 10, 5), fenced(20, 30, 4, true)]), ILLEGAL);
    assert_eq!(both(&[fenced(0, 10, 5, true)]), ILLEGAL);
    assert_eq!(both(&[granted(1, 0, 10, 5), fenced(20, 30, 4, false)]), OK);
    // Figure 8-5: A's token 5 is rejected once B holds 6.
    let h =
        [granted(1, 0, 10, 5), expire(1, 12, 14), granted(2, 20, 30, 6), fenced(40, 50, 5, false)];
    assert_eq!(both(&h), OK);
    // The current token rejected: the grant must be gone.
    assert_eq!(both(&[granted(1, 0, 10, 5), fenced(20, 30, 5, false)]), ONLY_SILENT_OK);
}

#[test]
fn an_acquire_with_unknown_outcome_may_have_been_granted() {
    let unknown = Operation::unknown(1, LockInput::new("L", 1, LockOp::Acquire), 0);
    // Session 2's busy is explained by session 1's timed-out acquire.
    assert_eq!(both(&[unknown.clone(), busy(2, 10, 20)]), OK);
    // The store accepting token 7 reveals the unobserved grant's token...
    assert_eq!(both(&[unknown.clone(), busy(2, 10, 20), fenced(30, 40, 7, true)]), OK);
    // ... after which a grant of 7 or less to somebody else is out of order.
    let h = [
        unknown,
        busy(2, 10, 20),
        fenced(30, 40, 7, true),
        released(1, 50, 60),
        granted(2, 70, 80, 7),
    ];
    assert_eq!(both(&h), ILLEGAL);
}

#[test]
fn locks_are_checked_independently() {
    let mut other = granted(2, 20, 30, 6);
    other.input.lock = "M".into();
    let checked = check_operations(
        &LockModel::new(ExpiryRule::Logged),
        &[granted(1, 0, 10, 5), other],
        &CheckOptions::default(),
    )
    .unwrap();
    assert!(checked.result.is_ok());
    assert_eq!(checked.partitions, 2);
}
