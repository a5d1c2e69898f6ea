//! Turning a finished simulation into a [`Timeline`]: arrows, pauses and crashes from the
//! kept trace (any [`Process`]), and, for the palisade service, leadership, grants, leases
//! and storage writes from the observations.
//!
//! The trace knows what the network and the fault injector did; only the observations know
//! what the processes *believed*. A report needs both: the gap between the lease a client
//! believed it held and the grant the leader had recorded is the story of figure 8-4.

use std::collections::BTreeMap;

use palisade_clock::MonoInstant;
use palisade_node::lock::{LeaseState, Reply, SessionId, Token};
use palisade_node::{NodeEvent, OpId, OpOutcome, ReplyResult, UserOp};

use crate::report::{
    Arrow, ArrowFate, Band, BandKind, FaultWindow, LatencyOutcome, LatencyPoint, Mark, MarkKind,
    Nanos, OffsetSample,
};
use crate::service::{ClientObs, NodeObs, Obs, Service, ServiceLayout, StoreObs};
use crate::{ProcId, Process, Simulation, TraceEvent, TraceKind, WALL_ORIGIN_NANOS};

/// Longest hover label of an arrow (the message's `Debug` text, cut).
pub const ARROW_LABEL_CHARS_MAX: usize = 160;

/// Message arrows from a kept trace. `lane_of` maps processes to lanes (`None`: not drawn);
/// `keep(from, to)` filters links (e.g. leave out Raft traffic).
pub fn arrows_from_trace(
    events: &[TraceEvent],
    lane_of: &dyn Fn(ProcId) -> Option<usize>,
    keep: &dyn Fn(ProcId, ProcId) -> bool,
) -> Vec<Arrow> {
    let mut sends: BTreeMap<u64, (Nanos, String)> = BTreeMap::new();
    let mut delivered: BTreeMap<u64, u32> = BTreeMap::new();
    let mut out = Vec::new();
    for e in events {
        let (Some(from), Some(to), Some(id)) = (e.from, e.to, e.msg) else { continue };
        if !keep(from, to) {
            continue;
        }
        let (Some(lf), Some(lt)) = (lane_of(from), lane_of(to)) else { continue };
        let fate = match e.kind {
            TraceKind::Send => {
                sends.insert(id, (e.t, short(&e.detail)));
                continue;
            }
            TraceKind::Deliver => {
                let n = delivered.entry(id).or_insert(0);
                *n += 1;
                if *n > 1 { ArrowFate::Duplicated } else { ArrowFate::Delivered }
            }
            TraceKind::Drop | TraceKind::DropPartition | TraceKind::DropDown => ArrowFate::Dropped,
            TraceKind::CorruptDetected => ArrowFate::Corrupted,
            _ => continue,
        };
        let Some((sent, label)) = sends.get(&id) else { continue };
        let why = match e.kind {
            TraceKind::DropPartition => "(partition) ",
            TraceKind::DropDown => "(destination down) ",
            _ => "",
        };
        let label = format!("{why}{label}");
        out.push(Arrow { from: lf, to: lt, sent: *sent, at: e.t, fate, label });
    }
    out
}

fn short(detail: &str) -> String {
    if detail.chars().count() <= ARROW_LABEL_CHARS_MAX {
        return detail.to_string();
    }
    let cut: String = detail.chars().take(ARROW_LABEL_CHARS_MAX).collect();
    format!("{cut}…")
}

