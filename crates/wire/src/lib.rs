//! Frames for palisade: every message between two palisade processes travels in one frame.
//!
//! ```text
//! offset 0      4      8         9
//!        | len  | crc  | version | payload (postcard) ... |
//!        u32 LE u32 LE  u8        len - 1 bytes
//! ```
//!
//! `len` counts the bytes after the 8-byte header (the version byte and the payload);
//! `crc` is CRC32C over the 4 length bytes, the version byte and the payload.
//!
//! # Why decoding is total
//!
//! The decoder reads bytes from a peer or a client, and those bytes may be anything: a bug in
//! another version, a bit flipped on a NIC that offloaded its own checksum, a port scanner, an
//! attacker. The system model says nodes do not lie on purpose but "weak lying" is caught, so
//! [`decode`], [`decode_prefix`] and [`FrameDecoder`] are total functions: any byte string
//! yields either a message or a [`WireError`] that names what was wrong. They never panic and
//! never trust a number from the input before checking it against a named limit. The fuzz
//! target in `fuzz/` feeds arbitrary bytes to all three to keep it that way.
//!
//! # Why the length is inside the checksum
//!
//! A checksum over the payload alone cannot see a flipped bit in the length. A length that
//! grew makes the streaming reader wait for bytes that never come (a hung connection rather
//! than an error); a length that shrank makes it cut a frame short and read the next frame's
//! start from the middle of this one. With the length bytes inside the CRC, any single-bit
//! flip of the 4 length bytes, the version or the payload is caught by the CRC (CRC32C detects
//! every single-bit error), and a flip in the stored CRC itself no longer matches. For the
//! whole-frame [`decode`] a changed length also changes where the frame ends, which is caught
//! as [`WireError::Truncated`] or [`WireError::TrailingBytes`] before the CRC is even looked at.
//!
//! # Why no allocation can exceed the frame
//!
//! The declared length is compared with [`FRAME_BYTES_MAX`] from the 8 header bytes alone,
//! before a single body byte is waited for or stored, so a header claiming 4 GiB costs nothing
//! (see `tests/alloc_bound.rs`, which measures it). The decoder never allocates a buffer for
//! the body: it borrows it from the caller's slice. postcard only reads from that bounded
//! slice: a string or byte string is taken from the slice only after its declared length was
//! checked against the bytes left, and a sequence announces its length to serde as a capacity
//! hint only when that many bytes are left (serde further caps any pre-allocation at 1 MiB).
//! Every further byte of memory therefore stands for bytes actually present in a frame of at
//! most [`FRAME_BYTES_MAX`]. The one thing a frame cannot bound is how a message type expands
//! in memory: a `Vec<u64>` of zeros takes 1 byte per element on the wire and 8 in memory, so
//! message types should carry bulk data as `Vec<u8>` or `String` (1:1 on the wire).
//!
//! # Versions
//!
//! The first 9 bytes (length, CRC, version) keep this layout in every protocol version, so a
//! node can always tell a peer which version it does not speak
//! ([`WireError::UnknownVersion`]) instead of reporting garbage. The connection handshake
//! ([`Hello`], [`check_hello`]) also checks the cluster id and the node id.

mod decoder;
mod error;
mod frame;
mod handshake;

pub use decoder::FrameDecoder;
pub use error::WireError;
pub use frame::{
    FRAME_BODY_BYTES_MAX, FRAME_BYTES_MAX, FRAME_BYTES_MIN, FRAME_HEADER_BYTES, PROTOCOL_VERSION,
    decode, decode_prefix, encode, encode_into, peek_frame_len,
};
pub use handshake::{Hello, HelloReply, RefuseReason, check_hello};
