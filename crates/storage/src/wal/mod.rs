//! The write-ahead log: Raft's entries and hard state, durable, with group commit.
//!
//! # What Raft needs from it
//!
//! Before a node answers a vote or acknowledges entries it must have persisted its term, its
//! vote and those entries (Raft figure 2, "persistent state"), and after a crash it must come
//! back with at least everything it persisted. Losing an acknowledged entry or a vote can elect
//! two leaders in a term or lose a committed write; so this log promises: everything written
//! before a successful [`Wal::sync`] is recovered, or the node refuses to start with an error
//! that names the file and offset ([`WalError::Corrupt`]). Nothing synced is ever dropped
//! silently; only a torn tail of unsynced records is (see `record.rs` for how the two are
//! told apart).
//!
//! # Layout
//!
//! The directory holds segments `wal-<sequence, 20 digits>.log`, each a run of CRC32C-framed
//! records (an entry, a hard state, or a reset), plus `snapshot` and, transiently,
//! `snapshot.tmp`. Records are only ever appended. A conflicting append (Raft §5.3) writes the
//! new entries at their indexes, and replay applies "an entry at index i replaces the log from
//! i" in order, so no file is ever rewritten in place. A segment rolls over once it would pass
//! [`WalOptions::segment_bytes_max`]; before the next segment is created the current one is
//! synced, so only the last segment can ever have a torn tail, and the new file is made
//! durable with `sync_dir` before anything is written to it.
//!
//! # Group commit
//!
//! [`Wal::append_entries`] writes records without syncing and [`Wal::set_hard_state`] only
//! remembers the hard state; [`Wal::sync`] writes the hard state (after the entries, so a
//! recovered commit index is always covered by recovered entries or the snapshot; recovery
//! checks it) and issues one `fsync` for everything since the last one. A driver appends all entries of a batch of messages, syncs
//! once, and only then sends the messages that depend on them.
//!
//! # Snapshots and compaction
//!
//! [`Wal::save_snapshot`] writes the snapshot under a temporary name, syncs it, renames it into
//! place and syncs the directory; then, as Raft's figure 13 asks, keeps the log after the
//! snapshot only if the log holds the snapshot's last entry with its term, and otherwise
//! writes a reset record; then deletes the oldest segments whose entries the snapshot covers
//! (one `sync_dir` after each, so they go oldest first). A crash at any step recovers either
//! the old state or the new one: see `tests/snapshot_crash.rs`.
//!
//! # Errors and restarts
//!
//! Any disk error while writing leaves the WAL [`WalError::Poisoned`]: what reached the disk is
//! unknown, so the owner must drop it and [`Wal::open`] again, which recovers what was durable
//! (for a real disk: restart the process, since the kernel's page cache may hold writes that
//! never reached the disk).

mod error;
mod open;
mod record;
mod replay;
mod snapshot;
mod terms;

use palisade_raft::{Entry, HardState, LogIndex, Snapshot, SnapshotMeta, Term};

use crate::disk::Disk;
use crate::limits::SEGMENT_BYTES_MAX;
use record::{RecordRef, encode_record};
use terms::LogTerms;

pub use error::WalError;
pub use snapshot::{SNAPSHOT_FILE, SNAPSHOT_TMP_FILE};

/// Name of the segment with sequence number `seq`.
pub fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

/// The sequence number of a segment name, `None` if `name` is not one.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Tunables of a [`Wal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalOptions {
    /// A segment rolls over once appending would take it past this many bytes (a record larger
    /// than this gets a segment of its own). At most [`SEGMENT_BYTES_MAX`], the default.
    pub segment_bytes_max: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions { segment_bytes_max: SEGMENT_BYTES_MAX }
    }
}

impl WalOptions {
    fn validate(&self) -> Result<(), WalError> {
        if self.segment_bytes_max == 0 {
            return Err(WalError::BadOptions("segment_bytes_max must be positive"));
        }
        if self.segment_bytes_max > SEGMENT_BYTES_MAX {
            return Err(WalError::BadOptions("segment_bytes_max exceeds SEGMENT_BYTES_MAX"));
        }
        Ok(())
    }
}

