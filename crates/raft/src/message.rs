//! The messages Raft nodes exchange, and the checks every received message passes first.
//!
//! Messages are plain serde data: the server puts them in wire frames, the simulator moves
//! them as values. Every Raft message carries the sender's term, because the first thing a
//! receiver does is compare terms (Raft §5.1). Time probes carry no term: they are not part of
//! consensus and never change Raft state.
//!
//! Peers are not Byzantine, but they are not trusted to be well-formed either (a bug, a
//! version skew, a corrupted frame that passed its checksum). [`Message::validate`] checks
//! every count and size against named limits and the internal consistency of the message
//! (contiguous entry indices, terms not above the message's term, no zero node ids), so the
//! protocol code behind it can `assert!` its invariants without a peer being able to trip them.

use palisade_clock::WallTime;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{SNAPSHOT_BYTES_MAX, SNAPSHOT_CHUNK_BYTES_LIMIT, VOTERS_MAX};
use crate::types::{Entry, LogIndex, Membership, Payload, SnapshotMeta, Term};

/// A message between two Raft nodes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// "Would you vote for me in `term`?" without changing anyone's term (thesis §9.6).
    PreVote(VoteRequest),
    /// Answer to [`Message::PreVote`].
    PreVoteResponse(VoteResponse),
    /// A candidate asks for a vote (Raft §5.2).
    RequestVote(VoteRequest),
    /// Answer to [`Message::RequestVote`].
    RequestVoteResponse(VoteResponse),
    /// Entries to append, or a heartbeat when empty (Raft §5.3).
    AppendEntries(AppendEntries),
    /// Answer to [`Message::AppendEntries`].
    AppendEntriesResponse(AppendEntriesResponse),
    /// One chunk of a snapshot (Raft §7). Boxed: the largest variant by far and rare, while
    /// every message is moved several times on its way to the peer (88 -> 72 bytes per move;
    /// serde sees through the box, so the wire format is unchanged).
    InstallSnapshot(Box<InstallSnapshot>),
    /// Answer to [`Message::InstallSnapshot`].
    InstallSnapshotResponse(InstallSnapshotResponse),
    /// The leader asks a caught-up follower to campaign now (leadership transfer, thesis §3.10).
    TimeoutNow {
        /// The leader's term.
        term: Term,
    },
    /// A clock-offset probe.
    TimePing(TimePing),
    /// Answer to [`Message::TimePing`].
    TimePong(TimePong),
}

/// A (pre)vote request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteRequest {
    /// The term the candidate campaigns in (for PreVote: the term it would campaign in).
    pub term: Term,
    /// Index of the candidate's last entry.
    pub last_log_index: LogIndex,
    /// Term of the candidate's last entry.
    pub last_log_term: Term,
    /// The election was triggered by TimeoutNow: voters skip the leader-stickiness check.
    pub transfer: bool,
}

/// A (pre)vote answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoteResponse {
    /// For a granted PreVote, the term asked for; otherwise the responder's term.
    pub term: Term,
    /// Whether the vote is granted.
    pub granted: bool,
}

/// AppendEntries: entries following `prev_log_index`, or a heartbeat when empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntries {
    /// The leader's term.
    pub term: Term,
    /// Index of the entry just before `entries`.
    pub prev_log_index: LogIndex,
    /// Term of the entry at `prev_log_index`.
    pub prev_log_term: Term,
    /// Entries to append, indices `prev_log_index + 1 ..`.
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub leader_commit: LogIndex,
    /// ReadIndex heartbeat round this message belongs to (0: none); echoed in the response.
    pub read_round: u64,
}

/// Answer to AppendEntries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesResponse {
    /// The responder's term.
    pub term: Term,
    /// What happened.
    pub result: AppendResult,
    /// The request's `read_round`, echoed.
    pub read_round: u64,
}

/// Outcome of an AppendEntries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `match_index` (and it is durable once the
    /// response is sent).
    Success {
        /// Last index known to match: `prev_log_index + entries.len()`.
        match_index: LogIndex,
    },
    /// The entry at `rejected` does not match; the hint lets the leader skip back a whole term
    /// at a time (thesis §5.3, as etcd implements it).
    Reject {
        /// The request's `prev_log_index`.
        rejected: LogIndex,
        /// Largest index `<= min(rejected, follower's last)` whose term is `<= prev_log_term`.
        hint_index: LogIndex,
        /// Term of the follower's entry at `hint_index`.
        hint_term: Term,
    },
}

/// One chunk of a snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshot {
    /// The leader's term.
    pub term: Term,
    /// What the snapshot covers.
    pub meta: SnapshotMeta,
    /// Size of the whole snapshot's data.
    pub total_bytes: u64,
    /// Offset of this chunk in the data.
    pub offset: u64,
    /// The chunk.
    pub data: Vec<u8>,
}

/// Answer to an InstallSnapshot chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotResponse {
    /// The responder's term.
    pub term: Term,
    /// The snapshot the answer is about.
    pub snapshot_index: LogIndex,
    /// The next offset the follower expects.
    pub next_offset: u64,
    /// The follower holds everything up to `snapshot_index` (installed or already had it).
    pub done: bool,
}

