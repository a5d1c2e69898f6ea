//! The space-time diagram: one lifeline per node, client and store, drawn the way the
//! chapter's figures 8-4 and 8-5 are: time runs left to right, messages are slanted arrows
//! between lifelines, a pause is a shaded stretch of a lifeline, and the moments that matter
//! (a grant with its token, a write a store rejected) are marked and labelled on the line.
//!
//! A client's lane carries two bars under its lifeline: the lease *as the client saw it* and
//! the grant *as the leader saw it*. The whole point of fencing is the gap between the two, so
//! they are drawn one above the other, in different styles, on the same time scale.

use super::html::View;
use super::svg::{
    LABEL_ROW_PX, LABEL_ROWS_MAX, LabelRows, Scale, arrow_line, circle, cross, group_titled, line,
    path, rect, text, text_width,
};
use super::timeline::{Arrow, ArrowFate, Band, BandKind, LaneKind, Mark, MarkKind};

/// Space above a lifeline for mark labels.
const ABOVE_LINE_PX: f64 = 12.0 + LABEL_ROWS_MAX as f64 * LABEL_ROW_PX;
/// Space under a node's or store's lifeline (leader bar, band labels).
const BELOW_NODE_PX: f64 = 26.0;
/// Space under a client's lifeline (two lease bars, band labels).
const BELOW_CLIENT_PX: f64 = 46.0;
/// Offset of the client-view lease bar under the lifeline, and its height.
const CLIENT_BAR: (f64, f64) = (6.0, 10.0);
/// Offset of the leader-view lease bar under the lifeline, and its height.
const SERVER_BAR: (f64, f64) = (19.0, 10.0);
/// Half the height of the leader bar drawn over a node's lifeline.
const LEADER_HALF_PX: f64 = 3.5;

/// Where one lane is drawn.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LaneBox {
    /// Top of the lane.
    pub top: f64,
    /// The lifeline's y.
    pub line: f64,
    /// Bottom of the lane.
    pub bottom: f64,
}

/// Lays the lanes out from `top`; returns each lane's box.
pub(crate) fn layout(kinds: &[LaneKind], top: f64) -> Vec<LaneBox> {
    let mut y = top;
    kinds
        .iter()
        .map(|k| {
            let below = if *k == LaneKind::Client { BELOW_CLIENT_PX } else { BELOW_NODE_PX };
            let b = LaneBox { top: y, line: y + ABOVE_LINE_PX, bottom: y + ABOVE_LINE_PX + below };
            y = b.bottom;
            b
        })
        .collect()
}

