//! Unit tests of the frame format: the exact layout, each error variant, the limits.

use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Msg {
    Ping(u64),
    Put { key: String, value: Vec<u8> },
    Nothing,
}

/// A frame with a correct length and CRC around any version byte and payload bytes.
fn raw_frame(version: u8, payload: &[u8]) -> Vec<u8> {
    let body_bytes = u32::try_from(1 + payload.len()).unwrap();
    let mut frame = body_bytes.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0; 4]);
    frame.push(version);
    frame.extend_from_slice(payload);
    let crc = frame_crc(&frame);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    frame
}

/// A header alone, declaring `body_bytes` after it, with a zero CRC.
fn header_claiming(body_bytes: u32) -> Vec<u8> {
    let mut frame = body_bytes.to_le_bytes().to_vec();
    frame.extend_from_slice(&[0; 4]);
    frame
}

#[test]
fn layout_is_length_crc_version_payload() {
    let frame = encode(&7u8).unwrap();
    assert_eq!(frame.len(), FRAME_BYTES_MIN + 1);
    assert_eq!(&frame[0..4], &2u32.to_le_bytes(), "length counts version + payload");
    let mut covered = 2u32.to_le_bytes().to_vec();
    covered.extend_from_slice(&[PROTOCOL_VERSION, 7]);
    assert_eq!(&frame[4..8], &crc32c::crc32c(&covered).to_le_bytes(), "crc covers the length");
    assert_eq!(frame[8], PROTOCOL_VERSION);
    assert_eq!(frame[9], 7);
    assert_eq!(frame, raw_frame(PROTOCOL_VERSION, &[7]));
}

#[test]
fn round_trip_whole_and_prefix() {
    let msgs = [Msg::Ping(u64::MAX), Msg::Put { key: "k".into(), value: vec![1, 2] }, Msg::Nothing];
    for msg in &msgs {
        let frame = encode(msg).unwrap();
        assert_eq!(decode::<Msg>(&frame).unwrap(), *msg);
        assert_eq!(peek_frame_len(&frame).unwrap(), Some(frame.len()));
        let (decoded, consumed) = decode_prefix::<Msg>(&frame).unwrap().unwrap();
        assert_eq!(decoded, *msg);
        assert_eq!(consumed, frame.len());
    }
}

#[test]
fn unit_payload_is_the_smallest_frame() {
    let frame = encode(&()).unwrap();
    assert_eq!(frame.len(), FRAME_BYTES_MIN);
    decode::<()>(&frame).unwrap();
}

#[test]
fn encode_into_appends_and_returns_the_frame_length() {
    let mut out = vec![0xAA, 0xBB];
    let first = encode_into(&Msg::Ping(1), &mut out).unwrap();
    let second = encode_into(&Msg::Nothing, &mut out).unwrap();
    assert_eq!(out.len(), 2 + first + second);
    assert_eq!(&out[..2], &[0xAA, 0xBB]);
    let (msg, consumed) = decode_prefix::<Msg>(&out[2..]).unwrap().unwrap();
    assert_eq!((msg, consumed), (Msg::Ping(1), first));
    assert_eq!(decode::<Msg>(&out[2 + first..]).unwrap(), Msg::Nothing);
}

#[test]
fn too_long_declared_length_is_refused_from_the_header() {
    for body_bytes in [u32::MAX, (FRAME_BODY_BYTES_MAX + 1) as u32] {
        let header = header_claiming(body_bytes);
        let expected =
            WireError::TooLong { len: u64::from(body_bytes) + 8, max: FRAME_BYTES_MAX as u64 };
        assert_eq!(peek_frame_len(&header), Err(expected.clone()));
        assert_eq!(decode_prefix::<Msg>(&header).map(|_| ()), Err(expected.clone()));
        assert_eq!(decode::<Msg>(&header), Err(expected));
    }
}

#[test]
fn largest_declared_length_is_waited_for() {
    let header = header_claiming(FRAME_BODY_BYTES_MAX as u32);
    assert_eq!(peek_frame_len(&header), Ok(Some(FRAME_BYTES_MAX)));
    assert_eq!(decode_prefix::<Msg>(&header), Ok(None));
    let truncated = WireError::Truncated { needed: FRAME_BYTES_MAX, got: FRAME_HEADER_BYTES };
    assert_eq!(decode::<Msg>(&header), Err(truncated));
}

#[test]
fn encode_accepts_exactly_the_maximum_and_refuses_one_more() {
    // Header, version byte, a 4-byte varint length, then the bytes themselves.
    let fits = vec![0x5Au8; FRAME_BYTES_MAX - FRAME_HEADER_BYTES - 1 - 4];
    let frame = encode(&fits).unwrap();
    assert_eq!(frame.len(), FRAME_BYTES_MAX);
    assert_eq!(decode::<Vec<u8>>(&frame).unwrap(), fits);

    let mut too_big = fits;
    too_big.push(0);
    let mut out = vec![1, 2, 3];
    let error = encode_into(&too_big, &mut out).unwrap_err();
    assert_eq!(error, WireError::TooLong { len: FRAME_BYTES_MAX as u64 + 1, max: 4 << 20 });
    assert_eq!(out, [1, 2, 3], "output restored after a refused frame");
}

#[test]
fn encode_measures_a_far_too_large_message_exactly() {
    let huge = vec![0u8; 3 * FRAME_BYTES_MAX];
    let error = encode(&huge).unwrap_err();
    // 8 header + 1 version + 4-byte varint of 12 MiB + the bytes.
    assert_eq!(error, WireError::TooLong { len: 13 + huge.len() as u64, max: 4 << 20 });
}

