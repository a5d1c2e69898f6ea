//! palisade-lock: the lock service as a replicated state machine, and the pieces around it.
//!
//! Why it is built like this: a lock service is only as good as its worst moment — the holder
//! that paused past its TTL, the leader that was deposed without knowing, the retry that ran
//! twice, the clock that ran fast. Each of those is handled by one mechanism, in one module:
//!
//! - [`command`]: every decision, including the leader's time-based ones (expire a session,
//!   lock-delay over, checkpoint remaining TTLs), is a log entry; nothing takes effect before it
//!   commits, so a deposed or paused leader cannot release anybody's lock.
//! - [`state`]: the deterministic state machine — sessions, FIFO locks whose fencing tokens are
//!   log indices (strictly increasing across all locks and leaders), the fenced kv store, and
//!   `(client, seq)` deduplication so a retried request runs at most once.
//! - [`tracker`]: the volatile per-node timers; the leader times sessions on its monotonic
//!   clock, never early, and a leader change cannot keep a session alive by resetting timers.
//! - [`client`]: the sans-IO client lease, which provably ends before the server can expire the
//!   session; the fencing token covers the pause the lease cannot.
//! - [`fence_guard`]: the storage-side check any service can put in front of its own storage.
//! - [`outcome`]: `Outcome::Unknown`, the honest answer when a retry cannot find out.
//! - [`limits`]: every bound, and the configuration.
//!
//! Sans-IO: no clock is read, no socket opened, no file touched; time comes in as arguments.

pub mod client;
mod codec;
pub mod command;
pub mod error;
pub mod fence_guard;
pub mod limits;
pub mod outcome;
pub mod response;
pub mod state;
pub mod tracker;

pub use client::{
    ClientLease, ClientTestingFault, KeepaliveId, LeaseState, LockGuardState, LockUnsafe,
};
pub use command::{
    COMMAND_FORMAT_VERSION, CheckpointEntry, Command, Expect, Fence, LeaderOp, Op, Request,
    RequestId, SessionId, Token,
};
pub use error::LockError;
pub use fence_guard::{
    FenceAccepted, FenceGuard, FencePersist, FenceRejectReason, FenceRejected, MemoryPersist,
};
pub use limits::*;
pub use outcome::Outcome;
pub use response::{FenceRejection, Holder, NameKind, Refused, Reply, Response};
pub use state::{Applied, Event, LockInfo, LockStateMachine, ReleaseCause, Session, Value};
pub use tracker::{APPEND_MARKS_MAX, SessionTracker};
