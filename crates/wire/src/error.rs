//! The one error type of the crate.
//!
//! Every way a byte string can fail to be a frame has its own variant, so a caller can count
//! them (a metric per variant) and decide: all of them mean the connection can no longer be
//! trusted to be in step, and the driver closes it.

/// Why bytes could not be decoded into a message, or a message could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame (header included) is, or declares itself to be, longer than the maximum.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLong {
        /// Total frame bytes declared by the header (decoding) or needed (encoding).
        len: u64,
        /// The maximum total frame bytes, [`crate::FRAME_BYTES_MAX`].
        max: u64,
    },
    /// The CRC32C stored in the header does not match the one computed over the frame.
    #[error("bad checksum: header says {expected:#010x}, frame hashes to {actual:#010x}")]
    BadChecksum {
        /// The checksum stored in the frame header.
        expected: u32,
        /// The checksum computed over the length bytes, the version byte and the payload.
        actual: u32,
    },
    /// The frame carries a protocol version this build does not speak.
    #[error("unknown protocol version {got}, this build speaks version {supported}")]
    UnknownVersion {
        /// The version byte found in the frame.
        got: u8,
        /// The version this build speaks, [`crate::PROTOCOL_VERSION`].
        supported: u8,
    },
    /// The bytes end before the frame does (whole-frame decoding only; streaming waits).
    #[error("truncated frame: needed {needed} bytes, got {got}")]
    Truncated {
        /// Bytes needed: the header's size if it is incomplete, else the whole frame's size.
        needed: usize,
        /// Bytes available.
        got: usize,
    },
    /// The frame is intact but its body is not a valid message: postcard's error, an empty
    /// body, or bytes left over inside the payload. On encoding: postcard could not encode.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// Bytes follow the frame where exactly one frame was expected.
    #[error("trailing bytes after the frame")]
    TrailingBytes,
}
