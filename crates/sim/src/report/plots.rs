//! The two plots under the space-time diagram, on its time scale.
//!
//! Latency over time, with the fault windows shaded, is the view Jepsen's reports made
//! familiar: a partition shows up as a band of slow and unknown operations, and the time it
//! takes the points to come back down after the band ends is the recovery time. Clock offsets
//! per lane show what each process's time-of-day clock believed: the reason a last-write-wins
//! store keeps the wrong value is visible as one line sitting below the others.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::html::View;
use super::svg::{
    LABEL_ROW_PX, LabelRows, Scale, circle, group_titled, line, nice_step, rect, text, text_width,
};
use super::timeline::LatencyOutcome;

/// Height of the latency plot's data area.
pub(crate) const LATENCY_PLOT_PX: f64 = 190.0;
/// Height of the clock offset plot's data area.
pub(crate) const OFFSET_PLOT_PX: f64 = 120.0;
/// Rows of fault-window labels above the latency plot.
const FAULT_LABEL_ROWS: usize = 2;
/// Colours of the offset lines, by lane (cycled).
const LANE_COLOURS: [&str; 8] =
    ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#be185d", "#4b5563"];
/// Y-axis ticks of a plot.
const Y_TICKS: f64 = 4.0;

/// Space the latency plot needs, including its fault labels and axis.
pub(crate) fn latency_height() -> f64 {
    LATENCY_PLOT_PX + 30.0 + FAULT_LABEL_ROWS as f64 * LABEL_ROW_PX
}

/// Draws the latency-over-time scatter plot with its top edge at `top`.
pub(crate) fn latency(out: &mut String, view: &View<'_>, top: f64) {
    let s = view.scale;
    let plot_top = top + FAULT_LABEL_ROWS as f64 * LABEL_ROW_PX + 6.0;
    let bottom = plot_top + LATENCY_PLOT_PX;
    text(out, 10.0, plot_top + 12.0, "plot-title", "start", "latency");
    text(out, 10.0, plot_top + 26.0, "plot-sub", "start", "per operation,");
    text(out, 10.0, plot_top + 38.0, "plot-sub", "start", "faults shaded");
    let y = LatencyAxis::for_points(view);
    y.draw(out, &s, plot_top, bottom);
    let mut rows = LabelRows::new(FAULT_LABEL_ROWS);
    for w in &view.fault_windows {
        let (x0, x1) = (s.x(w.start), s.x(w.end).max(s.x(w.start) + 2.0));
        group_titled(out, "band", &w.label);
        rect(out, x0, plot_top, x1 - x0, LATENCY_PLOT_PX, "fault-window");
        out.push_str("</g>");
        let row = rows.place(x0, text_width(&w.label));
        let y = plot_top - 4.0 - row as f64 * LABEL_ROW_PX;
        text(out, x0 + 1.0, y, "fault-label", "start", &w.label);
    }
    for p in &view.latencies {
        let class = match p.outcome {
            LatencyOutcome::Ok => "lat-ok",
            LatencyOutcome::Fail => "lat-fail",
            LatencyOutcome::Unknown => "lat-unknown",
        };
        let outcome = format!("{:?}", p.outcome).to_lowercase();
        let title = format!("{} {:.1} ms ({outcome})", p.op, p.latency as f64 / 1e6);
        group_titled(out, "pt", &title);
        circle(out, s.x(p.at), y.y_of(p.latency, plot_top, bottom), 3.0, class);
        out.push_str("</g>");
    }
    if view.latencies.is_empty() {
        let mid = (s.x0 + s.x1) / 2.0;
        text(out, mid, plot_top + LATENCY_PLOT_PX / 2.0, "empty", "middle", "no operations");
    }
}

/// The latency plot's y axis: linear from 0, or logarithmic (one tick per decade) when the
/// latencies span more than [`LOG_SCALE_RATIO_MIN`], as a partition's timeouts next to
/// sub-millisecond reads do.
#[derive(Clone, Copy, Debug)]
enum LatencyAxis {
    /// 0 to this many milliseconds.
    Linear(f64),
    /// From 10^lo to 10^hi milliseconds.
    Log(i32, i32),
}

/// Ratio of the largest to the smallest latency above which the axis is logarithmic.
const LOG_SCALE_RATIO_MIN: f64 = 100.0;

impl LatencyAxis {
    fn for_points(view: &View<'_>) -> Self {
        let ms = |n: u64| (n as f64 / 1e6).max(0.001);
        let max = view.latencies.iter().map(|p| ms(p.latency)).fold(0.0, f64::max);
        let min = view.latencies.iter().map(|p| ms(p.latency)).fold(f64::INFINITY, f64::min);
        if max / min > LOG_SCALE_RATIO_MIN {
            return LatencyAxis::Log(min.log10().floor() as i32, max.log10().ceil() as i32);
        }
        let top = nice_step(max.max(1.0));
        LatencyAxis::Linear(if top < max { top * 2.0 } else { top })
    }

    fn y_of(self, nanos: u64, top: f64, bottom: f64) -> f64 {
        let ms = nanos as f64 / 1e6;
        let f = match self {
            LatencyAxis::Linear(max) => ms / max,
            LatencyAxis::Log(lo, hi) => {
                (ms.max(0.001).log10() - f64::from(lo)) / f64::from((hi - lo).max(1))
            }
        };
        bottom - f.clamp(0.0, 1.0) * (bottom - top)
    }

