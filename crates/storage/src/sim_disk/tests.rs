//! The simulated disk keeps exactly what the [`Disk`] contract promises, and no more.

use rand::SeedableRng;

use super::*;

fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[test]
fn synced_data_survives_and_unsynced_data_is_lost() {
    let mut disk = SimDisk::new();
    disk.append("a", b"durable").unwrap();
    disk.sync("a").unwrap();
    disk.sync_dir().unwrap();
    disk.append("a", b" lost").unwrap();
    assert_eq!(disk.read("a").unwrap(), b"durable lost");
    assert_eq!(disk.unsynced_bytes(), 5);
    disk.crash_lose_unsynced();
    assert_eq!(disk.read("a").unwrap(), b"durable");
    assert_eq!(disk.unsynced_bytes(), 0);
    assert_eq!(disk.stats().writes_lost, 1);
}

#[test]
fn a_created_file_vanishes_without_sync_dir_even_if_synced() {
    let mut disk = SimDisk::new();
    disk.append("new", b"data").unwrap();
    disk.sync("new").unwrap();
    disk.crash_lose_unsynced();
    assert!(!disk.exists("new").unwrap());
    assert!(disk.list().unwrap().is_empty());
}

#[test]
fn an_unsynced_rename_is_undone_and_contents_follow_the_file() {
    let mut disk = SimDisk::new();
    disk.append("old", b"v1").unwrap();
    disk.append("tmp", b"v2").unwrap();
    disk.sync("old").unwrap();
    disk.sync("tmp").unwrap();
    disk.sync_dir().unwrap();
    disk.rename("tmp", "old").unwrap();
    assert_eq!(disk.read("old").unwrap(), b"v2");
    assert_eq!(disk.list().unwrap(), vec!["old".to_owned()]);
    disk.crash_lose_unsynced();
    assert_eq!(disk.read("old").unwrap(), b"v1");
    assert_eq!(disk.read("tmp").unwrap(), b"v2");
}

#[test]
fn a_removed_file_comes_back_without_sync_dir() {
    let mut disk = SimDisk::new();
    disk.append("f", b"x").unwrap();
    disk.sync("f").unwrap();
    disk.sync_dir().unwrap();
    disk.remove("f").unwrap();
    assert!(matches!(disk.read("f"), Err(StorageError::NotFound { .. })));
    disk.crash_lose_unsynced();
    assert_eq!(disk.read("f").unwrap(), b"x");
}

#[test]
fn crash_keeping_tears_the_write_that_straddles_the_boundary() {
    let mut disk = SimDisk::new();
    disk.append("f", b"abc").unwrap();
    disk.sync("f").unwrap();
    disk.sync_dir().unwrap();
    disk.append("f", b"1234").unwrap();
    disk.append("f", b"5678").unwrap();
    disk.crash_keeping("f", 6);
    assert_eq!(disk.read("f").unwrap(), b"abc123456");
    let stats = disk.stats();
    assert_eq!(stats.writes_torn, 1);
    assert_eq!(stats.writes_lost, 0);
}

#[test]
fn random_crashes_keep_a_prefix_of_an_appended_file() {
    let mut tears = 0;
    for seed in 0..200 {
        let mut disk = SimDisk::new();
        disk.append("f", b"durable:").unwrap();
        disk.sync("f").unwrap();
        disk.sync_dir().unwrap();
        for chunk in [&b"one,"[..], b"two,", b"three,", b"four"] {
            disk.append("f", chunk).unwrap();
        }
        let full = disk.read("f").unwrap();
        disk.crash(&mut rng(seed));
        let kept = disk.read("f").unwrap();
        assert!(kept.len() >= 8, "seed {seed}: durable bytes lost");
        assert!(full.starts_with(&kept), "seed {seed}: {kept:?} is not a prefix");
        tears += disk.stats().writes_torn;
    }
    assert!(tears > 0, "200 random crashes never tore a write");
}

#[test]
fn random_crashes_replay_from_the_seed() {
    let run = |seed| {
        let mut disk = SimDisk::new();
        for i in 0..20u8 {
            disk.append(&format!("f{}", i % 3), &[i; 7]).unwrap();
            if i % 5 == 0 {
                disk.sync("f0").unwrap();
            }
        }
        disk.crash(&mut rng(seed));
        let names = disk.list().unwrap();
        names.iter().map(|n| (n.clone(), disk.read(n).unwrap())).collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
}

#[test]
fn a_bit_flip_hits_durable_data_and_reads_see_it() {
    let mut disk = SimDisk::new();
    disk.append("f", &[0u8; 4]).unwrap();
    disk.sync("f").unwrap();
    disk.sync_dir().unwrap();
    disk.flip_bit("f", 8 * 2 + 3).unwrap();
    assert_eq!(disk.read("f").unwrap(), [0, 0, 8, 0]);
    assert!(matches!(disk.flip_bit("f", 32), Err(StorageError::OutOfRange { .. })));
    assert!(matches!(disk.flip_bit("g", 0), Err(StorageError::NotFound { .. })));
    disk.crash_lose_unsynced();
    assert_eq!(disk.read("f").unwrap(), [0, 0, 8, 0]);
}

#[test]
fn random_bit_flips_need_durable_bytes() {
    let mut disk = SimDisk::new();
    assert_eq!(disk.flip_random_bit(&mut rng(1)), None);
    disk.append("f", &[0u8; 16]).unwrap();
    assert_eq!(disk.flip_random_bit(&mut rng(1)), None, "unsynced names hold no durable bits");
    disk.sync("f").unwrap();
    disk.sync_dir().unwrap();
    let (name, bit) = disk.flip_random_bit(&mut rng(1)).unwrap();
    assert_eq!(name, "f");
    let bytes = disk.read("f").unwrap();
    assert_eq!(bytes[(bit / 8) as usize], 1 << (bit % 8));
    assert_eq!(bytes.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
}

#[test]
fn injected_faults_fail_after_the_pass_count_and_change_nothing() {
    let mut disk = SimDisk::new();
    disk.fail_ops(2, 1);
    disk.append("f", b"a").unwrap();
    disk.append("f", b"b").unwrap();
    let err = disk.append("f", b"c").unwrap_err();
    assert!(matches!(err, StorageError::Io { op: "append", .. }));
    disk.append("f", b"d").unwrap();
    assert_eq!(disk.read("f").unwrap(), b"abd");
    assert_eq!(disk.stats().faults_injected, 1);
    disk.fail_ops(0, 5);
    assert!(disk.sync("f").is_err());
    disk.clear_faults();
    disk.sync("f").unwrap();
}

#[test]
fn writes_and_truncates_are_checked_against_the_file_length() {
    let mut disk = SimDisk::new();
    disk.append("f", b"hello").unwrap();
    disk.write_at("f", 5, b"!").unwrap();
    disk.write_at("f", 0, b"J").unwrap();
    assert_eq!(disk.read("f").unwrap(), b"Jello!");
    assert!(disk.write_at("f", 7, b"x").is_err());
    assert!(disk.truncate("f", 7).is_err());
    disk.truncate("f", 4).unwrap();
    assert_eq!(disk.read_at("f", 1, 3).unwrap(), b"ell");
    assert!(disk.read_at("f", 2, 3).is_err());
    disk.sync("f").unwrap();
    disk.sync_dir().unwrap();
    disk.crash_lose_unsynced();
    assert_eq!(disk.read("f").unwrap(), b"Jell");
    assert!(matches!(disk.append("../x", b""), Err(StorageError::BadName { .. })));
}
