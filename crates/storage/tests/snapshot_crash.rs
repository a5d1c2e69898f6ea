//! Snapshots and compaction under crashes: a power loss at every step of `save_snapshot`
//! recovers either the state before the call or the state after it (the steps are listed in
//! `wal/snapshot.rs`), and the log goes on correctly from there.

mod common;

use common::*;
use palisade_raft::{Entry, HardState, LogIndex, Term};
use palisade_storage::{Disk, Recovered, SNAPSHOT_FILE, SNAPSHOT_TMP_FILE, SimDisk, Wal, WalError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// What a recovered state is, for comparison: snapshot index and term, entries, hard state.
type View = (LogIndex, Term, Vec<Entry>, HardState);

fn view(recovered: &Recovered) -> View {
    let (index, term) = recovered.snapshot.as_ref().map_or((0, 0), |s| (s.meta.index, s.meta.term));
    (index, term, recovered.entries.clone(), recovered.hard_state)
}

/// A WAL over several small segments: entries 1..=40 of term 1, 41..=50 of term 2, commit 45.
fn setup() -> SimDisk {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, SMALL);
    wal.append_entries(&entries(1, 40, 1)).unwrap();
    wal.append_entries(&entries(41, 50, 2)).unwrap();
    wal.set_hard_state(hard_state(2, 45)).unwrap();
    wal.sync().unwrap();
    disk
}

#[test]
fn a_matching_snapshot_compacts_old_segments_and_keeps_the_rest() {
    let disk = setup();
    let (mut wal, _) = open(&disk, SMALL);
    let segments_before = wal.segment_count();
    wal.save_snapshot(&snapshot(30, 1)).unwrap();
    assert!(wal.stats().segments_removed > 0);
    assert_eq!(wal.segment_count() as u64, segments_before as u64 - wal.stats().segments_removed);
    assert_eq!((wal.first_index(), wal.last_index()), (31, 50));
    assert_eq!(wal.term_at(30), Some(1));
    assert_eq!(wal.read_snapshot().unwrap(), Some(snapshot(30, 1)));
    drop(wal);
    disk.crash_lose_unsynced();
    let (_, recovered) = open(&disk, SMALL);
    let mut want = entries(31, 40, 1);
    want.extend(entries(41, 50, 2));
    assert_eq!(view(&recovered), (30, 1, want, hard_state(2, 45)));
}

#[test]
fn a_snapshot_that_does_not_match_discards_the_log() {
    let disk = setup();
    let (mut wal, _) = open(&disk, SMALL);
    wal.save_snapshot(&snapshot(48, 3)).unwrap();
    assert_eq!((wal.first_index(), wal.last_index()), (49, 48));
    assert!(matches!(wal.append_entries(&entries(50, 50, 3)), Err(WalError::BadAppend { .. })));
    wal.append_entries(&entries(49, 52, 3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    disk.crash_lose_unsynced();
    let (_, recovered) = open(&disk, SMALL);
    assert_eq!(view(&recovered), (48, 3, entries(49, 52, 3), hard_state(2, 45)));
}

#[test]
fn a_snapshot_past_the_log_end_discards_the_log() {
    let disk = setup();
    let (mut wal, _) = open(&disk, SMALL);
    wal.save_snapshot(&snapshot(70, 3)).unwrap();
    wal.append_entries(&entries(71, 72, 3)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, recovered) = open(&disk, SMALL);
    assert_eq!(view(&recovered), (70, 3, entries(71, 72, 3), hard_state(2, 45)));
}

#[test]
fn an_older_snapshot_is_refused() {
    let disk = setup();
    let (mut wal, _) = open(&disk, SMALL);
    wal.save_snapshot(&snapshot(30, 1)).unwrap();
    let err = wal.save_snapshot(&snapshot(20, 1)).unwrap_err();
    assert!(matches!(err, WalError::SnapshotRegression { index: 20, saved: 30 }));
    assert!(!wal.is_poisoned());
}

#[test]
fn a_corrupt_or_orphaned_snapshot_is_a_clear_error() {
    let disk = setup();
    let (mut wal, _) = open(&disk, SMALL);
    wal.save_snapshot(&snapshot(30, 1)).unwrap();
    drop(wal);
    disk.flip_bit(SNAPSHOT_FILE, 8 * 30).unwrap();
    let err = Wal::open_with(disk.clone(), SMALL).unwrap_err();
    assert!(matches!(&err, WalError::CorruptFile { name, .. } if name == SNAPSHOT_FILE), "{err}");

    let disk = setup();
    let (mut wal, _) = open(&disk, SMALL);
    wal.save_snapshot(&snapshot(30, 1)).unwrap();
    drop(wal);
    let mut removing = disk.clone();
    for name in segments(&disk) {
        removing.remove(&name).unwrap();
    }
    let err = Wal::open_with(disk.clone(), SMALL).unwrap_err();
    assert!(matches!(err, WalError::CorruptFile { .. }), "{err}");
}

/// The hard state survives even when the segment holding its record is compacted away.
#[test]
fn the_hard_state_survives_compaction_of_its_segment() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, SMALL);
    wal.append_entries(&entries(1, 2, 1)).unwrap();
    wal.set_hard_state(hard_state(1, 2)).unwrap();
    wal.sync().unwrap();
    wal.append_entries(&entries(3, 40, 1)).unwrap();
    wal.sync().unwrap();
    wal.save_snapshot(&snapshot(35, 1)).unwrap();
    assert!(wal.stats().segments_removed > 0);
    drop(wal);
    disk.crash_lose_unsynced();
    let (_, recovered) = open(&disk, SMALL);
    assert_eq!(view(&recovered), (35, 1, entries(36, 40, 1), hard_state(1, 2)));
}

