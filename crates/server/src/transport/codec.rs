//! palisade-wire frames as a tokio-util codec.
//!
//! The decoder trusts nothing: it looks at the 8 header bytes first ([`peek_frame_len`]
//! checks the declared length against [`palisade_wire::FRAME_BYTES_MAX`]), reserves room for
//! exactly the rest of that frame and no more, and hands the whole frame to
//! [`decode_prefix`], which checks the CRC and the version before postcard reads a byte. So a
//! peer can make this side buffer at most one frame of at most `FRAME_BYTES_MAX` bytes plus
//! one socket read, and any error ends the connection (after a framing error the stream is
//! out of step and nothing after it can be trusted).
//!
//! One codec type serves the whole life of a connection: the decoded type `D` changes as the
//! handshake proceeds (`Hello`, `HelloReply`, settings, then the protocol messages, see
//! `Framed::map_codec`, which keeps the buffered bytes), while anything serializable can be
//! encoded at any time.

use std::fmt;
use std::marker::PhantomData;

use palisade_wire::{FRAME_HEADER_BYTES, decode_prefix, encode_into, peek_frame_len};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::TransportError;

/// A scratch buffer that grew past this is released after use, so one large frame does not
/// pin its memory for the life of the connection.
const SCRATCH_BYTES_KEPT_MAX: usize = 64 * 1024;

/// Decodes frames holding a `D`; encodes any serializable value as one frame.
pub struct WireCodec<D> {
    /// Where [`encode_into`] writes a frame before it is copied into the output buffer.
    scratch: Vec<u8>,
    _decoded: PhantomData<fn() -> D>,
}

impl<D> fmt::Debug for WireCodec<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WireCodec").field("scratch_bytes", &self.scratch.capacity()).finish()
    }
}

impl<D> Default for WireCodec<D> {
    fn default() -> Self {
        WireCodec { scratch: Vec::new(), _decoded: PhantomData }
    }
}

impl<D> WireCodec<D> {
    /// A codec with an empty scratch buffer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<D: DeserializeOwned> Decoder for WireCodec<D> {
    type Item = D;
    type Error = TransportError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<D>, TransportError> {
        let Some(frame_bytes) = peek_frame_len(src)? else {
            src.reserve(FRAME_HEADER_BYTES - src.len());
            return Ok(None);
        };
        if src.len() < frame_bytes {
            // Bounded by FRAME_BYTES_MAX: peek_frame_len has checked the declared length.
            src.reserve(frame_bytes - src.len());
            return Ok(None);
        }
        let (msg, consumed) = decode_prefix::<D>(src)?.expect("a whole frame is buffered");
        assert!(consumed == frame_bytes);
        src.advance(consumed);
        Ok(Some(msg))
    }
}

impl<D, T: Serialize> Encoder<T> for WireCodec<D> {
    type Error = TransportError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), TransportError> {
        self.scratch.clear();
        let result = encode_into(&item, &mut self.scratch);
        if result.is_ok() {
            dst.extend_from_slice(&self.scratch);
        }
        if self.scratch.capacity() > SCRATCH_BYTES_KEPT_MAX {
            self.scratch = Vec::new();
        }
        result?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use palisade_wire::{FRAME_BYTES_MAX, WireError, encode};

    use super::*;

    #[test]
    fn frames_split_anywhere_decode_once_each() {
        let mut codec = WireCodec::<(u32, String)>::new();
        let mut wire = BytesMut::new();
        for n in 0..3u32 {
            codec.encode((n, format!("m{n}")), &mut wire).unwrap();
        }
        let bytes = wire.to_vec();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in bytes {
            buf.extend_from_slice(&[byte]);
            while let Some(msg) = codec.decode(&mut buf).unwrap() {
                got.push(msg);
            }
        }
        assert_eq!(got, vec![(0, "m0".into()), (1, "m1".into()), (2, "m2".into())]);
        assert!(buf.is_empty());
    }

    #[test]
    fn a_huge_declared_length_fails_before_any_allocation() {
        let mut codec = WireCodec::<u32>::new();
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0][..]);
        let err = codec.decode(&mut buf).unwrap_err();
        assert!(matches!(err, TransportError::Wire(WireError::TooLong { .. })), "{err:?}");
        assert!(buf.capacity() < FRAME_BYTES_MAX);
    }

    #[test]
    fn reserve_never_exceeds_the_declared_frame() {
        let frame = encode(&vec![7u8; 100_000]).unwrap();
        let mut codec = WireCodec::<Vec<u8>>::new();
        let mut buf = BytesMut::from(&frame[..FRAME_HEADER_BYTES]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= frame.len());
        assert!(buf.capacity() < frame.len() * 2);
    }

    #[test]
    fn a_corrupt_frame_is_an_error_and_an_oversized_message_is_not_sent() {
        let mut frame = encode(&5u32).unwrap();
        let last = frame.len() - 1;
        frame[last] ^= 1;
        let mut codec = WireCodec::<u32>::new();
        let err = codec.decode(&mut BytesMut::from(&frame[..])).unwrap_err();
        assert!(matches!(err, TransportError::Wire(WireError::BadChecksum { .. })), "{err:?}");
        let mut out = BytesMut::new();
        let err = codec.encode(vec![0u8; FRAME_BYTES_MAX], &mut out).unwrap_err();
        assert!(matches!(err, TransportError::Wire(WireError::TooLong { .. })), "{err:?}");
        assert!(out.is_empty());
    }
}
