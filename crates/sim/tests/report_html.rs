//! The HTML report (`palisade_sim::report::render_html`) on hand-built timelines: it draws
//! what the timeline holds (the rejected write, the tokens, the seed), escapes every label,
//! honours the window, caps the arrows it draws and says so, and renders an empty timeline.

use palisade_sim::report::{
    ARROWS_DRAWN_MAX, Arrow, ArrowFate, Band, BandKind, FaultWindow, LATENCY_POINTS_DRAWN_MAX,
    Lane, LaneKind, LatencyOutcome, LatencyPoint, MARKS_DRAWN_MAX, Mark, MarkKind, OffsetSample,
    Timeline, escape_html, render_html,
};

const SEC: u64 = 1_000_000_000;

fn lane(name: &str, kind: LaneKind) -> Lane {
    Lane { name: name.into(), kind }
}

fn mark(lane: usize, at: u64, kind: MarkKind, label: &str) -> Mark {
    Mark { lane, at, kind, label: label.into() }
}

fn band(lane: usize, start: u64, end: u64, kind: BandKind, label: &str) -> Band {
    Band { lane, start, end, kind, label: label.into() }
}

/// Figure 8-5 by hand: a grant with token 33, a pause, token 34, a rejected stale write.
fn figure() -> Timeline {
    Timeline {
        title: "figure 8-5 by hand".into(),
        seed: 4242,
        summary: vec!["A pauses past its TTL".into()],
        end: 20 * SEC,
        lanes: vec![
            lane("n1", LaneKind::Node),
            lane("client A", LaneKind::Client),
            lane("client B", LaneKind::Client),
            lane("store", LaneKind::Store),
        ],
        messages: vec![
            Arrow {
                from: 1,
                to: 0,
                sent: SEC,
                at: SEC + 1,
                fate: ArrowFate::Delivered,
                label: "acquire L".into(),
            },
            Arrow {
                from: 0,
                to: 1,
                sent: 2 * SEC,
                at: 2 * SEC + 5,
                fate: ArrowFate::Dropped,
                label: "lost reply".into(),
            },
            Arrow {
                from: 2,
                to: 0,
                sent: 3 * SEC,
                at: 3 * SEC + 5,
                fate: ArrowFate::Duplicated,
                label: "dup".into(),
            },
            Arrow {
                from: 2,
                to: 3,
                sent: 13 * SEC,
                at: 13 * SEC + 5,
                fate: ArrowFate::Corrupted,
                label: "bad crc".into(),
            },
            Arrow {
                from: 1,
                to: 3,
                sent: 14 * SEC,
                at: 14 * SEC + 9,
                fate: ArrowFate::Delivered,
                label: "write 33".into(),
            },
        ],
        bands: vec![
            band(1, 4 * SEC, 14 * SEC, BandKind::Pause, "A paused 10 s"),
            band(1, SEC, 7 * SEC, BandKind::LeaseClientView, "L token 33: client view"),
            band(1, SEC, 9 * SEC, BandKind::LeaseServerView, "L token 33: leader view"),
            band(0, 0, 20 * SEC, BandKind::Leader, "leader of term 2"),
            band(0, 0, 2 * SEC, BandKind::Partitioned, "cut from client B"),
        ],
        marks: vec![
            mark(1, SEC, MarkKind::Grant, "holds L: token 33"),
            mark(2, 10 * SEC, MarkKind::Grant, "holds L: token 34"),
            mark(3, 11 * SEC, MarkKind::WriteAccepted, "file = B (token 34)"),
            mark(3, 14 * SEC, MarkKind::WriteRejected, "REJECTED A's write: token 33 < 34"),
            mark(0, 0, MarkKind::Elected, "leader, term 2"),
        ],
        clock_offsets: vec![
            OffsetSample { lane: 0, at: 0, offset: 0 },
            OffsetSample { lane: 0, at: 10 * SEC, offset: 2_000_000 },
        ],
        latencies: vec![
            LatencyPoint {
                at: SEC,
                latency: 3_000_000,
                op: "acquire".into(),
                outcome: LatencyOutcome::Ok,
            },
            LatencyPoint {
                at: 15 * SEC,
                latency: 300_000_000,
                op: "put".into(),
                outcome: LatencyOutcome::Unknown,
            },
        ],
        fault_windows: vec![FaultWindow {
            start: 4 * SEC,
            end: 14 * SEC,
            label: "A paused".into(),
        }],
    }
}

