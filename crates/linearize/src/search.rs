//! The search for one partition: Wing & Gong's algorithm, with Lowe's just-in-time
//! linearization and Porcupine's memo cache.
//!
//! The history is laid out as a doubly linked list of call and return entries in time order
//! (calls before returns at equal times, so touching intervals count as concurrent). The search
//! walks the list from the head. At a call entry it tries to linearize that operation *now*:
//! if the model accepts its output in the current state, the operation's two entries are
//! unlinked ("lifted"), the old state is pushed on a stack, and the walk restarts at the head.
//! At a return entry it has met an operation that returned before anything could explain it,
//! so the last choice was wrong: pop, relink, and try the next call after the popped one. The
//! list is empty of returns exactly when every operation that returned has been linearized.
//!
//! Lowe's observation keeps this from being hopeless: only operations whose call precedes the
//! first pending return are candidates, so the branching factor is the concurrency, not the
//! history length. Porcupine's keeps it from being exponential in practice: a configuration is
//! (set of linearized operations, state of the object), the rest of the search depends on
//! nothing else, so every configuration is explored once — a hash set of (bitset, state)
//! remembers them. The set's hash is kept incrementally (a random word per operation, XORed in
//! and out, as in Zobrist hashing). The set itself is stored compactly, which matters for a
//! partition of 10,000 operations: number the operations that returned by call order; all
//! those before the first one not linearized (`p`) are linearized, and every linearized one
//! was called before `p` returned, so the set is `p` plus the few words of the bitset around
//! the concurrency window — plus a small bitset of the operations with unknown outcome.
//!
//! Read-only operations (reads, failed cas; [`Model::is_read_only`]) are placed as soon as
//! they are legal and never tried later instead: moving such an operation earlier never breaks
//! a linearization, so a failure after placing one means the choice before it was wrong.
//!
//! Operations with an unknown outcome have a call entry and no return entry: they are
//! candidates at every point after their call, and the search may finish without them, which
//! is "they never took effect" (equivalently: they took effect after everything else). Trying
//! one that would leave the state unchanged is skipped: that is the same as not taking it.
//!
//! The search counts steps (one entry considered) and cache entries against a budget and stops
//! with [`SearchResult::Exhausted`] past either: pathological histories answer "unknown".
//! Explanations cost nothing on the way: the first pass only notes *when* it first failed
//! deepest; if the history turns out illegal, a second, identical pass stops at that step and
//! copies the prefix.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::history::{Operation, Outcome};
use crate::limits::{Budget, EXPLAIN_PENDING_OPS_MAX};
use crate::model::Model;

const NIL: usize = usize::MAX;
const HEAD: usize = 0;

/// What the search of one partition found. Indices are into the partition's operations.
#[derive(Debug)]
pub(crate) enum SearchResult<S> {
    /// Every operation that returned has been linearized.
    Linearizable,
    /// No linearization exists; the deepest failure.
    Illegal(Failure<S>),
    /// The budget ran out first.
    Exhausted(Budget),
}

/// The deepest point the search reached before failing.
#[derive(Debug)]
pub(crate) struct Failure<S> {
    /// The longest linearizable prefix, in linearization order.
    pub prefix: Vec<usize>,
    /// The object's state after the prefix.
    pub state: S,
    /// The operation whose return was reached before it could be linearized.
    pub blocked: usize,
    /// Operations called and not linearized at that point (at most
    /// [`EXPLAIN_PENDING_OPS_MAX`]), other than `blocked`.
    pub pending: Vec<usize>,
}

/// The budget of one search.
#[derive(Copy, Clone, Debug)]
pub(crate) struct SearchBudget {
    pub steps_max: u64,
    pub cache_entries_max: usize,
}

/// Searches for a linearization of `ops` (one partition). Returns the result and the number of
/// steps taken (of the first pass).
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    budget: SearchBudget,
) -> (SearchResult<M::State>, u64) {
    let mut first = Search::new(model, ops, budget);
    match first.run(None) {
        Run::Done(result) => (result, first.steps),
        Run::Failed { at_step } => {
            let steps = first.steps;
            drop(first);
            let mut second = Search::new(model, ops, budget);
            match second.run(Some(at_step)) {
                Run::Done(SearchResult::Illegal(failure)) => {
                    (SearchResult::Illegal(failure), steps)
                }
                other => panic!("the replayed search diverged from the first: {other:?}"),
            }
        }
    }
}

#[derive(Debug)]
enum Run<S> {
    Done(SearchResult<S>),
    /// Illegal; the deepest failure was first reached at this step.
    Failed {
        at_step: u64,
    },
}

