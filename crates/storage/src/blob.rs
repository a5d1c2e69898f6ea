//! Whole-file records (the snapshot, the `meta` file), and how they are replaced atomically.
//!
//! ```text
//! offset 0       4         8           16           20         24
//!        | magic | version | body_len  | header_crc | body_crc | body (postcard) ... |
//!        4 bytes  u32 LE    u64 LE      u32 LE       u32 LE     body_len bytes
//! ```
//!
//! `header_crc` covers the first 16 bytes, `body_crc` the body. Unlike the WAL, such a file is
//! never torn: it is written under a temporary name, synced, and only then renamed over the
//! old one (and the directory synced), so after a crash the name refers either to the old
//! complete file or to the new complete file. Any damage is therefore corruption, reported
//! with the file's name.

use crate::disk::{Disk, StorageError};
use crate::wal::WalError;

/// Bytes before the body.
pub(crate) const BLOB_HEADER_BYTES: usize = 24;

/// Frames `body` as a file of kind `magic`, format `version`.
pub(crate) fn encode_blob(magic: [u8; 4], version: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BLOB_HEADER_BYTES + body.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let header_crc = crc32c::crc32c(&out);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of the file `name`, after checking its frame; `bytes_max` bounds the whole file.
pub(crate) fn decode_blob<'a>(
    name: &str,
    bytes: &'a [u8],
    magic: [u8; 4],
    version: u32,
    bytes_max: u64,
) -> Result<&'a [u8], WalError> {
    let corrupt = |reason: String| WalError::CorruptFile { name: name.to_owned(), reason };
    if bytes.len() as u64 > bytes_max {
        return Err(corrupt(format!("{} bytes, more than the limit of {bytes_max}", bytes.len())));
    }
    let Some(header) = bytes.first_chunk::<BLOB_HEADER_BYTES>() else {
        return Err(corrupt(format!("{} bytes, shorter than its header", bytes.len())));
    };
    let u32_at = |at: usize| u32::from_le_bytes(header[at..at + 4].try_into().expect("4 bytes"));
    if crc32c::crc32c(&header[..16]) != u32_at(16) {
        return Err(corrupt("header checksum mismatch".into()));
    }
    if header[..4] != magic {
        return Err(corrupt(format!("not a {:?} file", String::from_utf8_lossy(&magic))));
    }
    if u32_at(4) != version {
        let found = u32_at(4);
        return Err(WalError::UnsupportedFormat {
            name: name.to_owned(),
            found,
            supported: version,
        });
    }
    let body_len = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    let body = &bytes[BLOB_HEADER_BYTES..];
    if body.len() as u64 != body_len {
        let reason = format!("header says {body_len} body bytes, file holds {}", body.len());
        return Err(corrupt(reason));
    }
    if crc32c::crc32c(body) != u32_at(20) {
        return Err(corrupt("body checksum mismatch".into()));
    }
    Ok(body)
}

/// Replaces `name` with `bytes` atomically: write `tmp`, sync it, rename it over `name`, sync
/// the directory. A crash at any point leaves `name` either as it was or as `bytes`, plus
/// perhaps a stale `tmp` that the next write replaces.
pub(crate) fn replace_file<D: Disk + ?Sized>(
    disk: &mut D,
    name: &str,
    tmp: &str,
    bytes: &[u8],
) -> Result<(), StorageError> {
    if disk.exists(tmp)? {
        disk.remove(tmp)?;
    }
    disk.append(tmp, bytes)?;
    disk.sync(tmp)?;
    disk.rename(tmp, name)?;
    disk.sync_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: [u8; 4] = *b"TEST";

    #[test]
    fn blobs_round_trip_and_every_bit_flip_is_caught() {
        let bytes = encode_blob(MAGIC, 3, b"hello");
        assert_eq!(decode_blob("f", &bytes, MAGIC, 3, 100).unwrap(), b"hello");
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_blob("f", &flipped, MAGIC, 3, 100).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn short_long_foreign_and_future_files_are_refused() {
        let bytes = encode_blob(MAGIC, 3, b"hello");
        for cut in 0..bytes.len() {
            assert!(decode_blob("f", &bytes[..cut], MAGIC, 3, 100).is_err(), "cut {cut}");
        }
        assert!(decode_blob("f", &bytes, MAGIC, 3, 10).is_err());
        assert!(decode_blob("f", &bytes, *b"ELSE", 3, 100).is_err());
        let err = decode_blob("f", &bytes, MAGIC, 2, 100).unwrap_err();
        assert!(matches!(err, WalError::UnsupportedFormat { found: 3, supported: 2, .. }));
    }
}
