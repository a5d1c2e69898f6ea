//! The error type of the WAL, the snapshot file and the `meta` file.
//!
//! Corruption has its own variants and names the file and offset, because it is the error an
//! operator must act on: the node refuses to start rather than guess which synced data it may
//! throw away. [`WalError::Poisoned`] is the other one that matters: after a failed write or
//! fsync nobody knows what reached the disk (the kernel may even have dropped the dirty pages
//! and cleared the error, the "fsyncgate" lesson), so the WAL stops accepting work until it is
//! reopened from what is durable, which for a real disk means restarting the process.

use palisade_raft::LogIndex;

use crate::disk::StorageError;
use crate::meta::DirMeta;

/// Why a WAL, snapshot or meta operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// The disk failed an operation.
    #[error("disk error: {0}")]
    Disk(#[from] StorageError),
    /// A WAL segment holds bytes that are not a valid record where synced data must be; the
    /// node must not start from this directory as it is (never silently drop synced data).
    #[error("corrupt WAL segment {segment} at offset {offset}: {reason}")]
    Corrupt {
        /// File name of the segment.
        segment: String,
        /// Byte offset of the bad record (or of the record the inconsistency was found at).
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The snapshot or `meta` file is damaged or inconsistent with the WAL.
    #[error("corrupt file {name}: {reason}")]
    CorruptFile {
        /// File name.
        name: String,
        /// What was wrong.
        reason: String,
    },
    /// A file was written by a format version this build does not read.
    #[error("{name} has format version {found}; this build reads version {supported}")]
    UnsupportedFormat {
        /// File name.
        name: String,
        /// The version found.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// An entry or hard state encodes to more than [`crate::RECORD_BYTES_MAX`].
    #[error("record of {bytes} bytes exceeds the maximum of {max}")]
    RecordTooLarge {
        /// Size the record would have, header included.
        bytes: u64,
        /// [`crate::RECORD_BYTES_MAX`].
        max: u64,
    },
    /// A snapshot encodes to more than [`crate::SNAPSHOT_BYTES_MAX`].
    #[error("snapshot of {bytes} bytes exceeds the maximum of {max}")]
    SnapshotTooLarge {
        /// Size the snapshot file would have.
        bytes: u64,
        /// [`crate::SNAPSHOT_BYTES_MAX`].
        max: u64,
    },
    /// Entries passed to [`crate::Wal::append_entries`] do not extend the log (a gap, an index
    /// inside the snapshot, non-contiguous indexes, a decreasing term). Nothing was written.
    #[error("bad append at index {index}: {reason}")]
    BadAppend {
        /// Index of the offending entry.
        index: LogIndex,
        /// What was wrong.
        reason: String,
    },
    /// The hard state to sync commits an index the log does not hold yet (append the entries
    /// or save the snapshot first). Nothing was written.
    #[error("hard state commits index {commit} but the log ends at {last}")]
    CommitBeyondLog {
        /// The hard state's commit index.
        commit: LogIndex,
        /// The last index of the log (or of the snapshot).
        last: LogIndex,
    },
    /// [`crate::Wal::save_snapshot`] was given a snapshot older than the saved one.
    #[error("snapshot at index {index} is older than the saved snapshot at {saved}")]
    SnapshotRegression {
        /// Index of the snapshot offered.
        index: LogIndex,
        /// Index of the snapshot already saved.
        saved: LogIndex,
    },
    /// An earlier disk error left the WAL's durable state unknown; reopen it (restart).
    #[error("an earlier disk error left the WAL in an unknown state; it must be reopened")]
    Poisoned,
    /// The data directory belongs to another cluster or node.
    #[error("data directory holds {found:?}, expected {expected:?}")]
    MetaMismatch {
        /// What the caller expected.
        expected: DirMeta,
        /// What the directory holds.
        found: DirMeta,
    },
    /// [`crate::WalOptions`] out of range.
    #[error("bad WAL options: {0}")]
    BadOptions(&'static str),
}