/// Pause and crash bands from a kept trace, and a fault window for each; `name_of` names a
/// process in labels.
pub fn fault_bands_from_trace(
    events: &[TraceEvent],
    end: Nanos,
    lane_of: &dyn Fn(ProcId) -> Option<usize>,
    name_of: &dyn Fn(ProcId) -> String,
) -> (Vec<Band>, Vec<FaultWindow>) {
    let mut bands = Vec::new();
    let mut windows = Vec::new();
    let mut down: BTreeMap<ProcId, Nanos> = BTreeMap::new();
    let mut paused: BTreeMap<ProcId, (Nanos, Nanos)> = BTreeMap::new();
    let mut close_pause = |p: ProcId, s: Nanos, e: Nanos, bands: &mut Vec<Band>| {
        let label = format!("{} paused {}", name_of(p), secs(e - s));
        if let Some(lane) = lane_of(p) {
            bands.push(Band {
                lane,
                start: s,
                end: e,
                kind: BandKind::Pause,
                label: label.clone(),
            });
        }
        windows.push(FaultWindow { start: s, end: e, label });
    };
    for e in events {
        let Some(p) = e.from else { continue };
        match e.kind {
            TraceKind::Pause => {
                // "stop-the-world for 8000000000ns until t=123", or "armed ..." (not a pause yet).
                let Some(until) = e.detail.rsplit("until t=").next().and_then(|s| s.parse().ok())
                else {
                    continue;
                };
                let start = paused.get(&p).map_or(e.t, |x| x.0);
                paused.insert(p, (start, until));
            }
            TraceKind::Resume => {
                if let Some((s, _)) = paused.remove(&p) {
                    close_pause(p, s, e.t, &mut bands);
                }
            }
            TraceKind::Crash => {
                down.insert(p, e.t);
            }
            TraceKind::Restart => {
                if let (Some(s), Some(lane)) = (down.remove(&p), lane_of(p)) {
                    let label = format!("{} down", name_of(p));
                    bands.push(Band { lane, start: s, end: e.t, kind: BandKind::Down, label });
                }
            }
            _ => {}
        }
    }
    for (p, (s, until)) in paused {
        close_pause(p, s, until.min(end), &mut bands);
    }
    for (p, s) in down {
        if let Some(lane) = lane_of(p) {
            let label = format!("{} down", name_of(p));
            bands.push(Band { lane, start: s, end, kind: BandKind::Down, label });
        }
    }
    (bands, windows)
}

/// The clock offset (time-of-day minus true time of day) of each process with a lane, now.
pub fn sample_offsets<P: Process>(
    sim: &Simulation<P>,
    lane_of: &dyn Fn(ProcId) -> Option<usize>,
    out: &mut Vec<OffsetSample>,
) {
    let t = sim.now_nanos();
    for p in sim.procs() {
        let (Some(lane), Some(now)) = (lane_of(p), sim.local_now(p)) else { continue };
        let truth = i128::from(WALL_ORIGIN_NANOS) + i128::from(t);
        let offset = i128::from(now.wall.as_nanos()) - truth;
        out.push(OffsetSample { lane, at: t, offset: offset as i64 });
    }
}

/// What the service builder needs besides the simulation.
#[derive(Debug)]
pub struct ServiceNames {
    /// Lane names, one per process of the layout, in process order.
    pub lanes: Vec<String>,
}

/// Everything the observations of a service run add to a timeline.
#[derive(Debug, Default)]
pub struct ServiceMarks {
    /// Leader and lease bands.
    pub bands: Vec<Band>,
    /// Grants, releases, writes, elections.
    pub marks: Vec<Mark>,
    /// Operation latencies.
    pub latencies: Vec<LatencyPoint>,
}

/// Reads a service run's observations: leadership, grants and their leases (as the leader
/// saw them, and as each client saw them), storage writes (a stale write an unchecked store
/// accepted is a lost update), and operation latencies.
pub fn service_marks(
    sim: &Simulation<Service>,
    layout: &ServiceLayout,
    names: &ServiceNames,
) -> ServiceMarks {
    let end = sim.now_nanos();
    let mut r = Recorder {
        end,
        names,
        layout,
        out: ServiceMarks::default(),
        leading: BTreeMap::new(),
        leader: None,
        sessions: BTreeMap::new(),
        grants: BTreeMap::new(),
        held: BTreeMap::new(),
        lease_end: BTreeMap::new(),
        invoked: BTreeMap::new(),
        store_highest: BTreeMap::new(),
    };
    for o in sim.observations() {
        let (t, p) = (o.t_nanos, o.proc);
        match &o.obs {
            Obs::Node(NodeObs::Event(e)) => r.node_event(t, p, e),
            Obs::Client(c) => r.client_obs(sim, t, p, c),
            Obs::Store(s) => r.store_obs(t, p, s),
            Obs::Node(_) => {}
        }
    }
    r.finish()
}

