//! palisade-node: one palisade node and one palisade client, sans-IO.
//!
//! The lower crates each solve one problem: `raft` agrees on a log, `storage` keeps it across
//! crashes, `lock` turns committed entries into sessions, locks, fencing tokens and a fenced
//! kv store, and its `SessionTracker` times sessions on a monotonic clock. A node is all of
//! them wired together in one exact order, and that order is where the subtle bugs of a lock
//! service live: a vote sent before it is durable, a reply sent for an entry that was later
//! overwritten, an expiry decided by a leader that was already deposed, a grant noticed a tick
//! late. So the wiring is written once, here, as a pure state machine:
//!
//! - [`ServerCore`] is the whole node: feed it peer messages, client requests and timeouts with
//!   the current time; take messages, replies and observations out with `poll_*`. It persists
//!   through its [`palisade_storage::Wal`] over any [`palisade_storage::Disk`], so the same
//!   code runs on a real directory in the server and on a crashing simulated disk in the
//!   simulator.
//! - [`ClientCore`] is the whole client: leader discovery, retries with the same request id,
//!   "outcome unknown" when it cannot find out, keepalives on the conservative lease, and the
//!   fencing tokens of the locks it holds.
//! - [`protocol`] is what they say to each other, shared with the HTTP API and the Rust client.
//!
//! Nothing here reads a clock, opens a socket or draws unseeded randomness. The lower crates
//! are re-exported ([`lock`], [`raft`], [`storage`], [`clock`]) so that a driver needs only this
//! one dependency.

#![warn(missing_docs)]

pub mod client_core;
pub mod config;
pub mod error;
pub mod event;
pub mod protocol;
pub mod server_core;
pub mod status;

pub use palisade_clock as clock;
pub use palisade_lock as lock;
pub use palisade_raft as raft;
pub use palisade_storage as storage;

pub use client_core::{
    CLIENT_EVENTS_MAX, ClientConfig, ClientCore, ClientEvent, OPS_QUEUED_MAX, OpId, OpOutcome,
    UserOp,
};
pub use config::NodeConfig;
pub use error::{AdminError, ClientConfigError, NodeError};
pub use event::{CommandSummary, NodeEvent};
pub use protocol::{
    ClientReply, ClientRequest, ConnId, Consistency, InvalidRequest, ReadOp, ReadReply,
    ReplyResult, RequestBody, RetryReason, SessionView,
};
pub use server_core::{Input, Output, ServerCore};
pub use status::{LockStatus, NodeStatus, PeerClock, SessionStatus, WalCounters};

/// The earlier of two optional times (`None`: never). The drivers ask for the next timeout
/// after every input, so this is a plain comparison rather than an iterator over an array.
#[inline]
pub(crate) fn earliest(
    a: Option<clock::MonoInstant>,
    b: Option<clock::MonoInstant>,
) -> Option<clock::MonoInstant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}
