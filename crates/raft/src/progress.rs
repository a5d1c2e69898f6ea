//! What a leader knows about each follower, and the majority arithmetic over it.
//!
//! Why a state per follower (the design of etcd's `tracker`): a follower that just became
//! reachable must be *probed* — one AppendEntries at a time, backing off until the logs match
//! — while a follower known to match can be sent entries *pipelined*, up to a bounded number of
//! messages in flight, without waiting for each acknowledgement; a follower behind the log's
//! compaction point needs a *snapshot* instead. Keeping these apart bounds what a leader sends
//! to a slow or unreachable follower.

use std::collections::{BTreeSet, VecDeque};

use palisade_clock::MonoInstant;
use serde::{Deserialize, Serialize};

use crate::types::{LogIndex, NodeId};

/// How the leader currently replicates to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProgressState {
    /// Searching for the point where the logs match: one message at a time.
    Probe,
    /// Logs match: entries are pipelined.
    Replicate,
    /// The follower needs a snapshot, which is being sent chunk by chunk.
    Snapshot,
}

/// A snapshot transfer to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotSend {
    /// Index of the snapshot being sent.
    pub index: LogIndex,
    /// Bytes the follower acknowledged.
    pub offset: u64,
    /// A chunk is on its way and unanswered.
    pub in_flight: bool,
    /// When the last chunk was sent.
    pub sent_at: MonoInstant,
}

/// The leader's view of one follower.
#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to be replicated (durably) on the follower.
    pub match_index: LogIndex,
    /// Next index to send.
    pub next_index: LogIndex,
    /// Replication state.
    pub state: ProgressState,
    /// Probe state: a message with entries was sent and is unanswered.
    pub probe_sent: bool,
    /// Replicate state: last index of each message with entries in flight.
    pub inflight: VecDeque<LogIndex>,
    /// Heard from the follower since the last CheckQuorum round.
    pub recent_active: bool,
    /// Snapshot state: the transfer.
    pub snapshot: Option<SnapshotSend>,
    /// Replicate state: when the match last moved, or the pipeline last started from empty.
    pub progress_at: MonoInstant,
}

impl Progress {
    /// A follower about which nothing is known: probe from `next_index`.
    pub fn new(next_index: LogIndex) -> Progress {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            recent_active: true,
            snapshot: None,
            progress_at: MonoInstant::ZERO,
        }
    }

    /// Back to probing from just after the match.
    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflight.clear();
        self.snapshot = None;
    }

    /// Logs match: pipeline from just after the match.
    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.probe_sent = false;
        self.inflight.clear();
        self.snapshot = None;
    }

    /// Start sending the snapshot at `index`.
    pub fn become_snapshot(&mut self, index: LogIndex) {
        self.state = ProgressState::Snapshot;
        self.probe_sent = false;
        self.inflight.clear();
        self.snapshot =
            Some(SnapshotSend { index, offset: 0, in_flight: false, sent_at: MonoInstant::ZERO });
    }

    /// Records an acknowledgement of `index` at `now`; returns whether the match moved.
    pub fn maybe_update(&mut self, index: LogIndex, now: MonoInstant) -> bool {
        let updated = index > self.match_index;
        if updated {
            self.match_index = index;
            self.probe_sent = false;
            self.progress_at = now;
        }
        self.next_index = self.next_index.max(index + 1);
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        updated
    }

    /// Handles a rejection of `rejected` with the leader-side hint `hint`; returns false if the
    /// rejection is stale (answers an older message) and must be ignored.
    pub fn maybe_decrease_to(&mut self, rejected: LogIndex, hint: LogIndex) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.match_index {
                    return false;
                }
                self.become_probe();
                true
            }
            ProgressState::Probe => {
                if self.next_index.checked_sub(1) != Some(rejected) {
                    return false;
                }
                let candidate = rejected.min(hint.saturating_add(1));
                self.next_index = candidate.max(self.match_index + 1);
                self.probe_sent = false;
                true
            }
            ProgressState::Snapshot => false,
        }
    }

    /// Replicate state: messages are in flight and none was acknowledged for `patience`
    /// (they were probably lost; a follower drops what follows a gap).
    pub fn is_stalled(&self, now: MonoInstant, patience: std::time::Duration) -> bool {
        self.state == ProgressState::Replicate
            && !self.inflight.is_empty()
            && now - self.progress_at >= patience
    }

    /// Whether no message with entries may be sent now.
    pub fn is_paused(&self, inflight_max: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= inflight_max,
            ProgressState::Snapshot => true,
        }
    }

    /// A message carrying entries up to `last` was sent at `now`.
    pub fn sent_entries(&mut self, last: LogIndex, now: MonoInstant) {
        match self.state {
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Replicate => {
                if self.inflight.is_empty() {
                    self.progress_at = now;
                }
                self.next_index = last + 1;
                self.inflight.push_back(last);
            }
            ProgressState::Snapshot => unreachable!("entries are never sent in snapshot state"),
        }
    }
}

