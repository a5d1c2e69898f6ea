//! Builds the report's [`Timeline`] from a lab run: lanes per server, client and store;
//! message arrows with their fates (from the trace); pause, crash and partition bands;
//! leader bands; session leases as clients saw them and lock grants as the log saw them;
//! tokens on grants and on store writes, rejected and lost writes marked; clock offsets;
//! operation latencies; fault windows.
//!
//! Long runs make for heavy pages: arrows between servers are drawn only for windows of at
//! most [`PEER_ARROWS_SPAN_NANOS_MAX`], and at most [`ARROWS_MAX`] arrows are kept.

use std::collections::{BTreeMap, BTreeSet};

use palisade_node::NodeEvent;
use palisade_node::lock::LeaseState;

use crate::lab::report::LabReport;
use crate::report::{
    Arrow, ArrowFate, Band, BandKind, FaultWindow, Lane, LaneKind, LatencyPoint, Mark, MarkKind,
    OffsetSample, Timeline,
};
use crate::service::{ClientObs, NodeObs, Obs, Service, StoreObs};
use crate::{
    Fault, Observed, Partition, ProcId, Reachability, Simulation, TraceEvent, TraceKind,
    WALL_ORIGIN_NANOS,
};

/// Most message arrows kept.
pub const ARROWS_MAX: usize = 20_000;
/// Arrows between servers only for windows up to this long (or the whole run, if shorter).
pub const PEER_ARROWS_SPAN_NANOS_MAX: u64 = 10_000_000_000;
/// Longest arrow label.
const LABEL_CHARS_MAX: usize = 80;

/// Collects a run's drawing as it happens.
#[derive(Debug)]
pub(crate) struct TimelineBuilder {
    window: Option<(u64, u64)>,
    /// Nodes, once known (peer arrows are told apart by it).
    nodes: Option<usize>,
    sends: BTreeMap<u64, (u64, ProcId, ProcId, String)>,
    delivered: BTreeSet<u64>,
    arrows: Vec<Arrow>,
    bands: Vec<Band>,
    marks: Vec<Mark>,
    offsets: Vec<OffsetSample>,
    paused: BTreeMap<ProcId, u64>,
    down: BTreeMap<ProcId, u64>,
    leading: BTreeMap<ProcId, (u64, u64)>,
    lease: BTreeMap<ProcId, (u64, BandKind)>,
    /// (lock, token) -> (start, session)
    grants: BTreeMap<(String, u64), (u64, u64)>,
    ended: BTreeSet<(String, u64)>,
    session_client: BTreeMap<u64, u64>,
    partitions: Vec<(u64, u64, Partition)>,
    windows: Vec<FaultWindow>,
}