/// The doubly linked list of entries. Node 0 is the head sentinel.
struct Links {
    next: Vec<usize>,
    prev: Vec<usize>,
    op_of: Vec<usize>,
    is_call: Vec<bool>,
    call_node: Vec<usize>,
    /// `NIL` for operations with an unknown outcome.
    ret_node: Vec<usize>,
}

impl Links {
    fn build<I, O>(ops: &[&Operation<I, O>]) -> Self {
        // (time, 0 = call / 1 = return, op): calls sort before returns at equal times.
        let mut entries: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            entries.push((op.call, 0, i));
            if let Some(ret) = op.ret() {
                assert!(ret >= op.call, "validated before the search");
                entries.push((ret, 1, i));
            }
        }
        entries.sort_unstable();
        let nodes = entries.len() + 1;
        let mut links = Links {
            next: (1..=nodes).map(|n| if n == nodes { NIL } else { n }).collect(),
            prev: (0..nodes).map(|n| n.wrapping_sub(1)).collect(),
            op_of: Vec::with_capacity(nodes),
            is_call: Vec::with_capacity(nodes),
            call_node: vec![NIL; ops.len()],
            ret_node: vec![NIL; ops.len()],
        };
        links.op_of.push(NIL);
        links.is_call.push(false);
        for (n, &(_, kind, op)) in entries.iter().enumerate() {
            let node = n + 1;
            links.op_of.push(op);
            links.is_call.push(kind == 0);
            if kind == 0 {
                links.call_node[op] = node;
            } else {
                links.ret_node[op] = node;
            }
        }
        assert!(links.call_node.iter().all(|&n| n != NIL));
        links
    }

    fn unlink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = x;
        if x != NIL {
            self.prev[x] = p;
        }
    }

    fn relink(&mut self, n: usize) {
        let (p, x) = (self.prev[n], self.next[n]);
        self.next[p] = n;
        if x != NIL {
            self.prev[x] = n;
        }
    }

    /// Removes an operation's entries (call first, then return).
    fn lift(&mut self, op: usize) {
        self.unlink(self.call_node[op]);
        if self.ret_node[op] != NIL {
            self.unlink(self.ret_node[op]);
        }
    }

    /// Puts them back, in the reverse order of [`Links::lift`] (dancing links).
    fn unlift(&mut self, op: usize) {
        if self.ret_node[op] != NIL {
            self.relink(self.ret_node[op]);
        }
        self.relink(self.call_node[op]);
    }
}

/// One memo entry: a configuration already explored.
struct CacheKey<S> {
    hash: u64,
    bits: Box<[u64]>,
    state: S,
}

impl<S: PartialEq> PartialEq for CacheKey<S> {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.bits == other.bits && self.state == other.state
    }
}

impl<S: Eq> Eq for CacheKey<S> {}

impl<S> Hash for CacheKey<S> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.hash);
    }
}

/// A hasher for keys that carry their own well-mixed hash.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A fast hasher for model states (FxHash's multiply-rotate step).
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.write_u64(word);
        }
        for &b in chunks.remainder() {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

type Cache<S> = HashSet<CacheKey<S>, BuildHasherDefault<PassThrough>>;

/// The set of linearized operations, with its compact canonical form (see the module doc).
struct Linearized {
    /// Zobrist word of each operation.
    zobrist: Vec<u64>,
    /// Rank of each operation: by call order among the operations that returned, or among
    /// those with an unknown outcome.
    rank: Vec<usize>,
    unknown: Vec<bool>,
    known_bits: Vec<u64>,
    known_len: usize,
    /// Linearized operations that returned.
    known_count: usize,
    /// Rank of the first operation that returned and is not linearized.
    first_unset: usize,
    unknown_bits: Vec<u64>,
    hash: u64,
}

impl Linearized {
    fn new<I, O>(ops: &[&Operation<I, O>]) -> Self {
        let mut known: Vec<usize> = (0..ops.len()).filter(|&i| !ops[i].is_unknown()).collect();
        known.sort_by_key(|&i| (ops[i].call, i));
        let unknown: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].is_unknown()).collect();
        let mut rank = vec![0; ops.len()];
        for list in [&known, &unknown] {
            for (r, &i) in list.iter().enumerate() {
                rank[i] = r;
            }
        }
        Linearized {
            zobrist: (0..ops.len() as u64)
                .map(|i| mix(i.wrapping_add(0x9e37_79b9_7f4a_7c15)))
                .collect(),
            rank,
            unknown: ops.iter().map(|op| op.is_unknown()).collect(),
            known_bits: vec![0; known.len().div_ceil(64)],
            known_len: known.len(),
            known_count: 0,
            first_unset: 0,
            unknown_bits: vec![0; unknown.len().div_ceil(64)],
            hash: 0,
        }
    }

    fn flip(&mut self, op: usize) {
        self.hash ^= self.zobrist[op];
        let r = self.rank[op];
        let (word, bit) = (r / 64, 1u64 << (r % 64));
        if self.unknown[op] {
            self.unknown_bits[word] ^= bit;
            return;
        }
        self.known_bits[word] ^= bit;
        if self.known_bits[word] & bit != 0 {
            self.known_count += 1;
            while self.first_unset < self.known_len && self.is_set(self.first_unset) {
                self.first_unset += 1;
            }
        } else {
            self.known_count -= 1;
            self.first_unset = self.first_unset.min(r);
        }
    }

    fn is_set(&self, r: usize) -> bool {
        self.known_bits[r / 64] & (1 << (r % 64)) != 0
    }

    /// The canonical compact form: `[p, window words.., unknown words..]`.
    fn key(&self) -> Box<[u64]> {
        let p = self.first_unset;
        let mut above = self.known_count - p;
        let mut key = Vec::with_capacity(2 + self.unknown_bits.len());
        key.push(p as u64);
        let mut w = p / 64;
        let mut below_p_in_word = p % 64;
        while above > 0 {
            let word = self.known_bits[w];
            above -= word.count_ones() as usize - below_p_in_word;
            below_p_in_word = 0;
            key.push(word);
            w += 1;
        }
        key.extend_from_slice(&self.unknown_bits);
        key.into_boxed_slice()
    }
}