/// The largest index that a majority of `voters` has, given each voter's match (`match_of`
/// gives 0 for a voter that has nothing). Self is included by the caller when it counts.
pub(crate) fn quorum_index(
    voters: &BTreeSet<NodeId>,
    match_of: impl Fn(NodeId) -> LogIndex,
) -> LogIndex {
    if voters.is_empty() {
        return 0;
    }
    // The k-th largest match, k = n / 2 (0-based), is the same whichever way it is found; a
    // stack buffer avoids an allocation per acknowledgement for any sane cluster size, and an
    // insertion sort of a handful of values costs less than a selection's bookkeeping.
    if voters.len() <= QUORUM_STACK_VOTERS_MAX {
        let mut buffer = [0; QUORUM_STACK_VOTERS_MAX];
        let values = &mut buffer[..voters.len()];
        for (filled, &v) in voters.iter().enumerate() {
            let value = match_of(v);
            // Keep `values[..=filled]` sorted, largest first.
            let mut at = filled;
            while at > 0 && values[at - 1] < value {
                values[at] = values[at - 1];
                at -= 1;
            }
            values[at] = value;
        }
        return values[values.len() / 2];
    }
    let mut values: Vec<LogIndex> = voters.iter().map(|&v| match_of(v)).collect();
    let k = values.len() / 2;
    *values.select_nth_unstable_by(k, |a, b| b.cmp(a)).1
}

/// Voters counted on the stack by [`quorum_index`] (more fall back to the heap).
const QUORUM_STACK_VOTERS_MAX: usize = 16;

/// Whether the voters for which `yes` holds form a majority of `voters`.
pub(crate) fn has_quorum(voters: &BTreeSet<NodeId>, yes: impl Fn(NodeId) -> bool) -> bool {
    let count = voters.iter().filter(|&&v| yes(v)).count();
    count >= majority(voters.len())
}

/// The number of votes that make a majority of `voters` voters.
pub(crate) fn majority(voters: usize) -> usize {
    voters / 2 + 1
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn quorum_index_is_the_majority_median() {
        let voters: BTreeSet<NodeId> = [1, 2, 3, 4, 5].into();
        let matches: BTreeMap<NodeId, LogIndex> = [(1, 9), (2, 7), (3, 5), (4, 3)].into();
        let of = |m: &BTreeMap<NodeId, LogIndex>, v: NodeId| m.get(&v).copied().unwrap_or(0);
        assert_eq!(quorum_index(&voters, |v| of(&matches, v)), 5);
        let three: BTreeSet<NodeId> = [1, 2, 3].into();
        let one: BTreeMap<NodeId, LogIndex> = [(1, 4)].into();
        assert_eq!(quorum_index(&three, |v| of(&one, v)), 0);
        let two: BTreeMap<NodeId, LogIndex> = [(1, 4), (3, 2)].into();
        assert_eq!(quorum_index(&three, |v| of(&two, v)), 2);
        let many: BTreeSet<NodeId> = (1..=40).collect();
        assert_eq!(quorum_index(&many, |v| v * 10), 200, "21 of 40 have at least 200");
    }

    #[test]
    fn has_quorum_counts_majority() {
        let voters: BTreeSet<NodeId> = [1, 2, 3, 4].into();
        assert!(!has_quorum(&voters, |v| v <= 2));
        assert!(has_quorum(&voters, |v| v <= 3));
    }

    #[test]
    fn probe_backs_off_with_hint_and_ignores_stale_rejections() {
        let mut p = Progress::new(11);
        assert!(!p.maybe_decrease_to(7, 3), "rejection of an older probe is stale");
        assert!(p.maybe_decrease_to(10, 4));
        assert_eq!(p.next_index, 5);
        p.match_index = 6;
        p.next_index = 9;
        assert!(p.maybe_decrease_to(8, 2));
        assert_eq!(p.next_index, 7, "never below match + 1");
    }

    #[test]
    fn replicate_pipelines_and_frees_inflight() {
        let mut p = Progress::new(1);
        p.become_replicate();
        let t = |ms: u64| MonoInstant::from_nanos(ms * 1_000_000);
        p.sent_entries(3, t(0));
        p.sent_entries(5, t(1));
        assert!(p.is_paused(2));
        assert!(p.is_stalled(t(200), std::time::Duration::from_millis(200)));
        assert!(p.maybe_update(3, t(10)));
        assert!(!p.is_stalled(t(200), std::time::Duration::from_millis(200)));
        assert!(!p.is_paused(2));
        assert_eq!(p.next_index, 6);
        assert!(!p.maybe_decrease_to(2, 0), "rejection below match is stale");
        assert!(p.maybe_decrease_to(5, 0));
        assert_eq!((p.state, p.next_index), (ProgressState::Probe, 4));
    }
}