    fn draw(self, out: &mut String, s: &Scale, top: f64, bottom: f64) {
        match self {
            LatencyAxis::Linear(max) => y_axis(out, s, top, bottom, max, "ms"),
            LatencyAxis::Log(lo, hi) => {
                line(out, (s.x0, top), (s.x0, bottom), "axis");
                line(out, (s.x0, bottom), (s.x1, bottom), "axis");
                for d in lo..=hi {
                    let ms = 10f64.powi(d);
                    let y = self.y_of((ms * 1e6) as u64, top, bottom);
                    line(out, (s.x0, y), (s.x1, y), "grid");
                    text(out, s.x0 - 4.0, y + 4.0, "tick", "end", &ms_label(ms));
                }
                text(out, 10.0, top + 50.0, "plot-sub", "start", "(log scale)");
            }
        }
    }
}

fn ms_label(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", ms / 1000.0)
    } else if ms >= 1.0 {
        format!("{ms} ms")
    } else {
        format!("{} µs", ms * 1000.0)
    }
}

/// Space the offset plot needs.
pub(crate) fn offsets_height() -> f64 {
    OFFSET_PLOT_PX + 24.0
}

/// Draws the clock offset of each lane over time with its top edge at `top`.
pub(crate) fn offsets(out: &mut String, view: &View<'_>, top: f64) {
    let s = view.scale;
    let (plot_top, bottom) = (top + 8.0, top + 8.0 + OFFSET_PLOT_PX);
    text(out, 10.0, plot_top + 12.0, "plot-title", "start", "clock offset");
    text(out, 10.0, plot_top + 26.0, "plot-sub", "start", "time-of-day minus");
    text(out, 10.0, plot_top + 38.0, "plot-sub", "start", "true time");
    let mut by_lane: BTreeMap<usize, Vec<(u64, i64)>> = BTreeMap::new();
    for o in &view.offsets {
        by_lane.entry(o.lane).or_default().push((o.at, o.offset));
    }
    let max_abs = view.offsets.iter().map(|o| o.offset.unsigned_abs()).max().unwrap_or(0);
    let top_ms = nice_step((max_abs as f64 / 1e6).max(1.0));
    let top_ms = if top_ms < max_abs as f64 / 1e6 { top_ms * 2.0 } else { top_ms };
    let mid = (plot_top + bottom) / 2.0;
    let y_of = |o: i64| mid - (o as f64 / 1e6 / top_ms).clamp(-1.0, 1.0) * OFFSET_PLOT_PX / 2.0;
    rect(out, s.x0, plot_top, s.x1 - s.x0, OFFSET_PLOT_PX, "plot-bg");
    for (v, label) in [(top_ms, format!("+{top_ms} ms")), (0.0, "0".into())] {
        let y = y_of((v * 1e6) as i64);
        line(out, (s.x0, y), (s.x1, y), "grid");
        text(out, s.x0 - 4.0, y + 4.0, "tick", "end", &label);
    }
    text(out, s.x0 - 4.0, bottom + 4.0, "tick", "end", &format!("-{top_ms} ms"));
    let mut legend_x = s.x0 + 6.0;
    for (lane, mut points) in by_lane {
        points.sort_unstable();
        let colour = LANE_COLOURS[lane % LANE_COLOURS.len()];
        let name = view.timeline.lanes.get(lane).map_or("?", |l| l.name.as_str());
        let mut d = String::new();
        for (i, (at, o)) in points.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1} ", if i == 0 { "M" } else { "L" }, s.x(*at), y_of(*o));
        }
        let last = points.last().map_or(0, |p| p.1);
        group_titled(out, "series", &format!("{name}: {:+.3} ms at the end", last as f64 / 1e6));
        let _ = write!(out, r#"<path d="{d}" class="offset-line" stroke="{colour}"/>"#);
        out.push_str("</g>");
        let _ = write!(
            out,
            r#"<rect x="{legend_x:.1}" y="{:.1}" width="12" height="3" fill="{colour}"/>"#,
            plot_top + 8.0
        );
        text(out, legend_x + 16.0, plot_top + 12.0, "tick-left", "start", name);
        legend_x += 30.0 + text_width(name);
    }
    if view.offsets.is_empty() {
        text(out, (s.x0 + s.x1) / 2.0, mid, "empty", "middle", "no clock samples");
    }
}

/// A y axis from 0 at `bottom` to `top_value` at `top`.
fn y_axis(out: &mut String, s: &Scale, top: f64, bottom: f64, top_value: f64, unit: &str) {
    rect(out, s.x0, top, s.x1 - s.x0, bottom - top, "plot-bg-clear");
    line(out, (s.x0, top), (s.x0, bottom), "axis");
    line(out, (s.x0, bottom), (s.x1, bottom), "axis");
    for i in 0..=(Y_TICKS as usize) {
        let v = top_value * i as f64 / Y_TICKS;
        let y = bottom - (bottom - top) * i as f64 / Y_TICKS;
        line(out, (s.x0, y), (s.x1, y), "grid");
        let label = if v >= 10.0 { format!("{v:.0} {unit}") } else { format!("{v:.1} {unit}") };
        text(out, s.x0 - 4.0, y + 4.0, "tick", "end", &label);
    }
}