struct Search<'a, M: Model> {
    model: &'a M,
    ops: &'a [&'a Operation<M::Input, M::Output>],
    budget: SearchBudget,
    links: Links,
    /// Whether each operation is read-only ([`Model::is_read_only`]).
    read_only: Vec<bool>,
    linearized: Linearized,
    state: M::State,
    /// (linearized operation, state before it).
    stack: Vec<(usize, M::State)>,
    cache: Cache<M::State>,
    /// Operations that returned and are not linearized yet.
    returned_pending: usize,
    steps: u64,
    /// Depth and step of the deepest failure so far.
    deepest: Option<(usize, u64)>,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(
        model: &'a M,
        ops: &'a [&'a Operation<M::Input, M::Output>],
        budget: SearchBudget,
    ) -> Self {
        Search {
            model,
            ops,
            budget,
            links: Links::build(ops),
            linearized: Linearized::new(ops),
            read_only: ops
                .iter()
                .map(|op| op.output().is_some_and(|out| model.is_read_only(&op.input, out)))
                .collect(),
            state: model.init(),
            stack: Vec::new(),
            cache: Cache::default(),
            returned_pending: ops.iter().filter(|op| !op.is_unknown()).count(),
            steps: 0,
            deepest: None,
        }
    }

    fn run(&mut self, capture_at: Option<u64>) -> Run<M::State> {
        let mut node = self.links.next[HEAD];
        loop {
            if self.returned_pending == 0 {
                return Run::Done(SearchResult::Linearizable);
            }
            if self.steps >= self.budget.steps_max {
                return Run::Done(SearchResult::Exhausted(Budget::SearchSteps));
            }
            self.steps += 1;
            assert!(node != NIL, "a pending return entry is always ahead of the walk");
            let op = self.links.op_of[node];
            if self.links.is_call[node] {
                node = if self.try_linearize(op) {
                    self.links.next[HEAD]
                } else {
                    self.links.next[node]
                };
                if self.cache.len() > self.budget.cache_entries_max {
                    return Run::Done(SearchResult::Exhausted(Budget::CacheEntries));
                }
                continue;
            }
            if capture_at == Some(self.steps) {
                return Run::Done(SearchResult::Illegal(self.capture(node)));
            }
            if self.deepest.is_none_or(|(depth, _)| self.stack.len() > depth) {
                self.deepest = Some((self.stack.len(), self.steps));
            }
            match self.backtrack() {
                Some(next) => node = next,
                None => {
                    let (_, at_step) = self.deepest.expect("a failure was noted before");
                    return Run::Failed { at_step };
                }
            }
        }
    }

    /// Tries to linearize `op` now; on success lifts it and pushes the old state.
    fn try_linearize(&mut self, op: usize) -> bool {
        let operation = self.ops[op];
        let next = match &operation.outcome {
            Outcome::Returned { output, .. } => {
                self.model.step(&self.state, &operation.input, output)
            }
            Outcome::Unknown => {
                let next = self.model.step_unknown(&self.state, &operation.input);
                (next != self.state).then_some(next)
            }
        };
        let Some(next) = next else { return false };
        self.linearized.flip(op);
        let key = CacheKey {
            hash: mix(self.linearized.hash ^ state_hash(&next)),
            bits: self.linearized.key(),
            state: next.clone(),
        };
        if !self.cache.insert(key) {
            self.linearized.flip(op);
            return false;
        }
        let before = std::mem::replace(&mut self.state, next);
        self.stack.push((op, before));
        self.links.lift(op);
        if !operation.is_unknown() {
            self.returned_pending -= 1;
        }
        true
    }

    /// Undoes the last linearization; returns the node to continue from, or `None` when there
    /// is nothing left to undo. A read-only operation is never an alternative worth trying
    /// (see [`Model::is_read_only`]): when the search fails after placing one, the choice
    /// before it was wrong, so that is undone too.
    fn backtrack(&mut self) -> Option<usize> {
        loop {
            let (op, before) = self.stack.pop()?;
            self.state = before;
            self.linearized.flip(op);
            self.links.unlift(op);
            if !self.ops[op].is_unknown() {
                self.returned_pending += 1;
            }
            if !self.read_only[op] {
                return Some(self.links.next[self.links.call_node[op]]);
            }
        }
    }

    /// The failure at return entry `node`: the prefix, the state, the pending calls.
    fn capture(&self, node: usize) -> Failure<M::State> {
        let blocked = self.links.op_of[node];
        let mut pending = Vec::new();
        let mut n = self.links.next[HEAD];
        while n != node && pending.len() < EXPLAIN_PENDING_OPS_MAX {
            let op = self.links.op_of[n];
            if self.links.is_call[n] && op != blocked {
                pending.push(op);
            }
            n = self.links.next[n];
        }
        Failure {
            prefix: self.stack.iter().map(|(op, _)| *op).collect(),
            state: self.state.clone(),
            blocked,
            pending,
        }
    }
}

