//! The one error type of the crate.
//!
//! A fault that cannot be applied (crashing a node that is already down, restarting one that is
//! up, flipping a bit the corruption policy forbids) is an error value, not a panic: a random
//! fault plan may well ask for it, and the simulator records it as a no-op in the trace.

use crate::ProcId;

/// Why an operation on the simulated world could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The process id names no process of this simulation.
    #[error("no process {0}")]
    UnknownProc(ProcId),
    /// The process is crashed, so it cannot be crashed, paused or invoked.
    #[error("process {0} is down")]
    Down(ProcId),
    /// The process is running, so it cannot be restarted.
    #[error("process {0} is already up")]
    AlreadyUp(ProcId),
    /// The process is in a stop-the-world pause, so it cannot be invoked.
    #[error("process {0} is paused")]
    Paused(ProcId),
    /// The process is not paused, so there is nothing to resume.
    #[error("process {0} is not paused")]
    NotPaused(ProcId),
    /// The disk-corruption policy refused to corrupt this process's disk now.
    #[error("corruption policy refused a bit flip on {0}")]
    FlipRefused(ProcId),
    /// The disk holds no bytes, so there is no bit to flip.
    #[error("disk of {0} is empty")]
    DiskEmpty(ProcId),
    /// A network configuration is out of range.
    #[error("invalid network configuration: {0}")]
    InvalidNetwork(&'static str),
}
