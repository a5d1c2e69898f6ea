//! Raft on the simulator: a cluster of `palisade_raft` nodes over the simulated network and
//! disks, a client that proposes without pause, every fault of the core simulator, and
//! checkers that say exactly which property broke.
//!
//! Why a Raft-only simulation before the whole service: consensus is the layer every other
//! guarantee stands on, and its bugs are the rarest schedules of all (a vote lost with a torn
//! write, an entry of an earlier term counted at the wrong moment). Driving the real
//! `RaftNode` through the real write-ahead log on a crashing, tearing, bit-flipping disk, with
//! the driver contract followed exactly (persist, fsync, *then* send), tests the code the
//! server runs, not a model of it.
//!
//! The pieces, each in its own file:
//!
//! - [`RaftServer`] (`server.rs`): one node: `RaftNode` + `Wal<SimDisk>` + a tiny state machine
//!   (a hash chain over the applied entries); an fsync takes simulated time, so a crash can
//!   land between a write and its fsync and leave a torn tail; snapshots every few entries so
//!   InstallSnapshot and snapshot recovery run all the time. A disk whose synced data is
//!   damaged makes the node refuse to start: it then counts as stopped.
//! - [`RaftClient`] (`client.rs`): proposes a command every few milliseconds to whoever it
//!   believes leads, follows redirects, retries, and records which commands were
//!   acknowledged (applied by the leader and answered).
//! - [`RaftCheckers`] (`checker.rs`, `completeness.rs`): separate from fault injection, fed
//!   only by observations and by reading the nodes' logs and disks: election safety, log
//!   matching, leader completeness, state machine safety, durability of acknowledged
//!   commands; liveness is judged by the runner.
//! - `options.rs`: everything a seed decides (swarm testing: cluster size, election kind, fault
//!   kinds and intensities, compaction interval, disk latency), each pinnable.
//! - `run.rs`: one seed: a safety phase with faults, then a liveness phase in which the
//!   network heals, clocks are corrected and every node restarts; the leader must come, a new
//!   command must commit and every live node must catch up, each within a bound.
//! - `report.rs`: the printed result of a seed, byte for byte the same on every run.
//! - `failover.rs`: the fixed-timeout and phi-accrual elections compared on the same seeds.

mod checker;
mod client;
mod completeness;
mod failover;
mod io_crash;
mod msg;
mod options;
mod report;
mod run;
mod server;
mod targeted;

pub use checker::{CheckerKind, RaftCheckers, Violation};
pub use client::{ClientConfig, RaftClient};
pub use failover::{
    FailoverOptions, FailoverReport, FailoverStats, failover_compare, failover_seed,
};
pub use msg::{RaftObs, RaftProc, SimMsg, payload_hash};
pub use options::{
    Broken, ElectionKind, FaultSelection, LIVENESS_COMMIT_NANOS_MAX, LIVENESS_CONVERGE_NANOS_MAX,
    LIVENESS_LEADER_NANOS_MAX, RaftSimOptions, SeedOptions,
};
pub use report::{Counters, LivenessOutcome, RaftRunReport};
pub use run::{capture_panics, panic_message, run_seed, run_seed_with_trace};
pub use server::{App, LogMirror, RaftServer, ServerConfig};
