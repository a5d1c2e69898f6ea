//! Raft consensus as a pure state machine.
//!
//! This crate contains no networking code, reads no clock and touches no file: time comes in
//! as an argument ([`palisade_clock::Now`]), randomness from a `ChaCha8Rng` seeded by the `u64`
//! given to [`RaftNode::new`], and every output (messages, records to persist, entries to
//! apply, confirmed reads, the next timer) comes out as data in a [`Ready`]. The same core runs
//! in the deterministic simulator and, behind a thin tokio driver, in the server.
//!
//! It implements leader election with randomized timeouts or a phi accrual detector (Raft
//! §5.2), PreVote and leader stickiness (thesis §9.6, §4.2.3), CheckQuorum (thesis §6.2), log
//! replication with the commit rule for earlier terms (§5.3, §5.4.2), ReadIndex (thesis §6.4),
//! leadership transfer (thesis §3.10), log compaction with InstallSnapshot (§7), single-server
//! membership changes (thesis §4.1), and clock-offset monitoring that keeps a node with a bad
//! clock from leading. Safety invariants are `assert!`s that stay on in release builds.
//!
//! # Driver contract
//!
//! ```text
//! let mut node = RaftNode::new(config, recovered, now, seed)?;   // restore the app from
//!                                                                // recovered.snapshot first
//! loop {
//!     // inputs, in any order, each with the current time:
//!     node.handle_message(now, from, msg);     // a message arrived
//!     node.handle_timeout(now);                // now >= node.poll_timeout() (spurious is ok)
//!     node.propose(now, cmd) / read_index / propose_membership / transfer_leadership;
//!     // outputs:
//!     while node.has_ready() {
//!         let ready = node.ready();
//!         persist ready.snapshot, then ready.entries, then ready.hard_state; fsync;
//!         send ready.messages;                  // only after the fsync
//!         restore the app from ready.snapshot; apply ready.committed in order;
//!         serve ready.read_states once applied >= index; fail ready.reads_dropped;
//!         node.handle_persisted(now, ready.token());
//!     }
//!     sleep until node.poll_timeout() or the next input;
//!     // from time to time: app snapshot at applied index i, persisted; node.compact(i, data)
//! }
//! ```
//!
//! See [`ready`] for why the order matters.

pub mod clock_offset;
pub mod config;
pub mod election;
pub mod error;
mod log;
pub mod membership;
pub mod message;
pub mod node;
mod peer_map;
pub mod progress;
pub mod read_index;
pub mod ready;
pub mod replication;
pub mod snapshot;
pub mod status;
mod timer;
pub mod transfer;
pub mod types;

pub use config::{Config, ElectionConfig, TestingFault};
pub use error::{ProposeError, RaftError};
pub use membership::MembershipChange;
pub use message::{
    AppendEntries, AppendEntriesResponse, AppendResult, InstallSnapshot, InstallSnapshotResponse,
    Message, TimePing, TimePong, VoteRequest, VoteResponse,
};
pub use node::{Bootstrap, RaftNode, Recovered, Role};
pub use progress::ProgressState;
pub use read_index::ReadState;
pub use ready::{Ready, ReadyToken, RoleChange};
pub use status::{PeerProgress, PeerStatus, Status};
pub use types::{
    Entry, HardState, LogIndex, Membership, NodeId, Payload, Snapshot, SnapshotMeta, Term,
};
