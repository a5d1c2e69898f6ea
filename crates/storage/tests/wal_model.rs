//! A model-based property test: random appends (with conflicts), hard states, syncs,
//! snapshots, injected disk faults and power losses, against a model of the log.
//!
//! The model keeps the states the WAL may come back in after a crash: the state as of the last
//! successful sync, followed by the state after each record written since (a crash keeps a
//! prefix of the unsynced writes). After every crash the recovered state must be one of them.
//! That is the WAL's promise: every synced entry is present unless a later conflicting append
//! replaced it, no entry is invented, the log is contiguous after the snapshot, and the hard
//! state is one that was written.

mod common;

use common::*;
use palisade_raft::{Entry, HardState, LogIndex, Term};
use palisade_storage::{Recovered, SimDisk, Wal, WalError, WalOptions};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A state of the log as a crash could leave it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    snapshot: (LogIndex, Term),
    entries: Vec<Entry>,
    hard_state: HardState,
}

impl State {
    fn from_recovered(recovered: &Recovered) -> State {
        let snapshot = recovered.snapshot.as_ref().map_or((0, 0), |s| (s.meta.index, s.meta.term));
        State { snapshot, entries: recovered.entries.clone(), hard_state: recovered.hard_state }
    }

    /// Snapshot, (index, term) of each entry, hard state: what a failure message needs.
    fn brief(&self) -> String {
        let entries: Vec<_> = self.entries.iter().map(|e| (e.index, e.term)).collect();
        format!("snapshot {:?} entries {entries:?} {:?}", self.snapshot, self.hard_state)
    }

    fn last_index(&self) -> LogIndex {
        self.entries.last().map_or(self.snapshot.0, |e| e.index)
    }

    fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.snapshot.0 {
            return Some(self.snapshot.1);
        }
        self.entries.iter().find(|e| e.index == index).map(|e| e.term)
    }

    fn term_max(&self) -> Term {
        let entries = self.entries.iter().map(|e| e.term);
        entries.chain([self.snapshot.1, self.hard_state.term]).max().unwrap_or(0)
    }

    fn append(&mut self, entry: Entry) {
        self.entries.retain(|e| e.index < entry.index);
        self.entries.push(entry);
    }

    fn install_snapshot(&mut self, index: LogIndex, term: Term) {
        if self.term_at(index) == Some(term) {
            self.entries.retain(|e| e.index > index);
        } else {
            self.entries.clear();
        }
        self.snapshot = (index, term);
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Append `count` entries starting `back` entries before the end (a conflict if > 0).
    Append {
        back: u8,
        count: u8,
        new_term: bool,
    },
    /// Set a hard state with a commit index `frac`/255 of the way to the last index.
    HardState {
        frac: u8,
    },
    Sync,
    /// Snapshot at `frac`/255 of the way from the snapshot to the commit index.
    Compact {
        frac: u8,
    },
    /// Install a leader's snapshot past the commit index, of a new term.
    Install {
        ahead: u8,
    },
    /// Fail one disk operation after `pass` good ones.
    Fault {
        pass: u8,
    },
    /// Power loss.
    Crash {
        seed: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4u8, 1..5u8, any::<bool>())
            .prop_map(|(back, count, new_term)| Op::Append { back, count, new_term }),
        2 => any::<u8>().prop_map(|frac| Op::HardState { frac }),
        3 => Just(Op::Sync),
        1 => any::<u8>().prop_map(|frac| Op::Compact { frac }),
        1 => (0..3u8).prop_map(|ahead| Op::Install { ahead }),
        1 => (0..8u8).prop_map(|pass| Op::Fault { pass }),
        2 => any::<u64>().prop_map(|seed| Op::Crash { seed }),
    ]
}

/// Whether the call succeeded; only injected disk faults (and the poisoning they cause) may
/// make it fail.
fn succeeded(result: Result<(), WalError>) -> bool {
    match result {
        Ok(()) => true,
        Err(WalError::Disk(_) | WalError::Poisoned) => false,
        Err(other) => panic!("the model only makes valid calls: {other}"),
    }
}

/// The system under test and its model.
struct Harness {
    disk: SimDisk,
    wal: Wal<SimDisk>,
    current: State,
    /// The hard state of the last hard-state record written (`current` has the latest set).
    hard_state_written: HardState,
    /// States a crash may recover: the last synced one first.
    candidates: Vec<State>,
}

impl Harness {
    fn new() -> Harness {
        let disk = SimDisk::new();
        let (wal, recovered) = open(&disk, SMALL);
        let current = State::from_recovered(&recovered);
        let hard_state_written = current.hard_state;
        Harness { disk, wal, candidates: vec![current.clone()], current, hard_state_written }
    }

