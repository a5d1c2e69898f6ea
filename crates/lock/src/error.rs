//! The crate's error type: what can go wrong *around* the protocol.
//!
//! Protocol outcomes — a stale fencing token, a lock held by somebody else, an expired session,
//! a request past a limit — are not errors of this kind: they are values of
//! [`crate::Refused`] carried in a [`crate::Response`], because they are part of the replicated
//! history and every replica must produce exactly the same one. [`LockError`] is for the
//! things a caller did wrong locally: a configuration that cannot work, bytes that do not decode
//! into a command or a snapshot, a command too large to propose.

use thiserror::Error;

/// Everything that can fail in this crate outside the replicated protocol outcomes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LockError {
    /// A [`crate::LockConfig`] field is out of range or inconsistent with another field.
    #[error("invalid lock configuration: {field}: {reason}")]
    InvalidConfig {
        /// The offending field.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// Bytes did not decode into a [`crate::Command`].
    #[error("cannot decode command: {0}")]
    Decode(String),
    /// A command (or snapshot) is larger than the limit for its kind.
    #[error("{what} is {bytes} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// What was too large ("command", "snapshot").
        what: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Encoding failed (postcard could not serialise the value).
    #[error("cannot encode {what}: {reason}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The serialiser's message.
        reason: String,
    },
    /// A snapshot did not decode, has an unknown format version, or violates an invariant of
    /// the state machine (it was corrupted or written by a buggy node).
    #[error("invalid snapshot: {0}")]
    Snapshot(String),
}
