//! Counters of a run: what the network and the fault injectors did, for reports and for the
//! determinism test (two runs of one seed must agree on every counter).

use serde::{Deserialize, Serialize};

/// Counters of everything that happened in a simulation so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Stats {
    /// Events taken from the queue (including stale timers that did nothing).
    pub events: u64,
    /// Messages handed to the network by processes.
    pub messages_sent: u64,
    /// Messages that reached a handler.
    pub messages_delivered: u64,
    /// Messages the network lost at random.
    pub messages_dropped: u64,
    /// Messages lost to a cut link (at send or at arrival).
    pub messages_dropped_partition: u64,
    /// Messages lost because their destination was down (or crashed with them queued).
    pub messages_dropped_down: u64,
    /// Extra copies the network made.
    pub messages_duplicated: u64,
    /// Messages that skipped ahead of earlier ones on their link.
    pub messages_reordered: u64,
    /// Messages whose corrupted frame failed to decode (and were dropped).
    pub corrupt_detected: u64,
    /// Messages whose corrupted frame still decoded (and were delivered as decoded).
    pub corrupt_undetected: u64,
    /// Timers that fired (handle_timeout calls).
    pub timers_fired: u64,
    /// Calls made through `Simulation::invoke`.
    pub invokes: u64,
    /// Process crashes.
    pub crashes: u64,
    /// Process restarts.
    pub restarts: u64,
    /// Pauses begun (stop-the-world and mid-handler).
    pub pauses: u64,
    /// Bits flipped on disks.
    pub bit_flips: u64,
    /// Faults applied (scheduled or through `Simulation::apply`).
    pub faults_applied: u64,
    /// Faults that could not be applied and did nothing.
    pub faults_noop: u64,
    /// Observations recorded.
    pub observations: u64,
}
