//! The errors of this crate.
//!
//! Two enums, because they answer two different callers. [`RaftError`] is for the operator and
//! the driver: a configuration or recovered state that cannot work, or a misuse of `compact`.
//! [`ProposeError`] is a protocol outcome for a client request (not the leader, too large, a
//! transfer in progress): a value the lock service turns into a reply or a redirect, never a
//! panic. Invalid messages from peers are not errors of either kind: they are counted in
//! [`crate::Status::messages_rejected`] and dropped (see [`crate::message::InvalidMessage`]).

use std::time::Duration;

use thiserror::Error;

use crate::types::{LogIndex, NodeId};

/// A configuration, recovered state or driver call that Raft refuses.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum RaftError {
    /// The configuration names node id 0, which is reserved.
    #[error("config: node id 0 is reserved")]
    ZeroNodeId,
    /// A duration that must be positive is zero.
    #[error("config: {name} must be greater than zero")]
    ZeroDuration {
        /// The field.
        name: &'static str,
    },
    /// A duration is above [`crate::config::DURATION_LIMIT`].
    #[error("config: {name} = {value:?} is above the maximum {max:?}")]
    DurationTooLarge {
        /// The field.
        name: &'static str,
        /// The refused value.
        value: Duration,
        /// The largest accepted value.
        max: Duration,
    },
    /// A count or size that must be positive is zero.
    #[error("config: {name} must be greater than zero")]
    ZeroLimit {
        /// The field.
        name: &'static str,
    },
    /// A count or size is above its hard limit.
    #[error("config: {name} = {value} is above the maximum {max}")]
    LimitTooLarge {
        /// The field.
        name: &'static str,
        /// The refused value.
        value: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// A count or size is below its floor.
    #[error("config: {name} = {value} is below the minimum {min}")]
    LimitTooSmall {
        /// The field.
        name: &'static str,
        /// The refused value.
        value: u64,
        /// The smallest accepted value.
        min: u64,
    },
    /// The (shortest) election timeout is not longer than the heartbeat interval.
    #[error("config: election timeout {election:?} must exceed the heartbeat {heartbeat:?}")]
    ElectionNotAboveHeartbeat {
        /// The election timeout.
        election: Duration,
        /// The heartbeat interval.
        heartbeat: Duration,
    },
    /// The randomized election range `[min, max)` is empty.
    #[error("config: election timeout max {max:?} must exceed min {min:?}")]
    ElectionRangeEmpty {
        /// The configured minimum.
        min: Duration,
        /// The configured maximum.
        max: Duration,
    },
    /// The phi election's jitter is not shorter than its fallback timeout.
    #[error("config: election jitter_max {jitter_max:?} must be below timeout_max {timeout_max:?}")]
    JitterNotBelowTimeout {
        /// The configured jitter.
        jitter_max: Duration,
        /// The configured fallback timeout.
        timeout_max: Duration,
    },
    /// The phi accrual detector's configuration is invalid (the detector's message).
    #[error("config: phi accrual detector: {0}")]
    Detector(String),
    /// The recovered hard state, snapshot and entries do not fit together.
    #[error("recovered state is inconsistent: {reason}")]
    InvalidRecovered {
        /// What does not fit.
        reason: String,
    },
    /// `compact` was asked for an index that has not been handed out for apply.
    #[error("cannot compact at {index}: only up to {applied} was applied")]
    CompactBeyondApplied {
        /// The requested index.
        index: LogIndex,
        /// The last index handed out for apply.
        applied: LogIndex,
    },
    /// `compact` was asked for an index at or below the current snapshot.
    #[error("cannot compact at {index}: the log is already compacted to {snapshot_index}")]
    CompactStale {
        /// The requested index.
        index: LogIndex,
        /// The current snapshot's index.
        snapshot_index: LogIndex,
    },
}

/// Why a proposal, read, membership change or transfer was not accepted. A protocol outcome.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposeError {
    /// This node is not the leader; `leader` is the one it knows of, if any.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<NodeId>,
    },
    /// The command is larger than one message may carry.
    #[error("command of {bytes} bytes is above the maximum {max}")]
    TooLarge {
        /// The command's size.
        bytes: usize,
        /// `Config::bytes_per_message_max`.
        max: usize,
    },
    /// A leadership transfer is in progress; proposals wait until it ends.
    #[error("leadership transfer to {target} in progress")]
    TransferInProgress {
        /// The transfer's target.
        target: NodeId,
    },
    /// The leader has not yet committed an entry of its own term (its no-op), so it cannot
    /// serve reads or change the membership yet (thesis §6.4, §4.1). Retry shortly.
    #[error("the leader has not committed an entry of its term yet")]
    NotCommittedInTerm,
    /// Too many entries are appended but not committed; retry later.
    #[error("{uncommitted} uncommitted entries (maximum {max})")]
    Overloaded {
        /// Entries appended but not committed.
        uncommitted: u64,
        /// [`crate::config::UNCOMMITTED_ENTRIES_MAX`].
        max: u64,
    },
    /// Too many reads wait for their heartbeat round; retry later.
    #[error("too many pending reads (maximum {max})")]
    ReadsPendingTooMany {
        /// [`crate::config::READS_PENDING_MAX`].
        max: usize,
    },
    /// A membership change is appended but not committed yet; one change at a time.
    #[error("membership change at index {index} is not committed yet")]
    MembershipChangePending {
        /// Index of the pending change.
        index: LogIndex,
    },
    /// The membership change does not change anything or is not allowed.
    #[error("invalid membership change: {reason}")]
    InvalidMembershipChange {
        /// Why.
        reason: &'static str,
    },
    /// The transfer target is not a voter other than this node.
    #[error("cannot transfer leadership to {target}: not another voter")]
    InvalidTransferTarget {
        /// The requested target.
        target: NodeId,
    },
}
