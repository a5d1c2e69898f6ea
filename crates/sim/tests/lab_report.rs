//! A lab run's report: the timeline has a lane per server, client and store, message arrows,
//! bands and marks, and renders as a self-contained HTML page; streaming the trace does not
//! change the run (same trace hash as without it), and every event streams as JSON.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use palisade_sim::lab::{LabFaults, LabOptions, run_lab, run_lab_with};
use palisade_sim::report::{BandKind, LaneKind, MarkKind, render_html};

#[test]
fn a_report_draws_the_run_and_the_trace_streams_as_json() {
    let mut o = LabOptions::new(5);
    o.faults = LabFaults::ALL;
    o.safety = Duration::from_secs(10);
    o.liveness = Duration::from_secs(10);
    let lines = Rc::new(RefCell::new(0u64));
    let counter = lines.clone();
    let sink = Box::new(move |e: &palisade_sim::TraceEvent| {
        let json = serde_json::to_string(e).expect("events serialise");
        assert!(json.starts_with('{'));
        *counter.borrow_mut() += 1;
    });
    let run = run_lab_with(&o, Some(sink), Some(None));
    let plain = run_lab(&o);
    assert_eq!(run.report.trace_hash, plain.trace_hash, "tracing changed the run");
    assert!(*lines.borrow() > 1000, "every event streamed");
    let tl = run.timeline.expect("a timeline");
    let s = &run.report.seed;
    assert_eq!(tl.lanes.len(), s.nodes + s.clients + 2);
    assert_eq!(tl.lanes.iter().filter(|l| l.kind == LaneKind::Store).count(), 2);
    assert!(!tl.messages.is_empty(), "arrows");
    assert!(tl.bands.iter().any(|b| b.kind == BandKind::Leader), "leader bands");
    assert!(tl.bands.iter().any(|b| b.kind == BandKind::LeaseClientView), "client leases");
    assert!(tl.marks.iter().any(|m| m.kind == MarkKind::Grant), "grants");
    assert!(!tl.latencies.is_empty() && !tl.clock_offsets.is_empty());
    let html = render_html(&tl, None);
    assert!(html.contains("<svg") && html.contains("palisade sim --seed 5"));
}
