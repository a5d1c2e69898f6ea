//! [`render_html`]: a [`Timeline`] as one self-contained HTML page.
//!
//! The page must open anywhere a report is attached — a CI artifact, an issue, a laptop on a
//! plane — so it carries everything inline: the CSS in a `<style>`, the figures as inline SVG,
//! no scripts, no fonts, no external assets. Hovering any arrow, band, mark or point shows its
//! full label through SVG `<title>`, which every browser renders without JavaScript.
//!
//! Everything a run produced goes through [`escape_html`] before it reaches the page: labels
//! carry keys and values that clients chose, and a report must never run what it shows.
//!
//! Long runs have tens of thousands of messages; drawing them all gives a grey smear and a
//! page the browser struggles with. At most [`ARROWS_DRAWN_MAX`] arrows are drawn (dropped,
//! duplicated and corrupted ones first, then delivered ones in time order), and the page says
//! how many were left out and suggests a window (`--window`), which shows a slice of the run
//! at full detail.

use std::fmt::Write;

use super::lanes::{self, LaneBox};
use super::plots;
use super::svg::{NANOS_PER_SEC, Scale, duration_label, time_axis};
use super::timeline::{
    Arrow, ArrowFate, Band, BandKind, FaultWindow, LatencyOutcome, LatencyPoint, Mark, MarkKind,
    Nanos, OffsetSample, Timeline,
};

/// Most message arrows one page draws; the rest are counted and reported on the page.
pub const ARROWS_DRAWN_MAX: usize = 1500;
/// Most marks one page draws (violations, rejected writes and lost updates first).
pub const MARKS_DRAWN_MAX: usize = 2000;
/// Most latency points one page draws (failed and unknown ones first, then evenly spread).
pub const LATENCY_POINTS_DRAWN_MAX: usize = 5000;
/// Width of the figures.
const FIGURE_WIDTH_PX: f64 = 1360.0;
/// Left gutter for lane names.
const GUTTER_PX: f64 = 150.0;
/// Right margin (room for the last tick label).
const RIGHT_MARGIN_PX: f64 = 30.0;
/// Height of the time axis above the lanes.
const AXIS_PX: f64 = 28.0;

/// Escapes `s` for HTML text and attribute values (`&`, `<`, `>`, `"`, `'`).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// What one page draws: the timeline's items that fall in the window, arrows capped.
#[derive(Debug)]
pub(crate) struct View<'a> {
    /// The whole timeline (lanes, title, seed, summary).
    pub timeline: &'a Timeline,
    /// The time scale of every figure.
    pub scale: Scale,
    /// Arrows to draw.
    pub arrows: Vec<&'a Arrow>,
    /// Arrows in the window that were not drawn.
    pub arrows_omitted: usize,
    /// Bands overlapping the window, clipped to it.
    pub bands: Vec<Band>,
    /// Marks in the window (capped).
    pub marks: Vec<&'a Mark>,
    /// Marks and latency points in the window that were not drawn.
    pub others_omitted: usize,
    /// Clock samples in the window.
    pub offsets: Vec<&'a OffsetSample>,
    /// Latency points whose invocation is in the window.
    pub latencies: Vec<&'a LatencyPoint>,
    /// Fault windows overlapping the window, clipped to it.
    pub fault_windows: Vec<FaultWindow>,
}

