//! Run reports: the [`Timeline`] model of a run, and its rendering as a self-contained HTML
//! page ([`render_html`]): a space-time diagram like the chapter's figures, a latency plot
//! with the faults shaded, and each process's clock offset.

mod html;
mod lanes;
mod plots;
mod svg;
mod timeline;

pub use html::{
    ARROWS_DRAWN_MAX, LATENCY_POINTS_DRAWN_MAX, MARKS_DRAWN_MAX, escape_html, render_html,
};
pub use timeline::*;
