//! Partitions: which directed links are cut.
//!
//! Real partitions are rarely a clean cut into two halves. A switch port that fails in one
//! direction gives a one-way partition (A hears B, B does not hear A), which is how a node that
//! cannot be heard keeps starting elections; a node on two networks bridges two halves that
//! cannot hear each other, so both may think it is on their side; a mis-configured mesh can leave
//! every node hearing only its neighbours (a ring). Raft's PreVote and CheckQuorum exist because
//! of exactly these shapes, so the simulator names each of them.
//!
//! A [`Partition`] is a shape over the processes it names; processes it does not name keep all
//! their links (so "partition the servers" leaves clients talking to everyone). The simulator
//! turns it into a [`Reachability`] matrix, looked up on every send and every arrival. A link
//! from a process to itself is never cut.

use serde::{Deserialize, Serialize};

use crate::ProcId;

/// A shape of partition. Build one with the constructors, which check their arguments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Partition {
    /// The process neither hears nor is heard by anyone.
    Isolate(ProcId),
    /// Symmetric split: processes in different groups cannot reach each other.
    Split(Vec<Vec<ProcId>>),
    /// Messages from `from` to `to` are lost; messages from `to` to `from` still arrive.
    OneWay {
        /// The processes that cannot be heard by `to`.
        from: Vec<ProcId>,
        /// The processes that cannot hear `from`.
        to: Vec<ProcId>,
    },
    /// `left` and `right` cannot reach each other; `bridge` reaches and is reached by both.
    Bridge {
        /// One side.
        left: Vec<ProcId>,
        /// The other side.
        right: Vec<ProcId>,
        /// The one process on both sides.
        bridge: ProcId,
    },
    /// Each member reaches only its two neighbours in this order (the last neighbours the first).
    Ring(Vec<ProcId>),
    /// Exactly these directed links `(from, to)` are cut.
    Cuts(Vec<(ProcId, ProcId)>),
}

impl Partition {
    /// `a` is cut off from everyone, both ways.
    pub fn isolate(a: ProcId) -> Partition {
        Partition::Isolate(a)
    }

    /// Symmetric split into `groups`, which must be disjoint.
    ///
    /// # Panics
    /// If a process is in two groups.
    pub fn split(groups: Vec<Vec<ProcId>>) -> Partition {
        let mut all: Vec<ProcId> = groups.iter().flatten().copied().collect();
        let len = all.len();
        all.sort();
        all.dedup();
        assert!(all.len() == len, "partition groups overlap: {groups:?}");
        Partition::Split(groups)
    }

    /// One-way: `from` cannot reach `to`, `to` still reaches `from`.
    ///
    /// # Panics
    /// If the sets overlap.
    pub fn one_way(from: Vec<ProcId>, to: Vec<ProcId>) -> Partition {
        assert!(from.iter().all(|p| !to.contains(p)), "one-way sets overlap");
        Partition::OneWay { from, to }
    }

    /// Splits `procs` into `minority` and the rest (the majority), symmetrically.
    ///
    /// # Panics
    /// If `minority` is not a strict minority of `procs` or names a process outside it.
    pub fn majority_minority(procs: &[ProcId], minority: &[ProcId]) -> Partition {
        assert!(minority.iter().all(|p| procs.contains(p)), "minority outside procs");
        assert!(minority.len() * 2 < procs.len(), "not a strict minority");
        let majority = procs.iter().copied().filter(|p| !minority.contains(p)).collect();
        Partition::split(vec![majority, minority.to_vec()])
    }

    /// `left` and `right` cannot reach each other; `bridge` sees both.
    ///
    /// # Panics
    /// If the sides overlap or contain the bridge.
    pub fn bridge(left: Vec<ProcId>, right: Vec<ProcId>, bridge: ProcId) -> Partition {
        assert!(left.iter().all(|p| !right.contains(p)), "bridge sides overlap");
        assert!(!left.contains(&bridge), "bridge on the left side");
        assert!(!right.contains(&bridge), "bridge on the right side");
        Partition::Bridge { left, right, bridge }
    }

