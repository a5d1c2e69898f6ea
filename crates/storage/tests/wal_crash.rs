//! Crash recovery of the WAL on the simulated disk: what survives a power loss, what a torn
//! tail and a flipped bit do. Each test names the promise of `wal/mod.rs` it checks.

mod common;

use common::*;
use palisade_raft::HardState;
use palisade_storage::{Disk, SimDisk, Wal, WalError, WalOptions, segment_name};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Promise: everything before a successful sync is recovered; unsynced writes may vanish.
#[test]
fn lost_unsynced_entries_disappear_and_synced_ones_recover() {
    let disk = SimDisk::new();
    let (mut wal, recovered) = open(&disk, WalOptions::default());
    assert_eq!(recovered, Default::default());
    wal.append_entries(&entries(1, 5, 1)).unwrap();
    wal.set_hard_state(hard_state(1, 3)).unwrap();
    wal.sync().unwrap();
    wal.append_entries(&entries(6, 8, 1)).unwrap();
    wal.set_hard_state(hard_state(2, 5)).unwrap();
    assert!(wal.needs_sync());
    drop(wal);
    disk.crash_lose_unsynced();
    let (wal, recovered) = open(&disk, WalOptions::default());
    assert_eq!(recovered.entries, entries(1, 5, 1));
    assert_eq!(recovered.hard_state, hard_state(1, 3));
    assert_eq!(recovered.torn_tail_bytes, 0);
    assert_eq!(wal.last_index(), 5);
    assert_eq!(wal.term_at(5), Some(1));
}

/// Promise: a process crash (no power loss) loses nothing written, synced or not.
#[test]
fn a_process_crash_keeps_unsynced_writes() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, WalOptions::default());
    wal.append_entries(&entries(1, 3, 1)).unwrap();
    drop(wal);
    let (_, recovered) = open(&disk, WalOptions::default());
    assert_eq!(recovered.entries, entries(1, 3, 1));
}

/// Promise: a torn tail is cut off, and records appended afterwards follow valid ones. Tries
/// every cut point of an unsynced batch of three records.
#[test]
fn a_torn_last_write_is_truncated_and_appending_continues() {
    let batch_bytes = {
        let disk = SimDisk::new();
        let (mut wal, _) = open(&disk, WalOptions::default());
        wal.append_entries(&entries(1, 3, 1)).unwrap();
        disk.len(&first_segment()).unwrap()
    };
    let mut torn_seen = 0;
    for cut in 0..batch_bytes {
        let disk = SimDisk::new();
        let (mut wal, _) = open(&disk, WalOptions::default());
        wal.append_entries(&entries(1, 2, 1)).unwrap();
        wal.sync().unwrap();
        let synced = disk.len(&first_segment()).unwrap();
        wal.append_entries(&entries(3, 5, 2)).unwrap();
        drop(wal);
        disk.crash_keeping(&first_segment(), cut);
        let (mut wal, recovered) = open(&disk, WalOptions::default());
        let kept = recovered.entries.len();
        assert!(kept >= 2, "cut {cut}: synced entries lost");
        let mut want = entries(1, 2, 1);
        want.extend(entries(3, kept as u64, 2));
        assert_eq!(recovered.entries, want, "cut {cut}");
        let valid = disk.len(&first_segment()).unwrap();
        assert_eq!(valid + recovered.torn_tail_bytes, synced + cut, "cut {cut}");
        torn_seen += u64::from(recovered.torn_tail_bytes > 0);

        // The log goes on after the cut: a new leader's entries replace from index 3.
        wal.append_entries(&entries(3, 4, 3)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        disk.crash_lose_unsynced();
        let (_, recovered) = open(&disk, WalOptions::default());
        let mut want = entries(1, 2, 1);
        want.extend(entries(3, 4, 3));
        assert_eq!(recovered.entries, want, "cut {cut}, after appending");
        assert_eq!(recovered.torn_tail_bytes, 0);
    }
    assert!(torn_seen > batch_bytes / 2, "most cuts fall inside a record");
}

/// Offsets at which each of `count` single-entry records starts in the first segment.
fn record_offsets(disk: &SimDisk, wal: &mut Wal<SimDisk>, count: u64) -> Vec<u64> {
    let mut offsets = Vec::new();
    for index in 1..=count {
        offsets.push(disk.len(&first_segment()).unwrap());
        wal.append_entries(&[entry(index, 1)]).unwrap();
    }
    wal.sync().unwrap();
    offsets
}

/// Promise: corruption of synced data is an error naming the segment and offset, never a
/// silent loss.
#[test]
fn a_bit_flip_in_the_middle_is_corruption_with_segment_and_offset() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, WalOptions::default());
    let offsets = record_offsets(&disk, &mut wal, 10);
    drop(wal);
    // A bit in the body of record 5.
    disk.flip_bit(&first_segment(), (offsets[4] + 14) * 8 + 3).unwrap();
    let (segment, offset, reason) = open_corrupt(&disk, WalOptions::default());
    assert_eq!(segment, first_segment());
    assert_eq!(offset, offsets[4]);
    assert!(reason.contains("body checksum"), "{reason}");
    // Refusing to start changed nothing on disk.
    let (segment_again, offset_again, _) = open_corrupt(&disk, WalOptions::default());
    assert_eq!((segment_again, offset_again), (first_segment(), offsets[4]));
}

