//! Drawing helpers shared by the space-time diagram and the plots: the time scale with its
//! ticks, label placement that keeps labels from overlapping, and SVG number formatting.
//!
//! Every figure of a report shares one horizontal scale, so a partition shaded on the latency
//! plot lines up with the pause band on a client's lifeline above it: reading a report is
//! mostly looking straight down a column.

use std::fmt::Write;

use super::html::escape_html;
use super::timeline::Nanos;

/// Nanoseconds per second.
pub(crate) const NANOS_PER_SEC: f64 = 1e9;
/// Approximate width of one character of the 11 px label font, for collision checks.
pub(crate) const LABEL_CHAR_PX: f64 = 6.4;
/// Rows of labels above a lifeline before labels are allowed to overlap.
pub(crate) const LABEL_ROWS_MAX: usize = 3;
/// Height of one label row.
pub(crate) const LABEL_ROW_PX: f64 = 13.0;
/// Gap kept between two labels of the same row.
const LABEL_GAP_PX: f64 = 6.0;
/// Most ticks on a time axis.
const TICKS_MAX: f64 = 14.0;

/// Maps simulated time in `[a, b)` to x pixels in `[x0, x1]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scale {
    /// First nanosecond shown.
    pub a: Nanos,
    /// End of the shown interval (exclusive).
    pub b: Nanos,
    /// Left edge of the plot area.
    pub x0: f64,
    /// Right edge of the plot area.
    pub x1: f64,
}

impl Scale {
    /// The x of `t`, clamped to the plot area.
    pub fn x(&self, t: Nanos) -> f64 {
        let span = (self.b - self.a).max(1) as f64;
        let f = (t.saturating_sub(self.a)) as f64 / span;
        self.x0 + f.min(1.0) * (self.x1 - self.x0)
    }

    /// Whether `t` lies in the shown interval.
    pub fn contains(&self, t: Nanos) -> bool {
        t >= self.a && t < self.b
    }

    /// Whether `[s, e]` overlaps the shown interval.
    pub fn overlaps(&self, s: Nanos, e: Nanos) -> bool {
        s < self.b && e >= self.a
    }

    /// Tick positions and their labels (in seconds), at a round step.
    pub fn ticks(&self) -> Vec<(f64, String)> {
        let span = (self.b - self.a).max(1) as f64;
        let step = nice_step(span / TICKS_MAX);
        let decimals = decimals_for(step / NANOS_PER_SEC);
        let mut t = (self.a as f64 / step).ceil() * step;
        let mut out = Vec::new();
        while t < self.b as f64 + 0.5 {
            let label = format!("{:.*} s", decimals, t / NANOS_PER_SEC);
            out.push((self.x(t as Nanos), label));
            t += step;
        }
        out
    }
}

/// The smallest 1-2-5 step (in the unit of `raw`) at least `raw`.
pub(crate) fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= raw {
            return m * mag;
        }
    }
    10.0 * mag
}

/// Decimals needed to print multiples of `step` distinctly.
pub(crate) fn decimals_for(step: f64) -> usize {
    if step >= 1.0 { 0 } else { (-step.log10().floor()).clamp(0.0, 9.0) as usize }
}

