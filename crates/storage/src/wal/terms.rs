//! The terms of the log the WAL holds, kept as runs so the WAL need not keep entries in memory.
//!
//! Raft terms never decrease along a log, so the term of every index after the snapshot is
//! known from the list of indexes where a new term starts: a few dozen bytes for a log of any
//! length. The WAL needs those terms for one decision: whether a snapshot matches the log
//! (Raft figure 13: keep the entries after a snapshot only if the log holds the snapshot's
//! last entry with the same term), and to check that appends keep terms non-decreasing.

use palisade_raft::{Entry, LogIndex, Term};

/// The indexes and terms of the log: a snapshot, then entries `snapshot_index + 1 ..= last`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogTerms {
    /// Index of the last entry the snapshot covers (0: no snapshot).
    snapshot_index: LogIndex,
    /// Term of that entry (0: no snapshot).
    snapshot_term: Term,
    /// Index of the last entry (equals `snapshot_index` when no entry follows the snapshot).
    last_index: LogIndex,
    /// `(first index, term)` of each run of equal terms after the snapshot, in index order.
    runs: Vec<(LogIndex, Term)>,
}

impl LogTerms {
    /// The terms of `entries`, which must follow the snapshot contiguously.
    pub(crate) fn new(snapshot_index: LogIndex, snapshot_term: Term, entries: &[Entry]) -> Self {
        let mut terms = LogTerms {
            snapshot_index,
            snapshot_term,
            last_index: snapshot_index,
            runs: Vec::new(),
        };
        for entry in entries {
            terms.push(entry.index, entry.term);
        }
        terms
    }

    /// Index of the last entry, or of the snapshot if no entry follows it.
    pub(crate) fn last_index(&self) -> LogIndex {
        self.last_index
    }

    /// Index of the last entry the snapshot covers.
    pub(crate) fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    /// The term of the entry at `index`: the snapshot's term at its index, `None` outside
    /// `snapshot_index ..= last_index`. Index 0 ("before the log") has term 0.
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        if index < self.snapshot_index || index > self.last_index {
            return None;
        }
        let run = self.runs.partition_point(|&(start, _)| start <= index);
        assert!(run > 0, "an index after the snapshot lies in a run");
        Some(self.runs[run - 1].1)
    }

    /// Drops the entries from `index` on (a conflicting append replaces them).
    pub(crate) fn truncate_from(&mut self, index: LogIndex) {
        assert!(index > self.snapshot_index, "entries in the snapshot cannot be replaced");
        assert!(index <= self.last_index + 1, "truncation point past the end of the log");
        self.last_index = index - 1;
        let keep = self.runs.partition_point(|&(start, _)| start < index);
        self.runs.truncate(keep);
    }

    /// Appends the entry at `index`, which must be the next one.
    pub(crate) fn push(&mut self, index: LogIndex, term: Term) {
        assert_eq!(index, self.last_index + 1, "entries are appended contiguously");
        let last_term = self.term_at(self.last_index).expect("the last index has a term");
        assert!(term >= last_term, "terms never decrease along the log");
        if self.runs.last().is_none_or(|&(_, run_term)| run_term != term) {
            self.runs.push((index, term));
        }
        self.last_index = index;
    }

    /// Installs a snapshot at `index` with `term`. Entries after it stay only if the log holds
    /// `index` with `term` (Raft figure 13, InstallSnapshot steps 6 and 7); returns whether
    /// they stayed. Either way the snapshot's entries are gone from the log.
    pub(crate) fn install_snapshot(&mut self, index: LogIndex, term: Term) -> bool {
        assert!(index >= self.snapshot_index, "snapshots never go back");
        let matched = self.term_at(index) == Some(term);
        if matched {
            let first_kept = self.runs.partition_point(|&(start, _)| start <= index);
            let mut runs = Vec::with_capacity(self.runs.len() - first_kept + 1);
            // The run holding `index + 1` now starts there, unless a run already does.
            let next_starts_run =
                self.runs.get(first_kept).is_some_and(|&(start, _)| start == index + 1);
            if first_kept > 0 && index < self.last_index && !next_starts_run {
                runs.push((index + 1, self.runs[first_kept - 1].1));
            }
            runs.extend_from_slice(&self.runs[first_kept..]);
            self.runs = runs;
        } else {
            self.runs.clear();
            self.last_index = index;
        }
        self.snapshot_index = index;
        self.snapshot_term = term;
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_raft::Payload;

    fn entries(terms: &[(LogIndex, Term)]) -> Vec<Entry> {
        terms.iter().map(|&(index, term)| Entry { index, term, payload: Payload::Noop }).collect()
    }

    #[test]
    fn terms_are_found_in_runs() {
        let log = LogTerms::new(3, 1, &entries(&[(4, 1), (5, 2), (6, 2), (7, 5)]));
        let got: Vec<_> = (0..=8).map(|i| log.term_at(i)).collect();
        let none = None;
        let want = vec![none, none, none, Some(1), Some(1), Some(2), Some(2), Some(5), none];
        assert_eq!(got, want);
        assert_eq!(log.last_index(), 7);
        assert_eq!(LogTerms::default().term_at(0), Some(0));
    }

    #[test]
    fn truncation_drops_runs_from_the_index() {
        let mut log = LogTerms::new(0, 0, &entries(&[(1, 1), (2, 2), (3, 2), (4, 3)]));
        log.truncate_from(3);
        assert_eq!(log.last_index(), 2);
        assert_eq!(log.term_at(3), None);
        log.push(3, 4);
        assert_eq!(log.term_at(2), Some(2));
        assert_eq!(log.term_at(3), Some(4));
        log.truncate_from(2);
        assert_eq!(log, LogTerms::new(0, 0, &entries(&[(1, 1)])));
    }

    #[test]
    fn a_matching_snapshot_keeps_the_entries_after_it() {
        let mut log = LogTerms::new(0, 0, &entries(&[(1, 1), (2, 2), (3, 2), (4, 3)]));
        assert!(log.install_snapshot(2, 2));
        assert_eq!(log, LogTerms::new(2, 2, &entries(&[(3, 2), (4, 3)])));
        assert!(log.install_snapshot(3, 2));
        assert_eq!(log, LogTerms::new(3, 2, &entries(&[(4, 3)])));
        assert!(log.install_snapshot(4, 3));
        assert_eq!(log, LogTerms::new(4, 3, &[]));
    }

    #[test]
    fn a_conflicting_or_later_snapshot_discards_the_log() {
        let mut log = LogTerms::new(0, 0, &entries(&[(1, 1), (2, 2), (3, 2)]));
        assert!(!log.install_snapshot(2, 7));
        assert_eq!(log, LogTerms::new(2, 7, &[]));
        let mut log = LogTerms::new(0, 0, &entries(&[(1, 1)]));
        assert!(!log.install_snapshot(9, 4));
        assert_eq!(log.last_index(), 9);
        assert_eq!(log.term_at(9), Some(4));
    }
}
