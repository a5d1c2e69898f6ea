//! The allocation bound, measured: a header claiming 4 GiB is refused without allocating, and
//! hostile payloads behind a valid CRC never make the decoder allocate more than
//! `FRAME_BYTES_MAX` beyond what the caller already holds.
//!
//! A counting global allocator (`cap`) records the peak of live heap bytes. The peak only ever
//! rises, so this file holds a single test that runs its checks from the smallest budget to the
//! largest; a check can fail wrongly if an earlier step peaked higher, but never pass wrongly.

use std::alloc::System;

use cap::Cap;
use palisade_wire::{
    FRAME_BYTES_MAX, FRAME_HEADER_BYTES, FrameDecoder, PROTOCOL_VERSION, WireError, decode,
    decode_prefix, peek_frame_len,
};
use serde::{Deserialize, Serialize};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

#[derive(Debug, Serialize, Deserialize)]
enum Message {
    Put { key: String, value: Vec<u8> },
    Blob(Vec<u8>),
}

/// A frame with a correct length and CRC around `payload`, allocated exactly once.
fn frame_around(payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(FRAME_HEADER_BYTES + 1 + payload.len());
    frame.extend_from_slice(&u32::try_from(1 + payload.len()).unwrap().to_le_bytes());
    frame.extend_from_slice(&[0; 4]);
    frame.push(PROTOCOL_VERSION);
    frame.extend_from_slice(payload);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[..4]), &frame[FRAME_HEADER_BYTES..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame
}

/// Runs `decode_all` and asserts the peak of live heap bytes stayed within `budget` of what
/// was live before.
fn assert_peak_within(budget: usize, what: &str, decode_all: impl FnOnce()) {
    let before = ALLOCATOR.allocated();
    decode_all();
    let peak = ALLOCATOR.max_allocated();
    assert!(peak <= before + budget, "{what}: peak {peak} > {before} live + budget {budget}");
}

fn decode_slices(frame: &[u8]) {
    assert!(decode::<Message>(frame).is_err());
    assert!(decode_prefix::<Message>(frame).is_err());
}

fn decode_streaming(frame: &[u8]) {
    let mut decoder = FrameDecoder::<Message>::new();
    assert_eq!(decoder.handle_bytes(frame), frame.len());
    assert!(decoder.poll_frame().is_err());
}

#[test]
fn decoding_never_allocates_past_the_frame_bound() {
    // 1. A header claiming 4 GiB: refused from 8 bytes, with (nearly) nothing allocated.
    let mut header = u32::MAX.to_le_bytes().to_vec();
    header.extend_from_slice(&[0; 4]);
    assert_peak_within(64 << 10, "4 GiB header", || {
        let too_long = WireError::TooLong { len: (4 << 30) + 7, max: FRAME_BYTES_MAX as u64 };
        assert_eq!(peek_frame_len(&header), Err(too_long.clone()));
        assert_eq!(decode::<Message>(&header).unwrap_err(), too_long);
        decode_slices(&header);
        decode_streaming(&header);
    });

    // 2. Small frames whose payload claims huge lengths: nothing is reserved on their word.
    let huge_string = frame_around(&[0, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, b'k']);
    let huge_bytes = frame_around(&[1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2, 3]);
    assert_peak_within(64 << 10, "small frames claiming 4 GiB fields", || {
        for frame in [&huge_string, &huge_bytes] {
            decode_slices(frame);
            decode_streaming(frame);
        }
    });

    // 3. A frame of the largest size whose byte string claims more than is there: the
    //    decoder reads (and grows a Vec for) what is present, then fails at the end.
    let mut payload = vec![1, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];
    payload.resize(FRAME_BYTES_MAX - FRAME_HEADER_BYTES - 1, 0xAB);
    let lying = frame_around(&payload);
    assert_eq!(lying.len(), FRAME_BYTES_MAX);
    // 4. The same frame, honest: a byte string of exactly the bytes that are there.
    let blob_bytes = FRAME_BYTES_MAX - FRAME_HEADER_BYTES - 1 - 1 - 4;
    payload.truncate(1);
    let mut len = blob_bytes;
    while len >= 0x80 {
        payload.push((len as u8) | 0x80);
        len >>= 7;
    }
    payload.push(len as u8);
    payload.resize(FRAME_BYTES_MAX - FRAME_HEADER_BYTES - 1, 0xCD);
    let honest = frame_around(&payload);
    drop(payload);
    assert_eq!(honest.len(), FRAME_BYTES_MAX);
    assert_peak_within(FRAME_BYTES_MAX, "largest frames, from the caller's slice", || {
        decode_slices(&lying);
        let Message::Blob(blob) = decode::<Message>(&honest).unwrap() else { panic!() };
        assert_eq!(blob.len(), blob_bytes);
    });
    // The FrameDecoder copies the bytes into its own buffer: one more frame's worth.
    assert_peak_within(2 * FRAME_BYTES_MAX, "largest frame, through a FrameDecoder", || {
        decode_streaming(&lying);
    });
}
