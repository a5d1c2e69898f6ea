//! palisade-sim: the deterministic simulator.
//!
//! A distributed protocol is only as good as the worst schedule it survives, and the worst
//! schedules are rare: a message delayed just past a timeout while a clock runs fast and a
//! leader pauses between checking its lease and acting on it. Waiting for them on real machines
//! takes years; a simulator can make them happen every second, and, because it owns time and
//! randomness, can replay any run that broke from a single `u64` seed.
//!
//! This crate is the generic core. It drives any sans-IO state machine that implements
//! [`Process`] (palisade's servers and clients, or your own protocol): one thread, virtual time,
//! a priority queue of events, every random choice drawn from ChaCha8Rng streams derived from
//! one seed. It injects the faults of "The Trouble with Distributed Systems":
//!
//! - network, per message: loss, duplication, heavy-tailed delay with per-link queueing,
//!   reordering, bit flips in the frame (caught by the frame CRC); partitions of every shape
//!   ([`Partition`]: symmetric, one-way, majority/minority, bridge, ring) and heals; the system
//!   model ([`NetworkModel`]: synchronous, partially synchronous with a GST, asynchronous);
//! - nodes: crash and restart from the simulated disk (unsynced writes lost, last write torn),
//!   stop-the-world pauses, and pauses between a handler's decision and its effects;
//! - clocks: rate drift within the bound, steps of the time-of-day clock;
//! - disks: bit flips, under a policy that can keep corruption to a minority.
//!
//! Faults are data ([`Fault`]), applied now or scheduled; [`FaultPlan::random`] draws a
//! swarm-style plan for a safety phase followed by a calm liveness phase. Every event goes into
//! a 64-bit FNV-1a trace hash ([`Simulation::trace_hash`]): the same seed gives the same hash.
//!
//! `examples/toy.rs` shows a complete protocol on the simulator in a few dozen lines;
//! `examples/speed.rs` measures how fast the core runs.
//!
//! [`raft`] drives palisade's Raft on this core: a cluster on simulated disks with a
//! proposing client, swarm-drawn faults, and checkers for election safety, log matching,
//! leader completeness, state machine safety, durability and liveness (`palisade sim raft`).

#![warn(missing_docs)]

mod error;
mod fault;
mod inject;
pub mod lab;
mod network;
mod partition;
mod process;
mod queue;
pub mod raft;
pub mod report;
pub mod scenario;
pub mod service;
mod stats;
mod trace;
mod world;

pub use error::SimError;
pub use fault::{Fault, FaultKinds, FaultOptions, FaultPlan, Swarm};
pub use network::{DELAY_NANOS_MIN, DelayConfig, NetworkConfig, NetworkModel};
pub use partition::{Partition, Reachability};
pub use process::{Boot, Ctx, Factory, ProcId, Process};
pub use stats::Stats;
pub use trace::{Fnv1a64, TraceEvent, TraceKind, TraceSink};
pub use world::{
    FlipPolicy, MONO_START_NANOS_MAX, Observed, ProcOptions, Simulation, WALL_ORIGIN_NANOS,
    minority_flip_policy,
};
