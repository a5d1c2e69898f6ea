//! Snapshots and the full invariant check.
//!
//! A snapshot is the format version byte followed by postcard of the state's ordered maps, so
//! two replicas that applied the same entries produce byte-identical snapshots (tests compare
//! them). Restoring treats the bytes as untrusted: it never panics, re-derives the indexes
//! (client → session, kv byte count) and runs [`LockStateMachine::check_invariants`] before
//! handing back a state machine.

use std::collections::{BTreeMap, BTreeSet};

use super::LockStateMachine;
use crate::codec::to_versioned_vec;
use crate::error::LockError;
use crate::limits::{
    KEYS_MAX, KV_BYTES_MAX, LOCKS_MAX, LOCKS_PER_SESSION_MAX, SESSIONS_MAX, SNAPSHOT_BYTES_MAX,
    WAITERS_PER_LOCK_MAX,
};

/// Format version byte in front of every snapshot.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 1;

/// The buffer a snapshot starts with (it grows as needed).
const SNAPSHOT_BYTES_TYPICAL: usize = 1024;

impl LockStateMachine {
    /// The whole state, deterministic bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        to_versioned_vec(SNAPSHOT_FORMAT_VERSION, self, SNAPSHOT_BYTES_TYPICAL)
            .expect("state machine serialises")
    }

    /// A state machine from [`LockStateMachine::snapshot`] bytes. Untrusted input: errors,
    /// never panics.
    pub fn restore(bytes: &[u8]) -> Result<Self, LockError> {
        if bytes.len() > SNAPSHOT_BYTES_MAX {
            let (what, max) = ("snapshot", SNAPSHOT_BYTES_MAX);
            return Err(LockError::TooLarge { what, bytes: bytes.len(), max });
        }
        let (&version, body) =
            bytes.split_first().ok_or_else(|| LockError::Snapshot("empty input".into()))?;
        if version != SNAPSHOT_FORMAT_VERSION {
            return Err(LockError::Snapshot(format!("unknown format version {version}")));
        }
        let (mut sm, rest) = postcard::take_from_bytes::<LockStateMachine>(body)
            .map_err(|e| LockError::Snapshot(e.to_string()))?;
        if !rest.is_empty() {
            return Err(LockError::Snapshot(format!("{} trailing bytes", rest.len())));
        }
        sm.config.validate()?;
        for (id, s) in &sm.sessions {
            if sm.clients.insert(s.client, *id).is_some() {
                return Err(LockError::Snapshot(format!("two sessions of client {}", s.client)));
            }
        }
        let mut bytes_total: usize = 0;
        for (k, v) in &sm.kv {
            bytes_total = bytes_total.saturating_add(k.len()).saturating_add(v.data.len());
        }
        sm.kv_bytes = bytes_total;
        sm.check_invariants().map_err(LockError::Snapshot)?;
        Ok(sm)
    }

    /// Checks every invariant of the state; used on restore, by tests after every step, and
    /// available to the simulator's checkers. `Err` names the first broken one.
    pub fn check_invariants(&self) -> Result<(), String> {
        self.check_limits()?;
        self.check_sessions()?;
        self.check_locks()?;
        self.check_kv()
    }

    fn check_limits(&self) -> Result<(), String> {
        let checks = [
            ("SESSIONS_MAX", self.sessions.len(), SESSIONS_MAX),
            ("LOCKS_MAX", self.locks.len(), LOCKS_MAX),
            ("KEYS_MAX", self.kv.len(), KEYS_MAX),
            ("KV_BYTES_MAX", self.kv_bytes, KV_BYTES_MAX),
        ];
        for (name, n, max) in checks {
            if n > max {
                return Err(format!("{name}: {n} > {max}"));
            }
        }
        if self.clients.len() != self.sessions.len() {
            return Err("client index out of sync with sessions".into());
        }
        Ok(())
    }

    fn check_sessions(&self) -> Result<(), String> {
        for (id, s) in &self.sessions {
            if *id != s.id || id.0 > self.last_applied || s.basis < id.0 {
                return Err(format!("session {id}: bad id or basis"));
            }
            if s.basis > self.last_applied || s.remaining > s.ttl {
                return Err(format!("session {id}: basis after last applied or remaining > ttl"));
            }
            if self.clients.get(&s.client) != Some(id) {
                return Err(format!("session {id}: client index mismatch"));
            }
            if s.lock_count() > LOCKS_PER_SESSION_MAX {
                return Err(format!("session {id}: more than LOCKS_PER_SESSION_MAX locks"));
            }
            for lock in &s.held {
                if s.waiting.contains(lock) {
                    return Err(format!("session {id} both holds and waits for {lock:?}"));
                }
                let holder = self.locks.get(lock).and_then(|l| l.holder.as_ref());
                if holder.is_none_or(|h| h.session != *id) {
                    return Err(format!("session {id} lists {lock:?} as held but is not holder"));
                }
            }
            for lock in &s.waiting {
                let queued = self.locks.get(lock).is_some_and(|l| l.waiters.contains(id));
                if !queued {
                    return Err(format!(
                        "session {id} lists {lock:?} as waiting but is not queued"
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_locks(&self) -> Result<(), String> {
        let mut tokens = BTreeSet::new();
        for (name, info) in &self.locks {
            if info.holder.is_none() && info.waiters.is_empty() && info.delayed_since.is_none() {
                return Err(format!("lock {name:?}: empty record kept"));
            }
            if info.holder.is_none() && info.delayed_since.is_none() {
                return Err(format!("lock {name:?}: free and not delayed but has waiters"));
            }
            if info.waiters.len() > WAITERS_PER_LOCK_MAX {
                return Err(format!("lock {name:?}: more than WAITERS_PER_LOCK_MAX waiters"));
            }
            if let Some(h) = &info.holder {
                if info.delayed_since.is_some() {
                    return Err(format!("lock {name:?}: held during lock-delay"));
                }
                if h.token > self.last_token || !tokens.insert(h.token) {
                    return Err(format!("lock {name:?}: token {} reused or ahead", h.token));
                }
                if info.waiters.contains(&h.session) {
                    return Err(format!("lock {name:?}: holder in its own wait queue"));
                }
                let s = self.sessions.get(&h.session);
                if s.is_none_or(|s| !s.held.contains(name) || s.client != h.client) {
                    return Err(format!("lock {name:?}: holder session does not list it"));
                }
            }
            let mut seen = BTreeMap::new();
            for w in &info.waiters {
                if seen.insert(*w, ()).is_some() {
                    return Err(format!("lock {name:?}: {w} queued twice"));
                }
                if self.sessions.get(w).is_none_or(|s| !s.waiting.contains(name)) {
                    return Err(format!("lock {name:?}: waiter {w} does not list it"));
                }
            }
        }
        Ok(())
    }

    fn check_kv(&self) -> Result<(), String> {
        let mut total: usize = 0;
        for (k, v) in &self.kv {
            total = total.saturating_add(k.len() + v.data.len());
            if v.version > self.last_version || v.index > self.last_applied {
                return Err(format!("key {k:?}: version or index ahead of the state"));
            }
        }
        if total != self.kv_bytes {
            return Err(format!("kv byte count {} != {}", self.kv_bytes, total));
        }
        Ok(())
    }
}