    /// Each of `procs` reaches only its neighbours in this cyclic order.
    ///
    /// # Panics
    /// If a process appears twice.
    pub fn ring(procs: Vec<ProcId>) -> Partition {
        let mut sorted = procs.clone();
        sorted.sort();
        sorted.dedup();
        assert!(sorted.len() == procs.len(), "ring names a process twice");
        Partition::Ring(procs)
    }

    /// Whether this shape cuts the directed link `from -> to`.
    pub fn cuts(&self, from: ProcId, to: ProcId) -> bool {
        if from == to {
            return false;
        }
        match self {
            Partition::Isolate(a) => from == *a || to == *a,
            Partition::Split(groups) => {
                let group_of = |p: ProcId| groups.iter().position(|g| g.contains(&p));
                matches!((group_of(from), group_of(to)), (Some(a), Some(b)) if a != b)
            }
            Partition::OneWay { from: f, to: t } => f.contains(&from) && t.contains(&to),
            Partition::Bridge { left, right, .. } => {
                (left.contains(&from) && right.contains(&to))
                    || (right.contains(&from) && left.contains(&to))
            }
            Partition::Ring(members) => ring_cuts(members, from, to),
            Partition::Cuts(cuts) => cuts.contains(&(from, to)),
        }
    }
}

fn ring_cuts(members: &[ProcId], from: ProcId, to: ProcId) -> bool {
    let (Some(i), Some(j)) =
        (members.iter().position(|&p| p == from), members.iter().position(|&p| p == to))
    else {
        return false;
    };
    let n = members.len();
    let neighbours = (i + 1) % n == j || (j + 1) % n == i;
    !neighbours
}

/// A directed reachability matrix over processes `0..n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reachability {
    n: usize,
    cut: Vec<bool>,
}

impl Reachability {
    /// Every link up.
    pub fn full(n: usize) -> Reachability {
        Reachability { n, cut: vec![false; n * n] }
    }

    /// The links `partition` leaves up among `n` processes.
    pub fn of(n: usize, partition: &Partition) -> Reachability {
        let mut r = Reachability::full(n);
        for from in 0..n {
            for to in 0..n {
                let cut = partition.cuts(proc_at(from), proc_at(to));
                r.cut[from * n + to] = cut;
            }
        }
        r
    }

    /// Number of processes covered.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether the matrix covers no process.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether a message from `from` reaches `to`. Processes outside the matrix are reachable.
    pub fn can_reach(&self, from: ProcId, to: ProcId) -> bool {
        let (f, t) = (from.index(), to.index());
        if f >= self.n || t >= self.n {
            return true;
        }
        !self.cut[f * self.n + t]
    }
}

fn proc_at(i: usize) -> ProcId {
    ProcId(u32::try_from(i).expect("process count fits u32"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[u32]) -> Vec<ProcId> {
        v.iter().map(|&i| ProcId(i)).collect()
    }

    #[test]
    fn isolate_cuts_both_ways_and_nothing_else() {
        let r = Reachability::of(3, &Partition::isolate(ProcId(1)));
        assert!(!r.can_reach(ProcId(0), ProcId(1)));
        assert!(!r.can_reach(ProcId(1), ProcId(2)));
        assert!(r.can_reach(ProcId(0), ProcId(2)));
        assert!(r.can_reach(ProcId(1), ProcId(1)));
    }

    #[test]
    fn majority_minority_is_symmetric_and_leaves_others() {
        let p = Partition::majority_minority(&ids(&[0, 1, 2, 3, 4]), &ids(&[3, 4]));
        let r = Reachability::of(6, &p);
        assert!(r.can_reach(ProcId(0), ProcId(2)));
        assert!(r.can_reach(ProcId(3), ProcId(4)));
        assert!(!r.can_reach(ProcId(0), ProcId(3)));
        assert!(!r.can_reach(ProcId(4), ProcId(1)));
        assert!(r.can_reach(ProcId(5), ProcId(3)), "an unnamed client keeps its links");
        assert!(r.can_reach(ProcId(0), ProcId(5)));
    }

    #[test]
    #[should_panic(expected = "not a strict minority")]
    fn majority_minority_rejects_a_half() {
        let _ = Partition::majority_minority(&ids(&[0, 1, 2, 3]), &ids(&[2, 3]));
    }
}