/// How a crash after the failed step is applied.
#[derive(Clone, Copy, Debug)]
enum CrashKind {
    LoseUnsynced,
    Random(u64),
}

fn crash(disk: &SimDisk, kind: CrashKind) {
    match kind {
        CrashKind::LoseUnsynced => disk.crash_lose_unsynced(),
        CrashKind::Random(seed) => disk.crash(&mut ChaCha8Rng::seed_from_u64(seed)),
    }
}

/// Runs `save_snapshot(snap)` with disk operation number `step` failing, crashes, reopens,
/// and checks the state is the old or the new one. Returns whether the call got past `step`
/// (no operation failed).
fn crash_at_step(step: u64, snap_index: LogIndex, snap_term: Term, kind: CrashKind) -> bool {
    let disk = setup();
    let (mut wal, old) = open(&disk, SMALL);
    let new = {
        let probe = setup();
        let (mut probe_wal, _) = open(&probe, SMALL);
        probe_wal.save_snapshot(&snapshot(snap_index, snap_term)).unwrap();
        drop(probe_wal);
        probe.crash_lose_unsynced();
        open(&probe, SMALL).1
    };
    disk.fail_ops(step, u64::MAX);
    let result = wal.save_snapshot(&snapshot(snap_index, snap_term));
    disk.clear_faults();
    drop(wal);
    crash(&disk, kind);
    let context = format!("step {step}, snapshot ({snap_index}, {snap_term}), {kind:?}");
    let (mut wal, recovered) = Wal::open_with(disk.clone(), SMALL)
        .unwrap_or_else(|e| panic!("{context}: recovery failed: {e}"));
    let got = view(&recovered);
    assert!(got == view(&old) || got == view(&new), "{context}: neither old nor new: {got:?}");
    if result.is_ok() {
        assert_eq!(got, view(&new), "{context}: a completed save_snapshot was lost");
    }
    assert!(!disk.exists(SNAPSHOT_TMP_FILE).unwrap(), "{context}: recovery removes the temp");

    // The log goes on from whichever state it recovered.
    let next = wal.last_index() + 1;
    let term = wal.term_at(next - 1).unwrap().max(4);
    wal.append_entries(&entries(next, next + 1, term)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    crash(&disk, kind);
    let (_, again) = open(&disk, SMALL);
    let mut want = got.2.clone();
    want.extend(entries(next, next + 1, term));
    assert_eq!(again.entries, want, "{context}: appending after recovery");
    result.is_ok()
}

/// Crash at every disk operation of `save_snapshot`, for a snapshot that matches the log
/// (local compaction) and ones that do not (installed from a leader).
#[test]
fn a_crash_at_every_step_of_save_snapshot_recovers_the_old_or_the_new_state() {
    for (snap_index, snap_term) in [(30, 1), (45, 2), (48, 3), (70, 3)] {
        let mut kinds = vec![CrashKind::LoseUnsynced];
        kinds.extend((0..6).map(CrashKind::Random));
        for kind in kinds {
            let mut steps = 0;
            while !crash_at_step(steps, snap_index, snap_term, kind) {
                steps += 1;
                assert!(steps < 200, "save_snapshot never completed");
            }
            assert!(steps >= 6, "save_snapshot took only {steps} disk operations");
        }
    }
}
