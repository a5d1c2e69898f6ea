//! The in-memory Raft log: a snapshot base, the entries after it, and four cursors.
//!
//! ```text
//!   snapshot_index   applied ≤ committed      stable       handed          last
//!        |--------------|----------|------------|------------|--------------|
//!        compacted      handed out for apply    durable      in a Ready,    not yet in
//!                                               on disk      not yet durable a Ready
//! ```
//!
//! Why these cursors: Raft's safety depends on what is *durable*, not on what is in memory. A
//! follower acknowledges entries only in a `Ready` whose entries include them (the driver
//! persists before sending), and a leader counts its own log toward a majority only up to
//! `stable`. Committed entries are handed out for apply only once they are stable, so an
//! application never applies something a crash could take back from this node's disk.
//!
//! A follower may truncate a conflicting suffix while a `Ready` carrying part of it is being
//! persisted; the log remembers the lowest truncation since that `Ready` was taken, so the
//! durable prefix it later reports never includes an entry that was replaced in memory.

use std::collections::VecDeque;

use crate::message::payload_bytes;
use crate::types::{Entry, LogIndex, SnapshotMeta, Term};

/// The log of one node.
#[derive(Debug)]
pub(crate) struct RaftLog {
    snapshot_index: LogIndex,
    snapshot_term: Term,
    entries: VecDeque<Entry>,
    /// Entries `<= stable` are durable and match memory.
    stable: LogIndex,
    /// First index not yet handed to a `Ready`.
    unstable_from: LogIndex,
    /// Last index of the outstanding `Ready`'s entries, if it had any.
    handed_last: Option<LogIndex>,
    /// Lowest truncation point since the outstanding `Ready` was taken.
    truncated_while_handed: Option<LogIndex>,
    committed: LogIndex,
    applied: LogIndex,
}

impl RaftLog {
    /// A log recovered from disk: everything in it is durable. `commit` is clamped into the log.
    pub fn recover(
        snapshot: Option<&SnapshotMeta>,
        entries: Vec<Entry>,
        commit: LogIndex,
    ) -> Result<RaftLog, String> {
        let (snapshot_index, snapshot_term) = snapshot.map_or((0, 0), |m| (m.index, m.term));
        if snapshot_index > 0 && snapshot_term == 0 {
            return Err("snapshot at a positive index has term 0".into());
        }
        let mut kept = VecDeque::with_capacity(entries.len());
        let mut prev = (snapshot_index, snapshot_term);
        for entry in entries {
            if entry.index <= snapshot_index {
                if entry.index == snapshot_index && entry.term != snapshot_term {
                    return Err(format!(
                        "entry {} disagrees with the snapshot's term",
                        entry.index
                    ));
                }
                continue;
            }
            if entry.index != prev.0 + 1 {
                return Err(format!("entry {} does not follow {}", entry.index, prev.0));
            }
            if entry.term == 0 || entry.term < prev.1 {
                return Err(format!(
                    "entry {} has term {} after {}",
                    entry.index, entry.term, prev.1
                ));
            }
            prev = (entry.index, entry.term);
            kept.push_back(entry);
        }
        let last = prev.0;
        Ok(RaftLog {
            snapshot_index,
            snapshot_term,
            entries: kept,
            stable: last,
            unstable_from: last + 1,
            handed_last: None,
            truncated_while_handed: None,
            committed: commit.clamp(snapshot_index, last),
            applied: snapshot_index,
        })
    }

    /// Index of the snapshot the log starts after.
    pub fn snapshot_index(&self) -> LogIndex {
        self.snapshot_index
    }

    /// First index held in memory.
    pub fn first_index(&self) -> LogIndex {
        self.snapshot_index + 1
    }

    /// Index of the last entry (the snapshot's if there is none).
    pub fn last_index(&self) -> LogIndex {
        self.snapshot_index + self.entries.len() as u64
    }

    /// Term of the last entry.
    pub fn last_term(&self) -> Term {
        self.entries.back().map_or(self.snapshot_term, |e| e.term)
    }

    /// The committed index.
    pub fn committed(&self) -> LogIndex {
        self.committed
    }

    /// The last index handed out for apply.
    pub fn applied(&self) -> LogIndex {
        self.applied
    }

    /// The first index not yet handed to a `Ready`.
    pub fn unstable_from(&self) -> LogIndex {
        self.unstable_from
    }

