//! The one error enum of the client.
//!
//! Each variant is something a caller can act on, and says so in its message: which endpoints
//! were tried, who holds the lock, which token is current. An operation whose outcome the
//! client could not learn is *not* an error: it is [`palisade_lock::Outcome::Unknown`] in the
//! `Ok` value of the mutation, so a caller cannot mistake it for a failure (or a success).

use std::time::Duration;

use palisade_clock::HlcTimestamp;
use palisade_lock::{FenceRejection, Holder, SessionId, Token};
use palisade_node::raft::LogIndex;
use thiserror::Error;

/// Why an operation failed. Outcomes the client could not learn are never errors: see
/// [`palisade_lock::Outcome::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// No endpoint answered (connection refused, timeout, not a palisade node).
    #[error("no palisade cluster reachable; tried: {}", tried.join("; "))]
    NoClusterReachable {
        /// Each endpoint tried, with what went wrong.
        tried: Vec<String>,
    },
    /// Every node that answered said it is not the leader and knows of none (an election is
    /// in progress, or no majority can be reached).
    #[error("no leader: the nodes that answered are not the leader and know of none ({detail})")]
    NoLeader {
        /// What was seen.
        detail: String,
    },
    /// A read got no answer within the operation timeout.
    #[error("no answer within {timeout:?} ({detail})")]
    Timeout {
        /// The operation timeout.
        timeout: Duration,
        /// What was seen.
        detail: String,
    },
    /// A fenced write was rejected: the fence's token is not the lock's current grant.
    #[error("stale fence: {0}")]
    StaleFence(FenceRejection),
    /// The lock is held by another session (try-acquire, or a wait that ran out).
    #[error("lock {lock:?} is held by {}{}", describe_holder(holder.as_ref()),
        describe_wait(*waited, *delayed_since))]
    LockHeld {
        /// The lock.
        lock: String,
        /// Its holder when last seen, if any.
        holder: Option<Holder>,
        /// How long the client waited for it.
        waited: Option<Duration>,
        /// The expiry whose lock-delay blocks new grants, if any.
        delayed_since: Option<LogIndex>,
    },
    /// The session expired (or was closed): its locks are gone; open a new one.
    #[error("session {session} expired or was closed; its locks are released")]
    SessionExpired {
        /// The session.
        session: SessionId,
    },
    /// The session does not hold (or wait for) the lock: it was released, or the session
    /// that held it ended.
    #[error("lock {lock:?} is not held by this session (released, or its session ended)")]
    NotHolder {
        /// The lock.
        lock: String,
    },
    /// A node refused an administrative request.
    #[error("{endpoint} refused: {message}")]
    Node {
        /// The endpoint.
        endpoint: String,
        /// Its answer.
        message: String,
    },
    /// A lock operation needs a session and none is open.
    #[error("no open session")]
    NoSession,
    /// A compare-and-swap found something else than expected.
    #[error("compare-and-swap mismatch: the key {}", match current {
        Some(v) => format!("has version {v}"),
        None => "does not exist".to_string(),
    })]
    CasMismatch {
        /// The current version, `None` if the key does not exist.
        current: Option<HlcTimestamp>,
    },
    /// The input is malformed or past a limit (checked before anything is sent, or by the
    /// server).
    #[error("bad input: {0}")]
    BadInput(String),
    /// A node answered something this client does not understand.
    #[error("unexpected answer from {endpoint}: {detail}")]
    Protocol {
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        detail: String,
    },
    /// The client was shut down.
    #[error("the client was shut down")]
    Closed,
}

fn describe_holder(holder: Option<&Holder>) -> String {
    match holder {
        Some(h) => format!(
            "session {} of client {:#x} (token {}, granted at index {})",
            h.session, h.client, h.token, h.since_index
        ),
        None => "nobody right now".to_string(),
    }
}

fn describe_wait(waited: Option<Duration>, delayed_since: Option<LogIndex>) -> String {
    let mut text = String::new();
    if let Some(index) = delayed_since {
        text.push_str(&format!("; lock-delay after the expiry at index {index} is running"));
    }
    if let Some(w) = waited {
        text.push_str(&format!("; gave up after waiting {w:?}"));
    }
    text
}

impl Error {
    /// The fencing token that is current, for a stale fence.
    pub fn current_token(&self) -> Option<Token> {
        match self {
            Error::StaleFence(FenceRejection::StaleToken { current, .. }) => Some(*current),
            _ => None,
        }
    }
}