#[test]
fn the_figure_shows_tokens_the_rejected_write_and_the_seed() {
    let html = render_html(&figure(), None);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<svg"));
    assert!(html.contains("4242"), "the seed is on the page");
    assert!(html.contains("figure 8-5 by hand"));
    assert!(html.contains("A pauses past its TTL"), "summary lines are on the page");
    assert!(html.contains("holds L: token 33"));
    assert!(html.contains("holds L: token 34"));
    assert!(html.contains(r#"class="k-rejected""#), "the rejected write is marked");
    assert!(html.contains("REJECTED A&#39;s write: token 33 &lt; 34"));
    assert!(html.contains(r#"class="b-lease-client""#));
    assert!(html.contains(r#"class="b-lease-server""#));
    assert!(html.contains(r#"class="b-pause""#));
    assert!(html.contains(r#"class="b-partition""#));
    assert!(html.contains(r#"class="m-cross""#), "a dropped message ends in a cross");
    assert!(html.contains(r#"class="m-dup""#));
    assert!(html.contains(r#"class="m-corrupt""#));
    assert!(html.contains(r#"class="lat-unknown""#), "the latency plot has the unknown point");
    assert!(html.contains(r#"class="fault-window""#));
    assert!(html.contains(r#"class="offset-line""#));
    assert!(html.contains("stale write rejected"), "the legend is on the page");
    assert!(!html.contains("<script"), "no scripts");
    assert!(!html.contains("src="), "no external assets");
}

#[test]
fn labels_are_escaped() {
    let mut tl = figure();
    tl.title = "<script>alert(1)</script>".into();
    tl.lanes[0].name = "n1 & <b>".into();
    tl.marks.push(mark(3, 12 * SEC, MarkKind::Note, "\"quoted\" <img src=x>"));
    tl.summary.push("<i>x</i>".into());
    let html = render_html(&tl, None);
    assert!(!html.contains("<script>"));
    assert!(!html.contains("<img"));
    assert!(!html.contains("<i>x</i>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("n1 &amp; &lt;b&gt;"));
    assert!(html.contains("&quot;quoted&quot; &lt;img src=x&gt;"));
    assert_eq!(escape_html("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&#39;");
}

#[test]
fn the_window_filters_what_is_drawn() {
    let tl = figure();
    let html = render_html(&tl, Some((9 * SEC, 12 * SEC)));
    assert!(html.contains("holds L: token 34"), "a mark inside the window");
    assert!(html.contains("file = B (token 34)"));
    assert!(!html.contains("holds L: token 33"), "a mark before the window");
    assert!(!html.contains("REJECTED"), "a mark after the window");
    assert!(!html.contains("acquire L"), "an arrow before the window");
    assert!(html.contains("A paused"), "a band overlapping the window is drawn");
    assert!(html.contains("9.000 s"));
}

#[test]
fn arrows_are_capped_and_the_page_says_so() {
    let mut tl = figure();
    let extra = ARROWS_DRAWN_MAX + 250;
    for i in 0..extra as u64 {
        let sent = i * 1_000_000;
        let fate = ArrowFate::Delivered;
        tl.messages.push(Arrow { from: 0, to: 2, sent, at: sent + 500, fate, label: "hb".into() });
    }
    let html = render_html(&tl, None);
    let drawn = html.matches(r#"<g class="msg">"#).count();
    assert_eq!(drawn, ARROWS_DRAWN_MAX);
    let omitted = tl.messages.len() - ARROWS_DRAWN_MAX;
    assert!(html.contains(&format!("{omitted} message arrows in this window were not drawn")));
    assert!(html.contains("--window"));
    assert!(html.contains("lost reply"), "unusual fates are kept under the cap");
    assert!(html.contains("bad crc"));
}

#[test]
fn an_empty_timeline_renders() {
    let html = render_html(&Timeline::default(), None);
    assert!(html.contains("<svg"));
    assert!(html.contains("no lanes in this timeline"));
    assert!(html.contains("no operations"));
    assert!(html.ends_with("</html>\n"));
}

#[test]
fn marks_and_points_are_capped_keeping_the_ones_that_matter() {
    let mut tl = figure();
    for i in 0..(MARKS_DRAWN_MAX as u64 + 100) {
        tl.marks.push(mark(0, i * 1_000_000, MarkKind::Note, "keepalive"));
    }
    for i in 0..(LATENCY_POINTS_DRAWN_MAX as u64 * 2) {
        let outcome = if i == 7 { LatencyOutcome::Unknown } else { LatencyOutcome::Ok };
        let op = "get".to_string();
        tl.latencies.push(LatencyPoint { at: i * 1_000, latency: 1_000_000, op, outcome });
    }
    let html = render_html(&tl, None);
    assert_eq!(html.matches(r#"<g class="mark">"#).count(), MARKS_DRAWN_MAX);
    assert_eq!(html.matches(r#"<g class="pt">"#).count(), LATENCY_POINTS_DRAWN_MAX);
    assert!(html.contains("REJECTED A&#39;s write"), "the rejected write survives the cap");
    assert!(html.contains(r#"class="lat-unknown""#), "unknown outcomes survive the cap");
    assert!(html.contains("marks and latency points in this window were not drawn"));
}