fn state_hash<S: Hash>(state: &S) -> u64 {
    let mut h = Fx::default();
    state.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn the_compact_key_is_a_bijection_of_the_linearized_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        // 300 operations, one in ten with an unknown outcome, calls in shuffled order.
        let ops: Vec<Operation<(), ()>> = (0..300u64)
            .map(|i| {
                let call = rng.random_range(0..1000);
                if i % 10 == 3 {
                    Operation::unknown(i, (), call)
                } else {
                    Operation::returned(i, (), call, call + 5, ())
                }
            })
            .collect();
        let refs: Vec<&Operation<(), ()>> = ops.iter().collect();
        let mut lin = Linearized::new(&refs);
        let mut set = BTreeSet::new();
        let mut key_of: HashMap<Vec<usize>, Box<[u64]>> = HashMap::new();
        let mut set_of: HashMap<Box<[u64]>, Vec<usize>> = HashMap::new();
        for _ in 0..20_000 {
            // Flip mostly near the front of the call order, so `p` moves across words.
            let op = if rng.random_bool(0.8) {
                rng.random_range(0..ops.len().min(set.len() + 70))
            } else {
                rng.random_range(0..ops.len())
            };
            lin.flip(op);
            if !set.remove(&op) {
                set.insert(op);
            }
            let members: Vec<usize> = set.iter().copied().collect();
            let key = lin.key();
            let hash = members.iter().fold(0, |h, &i| h ^ lin.zobrist[i]);
            assert_eq!(lin.hash, hash);
            assert_eq!(key_of.entry(members.clone()).or_insert_with(|| key.clone()), &key);
            assert_eq!(set_of.entry(key).or_insert_with(|| members.clone()), &members);
        }
        assert!(key_of.len() > 10_000, "explored {} sets", key_of.len());
    }

    #[test]
    fn lift_and_unlift_restore_the_list() {
        let ops: Vec<Operation<(), ()>> = vec![
            Operation::returned(0, (), 0, 10, ()),
            Operation::returned(1, (), 5, 5, ()),
            Operation::unknown(2, (), 6),
            Operation::returned(3, (), 7, 20, ()),
        ];
        let refs: Vec<&Operation<(), ()>> = ops.iter().collect();
        let mut links = Links::build(&refs);
        let walk = |l: &Links| {
            let mut out = Vec::new();
            let mut n = l.next[HEAD];
            while n != NIL {
                out.push((l.op_of[n], l.is_call[n]));
                n = l.next[n];
            }
            out
        };
        let before = walk(&links);
        // Calls before returns at equal times: op 1 is called and returns at 5.
        assert_eq!(before[..3], [(0, true), (1, true), (1, false)]);
        for order in [[1, 2, 0, 3], [3, 0, 2, 1]] {
            for &op in &order {
                links.lift(op);
            }
            assert_eq!(walk(&links), Vec::new());
            for &op in order.iter().rev() {
                links.unlift(op);
            }
            assert_eq!(walk(&links), before);
        }
    }
}
