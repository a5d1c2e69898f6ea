//! The [`Disk`] trait: the only way this crate touches stable storage.
//!
//! # Why a trait over a flat directory
//!
//! The write-ahead log is only as correct as its assumptions about what a crash leaves behind,
//! and those assumptions cannot be tested against a real disk: a real crash is rare, slow and
//! unreproducible. So the WAL is written against this narrow trait, whose doc states exactly
//! what survives a crash, and runs on two implementations: [`crate::FileDisk`] (real files,
//! real `fsync`) and [`crate::SimDisk`] (in memory, which loses, tears and corrupts exactly
//! what the contract allows, from a seed). A flat directory of short names is all the WAL
//! needs, and keeping paths out of the trait keeps a name from ever escaping the data
//! directory.
//!
//! # Names
//!
//! A name is 1 to [`FILE_NAME_BYTES_MAX`] bytes of ASCII letters, digits, `.`, `-` and `_`,
//! and does not start with `.` (so `.`, `..` and hidden files are out, and `/` can never
//! appear). Every method checks its names with [`validate_name`] and returns
//! [`StorageError::BadName`] otherwise.

use std::io;

use crate::limits::FILE_NAME_BYTES_MAX;

/// Why a [`Disk`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The operating system (or a simulated fault) failed an I/O call. After a failed write or
    /// sync the state of the file is unknown: treat the disk as failed and restart from what
    /// was durable (see the WAL's "poisoned" state).
    #[error("{op} {name:?}: {source}")]
    Io {
        /// The operation that failed (`"append"`, `"sync"`, ...).
        op: &'static str,
        /// The file it was applied to (empty for directory-wide operations).
        name: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The named file does not exist.
    #[error("no file {name:?}")]
    NotFound {
        /// The missing file.
        name: String,
    },
    /// The name is not a valid file name for a [`Disk`] (see the module doc).
    #[error("bad file name {name:?}: {reason}")]
    BadName {
        /// The rejected name (possibly shortened for display).
        name: String,
        /// Which rule it broke.
        reason: &'static str,
    },
    /// A read, write or truncate reached past the end of the file.
    #[error("{op} {name:?} at {offset}+{len} is past the end of the file ({file_len} bytes)")]
    OutOfRange {
        /// The operation that was refused.
        op: &'static str,
        /// The file.
        name: String,
        /// Where the operation started.
        offset: u64,
        /// How many bytes it covered.
        len: u64,
        /// The file's length at the time.
        file_len: u64,
    },
}

/// Shorthand for results of [`Disk`] operations.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A flat directory of named files with explicit durability.
///
/// # What survives a crash
///
/// Writes (`append`, `write_at`, `truncate`) change what later reads return at once, but are
/// only *durable* once synced. After a crash (power loss, kernel panic) what remains is
/// exactly:
///
/// - for each file: its contents as of its last [`sync`](Disk::sync), plus possibly a prefix of
///   the writes made to it after that sync, in order, of which the last may be *torn* (only a
///   prefix of its bytes reached the disk). Nothing written before a sync is lost, and nothing
///   is reordered; no byte is ever changed to a value that was not written (bit rot aside);
/// - for the directory: the set of names, and which file each name refers to, as of the last
///   [`sync_dir`](Disk::sync_dir), plus possibly a prefix of the later creates, renames and
///   removes, in order. A newly created file whose creation was not made durable by `sync_dir`
///   may vanish along with its synced contents.
///
/// A process crash (the process dies, the machine does not) loses nothing that was written.
///
/// This is the model [`crate::SimDisk`] implements exactly. Real file systems mostly keep it;
/// where they do not (some may persist a file's new size before its data, leaving zeros in
/// place of unsynced bytes), [`crate::FileDisk`] does not hide it, and the WAL errs on the safe
/// side: zeros from a record boundary to the end count as a torn tail, any other damage as
/// corruption.
///
/// All offsets and lengths are in bytes. Writes never leave holes: `write_at` may start at most
/// at the current end of the file.
pub trait Disk {
    /// All file names in the directory, sorted. Names that are not valid (see the module
    /// doc) are not listed.
    fn list(&self) -> Result<Vec<String>>;
    /// Whether the file exists.
    fn exists(&self, name: &str) -> Result<bool>;
    /// The file's length in bytes.
    fn len(&self, name: &str) -> Result<u64>;
    /// The whole file.
    fn read(&self, name: &str) -> Result<Vec<u8>>;
    /// `len` bytes from `offset`; [`StorageError::OutOfRange`] if that reaches past the end.
    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>>;
    /// Appends `data` at the end of the file, creating the file (empty) first if it does not
    /// exist. The creation is a directory operation: durable after [`sync_dir`](Disk::sync_dir).
    fn append(&mut self, name: &str, data: &[u8]) -> Result<()>;
    /// Overwrites bytes from `offset`, extending the file if the write reaches past its end.
    /// `offset` may be at most the file's length.
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<()>;
    /// Shortens the file to `len` bytes; `len` may be at most the file's length.
    fn truncate(&mut self, name: &str, len: u64) -> Result<()>;
    /// Makes every write to this file made before the call durable (`fsync`).
    fn sync(&mut self, name: &str) -> Result<()>;
    /// Makes every create, rename and remove made before the call durable (`fsync` of the
    /// directory).
    fn sync_dir(&mut self) -> Result<()>;
    /// Atomically makes `to` refer to the file `from` referred to (replacing any file `to`)
    /// and removes the name `from`. Durable after [`sync_dir`](Disk::sync_dir).
    fn rename(&mut self, from: &str, to: &str) -> Result<()>;
    /// Removes the file. Durable after [`sync_dir`](Disk::sync_dir).
    fn remove(&mut self, name: &str) -> Result<()>;
}