/// Promise: a flipped bit in the last record's header is corruption, not a torn tail, even
/// though the last record is where torn writes happen.
#[test]
fn a_bit_flip_in_the_last_record_header_is_corruption_not_a_torn_tail() {
    for bit in 0..12 * 8 {
        let disk = SimDisk::new();
        let (mut wal, _) = open(&disk, WalOptions::default());
        let offsets = record_offsets(&disk, &mut wal, 4);
        drop(wal);
        disk.flip_bit(&first_segment(), offsets[3] * 8 + bit).unwrap();
        let (segment, offset, _) = open_corrupt(&disk, WalOptions::default());
        assert_eq!((segment.as_str(), offset), (first_segment().as_str(), offsets[3]), "bit {bit}");
    }
}

/// Promise: only the last segment can be torn; a short or damaged older segment is corruption.
#[test]
fn damage_to_an_older_segment_is_corruption() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, SMALL);
    for index in 1..=30 {
        wal.append_entries(&[entry(index, 1)]).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    let names = segments(&disk);
    assert!(names.len() >= 3, "{names:?}");
    let older = names[1].clone();
    let len = disk.len(&older).unwrap();
    let mut cut = disk.clone();
    cut.truncate(&older, len - 3).unwrap();
    cut.sync(&older).unwrap();
    let (segment, _, reason) = open_corrupt(&disk, SMALL);
    assert_eq!(segment, older);
    assert!(reason.contains("not the last"), "{reason}");
}

/// Promise: a missing segment between others is corruption (its entries were synced).
#[test]
fn a_missing_segment_is_corruption() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, SMALL);
    for index in 1..=30 {
        wal.append_entries(&[entry(index, 1)]).unwrap();
    }
    wal.sync().unwrap();
    drop(wal);
    let names = segments(&disk);
    let mut removing = disk.clone();
    removing.remove(&names[1]).unwrap();
    let (segment, _, reason) = open_corrupt(&disk, SMALL);
    assert_eq!(segment, names[2]);
    assert!(reason.contains("missing"), "{reason}");
}

/// Raft §5.3: a conflicting append replaces the log from its index, also after recovery and
/// across segments.
#[test]
fn conflict_truncation_is_replayed() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, SMALL);
    wal.append_entries(&entries(1, 20, 1)).unwrap();
    wal.sync().unwrap();
    wal.append_entries(&entries(5, 8, 2)).unwrap();
    wal.sync().unwrap();
    assert_eq!(wal.last_index(), 8);
    assert_eq!(wal.term_at(9), None);
    drop(wal);
    disk.crash_lose_unsynced();
    let (mut wal, recovered) = open(&disk, SMALL);
    let mut want = entries(1, 4, 1);
    want.extend(entries(5, 8, 2));
    assert_eq!(recovered.entries, want);
    wal.append_entries(&entries(9, 9, 3)).unwrap();
    wal.append_entries(&entries(7, 7, 4)).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let (_, recovered) = open(&disk, SMALL);
    want.truncate(6);
    want.push(entry(7, 4));
    assert_eq!(recovered.entries, want);
}

/// Group commit: many appends and a hard state, one fsync.
#[test]
fn group_commit_issues_one_fsync_for_many_appends() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, WalOptions::default());
    let before = disk.stats().syncs;
    for index in 1..=100 {
        wal.append_entries(&[entry(index, 1)]).unwrap();
    }
    wal.set_hard_state(hard_state(1, 100)).unwrap();
    wal.sync().unwrap();
    assert_eq!(disk.stats().syncs - before, 1);
    wal.sync().unwrap();
    assert_eq!(disk.stats().syncs - before, 1, "nothing to sync, no fsync");
    assert_eq!(wal.stats().records_written, 101);
}