/// Draws the diagram with lanes laid out in `boxes`.
pub(crate) fn render(out: &mut String, view: &View<'_>, boxes: &[LaneBox]) {
    let s = view.scale;
    for (i, b) in boxes.iter().enumerate() {
        let class = if i % 2 == 0 { "lane-even" } else { "lane-odd" };
        rect(out, 0.0, b.top, s.x1 + 10.0, b.bottom - b.top, class);
    }
    for band in view.bands.iter().filter(|b| is_background(b.kind)) {
        background_band(out, &s, band, &boxes[band.lane]);
    }
    for (i, lane) in view.timeline.lanes.iter().enumerate() {
        let leases = view.timeline.bands.iter().any(|b| b.lane == i && is_lease(b.kind));
        lifeline(out, &s, &lane.name, lane.kind, &boxes[i]);
        if leases {
            let x = s.x0 - 6.0;
            let b = &boxes[i];
            text(out, x, b.line + CLIENT_BAR.0 + 8.5, "bar-caption", "end", "lease, client view");
            text(out, x, b.line + SERVER_BAR.0 + 8.5, "bar-caption", "end", "lease, leader view");
        }
    }
    for band in view.bands.iter().filter(|b| !is_background(b.kind)) {
        bar(out, &s, band, &boxes[band.lane]);
    }
    out.push_str(r#"<g clip-path="url(#plot-clip)">"#);
    for arrow in &view.arrows {
        draw_arrow(out, &s, arrow, boxes);
    }
    out.push_str("</g>");
    let mut rows: Vec<LabelRows> = boxes.iter().map(|_| LabelRows::new(LABEL_ROWS_MAX)).collect();
    for mark in &view.marks {
        draw_mark(out, &s, mark, &boxes[mark.lane], &mut rows[mark.lane]);
    }
}

fn is_background(kind: BandKind) -> bool {
    matches!(kind, BandKind::Pause | BandKind::Down | BandKind::Partitioned)
}

fn lifeline(out: &mut String, s: &Scale, name: &str, kind: LaneKind, b: &LaneBox) {
    let (kind_name, class) = match kind {
        LaneKind::Node => ("node", "life-node"),
        LaneKind::Client => ("client", "life-client"),
        LaneKind::Store => ("store", "life-store"),
    };
    line(out, (s.x0, b.line), (s.x1, b.line), class);
    text(out, 10.0, b.line + 4.0, "lane-name", "start", name);
    text(out, 10.0, b.line - 12.0, "lane-kind", "start", kind_name);
}

fn is_lease(kind: BandKind) -> bool {
    matches!(
        kind,
        BandKind::LeaseClientView
            | BandKind::LeaseServerView
            | BandKind::Jeopardy
            | BandKind::LeaseUnaware
    )
}

/// Pause, down and partition bands: shading over the whole lane, labelled at its foot.
fn background_band(out: &mut String, s: &Scale, band: &Band, b: &LaneBox) {
    let (x0, x1) = (s.x(band.start), s.x(band.end).max(s.x(band.start) + 2.0));
    let class = match band.kind {
        BandKind::Pause => "b-pause",
        BandKind::Down => "b-down",
        _ => "b-partition",
    };
    group_titled(out, "band", &band.label);
    rect(out, x0, b.top + 2.0, x1 - x0, b.bottom - b.top - 4.0, class);
    out.push_str("</g>");
    if text_width(&band.label) < (x1 - x0) - 4.0 {
        text(out, x0 + 4.0, b.bottom - 6.0, "band-label", "start", &band.label);
    }
}

/// Leader and lease bars along the lifeline.
fn bar(out: &mut String, s: &Scale, band: &Band, b: &LaneBox) {
    let (x0, x1) = (s.x(band.start), s.x(band.end).max(s.x(band.start) + 2.0));
    let (y, h, class) = match band.kind {
        BandKind::Leader => (b.line - LEADER_HALF_PX, 2.0 * LEADER_HALF_PX, "b-leader"),
        BandKind::LeaseClientView => (b.line + CLIENT_BAR.0, CLIENT_BAR.1, "b-lease-client"),
        BandKind::Jeopardy => (b.line + CLIENT_BAR.0, CLIENT_BAR.1, "b-jeopardy"),
        BandKind::LeaseUnaware => (b.line + CLIENT_BAR.0, CLIENT_BAR.1, "b-lease-unaware"),
        _ => (b.line + SERVER_BAR.0, SERVER_BAR.1, "b-lease-server"),
    };
    group_titled(out, "band", &band.label);
    rect(out, x0, y, x1 - x0, h, class);
    out.push_str("</g>");
    if band.kind == BandKind::Leader {
        return;
    }
    let inside = text_width(&band.label) * 0.85 < (x1 - x0) - 6.0;
    let label_in = match band.kind {
        BandKind::LeaseClientView => "bar-label-in",
        BandKind::Jeopardy | BandKind::LeaseUnaware => "bar-label-in-light",
        _ => "bar-label-in-hatch",
    };
    let (x, cls) = if inside { (x0 + 3.0, label_in) } else { (x1 + 3.0, "bar-label") };
    text(out, x, y + h - 1.5, cls, "start", &band.label);
}

fn draw_arrow(out: &mut String, s: &Scale, a: &Arrow, boxes: &[LaneBox]) {
    let (xa, ya) = (s.x(a.sent), boxes[a.from].line);
    let yb = boxes[a.to].line;
    match a.fate {
        ArrowFate::Dropped => {
            // Lost on the way: the arrow stops half way, at the time of the loss, in a cross.
            let xb = s.x(a.at).max(xa + 10.0);
            let ye = ya + (yb - ya) * 0.5;
            group_titled(out, "msg", &format!("dropped: {}", a.label));
            line(out, (xa, ya), (xb, ye), "m-dropped");
            path(out, &cross(xb, ye, 8.0), "m-cross");
        }
        fate => {
            let xb = s.x(a.at).max(xa + 1.0);
            let (class, marker, what) = match fate {
                ArrowFate::Duplicated => ("m-dup", "ah-dup", "duplicate: "),
                ArrowFate::Corrupted => ("m-corrupt", "ah-corrupt", "corrupted (CRC): "),
                _ => ("m-ok", "ah-ok", ""),
            };
            group_titled(out, "msg", &format!("{what}{}", a.label));
            arrow_line(out, (xa, ya), (xb, yb), class, marker);
            if fate == ArrowFate::Corrupted {
                path(out, &cross(xb, yb - 8.0, 6.0), "m-cross-small");
            }
        }
    }
    out.push_str("</g>");
}

fn draw_mark(out: &mut String, s: &Scale, m: &Mark, b: &LaneBox, rows: &mut LabelRows) {
    let (x, y) = (s.x(m.at), b.line);
    let full = (b.top + 2.0, b.bottom - b.top - 4.0);
    group_titled(out, "mark", &m.label);
    match m.kind {
        MarkKind::Grant => path(out, &format!("M{x:.1},{:.1}l6,6l-6,6l-6,-6z", y - 6.0), "k-grant"),
        MarkKind::Release => rect(out, x - 2.0, y - 7.0, 4.0, 14.0, "k-release"),
        MarkKind::WriteAccepted => circle(out, x, y, 5.5, "k-accepted"),
        MarkKind::WriteRejected => {
            rect(out, x - 5.0, full.0, 10.0, full.1, "k-rejected-hl");
            circle(out, x, y, 8.0, "k-rejected");
            path(out, &cross(x, y, 8.0), "k-rejected-x");
        }
        MarkKind::LostUpdate => {
            rect(out, x - 5.0, full.0, 10.0, full.1, "k-lost-hl");
            path(out, &format!("M{x:.1},{:.1}l8,14h-16z", y - 9.0), "k-lost");
            text(out, x, y + 3.5, "k-lost-bang", "middle", "!");
        }
        MarkKind::Elected => {
            path(out, &format!("M{:.1},{:.1}l3,-9l3,5l3,-5l3,9z", x - 6.0, y + 4.0), "k-elected");
        }
        MarkKind::ClockChange => {
            circle(out, x, y, 6.0, "k-clock");
            path(out, &format!("M{x:.1},{:.1}v5h3", y - 4.0), "k-clock-hands");
        }
        MarkKind::Violation => {
            path(out, &format!("M{x:.1},{:.1}l9,16h-18z", y - 10.0), "k-violation");
        }
        MarkKind::Note => circle(out, x, y, 3.5, "k-note"),
    }
    out.push_str("</g>");
    mark_label(out, s, m, x, b, rows);
}

/// The label of a mark, in the first free row above the lifeline, with a tick down to it.
fn mark_label(out: &mut String, s: &Scale, m: &Mark, x: f64, b: &LaneBox, rows: &mut LabelRows) {
    if m.label.is_empty() {
        return;
    }
    let w = text_width(&m.label);
    let right_aligned = x + w > s.x1 + 8.0;
    let start = if right_aligned { x - w } else { x - 3.0 };
    let row = rows.place(start, w);
    let y = b.line - 13.0 - row as f64 * LABEL_ROW_PX;
    let class = match m.kind {
        MarkKind::WriteRejected | MarkKind::Violation => "ml-bad",
        MarkKind::LostUpdate => "ml-lost",
        MarkKind::Grant => "ml-grant",
        MarkKind::WriteAccepted => "ml-ok",
        _ => "ml",
    };
    line(out, (x, y + 2.0), (x, b.line - 8.0), "ml-tick");
    let (tx, anchor) = if right_aligned { (x + 3.0, "end") } else { (x - 3.0, "start") };
    text(out, tx, y, class, anchor, &m.label);
}
