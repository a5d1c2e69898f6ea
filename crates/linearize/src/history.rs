//! Operations: what a client asked, when, and what it was told — or that it was never told.
//!
//! A history is a set of operations, each with the process that issued it, its input, the time
//! it was called and, if the client learnt it, the time it returned and its output. Times are
//! any `u64` on one timeline (nanoseconds of a simulator, a sequence number of events); only
//! their order matters. Two operations are *concurrent* unless one returned strictly before the
//! other was called: an operation that returns at `t` and one called at the same `t` may be
//! linearized in either order (the permissive reading, as in Porcupine, so equal timestamps
//! never cause a false violation).
//!
//! An operation whose outcome is [`Outcome::Unknown`] — the client timed out, crashed, or lost
//! the connection — may have taken effect at any moment after its call, arbitrarily later
//! (a request can sit in a queue or a log), or never. The checker treats it exactly like
//! Knossos and Porcupine do: its return time is +∞ and its output is whatever the model says
//! it would have been; and because every other operation can be linearized before it, "never"
//! is included. See `Model::step_unknown`.

use serde::{Deserialize, Serialize};

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome<O> {
    /// The client received `output` at `time`.
    Returned {
        /// Return time (same timeline as the call).
        time: u64,
        /// What the client was told.
        output: O,
    },
    /// The client never learnt the outcome: the operation took effect at some time after its
    /// call, or never.
    Unknown,
}

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Operation<I, O> {
    /// The client process (a sequential thread of operations). Used only in explanations: the
    /// real-time order already encodes each process's program order.
    pub process: u64,
    /// What was asked.
    pub input: I,
    /// Call (invocation) time.
    pub call: u64,
    /// Return time and output, or unknown.
    pub outcome: Outcome<O>,
}

impl<I, O> Operation<I, O> {
    /// An operation that returned `output` at `ret`.
    pub fn returned(process: u64, input: I, call: u64, ret: u64, output: O) -> Self {
        Operation { process, input, call, outcome: Outcome::Returned { time: ret, output } }
    }

    /// An operation whose outcome the client never learnt.
    pub fn unknown(process: u64, input: I, call: u64) -> Self {
        Operation { process, input, call, outcome: Outcome::Unknown }
    }

    /// Return time, if the operation returned.
    pub fn ret(&self) -> Option<u64> {
        match &self.outcome {
            Outcome::Returned { time, .. } => Some(*time),
            Outcome::Unknown => None,
        }
    }

    /// Output, if the operation returned.
    pub fn output(&self) -> Option<&O> {
        match &self.outcome {
            Outcome::Returned { output, .. } => Some(output),
            Outcome::Unknown => None,
        }
    }

    /// Whether the outcome is unknown.
    pub fn is_unknown(&self) -> bool {
        matches!(self.outcome, Outcome::Unknown)
    }
}