/// Appends that do not extend the log are refused and write nothing.
#[test]
fn bad_appends_are_refused_without_writing() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, WalOptions::default());
    wal.append_entries(&entries(1, 3, 2)).unwrap();
    let written = disk.stats().bytes_written;
    for bad in
        [entries(5, 6, 2), vec![entry(4, 2), entry(6, 2)], entries(4, 4, 1), entries(0, 1, 2)]
    {
        let err = wal.append_entries(&bad).unwrap_err();
        assert!(matches!(err, WalError::BadAppend { .. }), "{bad:?}: {err}");
    }
    assert_eq!(disk.stats().bytes_written, written);
    assert!(!wal.is_poisoned());
    wal.append_entries(&entries(4, 4, 2)).unwrap();
}

/// A hard state may only commit what the log holds; the error writes nothing.
#[test]
fn a_commit_beyond_the_log_is_refused_at_sync() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, WalOptions::default());
    wal.append_entries(&entries(1, 3, 1)).unwrap();
    wal.set_hard_state(hard_state(1, 4)).unwrap();
    let err = wal.sync().unwrap_err();
    assert!(matches!(err, WalError::CommitBeyondLog { commit: 4, last: 3 }), "{err}");
    assert!(!wal.is_poisoned());
    // Committing up to a snapshot before saving it is the order a follower uses.
    wal.set_hard_state(hard_state(1, 9)).unwrap();
    wal.save_snapshot(&snapshot(9, 2)).unwrap();
    drop(wal);
    disk.crash_lose_unsynced();
    let (_, recovered) = open(&disk, WalOptions::default());
    assert_eq!(recovered.hard_state, hard_state(1, 9));
    assert_eq!(recovered.snapshot, Some(snapshot(9, 2)));
}

/// After a failed write the WAL refuses work until reopened; reopening recovers the durable
/// state.
#[test]
fn a_disk_error_poisons_the_wal_until_reopened() {
    let disk = SimDisk::new();
    let (mut wal, _) = open(&disk, WalOptions::default());
    wal.append_entries(&entries(1, 2, 1)).unwrap();
    wal.sync().unwrap();
    disk.fail_ops(0, 1);
    assert!(matches!(wal.append_entries(&entries(3, 3, 1)), Err(WalError::Disk(_))));
    assert!(wal.is_poisoned());
    assert!(matches!(wal.sync(), Err(WalError::Poisoned)));
    assert!(matches!(wal.set_hard_state(HardState::default()), Err(WalError::Poisoned)));
    drop(wal);
    disk.crash_lose_unsynced();
    let (_, recovered) = open(&disk, WalOptions::default());
    assert_eq!(recovered.entries, entries(1, 2, 1));
}

/// Promise: a flipped bit anywhere in synced data is either reported or harmless, never a
/// silently different state.
#[test]
fn random_bit_flips_are_reported_or_harmless() {
    let mut reported = 0;
    for seed in 0..64 {
        let disk = SimDisk::new();
        let (mut wal, _) = open(&disk, SMALL);
        wal.append_entries(&entries(1, 40, 1)).unwrap();
        wal.set_hard_state(hard_state(1, 20)).unwrap();
        wal.save_snapshot(&snapshot(10, 1)).unwrap();
        wal.append_entries(&entries(41, 45, 2)).unwrap();
        wal.sync().unwrap();
        drop(wal);
        let (_, before) = open(&disk, SMALL);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (name, bit) = disk.flip_random_bit(&mut rng).unwrap();
        match Wal::open_with(disk.clone(), SMALL) {
            Err(WalError::Corrupt { .. } | WalError::CorruptFile { .. }) => reported += 1,
            Err(other) => panic!("seed {seed}: {name} bit {bit}: unexpected {other}"),
            Ok((_, after)) => assert_eq!(after, before, "seed {seed}: {name} bit {bit}"),
        }
    }
    assert_eq!(reported, 64, "every file the WAL reads is checksummed");
}

/// Random power losses during a stream of appends and syncs: what was synced survives.
#[test]
fn random_crashes_never_lose_synced_entries() {
    for seed in 0..100 {
        let disk = SimDisk::new();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut wal, _) = open(&disk, SMALL);
        let mut synced = 0;
        for index in 1..=25 {
            wal.append_entries(&[entry(index, 1)]).unwrap();
            if index % 4 == 0 {
                wal.set_hard_state(hard_state(1, index)).unwrap();
                wal.sync().unwrap();
                synced = index;
            }
        }
        drop(wal);
        disk.crash(&mut rng);
        let (_, recovered) = open(&disk, SMALL);
        assert!(recovered.entries.len() as u64 >= synced, "seed {seed}");
        assert_eq!(recovered.entries, entries(1, recovered.entries.len() as u64, 1));
        assert_eq!(recovered.hard_state, hard_state(1, synced), "seed {seed}");
        assert_eq!(segment_name(0), segments(&disk)[0]);
    }
}
