//! Checking a whole history: validate, partition by object, search each partition.
//!
//! Each partition (one key, one lock) is searched on its own (see [`crate::Model`] for why
//! that is exact), in key order, so the answer and the explanation are deterministic. The
//! first partition found illegal decides the answer; a partition whose search ran out of
//! budget makes the answer [`CheckResult::Unknown`] unless another one is illegal.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::LinearizeError;
use crate::history::Operation;
use crate::limits::{Budget, CACHE_ENTRIES_MAX_DEFAULT, OPERATIONS_MAX, SEARCH_STEPS_MAX_DEFAULT};
use crate::model::Model;
use crate::search::{SearchBudget, SearchResult, search};

/// The search budget of a check.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckOptions {
    /// Most search steps per partition (one step = one entry of the history considered).
    pub steps_max: u64,
    /// Most memo cache entries per partition (bounds memory).
    pub cache_entries_max: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            steps_max: SEARCH_STEPS_MAX_DEFAULT,
            cache_entries_max: CACHE_ENTRIES_MAX_DEFAULT,
        }
    }
}

/// Why a history is not linearizable. Operation numbers are indices into the history given
/// to [`check_operations`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation<K, S> {
    /// The object (key, lock) whose sub-history is not linearizable.
    pub partition: K,
    /// How many operations touch that object.
    pub partition_ops: usize,
    /// The longest linearizable prefix the search found, in linearization order.
    pub prefix: Vec<usize>,
    /// The object's state after that prefix.
    pub state: S,
    /// The operation that could not be placed: it returned before any order of the
    /// operations concurrent with it could explain its output.
    pub op: usize,
    /// Other operations called and not yet linearized at that point (some of them, at most
    /// [`crate::EXPLAIN_PENDING_OPS_MAX`]); none of them could go next either.
    pub pending: Vec<usize>,
}

/// The answer of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckResult<K, S> {
    /// Every partition is linearizable.
    Ok,
    /// A partition is not linearizable.
    Illegal(Violation<K, S>),
    /// No partition is illegal, but the search of this one ran out of budget.
    Unknown {
        /// The first partition whose search ran out.
        partition: K,
        /// Which budget.
        budget: Budget,
    },
}

impl<K, S> CheckResult<K, S> {
    /// Whether the history was shown linearizable.
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }

    /// Whether the history was shown not linearizable.
    pub fn is_illegal(&self) -> bool {
        matches!(self, CheckResult::Illegal(_))
    }
}

/// The answer and what it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked<K, S> {
    /// The answer.
    pub result: CheckResult<K, S>,
    /// How many partitions (objects) the history touches.
    pub partitions: usize,
    /// Search steps taken, all partitions together.
    pub steps: u64,
}

/// Checks that `history` is linearizable with respect to `model`.
///
/// Errors only for histories that are not histories (see [`LinearizeError`]); the verdict,
/// including "unknown", is in the returned [`Checked`].
pub fn check_operations<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    options: &CheckOptions,
) -> Result<Checked<M::Key, M::State>, LinearizeError> {
    validate(history)?;
    let mut partitions: BTreeMap<M::Key, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        partitions.entry(model.partition(&op.input)).or_default().push(i);
    }
    let budget =
        SearchBudget { steps_max: options.steps_max, cache_entries_max: options.cache_entries_max };
    let mut checked = Checked { result: CheckResult::Ok, partitions: partitions.len(), steps: 0 };
    for (key, indices) in partitions {
        let ops: Vec<&Operation<M::Input, M::Output>> =
            indices.iter().map(|&i| &history[i]).collect();
        let (result, steps) = search(model, &ops, budget);
        checked.steps += steps;
        match result {
            SearchResult::Linearizable => {}
            SearchResult::Exhausted(budget) => {
                if checked.result.is_ok() {
                    checked.result = CheckResult::Unknown { partition: key, budget };
                }
            }
            SearchResult::Illegal(failure) => {
                checked.result = CheckResult::Illegal(Violation {
                    partition: key,
                    partition_ops: indices.len(),
                    prefix: failure.prefix.iter().map(|&i| indices[i]).collect(),
                    state: failure.state,
                    op: indices[failure.blocked],
                    pending: failure.pending.iter().map(|&i| indices[i]).collect(),
                });
                return Ok(checked);
            }
        }
    }
    Ok(checked)
}

fn validate<I, O>(history: &[Operation<I, O>]) -> Result<(), LinearizeError> {
    if history.len() > OPERATIONS_MAX {
        return Err(LinearizeError::TooManyOperations {
            count: history.len(),
            max: OPERATIONS_MAX,
        });
    }
    for (index, op) in history.iter().enumerate() {
        if let Some(ret) = op.ret()
            && ret < op.call
        {
            return Err(LinearizeError::ReturnBeforeCall { index, call: op.call, ret });
        }
    }
    Ok(())
}