#[derive(Debug)]
struct Recorder<'a> {
    end: Nanos,
    names: &'a ServiceNames,
    layout: &'a ServiceLayout,
    out: ServiceMarks,
    /// Leader process and the start of its term, while it leads.
    leading: BTreeMap<ProcId, (Nanos, u64)>,
    /// The process that most recently became leader.
    leader: Option<ProcId>,
    /// Session to client process.
    sessions: BTreeMap<SessionId, ProcId>,
    /// Open grants as the leader saw them: (lock, session) to (start, token).
    grants: BTreeMap<(String, SessionId), (Nanos, Token)>,
    /// Client views: client to (lock, start, token).
    held: BTreeMap<ProcId, Vec<(String, Nanos, Token)>>,
    /// Each client's local lease end, in true time.
    lease_end: BTreeMap<ProcId, Option<Nanos>>,
    /// Invocations in flight: (client, op) to (time, op name).
    invoked: BTreeMap<(ProcId, OpId), (Nanos, String)>,
    /// Highest token a store accepted per (store, key).
    store_highest: BTreeMap<(ProcId, String), Token>,
}

/// `1.25 s`, `300 ms`.
pub(crate) fn secs(nanos: Nanos) -> String {
    if nanos >= 1_000_000_000 {
        format!("{:.2} s", nanos as f64 / 1e9)
    } else {
        format!("{:.0} ms", nanos as f64 / 1e6)
    }
}

/// At most 24 characters of `bytes`, as text.
pub(crate) fn show_value(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    if text.chars().count() <= 24 {
        return text.into_owned();
    }
    let cut: String = text.chars().take(23).collect();
    format!("{cut}…")
}

