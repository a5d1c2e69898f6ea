//! Unit tests of [`super::Hlc`] and [`super::Lamport`], case by case as in Kulkarni et al. 2014,
//! figure 5; the properties (strictly increasing, happens-before) are in `tests/hlc_props.rs`.

use super::*;

fn pt(nanos: u64) -> WallTime {
    WallTime::from_nanos(nanos)
}

fn ts(wall_nanos: u64, logical: u32) -> HlcTimestamp {
    HlcTimestamp::new(wall_nanos, logical)
}

#[test]
fn local_events_follow_the_physical_clock_and_count_when_it_stalls() {
    let mut hlc = Hlc::new();
    assert_eq!(hlc.now(pt(10)), ts(10, 0));
    assert_eq!(hlc.now(pt(10)), ts(10, 1), "same reading: the counter breaks the tie");
    assert_eq!(hlc.now(pt(12)), ts(12, 0), "physical time moved on: counter resets");
    assert_eq!(hlc.now(pt(3)), ts(12, 1), "a backward step does not move l back");
    assert_eq!(hlc.now(pt(3)), ts(12, 2));
    assert_eq!(hlc.last(), ts(12, 2));
}

#[test]
fn receive_takes_the_largest_l_and_counts_past_it() {
    // Remote ahead of everything: l = l_m, c = c_m + 1.
    let mut hlc = Hlc::resume(ts(10, 4), None);
    assert_eq!(hlc.update(pt(11), ts(20, 7)), Ok(ts(20, 8)));
    // Own l largest: c + 1.
    assert_eq!(hlc.update(pt(11), ts(15, 9)), Ok(ts(20, 9)));
    // Both equal: max(c, c_m) + 1.
    assert_eq!(hlc.update(pt(11), ts(20, 30)), Ok(ts(20, 31)));
    // Physical reading ahead of both: c = 0.
    assert_eq!(hlc.update(pt(25), ts(20, 99)), Ok(ts(25, 0)));
}

#[test]
fn max_offset_refuses_a_remote_too_far_ahead_and_leaves_the_clock_alone() {
    let mut hlc = Hlc::with_max_offset(Some(Duration::from_nanos(100)));
    hlc.now(pt(1_000));
    assert_eq!(hlc.update(pt(1_000), ts(1_100, 5)), Ok(ts(1_100, 6)), "exactly max: accepted");
    let far = ts(1_201, 0);
    assert_eq!(
        hlc.update(pt(1_100), far),
        Err(HlcError::RemoteAhead {
            remote: far,
            ahead: Duration::from_nanos(101),
            max_offset: Duration::from_nanos(100)
        })
    );
    assert_eq!(hlc.last(), ts(1_100, 6));
    hlc.set_max_offset(None);
    assert_eq!(hlc.max_offset(), None);
    assert_eq!(hlc.update(pt(1_100), far), Ok(ts(1_201, 1)));
}

#[test]
fn out_of_range_inputs_are_refused_or_clamped() {
    let mut hlc = Hlc::new();
    let remote = ts(HLC_WALL_NANOS_MAX + 1, 0);
    assert_eq!(hlc.update(pt(5), remote), Err(HlcError::RemoteOutOfRange { remote }));
    assert_eq!(hlc.last(), HlcTimestamp::ZERO);
    assert_eq!(hlc.now(pt(u64::MAX)), ts(HLC_WALL_NANOS_MAX, 0), "a physical reading is clamped");
}

#[test]
fn counter_overflow_carries_into_the_wall_time() {
    let mut hlc = Hlc::resume(ts(100, u32::MAX - 1), None);
    assert_eq!(hlc.now(pt(50)), ts(100, u32::MAX));
    assert_eq!(hlc.now(pt(50)), ts(101, 0));
    let mut hlc = Hlc::resume(ts(100, 5), None);
    assert_eq!(hlc.update(pt(50), ts(100, u32::MAX)), Ok(ts(101, 0)));
    assert_eq!(hlc.update(pt(50), ts(101, u32::MAX)), Ok(ts(102, 0)));
}

#[test]
fn timestamps_order_lexicographically_and_print_and_parse() {
    assert!(ts(1, u32::MAX) < ts(2, 0));
    assert!(ts(2, 0) < ts(2, 1));
    let t = ts(1_700_000_000_000_000_000, 3);
    assert_eq!(t.to_string(), "1700000000000000000+3");
    assert_eq!("1700000000000000000+3".parse(), Ok(t));
    assert_eq!(t.wall(), WallTime::from_nanos(1_700_000_000_000_000_000));
    let bad = "12:3".parse::<HlcTimestamp>();
    assert_eq!(bad, Err(HlcError::Parse { text: "12:3".to_owned() }));
    assert!("1+4294967296".parse::<HlcTimestamp>().is_err(), "logical beyond u32");
}

#[test]
fn timestamps_survive_serde() {
    let t = ts(42, 7);
    let json = serde_json::to_string(&t).expect("serialize");
    assert_eq!(json, r#"{"wall_nanos":42,"logical":7}"#);
    assert_eq!(serde_json::from_str::<HlcTimestamp>(&json).expect("deserialize"), t);
}

#[test]
fn lamport_ticks_and_jumps_past_remote_values() {
    let mut clock = Lamport::new();
    assert_eq!(clock.tick(), 1);
    assert_eq!(clock.tick(), 2);
    assert_eq!(clock.update(10), 11);
    assert_eq!(clock.update(3), 12, "an old remote value still advances the clock");
    assert_eq!(clock.current(), 12);
    let refused = clock.try_update(LAMPORT_VALUE_MAX + 1);
    assert_eq!(
        refused,
        Err(HlcError::LamportOutOfRange { remote: LAMPORT_VALUE_MAX + 1, max: LAMPORT_VALUE_MAX })
    );
    assert_eq!(clock.current(), 12);
    assert_eq!(clock.try_update(LAMPORT_VALUE_MAX), Ok(LAMPORT_VALUE_MAX + 1));
}

#[test]
#[should_panic(expected = "above the maximum")]
fn lamport_update_panics_on_an_out_of_range_value() {
    Lamport::new().update(u64::MAX);
}
