//! One WAL record on disk, and how a segment's bytes are read back into records.
//!
//! ```text
//! offset 0      4             8           12
//!        | len  | header_crc  | body_crc  | body (postcard Record) ... |
//!        u32 LE  u32 LE        u32 LE      len bytes
//! ```
//!
//! `header_crc` is the CRC32C of the 4 length bytes, `body_crc` that of the body.
//!
//! # Telling a torn tail from corruption
//!
//! A crash may leave the end of the last segment torn: the last writes were not synced, and
//! only part of them reached the disk. That is not an error: those records were never
//! acknowledged, and recovery cuts them off. Corruption (a flipped bit, a lost sector, a bug)
//! is an error: it may sit in records that were synced and acknowledged, and starting anyway
//! could silently forget a vote or a committed entry. The framing tells the two apart:
//!
//! - torn tail, truncated away: at the end of the **last** segment, a header cut short
//!   (fewer than 12 bytes left), a body that runs past the end of the file (its header intact
//!   and checked), or nothing but zero bytes from a record boundary to the end (a file whose
//!   size reached the disk before its data did);
//! - corruption, [`WalError::Corrupt`]: a header whose CRC fails (a flipped length cannot make
//!   a record look torn, because the length is inside the header CRC), a complete body whose
//!   CRC fails, a length over the limit, a body that does not decode, and anything short or
//!   bad in a segment that is not the last one (segments are synced before the next one is
//!   started, so only the last can be torn).
//!
//! Any single flipped bit inside a record is therefore reported, never truncated.
//!
//! A real file system that extends a file before writing its data could also leave a record
//! that is part data and part zeros; that is reported as corruption too (the safe side).

use palisade_raft::{Entry, HardState, LogIndex, Payload, Term};
use serde::Deserialize;

use crate::limits::{RECORD_BODY_BYTES_MAX, RECORD_BYTES_MAX, RECORD_HEADER_BYTES};
use crate::wal::WalError;

/// A record as read back.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub(crate) enum Record {
    /// A log entry; one at an index at or before the last replaces the log from there.
    Entry(Entry),
    /// The hard state; the last one wins.
    HardState(HardState),
    /// The log was discarded for a snapshot at `index` that it did not match; the next entry
    /// is `index + 1`.
    Reset {
        /// Last index of the snapshot.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
}

/// A record to write, borrowing its contents; encodes exactly like [`Record`] (the
/// serde derive is only for the test that pins [`encode_record`] to postcard).
#[derive(Debug)]
#[cfg_attr(test, derive(serde::Serialize))]
pub(crate) enum RecordRef<'a> {
    /// See [`Record::Entry`].
    Entry(&'a Entry),
    /// See [`Record::HardState`].
    HardState(&'a HardState),
    /// See [`Record::Reset`].
    Reset {
        /// Last index of the snapshot.
        index: LogIndex,
        /// Its term.
        term: Term,
    },
}

/// Appends the framed record to `out`; on error `out` is unchanged.
///
/// The body is the postcard encoding of the record, written by hand: postcard writes a
/// `Vec<u8>` one byte at a time through serde, and this is on the path of every entry and
/// every sync. `tests::the_hand_encoding_is_postcard` pins the two to the same bytes.
pub(crate) fn encode_record(record: &RecordRef<'_>, out: &mut Vec<u8>) -> Result<(), WalError> {
    let start = out.len();
    let payload_bytes = match record {
        RecordRef::Entry(Entry { payload: Payload::Command(bytes), .. }) => bytes.len(),
        _ => 0,
    };
    // Besides a command's payload a body takes at most 32 bytes (two variant bytes, three
    // 10-byte varints); a membership may take more, and `push` grows the buffer then.
    out.reserve(RECORD_HEADER_BYTES + 32 + payload_bytes);
    out.extend_from_slice(&[0; RECORD_HEADER_BYTES]);
    encode_body(record, out);
    let body_bytes = out.len() - start - RECORD_HEADER_BYTES;
    if body_bytes > RECORD_BODY_BYTES_MAX {
        out.truncate(start);
        let bytes = (body_bytes + RECORD_HEADER_BYTES) as u64;
        return Err(WalError::RecordTooLarge { bytes, max: RECORD_BYTES_MAX as u64 });
    }
    let len = u32::try_from(body_bytes).expect("RECORD_BODY_BYTES_MAX fits in a u32");
    let len_bytes = len.to_le_bytes();
    let body_crc = crc32c::crc32c(&out[start + RECORD_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&crc32c::crc32c(&len_bytes).to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&body_crc.to_le_bytes());
    Ok(())
}

/// Appends the postcard encoding of `record`: enum variants and integers as varints, fields
/// in declaration order, an `Option` as a 0 or 1 byte, a sequence as its length then its
/// elements.
fn encode_body(record: &RecordRef<'_>, out: &mut Vec<u8>) {
    match record {
        RecordRef::Entry(Entry { term, index, payload }) => {
            push_varint(out, 0);
            push_varint(out, *term);
            push_varint(out, *index);
            match payload {
                Payload::Noop => push_varint(out, 0),
                Payload::Command(bytes) => {
                    push_varint(out, 1);
                    push_varint(out, bytes.len() as u64);
                    out.extend_from_slice(bytes);
                }
                Payload::Membership(membership) => {
                    push_varint(out, 2);
                    push_varint(out, membership.voters.len() as u64);
                    for &voter in &membership.voters {
                        push_varint(out, voter);
                    }
                }
            }
        }
        RecordRef::HardState(HardState { term, vote, commit }) => {
            push_varint(out, 1);
            push_varint(out, *term);
            match vote {
                None => out.push(0),
                Some(vote) => {
                    out.push(1);
                    push_varint(out, *vote);
                }
            }
            push_varint(out, *commit);
        }
        RecordRef::Reset { index, term } => {
            push_varint(out, 2);
            push_varint(out, *index);
            push_varint(out, *term);
        }
    }
}

/// Appends `value` as a postcard varint: 7 bits a byte, least significant first, the high
/// bit set on every byte but the last.
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// How a segment's scan ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// Bytes of whole, valid records from the start.
    pub(crate) valid_bytes: u64,
    /// Bytes after them that are a torn tail (0 unless this is the last segment).
    pub(crate) torn_bytes: u64,
}

fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))
}

