//! The `meta` file: which cluster and node a data directory belongs to.
//!
//! A node started on another node's data directory (a copy-paste in a deployment script, a
//! volume mounted on the wrong machine) would vote with someone else's votes and serve someone
//! else's log: two nodes with one identity, which breaks the "at most one vote per term"
//! premise of Raft without any message being wrong. The server writes this file when it
//! creates a data directory and checks it on every start, before the WAL is opened.

use serde::{Deserialize, Serialize};

use crate::blob::{decode_blob, encode_blob, replace_file};
use crate::disk::Disk;
use crate::limits::META_BYTES_MAX;
use crate::wal::WalError;

/// Name of the file.
pub const META_FILE: &str = "meta";
/// Name the file is written under before it is renamed into place.
pub const META_TMP_FILE: &str = "meta.tmp";
/// The layout version of a data directory this build reads and writes.
pub const DIR_FORMAT_VERSION: u32 = 1;

const META_MAGIC: [u8; 4] = *b"PLMT";
const META_FILE_VERSION: u32 = 1;

/// Identity of a data directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirMeta {
    /// The cluster the directory belongs to.
    pub cluster_id: u64,
    /// The node the directory belongs to.
    pub node_id: u64,
    /// The layout version of the directory ([`DIR_FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
}

impl DirMeta {
    /// The identity of a directory of this build's format.
    pub fn new(cluster_id: u64, node_id: u64) -> DirMeta {
        DirMeta { cluster_id, node_id, format_version: DIR_FORMAT_VERSION }
    }
}

/// Writes (or replaces) the `meta` file atomically and durably.
pub fn write_meta<D: Disk + ?Sized>(disk: &mut D, meta: &DirMeta) -> Result<(), WalError> {
    let body = postcard::to_allocvec(meta).expect("DirMeta serializes");
    let bytes = encode_blob(META_MAGIC, META_FILE_VERSION, &body);
    replace_file(disk, META_FILE, META_TMP_FILE, &bytes)?;
    Ok(())
}

/// Reads the `meta` file; `None` if the directory has none (a new directory).
pub fn read_meta<D: Disk + ?Sized>(disk: &D) -> Result<Option<DirMeta>, WalError> {
    if !disk.exists(META_FILE)? {
        return Ok(None);
    }
    let bytes = disk.read(META_FILE)?;
    let body = decode_blob(META_FILE, &bytes, META_MAGIC, META_FILE_VERSION, META_BYTES_MAX)?;
    let corrupt = |reason: String| WalError::CorruptFile { name: META_FILE.to_owned(), reason };
    let meta = match postcard::take_from_bytes::<DirMeta>(body) {
        Ok((meta, [])) => meta,
        Ok(_) => return Err(corrupt("bytes after the metadata".into())),
        Err(e) => return Err(corrupt(format!("does not decode: {e}"))),
    };
    if meta.format_version != DIR_FORMAT_VERSION {
        return Err(WalError::UnsupportedFormat {
            name: META_FILE.to_owned(),
            found: meta.format_version,
            supported: DIR_FORMAT_VERSION,
        });
    }
    Ok(Some(meta))
}

/// On a new directory, writes `expected` and returns it; on an existing one, checks that it
/// belongs to `expected`'s cluster and node ([`WalError::MetaMismatch`] otherwise).
pub fn init_or_check_meta<D: Disk + ?Sized>(
    disk: &mut D,
    expected: &DirMeta,
) -> Result<DirMeta, WalError> {
    match read_meta(disk)? {
        None => {
            write_meta(disk, expected)?;
            Ok(*expected)
        }
        Some(found) if found == *expected => Ok(found),
        Some(found) => Err(WalError::MetaMismatch { expected: *expected, found }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimDisk;

    #[test]
    fn a_directory_remembers_its_cluster_and_node() {
        let mut disk = SimDisk::new();
        assert_eq!(read_meta(&disk).unwrap(), None);
        let meta = DirMeta::new(7, 2);
        assert_eq!(init_or_check_meta(&mut disk, &meta).unwrap(), meta);
        disk.crash_lose_unsynced();
        assert_eq!(read_meta(&disk).unwrap(), Some(meta));
        assert_eq!(init_or_check_meta(&mut disk, &meta).unwrap(), meta);
        let err = init_or_check_meta(&mut disk, &DirMeta::new(7, 3)).unwrap_err();
        assert!(matches!(err, WalError::MetaMismatch { .. }));
        let err = init_or_check_meta(&mut disk, &DirMeta::new(8, 2)).unwrap_err();
        assert!(matches!(err, WalError::MetaMismatch { .. }));
    }

    #[test]
    fn a_damaged_or_future_meta_file_is_refused() {
        let mut disk = SimDisk::new();
        write_meta(&mut disk, &DirMeta::new(1, 1)).unwrap();
        disk.flip_bit(META_FILE, 200).unwrap();
        assert!(matches!(read_meta(&disk), Err(WalError::CorruptFile { .. })));
        let future = DirMeta { format_version: DIR_FORMAT_VERSION + 1, ..DirMeta::new(1, 1) };
        write_meta(&mut disk, &future).unwrap();
        assert!(matches!(read_meta(&disk), Err(WalError::UnsupportedFormat { .. })));
    }
}
