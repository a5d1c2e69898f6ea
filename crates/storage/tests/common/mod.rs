//! Helpers shared by the integration tests.

#![allow(dead_code)]

use palisade_raft::{
    Entry, HardState, LogIndex, Membership, Payload, Snapshot, SnapshotMeta, Term,
};
use palisade_storage::{Disk, Recovered, SimDisk, Wal, WalError, WalOptions, segment_name};

/// Small segments, so a few dozen entries span several files.
pub const SMALL: WalOptions = WalOptions { segment_bytes_max: 256 };

/// An entry whose payload names its index and term, so a mix-up shows.
pub fn entry(index: LogIndex, term: Term) -> Entry {
    Entry { index, term, payload: Payload::Command(format!("entry {index} of term {term}").into()) }
}

/// Entries `from..=to`, all of `term`.
pub fn entries(from: LogIndex, to: LogIndex, term: Term) -> Vec<Entry> {
    (from..=to).map(|index| entry(index, term)).collect()
}

/// A hard state.
pub fn hard_state(term: Term, commit: LogIndex) -> HardState {
    HardState { term, vote: Some(1), commit }
}

/// A snapshot at `index` with `term` and some data.
pub fn snapshot(index: LogIndex, term: Term) -> Snapshot {
    let membership = Membership::new([1, 2, 3]);
    let data = format!("state up to {index}").into_bytes();
    Snapshot { meta: SnapshotMeta { index, term, membership }, data }
}

/// Opens the WAL on `disk` with `options`, panicking on error.
pub fn open(disk: &SimDisk, options: WalOptions) -> (Wal<SimDisk>, Recovered) {
    Wal::open_with(disk.clone(), options).unwrap_or_else(|e| panic!("open failed: {e}"))
}

/// Opens and expects corruption in a WAL segment; returns (segment, offset, reason).
pub fn open_corrupt(disk: &SimDisk, options: WalOptions) -> (String, u64, String) {
    match Wal::open_with(disk.clone(), options) {
        Err(WalError::Corrupt { segment, offset, reason }) => (segment, offset, reason),
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok((_, recovered)) => panic!("expected Corrupt, recovered {recovered:?}"),
    }
}

/// Name of the first segment.
pub fn first_segment() -> String {
    segment_name(0)
}

/// Segment names on the disk.
pub fn segments(disk: &SimDisk) -> Vec<String> {
    disk.list().unwrap().into_iter().filter(|n| n.starts_with("wal-")).collect()
}
