//! `FenceGuard`: the storage-side half of fencing, for anybody's storage.
//!
//! Why storage must check: a lock holder can be paused (GC, VM, page fault) at any line,
//! including between "my lease is still valid" and the write. When it wakes, its lease may have
//! expired and another client may hold the lock. No amount of client-side care closes that gap;
//! the resource itself must refuse the old holder (figure 8-5 of the chapter). Palisade's tokens
//! strictly increase across all grants, so the rule is simple: for each resource, remember the
//! highest token ever accepted and reject anything lower. An equal token is accepted: the
//! current holder may write many times.
//!
//! The guard is a small in-process type with no dependency on palisade's storage: put it in
//! front of any store. Its memory must survive restarts as well as the data it protects, or a
//! restarted service would accept an old token again — hence [`FencePersist`], called *before*
//! a new highest token is accepted; if it fails the write is rejected and nothing changes.
//! Load the persisted map back with [`FenceGuard::with_highest`].
//!
//! ## Doing the same inside a SQL database
//!
//! If the protected data lives in a SQL table, keep the fence in the same row and make the
//! check and the write one conditional statement, so no pause can come between them:
//!
//! ```sql
//! -- Accepted iff exactly one row was updated; 0 rows = stale token (or no such row).
//! UPDATE resources
//!    SET value = $1, fence = $2
//!  WHERE id = $3 AND fence <= $2;
//!
//! -- Creating the row on first write (PostgreSQL / SQLite syntax):
//! INSERT INTO resources (id, value, fence) VALUES ($3, $1, $2)
//! ON CONFLICT (id) DO UPDATE
//!    SET value = EXCLUDED.value, fence = EXCLUDED.fence
//!  WHERE resources.fence <= EXCLUDED.fence;
//! ```
//!
//! Check the affected-row count and report a stale token when it is 0. A single statement is
//! atomic under the default READ COMMITTED isolation in PostgreSQL and MySQL/InnoDB: the row
//! lock is taken and the `WHERE` re-evaluated on the latest row version before updating. Never
//! split it into `SELECT fence` followed by `UPDATE` without `SELECT ... FOR UPDATE` in the same
//! transaction: that reintroduces the gap.

use std::collections::BTreeMap;
use std::fmt;

use thiserror::Error;

use crate::command::Token;
use crate::limits::{FENCE_RESOURCE_BYTES_MAX, FENCE_RESOURCES_MAX};

/// Durable storage for a guard's highest accepted tokens.
pub trait FencePersist {
    /// Why persisting failed.
    type Error: fmt::Display;
    /// Durably records that `token` is now the highest accepted for `resource`. Called before
    /// the guard accepts; an error rejects the write.
    fn persist(&mut self, resource: &str, token: Token) -> Result<(), Self::Error>;
}

/// A [`FencePersist`] that keeps the records in memory (tests, or services whose data is
/// in-memory too). Its map can be fed back to [`FenceGuard::with_highest`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryPersist {
    /// The persisted records.
    pub records: BTreeMap<String, Token>,
    /// Testing knob: fail every persist with this message.
    pub fail_with: Option<String>,
}

impl FencePersist for MemoryPersist {
    type Error = String;
    fn persist(&mut self, resource: &str, token: Token) -> Result<(), String> {
        if let Some(msg) = &self.fail_with {
            return Err(msg.clone());
        }
        self.records.insert(resource.to_string(), token);
        Ok(())
    }
}

/// A write the guard accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceAccepted {
    /// The accepted token.
    pub token: Token,
    /// The highest token accepted before, if any.
    pub previous: Option<Token>,
}

/// Why a write was rejected.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FenceRejectReason {
    /// A higher token was already accepted: the writer's lock was lost (figure 8-5).
    #[error("stale token")]
    StaleToken,
    /// The persistence hook failed; nothing was accepted.
    #[error("persisting the fence failed: {0}")]
    PersistFailed(String),
    /// The resource name is empty or longer than [`FENCE_RESOURCE_BYTES_MAX`].
    #[error("bad resource name length")]
    BadResourceName,
    /// The guard already tracks [`FENCE_RESOURCES_MAX`] resources.
    #[error("too many resources")]
    TooManyResources,
}

/// A rejected write: which resource, which token, the highest accepted, and why.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("fence rejected for {resource:?}: token {presented}, highest {highest:?}: {reason}")]
pub struct FenceRejected {
    /// The resource.
    pub resource: String,
    /// The token presented.
    pub presented: Token,
    /// The highest token accepted so far, if any.
    pub highest: Option<Token>,
    /// Why.
    pub reason: FenceRejectReason,
}

