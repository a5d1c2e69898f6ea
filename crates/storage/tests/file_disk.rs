//! The real-file disk: the `Disk` contract's observable behaviour, and the WAL on real files
//! (open, append, sync, reopen; a torn tail; corruption), in a unique temporary directory.

mod common;

use std::path::PathBuf;

use common::*;
use palisade_storage::{
    DirMeta, Disk, FileDisk, StorageError, Wal, WalError, init_or_check_meta, segment_name,
};

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir()
            .join(format!("palisade-storage-{}-{test}", std::process::id()))
            .join("data");
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let parent = self.0.parent().expect("the data dir has a parent");
        let _ = std::fs::remove_dir_all(parent);
    }
}

#[test]
fn file_disk_follows_the_disk_contract() {
    let tmp = TempDir::new("contract");
    let mut disk = FileDisk::open(&tmp.0).unwrap();
    assert!(disk.list().unwrap().is_empty());
    disk.append("b", b"hello").unwrap();
    disk.append("b", b" world").unwrap();
    disk.append("a", b"").unwrap();
    disk.sync("b").unwrap();
    disk.sync_dir().unwrap();
    assert_eq!(disk.list().unwrap(), ["a", "b"]);
    assert_eq!(disk.len("b").unwrap(), 11);
    assert_eq!(disk.read_at("b", 6, 5).unwrap(), b"world");
    assert!(matches!(disk.read_at("b", 7, 5), Err(StorageError::OutOfRange { .. })));
    disk.write_at("b", 0, b"J").unwrap();
    disk.write_at("b", 11, b"!").unwrap();
    assert!(matches!(disk.write_at("b", 13, b"x"), Err(StorageError::OutOfRange { .. })));
    disk.truncate("b", 5).unwrap();
    assert!(disk.truncate("b", 6).is_err());
    assert_eq!(disk.read("b").unwrap(), b"Jello");
    disk.rename("b", "a").unwrap();
    assert_eq!(disk.read("a").unwrap(), b"Jello");
    assert!(!disk.exists("b").unwrap());
    assert!(matches!(disk.read("b"), Err(StorageError::NotFound { .. })));
    disk.append("a", b"!").unwrap();
    assert_eq!(disk.read("a").unwrap(), b"Jello!");
    disk.remove("a").unwrap();
    disk.sync_dir().unwrap();
    assert!(disk.list().unwrap().is_empty());
    for bad in ["../escape", "sub/file", ".hidden", ""] {
        assert!(matches!(disk.append(bad, b"x"), Err(StorageError::BadName { .. })), "{bad}");
    }
    std::fs::write(tmp.0.join(".ignored"), b"x").unwrap();
    std::fs::create_dir(tmp.0.join("subdir")).unwrap();
    assert!(disk.list().unwrap().is_empty(), "invalid names and directories are not listed");
}

#[test]
fn the_wal_on_real_files_survives_reopening() {
    let tmp = TempDir::new("reopen");
    {
        let mut disk = FileDisk::open(&tmp.0).unwrap();
        init_or_check_meta(&mut disk, &DirMeta::new(9, 1)).unwrap();
        let (mut wal, recovered) = Wal::open_with(disk, SMALL).unwrap();
        assert_eq!(recovered, Default::default());
        wal.append_entries(&entries(1, 30, 1)).unwrap();
        wal.set_hard_state(hard_state(1, 25)).unwrap();
        wal.sync().unwrap();
        wal.save_snapshot(&snapshot(20, 1)).unwrap();
        assert!(wal.stats().segments_removed > 0);
        wal.append_entries(&entries(28, 32, 2)).unwrap();
        wal.sync().unwrap();
    }
    let mut disk = FileDisk::open(&tmp.0).unwrap();
    let err = init_or_check_meta(&mut disk, &DirMeta::new(9, 2)).unwrap_err();
    assert!(matches!(err, WalError::MetaMismatch { .. }));
    init_or_check_meta(&mut disk, &DirMeta::new(9, 1)).unwrap();
    let (_, recovered) = Wal::open_with(disk, SMALL).unwrap();
    assert_eq!(recovered.snapshot, Some(snapshot(20, 1)));
    let mut want = entries(21, 27, 1);
    want.extend(entries(28, 32, 2));
    assert_eq!(recovered.entries, want);
    assert_eq!(recovered.hard_state, hard_state(1, 25));
}

#[test]
fn a_torn_tail_on_real_files_is_cut_and_corruption_is_refused() {
    let tmp = TempDir::new("torn");
    let segment = segment_name(0);
    {
        let disk = FileDisk::open(&tmp.0).unwrap();
        let (mut wal, _) = Wal::open(disk).unwrap();
        wal.append_entries(&entries(1, 3, 1)).unwrap();
        wal.sync().unwrap();
    }
    let mut disk = FileDisk::open(&tmp.0).unwrap();
    let valid = disk.len(&segment).unwrap();
    // Half a record header, as a power loss in the middle of a write would leave.
    disk.append(&segment, &[0x21, 0, 0, 0, 0x7f, 0x3a]).unwrap();
    disk.sync(&segment).unwrap();
    let (mut wal, recovered) = Wal::open(disk).unwrap();
    assert_eq!(recovered.entries, entries(1, 3, 1));
    assert_eq!(recovered.torn_tail_bytes, 6);
    assert_eq!(wal.disk().len(&segment).unwrap(), valid);
    wal.append_entries(&entries(4, 4, 1)).unwrap();
    wal.sync().unwrap();
    drop(wal);

    let mut disk = FileDisk::open(&tmp.0).unwrap();
    let byte = disk.read_at(&segment, 20, 1).unwrap()[0];
    disk.write_at(&segment, 20, &[byte ^ 0x10]).unwrap();
    disk.sync(&segment).unwrap();
    match Wal::open(disk) {
        Err(WalError::Corrupt { segment: name, offset: 0, .. }) => assert_eq!(name, segment),
        other => panic!("expected corruption of the first record, got {other:?}"),
    }
}
