//! A sans-IO streaming decoder: bytes in as they arrive, messages out as frames complete.
//!
//! A driver built on tokio-util can call [`crate::decode_prefix`] on its own buffer; this type
//! is for everything else (the simulator, tests, a blocking reader). It owns a buffer that is
//! bounded by [`FRAME_BYTES_MAX`]: since no frame is longer, a full buffer always holds a whole
//! frame or a header that is already an error, so [`FrameDecoder::poll_frame`] can always make
//! room. The first error is final: after a framing error the byte stream is out of step and
//! nothing after it can be trusted, so the decoder keeps returning that error.

use std::fmt;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;

use crate::{FRAME_BYTES_MAX, WireError, decode_prefix};

/// Turns a byte stream into messages of type `T`.
///
/// Call order: [`handle_bytes`](Self::handle_bytes) with what was read, then
/// [`poll_frame`](Self::poll_frame) until it returns `Ok(None)`; repeat. `handle_bytes`
/// accepts only as many bytes as fit; pass the rest again after polling.
pub struct FrameDecoder<T> {
    /// Bytes received; `buf[start..]` are not yet decoded.
    buf: Vec<u8>,
    /// Start of the undecoded bytes in `buf`.
    start: usize,
    /// The first error met; once set, the decoder is finished.
    failed: Option<WireError>,
    /// Frames decoded so far.
    frames_decoded: u64,
    _msg: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for FrameDecoder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("buffered_bytes", &self.buffered_bytes())
            .field("failed", &self.failed)
            .field("frames_decoded", &self.frames_decoded)
            .finish()
    }
}

impl<T> FrameDecoder<T> {
    /// Bytes accepted but not yet decoded.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The error that finished this decoder, if one did.
    pub fn error(&self) -> Option<&WireError> {
        self.failed.as_ref()
    }

    /// Frames decoded so far.
    pub fn frames_decoded(&self) -> u64 {
        self.frames_decoded
    }
}

impl<T> Default for FrameDecoder<T> {
    fn default() -> Self {
        Self { buf: Vec::new(), start: 0, failed: None, frames_decoded: 0, _msg: PhantomData }
    }
}

impl<T: DeserializeOwned> FrameDecoder<T> {
    /// A decoder with an empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes bytes read from the stream; returns how many were accepted (a prefix of
    /// `bytes`). Fewer than all are accepted only when the buffer would pass
    /// [`FRAME_BYTES_MAX`]: poll, then offer the rest again. After an error every byte is
    /// accepted and dropped.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> usize {
        if self.failed.is_some() {
            return bytes.len();
        }
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let room = FRAME_BYTES_MAX - self.buf.len();
        let accepted = bytes.len().min(room);
        self.buf.extend_from_slice(&bytes[..accepted]);
        assert!(self.buf.len() <= FRAME_BYTES_MAX);
        accepted
    }

    /// Returns the next whole message, `Ok(None)` if more bytes are needed.
    ///
    /// # Errors
    /// The errors of [`decode_prefix`]. The first one is returned again on every later call.
    pub fn poll_frame(&mut self) -> Result<Option<T>, WireError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let pending = &self.buf[self.start..];
        match decode_prefix::<T>(pending) {
            Ok(Some((msg, consumed))) => {
                self.start += consumed;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                self.frames_decoded += 1;
                Ok(Some(msg))
            }
            Ok(None) => {
                assert!(pending.len() < FRAME_BYTES_MAX, "a full buffer holds a whole frame");
                Ok(None)
            }
            Err(error) => {
                self.failed = Some(error.clone());
                self.buf = Vec::new();
                self.start = 0;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FRAME_HEADER_BYTES, encode, encode_into};

    #[test]
    fn byte_at_a_time_yields_each_frame_once() {
        let mut stream = Vec::new();
        for n in 0..5u64 {
            encode_into(&(n, format!("msg {n}")), &mut stream).unwrap();
        }
        let mut decoder = FrameDecoder::<(u64, String)>::new();
        let mut got = Vec::new();
        for byte in &stream {
            assert_eq!(decoder.handle_bytes(std::slice::from_ref(byte)), 1);
            while let Some(msg) = decoder.poll_frame().unwrap() {
                got.push(msg);
            }
        }
        let expected: Vec<_> = (0..5u64).map(|n| (n, format!("msg {n}"))).collect();
        assert_eq!(got, expected);
        assert_eq!(decoder.buffered_bytes(), 0);
        assert_eq!(decoder.frames_decoded(), 5);
    }

    #[test]
    fn a_full_buffer_always_yields_a_frame() {
        let big = vec![1u8; 3 << 20];
        let mut stream = encode(&big).unwrap();
        encode_into(&big, &mut stream).unwrap();
        let mut decoder = FrameDecoder::<Vec<u8>>::new();
        let mut offered = &stream[..];
        let mut frames = 0;
        while !offered.is_empty() {
            let accepted = decoder.handle_bytes(offered);
            assert!(decoder.buffered_bytes() <= FRAME_BYTES_MAX);
            offered = &offered[accepted..];
            while let Some(msg) = decoder.poll_frame().unwrap() {
                assert_eq!(msg, big);
                frames += 1;
            }
        }
        assert_eq!(frames, 2);
    }

    #[test]
    fn the_first_error_is_final() {
        let mut stream = encode(&1u32).unwrap();
        stream[FRAME_HEADER_BYTES] ^= 0xFF;
        encode_into(&2u32, &mut stream).unwrap();
        let mut decoder = FrameDecoder::<u32>::new();
        assert_eq!(decoder.handle_bytes(&stream), stream.len());
        let error = decoder.poll_frame().unwrap_err();
        assert!(matches!(error, WireError::BadChecksum { .. }), "{error:?}");
        assert_eq!(decoder.error(), Some(&error));
        assert_eq!(decoder.handle_bytes(&[0; 16]), 16);
        assert_eq!(decoder.poll_frame(), Err(error));
        assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn a_too_long_header_fails_before_the_body_arrives() {
        let mut decoder = FrameDecoder::<u32>::new();
        decoder.handle_bytes(&u32::MAX.to_le_bytes());
        assert_eq!(decoder.poll_frame(), Ok(None));
        decoder.handle_bytes(&[0; 4]);
        let error = decoder.poll_frame().unwrap_err();
        assert!(matches!(error, WireError::TooLong { .. }), "{error:?}");
    }
}