/// Accepts a token for a resource only if it is ≥ the highest accepted for that resource.
#[derive(Debug)]
pub struct FenceGuard<P: FencePersist> {
    highest: BTreeMap<String, Token>,
    persist: P,
}

impl<P: FencePersist> FenceGuard<P> {
    /// A guard that has accepted nothing yet.
    pub fn new(persist: P) -> Self {
        FenceGuard { highest: BTreeMap::new(), persist }
    }

    /// A guard restarting from persisted records.
    pub fn with_highest(persist: P, highest: impl IntoIterator<Item = (String, Token)>) -> Self {
        FenceGuard { highest: highest.into_iter().collect(), persist }
    }

    /// Checks `token` for `resource` and records it if it is a new highest. Call it right
    /// before the write, in the same critical section as the write.
    pub fn check_and_record(
        &mut self,
        resource: &str,
        token: Token,
    ) -> Result<FenceAccepted, FenceRejected> {
        let previous = self.highest.get(resource).copied();
        let reject = |reason| FenceRejected {
            resource: resource.to_string(),
            presented: token,
            highest: previous,
            reason,
        };
        if resource.is_empty() || resource.len() > FENCE_RESOURCE_BYTES_MAX {
            return Err(reject(FenceRejectReason::BadResourceName));
        }
        match previous {
            Some(h) if token < h => return Err(reject(FenceRejectReason::StaleToken)),
            Some(h) if token == h => return Ok(FenceAccepted { token, previous }),
            Some(_) => {}
            None if self.highest.len() >= FENCE_RESOURCES_MAX => {
                return Err(reject(FenceRejectReason::TooManyResources));
            }
            None => {}
        }
        if let Err(e) = self.persist.persist(resource, token) {
            return Err(reject(FenceRejectReason::PersistFailed(e.to_string())));
        }
        self.highest.insert(resource.to_string(), token);
        assert!(previous.is_none_or(|p| p < token), "recorded tokens only grow");
        Ok(FenceAccepted { token, previous })
    }

    /// The highest token accepted for `resource`.
    pub fn highest(&self, resource: &str) -> Option<Token> {
        self.highest.get(resource).copied()
    }

    /// The persistence hook.
    pub fn persist(&self) -> &P {
        &self.persist
    }

    /// The persistence hook, mutably (e.g. to inject a failure in tests).
    pub fn persist_mut(&mut self) -> &mut P {
        &mut self.persist
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_equal_and_higher_rejects_lower() {
        let mut g = FenceGuard::new(MemoryPersist::default());
        assert_eq!(g.check_and_record("r", 33).unwrap().previous, None);
        assert_eq!(g.check_and_record("r", 33).unwrap().previous, Some(33));
        assert_eq!(g.check_and_record("r", 34).unwrap().previous, Some(33));
        let e = g.check_and_record("r", 33).unwrap_err();
        assert_eq!(e.reason, FenceRejectReason::StaleToken);
        assert_eq!(e.highest, Some(34));
        // Resources are independent.
        assert!(g.check_and_record("other", 1).is_ok());
        assert_eq!(g.persist().records.get("r"), Some(&34));
    }

    #[test]
    fn persist_failure_rejects_and_changes_nothing() {
        let mut g = FenceGuard::new(MemoryPersist::default());
        g.check_and_record("r", 5).unwrap();
        g.persist_mut().fail_with = Some("disk full".into());
        let e = g.check_and_record("r", 6).unwrap_err();
        assert_eq!(e.reason, FenceRejectReason::PersistFailed("disk full".into()));
        assert_eq!(g.highest("r"), Some(5));
        // An equal token needs no persist and is still accepted.
        assert!(g.check_and_record("r", 5).is_ok());
    }

    #[test]
    fn restart_from_persisted_records_keeps_rejecting() {
        let mut g = FenceGuard::new(MemoryPersist::default());
        g.check_and_record("r", 34).unwrap();
        let records = g.persist().records.clone();
        let mut g2 = FenceGuard::with_highest(MemoryPersist::default(), records);
        assert_eq!(g2.check_and_record("r", 33).unwrap_err().reason, FenceRejectReason::StaleToken);
    }

    #[test]
    fn resource_name_limits() {
        let mut g = FenceGuard::new(MemoryPersist::default());
        let long = "x".repeat(FENCE_RESOURCE_BYTES_MAX + 1);
        let bad = FenceRejectReason::BadResourceName;
        assert_eq!(g.check_and_record(&long, 1).unwrap_err().reason, bad);
        assert_eq!(
            g.check_and_record("", 1).unwrap_err().reason,
            FenceRejectReason::BadResourceName
        );
    }
}