    /// The last durable index.
    pub fn stable(&self) -> LogIndex {
        self.stable
    }

    /// Term of the entry at `index`: `None` if compacted away or beyond the end.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held in memory.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        let offset = usize::try_from(index - self.snapshot_index - 1).ok()?;
        self.entries.get(offset)
    }

    /// Entries from `lo` to `hi` (inclusive), at most `count_max` and about `bytes_max` payload
    /// bytes, but at least one if `lo <= hi`. Empty if `lo` is compacted or beyond the end.
    #[inline]
    pub fn slice(
        &self,
        lo: LogIndex,
        hi: LogIndex,
        count_max: usize,
        bytes_max: usize,
    ) -> Vec<Entry> {
        // Most calls find nothing to send or hand out: decide that inline, without a call.
        if lo <= self.snapshot_index || lo > hi {
            return Vec::new();
        }
        let start = usize::try_from(lo - self.snapshot_index - 1).unwrap_or(usize::MAX);
        if start >= self.entries.len() {
            return Vec::new();
        }
        self.clone_range(start, lo, hi, count_max, bytes_max)
    }

    /// The copies behind [`RaftLog::slice`], from the in-memory position `start` (of `lo`).
    fn clone_range(
        &self,
        start: usize,
        lo: LogIndex,
        hi: LogIndex,
        count_max: usize,
        bytes_max: usize,
    ) -> Vec<Entry> {
        let available = self.entries.len() - start;
        let wanted = usize::try_from(hi - lo).map_or(usize::MAX, |n| n.saturating_add(1));
        let count = available.min(wanted).min(count_max);
        let mut out = Vec::with_capacity(count);
        let mut bytes = 0usize;
        for entry in self.entries.range(start..start + count) {
            bytes = bytes.saturating_add(payload_bytes(entry));
            if !out.is_empty() && bytes > bytes_max {
                break;
            }
            out.push(entry.clone());
        }
        out
    }

    /// Whether a log ending at (`index`, `term`) is at least as up to date as this one (§5.4.1).
    pub fn is_up_to_date(&self, index: LogIndex, term: Term) -> bool {
        (term, index) >= (self.last_term(), self.last_index())
    }

    /// Largest index `<= index` whose term is `<= term`, with its term (thesis §5.3 fast
    /// backtracking, etcd's `findConflictByTerm`). Stops at the compaction point.
    pub fn find_conflict_by_term(&self, index: LogIndex, term: Term) -> (LogIndex, Term) {
        let mut i = index.min(self.last_index());
        loop {
            match self.term_at(i) {
                Some(t) if t > term => i -= 1,
                Some(t) => return (i, t),
                None => return (i, 0),
            }
        }
    }

    /// Appends one entry created by this node as leader. Leader append-only: never replaces.
    pub fn append_as_leader(&mut self, entry: Entry) {
        assert!(entry.index == self.last_index() + 1, "leader append must extend the log");
        assert!(entry.term >= self.last_term(), "leader append must not lower the term");
        self.entries.push_back(entry);
    }

    /// Appends entries from a leader after `prev` has been checked to match. Skips entries
    /// already present; truncates from the first conflict. Returns the first replaced index.
    pub fn append_as_follower(&mut self, prev: LogIndex, entries: Vec<Entry>) -> Option<LogIndex> {
        assert!(self.term_at(prev).is_some(), "log matching: prev must exist before appending");
        let mut truncated = None;
        for (k, entry) in entries.into_iter().enumerate() {
            assert!(entry.index == prev + 1 + k as u64, "log matching: entries must be contiguous");
            match self.term_at(entry.index) {
                Some(t) if t == entry.term => continue,
                Some(_) => {
                    assert!(entry.index > self.committed, "log matching: committed entry replaced");
                    self.truncate_from(entry.index);
                    truncated = Some(entry.index);
                }
                None => {}
            }
            assert!(entry.index == self.last_index() + 1, "log matching: append must extend");
            assert!(entry.term >= self.last_term(), "log terms must not decrease");
            self.entries.push_back(entry);
        }
        truncated
    }

    fn truncate_from(&mut self, index: LogIndex) {
        assert!(index > self.snapshot_index, "cannot truncate into the snapshot");
        let keep = usize::try_from(index - self.snapshot_index - 1).unwrap_or(usize::MAX);
        self.entries.truncate(keep);
        self.note_truncation(index);
    }

    fn note_truncation(&mut self, index: LogIndex) {
        self.stable = self.stable.min(index - 1);
        self.unstable_from = self.unstable_from.min(index);
        if self.handed_last.is_some() {
            let lowest = self.truncated_while_handed.map_or(index, |t| t.min(index));
            self.truncated_while_handed = Some(lowest);
        }
    }

    /// Raises the commit index. Commit index monotonic: never lowers it.
    pub fn commit_to(&mut self, index: LogIndex) -> bool {
        if index <= self.committed {
            return false;
        }
        assert!(index <= self.last_index(), "cannot commit beyond the last entry");
        self.committed = index;
        true
    }

    /// Entries not yet handed to a `Ready`; marks them handed.
    pub fn take_unstable(&mut self) -> Vec<Entry> {
        assert!(self.handed_last.is_none(), "a Ready is already outstanding");
        let last = self.last_index();
        let out = self.slice(self.unstable_from, last, usize::MAX, usize::MAX);
        self.unstable_from = last + 1;
        self.truncated_while_handed = None;
        self.handed_last = if out.is_empty() { None } else { Some(last) };
        out
    }

    /// The outstanding `Ready`'s entries are durable.
    pub fn persisted(&mut self) {
        if let Some(last) = self.handed_last.take() {
            let durable = match self.truncated_while_handed.take() {
                Some(t) => last.min(t - 1),
                None => last,
            };
            self.stable = self.stable.max(durable);
        }
        assert!(self.stable <= self.last_index(), "stable beyond the last entry");
    }

    /// Committed, durable entries not yet handed out for apply (at least one if any, about
    /// `bytes_max` payload bytes); marks them applied.
    pub fn take_committed(&mut self, bytes_max: usize) -> Vec<Entry> {
        let hi = self.committed.min(self.stable);
        let out = self.slice(self.applied + 1, hi, usize::MAX, bytes_max);
        if let Some(last) = out.last() {
            self.applied = last.index;
        }
        assert!(self.applied <= self.committed, "applied must not pass committed");
        out
    }

    /// Whether committed, durable entries wait to be handed out.
    pub fn has_committed_to_apply(&self) -> bool {
        self.committed.min(self.stable) > self.applied
    }

    /// Drops entries up to `index` (inclusive), which is covered by a snapshot.
    pub fn compact(&mut self, index: LogIndex) {
        assert!(index > self.snapshot_index, "compaction must move forward");
        assert!(index <= self.applied, "compaction must not pass applied");
        assert!(index <= self.stable, "compaction must not drop unpersisted entries");
        let term = self.term_at(index).expect("compacted index is in the log");
        let drop = usize::try_from(index - self.snapshot_index).unwrap_or(usize::MAX);
        self.entries.drain(..drop);
        self.snapshot_index = index;
        self.snapshot_term = term;
    }

    /// Replaces the whole log by a received snapshot; it counts as committed and applied.
    pub fn restore(&mut self, meta: &SnapshotMeta) {
        assert!(meta.index > self.committed, "a snapshot must move commit forward");
        self.note_truncation(self.snapshot_index + 1);
        self.entries.clear();
        self.snapshot_index = meta.index;
        self.snapshot_term = meta.term;
        self.stable = meta.index;
        self.unstable_from = meta.index + 1;
        self.committed = meta.index;
        self.applied = meta.index;
    }

    /// Entries appended but not committed.
    pub fn uncommitted_len(&self) -> u64 {
        self.last_index() - self.committed
    }

    /// Iterates over the entries held in memory from newest to oldest.
    pub fn iter_rev(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().rev()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Payload;

    fn e(term: Term, index: LogIndex) -> Entry {
        Entry { term, index, payload: Payload::Noop }
    }

    fn log_of(terms: &[Term]) -> RaftLog {
        let entries = terms.iter().enumerate().map(|(i, t)| e(*t, i as u64 + 1)).collect();
        RaftLog::recover(None, entries, 0).expect("valid log")
    }

    #[test]
    fn recover_checks_contiguity_and_clamps_commit() {
        assert!(RaftLog::recover(None, vec![e(1, 2)], 0).is_err());
        assert!(RaftLog::recover(None, vec![e(2, 1), e(1, 2)], 0).is_err());
        let log = RaftLog::recover(None, vec![e(1, 1), e(1, 2)], 9).expect("valid");
        assert_eq!(log.committed(), 2);
        assert_eq!(log.stable(), 2);
        let meta = SnapshotMeta { index: 2, term: 1, membership: Default::default() };
        let log = RaftLog::recover(Some(&meta), vec![e(1, 1), e(1, 2), e(2, 3)], 0).expect("ok");
        assert_eq!((log.first_index(), log.last_index(), log.committed()), (3, 3, 2));
        assert_eq!(log.term_at(2), Some(1));
        assert_eq!(log.term_at(1), None);
    }

    #[test]
    fn follower_append_truncates_conflicts_only() {
        let mut log = log_of(&[1, 1, 2, 2]);
        assert_eq!(log.append_as_follower(1, vec![e(1, 2), e(2, 3)]), None);
        assert_eq!(log.last_index(), 4, "a matching prefix must not truncate");
        assert_eq!(log.append_as_follower(2, vec![e(3, 3)]), Some(3));
        assert_eq!((log.last_index(), log.last_term(), log.stable()), (3, 3, 2));
    }

    #[test]
    #[should_panic(expected = "committed entry replaced")]
    fn replacing_a_committed_entry_is_an_assertion() {
        let mut log = log_of(&[1, 1, 2]);
        log.commit_to(3);
        log.append_as_follower(2, vec![e(3, 3)]);
    }

    #[test]
    fn truncation_while_handed_limits_what_becomes_stable() {
        let mut log = log_of(&[1]);
        log.append_as_follower(1, vec![e(2, 2), e(2, 3)]);
        assert_eq!(log.take_unstable().len(), 2);
        log.append_as_follower(1, vec![e(3, 2)]);
        log.persisted();
        assert_eq!(log.stable(), 1, "entry 2 on disk is not the one in memory");
        assert_eq!(log.take_unstable(), vec![e(3, 2)]);
        log.persisted();
        assert_eq!(log.stable(), 2);
    }

    #[test]
    fn committed_entries_wait_for_durability() {
        let mut log = log_of(&[1]);
        log.append_as_leader(e(1, 2));
        log.commit_to(2);
        assert_eq!(log.take_committed(usize::MAX), vec![e(1, 1)]);
        let _ = log.take_unstable();
        log.persisted();
        assert_eq!(log.take_committed(usize::MAX), vec![e(1, 2)]);
        assert_eq!(log.applied(), 2);
    }

    #[test]
    fn conflict_by_term_skips_whole_terms() {
        let log = log_of(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.find_conflict_by_term(6, 3), (5, 2));
        assert_eq!(log.find_conflict_by_term(9, 1), (2, 1));
        assert_eq!(log.find_conflict_by_term(6, 0), (0, 0));
    }

    #[test]
    fn compact_and_restore() {
        let mut log = log_of(&[1, 1, 2]);
        log.commit_to(3);
        let _ = log.take_committed(usize::MAX);
        log.compact(2);
        assert_eq!((log.first_index(), log.term_at(2), log.term_at(3)), (3, Some(1), Some(2)));
        let meta = SnapshotMeta { index: 7, term: 4, membership: Default::default() };
        log.restore(&meta);
        assert_eq!(
            (log.last_index(), log.last_term(), log.committed(), log.applied()),
            (7, 4, 7, 7)
        );
        assert!(!log.has_committed_to_apply());
    }

    #[test]
    fn slice_respects_limits_but_sends_one() {
        let mut log = log_of(&[1]);
        for i in 2..6 {
            log.append_as_leader(Entry {
                term: 1,
                index: i,
                payload: Payload::Command(vec![0; 10]),
            });
        }
        assert_eq!(log.slice(2, 5, 2, 1000).len(), 2);
        assert_eq!(log.slice(2, 5, 10, 15).len(), 1);
        assert_eq!(log.slice(2, 5, 10, 20).len(), 2);
        assert_eq!(log.slice(6, 5, 10, 20).len(), 0);
        assert_eq!(log.slice(6, 9, 10, 20).len(), 0, "beyond the end");
        assert_eq!(log.slice(4, 9, 10, 1000).len(), 2, "up to the end");
        let mut log = log_of(&[1, 1, 1, 1]);
        log.commit_to(4);
        let _ = log.take_committed(usize::MAX);
        log.compact(2);
        assert_eq!(log.slice(2, 4, 10, 1000).len(), 0, "compacted");
        assert_eq!(log.slice(3, 9, 10, 1000).len(), 2);
    }
}