impl<D: Disk + ?Sized> Disk for Box<D> {
    fn list(&self) -> Result<Vec<String>> {
        (**self).list()
    }
    fn exists(&self, name: &str) -> Result<bool> {
        (**self).exists(name)
    }
    fn len(&self, name: &str) -> Result<u64> {
        (**self).len(name)
    }
    fn read(&self, name: &str) -> Result<Vec<u8>> {
        (**self).read(name)
    }
    fn read_at(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>> {
        (**self).read_at(name, offset, len)
    }
    fn append(&mut self, name: &str, data: &[u8]) -> Result<()> {
        (**self).append(name, data)
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<()> {
        (**self).write_at(name, offset, data)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<()> {
        (**self).truncate(name, len)
    }
    fn sync(&mut self, name: &str) -> Result<()> {
        (**self).sync(name)
    }
    fn sync_dir(&mut self) -> Result<()> {
        (**self).sync_dir()
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        (**self).rename(from, to)
    }
    fn remove(&mut self, name: &str) -> Result<()> {
        (**self).remove(name)
    }
}

/// Checks that `name` is a valid [`Disk`] file name (see the module doc).
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |reason| {
        let shown: String = name.chars().take(FILE_NAME_BYTES_MAX + 8).collect();
        Err(StorageError::BadName { name: shown, reason })
    };
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > FILE_NAME_BYTES_MAX {
        return bad("longer than FILE_NAME_BYTES_MAX");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_';
    if !name.bytes().all(allowed) {
        return bad("only ASCII letters, digits, '.', '-' and '_' are allowed");
    }
    Ok(())
}

/// Checks that `[offset, offset + len)` lies within a file of `file_len` bytes.
pub(crate) fn check_range(
    op: &'static str,
    name: &str,
    offset: u64,
    len: u64,
    file_len: u64,
) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= file_len => Ok(()),
        _ => Err(StorageError::OutOfRange { op, name: name.to_owned(), offset, len, file_len }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        for name in ["", ".", "..", "../x", "a/b", "/abs", ".hidden", "a\\b", "a b", "é"] {
            assert!(
                matches!(validate_name(name), Err(StorageError::BadName { .. })),
                "{name:?} accepted"
            );
        }
        let long = "a".repeat(FILE_NAME_BYTES_MAX + 1);
        assert!(validate_name(&long).is_err());
        let longest = "a".repeat(FILE_NAME_BYTES_MAX);
        assert!(validate_name(&longest).is_ok());
        for name in ["wal-00000000000000000000.log", "snapshot.tmp", "meta", "a..b", "x_y-z"] {
            assert!(validate_name(name).is_ok(), "{name:?} refused");
        }
    }

    #[test]
    fn ranges_are_checked_without_overflow() {
        assert!(check_range("read", "f", 0, 10, 10).is_ok());
        assert!(check_range("read", "f", 10, 0, 10).is_ok());
        assert!(check_range("read", "f", 5, 6, 10).is_err());
        assert!(check_range("read", "f", u64::MAX, 2, 10).is_err());
    }
}
