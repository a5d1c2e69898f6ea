//! Hand-made register histories, linearizable and not, each the smallest picture of one rule
//! (Herlihy & Wing's definition; Kingsbury's "stale read", "lost update" examples).

use palisade_linearize::{
    Budget, CheckOptions, CheckResult, KvInput, KvOp, KvOutput, KvRegister, LinearizeError,
    Operation, Violation, check_operations,
};

type Op = Operation<KvInput<u32>, KvOutput<u32>>;

fn read(p: u64, call: u64, ret: u64, seen: Option<u32>) -> Op {
    Operation::returned(p, KvInput::new("x", KvOp::Read), call, ret, KvOutput::Read(seen))
}

fn write(p: u64, call: u64, ret: u64, v: u32) -> Op {
    Operation::returned(p, KvInput::new("x", KvOp::Write(v)), call, ret, KvOutput::Written)
}

fn write_unknown(p: u64, call: u64, v: u32) -> Op {
    Operation::unknown(p, KvInput::new("x", KvOp::Write(v)), call)
}

fn cas(p: u64, call: u64, ret: u64, expected: Option<u32>, new: u32, out: KvOutput<u32>) -> Op {
    Operation::returned(p, KvInput::new("x", KvOp::Cas { expected, new }), call, ret, out)
}

fn check(history: &[Op]) -> CheckResult<String, Option<u32>> {
    check_operations(&KvRegister::new(), history, &CheckOptions::default()).unwrap().result
}