/// Reads every record of the segment `name` in order, calling `on_record(offset, record)`.
/// `is_last` says whether a torn tail is allowed (see the module doc).
pub(crate) fn scan_segment(
    name: &str,
    bytes: &[u8],
    is_last: bool,
    mut on_record: impl FnMut(u64, Record) -> Result<(), WalError>,
) -> Result<ScanEnd, WalError> {
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let corrupt = |reason: String| WalError::Corrupt {
            segment: name.to_owned(),
            offset: offset as u64,
            reason,
        };
        let torn = ScanEnd { valid_bytes: offset as u64, torn_bytes: rest.len() as u64 };
        if rest.len() < RECORD_HEADER_BYTES {
            if is_last {
                return Ok(torn);
            }
            return Err(corrupt(
                "record header cut short in a segment that is not the last".into(),
            ));
        }
        let len = le_u32(&rest[0..4]);
        if crc32c::crc32c(&rest[0..4]) != le_u32(&rest[4..8]) {
            if is_last && rest.iter().all(|&b| b == 0) {
                return Ok(torn);
            }
            return Err(corrupt("record header checksum mismatch".into()));
        }
        let body_bytes = len as usize;
        if body_bytes == 0 || body_bytes > RECORD_BODY_BYTES_MAX {
            return Err(corrupt(format!("record body length {len} out of range")));
        }
        if rest.len() - RECORD_HEADER_BYTES < body_bytes {
            if is_last {
                return Ok(torn);
            }
            return Err(corrupt("record body cut short in a segment that is not the last".into()));
        }
        let body = &rest[RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + body_bytes];
        if crc32c::crc32c(body) != le_u32(&rest[8..12]) {
            return Err(corrupt("record body checksum mismatch".into()));
        }
        let record = match postcard::take_from_bytes::<Record>(body) {
            Ok((record, [])) => record,
            Ok((_, left)) => return Err(corrupt(format!("{} bytes after the record", left.len()))),
            Err(e) => return Err(corrupt(format!("record body does not decode: {e}"))),
        };
        on_record(offset as u64, record)?;
        offset += RECORD_HEADER_BYTES + body_bytes;
    }
    Ok(ScanEnd { valid_bytes: offset as u64, torn_bytes: 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_raft::Membership;

    fn entry(index: LogIndex, payload: &[u8]) -> Entry {
        Entry { index, term: 3, payload: Payload::Command(payload.to_vec()) }
    }

    fn segment() -> (Vec<u8>, Vec<Record>) {
        let (e1, e2) = (entry(1, b"one"), entry(2, b"two"));
        let hs = HardState { term: 3, vote: Some(2), commit: 1 };
        let mut bytes = Vec::new();
        for record in [
            RecordRef::Entry(&e1),
            RecordRef::HardState(&hs),
            RecordRef::Reset { index: 7, term: 2 },
            RecordRef::Entry(&e2),
        ] {
            encode_record(&record, &mut bytes).unwrap();
        }
        let records = vec![
            Record::Entry(e1),
            Record::HardState(hs),
            Record::Reset { index: 7, term: 2 },
            Record::Entry(e2),
        ];
        (bytes, records)
    }

    fn scan(bytes: &[u8], is_last: bool) -> Result<(ScanEnd, Vec<Record>), WalError> {
        let mut records = Vec::new();
        let end = scan_segment("seg", bytes, is_last, |_, r| {
            records.push(r);
            Ok(())
        })?;
        Ok((end, records))
    }

    #[test]
    fn records_round_trip() {
        let (bytes, want) = segment();
        let (end, got) = scan(&bytes, false).unwrap();
        assert_eq!(got, want);
        assert_eq!(end, ScanEnd { valid_bytes: bytes.len() as u64, torn_bytes: 0 });
    }

    #[test]
    fn every_cut_of_the_last_segment_is_a_torn_tail() {
        let (bytes, want) = segment();
        for cut in 0..bytes.len() {
            let (end, got) = scan(&bytes[..cut], true).unwrap();
            assert_eq!(end.valid_bytes + end.torn_bytes, cut as u64);
            assert_eq!(got[..], want[..got.len()]);
            let middle = scan(&bytes[..cut], false);
            if end.torn_bytes > 0 {
                assert!(matches!(middle, Err(WalError::Corrupt { .. })), "cut {cut}");
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_corruption_never_a_torn_tail() {
        let (bytes, _) = segment();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = scan(&flipped, true);
            assert!(matches!(result, Err(WalError::Corrupt { .. })), "bit {bit}: {result:?}");
        }
    }

    #[test]
    fn a_zero_tail_after_a_record_boundary_is_torn_only_in_the_last_segment() {
        let (mut bytes, want) = segment();
        let valid = bytes.len();
        bytes.extend_from_slice(&[0; 40]);
        let (end, got) = scan(&bytes, true).unwrap();
        assert_eq!(got, want);
        assert_eq!(end, ScanEnd { valid_bytes: valid as u64, torn_bytes: 40 });
        assert!(scan(&bytes, false).is_err());
    }

    #[test]
    fn the_hand_encoding_is_postcard() {
        let payloads = [
            Payload::Noop,
            Payload::Command(Vec::new()),
            Payload::Command(vec![0xa5; 300]),
            Payload::Membership(Membership::new([1, 2, 300, u64::MAX])),
        ];
        let mut records = Vec::new();
        let numbers = [0, 1, 127, 128, 16_383, 16_384, u64::from(u32::MAX) + 1, u64::MAX];
        for (i, payload) in payloads.iter().enumerate() {
            let n = numbers[i * 2];
            records.push(Entry { term: n, index: numbers[i * 2 + 1], payload: payload.clone() });
        }
        let mut hard_states = Vec::new();
        for (i, &n) in numbers.iter().enumerate() {
            let vote = (i % 2 == 1).then_some(numbers[7 - i]);
            hard_states.push(HardState { term: n, vote, commit: numbers[(i + 3) % 8] });
        }
        let mut refs: Vec<RecordRef<'_>> = records.iter().map(RecordRef::Entry).collect();
        refs.extend(hard_states.iter().map(RecordRef::HardState));
        refs.extend(numbers.iter().map(|&n| RecordRef::Reset { index: n, term: !n }));
        for record in &refs {
            let mut framed = vec![9];
            encode_record(record, &mut framed).unwrap();
            let body = &framed[1 + RECORD_HEADER_BYTES..];
            assert_eq!(body, &postcard::to_allocvec(record).unwrap()[..], "{record:?}");
            assert_eq!(le_u32(&framed[1..5]) as usize, body.len());
        }
    }

    #[test]
    fn oversized_records_are_refused_before_writing() {
        let big = entry(1, &vec![7; RECORD_BYTES_MAX]);
        let mut out = vec![1, 2, 3];
        let err = encode_record(&RecordRef::Entry(&big), &mut out).unwrap_err();
        assert!(matches!(err, WalError::RecordTooLarge { .. }));
        assert_eq!(out, [1, 2, 3]);
    }
}