fn short(s: &str) -> String {
    if s.chars().count() <= LABEL_CHARS_MAX {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(LABEL_CHARS_MAX).collect();
    out.push('…');
    out
}

impl TimelineBuilder {
    /// A builder keeping what falls in `window` (all if `None`).
    pub fn new(window: Option<(u64, u64)>) -> TimelineBuilder {
        TimelineBuilder {
            window,
            nodes: None,
            sends: BTreeMap::new(),
            delivered: BTreeSet::new(),
            arrows: Vec::new(),
            bands: Vec::new(),
            marks: Vec::new(),
            offsets: Vec::new(),
            paused: BTreeMap::new(),
            down: BTreeMap::new(),
            leading: BTreeMap::new(),
            lease: BTreeMap::new(),
            grants: BTreeMap::new(),
            ended: BTreeSet::new(),
            session_client: BTreeMap::new(),
            partitions: Vec::new(),
            windows: Vec::new(),
        }
    }

    fn in_window(&self, a: u64, b: u64) -> bool {
        self.window.is_none_or(|(s, e)| a <= e && b >= s)
    }

    /// The fault plan: partitions, crashes and pauses become fault windows.
    pub fn plan(&mut self, faults: &[(u64, Fault)], safety: u64, nodes: usize) {
        self.nodes = Some(nodes);
        let mut current: Option<(u64, Partition)> = None;
        for (t, f) in faults {
            match f {
                Fault::Partition(p) => {
                    if let Some((s, old)) = current.take() {
                        self.partitions.push((s, *t, old));
                    }
                    current = Some((*t, p.clone()));
                }
                Fault::Heal => {
                    if let Some((s, old)) = current.take() {
                        self.partitions.push((s, *t, old));
                    }
                }
                Fault::Pause(p, len) | Fault::PauseMidHandler(p, len) => {
                    let label = format!("pause {p} {}ms", len / 1_000_000);
                    let end = (t + len).min(safety);
                    self.windows.push(FaultWindow { start: *t, end, label });
                }
                Fault::Crash(p) => {
                    let end = faults
                        .iter()
                        .find(|(u, g)| u >= t && *g == Fault::Restart(*p))
                        .map_or(safety, |(u, _)| *u);
                    self.windows.push(FaultWindow { start: *t, end, label: format!("crash {p}") });
                }
                _ => {}
            }
        }
        for (s, e, p) in &self.partitions {
            self.windows.push(FaultWindow { start: *s, end: *e, label: format!("{p:?}") });
        }
    }

    /// One trace event.
    pub fn trace(&mut self, e: &TraceEvent) {
        let (Some(from), t) = (e.from, e.t) else { return };
        match (e.kind, e.to, e.msg) {
            (TraceKind::Send, Some(to), Some(id)) => {
                let peer = self.nodes.is_some_and(|n| from.index() < n && to.index() < n);
                let span = self.window.map_or(u64::MAX, |(s, e)| e - s);
                if !(peer && span > PEER_ARROWS_SPAN_NANOS_MAX) {
                    self.sends.insert(id, (t, from, to, short(&e.detail)));
                }
            }
            (kind, Some(_), Some(id)) => {
                let fate = match kind {
                    TraceKind::Deliver if self.delivered.contains(&id) => ArrowFate::Duplicated,
                    TraceKind::Deliver => ArrowFate::Delivered,
                    TraceKind::Drop | TraceKind::DropPartition | TraceKind::DropDown => {
                        ArrowFate::Dropped
                    }
                    TraceKind::CorruptDetected => ArrowFate::Corrupted,
                    _ => return,
                };
                let Some(&(sent, a, b, ref label)) = self.sends.get(&id) else { return };
                if fate == ArrowFate::Delivered {
                    self.delivered.insert(id);
                }
                if self.arrows.len() < ARROWS_MAX && self.in_window(sent, t) {
                    let label = label.clone();
                    let arrow = Arrow { from: a.index(), to: b.index(), sent, at: t, fate, label };
                    self.arrows.push(arrow);
                }
                if fate != ArrowFate::Delivered {
                    self.sends.remove(&id);
                }
            }
            (TraceKind::Pause, None, None) if !e.detail.starts_with("armed") => {
                self.paused.entry(from).or_insert(t);
            }
            (TraceKind::Resume, None, None) => self.end_pause(from, t),
            (TraceKind::Crash, None, None) => {
                self.end_pause(from, t);
                self.end_lead(from, t);
                self.end_lease(from, t);
                self.down.insert(from, t);
            }
            (TraceKind::Restart, None, None) => {
                if let Some(s) = self.down.remove(&from) {
                    self.band(from, s, t, BandKind::Down, "down".into());
                }
            }
            (TraceKind::Clock, None, None) => {
                self.mark(from, t, MarkKind::ClockChange, short(&e.detail));
            }
            _ => {}
        }
        // Forget sends whose fate will never come (kept small).
        if self.sends.len() > 4 * ARROWS_MAX
            && let Some(&first) = self.sends.keys().next()
        {
            self.sends.remove(&first);
        }
    }

    fn band(&mut self, p: ProcId, start: u64, end: u64, kind: BandKind, label: String) {
        if self.in_window(start, end) {
            self.bands.push(Band { lane: p.index(), start, end, kind, label });
        }
    }

    fn mark(&mut self, p: ProcId, at: u64, kind: MarkKind, label: String) {
        if self.in_window(at, at) {
            self.marks.push(Mark { lane: p.index(), at, kind, label });
        }
    }

    fn end_pause(&mut self, p: ProcId, t: u64) {
        if let Some(s) = self.paused.remove(&p) {
            self.band(p, s, t, BandKind::Pause, format!("pause {}ms", (t - s) / 1_000_000));
        }
    }

    fn end_lead(&mut self, p: ProcId, t: u64) {
        if let Some((s, term)) = self.leading.remove(&p) {
            self.band(p, s, t, BandKind::Leader, format!("leader, term {term}"));
        }
    }

    fn end_lease(&mut self, p: ProcId, t: u64) {
        if let Some((s, kind)) = self.lease.remove(&p) {
            let label = if kind == BandKind::Jeopardy { "jeopardy" } else { "session lease" };
            self.band(p, s, t, kind, label.into());
        }
    }

    /// A store accepted a stale write: a lost update.
    pub fn lost_update(&mut self, t: u64, store: ProcId, o: &StoreObs) {
        if let StoreObs::Accepted { from, key, token, .. } = o {
            let label = format!("lost update: {key} overwritten by {from} with token {token:?}");
            self.mark(store, t, MarkKind::LostUpdate, label);
        }
    }

    /// Samples every process's time-of-day offset from true time.
    pub fn sample_clocks(&mut self, sim: &Simulation<Service>) {
        let t = sim.now_nanos();
        if !self.in_window(t, t) {
            return;
        }
        for p in sim.procs() {
            let Some(now) = sim.local_now(p) else { continue };
            let truth = i128::from(WALL_ORIGIN_NANOS) + i128::from(t);
            let offset = i64::try_from(i128::from(now.wall.as_nanos()) - truth).unwrap_or(0);
            self.offsets.push(OffsetSample { lane: p.index(), at: t, offset });
        }
    }

    /// One observation.
    pub fn observe(&mut self, o: &Observed<Obs>, sim: &Simulation<Service>) {
        let (t, p) = (o.t_nanos, o.proc);
        match &o.obs {
            Obs::Node(NodeObs::Event(e)) => self.node_event(t, p, e),
            Obs::Node(NodeObs::RefusedToStart { reason }) => {
                self.mark(p, t, MarkKind::Note, short(&format!("refused to start: {reason}")));
            }
            Obs::Node(NodeObs::Started { .. }) => {}
            Obs::Client(ClientObs::Lease { state, .. }) => {
                let kind = match state {
                    Some(LeaseState::Held) => Some(BandKind::LeaseClientView),
                    Some(LeaseState::Jeopardy) => Some(BandKind::Jeopardy),
                    _ => None,
                };
                if self.lease.get(&p).map(|l| l.1) != kind {
                    self.end_lease(p, t);
                    if let Some(kind) = kind {
                        self.lease.insert(p, (t, kind));
                    }
                }
            }
            Obs::Client(ClientObs::WriteSkipped { key, reason }) => {
                self.mark(p, t, MarkKind::Note, short(&format!("skipped {key}: {reason}")));
            }
            Obs::Client(_) => {}
            Obs::Store(s) => self.store(t, p, s),
        }
        let _ = sim;
    }

    fn store(&mut self, t: u64, p: ProcId, s: &StoreObs) {
        match s {
            StoreObs::Accepted { from, key, token, .. } => {
                let label = format!("{key} from {from}, token {token:?}");
                self.mark(p, t, MarkKind::WriteAccepted, label);
            }
            StoreObs::Rejected { from, key, token, highest } => {
                let label =
                    format!("{key} from {from}, token {token:?} rejected: seen {highest:?}");
                self.mark(p, t, MarkKind::WriteRejected, label);
            }
        }
    }

    fn node_event(&mut self, t: u64, p: ProcId, e: &NodeEvent) {
        match e {
            NodeEvent::BecameLeader { term } => {
                self.end_lead(p, t);
                self.leading.insert(p, (t, *term));
                self.mark(p, t, MarkKind::Elected, format!("leader, term {term}"));
            }
            NodeEvent::SteppedDown { .. } => self.end_lead(p, t),
            NodeEvent::SessionOpened { session, client, .. } => {
                self.session_client.insert(session.0, *client);
            }
            NodeEvent::Granted { lock, session, token, .. } => {
                let key = (lock.clone(), *token);
                if !self.grants.contains_key(&key) && !self.ended.contains(&key) {
                    self.grants.insert(key, (t, session.0));
                    self.mark(p, t, MarkKind::Grant, format!("{lock} token {token}"));
                }
            }
            NodeEvent::Released { lock, token, cause, .. } => {
                let Some((start, session)) = self.grants.remove(&(lock.clone(), *token)) else {
                    return;
                };
                self.ended.insert((lock.clone(), *token));
                self.mark(p, t, MarkKind::Release, format!("{lock} token {token}: {cause:?}"));
                if let Some(c) = self.session_client.get(&session).copied() {
                    let lane = ProcId(u32::try_from((c >> 32).saturating_sub(1)).unwrap_or(0));
                    let label = format!("{lock} token {token} (log's view)");
                    self.band(lane, start, t, BandKind::LeaseServerView, label);
                }
            }
            _ => {}
        }
    }

    /// The finished timeline.
    pub fn finish(&mut self, report: &LabReport, end: u64, latencies: &[LatencyPoint]) -> Timeline {
        let s = &report.seed;
        let n = s.nodes + s.clients + 2;
        for p in (0..n).map(|i| ProcId(i as u32)) {
            self.end_pause(p, end);
            self.end_lead(p, end);
            self.end_lease(p, end);
            if let Some(d) = self.down.remove(&p) {
                self.band(p, d, end, BandKind::Down, "down".into());
            }
        }
        for ((lock, token), (start, session)) in std::mem::take(&mut self.grants) {
            if let Some(c) = self.session_client.get(&session).copied() {
                let lane = ProcId(u32::try_from((c >> 32).saturating_sub(1)).unwrap_or(0));
                let label = format!("{lock} token {token} (log's view)");
                self.band(lane, start, end, BandKind::LeaseServerView, label);
            }
        }
        for (start, stop, part) in self.partitions.clone() {
            let r = Reachability::of(n, &part);
            for a in 0..n {
                let cut: Vec<String> = (0..n)
                    .filter(|&b| b != a)
                    .filter(|&b| {
                        !r.can_reach(ProcId(a as u32), ProcId(b as u32))
                            || !r.can_reach(ProcId(b as u32), ProcId(a as u32))
                    })
                    .map(|b| format!("p{b}"))
                    .collect();
                if !cut.is_empty() {
                    let label = format!("cut from {}", cut.join(","));
                    self.band(ProcId(a as u32), start, stop, BandKind::Partitioned, label);
                }
            }
        }
        for v in &report.violations {
            let label = short(&format!("{}: {}", v.check.name(), v.detail));
            self.mark(ProcId(0), v.t_nanos.min(end), MarkKind::Violation, label);
        }
        let mut lanes: Vec<Lane> =
            (1..=s.nodes).map(|i| Lane { name: format!("n{i}"), kind: LaneKind::Node }).collect();
        lanes.extend((0..s.clients).map(|i| Lane {
            name: format!("client {i} (p{})", s.nodes + i),
            kind: LaneKind::Client,
        }));
        lanes.push(Lane { name: "store (fenced)".into(), kind: LaneKind::Store });
        lanes.push(Lane { name: "store (unchecked)".into(), kind: LaneKind::Store });
        let mut summary: Vec<String> = report.to_string().lines().map(str::to_owned).collect();
        summary.truncate(40);
        let latencies =
            latencies.iter().filter(|l| self.in_window(l.at, l.at + l.latency)).cloned().collect();
        let fault_windows: Vec<FaultWindow> =
            self.windows.iter().filter(|w| self.in_window(w.start, w.end)).cloned().collect();
        Timeline {
            title: report.reproduce(),
            seed: s.options.seed,
            summary,
            end,
            lanes,
            messages: std::mem::take(&mut self.arrows),
            bands: std::mem::take(&mut self.bands),
            marks: std::mem::take(&mut self.marks),
            clock_offsets: std::mem::take(&mut self.offsets),
            latencies,
            fault_windows,
        }
    }
}
