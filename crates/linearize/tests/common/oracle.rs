//! A brute-force linearizability oracle for small single-object histories.
//!
//! It shares nothing with the checker: it takes a *reference specification* as a successor
//! function (all states an operation can lead to, given its output or `None` for an unknown
//! outcome), explores every reachable (set of placed operations, state) pair, placing any
//! operation whose real-time predecessors (operations that returned strictly before its call)
//! are placed, and takes `extra` transitions that need no operation (used to make lock expiry
//! an explicit step). It accepts when every operation that returned is placed.

use std::collections::HashSet;
use std::hash::Hash;

use palisade_linearize::Operation;

/// Whether some linearization exists.
pub fn linearizable<I, O, S: Clone + Eq + Hash>(
    ops: &[Operation<I, O>],
    init: S,
    succ: impl Fn(&S, &I, Option<&O>) -> Vec<S>,
    extra: impl Fn(&S) -> Vec<S>,
) -> bool {
    assert!(ops.len() <= 16, "brute force is for small histories");
    let must: u32 = (0..ops.len()).filter(|&i| !ops[i].is_unknown()).map(|i| 1 << i).sum();
    let preds: Vec<u32> = ops
        .iter()
        .map(|o| {
            (0..ops.len())
                .filter(|&p| ops[p].ret().is_some_and(|r| r < o.call))
                .map(|p| 1 << p)
                .sum()
        })
        .collect();
    let mut seen = HashSet::new();
    let mut todo = vec![(0u32, init)];
    while let Some((mask, state)) = todo.pop() {
        if !seen.insert((mask, state.clone())) {
            continue;
        }
        if mask & must == must {
            return true;
        }
        for s in extra(&state) {
            todo.push((mask, s));
        }
        for (i, op) in ops.iter().enumerate() {
            if mask & (1 << i) != 0 || preds[i] & !mask != 0 {
                continue;
            }
            for next in succ(&state, &op.input, op.output()) {
                todo.push((mask | (1 << i), next));
            }
        }
    }
    false
}