impl<'a> View<'a> {
    fn new(tl: &'a Timeline, window: Option<(u64, u64)>) -> Self {
        let (a, b) = window.unwrap_or((0, tl.end));
        let b = b.max(a + 1);
        let scale = Scale { a, b, x0: GUTTER_PX, x1: FIGURE_WIDTH_PX - RIGHT_MARGIN_PX };
        let lanes = tl.lanes.len();
        let in_lanes = |a: &&Arrow| a.from < lanes && a.to < lanes;
        let mut arrows: Vec<&Arrow> = tl
            .messages
            .iter()
            .filter(in_lanes)
            .filter(|m| scale.overlaps(m.sent.min(m.at), m.sent.max(m.at)))
            .collect();
        // Unusual fates first, so a cap never hides a dropped or corrupted message.
        arrows.sort_by_key(|m| (m.fate == ArrowFate::Delivered, m.sent, m.at));
        let arrows_omitted = arrows.len().saturating_sub(ARROWS_DRAWN_MAX);
        arrows.truncate(ARROWS_DRAWN_MAX);
        arrows.sort_by_key(|m| (m.sent, m.at));
        let clip = |start: Nanos, end: Nanos| (start.max(a), end.min(b));
        let bands = tl
            .bands
            .iter()
            .filter(|x| x.lane < lanes && scale.overlaps(x.start, x.end))
            .map(|x| {
                let (start, end) = clip(x.start, x.end);
                Band { start, end, ..x.clone() }
            })
            .collect();
        let mut marks: Vec<&Mark> =
            tl.marks.iter().filter(|m| m.lane < lanes && scale.contains(m.at)).collect();
        marks.sort_by_key(|m| (mark_rank(m.kind), m.at));
        let mut others_omitted = marks.len().saturating_sub(MARKS_DRAWN_MAX);
        marks.truncate(MARKS_DRAWN_MAX);
        marks.sort_by_key(|m| m.at);
        let latencies = thin_latencies(tl, &scale);
        others_omitted += tl.latencies.iter().filter(|p| scale.contains(p.at)).count();
        others_omitted -= latencies.len();
        let fault_windows = tl
            .fault_windows
            .iter()
            .filter(|w| scale.overlaps(w.start, w.end))
            .map(|w| {
                let (start, end) = clip(w.start, w.end);
                FaultWindow { start, end, label: w.label.clone() }
            })
            .collect();
        View {
            timeline: tl,
            scale,
            arrows,
            arrows_omitted,
            bands,
            marks,
            offsets: tl.clock_offsets.iter().filter(|o| scale.contains(o.at)).collect(),
            others_omitted,
            latencies,
            fault_windows,
        }
    }
}

/// Marks that must survive a cap come first.
fn mark_rank(kind: MarkKind) -> u8 {
    match kind {
        MarkKind::Violation | MarkKind::WriteRejected | MarkKind::LostUpdate => 0,
        MarkKind::Grant | MarkKind::Elected | MarkKind::Release | MarkKind::ClockChange => 1,
        MarkKind::WriteAccepted => 2,
        MarkKind::Note => 3,
    }
}

/// The latency points to draw: every failed or unknown one (up to the cap), then successful
/// ones evenly spread over the run.
fn thin_latencies<'a>(tl: &'a Timeline, scale: &Scale) -> Vec<&'a LatencyPoint> {
    let inside: Vec<&LatencyPoint> = tl.latencies.iter().filter(|p| scale.contains(p.at)).collect();
    if inside.len() <= LATENCY_POINTS_DRAWN_MAX {
        return inside;
    }
    let (mut keep, ok): (Vec<_>, Vec<_>) =
        inside.into_iter().partition(|p| p.outcome != LatencyOutcome::Ok);
    keep.truncate(LATENCY_POINTS_DRAWN_MAX);
    let room = LATENCY_POINTS_DRAWN_MAX - keep.len();
    let n = ok.len();
    keep.extend((0..room.min(n)).map(|k| ok[k * n / room.min(n)]));
    keep.sort_by_key(|p| p.at);
    keep
}

/// Renders `timeline` as a self-contained HTML page (inline SVG and CSS, no scripts, no
/// external assets). `window` restricts every figure to `[a, b)` nanoseconds of simulated
/// time; `None` draws the whole run.
pub fn render_html(timeline: &Timeline, window: Option<(u64, u64)>) -> String {
    let view = View::new(timeline, window);
    let mut out = String::with_capacity(64 * 1024);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(out, "<title>{}</title>", escape_html(&timeline.title));
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    header(&mut out, &view);
    legend(&mut out, timeline);
    figures(&mut out, &view);
    out.push_str("</body>\n</html>\n");
    out
}

