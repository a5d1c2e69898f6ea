//! Run reports: the [`Timeline`] model of a run, and (in `html.rs`) its rendering as a
//! self-contained HTML page.

mod timeline;

pub use timeline::*;