impl Recorder<'_> {
    fn name(&self, p: ProcId) -> &str {
        self.names.lanes.get(p.index()).map_or("?", String::as_str)
    }

    fn mark(&mut self, p: ProcId, at: Nanos, kind: MarkKind, label: String) {
        self.out.marks.push(Mark { lane: p.index(), at, kind, label });
    }

    fn band(&mut self, p: ProcId, (start, end): (Nanos, Nanos), kind: BandKind, label: String) {
        self.out.bands.push(Band { lane: p.index(), start, end, kind, label });
    }

    fn session_name(&self, session: SessionId) -> String {
        self.sessions
            .get(&session)
            .map_or(format!("session {session}"), |p| self.name(*p).to_string())
    }

    fn node_event(&mut self, t: Nanos, p: ProcId, e: &NodeEvent) {
        match e {
            NodeEvent::BecameLeader { term } => {
                self.leading.insert(p, (t, *term));
                self.leader = Some(p);
                self.mark(p, t, MarkKind::Elected, format!("leader, term {term}"));
            }
            NodeEvent::SteppedDown { .. } => {
                if let Some((s, term)) = self.leading.remove(&p) {
                    self.band(p, (s, t), BandKind::Leader, format!("leader of term {term}"));
                }
            }
            NodeEvent::SessionOpened { session, client, .. } => {
                let proc = ProcId(u32::try_from((client >> 32).saturating_sub(1)).unwrap_or(0));
                if self.layout.node_of(proc).is_none() {
                    self.sessions.insert(*session, proc);
                }
            }
            NodeEvent::Granted { lock, session, token, index } if self.leader == Some(p) => {
                let who = self.session_name(*session);
                let label = format!("grant {lock} to {who}: token {token} (entry {index})");
                self.mark(p, t, MarkKind::Grant, label);
                self.grants.insert((lock.clone(), *session), (t, *token));
            }
            NodeEvent::Released { lock, session, token, cause, index }
                if self.leader == Some(p) =>
            {
                let who = self.session_name(*session);
                let label =
                    format!("{lock} of {who} (token {token}) ended: {cause:?}, entry {index}");
                self.mark(p, t, MarkKind::Release, label);
                if let (Some((s, tok)), Some(c)) =
                    (self.grants.remove(&(lock.clone(), *session)), self.sessions.get(session))
                {
                    let label = format!("{lock} token {tok}: leader view");
                    self.band(*c, (s, t), BandKind::LeaseServerView, label);
                }
            }
            NodeEvent::SessionExpired { session, index } if self.leader == Some(p) => {
                let who = self.session_name(*session);
                let label = format!("{who}'s session expired via log (entry {index})");
                self.mark(p, t, MarkKind::Note, label);
            }
            _ => {}
        }
    }

    fn client_obs(&mut self, sim: &Simulation<Service>, t: Nanos, p: ProcId, c: &ClientObs) {
        match c {
            ClientObs::Invoked { op, user, .. } => {
                self.invoked.insert((p, *op), (t, op_name(user).to_string()));
            }
            ClientObs::Completed { op, user, outcome, .. } => {
                self.completed(t, p, *op, user, outcome)
            }
            ClientObs::Granted { lock, token } => self.client_grant(t, p, lock, *token),
            ClientObs::Lease { state, valid_until } => {
                self.lease(sim, t, p, *state, *valid_until);
            }
            ClientObs::StoreWriteSent { store, key, token, .. } => {
                let token = token.map_or("no token".to_string(), |t| format!("token {t}"));
                let label = format!("write {key} to {} with {token}", self.name(*store));
                self.mark(p, t, MarkKind::Note, label);
            }
            ClientObs::WriteSkipped { key, reason } => {
                self.mark(p, t, MarkKind::Note, format!("write {key} skipped: {reason}"));
            }
            ClientObs::StoreAcked { .. } => {}
        }
    }

    fn completed(&mut self, t: Nanos, p: ProcId, op: OpId, user: &UserOp, outcome: &OpOutcome) {
        if let Some((at, name)) = self.invoked.remove(&(p, op)) {
            let result = match outcome {
                OpOutcome::Done(ReplyResult::Done(Ok(_)) | ReplyResult::Read(_)) => {
                    LatencyOutcome::Ok
                }
                OpOutcome::Done(_) => LatencyOutcome::Fail,
                OpOutcome::Unknown => LatencyOutcome::Unknown,
            };
            let point = LatencyPoint { at, latency: t - at, op: name, outcome: result };
            self.out.latencies.push(point);
        }
        match (user, outcome) {
            (
                UserOp::Acquire { lock, .. } | UserOp::TryAcquire { lock },
                OpOutcome::Done(ReplyResult::Done(Ok(Reply::Acquired { holder, .. }))),
            ) => self.client_grant(t, p, lock, holder.token),
            (UserOp::Release { lock, .. }, OpOutcome::Done(ReplyResult::Done(Ok(_)))) => {
                self.close_client_view(p, t, Some(lock));
            }
            _ => {}
        }
    }

    fn client_grant(&mut self, t: Nanos, p: ProcId, lock: &str, token: Token) {
        let held = self.held.entry(p).or_default();
        if held.iter().any(|(l, _, tok)| l == lock && *tok == token) {
            return;
        }
        held.push((lock.to_string(), t, token));
        self.mark(p, t, MarkKind::Grant, format!("holds {lock}: token {token}"));
    }

    fn lease(
        &mut self,
        sim: &Simulation<Service>,
        t: Nanos,
        p: ProcId,
        state: Option<LeaseState>,
        valid_until: Option<MonoInstant>,
    ) {
        let prev = self.lease_end.get(&p).copied().flatten();
        if let Some(e) = prev.filter(|e| *e < t) {
            // The local lease ran out before this observation (the client was paused, or
            // could not renew): the client's view of its locks ended then, and until now the
            // client did not know.
            for (lock, _, token) in self.held.get(&p).cloned().unwrap_or_default() {
                let label = format!("{lock} token {token}: over, client unaware");
                self.band(p, (e, t), BandKind::LeaseUnaware, label);
            }
            self.close_client_view(p, e, None);
        }
        if matches!(state, None | Some(LeaseState::Lost)) {
            self.close_client_view(p, prev.unwrap_or(t).min(t), None);
        }
        let clock = sim.clock(p);
        let end = valid_until.and_then(|m| clock.map(|c| c.true_nanos_at_mono(m)));
        self.lease_end.insert(p, end);
    }

    /// Ends the client-view band of `lock` (every lock: `None`) of client `p` at `at`.
    fn close_client_view(&mut self, p: ProcId, at: Nanos, lock: Option<&str>) {
        let held = self.held.remove(&p).unwrap_or_default();
        let (closing, keep): (Vec<_>, Vec<_>) =
            held.into_iter().partition(|(l, _, _)| lock.is_none_or(|x| x == l));
        self.held.insert(p, keep);
        for (l, s, tok) in closing {
            let label = format!("{l} token {tok}: client view");
            self.band(p, (s, at.max(s)), BandKind::LeaseClientView, label);
        }
    }

    fn store_obs(&mut self, t: Nanos, p: ProcId, s: &StoreObs) {
        match s {
            StoreObs::Accepted { from, key, value, token, .. } => {
                let slot = (p, key.clone());
                let highest = self.store_highest.get(&slot).copied();
                let who = self.name(*from).to_string();
                let tok = token.map_or("none".to_string(), |t| t.to_string());
                match (token, highest) {
                    (Some(tk), Some(h)) if *tk < h => {
                        let label =
                            format!("LOST UPDATE: {who}'s token {tk} < {h} overwrote {key}");
                        self.mark(p, t, MarkKind::LostUpdate, label);
                    }
                    _ => {
                        let v = show_value(value);
                        let label = format!("{key} = \"{v}\" ({who}, token {tok})");
                        self.mark(p, t, MarkKind::WriteAccepted, label);
                    }
                }
                if let Some(tk) = token {
                    let h = self.store_highest.entry(slot).or_insert(*tk);
                    *h = (*h).max(*tk);
                }
            }
            StoreObs::Rejected { from, key, token, highest } => {
                let who = self.name(*from).to_string();
                let tok = token.map_or("none".to_string(), |t| t.to_string());
                let h = highest.map_or("none".to_string(), |t| t.to_string());
                let label = format!("REJECTED {who}'s write of {key}: token {tok} < {h}");
                self.mark(p, t, MarkKind::WriteRejected, label);
            }
        }
    }

    fn finish(mut self) -> ServiceMarks {
        let end = self.end;
        for (p, (s, term)) in std::mem::take(&mut self.leading) {
            self.band(p, (s, end), BandKind::Leader, format!("leader of term {term}"));
        }
        for ((lock, session), (s, tok)) in std::mem::take(&mut self.grants) {
            if let Some(c) = self.sessions.get(&session).copied() {
                self.band(
                    c,
                    (s, end),
                    BandKind::LeaseServerView,
                    format!("{lock} token {tok}: leader view"),
                );
            }
        }
        let clients: Vec<ProcId> = self.held.keys().copied().collect();
        for p in clients {
            let until = self.lease_end.get(&p).copied().flatten().unwrap_or(end).min(end);
            self.close_client_view(p, until, None);
        }
        self.out
    }
}

fn op_name(op: &UserOp) -> &'static str {
    match op {
        UserOp::OpenSession => "open-session",
        UserOp::CloseSession => "close-session",
        UserOp::Acquire { .. } => "acquire",
        UserOp::TryAcquire { .. } => "try-acquire",
        UserOp::Release { .. } => "release",
        UserOp::Put { .. } => "put",
        UserOp::Cas { .. } => "cas",
        UserOp::Delete { .. } => "delete",
        UserOp::Get { .. } => "get",
        UserOp::LockInfo { .. } => "lock-info",
        UserOp::WaitGrant { .. } => "wait-grant",
        UserOp::SessionInfo => "session-info",
    }
}