fn header(out: &mut String, view: &View<'_>) {
    let tl = view.timeline;
    let _ = writeln!(out, "<h1>{}</h1>", escape_html(&tl.title));
    let s = view.scale;
    let _ = writeln!(
        out,
        "<p class=\"meta\">seed <b class=\"seed\">{}</b> · run length {} · \
         showing {:.3} s – {:.3} s",
        tl.seed,
        duration_label(tl.end),
        s.a as f64 / NANOS_PER_SEC,
        s.b as f64 / NANOS_PER_SEC
    );
    let _ = writeln!(
        out,
        " · {} lanes, {} messages, {} marks</p>",
        tl.lanes.len(),
        tl.messages.len(),
        tl.marks.len()
    );
    if !tl.summary.is_empty() {
        out.push_str("<ul class=\"summary\">\n");
        for line in &tl.summary {
            let _ = writeln!(out, "<li>{}</li>", escape_html(line));
        }
        out.push_str("</ul>\n");
    }
    if view.arrows_omitted > 0 {
        let _ = writeln!(
            out,
            "<p class=\"notice\">{} message arrows in this window were not drawn (at most {} \
             are: dropped, duplicated and corrupted ones first). Narrow the window to see them \
             all, e.g. <code>--window {:.1}s..{:.1}s</code>.</p>",
            view.arrows_omitted,
            ARROWS_DRAWN_MAX,
            s.a as f64 / NANOS_PER_SEC,
            (s.a as f64 + (s.b - s.a) as f64 / 10.0) / NANOS_PER_SEC
        );
    }
    if view.others_omitted > 0 {
        let _ = writeln!(
            out,
            "<p class=\"notice\">{} marks and latency points in this window were not drawn \
             (at most {MARKS_DRAWN_MAX} marks and {LATENCY_POINTS_DRAWN_MAX} points are). \
             Narrow the window with <code>--window</code> to see them all.</p>",
            view.others_omitted
        );
    }
}

/// What a legend entry stands for: it is shown only if the timeline has one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Msg(ArrowFate),
    Band(BandKind),
    Mark(MarkKind),
    Fault,
}

impl Key {
    fn used_in(self, tl: &Timeline) -> bool {
        match self {
            Key::Msg(f) => tl.messages.iter().any(|m| m.fate == f),
            Key::Band(k) => tl.bands.iter().any(|b| b.kind == k),
            Key::Mark(k) => tl.marks.iter().any(|m| m.kind == k),
            Key::Fault => !tl.fault_windows.is_empty(),
        }
    }
}