/// Seconds with a sensible number of decimals, for labels (`8.00 s`, `250 ms`).
pub(crate) fn duration_label(nanos: u64) -> String {
    let ms = nanos as f64 / 1e6;
    if ms < 1.0 {
        format!("{:.0} µs", nanos as f64 / 1e3)
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// Estimated width of a label of `text`.
pub(crate) fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * LABEL_CHAR_PX
}

/// Places labels in rows so that labels of one row do not overlap.
#[derive(Debug)]
pub(crate) struct LabelRows {
    ends: Vec<f64>,
}

impl LabelRows {
    /// `rows` empty rows.
    pub fn new(rows: usize) -> Self {
        assert!(rows > 0, "at least one label row");
        LabelRows { ends: vec![f64::NEG_INFINITY; rows] }
    }

    /// The first row where `[x, x + width]` is free (the least crowded row if none is), and
    /// reserves it.
    pub fn place(&mut self, x: f64, width: f64) -> usize {
        let row = self.ends.iter().position(|&end| end + LABEL_GAP_PX <= x).unwrap_or_else(|| {
            let least = self.ends.iter().cloned().fold(f64::INFINITY, f64::min);
            self.ends.iter().position(|&e| e == least).unwrap_or(0)
        });
        self.ends[row] = x + width;
        row
    }
}

/// Appends `<text>` with escaped content.
pub(crate) fn text(out: &mut String, x: f64, y: f64, class: &str, anchor: &str, content: &str) {
    let _ = write!(
        out,
        r#"<text x="{x:.1}" y="{y:.1}" class="{class}" text-anchor="{anchor}">{}</text>"#,
        escape_html(content)
    );
}

/// Appends `<rect>`.
pub(crate) fn rect(out: &mut String, x: f64, y: f64, w: f64, h: f64, class: &str) {
    let _ = write!(
        out,
        r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" class="{class}"/>"#,
        w.max(0.0),
        h.max(0.0)
    );
}

/// Appends `<line>`.
pub(crate) fn line(out: &mut String, (x1, y1): (f64, f64), (x2, y2): (f64, f64), class: &str) {
    let _ = write!(
        out,
        r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" class="{class}"/>"#
    );
}

/// Appends `<line>` ending in the arrowhead `marker`.
pub(crate) fn arrow_line(
    out: &mut String,
    a: (f64, f64),
    b: (f64, f64),
    class: &str,
    marker: &str,
) {
    let _ = write!(
        out,
        r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" class="{class}" "#,
        a.0, a.1, b.0, b.1
    );
    let _ = write!(out, r#"marker-end="url(#{marker})"/>"#);
}

/// Appends `<path>`.
pub(crate) fn path(out: &mut String, d: &str, class: &str) {
    let _ = write!(out, r#"<path d="{d}" class="{class}"/>"#);
}

/// Appends `<circle>`.
pub(crate) fn circle(out: &mut String, cx: f64, cy: f64, r: f64, class: &str) {
    let _ = write!(out, r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{r:.1}" class="{class}"/>"#);
}

/// Opens a `<g>` of `class` with a hover `<title>` (escaped); close it with `</g>`.
pub(crate) fn group_titled(out: &mut String, class: &str, title: &str) {
    let _ = write!(out, r#"<g class="{class}"><title>{}</title>"#, escape_html(title));
}

/// A cross of size `size` centred on `(x, y)`, as path data.
pub(crate) fn cross(x: f64, y: f64, size: f64) -> String {
    let h = size / 2.0;
    format!("M{:.1},{:.1}l{size:.1},{size:.1}m0,-{size:.1}l-{size:.1},{size:.1}", x - h, y - h)
}

/// Appends the time axis: a baseline at `y` with ticks and labels, and faint grid lines down to
/// `grid_bottom`.
pub(crate) fn time_axis(out: &mut String, scale: &Scale, y: f64, grid_bottom: f64) {
    let _ = write!(
        out,
        r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" class="axis"/>"#,
        scale.x0, scale.x1
    );
    for (x, label) in scale.ticks() {
        let _ = write!(
            out,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{grid_bottom:.1}" class="grid"/>"#
        );
        text(out, x, y - 5.0, "tick", "middle", &label);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_1_2_5() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(1.5e9), 2e9);
        assert_eq!(nice_step(7e8), 1e9);
    }

    #[test]
    fn ticks_cover_the_window() {
        let s = Scale { a: 0, b: 10_000_000_000, x0: 100.0, x1: 1100.0 };
        let ticks = s.ticks();
        assert_eq!(ticks.first().map(|t| t.1.as_str()), Some("0 s"));
        assert_eq!(ticks.last().map(|t| t.1.as_str()), Some("10 s"));
        assert!(ticks.len() <= 15);
        assert_eq!(s.x(5_000_000_000), 600.0);
    }

    #[test]
    fn labels_take_free_rows() {
        let mut rows = LabelRows::new(3);
        assert_eq!(rows.place(0.0, 50.0), 0);
        assert_eq!(rows.place(10.0, 50.0), 1);
        assert_eq!(rows.place(100.0, 50.0), 0);
        assert_eq!(rows.place(20.0, 10.0), 2);
    }
}