/// What [`Wal::open`] found on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The last hard state synced (default if none was ever written).
    pub hard_state: HardState,
    /// The saved snapshot, if any.
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot: contiguous from the snapshot's index + 1 (or from 1).
    pub entries: Vec<Entry>,
    /// Bytes of a torn tail that recovery cut off the last segment (0 after a clean stop).
    pub torn_tail_bytes: u64,
}

/// Counters of what a [`Wal`] did since it was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended.
    pub records_written: u64,
    /// Bytes appended to segments.
    pub bytes_written: u64,
    /// File `fsync`s issued (segments and snapshot files).
    pub syncs: u64,
    /// Directory `fsync`s issued.
    pub dir_syncs: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Segments removed by compaction.
    pub segments_removed: u64,
}

/// One segment file, as the WAL tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    /// Sequence number (the file name).
    seq: u64,
    /// Bytes of valid records in it.
    bytes: u64,
    /// Largest index of an entry record in it.
    max_entry: Option<LogIndex>,
    /// [`segment_name`] of `seq`, formatted once: every append and sync names the file.
    name: String,
}

impl Segment {
    fn new(seq: u64, bytes: u64, max_entry: Option<LogIndex>) -> Segment {
        Segment { seq, bytes, max_entry, name: segment_name(seq) }
    }
}

/// A segmented, checksummed write-ahead log for Raft over a [`Disk`].
///
/// Call order for a driver: [`Wal::open`] once (it returns what to restore), then any number
/// of [`append_entries`](Wal::append_entries) and [`set_hard_state`](Wal::set_hard_state),
/// then [`sync`](Wal::sync) before acting on them (sending a vote or an acknowledgement);
/// [`save_snapshot`](Wal::save_snapshot) whenever the state machine has a snapshot.
#[derive(Debug)]
pub struct Wal<D: Disk> {
    disk: D,
    options: WalOptions,
    /// Segments on disk, oldest first; never empty; appends go to the last.
    segments: Vec<Segment>,
    /// Indexes and terms of the log.
    terms: LogTerms,
    /// The saved snapshot's metadata (default if none).
    snapshot: SnapshotMeta,
    /// The hard state last given to `set_hard_state` (or recovered).
    hard_state: HardState,
    /// The hard state of the last hard-state record written.
    hard_state_written: HardState,
    /// Sequence number of the segment holding that record.
    hard_state_seq: Option<u64>,
    /// Whether the last segment has writes not yet synced.
    unsynced: bool,
    /// Whether a disk error left the durable state unknown.
    poisoned: bool,
    stats: WalStats,
    /// Reused encoding buffer.
    scratch: Vec<u8>,
}

/// Largest capacity the encoding buffer keeps between calls.
const SCRATCH_BYTES_KEPT_MAX: usize = 1024 * 1024;

impl<D: Disk> Wal<D> {
    /// Opens the WAL in `disk` with default options, recovering what it holds.
    pub fn open(disk: D) -> Result<(Wal<D>, Recovered), WalError> {
        Wal::open_with(disk, WalOptions::default())
    }

    /// Appends entries (not yet durable: see [`sync`](Wal::sync)). The first entry's index may
    /// be at most the last index + 1; if it is at or below the last index, the log from there
    /// is replaced (Raft §5.3). Indexes must be contiguous, above the snapshot, and terms must
    /// not decrease; otherwise [`WalError::BadAppend`] and nothing is written.
    pub fn append_entries(&mut self, entries: &[Entry]) -> Result<(), WalError> {
        self.guarded(|wal| wal.append_entries_inner(entries))
    }

