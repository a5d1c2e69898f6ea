//! Opening a WAL: read the snapshot, replay every segment, repair what a crash may leave.
//!
//! Recovery changes the disk only after it has decided the directory is sound: a directory it
//! refuses is left exactly as it was found, for an operator or a tool to inspect. The repairs
//! are those a crash makes necessary: cutting a torn tail off the last segment (so new records
//! follow valid ones), writing the reset record a crash inside `save_snapshot` may have kept
//! from being written, and creating the first segment of a new directory.

use palisade_raft::{Entry, SnapshotMeta};

use crate::disk::Disk;
use crate::limits::SEGMENT_BYTES_MAX;
use crate::wal::record::{Record, RecordRef, ScanEnd, scan_segment};
use crate::wal::replay::{Pos, Replay, Replayed};
use crate::wal::snapshot::{SNAPSHOT_FILE, SNAPSHOT_TMP_FILE, read_snapshot_file};
use crate::wal::terms::LogTerms;
use crate::wal::{
    Recovered, Segment, Wal, WalError, WalOptions, WalStats, parse_segment_name, segment_name,
};

/// What reading the segments found.
struct Scanned {
    segments: Vec<Segment>,
    replayed: Replayed,
    hard_state_seq: Option<u64>,
    /// The last segment's scan, if there is a segment.
    last_end: Option<ScanEnd>,
}

impl<D: Disk> Wal<D> {
    /// Opens the WAL in `disk`, recovering what it holds: the snapshot, the hard state and the
    /// entries after the snapshot. Refuses with [`WalError::Corrupt`] or
    /// [`WalError::CorruptFile`] if synced data is damaged or missing.
    pub fn open_with(mut disk: D, options: WalOptions) -> Result<(Wal<D>, Recovered), WalError> {
        options.validate()?;
        let names = disk.list()?;
        let snapshot = read_snapshot_file(&disk)?;
        let seqs = segment_seqs(&names)?;
        if seqs.is_empty() && snapshot.is_some() {
            return Err(WalError::CorruptFile {
                name: SNAPSHOT_FILE.to_owned(),
                reason: "a snapshot but no WAL segment: the hard state is missing".into(),
            });
        }
        let meta = snapshot.as_ref().map(|s| s.meta.clone()).unwrap_or_default();
        let scanned = scan_all(&disk, &seqs, &meta)?;

        // The directory is sound; repair what a crash leaves.
        let mut stats = WalStats::default();
        if names.iter().any(|name| name == SNAPSHOT_TMP_FILE) {
            disk.remove(SNAPSHOT_TMP_FILE)?;
        }
        let mut segments = scanned.segments;
        let torn_tail_bytes = scanned.last_end.map_or(0, |end| end.torn_bytes);
        if torn_tail_bytes > 0 {
            let last = segments.last().expect("a scan end implies a segment");
            let name = segment_name(last.seq);
            disk.truncate(&name, last.bytes)?;
            disk.sync(&name)?;
            stats.syncs += 1;
        }
        if segments.is_empty() {
            disk.append(&segment_name(0), &[])?;
            disk.sync_dir()?;
            stats.dir_syncs += 1;
            stats.segments_created += 1;
            segments.push(Segment::new(0, 0, None));
        }
        let Replayed { entries, hard_state, needs_reset } = scanned.replayed;
        let mut wal = Wal {
            disk,
            options,
            segments,
            terms: LogTerms::new(meta.index, meta.term, &entries),
            snapshot: meta.clone(),
            hard_state,
            hard_state_written: hard_state,
            hard_state_seq: scanned.hard_state_seq,
            unsynced: false,
            poisoned: false,
            stats,
            scratch: Vec::new(),
        };
        if needs_reset {
            wal.write_record(&RecordRef::Reset { index: meta.index, term: meta.term })?;
            wal.sync_inner()?;
        }
        check_recovered(&entries, &meta);
        Ok((wal, Recovered { hard_state, snapshot, entries, torn_tail_bytes }))
    }
}

/// Sequence numbers of the segments among `names`, which must be consecutive.
fn segment_seqs(names: &[String]) -> Result<Vec<u64>, WalError> {
    let mut seqs: Vec<u64> = names.iter().filter_map(|name| parse_segment_name(name)).collect();
    seqs.sort_unstable();
    for pair in seqs.windows(2) {
        if pair[1] != pair[0] + 1 {
            return Err(WalError::Corrupt {
                segment: segment_name(pair[1]),
                offset: 0,
                reason: format!("segment {} before it is missing", segment_name(pair[1] - 1)),
            });
        }
    }
    Ok(seqs)
}

/// Reads and replays every segment, oldest first.
fn scan_all<D: Disk>(disk: &D, seqs: &[u64], meta: &SnapshotMeta) -> Result<Scanned, WalError> {
    let mut replay = Replay::default();
    let mut segments = Vec::with_capacity(seqs.len());
    let mut hard_state_seq = None;
    let mut last_end = None;
    for (i, &seq) in seqs.iter().enumerate() {
        let name = segment_name(seq);
        let len = disk.len(&name)?;
        if len > SEGMENT_BYTES_MAX {
            let reason = format!("{len} bytes, more than SEGMENT_BYTES_MAX");
            return Err(WalError::Corrupt { segment: name, offset: 0, reason });
        }
        let bytes = disk.read(&name)?;
        let mut max_entry = None;
        let is_last = i + 1 == seqs.len();
        let end = scan_segment(&name, &bytes, is_last, |offset, record| {
            match &record {
                Record::Entry(entry) => max_entry = max_entry.max(Some(entry.index)),
                Record::HardState(_) => hard_state_seq = Some(seq),
                Record::Reset { .. } => {}
            }
            replay.apply(Pos { seq, offset }, record)
        })?;
        segments.push(Segment::new(seq, end.valid_bytes, max_entry));
        last_end = Some(end);
    }
    let replayed = replay.finish(meta)?;
    Ok(Scanned { segments, replayed, hard_state_seq, last_end })
}

/// What `Recovered::entries` promises.
fn check_recovered(entries: &[Entry], meta: &SnapshotMeta) {
    for (offset, entry) in entries.iter().enumerate() {
        assert_eq!(entry.index, meta.index + 1 + offset as u64, "recovered entries are contiguous");
    }
}
