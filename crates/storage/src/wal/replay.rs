//! Replaying records into the log they describe, and reconciling it with the snapshot.
//!
//! The WAL never rewrites a record: a conflicting append (Raft §5.3: the leader's entry at
//! index i replaces ours and everything after it) is written as a new entry record at i, and a
//! snapshot that does not match the log as a `Reset` record. Replay applies those rules in
//! order, so the log it rebuilds is the one the running node had, as of the last record that
//! reached the disk. Replay also checks what must hold of any log the WAL wrote (indexes
//! without gaps, a commit index covered by entries); a violation is reported as corruption,
//! since a missing file or a lost sector is the likeliest cause and guessing is not safe.

use palisade_raft::{Entry, HardState, LogIndex, SnapshotMeta};

use crate::wal::{WalError, record::Record, segment_name};

/// Where a record was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pos {
    /// Sequence number of the segment.
    pub(crate) seq: u64,
    /// Byte offset of the record in it.
    pub(crate) offset: u64,
}

impl Pos {
    fn corrupt(self, reason: String) -> WalError {
        WalError::Corrupt { segment: segment_name(self.seq), offset: self.offset, reason }
    }
}

/// The log and hard state rebuilt from records so far.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    /// The log, contiguous.
    entries: Vec<Entry>,
    /// Index of the last `Reset` record, if one came after the last entry that started a log.
    reset: Option<(LogIndex, Pos)>,
    /// Where the record that started `entries` (or the reset) was.
    start: Option<Pos>,
    /// The last hard state record, and where it was.
    hard_state: Option<(HardState, Pos)>,
}

/// The outcome of a replay, reconciled with the snapshot.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// Entries after the snapshot, contiguous from `snapshot.index + 1`.
    pub(crate) entries: Vec<Entry>,
    /// The last hard state written (default if none).
    pub(crate) hard_state: HardState,
    /// Whether a `Reset` record at the snapshot must be written before any new entry, because
    /// the records on disk would otherwise not let an entry at `snapshot.index + 1` follow.
    pub(crate) needs_reset: bool,
}

impl Replay {
    /// Applies one record.
    pub(crate) fn apply(&mut self, pos: Pos, record: Record) -> Result<(), WalError> {
        match record {
            Record::Entry(entry) => self.apply_entry(pos, entry),
            Record::HardState(hard_state) => {
                self.hard_state = Some((hard_state, pos));
                Ok(())
            }
            Record::Reset { index, .. } => {
                self.entries.clear();
                self.reset = Some((index, pos));
                self.start = Some(pos);
                Ok(())
            }
        }
    }

