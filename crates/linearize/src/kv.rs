//! A key-value store as independent registers: read, write, compare-and-set, delete.
//!
//! Each key is a register that starts absent. The model is the sequential specification of
//! palisade's kv operations (and of Knossos' `cas-register`, plus delete):
//!
//! | input                       | output                 | legal when            | next state   |
//! |-----------------------------|------------------------|-----------------------|--------------|
//! | `Read`                      | `Read(v)`              | state = v             | unchanged    |
//! | `Write(v)`                  | `Written`              | always                | `Some(v)`    |
//! | `Cas { expected, new }`     | `Swapped`              | state = expected      | `Some(new)`  |
//! | `Cas { expected, .. }`      | `Mismatch`             | state ≠ expected      | unchanged    |
//! | `Delete`                    | `Deleted { existed }`  | `existed` right or `None` | `None` |
//!
//! `expected: None` means "the key must be absent" (palisade's `Expect::Absent`). Any other
//! pairing of input and output is impossible. With an unknown outcome, a write, a successful
//! or failed cas and a delete take effect as they would have; a read changes nothing (so the
//! checker never needs to place it).
//!
//! A cas that *failed* is only checked when the client knows it ran and found another value
//! (`Mismatch`); a cas that failed for any other reason (not leader, refused, timed out and
//! known not to have run) did not happen and should be left out of the history.

use std::fmt::Debug;
use std::hash::Hash;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use crate::model::Model;

/// What a kv client asks of one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOp<V> {
    /// Read the value (or learn that the key is absent).
    Read,
    /// Set the value.
    Write(V),
    /// Set `new` if the current value is `expected` (`None`: the key is absent).
    Cas {
        /// What must be there.
        expected: Option<V>,
        /// What to write.
        new: V,
    },
    /// Remove the key.
    Delete,
}

/// A kv operation on a key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KvInput<V> {
    /// The key: the partition.
    pub key: String,
    /// The operation.
    pub op: KvOp<V>,
}

impl<V> KvInput<V> {
    /// `op` on `key`.
    pub fn new(key: impl Into<String>, op: KvOp<V>) -> Self {
        KvInput { key: key.into(), op }
    }
}

/// What a kv client was told.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KvOutput<V> {
    /// The value read (`None`: absent).
    Read(Option<V>),
    /// The write was applied.
    Written,
    /// The cas found the expected value and wrote.
    Swapped,
    /// The cas ran and found another value; nothing was written.
    Mismatch,
    /// The key is gone; `existed` says whether it was there, when the client was told.
    Deleted {
        /// Whether the key existed, if known.
        existed: Option<bool>,
    },
}

/// The kv model: one register per key, all keys initially absent. `V` is the value type
/// (anything comparable and hashable; the JSON front end uses interned ids).
#[derive(Debug)]
pub struct KvRegister<V> {
    _values: PhantomData<fn() -> V>,
}

impl<V> KvRegister<V> {
    /// The model.
    pub fn new() -> Self {
        KvRegister { _values: PhantomData }
    }
}

impl<V> Default for KvRegister<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Clone for KvRegister<V> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<V: Clone + Eq + Hash + Debug> Model for KvRegister<V> {
    type Key = String;
    type State = Option<V>;
    type Input = KvInput<V>;
    type Output = KvOutput<V>;

    fn partition(&self, input: &KvInput<V>) -> String {
        input.key.clone()
    }

    fn init(&self) -> Option<V> {
        None
    }

    fn step(
        &self,
        state: &Option<V>,
        input: &KvInput<V>,
        output: &KvOutput<V>,
    ) -> Option<Option<V>> {
        match (&input.op, output) {
            (KvOp::Read, KvOutput::Read(seen)) => (seen == state).then(|| state.clone()),
            (KvOp::Write(v), KvOutput::Written) => Some(Some(v.clone())),
            (KvOp::Cas { expected, new }, KvOutput::Swapped) => {
                (expected == state).then(|| Some(new.clone()))
            }
            (KvOp::Cas { expected, .. }, KvOutput::Mismatch) => {
                (expected != state).then(|| state.clone())
            }
            (KvOp::Delete, KvOutput::Deleted { existed }) => {
                existed.is_none_or(|e| e == state.is_some()).then_some(None)
            }
            _ => None,
        }
    }

    fn is_read_only(&self, input: &KvInput<V>, output: &KvOutput<V>) -> bool {
        matches!(
            (&input.op, output),
            (KvOp::Read, KvOutput::Read(_)) | (KvOp::Cas { .. }, KvOutput::Mismatch)
        )
    }

    fn step_unknown(&self, state: &Option<V>, input: &KvInput<V>) -> Option<V> {
        match &input.op {
            KvOp::Read => state.clone(),
            KvOp::Write(v) => Some(v.clone()),
            KvOp::Cas { expected, new } => {
                if expected == state {
                    Some(new.clone())
                } else {
                    state.clone()
                }
            }
            KvOp::Delete => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(state: Option<u8>, op: KvOp<u8>, out: KvOutput<u8>) -> Option<Option<u8>> {
        KvRegister::new().step(&state, &KvInput::new("k", op), &out)
    }

    #[test]
    fn each_row_of_the_table() {
        assert_eq!(step(Some(1), KvOp::Read, KvOutput::Read(Some(1))), Some(Some(1)));
        assert_eq!(step(Some(1), KvOp::Read, KvOutput::Read(None)), None);
        assert_eq!(step(None, KvOp::Read, KvOutput::Read(None)), Some(None));
        assert_eq!(step(None, KvOp::Write(2), KvOutput::Written), Some(Some(2)));
        let cas = |e, n| KvOp::Cas { expected: e, new: n };
        assert_eq!(step(Some(1), cas(Some(1), 3), KvOutput::Swapped), Some(Some(3)));
        assert_eq!(step(Some(2), cas(Some(1), 3), KvOutput::Swapped), None);
        assert_eq!(step(None, cas(None, 3), KvOutput::Swapped), Some(Some(3)));
        assert_eq!(step(Some(2), cas(Some(1), 3), KvOutput::Mismatch), Some(Some(2)));
        assert_eq!(step(Some(1), cas(Some(1), 3), KvOutput::Mismatch), None);
        let deleted = |existed| KvOutput::Deleted { existed };
        assert_eq!(step(Some(1), KvOp::Delete, deleted(Some(true))), Some(None));
        assert_eq!(step(None, KvOp::Delete, deleted(Some(true))), None);
        assert_eq!(step(None, KvOp::Delete, deleted(None)), Some(None));
    }

    #[test]
    fn outputs_of_the_wrong_kind_are_impossible() {
        assert_eq!(step(Some(1), KvOp::Read, KvOutput::Written), None);
        assert_eq!(step(Some(1), KvOp::Write(1), KvOutput::Read(Some(1))), None);
        assert_eq!(step(None, KvOp::Delete, KvOutput::Swapped), None);
    }

    #[test]
    fn unknown_outcomes_take_effect_as_they_would_have() {
        let m = KvRegister::<u8>::new();
        let input = |op| KvInput::new("k", op);
        assert_eq!(m.step_unknown(&Some(1), &input(KvOp::Read)), Some(1));
        assert_eq!(m.step_unknown(&Some(1), &input(KvOp::Write(5))), Some(5));
        let cas = KvOp::Cas { expected: Some(1), new: 7 };
        assert_eq!(m.step_unknown(&Some(1), &input(cas.clone())), Some(7));
        assert_eq!(m.step_unknown(&Some(2), &input(cas)), Some(2));
        assert_eq!(m.step_unknown(&Some(2), &input(KvOp::Delete)), None);
    }
}