    /// Records the hard state, to be written by the next [`sync`](Wal::sync) (or
    /// [`save_snapshot`](Wal::save_snapshot), after the snapshot) if it changed.
    pub fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), WalError> {
        self.guarded(|wal| {
            wal.hard_state = hard_state;
            Ok(())
        })
    }

    /// Makes every entry and the hard state given so far durable, with at most one `fsync`
    /// (none if nothing changed). The hard state's commit index must be covered by the log
    /// (entries appended or a snapshot saved): [`WalError::CommitBeyondLog`] otherwise, and
    /// nothing is written.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.guarded(Wal::sync_inner)
    }

    /// Index of the first entry after the snapshot (1 without a snapshot).
    pub fn first_index(&self) -> LogIndex {
        self.terms.snapshot_index() + 1
    }

    /// Index of the last entry, or of the snapshot when no entry follows it (0: empty).
    pub fn last_index(&self) -> LogIndex {
        self.terms.last_index()
    }

    /// Term of the entry at `index`, for `index` from the snapshot's index to the last index.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.terms.term_at(index)
    }

    /// The hard state last set (possibly not yet synced).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Metadata of the saved snapshot (index 0 if none).
    pub fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.snapshot
    }

    /// Whether [`sync`](Wal::sync) has anything to make durable.
    pub fn needs_sync(&self) -> bool {
        self.unsynced || self.hard_state != self.hard_state_written
    }

    /// Whether a disk error has stopped the WAL (see [`WalError::Poisoned`]).
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Counters since the WAL was opened.
    pub fn stats(&self) -> WalStats {
        self.stats
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The disk.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Gives the disk back.
    pub fn into_disk(self) -> D {
        self.disk
    }

    /// Runs `f` unless poisoned, and poisons the WAL if it fails on the disk.
    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, WalError>,
    ) -> Result<T, WalError> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        let result = f(self);
        if matches!(result, Err(WalError::Disk(_))) {
            self.poisoned = true;
        }
        result
    }

    fn check_append(&self, entries: &[Entry]) -> Result<(), WalError> {
        let first = entries[0].index;
        let (snapshot, last) = (self.terms.snapshot_index(), self.terms.last_index());
        let bad = |index, reason: String| Err(WalError::BadAppend { index, reason });
        if first <= snapshot {
            return bad(first, format!("at or below the snapshot index {snapshot}"));
        }
        if first > last + 1 {
            return bad(first, format!("leaves a gap after the last index {last}"));
        }
        let mut previous_term = self.terms.term_at(first - 1).expect("first - 1 is in the log");
        for (offset, entry) in entries.iter().enumerate() {
            if entry.index != first + offset as u64 {
                return bad(entry.index, format!("expected index {}", first + offset as u64));
            }
            if entry.term < previous_term {
                return bad(entry.index, format!("term {} after {previous_term}", entry.term));
            }
            previous_term = entry.term;
        }
        Ok(())
    }

    fn append_entries_inner(&mut self, entries: &[Entry]) -> Result<(), WalError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.check_append(entries)?;
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        let mut ends = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Err(e) = encode_record(&RecordRef::Entry(entry), &mut bytes) {
                self.keep_scratch(bytes);
                return Err(e);
            }
            ends.push((bytes.len(), Some(entry.index)));
        }
        let written = self.write_records(&bytes, &ends);
        self.keep_scratch(bytes);
        written?;
        let first = entries[0].index;
        if first <= self.terms.last_index() {
            self.terms.truncate_from(first);
        }
        for entry in entries {
            self.terms.push(entry.index, entry.term);
        }
        Ok(())
    }

    fn keep_scratch(&mut self, mut bytes: Vec<u8>) {
        if bytes.capacity() > SCRATCH_BYTES_KEPT_MAX {
            bytes = Vec::new();
        }
        self.scratch = bytes;
    }

    /// Writes one record that is not an entry.
    fn write_record(&mut self, record: &RecordRef<'_>) -> Result<(), WalError> {
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        let written = encode_record(record, &mut bytes)
            .and_then(|()| self.write_records(&bytes, &[(bytes.len(), None)]));
        self.keep_scratch(bytes);
        written
    }

    /// Writes encoded records, `bytes` split at the `ends` (with the entry index of each
    /// entry record), to the last segment, rolling over where it would grow too large.
    fn write_records(
        &mut self,
        bytes: &[u8],
        ends: &[(usize, Option<LogIndex>)],
    ) -> Result<(), WalError> {
        let (mut chunk_start, mut record_start) = (0, 0);
        for &(end, entry_index) in ends {
            let chunk_bytes = (record_start - chunk_start) as u64;
            let segment_bytes = self.current().bytes + chunk_bytes;
            let record_bytes = (end - record_start) as u64;
            if segment_bytes > 0 && segment_bytes + record_bytes > self.options.segment_bytes_max {
                self.append_chunk(&bytes[chunk_start..record_start])?;
                chunk_start = record_start;
                self.roll()?;
            }
            let current = self.segments.last_mut().expect("segments are never empty");
            current.max_entry = current.max_entry.max(entry_index);
            record_start = end;
        }
        assert_eq!(record_start, bytes.len(), "the ends cover the bytes");
        self.append_chunk(&bytes[chunk_start..])?;
        self.stats.records_written += ends.len() as u64;
        Ok(())
    }

    fn current(&self) -> &Segment {
        self.segments.last().expect("segments are never empty")
    }

    fn append_chunk(&mut self, chunk: &[u8]) -> Result<(), WalError> {
        if chunk.is_empty() {
            return Ok(());
        }
        let current = self.segments.last_mut().expect("segments are never empty");
        self.disk.append(&current.name, chunk)?;
        current.bytes += chunk.len() as u64;
        self.unsynced = true;
        self.stats.bytes_written += chunk.len() as u64;
        Ok(())
    }

    /// Syncs the last segment, then creates the next one durably.
    fn roll(&mut self) -> Result<(), WalError> {
        self.sync_segment()?;
        let seq = self.current().seq + 1;
        self.disk.append(&segment_name(seq), &[])?;
        self.disk.sync_dir()?;
        self.stats.dir_syncs += 1;
        self.stats.segments_created += 1;
        self.segments.push(Segment::new(seq, 0, None));
        Ok(())
    }

    fn sync_segment(&mut self) -> Result<(), WalError> {
        if self.unsynced {
            let current = self.segments.last().expect("segments are never empty");
            self.disk.sync(&current.name)?;
            self.unsynced = false;
            self.stats.syncs += 1;
        }
        Ok(())
    }

    fn write_hard_state(&mut self) -> Result<(), WalError> {
        let hard_state = self.hard_state;
        self.write_record(&RecordRef::HardState(&hard_state))?;
        self.hard_state_written = hard_state;
        self.hard_state_seq = Some(self.current().seq);
        Ok(())
    }

    fn sync_inner(&mut self) -> Result<(), WalError> {
        if self.hard_state != self.hard_state_written {
            let (commit, last) = (self.hard_state.commit, self.terms.last_index());
            if commit > last {
                return Err(WalError::CommitBeyondLog { commit, last });
            }
            self.write_hard_state()?;
        }
        self.sync_segment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip_and_sort_by_sequence() {
        assert_eq!(segment_name(42), "wal-00000000000000000042.log");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        for bad in ["wal-1.log", "wal-0000000000000000004x.log", "wal-00000000000000000001.lo"] {
            assert_eq!(parse_segment_name(bad), None);
        }
        assert!(segment_name(9) < segment_name(10));
        crate::disk::validate_name(&segment_name(u64::MAX)).unwrap();
    }

    #[test]
    fn options_are_bounded() {
        assert!(WalOptions { segment_bytes_max: 0 }.validate().is_err());
        assert!(WalOptions { segment_bytes_max: SEGMENT_BYTES_MAX + 1 }.validate().is_err());
        assert!(WalOptions::default().validate().is_ok());
    }
}
