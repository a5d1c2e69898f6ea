//! Histories of a real store, with random concurrency windows: linearizable by construction.
//!
//! Every operation gets a linearization point `10 * (i + 1)` and is applied to a real
//! `BTreeMap` there, which gives its output. Each process's operations are then widened into
//! intervals around their points that never overlap each other: between two consecutive
//! points `a < b` of one process, the first returns in `[a, mid]` and the next is called in
//! `(mid, b]`. Some operations get an unknown outcome (they took effect, the client never
//! heard), and some unknown operations are added that never took effect at all.

use std::collections::BTreeMap;

use palisade_linearize::{KvInput, KvOp, KvOutput, Operation};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A kv operation with `u64` values.
pub type KvOperation = Operation<KvInput<u64>, KvOutput<u64>>;

/// What to generate.
#[derive(Copy, Clone, Debug)]
pub struct GenConfig {
    /// Client processes.
    pub processes: u64,
    /// Distinct keys.
    pub keys: usize,
    /// Operations.
    pub ops: usize,
    /// Per mille of operations whose outcome is unknown (and as many extra unknown operations
    /// that never took effect).
    pub unknown_per_mille: u32,
    /// Seed of every draw.
    pub seed: u64,
}

struct Planned {
    process: u64,
    input: KvInput<u64>,
    /// `None`: unknown outcome.
    output: Option<KvOutput<u64>>,
    point: u64,
}

fn random_op(rng: &mut ChaCha8Rng, current: Option<u64>, next_value: &mut u64) -> KvOp<u64> {
    let roll = rng.random_range(0..100);
    *next_value += 1;
    match roll {
        0..50 => KvOp::Read,
        50..75 => KvOp::Write(*next_value),
        75..95 => {
            let expected =
                if rng.random_bool(0.5) { current } else { Some(rng.random_range(0..*next_value)) };
            KvOp::Cas { expected, new: *next_value }
        }
        _ => KvOp::Delete,
    }
}

fn apply(store: &mut BTreeMap<String, u64>, input: &KvInput<u64>) -> KvOutput<u64> {
    let current = store.get(&input.key).copied();
    match &input.op {
        KvOp::Read => KvOutput::Read(current),
        KvOp::Write(v) => {
            store.insert(input.key.clone(), *v);
            KvOutput::Written
        }
        KvOp::Cas { expected, new } if *expected == current => {
            store.insert(input.key.clone(), *new);
            KvOutput::Swapped
        }
        KvOp::Cas { .. } => KvOutput::Mismatch,
        KvOp::Delete => KvOutput::Deleted { existed: Some(store.remove(&input.key).is_some()) },
    }
}

fn plan(config: &GenConfig, rng: &mut ChaCha8Rng) -> Vec<Planned> {
    let mut store = BTreeMap::new();
    let mut next_value = 0;
    let mut planned = Vec::with_capacity(config.ops);
    let unknown = f64::from(config.unknown_per_mille) / 1000.0;
    for i in 0..config.ops {
        let process = rng.random_range(0..config.processes);
        let key = format!("k{}", rng.random_range(0..config.keys));
        let current = store.get(&key).copied();
        let input = KvInput::new(key, random_op(rng, current, &mut next_value));
        let point = 10 * (i as u64 + 1);
        if rng.random_bool(unknown) && input.op != KvOp::Read {
            // Never took effect: not applied.
            planned.push(Planned { process, input, output: None, point });
            continue;
        }
        let output = apply(&mut store, &input);
        let output = (!rng.random_bool(unknown)).then_some(output);
        planned.push(Planned { process, input, output, point });
    }
    planned
}

/// Generates a linearizable kv history.
pub fn kv_history(config: &GenConfig) -> Vec<KvOperation> {
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let planned = plan(config, &mut rng);
    let slack = 20 * config.processes;
    let mut calls = vec![0; planned.len()];
    let mut rets = vec![0; planned.len()];
    for p in 0..config.processes {
        let mine: Vec<usize> = (0..planned.len()).filter(|&i| planned[i].process == p).collect();
        for (n, &i) in mine.iter().enumerate() {
            let point = planned[i].point;
            calls[i] = match n.checked_sub(1).map(|m| planned[mine[m]].point) {
                None => rng.random_range(point.saturating_sub(slack)..=point),
                Some(prev) => rng.random_range((prev + point) / 2 + 1..=point),
            };
            rets[i] = match mine.get(n + 1).map(|&j| planned[j].point) {
                None => rng.random_range(point..=point + slack),
                Some(next) => rng.random_range(point..=(point + next) / 2),
            };
        }
    }
    planned
        .into_iter()
        .enumerate()
        .map(|(i, p)| match p.output {
            Some(out) => Operation::returned(p.process, p.input, calls[i], rets[i], out),
            None => Operation::unknown(p.process, p.input, calls[i]),
        })
        .collect()
}