/// The legend entries: swatch SVG, text, and what it stands for.
const LEGEND: &[(&str, &str, Key)] = &[
    (
        r#"<line x1="2" y1="14" x2="30" y2="4" class="m-ok" marker-end="url(#ah-ok)"/>"#,
        "message",
        Key::Msg(ArrowFate::Delivered),
    ),
    (
        concat!(
            r#"<line x1="2" y1="14" x2="22" y2="8" class="m-dropped"/>"#,
            r#"<path d="M18,4l8,8m0,-8l-8,8" class="m-cross"/>"#
        ),
        "dropped message",
        Key::Msg(ArrowFate::Dropped),
    ),
    (
        r#"<line x1="2" y1="14" x2="30" y2="4" class="m-dup" marker-end="url(#ah-dup)"/>"#,
        "duplicate",
        Key::Msg(ArrowFate::Duplicated),
    ),
    (
        r#"<line x1="2" y1="14" x2="30" y2="4" class="m-corrupt" marker-end="url(#ah-corrupt)"/>"#,
        "corrupted (CRC)",
        Key::Msg(ArrowFate::Corrupted),
    ),
    (
        r#"<rect x="1" y="1" width="30" height="16" class="b-pause"/>"#,
        "pause",
        Key::Band(BandKind::Pause),
    ),
    (
        r#"<rect x="1" y="1" width="30" height="16" class="b-down"/>"#,
        "crashed",
        Key::Band(BandKind::Down),
    ),
    (
        r#"<rect x="1" y="1" width="30" height="16" class="b-partition"/>"#,
        "partitioned",
        Key::Band(BandKind::Partitioned),
    ),
    (
        r#"<rect x="1" y="6" width="30" height="7" class="b-leader"/>"#,
        "leader",
        Key::Band(BandKind::Leader),
    ),
    (
        r#"<rect x="1" y="4" width="30" height="10" class="b-lease-client"/>"#,
        "lease, client view",
        Key::Band(BandKind::LeaseClientView),
    ),
    (
        r#"<rect x="1" y="4" width="30" height="10" class="b-lease-server"/>"#,
        "lease, leader view",
        Key::Band(BandKind::LeaseServerView),
    ),
    (
        r#"<rect x="1" y="4" width="30" height="10" class="b-jeopardy"/>"#,
        "lease in jeopardy",
        Key::Band(BandKind::Jeopardy),
    ),
    (
        r#"<rect x="1.5" y="4.5" width="29" height="9" class="b-lease-unaware"/>"#,
        "lease over, client unaware",
        Key::Band(BandKind::LeaseUnaware),
    ),
    (
        r#"<path d="M16,3l6,6l-6,6l-6,-6z" class="k-grant"/>"#,
        "grant (token)",
        Key::Mark(MarkKind::Grant),
    ),
    (
        r#"<circle cx="16" cy="9" r="5.5" class="k-accepted"/>"#,
        "write accepted",
        Key::Mark(MarkKind::WriteAccepted),
    ),
    (
        concat!(
            r#"<circle cx="16" cy="9" r="7" class="k-rejected"/>"#,
            r#"<path d="M12.5,5.5l7,7m0,-7l-7,7" class="k-rejected-x"/>"#
        ),
        "stale write rejected",
        Key::Mark(MarkKind::WriteRejected),
    ),
    (
        r#"<path d="M16,2l8,14h-16z" class="k-lost"/>"#,
        "lost update",
        Key::Mark(MarkKind::LostUpdate),
    ),
    (
        r#"<path d="M10,14l3,-9l3,5l3,-5l3,9z" class="k-elected"/>"#,
        "elected",
        Key::Mark(MarkKind::Elected),
    ),
    (
        r#"<circle cx="16" cy="9" r="6" class="k-clock"/>"#,
        "clock change",
        Key::Mark(MarkKind::ClockChange),
    ),
    (
        r#"<path d="M16,1l9,16h-18z" class="k-violation"/>"#,
        "violation",
        Key::Mark(MarkKind::Violation),
    ),
    (
        r#"<rect x="1" y="1" width="30" height="16" class="fault-window"/>"#,
        "fault active",
        Key::Fault,
    ),
    (r#"<circle cx="16" cy="9" r="3.5" class="k-note"/>"#, "note", Key::Mark(MarkKind::Note)),
];

fn legend(out: &mut String, tl: &Timeline) {
    out.push_str("<div class=\"legend\">");
    for (svg, label, _) in LEGEND.iter().filter(|e| e.2.used_in(tl)) {
        out.push_str(r#"<span class="key"><svg width="32" height="18" viewBox="0 0 32 18">"#);
        let _ = write!(out, "{svg}</svg>{label}</span>");
    }
    out.push_str("</div>\n");
}

fn figures(out: &mut String, view: &View<'_>) {
    let kinds: Vec<_> = view.timeline.lanes.iter().map(|l| l.kind).collect();
    let boxes: Vec<LaneBox> = lanes::layout(&kinds, AXIS_PX);
    let lanes_bottom = boxes.last().map_or(AXIS_PX + 40.0, |b| b.bottom);
    let latency_top = lanes_bottom + 16.0;
    let offsets_top = latency_top + plots::latency_height() + 10.0;
    let height = offsets_top + plots::offsets_height();
    let s = view.scale;
    let _ = write!(
        out,
        r#"<svg class="figure" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h:.0}" "#,
        w = FIGURE_WIDTH_PX,
        h = height
    );
    let _ = write!(out, r#"viewBox="0 0 {FIGURE_WIDTH_PX} {height:.0}">"#);
    let _ = write!(
        out,
        r#"<defs>{MARKERS}<clipPath id="plot-clip"><rect x="{:.1}" y="0" width="{:.1}" "#,
        s.x0 - 1.0,
        s.x1 - s.x0 + 2.0
    );
    let _ = write!(out, r#"height="{height:.0}"/></clipPath></defs>"#);
    time_axis(out, &s, AXIS_PX - 6.0, lanes_bottom);
    if boxes.is_empty() {
        let mid = (s.x0 + s.x1) / 2.0;
        super::svg::text(out, mid, AXIS_PX + 24.0, "empty", "middle", "no lanes in this timeline");
    }
    lanes::render(out, view, &boxes);
    plots::latency(out, view, latency_top);
    plots::offsets(out, view, offsets_top);
    out.push_str("</svg>\n");
}

/// Arrowheads and the hatch patterns.
const MARKERS: &str = concat!(
    r##"<marker id="ah-ok" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" "##,
    r##"markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#475569"/></marker>"##,
    r##"<marker id="ah-dup" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" "##,
    r##"markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#7c3aed"/></marker>"##,
    r##"<marker id="ah-corrupt" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" "##,
    r##"markerHeight="7" orient="auto"><path d="M0,0L10,5L0,10z" fill="#ea580c"/></marker>"##,
    r##"<pattern id="hatch-pause" width="6" height="6" patternUnits="userSpaceOnUse" "##,
    r##"patternTransform="rotate(45)"><rect width="6" height="6" fill="#e5e7eb"/>"##,
    r##"<line x1="0" y1="0" x2="0" y2="6" stroke="#9ca3af" stroke-width="2"/></pattern>"##,
    r##"<pattern id="hatch-server" width="5" height="5" patternUnits="userSpaceOnUse" "##,
    r##"patternTransform="rotate(-45)"><rect width="5" height="5" fill="#ede9fe"/>"##,
    r##"<line x1="0" y1="0" x2="0" y2="5" stroke="#7c3aed" stroke-width="2.2"/></pattern>"##,
);

/// The page's style sheet.
const CSS: &str = r#"
body { font: 14px/1.4 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 16px 20px;
  color: #111827; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; }
.meta { color: #4b5563; margin: 0 0 6px; }
.seed { color: #111827; font-family: ui-monospace, Menlo, monospace; }
.summary { margin: 4px 0 8px; padding-left: 20px; }
.summary li { margin: 1px 0; }
.notice { background: #fef3c7; border: 1px solid #f59e0b; padding: 6px 10px; border-radius: 4px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 6px 0 10px; font-size: 12.5px;
  color: #374151; }
.key { display: inline-flex; align-items: center; gap: 4px; }
svg.figure { display: block; font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
.axis { stroke: #6b7280; stroke-width: 1; }
.grid { stroke: #e5e7eb; stroke-width: 1; }
.tick { font-size: 11px; fill: #6b7280; }
.tick-left { font-size: 11px; fill: #374151; }
.lane-even { fill: #ffffff; }
.lane-odd { fill: #f8fafc; }
.life-node { stroke: #1f2937; stroke-width: 1.6; }
.life-client { stroke: #1d4ed8; stroke-width: 1.6; }
.life-store { stroke: #92400e; stroke-width: 1.6; }
.lane-name { font-size: 13px; font-weight: 600; fill: #111827; }
.lane-kind { font-size: 10px; fill: #9ca3af; text-transform: uppercase; letter-spacing: .05em; }
.bar-caption { font-size: 9.5px; fill: #6b7280; }
.b-pause { fill: url(#hatch-pause); opacity: .85; }
.b-down { fill: #374151; opacity: .35; }
.b-partition { fill: #fb923c; opacity: .22; }
.b-leader { fill: #16a34a; opacity: .75; }
.b-lease-client { fill: #2563eb; }
.b-lease-server { fill: url(#hatch-server); stroke: #7c3aed; stroke-width: 1; }
.b-jeopardy { fill: #facc15; }
.b-lease-unaware { fill: #fee2e2; stroke: #dc2626; stroke-width: 1.2; stroke-dasharray: 4 2; }
.band-label { font-size: 11px; fill: #374151; font-style: italic; }
.bar-label-in { font-size: 9.5px; fill: #fff; font-weight: 600; paint-order: stroke;
  stroke: #1e3a8a; stroke-width: 2px; }
.bar-label { font-size: 9.5px; fill: #1f2937; }
.bar-label-in-hatch { font-size: 9.5px; fill: #3b0764; font-weight: 600; }
.bar-label-in-light { font-size: 9.5px; fill: #7f1d1d; font-weight: 600; }
.m-ok { stroke: #475569; stroke-width: 1.1; }
.m-dropped { stroke: #dc2626; stroke-width: 1.1; stroke-dasharray: 3 2; }
.m-cross { stroke: #dc2626; stroke-width: 2.2; fill: none; }
.m-cross-small { stroke: #ea580c; stroke-width: 2; fill: none; }
.m-dup { stroke: #7c3aed; stroke-width: 1.4; stroke-dasharray: 6 2 1 2; }
.m-corrupt { stroke: #ea580c; stroke-width: 1.4; stroke-dasharray: 1 2; }
g.msg:hover line { stroke-width: 3; }
g.band:hover rect, g.mark:hover * { stroke: #111827; stroke-width: 1.5; }
.k-grant { fill: #f59e0b; stroke: #92400e; stroke-width: 1; }
.k-release { fill: #6b7280; }
.k-accepted { fill: #16a34a; stroke: #14532d; stroke-width: 1; }
.k-rejected { fill: #dc2626; stroke: #7f1d1d; stroke-width: 1.2; }
.k-rejected-x { stroke: #fff; stroke-width: 2.2; fill: none; }
.k-rejected-hl { fill: #dc2626; opacity: .18; }
.k-lost { fill: #f97316; stroke: #7c2d12; stroke-width: 1; }
.k-lost-bang { font-size: 10px; font-weight: 700; fill: #fff; }
.k-lost-hl { fill: #f97316; opacity: .18; }
.k-elected { fill: #16a34a; stroke: #14532d; stroke-width: 1; }
.k-clock { fill: #fff; stroke: #0891b2; stroke-width: 1.6; }
.k-clock-hands { stroke: #0891b2; stroke-width: 1.4; fill: none; }
.k-violation { fill: #b91c1c; stroke: #450a0a; stroke-width: 1; }
.k-note { fill: #6b7280; }
.ml { font-size: 11px; fill: #374151; }
.ml-grant { font-size: 11px; fill: #92400e; font-weight: 600; }
.ml-ok { font-size: 11px; fill: #166534; }
.ml-bad { font-size: 11.5px; fill: #b91c1c; font-weight: 700; }
.ml-lost { font-size: 11.5px; fill: #c2410c; font-weight: 700; }
.ml-tick { stroke: #d1d5db; stroke-width: 1; }
text { paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
.bar-label-in { stroke: #1e3a8a; stroke-width: 2px; }
.plot-title { font-size: 13px; font-weight: 600; fill: #111827; }
.plot-sub { font-size: 10.5px; fill: #6b7280; }
.plot-bg { fill: #fafafa; }
.plot-bg-clear { fill: none; }
.fault-window { fill: #fecaca; opacity: .55; }
.fault-label { font-size: 10.5px; fill: #991b1b; }
.lat-ok { fill: #2563eb; opacity: .75; }
.lat-fail { fill: #f59e0b; opacity: .9; }
.lat-unknown { fill: #dc2626; opacity: .9; }
.offset-line { fill: none; stroke-width: 1.8; }
.empty { font-size: 13px; fill: #9ca3af; font-style: italic; }
"#;
