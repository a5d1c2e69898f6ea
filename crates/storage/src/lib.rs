//! palisade-storage: what a node keeps across crashes, and a disk that crashes on purpose.
//!
//! The system model says nodes crash and come back "with only what they fsynced". This crate
//! is where that sentence is made precise and kept:
//!
//! - [`Disk`] states exactly what a crash may keep (synced bytes, plus a possibly torn prefix
//!   of later writes; directory changes as of the last directory sync);
//! - [`FileDisk`] implements it with real files, `fsync` and directory `fsync`;
//! - [`SimDisk`] implements it in memory and, from a seeded RNG, produces every outcome the
//!   contract allows: lost unsynced writes, torn writes, undone renames, flipped bits,
//!   failing operations;
//! - [`Wal`] is Raft's write-ahead log over any [`Disk`]: CRC32C on every record, group
//!   commit, segments, atomic snapshots with compaction, and a recovery that cuts a torn tail
//!   but refuses to start on corruption rather than silently dropping synced data;
//! - [`DirMeta`] ties a data directory to one cluster and node.
//!
//! Like the other protocol-core crates it reads no clock and draws no unseeded randomness; it
//! touches files only through [`Disk`], and [`FileDisk`] is the one real implementation.

mod blob;
mod disk;
mod file_disk;
pub mod limits;
mod meta;
mod sim_disk;
mod wal;

pub use disk::{Disk, StorageError, validate_name};
pub use file_disk::FileDisk;
pub use limits::{
    FILE_NAME_BYTES_MAX, META_BYTES_MAX, RECORD_BODY_BYTES_MAX, RECORD_BYTES_MAX,
    RECORD_HEADER_BYTES, SEGMENT_BYTES_MAX, SNAPSHOT_BYTES_MAX,
};
pub use meta::{
    DIR_FORMAT_VERSION, DirMeta, META_FILE, META_TMP_FILE, init_or_check_meta, read_meta,
    write_meta,
};
pub use sim_disk::{CRASH_TEAR_PROBABILITY, SimDisk, SimDiskStats};
pub use wal::{
    Recovered, SNAPSHOT_FILE, SNAPSHOT_TMP_FILE, Wal, WalError, WalOptions, WalStats,
    parse_segment_name, segment_name,
};
