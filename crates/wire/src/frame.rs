//! Encoding and decoding one frame: the limits, the header, the checksum, the version byte.
//!
//! Decoding checks in the order that costs least and trusts least: the 8 header bytes first
//! (is the declared length within [`FRAME_BYTES_MAX`]?), then whether the whole frame is there,
//! then the CRC over everything it covers, then the version, and only then hands the payload
//! to postcard. Nothing is allocated before the length is known to be within the limit, and
//! the body is never copied: postcard reads it from the caller's slice. Encoding writes
//! through a bounded postcard flavor, so even an oversized message never grows the output
//! past the limit: it is measured, refused, and the output buffer is restored.

use postcard::ser_flavors::Flavor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::WireError;

/// Bytes of the frame header: the length (`u32` LE) and the CRC32C (`u32` LE).
pub const FRAME_HEADER_BYTES: usize = 8;
/// Bytes of the length field at the start of the header.
const FRAME_LEN_BYTES: usize = 4;
/// Bytes of the CRC32C field after the length.
const FRAME_CRC_BYTES: usize = 4;
/// Bytes of the protocol version, the first byte after the header.
const FRAME_VERSION_BYTES: usize = 1;
/// The largest frame, header included, that is encoded or accepted: 4 MiB.
pub const FRAME_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The largest value of the header's length field (version byte and payload).
pub const FRAME_BODY_BYTES_MAX: usize = FRAME_BYTES_MAX - FRAME_HEADER_BYTES;
/// The smallest well-formed frame: the header and the version byte (a unit payload is empty).
pub const FRAME_BYTES_MIN: usize = FRAME_HEADER_BYTES + FRAME_VERSION_BYTES;
/// The protocol version this build speaks, carried in every frame.
pub const PROTOCOL_VERSION: u8 = 1;

const _: () = {
    assert!(FRAME_LEN_BYTES + FRAME_CRC_BYTES == FRAME_HEADER_BYTES);
    assert!(FRAME_BYTES_MIN < FRAME_BYTES_MAX);
    assert!(FRAME_BODY_BYTES_MAX + FRAME_HEADER_BYTES == FRAME_BYTES_MAX);
    // The length field must be able to state every accepted body length.
    assert!(FRAME_BODY_BYTES_MAX <= u32::MAX as usize);
    // A whole frame must fit in memory on every target, with room to spare for sums.
    assert!(FRAME_BYTES_MAX <= (isize::MAX as usize) / 2);
    assert!(PROTOCOL_VERSION > 0);
};

/// What the 8 header bytes say, after the length has been checked against the limit.
#[derive(Debug, Clone, Copy)]
struct Header {
    /// Total bytes of the frame, header included; at most [`FRAME_BYTES_MAX`].
    frame_bytes: usize,
    /// The CRC32C stored in the header.
    crc: u32,
}

/// Reads the header at the start of `buf`; `Ok(None)` if fewer than 8 bytes are there.
fn parse_header(buf: &[u8]) -> Result<Option<Header>, WireError> {
    let Some(header) = buf.first_chunk::<FRAME_HEADER_BYTES>() else {
        return Ok(None);
    };
    let body_bytes = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    // u32 -> u64 and + 8 cannot overflow; compare before any conversion to usize.
    let frame_bytes = u64::from(body_bytes) + FRAME_HEADER_BYTES as u64;
    if frame_bytes > FRAME_BYTES_MAX as u64 {
        return Err(WireError::TooLong { len: frame_bytes, max: FRAME_BYTES_MAX as u64 });
    }
    let frame_bytes = usize::try_from(frame_bytes).expect("checked against FRAME_BYTES_MAX");
    Ok(Some(Header { frame_bytes, crc }))
}

/// The CRC32C of a frame: over the length bytes, then the version byte and the payload.
fn frame_crc(frame: &[u8]) -> u32 {
    assert!(frame.len() >= FRAME_HEADER_BYTES);
    let crc = crc32c::crc32c(&frame[..FRAME_LEN_BYTES]);
    crc32c::crc32c_append(crc, &frame[FRAME_HEADER_BYTES..])
}

fn malformed(error: postcard::Error) -> WireError {
    WireError::Malformed(error.to_string())
}

/// Returns the total length (header included) of the frame starting at `buf[0]`, once its
/// 8 header bytes are there; `Ok(None)` while fewer are.
///
/// The length is checked against [`FRAME_BYTES_MAX`] here, so a driver can reserve buffer
/// space for the rest of the frame without trusting the peer.
///
/// # Errors
/// [`WireError::TooLong`] if the header declares a frame longer than [`FRAME_BYTES_MAX`].
pub fn peek_frame_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    Ok(parse_header(buf)?.map(|header| header.frame_bytes))
}

