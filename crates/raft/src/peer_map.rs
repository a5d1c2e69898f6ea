//! [`PeerMap`]: per-peer state kept in a vector sorted by node id.
//!
//! Why not a `BTreeMap`: a cluster has a handful of peers (at most `VOTERS_MAX`), and the
//! leader looks its progress tracker up several times per message. A scan of a short sorted
//! vector costs a few instructions where a B-tree search or iteration costs tens, and walking
//! the peers in id order (the order a `BTreeMap` gives, which the protocol's output depends on)
//! is a plain slice iteration.

use std::fmt;

use crate::types::NodeId;

/// A map from peer id to `V`, iterated in ascending id order.
#[derive(Clone)]
pub(crate) struct PeerMap<V> {
    /// Sorted by id, ids unique.
    entries: Vec<(NodeId, V)>,
}

impl<V> Default for PeerMap<V> {
    fn default() -> Self {
        PeerMap { entries: Vec::new() }
    }
}

impl<V> PeerMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        PeerMap::default()
    }

    fn position(&self, id: NodeId) -> Option<usize> {
        self.entries.iter().position(|&(k, _)| k == id)
    }

    /// The value of `id`.
    pub fn get(&self, id: &NodeId) -> Option<&V> {
        self.entries.iter().find(|(k, _)| k == id).map(|(_, v)| v)
    }

    /// The value of `id`, mutably.
    pub fn get_mut(&mut self, id: &NodeId) -> Option<&mut V> {
        self.entries.iter_mut().find(|(k, _)| k == id).map(|(_, v)| v)
    }

    /// Whether `id` has a value.
    pub fn contains_key(&self, id: &NodeId) -> bool {
        self.position(*id).is_some()
    }

    /// Sets the value of `id`; returns the previous one.
    pub fn insert(&mut self, id: NodeId, value: V) -> Option<V> {
        match self.entries.binary_search_by_key(&id, |&(k, _)| k) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.entries.insert(at, (id, value));
                None
            }
        }
    }

    /// The value of `id`, inserted from `make` first if there is none.
    pub fn get_or_insert_with(&mut self, id: NodeId, make: impl FnOnce() -> V) -> &mut V {
        let at = match self.position(id) {
            Some(at) => at,
            None => {
                let at = self.entries.partition_point(|&(k, _)| k < id);
                self.entries.insert(at, (id, make()));
                at
            }
        };
        &mut self.entries[at].1
    }

    /// Keeps only the entries for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&NodeId, &mut V) -> bool) {
        self.entries.retain_mut(|(k, v)| keep(k, v));
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The ids, ascending.
    pub fn keys(&self) -> impl Iterator<Item = &NodeId> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values, mutably, in ascending id order.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<V> FromIterator<(NodeId, V)> for PeerMap<V> {
    /// Like a `BTreeMap`: a later value for the same id replaces an earlier one.
    fn from_iter<I: IntoIterator<Item = (NodeId, V)>>(iter: I) -> Self {
        let mut map = PeerMap::new();
        for (id, value) in iter {
            map.insert(id, value);
        }
        map
    }
}

impl<V: fmt::Debug> fmt::Debug for PeerMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(k, v)| (k, v))).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_an_ordered_map() {
        let mut m: PeerMap<u32> = [(5, 50), (2, 20), (9, 90), (2, 21)].into_iter().collect();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![2, 5, 9]);
        assert_eq!(m.get(&2), Some(&21));
        assert_eq!(m.insert(7, 70), None);
        assert_eq!(m.insert(7, 71), Some(70));
        *m.get_or_insert_with(1, || 10) += 1;
        *m.get_or_insert_with(1, || 99) += 1;
        assert_eq!(m.get(&1), Some(&12));
        m.retain(|&k, _| k != 5);
        assert!(!m.contains_key(&5));
        for v in m.values_mut() {
            *v += 1;
        }
        let all: Vec<(NodeId, u32)> = m.keys().map(|&k| (k, m.get(&k).copied().unwrap())).collect();
        assert_eq!(all, vec![(1, 13), (2, 22), (7, 72), (9, 91)]);
        assert_eq!(format!("{m:?}"), "{1: 13, 2: 22, 7: 72, 9: 91}");
        m.clear();
        assert!(m.get_mut(&1).is_none());
    }
}
