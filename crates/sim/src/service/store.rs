//! [`StoreProcess`]: the storage a lock protects, with or without the fence check.
//!
//! Figure 8-4 of the chapter is a lost update in *someone else's* storage: a client whose lock
//! expired during a pause writes after the new holder did. The lock service cannot prevent
//! it; only the storage can, by refusing a token lower than one it has already seen (figure
//! 8-5). This store does exactly that with `palisade_lock::FenceGuard` when `checked`, per
//! key, and rejects unfenced writes; unchecked, it accepts everything, like most storage.

use std::collections::BTreeMap;

use palisade_node::lock::{FenceGuard, MemoryPersist, Token};

use super::{Msg, Obs, StoreObs, SvcCtx};
use crate::ProcId;

/// A stored value and who wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreValue {
    /// The bytes.
    pub value: Vec<u8>,
    /// The token the write presented.
    pub token: Option<Token>,
    /// The writer.
    pub writer: ProcId,
}

/// A key-value store that may check fencing tokens.
#[derive(Debug)]
pub struct StoreProcess {
    checked: bool,
    guard: FenceGuard<MemoryPersist>,
    data: BTreeMap<String, StoreValue>,
}

impl StoreProcess {
    /// A store; `checked` turns the fence check on.
    pub fn new(checked: bool) -> StoreProcess {
        StoreProcess {
            checked,
            guard: FenceGuard::new(MemoryPersist::default()),
            data: BTreeMap::new(),
        }
    }

    /// Whether it checks tokens.
    pub fn checked(&self) -> bool {
        self.checked
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&StoreValue> {
        self.data.get(key)
    }

    pub(super) fn handle_message(&mut self, ctx: &mut SvcCtx<'_>, from: ProcId, msg: Msg) {
        let Msg::StoreWrite { id, key, value, token } = msg else { return };
        let highest = self.guard.highest(&key);
        let accepted =
            !self.checked || token.is_some_and(|t| self.guard.check_and_record(&key, t).is_ok());
        let obs = if accepted {
            let stored = StoreValue { value: value.clone(), token, writer: from };
            let replaced = self.data.insert(key.clone(), stored).map(|old| old.value);
            StoreObs::Accepted { from, key, value, token, replaced }
        } else {
            StoreObs::Rejected { from, key, token, highest }
        };
        ctx.observe(Obs::Store(obs));
        ctx.send(from, Msg::StoreAck { id, accepted });
    }
}
