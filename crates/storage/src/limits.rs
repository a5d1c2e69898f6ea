//! Every size this crate accepts from a file it reads back, in one place.
//!
//! A file on disk is input like any other: a flipped bit in a length field, a file written by
//! another program, or a bug in an older version can claim any size. Each number read from a
//! file is compared with one of these limits before it is trusted, and the relations between
//! them are checked at compile time.

/// Longest file name, in bytes, that a [`crate::Disk`] accepts.
pub const FILE_NAME_BYTES_MAX: usize = 64;

/// Bytes of a WAL record header: length, header CRC32C and body CRC32C, each a `u32` LE.
pub const RECORD_HEADER_BYTES: usize = 12;

/// Largest WAL record, header included: 5 MiB. Any entry that fits in a wire frame
/// (`palisade_wire::FRAME_BYTES_MAX`, 4 MiB) fits in a record with room to spare.
pub const RECORD_BYTES_MAX: usize = 5 * 1024 * 1024;

/// Largest WAL record body (the postcard-encoded record).
pub const RECORD_BODY_BYTES_MAX: usize = RECORD_BYTES_MAX - RECORD_HEADER_BYTES;

/// A WAL segment rolls over to a new file once appending would take it past this many bytes
/// (the default of [`crate::WalOptions::segment_bytes_max`], and the largest value it may
/// take). A segment holds at least one record, so no segment file ever exceeds this size:
/// recovery refuses a longer one as corrupt instead of reading it into memory.
pub const SEGMENT_BYTES_MAX: u64 = 8 * 1024 * 1024;

/// Largest snapshot file, header included: 1 GiB. A snapshot is read into memory whole.
pub const SNAPSHOT_BYTES_MAX: u64 = 1024 * 1024 * 1024;

/// Largest `meta` file, header included.
pub const META_BYTES_MAX: u64 = 4 * 1024;

const _: () = {
    assert!(RECORD_HEADER_BYTES == 3 * 4);
    assert!(RECORD_BODY_BYTES_MAX > 0);
    // The length field is a u32.
    assert!(RECORD_BODY_BYTES_MAX <= u32::MAX as usize);
    // A segment must be able to hold the largest record on its own.
    assert!(RECORD_BYTES_MAX as u64 <= SEGMENT_BYTES_MAX);
    // Whole files are read into memory; they must fit comfortably in a usize on every target.
    assert!(SEGMENT_BYTES_MAX <= (isize::MAX as u64) / 2);
    assert!(SNAPSHOT_BYTES_MAX <= (isize::MAX as u64) / 2);
    assert!(META_BYTES_MAX < SNAPSHOT_BYTES_MAX);
    // "wal-" + 20 digits + ".log", "snapshot.tmp" and "meta.tmp" must be valid names.
    assert!(FILE_NAME_BYTES_MAX >= 28);
};
