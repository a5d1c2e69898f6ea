//! Properties of the checker, against ground truth:
//! * histories recorded from a real store with random concurrency are always linearizable
//!   (soundness: no false violations), also after a round trip through the JSON format;
//! * a read corrupted to a value never written is always caught, and a read corrupted to a
//!   stale value usually is;
//! * on thousands of small random histories, the checker agrees with a brute-force oracle over
//!   an independent reference specification — for the kv model, and for the lock model under
//!   both expiry rules, where the reference makes silent expiry an explicit step and unobserved
//!   grants pick concrete tokens (checking the lazy-loss and token arguments of `lock`).

mod common;

use common::generate::{GenConfig, KvOperation, kv_history};
use common::{oracle, reference};
use palisade_linearize::{
    CheckOptions, ExpiryRule, KvInput, KvOp, KvOutput, KvRegister, LockInput, LockModel, LockOp,
    LockOutput, Model, Operation, Verdict, check_json, check_operations, kv_history_json,
};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn check_kv(ops: &[KvOperation]) -> palisade_linearize::CheckResult<String, Option<u64>> {
    check_operations(&KvRegister::new(), ops, &CheckOptions::default()).unwrap().result
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn recorded_histories_are_linearizable(
        seed in any::<u64>(),
        processes in 1u64..8,
        keys in 1usize..5,
        ops in 0usize..300,
        unknown_per_mille in 0u32..150,
    ) {
        let config = GenConfig { processes, keys, ops, unknown_per_mille, seed };
        let history = kv_history(&config);
        let result = check_kv(&history);
        prop_assert!(result.is_ok(), "seed {seed}: {result:?}");
        let report = check_json(&kv_history_json(&history), &CheckOptions::default()).unwrap();
        prop_assert_eq!(report.verdict, Verdict::Linearizable);
        let unknown_reads =
            history.iter().filter(|op| op.is_unknown() && op.input.op == KvOp::Read).count();
        prop_assert_eq!(report.operations + unknown_reads, history.len());
    }

    #[test]
    fn a_read_of_a_value_never_written_is_always_caught(
        seed in any::<u64>(),
        pick in any::<usize>(),
    ) {
        let config = GenConfig { processes: 5, keys: 3, ops: 200, unknown_per_mille: 50, seed };
        let mut history = kv_history(&config);
        let reads: Vec<usize> = (0..history.len())
            .filter(|&i| matches!(history[i].output(), Some(KvOutput::Read(_))))
            .collect();
        prop_assume!(!reads.is_empty());
        let victim = reads[pick % reads.len()];
        let call = history[victim].call;
        let ret = history[victim].ret().unwrap();
        history[victim] = Operation::returned(
            history[victim].process,
            history[victim].input.clone(),
            call,
            ret,
            KvOutput::Read(Some(u64::MAX)),
        );
        let result = check_kv(&history);
        prop_assert!(result.is_illegal(), "seed {seed}: {result:?}");
    }
}

/// Replaces the value seen by `victim` (a read) with another value written to the same key.
fn corrupt_to_stale(history: &mut [KvOperation], victim: usize, rng: &mut ChaCha8Rng) -> bool {
    let key = history[victim].input.key.clone();
    let Some(KvOutput::Read(seen)) = history[victim].output().cloned() else { return false };
    let written: Vec<u64> = history
        .iter()
        .filter(|op| op.input.key == key && op.call < history[victim].call)
        .filter_map(|op| match &op.input.op {
            KvOp::Write(v) | KvOp::Cas { new: v, .. } => Some(*v),
            _ => None,
        })
        .filter(|v| Some(*v) != seen)
        .collect();
    if written.is_empty() {
        return false;
    }
    let stale = written[rng.random_range(0..written.len())];
    let op = &history[victim];
    history[victim] = Operation::returned(
        op.process,
        op.input.clone(),
        op.call,
        op.ret().unwrap(),
        KvOutput::Read(Some(stale)),
    );
    true
}

