//! Feeds arbitrary bytes to every decoding entry point of palisade-wire.
//!
//! The property is totality: no input panics, aborts or allocates without bound (libFuzzer's
//! `-rss_limit_mb` and `-malloc_limit_mb` catch the last). Inputs that do decode must survive a
//! re-encode and decode unchanged. Half the inputs get a valid header and CRC put in front of
//! them, so the fuzzer spends its time inside postcard rather than failing the checksum.

#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade_wire::{
    FRAME_BYTES_MAX, FRAME_HEADER_BYTES, FrameDecoder, Hello, HelloReply, PROTOCOL_VERSION, decode,
    decode_prefix, encode, peek_frame_len,
};
use serde::{Deserialize, Serialize};

/// A message with the shapes palisade's messages have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Message {
    Hello(Hello),
    Reply(HelloReply),
    Append { term: u64, entries: Vec<(u64, Vec<u8>)>, leader: Option<u32> },
    Put { key: String, value: Vec<u8>, ttl_ms: Option<u32> },
    Flags(bool, char, i64, [u8; 3]),
    Close,
}

/// A frame with a correct length and CRC around `payload` (which must fit in a frame).
fn frame_around(payload: &[u8]) -> Vec<u8> {
    let body_bytes = u32::try_from(1 + payload.len()).expect("payload fits a frame");
    let mut frame = body_bytes.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0; 4]);
    frame.push(PROTOCOL_VERSION);
    frame.extend_from_slice(payload);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[..4]), &frame[FRAME_HEADER_BYTES..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame
}

fn check_round_trip(msg: &Message) {
    let frame = encode(msg).expect("a decoded message re-encodes");
    assert!(frame.len() <= FRAME_BYTES_MAX);
    assert_eq!(decode::<Message>(&frame).as_ref(), Ok(msg));
}

fn exercise(bytes: &[u8]) {
    if let Ok(Some(frame_bytes)) = peek_frame_len(bytes) {
        assert!(frame_bytes >= FRAME_HEADER_BYTES);
        assert!(frame_bytes <= FRAME_BYTES_MAX);
    }
    if let Ok(msg) = decode::<Message>(bytes) {
        check_round_trip(&msg);
    }
    if let Ok(Some((msg, consumed))) = decode_prefix::<Message>(bytes) {
        assert!(consumed <= bytes.len());
        check_round_trip(&msg);
    }
    let _ = decode::<Hello>(bytes);
    let _ = decode::<HelloReply>(bytes);
    let mut decoder = FrameDecoder::<Message>::new();
    let mut offered = bytes;
    // Feed in two pieces to cross a frame boundary somewhere; every frame costs input bytes,
    // so the loops end.
    while !offered.is_empty() {
        let piece = &offered[..offered.len().div_ceil(2)];
        let accepted = decoder.handle_bytes(piece);
        offered = &offered[accepted..];
        while let Ok(Some(msg)) = decoder.poll_frame() {
            check_round_trip(&msg);
        }
        if decoder.error().is_some() {
            break;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if let Some((&selector, payload)) = data.split_first()
        && selector & 1 == 1
        && payload.len() < FRAME_BYTES_MAX - FRAME_HEADER_BYTES
    {
        exercise(&frame_around(payload));
    }
});