/// A clock-offset probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimePing {
    /// Sequence number, echoed in the pong; pongs to older pings are ignored.
    pub id: u64,
    /// The sender's time of day when it sent the ping.
    pub sent_wall: WallTime,
}

/// Answer to a clock-offset probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimePong {
    /// The ping's `id`.
    pub id: u64,
    /// The ping's `sent_wall`.
    pub echo_sent_wall: WallTime,
    /// The responder's time of day when the ping arrived.
    pub received_wall: WallTime,
    /// The responder's time of day when it sent the pong.
    pub sent_wall: WallTime,
}

/// Limits a received message is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageLimits {
    /// Most entries in one AppendEntries.
    pub entries_per_message_max: usize,
    /// Most payload bytes in one AppendEntries.
    pub bytes_per_message_max: usize,
}

/// Why a received message was dropped.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum InvalidMessage {
    /// A Raft message with term 0.
    #[error("term 0")]
    ZeroTerm,
    /// More entries than `entries_per_message_max`.
    #[error("{count} entries, maximum {max}")]
    TooManyEntries {
        /// Entries in the message.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// More payload bytes than `bytes_per_message_max`.
    #[error("{bytes} payload bytes, maximum {max}")]
    TooManyBytes {
        /// Bytes in the message.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// Entry indices do not follow `prev_log_index` one by one.
    #[error("entry indices are not contiguous after the previous index")]
    EntriesNotContiguous,
    /// An entry's term is 0, decreases, or is above the message's term, or the previous
    /// term is above the message's term.
    #[error("entry terms are out of order or above the leader's term")]
    EntryTermInvalid,
    /// A membership is empty, too large or names node 0.
    #[error("invalid membership")]
    MembershipInvalid,
    /// A snapshot chunk or snapshot is too large, or the chunk lies outside the snapshot.
    #[error("snapshot chunk out of bounds")]
    SnapshotChunkInvalid,
    /// Snapshot metadata that cannot be right (term 0 for a non-empty snapshot, term above the
    /// leader's).
    #[error("invalid snapshot metadata")]
    SnapshotMetaInvalid,
}

impl Message {
    /// The sender's term, for Raft messages; `None` for time probes.
    pub fn term(&self) -> Option<Term> {
        match self {
            Message::PreVote(m) | Message::RequestVote(m) => Some(m.term),
            Message::PreVoteResponse(m) | Message::RequestVoteResponse(m) => Some(m.term),
            Message::AppendEntries(m) => Some(m.term),
            Message::AppendEntriesResponse(m) => Some(m.term),
            Message::InstallSnapshot(m) => Some(m.term),
            Message::InstallSnapshotResponse(m) => Some(m.term),
            Message::TimeoutNow { term } => Some(*term),
            Message::TimePing(_) | Message::TimePong(_) => None,
        }
    }

    /// A short name of the variant, for traces and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::PreVote(_) => "PreVote",
            Message::PreVoteResponse(_) => "PreVoteResponse",
            Message::RequestVote(_) => "RequestVote",
            Message::RequestVoteResponse(_) => "RequestVoteResponse",
            Message::AppendEntries(_) => "AppendEntries",
            Message::AppendEntriesResponse(_) => "AppendEntriesResponse",
            Message::InstallSnapshot(_) => "InstallSnapshot",
            Message::InstallSnapshotResponse(_) => "InstallSnapshotResponse",
            Message::TimeoutNow { .. } => "TimeoutNow",
            Message::TimePing(_) => "TimePing",
            Message::TimePong(_) => "TimePong",
        }
    }

    /// Checks the message against `limits` and for internal consistency.
    pub fn validate(&self, limits: &MessageLimits) -> Result<(), InvalidMessage> {
        if self.term() == Some(0) {
            return Err(InvalidMessage::ZeroTerm);
        }
        match self {
            Message::AppendEntries(m) => validate_append(m, limits),
            Message::InstallSnapshot(m) => validate_snapshot_chunk(m),
            _ => Ok(()),
        }
    }
}

/// Payload bytes of an entry, as counted against `bytes_per_message_max`.
pub fn payload_bytes(entry: &Entry) -> usize {
    match &entry.payload {
        Payload::Noop => 0,
        Payload::Command(c) => c.len(),
        Payload::Membership(m) => m.voters.len() * 8,
    }
}

/// Checks a membership carried by a peer: non-empty, at most [`VOTERS_MAX`], no node 0.
pub fn validate_membership(m: &Membership) -> Result<(), InvalidMessage> {
    if m.voters.is_empty() || m.voters.len() > VOTERS_MAX || m.voters.contains(&0) {
        return Err(InvalidMessage::MembershipInvalid);
    }
    Ok(())
}