#[test]
fn a_read_corrupted_to_a_stale_value_is_usually_caught() {
    let (mut tried, mut caught) = (0, 0);
    for seed in 0..300 {
        let config = GenConfig { processes: 4, keys: 2, ops: 120, unknown_per_mille: 0, seed };
        let mut history = kv_history(&config);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let reads: Vec<usize> = (0..history.len())
            .filter(|&i| matches!(history[i].output(), Some(KvOutput::Read(_))))
            .collect();
        let victim = reads[rng.random_range(0..reads.len())];
        if corrupt_to_stale(&mut history, victim, &mut rng) {
            tried += 1;
            if check_kv(&history).is_illegal() {
                caught += 1;
            }
        }
    }
    println!("stale corruptions caught: {caught} of {tried}");
    assert!(tried >= 250, "the corruption applies to most histories ({tried})");
    // Measured: 269 of 282. Not all: a stale value whose overwrite is concurrent with the read
    // is a legal answer.
    assert!(caught * 100 >= tried * 90, "caught {caught} of {tried}");
}

fn random_kv_op(rng: &mut ChaCha8Rng) -> Operation<KvInput<u8>, KvOutput<u8>> {
    let value = |rng: &mut ChaCha8Rng| rng.random_range(1..=3u8);
    let maybe = |rng: &mut ChaCha8Rng| rng.random_bool(0.7).then(|| rng.random_range(1..=3u8));
    let (op, out) = match rng.random_range(0..4) {
        0 => (KvOp::Read, KvOutput::Read(maybe(rng))),
        1 => (KvOp::Write(value(rng)), KvOutput::Written),
        2 => {
            let op = KvOp::Cas { expected: maybe(rng), new: value(rng) };
            (op, if rng.random_bool(0.6) { KvOutput::Swapped } else { KvOutput::Mismatch })
        }
        _ => (
            KvOp::Delete,
            KvOutput::Deleted { existed: rng.random_bool(0.5).then(|| rng.random_bool(0.5)) },
        ),
    };
    timed(rng, KvInput::new("k", op), out)
}

fn timed<I, O>(rng: &mut ChaCha8Rng, input: I, output: O) -> Operation<I, O> {
    let process = rng.random_range(0..4);
    let call = rng.random_range(0..30);
    if rng.random_bool(0.15) {
        return Operation::unknown(process, input, call);
    }
    Operation::returned(process, input, call, call + rng.random_range(0..10), output)
}

#[test]
fn the_kv_checker_agrees_with_brute_force() {
    let model = KvRegister::<u8>::new();
    let (mut legal, mut illegal) = (0, 0);
    for seed in 0..4000u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ops: Vec<_> = (0..rng.random_range(1..=8)).map(|_| random_kv_op(&mut rng)).collect();
        let expected = oracle::linearizable(&ops, None, reference::kv, |_| Vec::new());
        let result = check_operations(&model, &ops, &CheckOptions::default()).unwrap().result;
        assert_eq!(result.is_ok(), expected, "seed {seed}: {ops:?}\n{result:?}");
        if expected { legal += 1 } else { illegal += 1 }
    }
    assert!(legal > 400 && illegal > 400, "a useful mix: {legal} legal, {illegal} illegal");
}

fn random_lock_op(rng: &mut ChaCha8Rng) -> Operation<LockInput, LockOutput> {
    let session = rng.random_range(1..=3);
    let token = rng.random_range(1..=4);
    let (op, out) = match rng.random_range(0..8) {
        0..=2 => {
            let out =
                if rng.random_bool(0.7) { LockOutput::Granted { token } } else { LockOutput::Busy };
            (LockOp::Acquire, out)
        }
        3 | 4 => {
            let out =
                if rng.random_bool(0.7) { LockOutput::Released } else { LockOutput::NotHolder };
            (LockOp::Release, out)
        }
        5 | 6 => {
            let out =
                if rng.random_bool(0.6) { LockOutput::Accepted } else { LockOutput::Rejected };
            (LockOp::FencedWrite { token }, out)
        }
        _ => (LockOp::Expire, LockOutput::Expired),
    };
    timed(rng, LockInput::new("L", session, op), out)
}