fn violation(history: &[Op]) -> Violation<String, Option<u32>> {
    match check(history) {
        CheckResult::Illegal(v) => v,
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn stale_read_after_a_completed_write_is_caught() {
    // w1 and w2 complete one after the other; a read that starts after w2 returned sees 1.
    let h = [write(0, 0, 10, 1), write(0, 20, 30, 2), read(1, 40, 50, Some(1))];
    let v = violation(&h);
    assert_eq!(v.partition, "x");
    assert_eq!(v.op, 2, "the stale read is the operation that cannot be placed");
    assert_eq!(v.prefix, vec![0, 1]);
    assert_eq!(v.state, Some(2));
    // The same read concurrent with w2 may see 1.
    assert!(check(&[write(0, 0, 10, 1), write(0, 20, 45, 2), read(1, 40, 50, Some(1))]).is_ok());
}

#[test]
fn a_read_before_any_write_sees_absent() {
    assert!(check(&[read(0, 0, 5, None), write(1, 10, 20, 1)]).is_ok());
    assert!(check(&[read(0, 0, 5, Some(1)), write(1, 10, 20, 1)]).is_illegal());
}

#[test]
fn concurrent_writes_may_take_effect_in_either_order() {
    let both = [write(0, 0, 10, 1), write(1, 0, 10, 2)];
    for last in [1, 2] {
        let mut h = both.to_vec();
        h.push(read(2, 20, 30, Some(last)));
        h.push(read(2, 40, 50, Some(last)));
        assert!(check(&h).is_ok(), "last write {last}");
    }
    // But not both orders at once: once 1 is read after both writes, 2 can never come back.
    let mut h = both.to_vec();
    h.push(read(2, 20, 30, Some(1)));
    h.push(read(2, 40, 50, Some(2)));
    let v = violation(&h);
    assert_eq!(v.op, 3);
}

#[test]
fn touching_intervals_count_as_concurrent() {
    // The read is called at the very time the write returns: it may go first.
    assert!(check(&[write(0, 0, 10, 1), read(1, 10, 20, None)]).is_ok());
    assert!(check(&[write(0, 0, 10, 1), read(1, 11, 20, None)]).is_illegal());
}

#[test]
fn cas_succeeds_only_on_the_expected_value_and_fails_only_on_another() {
    use KvOutput::{Mismatch, Swapped};
    let base = || vec![write(0, 0, 10, 1)];
    let with = |mut h: Vec<Op>, more: &[Op]| {
        h.extend_from_slice(more);
        check(&h)
    };
    assert!(with(base(), &[cas(1, 20, 30, Some(1), 2, Swapped), read(2, 40, 50, Some(2))]).is_ok());
    assert!(
        with(base(), &[cas(1, 20, 30, Some(3), 2, Mismatch), read(2, 40, 50, Some(1))]).is_ok()
    );
    assert!(with(base(), &[cas(1, 20, 30, Some(3), 2, Swapped)]).is_illegal());
    assert!(with(base(), &[cas(1, 20, 30, Some(1), 2, Mismatch)]).is_illegal());
    // Expecting absent: succeeds on a fresh key only.
    assert!(check(&[cas(1, 0, 5, None, 7, Swapped), read(2, 10, 20, Some(7))]).is_ok());
    assert!(with(base(), &[cas(1, 20, 30, None, 7, Swapped)]).is_illegal());
    // Two concurrent cas from the same value: only one can win (lost-update check).
    let race = [cas(1, 20, 30, Some(1), 2, Swapped), cas(2, 20, 30, Some(1), 3, Swapped)];
    assert!(with(base(), &race).is_illegal());
}

#[test]
fn an_unknown_write_that_must_have_happened() {
    // The only explanation of reading 2 is that the timed-out write took effect.
    let h = [write(0, 0, 10, 1), write_unknown(1, 20, 2), read(2, 30, 40, Some(2))];
    assert!(check(&h).is_ok());
    // ... and it may take effect long after the client gave up.
    let h = [
        write(0, 0, 10, 1),
        write_unknown(1, 20, 2),
        read(2, 30, 40, Some(1)),
        read(2, 50, 60, Some(2)),
    ];
    assert!(check(&h).is_ok());
    // Once it did, the old value cannot come back.
    let h = [
        write(0, 0, 10, 1),
        write_unknown(1, 20, 2),
        read(2, 30, 40, Some(2)),
        read(2, 50, 60, Some(1)),
    ];
    assert_eq!(violation(&h).op, 3);
}

#[test]
fn an_unknown_write_that_must_not_have_happened() {
    // Reads keep seeing 1: the timed-out write never took effect (or not yet).
    let h = [
        write(0, 0, 10, 1),
        write_unknown(1, 20, 2),
        read(2, 30, 40, Some(1)),
        read(2, 50, 60, Some(1)),
    ];
    assert!(check(&h).is_ok());
    // An unknown write cannot explain a read that returned before it was even called.
    let h = [read(2, 0, 10, Some(2)), write_unknown(1, 20, 2)];
    assert_eq!(violation(&h).op, 0);
}

#[test]
fn delete_makes_the_key_absent() {
    let del = |p, call, ret, existed| {
        Operation::returned(
            p,
            KvInput::new("x", KvOp::Delete),
            call,
            ret,
            KvOutput::Deleted { existed },
        )
    };
    assert!(
        check(&[write(0, 0, 10, 1), del(1, 20, 30, Some(true)), read(2, 40, 50, None)]).is_ok()
    );
    assert!(
        check(&[write(0, 0, 10, 1), del(1, 20, 30, None), read(2, 40, 50, Some(1))]).is_illegal()
    );
    assert!(check(&[del(1, 0, 10, Some(true))]).is_illegal());
}

#[test]
fn keys_are_checked_independently_and_the_violation_names_its_key() {
    let on = |key: &str, mut op: Op| {
        op.input.key = key.to_string();
        op
    };
    let h = [
        on("a", write(0, 0, 10, 1)),
        on("b", write(1, 0, 10, 5)),
        on("a", read(2, 20, 30, Some(1))),
        on("b", read(3, 20, 30, Some(1))),
    ];
    let checked = check_operations(&KvRegister::new(), &h, &CheckOptions::default()).unwrap();
    assert_eq!(checked.partitions, 2);
    let CheckResult::Illegal(v) = checked.result else { panic!("{:?}", checked.result) };
    assert_eq!(v.partition, "b");
    assert_eq!(v.op, 3);
    assert_eq!(v.partition_ops, 2);
}

#[test]
fn the_explanation_lists_what_was_pending() {
    // Two concurrent reads of values nobody wrote: neither can be placed.
    let h = [write(0, 0, 10, 1), read(1, 20, 40, Some(7)), read(2, 25, 30, Some(8))];
    let v = violation(&h);
    assert_eq!(v.op, 2, "the read returning first is the one that cannot be placed");
    assert_eq!(v.pending, vec![1]);
    assert_eq!(v.prefix, vec![0]);
}

#[test]
fn a_pathological_history_answers_unknown_within_its_budget() {
    // 40 concurrent unknown writes, then a read of a value nobody wrote: proving that no
    // subset and order of the writes explains it takes far more than 10,000 steps.
    let mut h: Vec<Op> = (0..40).map(|i| write_unknown(i, 0, i as u32)).collect();
    h.extend((0..40).map(|i| write(100 + i, 0, 100, 100 + i as u32)));
    h.push(read(999, 200, 210, Some(1000)));
    let options = CheckOptions { steps_max: 10_000, ..CheckOptions::default() };
    let checked = check_operations(&KvRegister::new(), &h, &options).unwrap();
    assert_eq!(
        checked.result,
        CheckResult::Unknown { partition: "x".into(), budget: Budget::SearchSteps }
    );
    assert_eq!(checked.steps, 10_000);
    let options = CheckOptions { cache_entries_max: 500, ..CheckOptions::default() };
    let checked = check_operations(&KvRegister::new(), &h, &options).unwrap();
    assert_eq!(
        checked.result,
        CheckResult::Unknown { partition: "x".into(), budget: Budget::CacheEntries }
    );
}

#[test]
fn an_operation_returning_before_its_call_is_refused() {
    let err = check_operations(&KvRegister::new(), &[write(0, 10, 5, 1)], &CheckOptions::default());
    assert_eq!(err, Err(LinearizeError::ReturnBeforeCall { index: 0, call: 10, ret: 5 }));
}

#[test]
fn the_empty_history_is_linearizable() {
    let checked =
        check_operations(&KvRegister::<u32>::new(), &[], &CheckOptions::default()).unwrap();
    assert!(checked.result.is_ok());
    assert_eq!(checked.partitions, 0);
}