    fn apply_entry(&mut self, pos: Pos, entry: Entry) -> Result<(), WalError> {
        if entry.index == 0 {
            return Err(pos.corrupt("entry with index 0".into()));
        }
        let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) else {
            if let Some((reset, _)) = self.reset.filter(|&(reset, _)| entry.index != reset + 1) {
                let reason = format!("entry {} after a reset to {reset}", entry.index);
                return Err(pos.corrupt(reason));
            }
            // The first entry of the retained segments: earlier ones were compacted away.
            self.start = Some(pos);
            self.entries.push(entry);
            return Ok(());
        };
        let (first, last) = (first.index, last.index);
        if entry.index > last + 1 {
            let reason = format!("entry {} leaves a gap after entry {last}", entry.index);
            return Err(pos.corrupt(reason));
        }
        if entry.index >= first {
            self.entries.truncate((entry.index - first) as usize);
        } else if self.reset.is_some() {
            let reason = format!("entry {} rewrites the log before a reset", entry.index);
            return Err(pos.corrupt(reason));
        } else {
            // Replaces entries of a compacted prefix, all covered by the snapshot.
            self.entries.clear();
            self.start = Some(pos);
        }
        self.entries.push(entry);
        Ok(())
    }

    /// Reconciles the log with the snapshot (`SnapshotMeta::default()` if none): entries it
    /// covers are dropped, and if the log does not hold the snapshot's last entry with its
    /// term, the whole log goes (Raft figure 13, the rule `save_snapshot` applies too; this
    /// covers a crash between saving the snapshot and writing the reset).
    pub(crate) fn finish(mut self, snapshot: &SnapshotMeta) -> Result<Replayed, WalError> {
        let (index, term) = (snapshot.index, snapshot.term);
        if let Some((reset, pos)) = self.reset.filter(|&(reset, _)| reset > index) {
            let reason = format!("reset to {reset} but the snapshot ends at {index}");
            return Err(pos.corrupt(reason));
        }
        let needs_reset = match (self.entries.first(), self.entries.last()) {
            (Some(first), Some(last)) => {
                let (first, last) = (first.index, last.index);
                if first > index + 1 {
                    let pos = self.start.expect("a log has a start");
                    let reason = format!("log starts at {first} but the snapshot ends at {index}");
                    return Err(pos.corrupt(reason));
                }
                let matched = last >= index
                    && (index < first || self.entries[(index - first) as usize].term == term);
                if !matched {
                    self.entries.clear();
                    true
                } else {
                    let covered = (index + 1 - first) as usize;
                    self.entries.drain(..covered);
                    false
                }
            }
            _ => self.reset.is_some_and(|(reset, _)| reset != index),
        };
        let last = self.entries.last().map_or(index, |e| e.index);
        let hard_state = match self.hard_state {
            Some((hard_state, pos)) if hard_state.commit > last => {
                let reason = format!(
                    "hard state commits index {} but the log ends at {last}: committed entries \
                     are missing",
                    hard_state.commit
                );
                return Err(pos.corrupt(reason));
            }
            Some((hard_state, _)) => hard_state,
            None => HardState::default(),
        };
        Ok(Replayed { entries: self.entries, hard_state, needs_reset })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_raft::{Membership, Payload};

    fn e(index: LogIndex, term: u64) -> Record {
        Record::Entry(Entry { index, term, payload: Payload::Noop })
    }

    fn replay(records: Vec<Record>, snapshot: (LogIndex, u64)) -> Result<Replayed, WalError> {
        let mut replay = Replay::default();
        for (i, record) in records.into_iter().enumerate() {
            replay.apply(Pos { seq: 0, offset: i as u64 }, record)?;
        }
        let meta =
            SnapshotMeta { index: snapshot.0, term: snapshot.1, membership: Membership::default() };
        replay.finish(&meta)
    }

    fn indexes_terms(replayed: &Replayed) -> Vec<(LogIndex, u64)> {
        replayed.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    #[test]
    fn a_conflicting_entry_replaces_the_suffix() {
        let records = vec![e(1, 1), e(2, 1), e(3, 1), e(4, 1), e(3, 2), e(4, 2), e(5, 2)];
        let out = replay(records, (0, 0)).unwrap();
        assert_eq!(indexes_terms(&out), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 2)]);
        assert!(!out.needs_reset);
    }

    #[test]
    fn a_gap_is_corruption() {
        let err = replay(vec![e(1, 1), e(3, 1)], (0, 0)).unwrap_err();
        assert!(matches!(err, WalError::Corrupt { offset: 1, .. }), "{err}");
    }

    #[test]
    fn a_matching_snapshot_drops_only_what_it_covers() {
        let out = replay(vec![e(1, 1), e(2, 1), e(3, 2)], (2, 1)).unwrap();
        assert_eq!(indexes_terms(&out), [(3, 2)]);
        assert!(!out.needs_reset);
    }

    #[test]
    fn a_mismatching_snapshot_drops_the_log_and_asks_for_a_reset() {
        let out = replay(vec![e(1, 1), e(2, 1), e(3, 2)], (2, 5)).unwrap();
        assert!(out.entries.is_empty());
        assert!(out.needs_reset);
        let out = replay(vec![e(1, 1)], (9, 5)).unwrap();
        assert!(out.entries.is_empty());
        assert!(out.needs_reset);
    }

    #[test]
    fn entries_after_a_reset_start_after_the_snapshot() {
        let records = vec![e(1, 1), e(2, 1), Record::Reset { index: 7, term: 3 }, e(8, 3)];
        let out = replay(records, (7, 3)).unwrap();
        assert_eq!(indexes_terms(&out), [(8, 3)]);
        let records = vec![Record::Reset { index: 7, term: 3 }, e(9, 3)];
        assert!(replay(records, (7, 3)).is_err());
        let records = vec![Record::Reset { index: 7, term: 3 }];
        assert!(replay(records, (6, 3)).is_err(), "a reset beyond the snapshot");
    }

    #[test]
    fn a_log_that_starts_after_the_snapshot_is_missing_entries() {
        let err = replay(vec![e(5, 1), e(6, 1)], (3, 1)).unwrap_err();
        assert!(err.to_string().contains("log starts at 5"), "{err}");
        assert!(replay(vec![e(4, 1)], (3, 1)).is_ok());
    }

    #[test]
    fn a_commit_beyond_the_log_is_corruption() {
        let hs = |commit| Record::HardState(HardState { term: 1, vote: None, commit });
        assert!(replay(vec![e(1, 1), e(2, 1), hs(2)], (0, 0)).is_ok());
        assert!(replay(vec![e(1, 1), hs(2)], (0, 0)).is_err());
        assert!(replay(vec![hs(4)], (4, 1)).is_ok());
    }
}