#[test]
fn the_lock_checker_agrees_with_brute_force_under_both_expiry_rules() {
    let logged = LockModel::new(ExpiryRule::Logged);
    let silent = LockModel::new(ExpiryRule::Silent);
    let mut counts = [[0; 2]; 2];
    for seed in 0..6000u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ops: Vec<_> = (0..rng.random_range(1..=7)).map(|_| random_lock_op(&mut rng)).collect();
        for (m, model, extra) in [(0, &logged, false), (1, &silent, true)] {
            let lose = |s: &reference::RefLock| if extra { reference::lose(s) } else { Vec::new() };
            let expected = oracle::linearizable(&ops, reference::LOCK_INIT, reference::lock, lose);
            let result = check_operations(model, &ops, &CheckOptions::default()).unwrap().result;
            assert_eq!(
                result.is_ok(),
                expected,
                "seed {seed}, {:?}: {ops:#?}\n{result:?}",
                model.expiry
            );
            counts[m][usize::from(expected)] += 1;
        }
    }
    for (rule, [illegal, legal]) in ["logged", "silent"].iter().zip(counts) {
        assert!(legal > 500 && illegal > 500, "{rule}: {legal} legal, {illegal} illegal");
    }
}

#[test]
fn silent_expiry_never_rejects_what_logged_expiry_accepts() {
    // Silent is Logged plus invisible expiries: strictly more permissive.
    let logged = LockModel::new(ExpiryRule::Logged);
    let silent = LockModel::new(ExpiryRule::Silent);
    for seed in 0..2000u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ops: Vec<_> = (0..rng.random_range(1..=10)).map(|_| random_lock_op(&mut rng)).collect();
        let options = CheckOptions::default();
        if check_operations(&logged, &ops, &options).unwrap().result.is_ok() {
            assert!(
                check_operations(&silent, &ops, &options).unwrap().result.is_ok(),
                "seed {seed}"
            );
        }
    }
    assert_eq!(silent.init(), logged.init());
}

/// The kv model without its read-only declarations: the same answers, found the slow way.
struct NoPruning(KvRegister<u64>);

impl Model for NoPruning {
    type Key = String;
    type State = Option<u64>;
    type Input = KvInput<u64>;
    type Output = KvOutput<u64>;
    fn partition(&self, input: &KvInput<u64>) -> String {
        self.0.partition(input)
    }
    fn init(&self) -> Option<u64> {
        self.0.init()
    }
    fn step(&self, s: &Option<u64>, i: &KvInput<u64>, o: &KvOutput<u64>) -> Option<Option<u64>> {
        self.0.step(s, i, o)
    }
    fn step_unknown(&self, s: &Option<u64>, i: &KvInput<u64>) -> Option<u64> {
        self.0.step_unknown(s, i)
    }
}

#[test]
fn pruning_read_only_operations_never_changes_the_answer() {
    let (mut legal, mut illegal) = (0, 0);
    for seed in 0..120 {
        // Hundreds of operations on one key: bitsets of several words, real backtracking.
        let config = GenConfig { processes: 5, keys: 1, ops: 200, unknown_per_mille: 40, seed };
        let mut history = kv_history(&config);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let reads: Vec<usize> = (0..history.len())
            .filter(|&i| matches!(history[i].output(), Some(KvOutput::Read(_))))
            .collect();
        if seed % 3 != 0 {
            let victim = reads[rng.random_range(0..reads.len())];
            corrupt_to_stale(&mut history, victim, &mut rng);
        }
        let options = CheckOptions::default();
        let pruned = check_operations(&KvRegister::new(), &history, &options).unwrap().result;
        let full = check_operations(&NoPruning(KvRegister::new()), &history, &options).unwrap();
        assert_eq!(pruned.is_ok(), full.result.is_ok(), "seed {seed}");
        assert!(!matches!(pruned, palisade_linearize::CheckResult::Unknown { .. }));
        if pruned.is_ok() { legal += 1 } else { illegal += 1 }
    }
    println!("{legal} legal, {illegal} illegal");
    assert!(legal > 30 && illegal > 30, "{legal} legal, {illegal} illegal");
}