    /// Applies one operation; a failed one is followed by a crash, as in a real node.
    fn step(&mut self, op: &Op) {
        let ok = match *op {
            Op::Append { back, count, new_term } => self.append(back, count, new_term),
            Op::HardState { frac } => {
                let commit = self.current.hard_state.commit;
                let commit = commit + (self.current.last_index() - commit) * frac as u64 / 255;
                let hard_state = HardState { term: self.current.term_max(), vote: None, commit };
                self.current.hard_state = hard_state;
                succeeded(self.wal.set_hard_state(hard_state))
            }
            Op::Sync => self.sync(),
            Op::Compact { frac } => {
                let from = self.current.snapshot.0;
                let to = self.current.hard_state.commit.max(from);
                let index = from + (to - from) * frac as u64 / 255;
                let term = self.current.term_at(index).expect("committed entries are in the log");
                self.save_snapshot(index, term)
            }
            Op::Install { ahead } => {
                // As a follower does: commit up to the snapshot, then save it (the new hard
                // state reaches the disk only after the snapshot).
                let base = self.current.snapshot.0.max(self.current.hard_state.commit);
                let (index, term) = (base + 1 + ahead as u64, self.current.term_max() + 1);
                self.current.hard_state = HardState { term, vote: None, commit: index };
                succeeded(self.wal.set_hard_state(self.current.hard_state))
                    && self.save_snapshot(index, term)
            }
            Op::Fault { pass } => {
                self.disk.fail_ops(pass as u64, 1);
                true
            }
            Op::Crash { seed } => {
                self.crash(seed);
                true
            }
        };
        if !ok {
            self.crash(0x5eed);
        }
        assert_eq!(self.wal.last_index(), self.current.last_index());
    }

    fn append(&mut self, back: u8, count: u8, new_term: bool) -> bool {
        let floor = self.current.snapshot.0.max(self.current.hard_state.commit);
        let last = self.current.last_index();
        let first = last.saturating_sub(back as u64).max(floor) + 1;
        let term = self.current.term_max() + u64::from(new_term);
        let batch: Vec<Entry> = (first..first + count as u64).map(|i| entry(i, term)).collect();
        let ok = succeeded(self.wal.append_entries(&batch));
        for e in batch {
            self.current.append(e);
            self.push_candidate();
        }
        ok
    }

    /// The current log with the hard state last written: what a crash may keep.
    fn push_candidate(&mut self) {
        let state = State { hard_state: self.hard_state_written, ..self.current.clone() };
        self.candidates.push(state);
    }

    fn sync(&mut self) -> bool {
        self.hard_state_written = self.current.hard_state;
        self.push_candidate();
        let ok = succeeded(self.wal.sync());
        if ok {
            self.candidates = vec![self.current.clone()];
        }
        ok
    }

    fn save_snapshot(&mut self, index: LogIndex, term: Term) -> bool {
        self.push_candidate();
        self.current.install_snapshot(index, term);
        self.push_candidate();
        self.hard_state_written = self.current.hard_state;
        self.push_candidate();
        let ok = succeeded(self.wal.save_snapshot(&snapshot(index, term)));
        if ok {
            self.candidates = vec![self.current.clone()];
        }
        ok
    }

    fn crash(&mut self, seed: u64) {
        self.disk.crash(&mut ChaCha8Rng::seed_from_u64(seed));
        self.disk.clear_faults();
        let (wal, recovered) = Wal::open_with(self.disk.clone(), SMALL)
            .unwrap_or_else(|e| panic!("recovery refused after a crash: {e}"));
        let state = State::from_recovered(&recovered);
        assert!(
            self.candidates.contains(&state),
            "recovered {}\nnot among\n{}",
            state.brief(),
            self.candidates.iter().map(State::brief).collect::<Vec<_>>().join("\n")
        );
        for (offset, e) in state.entries.iter().enumerate() {
            assert_eq!(e.index, state.snapshot.0 + 1 + offset as u64, "contiguous after snapshot");
        }
        self.wal = wal;
        self.hard_state_written = state.hard_state;
        self.current = state.clone();
        self.candidates = vec![state];
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn recovery_returns_a_state_the_log_went_through(ops in prop::collection::vec(op(), 1..80)) {
        let mut harness = Harness::new();
        for op in &ops {
            harness.step(op);
        }
        harness.crash(7);
        // With no fault pending and nothing unsynced, recovery is exact.
        harness.wal.sync().unwrap();
        let expected = harness.current.clone();
        drop(harness.wal);
        harness.disk.crash_lose_unsynced();
        let (_, recovered) = Wal::open_with(harness.disk.clone(), SMALL).unwrap();
        prop_assert_eq!(State::from_recovered(&recovered), expected);
    }
}

/// The default options are used by the server; make sure they also pass a short run.
#[test]
fn default_options_survive_a_short_run() {
    let disk = SimDisk::new();
    let (mut wal, _) = Wal::open_with(disk.clone(), WalOptions::default()).unwrap();
    wal.append_entries(&entries(1, 10, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    disk.crash(&mut ChaCha8Rng::seed_from_u64(1));
    let (_, recovered) = Wal::open(disk).unwrap();
    assert_eq!(recovered.entries, entries(1, 10, 1));
}
