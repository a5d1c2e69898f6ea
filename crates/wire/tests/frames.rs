//! Property tests of the frame format, as the issue states them: every message survives an
//! encode/decode round trip; every single-bit flip of a frame is detected; every truncation is
//! detected (an error for whole-frame decoding, "need more bytes" for streaming); and decoding
//! arbitrary bytes, or arbitrary payloads behind a valid header and CRC, is total.

use palisade_wire::{
    FRAME_HEADER_BYTES, FrameDecoder, PROTOCOL_VERSION, WireError, decode, decode_prefix, encode,
    encode_into,
};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// A message shaped like the ones palisade sends: integers, strings, bytes, enums, options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Message {
    Append { term: u64, prev_index: u64, entries: Vec<Entry>, leader: Option<u32> },
    Vote { term: u64, granted: bool },
    Put { key: String, value: Vec<u8>, ttl_ms: Option<u32> },
    Delta(i64),
    Close,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    index: u64,
    kind: Kind,
    data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Kind {
    Normal,
    Config(Vec<u64>),
    Noop,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Normal),
        prop::collection::vec(any::<u64>(), 0..5).prop_map(Kind::Config),
        Just(Kind::Noop),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    (any::<u64>(), kind(), prop::collection::vec(any::<u8>(), 0..24))
        .prop_map(|(index, kind, data)| Entry { index, kind, data })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<u64>(), any::<u64>(), prop::collection::vec(entry(), 0..4), any::<Option<u32>>())
            .prop_map(|(term, prev_index, entries, leader)| Message::Append {
                term,
                prev_index,
                entries,
                leader
            }),
        (any::<u64>(), any::<bool>()).prop_map(|(term, granted)| Message::Vote { term, granted }),
        (".{0,16}", prop::collection::vec(any::<u8>(), 0..64), any::<Option<u32>>())
            .prop_map(|(key, value, ttl_ms)| Message::Put { key, value, ttl_ms }),
        any::<i64>().prop_map(Message::Delta),
        Just(Message::Close),
    ]
}

/// A frame with a correct length and CRC around any payload bytes.
fn frame_around(payload: &[u8]) -> Vec<u8> {
    let body_bytes = u32::try_from(1 + payload.len()).unwrap();
    let mut frame = body_bytes.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0; 4]);
    frame.push(PROTOCOL_VERSION);
    frame.extend_from_slice(payload);
    let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[..4]), &frame[FRAME_HEADER_BYTES..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame
}

proptest! {
    #[test]
    fn encode_then_decode_is_the_identity(
        msg in message(),
        tail in prop::collection::vec(any::<u8>(), 0..8),
    ) {
        let frame = encode(&msg).unwrap();
        prop_assert_eq!(decode::<Message>(&frame).unwrap(), msg.clone());
        let mut stream = frame.clone();
        stream.extend_from_slice(&tail);
        let (decoded, consumed) = decode_prefix::<Message>(&stream).unwrap().unwrap();
        prop_assert_eq!(decoded, msg);
        prop_assert_eq!(consumed, frame.len());
    }

    #[test]
    fn every_single_bit_flip_is_detected(msg in message()) {
        let frame = encode(&msg).unwrap();
        for bit in 0..frame.len() * 8 {
            let mut flipped = frame.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let result = decode::<Message>(&flipped);
            prop_assert!(result.is_err(), "flip of bit {} accepted: {:?}", bit, result);
            // Streaming: a longer declared length waits, anything else is an error. (A shorter
            // one is caught by the CRC, which covers the length bytes.)
            let streamed = decode_prefix::<Message>(&flipped);
            prop_assert!(matches!(streamed, Ok(None) | Err(_)), "bit {}: {:?}", bit, streamed);
        }
    }

    #[test]
    fn every_truncation_is_detected(msg in message()) {
        let frame = encode(&msg).unwrap();
        for cut in 0..frame.len() {
            let result = decode::<Message>(&frame[..cut]);
            prop_assert!(
                matches!(result, Err(WireError::Truncated { got, .. }) if got == cut),
                "cut at {}: {:?}", cut, result
            );
            prop_assert_eq!(decode_prefix::<Message>(&frame[..cut]), Ok(None));
        }
    }

    #[test]
    fn frame_decoder_yields_the_messages_for_any_chunking(
        msgs in prop::collection::vec(message(), 0..6),
        chunk_bytes in 1usize..40,
    ) {
        let mut stream = Vec::new();
        for msg in &msgs {
            encode_into(msg, &mut stream).unwrap();
        }
        let mut decoder = FrameDecoder::<Message>::new();
        let mut got = Vec::new();
        for chunk in stream.chunks(chunk_bytes) {
            prop_assert_eq!(decoder.handle_bytes(chunk), chunk.len());
            while let Some(msg) = decoder.poll_frame().unwrap() {
                got.push(msg);
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(decoder.buffered_bytes(), 0);
    }

    #[test]
    fn arbitrary_bytes_decode_to_a_value_or_an_error(
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = decode::<Message>(&bytes);
        let _ = decode_prefix::<Message>(&bytes);
        let mut decoder = FrameDecoder::<Message>::new();
        decoder.handle_bytes(&bytes);
        while let Ok(Some(_)) = decoder.poll_frame() {}
    }

    #[test]
    fn arbitrary_payloads_behind_a_valid_crc_decode_to_a_value_or_malformed(
        payload in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let frame = frame_around(&payload);
        match decode::<Message>(&frame) {
            // What decodes must survive its own round trip.
            Ok(msg) => prop_assert_eq!(decode::<Message>(&encode(&msg).unwrap()).unwrap(), msg),
            Err(error) => prop_assert!(matches!(error, WireError::Malformed(_)), "{:?}", error),
        }
    }
}
