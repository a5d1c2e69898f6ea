//! The chapter's stories as scenarios (`palisade_sim::scenario`), with the facts each one
//! demonstrates asserted, and their reports rendered.
//!
//! - figure-8-5 (design: "Fencing, end to end"; invariant: a fenced store never accepts a
//!   token lower than one it accepted): A's stale write is rejected by the fenced store and
//!   is a lost update at the unchecked one.
//! - lww-clock-skew (design: "ordering events", HLC timestamps on versions): last-write-wins
//!   drops B's causally later write; the HLC register keeps it.

use palisade_sim::report::{BandKind, MarkKind, Timeline, render_html};
use palisade_sim::scenario::{self, DEFAULT_SEED, fencing, lww};

#[test]
fn figure_8_5_fences_off_the_paused_holder() {
    let seed = DEFAULT_SEED;
    println!("seed {seed}");
    let f = fencing::run(seed).expect("the story runs");
    for line in &f.story {
        println!("{line}");
    }
    assert_eq!(f.token_a, 33, "the warm-up puts the grant at log index 33, as in the book");
    assert!(f.token_b > f.token_a, "B's token {} is above A's {}", f.token_b, f.token_a);
    let (expired, granted) = (f.a_expired_index.expect("expired"), f.b_granted_index.unwrap());
    assert!(expired < granted, "A's expiry (entry {expired}) is applied before B's grant");
    assert_eq!(f.token_b, granted, "the token is the grant's log index");
    assert_eq!(f.fenced_rejected, Some((f.token_a, f.token_b)), "the fenced store rejects A");
    assert_eq!(f.lost_update_replaced.as_deref(), Some(fencing::B_VALUE), "B's update is lost");
    assert_eq!(f.fenced_final, Some((fencing::B_VALUE.to_vec(), Some(f.token_b))));
    assert_eq!(f.unchecked_final, Some((fencing::A_VALUE.to_vec(), Some(f.token_a))));
    // A's lease ran out on its own clock inside its pause; the leader's grant ended later,
    // through the log, and also before A woke.
    let (pause_start, pause_end) = f.a_pause;
    let client_end = f.a_lease_end_client.expect("A's client view ends");
    let leader_end = f.a_grant_end_leader.expect("the leader's view ends");
    assert!(pause_start < client_end && client_end < pause_end);
    assert!(client_end <= leader_end, "the client's view ends no later than the leader's");
    assert!(leader_end < pause_end, "A was expired while it slept");

    let tl = &f.timeline;
    let a_lane = tl.lanes.iter().position(|l| l.name == "client A").expect("A's lane");
    let has_band = |kind| tl.bands.iter().any(|b| b.lane == a_lane && b.kind == kind);
    assert!(has_band(BandKind::LeaseClientView));
    assert!(has_band(BandKind::LeaseServerView));
    assert!(has_band(BandKind::Pause));
    assert!(has_band(BandKind::LeaseUnaware), "A slept through the end of its lease");
    let marks = |kind| tl.marks.iter().filter(move |m| m.kind == kind);
    assert_eq!(marks(MarkKind::WriteRejected).count(), 1);
    assert_eq!(marks(MarkKind::LostUpdate).count(), 1);
    let grants: Vec<_> = marks(MarkKind::Grant).map(|m| m.label.clone()).collect();
    assert!(grants.iter().any(|g| g.contains(&format!("token {}", f.token_a))), "{grants:?}");
    assert!(grants.iter().any(|g| g.contains(&format!("token {}", f.token_b))), "{grants:?}");
    let html = render_html(tl, None);
    keep_report("figure-8-5", tl);
    assert!(html.contains(&format!(
        "REJECTED client A&#39;s write of file: token {} &lt; {}",
        f.token_a, f.token_b
    )));
    assert!(html.contains("LOST UPDATE"));
    assert!(html.contains(&seed.to_string()));
}

#[test]
fn lww_loses_the_causally_later_write_and_hlc_keeps_it() {
    let seed = DEFAULT_SEED;
    println!("seed {seed}");
    let r = lww::run(seed).expect("the story runs");
    for line in &r.story {
        println!("{line}");
    }
    let (a, b) = (r.a_write.expect("A wrote"), r.b_write.expect("B wrote"));
    assert_eq!((a.value, r.b_read, b.value), (1, Some(1), 2), "B read A's 1 and wrote 2");
    assert!(b.wall < a.wall, "n3's clock is behind: B's wall timestamp is the smaller one");
    assert!(b.hlc > a.hlc, "B's HLC timestamp respects causality");
    assert_eq!(r.lww_final, vec![Some(1); 3], "last-write-wins lost B's increment everywhere");
    assert_eq!(r.hlc_final, vec![Some(2); 3], "the HLC register kept it everywhere");
    let lost = r.timeline.marks.iter().filter(|m| m.kind == MarkKind::LostUpdate).count();
    assert_eq!(lost, 3, "one dropped write per replica");
    assert!(r.timeline.clock_offsets.iter().any(|o| o.offset <= -50_000_000));
    let html = render_html(&r.timeline, None);
    keep_report("lww-clock-skew", &r.timeline);
    assert!(html.contains("LWW drops x=2"));
}

#[test]
fn scenarios_replay_byte_for_byte_and_unknown_names_are_refused() {
    let one = scenario::run_scenario("lww-clock-skew", 7).expect("runs");
    let two = scenario::run_scenario("lww-clock-skew", 7).expect("runs");
    assert_eq!(one.timeline, two.timeline);
    assert_eq!(render_html(&one.timeline, None), render_html(&two.timeline, None));
    assert!(scenario::run_scenario("figure-8-6", 1).is_err());
    assert_eq!(scenario::SCENARIOS.len(), 2);
}

/// With `PALISADE_REPORT_DIR` set, writes the report there (to look at it in a browser).
fn keep_report(name: &str, tl: &Timeline) {
    if let Ok(dir) = std::env::var("PALISADE_REPORT_DIR") {
        let path = std::path::Path::new(&dir).join(format!("{name}.html"));
        std::fs::write(&path, render_html(tl, None)).expect("the report is written");
        println!("report: {}", path.display());
    }
}

#[test]
fn figure_8_5_holds_on_other_seeds() {
    for seed in 1..=6 {
        println!("seed {seed}");
        let f = fencing::run(seed).expect("the story runs");
        assert!(f.token_a >= 33, "seed {seed}: token {}", f.token_a);
        assert!(f.token_b > f.token_a, "seed {seed}");
        assert_eq!(f.fenced_rejected, Some((f.token_a, f.token_b)), "seed {seed}");
        assert_eq!(f.lost_update_replaced.as_deref(), Some(fencing::B_VALUE), "seed {seed}");
    }
}

#[test]
fn lww_holds_on_other_seeds() {
    for seed in 1..=6 {
        println!("seed {seed}");
        let r = lww::run(seed).expect("the story runs");
        assert_eq!(r.lww_final, vec![Some(1); 3], "seed {seed}");
        assert_eq!(r.hlc_final, vec![Some(2); 3], "seed {seed}");
    }
}