#[test]
fn encode_reports_a_failing_serialize_impl_as_malformed() {
    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("refused"))
        }
    }
    let mut out = vec![9];
    let error = encode_into(&Refuses, &mut out).unwrap_err();
    assert!(matches!(error, WireError::Malformed(_)), "{error:?}");
    assert_eq!(out, [9]);
}

#[test]
fn flipped_payload_bit_is_a_bad_checksum() {
    let mut frame = encode(&Msg::Ping(42)).unwrap();
    let stored = u32::from_le_bytes(frame[4..8].try_into().unwrap());
    *frame.last_mut().unwrap() ^= 0x01;
    let actual = frame_crc(&frame);
    assert_ne!(stored, actual);
    let expected = WireError::BadChecksum { expected: stored, actual };
    assert_eq!(decode::<Msg>(&frame), Err(expected.clone()));
    assert_eq!(decode_prefix::<Msg>(&frame).map(|_| ()), Err(expected));
}

#[test]
fn flipped_length_bit_is_caught_by_the_checksum_when_the_bytes_are_there() {
    let frame = encode(&Msg::Put { key: "key".into(), value: vec![7; 10] }).unwrap();
    // Shorten the declared length by one: the CRC no longer matches for the shorter frame.
    let declared = u32::from_le_bytes(frame[0..4].try_into().unwrap());
    assert_eq!(declared % 2, 1, "flipping bit 0 shortens the frame");
    let mut shorter = frame.clone();
    shorter[0] ^= 0x01;
    assert_eq!(u32::from_le_bytes(shorter[0..4].try_into().unwrap()), declared - 1);
    assert_eq!(decode::<Msg>(&shorter), Err(WireError::TrailingBytes));
    let result = decode_prefix::<Msg>(&shorter);
    assert!(matches!(result, Err(WireError::BadChecksum { .. })), "{result:?}");
}

#[test]
fn other_version_is_unknown_version() {
    let frame = raw_frame(PROTOCOL_VERSION + 1, &[0]);
    let expected = WireError::UnknownVersion { got: 2, supported: PROTOCOL_VERSION };
    assert_eq!(decode::<Msg>(&frame), Err(expected.clone()));
    assert_eq!(decode_prefix::<Msg>(&frame).map(|_| ()), Err(expected));
}

#[test]
fn truncated_header_and_truncated_body() {
    let frame = encode(&Msg::Ping(5)).unwrap();
    assert_eq!(decode::<Msg>(&[]), Err(WireError::Truncated { needed: 8, got: 0 }));
    assert_eq!(decode::<Msg>(&frame[..7]), Err(WireError::Truncated { needed: 8, got: 7 }));
    let needed = frame.len();
    let got = needed - 1;
    assert_eq!(decode::<Msg>(&frame[..got]), Err(WireError::Truncated { needed, got }));
    assert_eq!(decode_prefix::<Msg>(&frame[..got]), Ok(None));
    assert_eq!(peek_frame_len(&frame[..7]), Ok(None));
}

#[test]
fn invalid_payload_is_malformed() {
    // Variant index 9 does not exist in `Msg`.
    let result = decode::<Msg>(&raw_frame(PROTOCOL_VERSION, &[9]));
    assert!(matches!(result, Err(WireError::Malformed(_))), "{result:?}");
    // A bool must be 0 or 1.
    let result = decode::<bool>(&raw_frame(PROTOCOL_VERSION, &[2]));
    assert!(matches!(result, Err(WireError::Malformed(_))), "{result:?}");
    // A byte string claiming more bytes than the payload has.
    let result = decode::<Vec<u8>>(&raw_frame(PROTOCOL_VERSION, &[0xFF, 0xFF, 0x03, 1]));
    assert!(matches!(result, Err(WireError::Malformed(_))), "{result:?}");
    // Invalid UTF-8 in a string.
    let result = decode::<String>(&raw_frame(PROTOCOL_VERSION, &[1, 0xFF]));
    assert!(matches!(result, Err(WireError::Malformed(_))), "{result:?}");
}

#[test]
fn bytes_left_over_inside_the_payload_are_malformed() {
    let result = decode::<u8>(&raw_frame(PROTOCOL_VERSION, &[1, 2]));
    let expected = WireError::Malformed("1 bytes left over after the message".to_owned());
    assert_eq!(result, Err(expected));
}

#[test]
fn empty_body_is_malformed() {
    let mut frame = header_claiming(0);
    let crc = frame_crc(&frame);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
    let result = decode::<()>(&frame);
    assert!(matches!(result, Err(WireError::Malformed(_))), "{result:?}");
}

#[test]
fn bytes_after_the_frame_are_trailing_for_decode_and_left_for_decode_prefix() {
    let mut bytes = encode(&Msg::Ping(3)).unwrap();
    let frame_bytes = bytes.len();
    bytes.push(0);
    assert_eq!(decode::<Msg>(&bytes), Err(WireError::TrailingBytes));
    assert_eq!(decode_prefix::<Msg>(&bytes), Ok(Some((Msg::Ping(3), frame_bytes))));
}

#[test]
fn errors_display_their_numbers() {
    let error = WireError::TooLong { len: 9, max: 8 };
    assert_eq!(error.to_string(), "frame of 9 bytes exceeds the maximum of 8 bytes");
    let error = WireError::UnknownVersion { got: 3, supported: 1 };
    assert_eq!(error.to_string(), "unknown protocol version 3, this build speaks version 1");
}