fn validate_append(m: &AppendEntries, limits: &MessageLimits) -> Result<(), InvalidMessage> {
    if m.entries.len() > limits.entries_per_message_max {
        return Err(InvalidMessage::TooManyEntries {
            count: m.entries.len(),
            max: limits.entries_per_message_max,
        });
    }
    let bytes: usize = m.entries.iter().map(payload_bytes).sum();
    if bytes > limits.bytes_per_message_max {
        return Err(InvalidMessage::TooManyBytes { bytes, max: limits.bytes_per_message_max });
    }
    if m.prev_log_term > m.term || (m.prev_log_index == 0 && m.prev_log_term != 0) {
        return Err(InvalidMessage::EntryTermInvalid);
    }
    let mut expected_index = m.prev_log_index;
    let mut previous_term = m.prev_log_term;
    for entry in &m.entries {
        expected_index =
            expected_index.checked_add(1).ok_or(InvalidMessage::EntriesNotContiguous)?;
        if entry.index != expected_index {
            return Err(InvalidMessage::EntriesNotContiguous);
        }
        if entry.term == 0 || entry.term < previous_term || entry.term > m.term {
            return Err(InvalidMessage::EntryTermInvalid);
        }
        previous_term = entry.term;
        if let Payload::Membership(members) = &entry.payload {
            validate_membership(members)?;
        }
    }
    Ok(())
}

fn validate_snapshot_chunk(m: &InstallSnapshot) -> Result<(), InvalidMessage> {
    if m.meta.index == 0 || m.meta.term == 0 || m.meta.term > m.term {
        return Err(InvalidMessage::SnapshotMetaInvalid);
    }
    validate_membership(&m.meta.membership)?;
    if m.data.len() > SNAPSHOT_CHUNK_BYTES_LIMIT || m.total_bytes > SNAPSHOT_BYTES_MAX {
        return Err(InvalidMessage::SnapshotChunkInvalid);
    }
    let end = m.offset.checked_add(m.data.len() as u64);
    if end.is_none_or(|end| end > m.total_bytes) {
        return Err(InvalidMessage::SnapshotChunkInvalid);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: MessageLimits =
        MessageLimits { entries_per_message_max: 4, bytes_per_message_max: 10 };

    fn entry(term: Term, index: LogIndex, bytes: usize) -> Entry {
        Entry { term, index, payload: Payload::Command(vec![0; bytes]) }
    }

    fn append(entries: Vec<Entry>) -> Message {
        Message::AppendEntries(AppendEntries {
            term: 3,
            prev_log_index: 5,
            prev_log_term: 2,
            entries,
            leader_commit: 0,
            read_round: 0,
        })
    }

    #[test]
    fn well_formed_append_passes() {
        let m = append(vec![entry(2, 6, 3), entry(3, 7, 3)]);
        assert_eq!(m.validate(&LIMITS), Ok(()));
    }

    #[test]
    fn limits_are_enforced() {
        let many = (6..11).map(|i| entry(3, i, 0)).collect();
        assert!(matches!(
            append(many).validate(&LIMITS),
            Err(InvalidMessage::TooManyEntries { .. })
        ));
        let big = vec![entry(3, 6, 11)];
        assert!(matches!(append(big).validate(&LIMITS), Err(InvalidMessage::TooManyBytes { .. })));
    }

    #[test]
    fn inconsistent_entries_are_refused() {
        let gap = vec![entry(3, 7, 0)];
        assert_eq!(append(gap).validate(&LIMITS), Err(InvalidMessage::EntriesNotContiguous));
        let decreasing = vec![entry(3, 6, 0), entry(2, 7, 0)];
        assert_eq!(append(decreasing).validate(&LIMITS), Err(InvalidMessage::EntryTermInvalid));
        let future = vec![entry(4, 6, 0)];
        assert_eq!(append(future).validate(&LIMITS), Err(InvalidMessage::EntryTermInvalid));
        let zero = Message::TimeoutNow { term: 0 };
        assert_eq!(zero.validate(&LIMITS), Err(InvalidMessage::ZeroTerm));
        let bad_members = vec![Entry {
            term: 3,
            index: 6,
            payload: Payload::Membership(Membership::new([0, 1])),
        }];
        let roomy = MessageLimits { bytes_per_message_max: 100, ..LIMITS };
        assert_eq!(append(bad_members).validate(&roomy), Err(InvalidMessage::MembershipInvalid));
    }

    #[test]
    fn snapshot_chunks_must_lie_inside_the_snapshot() {
        let chunk = |offset, len, total| {
            Message::InstallSnapshot(Box::new(InstallSnapshot {
                term: 2,
                meta: SnapshotMeta { index: 4, term: 1, membership: Membership::new([1, 2]) },
                total_bytes: total,
                offset,
                data: vec![0; len],
            }))
        };
        assert_eq!(chunk(0, 4, 8).validate(&LIMITS), Ok(()));
        assert_eq!(chunk(6, 4, 8).validate(&LIMITS), Err(InvalidMessage::SnapshotChunkInvalid));
        assert_eq!(
            chunk(u64::MAX, 4, 8).validate(&LIMITS),
            Err(InvalidMessage::SnapshotChunkInvalid)
        );
    }
}
