//! The fenced key-value store.
//!
//! Why it lives in the lock state machine: a fence check is only meaningful if it is atomic
//! with the write it guards. Here both happen in one apply step of one entry, so "the lock's
//! current grant has token 34" and "write the value" cannot be separated by another grant. A
//! write presenting a token other than the *current* grant's is refused with the reason
//! ([`FenceRejection`]): after a release or an expiry, the old token is stale too — this is
//! stricter than figure 8-5's "≥ highest seen" rule, which [`crate::FenceGuard`] implements for
//! storage that only sees tokens, not grants.
//!
//! Versions are HLC timestamps stamped by the leader when it proposes; the state machine keeps
//! them strictly increasing over the whole store (so also per key, and across a delete and a
//! re-create): a version not above the last one assigned becomes the last one's successor.

use palisade_clock::HlcTimestamp;
use palisade_raft::LogIndex;
use serde::{Deserialize, Serialize};

use super::LockStateMachine;
use crate::command::{Expect, Fence};
use crate::limits::{KEYS_MAX, KV_BYTES_MAX, Limit, LimitExceeded, LockTestingFault, as_u64};
use crate::response::{FenceRejection, Refused, Reply, Response};

/// A stored value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// The bytes.
    pub data: Vec<u8>,
    /// Its version (HLC), strictly increasing across all writes.
    pub version: HlcTimestamp,
    /// The fence of the write that stored it, if it was fenced.
    pub written_by: Option<Fence>,
    /// The log index of that write.
    pub index: LogIndex,
}

/// The smallest timestamp greater than `v`.
pub(crate) fn hlc_successor(v: HlcTimestamp) -> HlcTimestamp {
    match v.logical.checked_add(1) {
        Some(logical) => HlcTimestamp { wall_nanos: v.wall_nanos, logical },
        None => HlcTimestamp { wall_nanos: v.wall_nanos.saturating_add(1), logical: 0 },
    }
}

impl LockStateMachine {
    /// Checks a fence against the lock's current grant.
    pub fn check_fence(&self, fence: &Fence) -> Result<(), FenceRejection> {
        let (lock, presented) = (fence.lock.clone(), fence.token);
        let Some(info) = self.locks.get(&fence.lock) else {
            return Err(FenceRejection::UnknownLock { lock, presented });
        };
        match &info.holder {
            None => Err(FenceRejection::LockNotHeld { lock, presented }),
            Some(h) if h.token == presented => Ok(()),
            Some(h) => Err(FenceRejection::StaleToken { lock, presented, current: h.token }),
        }
    }

    fn pass_fence(&self, fence: Option<&Fence>) -> Result<(), Refused> {
        if self.config.has_fault(LockTestingFault::FenceCheckOff) {
            return Ok(());
        }
        match fence {
            Some(f) => self.check_fence(f).map_err(Refused::Fence),
            None => Ok(()),
        }
    }

    fn next_version(&mut self, hlc: HlcTimestamp) -> HlcTimestamp {
        let version = if hlc > self.last_version { hlc } else { hlc_successor(self.last_version) };
        assert!(version > self.last_version, "versions strictly increase");
        self.last_version = version;
        version
    }

    /// Checks the key-count and byte limits for replacing `key`'s value with `value_len`
    /// bytes, and returns the new byte total.
    fn kv_room(&self, key: &str, value_len: usize) -> Result<usize, Refused> {
        let old = self.kv.get(key).map_or(0, |v| key.len() + v.data.len());
        if !self.kv.contains_key(key) && self.kv.len() >= KEYS_MAX {
            let e = LimitExceeded::new(Limit::Keys, as_u64(self.kv.len() + 1), as_u64(KEYS_MAX));
            return Err(Refused::Limit(e));
        }
        let total = self.kv_bytes - old + key.len() + value_len;
        LimitExceeded::check_max(Limit::KvBytes, total, KV_BYTES_MAX).map_err(Refused::Limit)?;
        Ok(total)
    }

    fn store(
        &mut self,
        index: LogIndex,
        key: &str,
        value: &[u8],
        fence: Option<&Fence>,
        hlc: HlcTimestamp,
    ) -> Response {
        let total = self.kv_room(key, value.len())?;
        let version = self.next_version(hlc);
        let v = Value { data: value.to_vec(), version, written_by: fence.cloned(), index };
        self.kv.insert(key.to_string(), v);
        self.kv_bytes = total;
        Ok(Reply::Written { key: key.to_string(), version })
    }

    pub(super) fn put(
        &mut self,
        index: LogIndex,
        key: &str,
        value: &[u8],
        fence: Option<&Fence>,
        hlc: HlcTimestamp,
    ) -> Response {
        self.pass_fence(fence)?;
        self.store(index, key, value, fence, hlc)
    }

    pub(super) fn cas(
        &mut self,
        index: LogIndex,
        key: &str,
        expected: &Expect,
        value: &[u8],
        fence: Option<&Fence>,
        hlc: HlcTimestamp,
    ) -> Response {
        self.pass_fence(fence)?;
        let current = self.kv.get(key);
        let matches = match (expected, current) {
            (Expect::Absent, None) => true,
            (Expect::Version(v), Some(c)) => c.version == *v,
            (Expect::Value(b), Some(c)) => c.data == *b,
            _ => false,
        };
        if !matches {
            return Err(Refused::CasMismatch { current: current.map(|c| c.version) });
        }
        self.store(index, key, value, fence, hlc)
    }

    pub(super) fn delete(
        &mut self,
        key: &str,
        fence: Option<&Fence>,
        hlc: HlcTimestamp,
    ) -> Response {
        self.pass_fence(fence)?;
        let version = self.next_version(hlc);
        let existed = match self.kv.remove(key) {
            Some(v) => {
                self.kv_bytes -= key.len() + v.data.len();
                true
            }
            None => false,
        };
        Ok(Reply::Deleted { key: key.to_string(), existed, version })
    }
}