/// Checks and decodes one complete frame whose header was already parsed.
fn decode_checked<T: DeserializeOwned>(frame: &[u8], header: Header) -> Result<T, WireError> {
    assert!(frame.len() == header.frame_bytes);
    let actual = frame_crc(frame);
    if actual != header.crc {
        return Err(WireError::BadChecksum { expected: header.crc, actual });
    }
    let Some((&version, payload)) = frame[FRAME_HEADER_BYTES..].split_first() else {
        return Err(WireError::Malformed("empty frame body: no version byte".to_owned()));
    };
    if version != PROTOCOL_VERSION {
        return Err(WireError::UnknownVersion { got: version, supported: PROTOCOL_VERSION });
    }
    let (msg, rest) = postcard::take_from_bytes::<T>(payload).map_err(malformed)?;
    if !rest.is_empty() {
        let left = rest.len();
        return Err(WireError::Malformed(format!("{left} bytes left over after the message")));
    }
    Ok(msg)
}

/// Decodes `bytes` as exactly one whole frame.
///
/// # Errors
/// [`WireError::Truncated`] if `bytes` ends before the frame, [`WireError::TrailingBytes`] if
/// bytes follow it, and every error of [`decode_prefix`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let Some(header) = parse_header(bytes)? else {
        return Err(WireError::Truncated { needed: FRAME_HEADER_BYTES, got: bytes.len() });
    };
    if bytes.len() < header.frame_bytes {
        return Err(WireError::Truncated { needed: header.frame_bytes, got: bytes.len() });
    }
    if bytes.len() > header.frame_bytes {
        return Err(WireError::TrailingBytes);
    }
    decode_checked(bytes, header)
}

/// Decodes the frame at the start of `buf`, for a reader of a byte stream.
///
/// Returns `Ok(Some((msg, consumed)))` with the frame's length in bytes (drop that many from
/// the front of the buffer), or `Ok(None)` when more bytes are needed. Bytes after the frame
/// are left alone. The declared length is checked before waiting for the body, so a stream
/// never waits for (or buffers) more than [`FRAME_BYTES_MAX`] bytes for one frame.
///
/// # Errors
/// [`WireError::TooLong`], [`WireError::BadChecksum`], [`WireError::UnknownVersion`],
/// [`WireError::Malformed`]. After any of them the stream is out of step: close it.
pub fn decode_prefix<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, WireError> {
    let Some(header) = parse_header(buf)? else {
        return Ok(None);
    };
    let Some(frame) = buf.get(..header.frame_bytes) else {
        return Ok(None);
    };
    let msg = decode_checked(frame, header)?;
    Ok(Some((msg, header.frame_bytes)))
}

/// A postcard output that stores at most up to `limit` total bytes in `out`, and past that
/// only counts, so an oversized message is measured without growing the buffer.
struct BoundedVec<'a> {
    out: &'a mut Vec<u8>,
    /// `out.len()` never exceeds this.
    limit: usize,
    /// Bytes the message needed beyond `limit`.
    overflow_bytes: u64,
}

impl Flavor for BoundedVec<'_> {
    type Output = u64;

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let room = self.limit.saturating_sub(self.out.len());
        let (kept, over) = data.split_at(data.len().min(room));
        self.out.extend_from_slice(kept);
        self.overflow_bytes += over.len() as u64;
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.try_extend(&[data])
    }

    fn finalize(self) -> postcard::Result<u64> {
        assert!(self.out.len() <= self.limit);
        Ok(self.overflow_bytes)
    }
}

/// Appends one frame holding `msg` to `out`; returns the frame's length in bytes.
///
/// # Errors
/// [`WireError::TooLong`] (with the exact length the frame would have had) if the frame would
/// exceed [`FRAME_BYTES_MAX`]; [`WireError::Malformed`] if postcard cannot encode `msg` (for
/// example a `Serialize` impl that fails). On error `out` is left as it was.
pub fn encode_into<T: Serialize + ?Sized>(msg: &T, out: &mut Vec<u8>) -> Result<usize, WireError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_BYTES]);
    out.push(PROTOCOL_VERSION);
    let limit = start.saturating_add(FRAME_BYTES_MAX);
    let flavor = BoundedVec { out: &mut *out, limit, overflow_bytes: 0 };
    let overflow_bytes = match postcard::serialize_with_flavor(msg, flavor) {
        Ok(overflow_bytes) => overflow_bytes,
        Err(error) => {
            out.truncate(start);
            return Err(malformed(error));
        }
    };
    let frame_bytes = out.len() - start;
    if overflow_bytes > 0 {
        out.truncate(start);
        let len = frame_bytes as u64 + overflow_bytes;
        return Err(WireError::TooLong { len, max: FRAME_BYTES_MAX as u64 });
    }
    assert!(frame_bytes >= FRAME_BYTES_MIN);
    assert!(frame_bytes <= FRAME_BYTES_MAX);
    let body_bytes = u32::try_from(frame_bytes - FRAME_HEADER_BYTES).expect("body fits in u32");
    let frame = &mut out[start..];
    frame[..FRAME_LEN_BYTES].copy_from_slice(&body_bytes.to_le_bytes());
    let crc = frame_crc(frame);
    frame[FRAME_LEN_BYTES..FRAME_HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    Ok(frame_bytes)
}

/// Encodes `msg` as one frame.
///
/// # Errors
/// As [`encode_into`].
pub fn encode<T: Serialize + ?Sized>(msg: &T) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    encode_into(msg, &mut out)?;
    Ok(out)
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
