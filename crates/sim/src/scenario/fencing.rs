//! `figure-8-5`: the chapter's fencing story, replayed on palisade's own processes.
//!
//! Three nodes, two clients, two stores. Client A takes lock `L` (its token is the log index
//! of the grant: the scenario first pushes the log to index 32 so that it is 33, as in the
//! book). B queues for `L`. A checks that its lease is valid and is stopped — a
//! stop-the-world pause of [`A_PAUSE`] — before its writes leave the machine. A's lease runs
//! out; the leader expires A's session *through the log*; after the lock-delay B is granted
//! `L` with a higher token and writes to both stores. Then A wakes and its two writes, with
//! the old token, arrive:
//! - the fenced store (a `FenceGuard`) rejects A's write: it has seen B's token (figure 8-5);
//! - the unchecked store accepts it, and B's update is lost (figure 8-4).
//!
//! The report draws A's lease as A saw it (ending at A's local lease end, inside its pause)
//! and as the leader saw it (ending at the applied expiry), the tokens, the rejected write
//! and the lost update. [`run`] asserts none of this: the facts come back in [`Figure85`]
//! for tests and for the command line to show.

use std::time::Duration;

use palisade_node::lock::{Reply, SessionId, Token};
use palisade_node::raft::LogIndex;
use palisade_node::{ClientConfig, NodeConfig, NodeEvent, OpOutcome, ReplyResult, UserOp};

use super::record::{
    ServiceNames, arrows_from_trace, fault_bands_from_trace, sample_offsets, secs, service_marks,
    show_value,
};
use super::{MS, ScenarioError};
use crate::report::{Lane, LaneKind, Nanos, OffsetSample, Timeline};
use crate::service::{
    Action, ClientSpec, Obs, ScriptStep, Service, ServiceLayout, StoreObs, StoreSpec, outcome,
    run_until, submit,
};
use crate::{NetworkConfig, ProcId, Simulation, TraceSink};

/// How long A is stopped: well past its TTL plus the lock-delay.
pub const A_PAUSE: Duration = Duration::from_secs(8);
/// The clients' session TTL.
pub const CLIENT_TTL: Duration = Duration::from_secs(3);
/// The log index before A's grant, so that A's token is 33 as in the book.
const INDEX_BEFORE_GRANT: LogIndex = 32;
/// Clock drift of the three nodes (within the drift bound), so the offset plot shows them.
const NODE_DRIFT_PPM: [i32; 3] = [150, -120, 60];
/// Offsets are sampled this often.
const SAMPLE_EVERY_NANOS: u64 = 250 * MS;
/// The value A writes with its stale lock.
pub const A_VALUE: &[u8] = b"A's write (stale lock)";
/// The value B writes as the lock's holder.
pub const B_VALUE: &[u8] = b"B's write (holder)";
/// The key both clients write.
pub const KEY: &str = "file";

/// What the figure-8-5 run showed.
#[derive(Clone, Debug)]
pub struct Figure85 {
    /// The report.
    pub timeline: Timeline,
    /// A's fencing token for `L`.
    pub token_a: Token,
    /// B's fencing token for `L`, granted after A's session expired.
    pub token_b: Token,
    /// The log entry that expired A's session (applied by the leader).
    pub a_expired_index: Option<LogIndex>,
    /// The entry that granted `L` to B.
    pub b_granted_index: Option<LogIndex>,
    /// True time A's pause began and ended.
    pub a_pause: (Nanos, Nanos),
    /// True time A's local lease ran out (its client view), if it did.
    pub a_lease_end_client: Option<Nanos>,
    /// True time the leader applied A's expiry (its view of A's grant ended).
    pub a_grant_end_leader: Option<Nanos>,
    /// The fenced store's verdict on A's write: `Some((presented, highest))` if rejected.
    pub fenced_rejected: Option<(Token, Token)>,
    /// The unchecked store accepted A's stale write over B's: the value it replaced.
    pub lost_update_replaced: Option<Vec<u8>>,
    /// The fenced store's final value of [`KEY`] and its token.
    pub fenced_final: Option<(Vec<u8>, Option<Token>)>,
    /// The unchecked store's final value of [`KEY`] and its token.
    pub unchecked_final: Option<(Vec<u8>, Option<Token>)>,
    /// The story, one line per step, for people.
    pub story: Vec<String>,
}

fn node_config(id: u64) -> NodeConfig {
    let mut c = NodeConfig::default_for(0x0805, id);
    c.lock.ttl_min = Duration::from_secs(1);
    c.lock.lock_delay = Duration::from_secs(1);
    c
}

fn client_config() -> ClientConfig {
    let mut c = ClientConfig::new(vec![1, 2, 3], CLIENT_TTL);
    c.attempt_timeout = Duration::from_millis(300);
    c
}

/// A simulation that samples every lane's clock offset as it runs.
struct Run {
    sim: Simulation<Service>,
    offsets: Vec<OffsetSample>,
    next_sample: Nanos,
}

impl Run {
    fn sample(&mut self) {
        while self.sim.now_nanos() >= self.next_sample {
            sample_offsets(&self.sim, &|p| Some(p.index()), &mut self.offsets);
            self.next_sample += SAMPLE_EVERY_NANOS;
        }
    }

    /// Runs until `done` holds or `limit` of true time passed; whether it held.
    fn until(&mut self, limit: Duration, done: impl Fn(&Simulation<Service>) -> bool) -> bool {
        let deadline = self.sim.now_nanos() + limit.as_nanos() as u64;
        loop {
            let stop = self.sim.now_nanos().saturating_add(SAMPLE_EVERY_NANOS).min(deadline);
            let held = run_until(&mut self.sim, stop, MS, &done);
            self.sample();
            if held {
                return true;
            }
            if self.sim.now_nanos() >= deadline {
                return false;
            }
        }
    }

    fn op(&mut self, client: ProcId, op: UserOp, what: &str) -> Result<OpOutcome, ScenarioError> {
        let id = submit(&mut self.sim, client, op).ok_or(ScenarioError::Stuck("client down"))?;
        if !self.until(Duration::from_secs(10), |s| outcome(s, client, id).is_some()) {
            return Err(ScenarioError::Timeout(what.to_string()));
        }
        outcome(&self.sim, client, id).ok_or(ScenarioError::Stuck("no outcome"))
    }
}

/// Runs the figure-8-5 story with `seed` (network delays, election timing).
pub fn run(seed: u64) -> Result<Figure85, ScenarioError> {
    let mut layout = ServiceLayout::new(3, node_config);
    let client = ClientSpec { config: client_config(), script: vec![] };
    layout.clients = vec![client.clone(), client];
    layout.stores = vec![StoreSpec { checked: false }, StoreSpec { checked: true }];
    let (a, b) = (layout.client_proc(0), layout.client_proc(1));
    let (unchecked, fenced) = (layout.store_proc(0), layout.store_proc(1));
    let mut sim = layout.clone().simulation(seed, NetworkConfig::default());
    sim.set_trace_sink(TraceSink::Keep);
    for (i, ppm) in NODE_DRIFT_PPM.iter().enumerate() {
        sim.set_drift(layout.node_proc(i as u64 + 1), *ppm).map_err(ScenarioError::Sim)?;
    }
    let mut run = Run { sim, offsets: Vec::new(), next_sample: 0 };
    run.sample();
    if !run.until(Duration::from_secs(20), |s| layout.leader(s).is_some()) {
        return Err(ScenarioError::Timeout("a leader".into()));
    }
    let leader = layout.node_proc(layout.leader(&run.sim).expect("a leader"));
    for c in [a, b] {
        if !run.op(c, UserOp::OpenSession, "open session")?.is_done() {
            return Err(ScenarioError::Stuck("open session"));
        }
    }
    let mut n = 0;
    while last_index(&run.sim, leader) < INDEX_BEFORE_GRANT {
        n += 1;
        let put = UserOp::Put { key: format!("warm-up {n}"), value: vec![], fence: None };
        run.op(b, put, "warm-up put")?;
    }
    let token_a = match run.op(a, UserOp::TryAcquire { lock: "L".into() }, "A's acquire")? {
        OpOutcome::Done(ReplyResult::Done(Ok(Reply::Acquired { holder, .. }))) => holder.token,
        other => return Err(ScenarioError::Unexpected(format!("A's acquire: {other:?}"))),
    };
    let b_session = session_of(&run.sim, b)?;
    queue_b(&mut run, b, [unchecked, fenced])?;
    let queued = run.until(Duration::from_secs(1), |s| {
        let core = s.process(leader).and_then(Service::as_node).and_then(|n| n.core());
        let info = core.and_then(|c| c.state_machine().lock_info("L").cloned());
        info.is_some_and(|i| i.waiters.contains(&b_session))
    });
    if !queued {
        return Err(ScenarioError::Timeout("B queued for L".into()));
    }
    let a_session = session_of(&run.sim, a)?;
    let pause_start = run.sim.now_nanos();
    let pause = A_PAUSE.as_nanos() as u64;
    run.sim.pause_mid_handler(a, pause).map_err(ScenarioError::Sim)?;
    let safe = run
        .sim
        .invoke(a, |p, ctx| {
            let c = p.as_client_mut().expect("a client");
            let safe = c.core().is_safe_now(ctx.now());
            for store in [unchecked, fenced] {
                c.act(ctx, store_write(store, A_VALUE));
            }
            safe
        })
        .map_err(ScenarioError::Sim)?;
    if !safe {
        return Err(ScenarioError::Unexpected("A's lease was not valid before its pause".into()));
    }
    run.until(A_PAUSE + Duration::from_secs(2), |_| false);
    let facts = Facts { layout: &layout, a, b, a_session, b_session, unchecked, fenced, leader };
    Ok(facts.collect(run, token_a, (pause_start, pause_start + pause), seed))
}

/// B queues for `L` (a long poll) and, once granted, writes to both stores.
fn queue_b(run: &mut Run, b: ProcId, stores: [ProcId; 2]) -> Result<(), ScenarioError> {
    let wait = Some(Duration::from_secs(30));
    let mut script = vec![ScriptStep::now(Action::Op(UserOp::Acquire { lock: "L".into(), wait }))];
    script.extend(stores.iter().map(|s| ScriptStep::now(store_write(*s, B_VALUE))));
    run.sim
        .invoke(b, |p, ctx| p.as_client_mut().expect("a client").push_script(ctx, script))
        .map_err(ScenarioError::Sim)
}

fn store_write(store: ProcId, value: &[u8]) -> Action {
    Action::StoreWrite { store, key: KEY.into(), value: value.into(), lock: Some("L".into()) }
}

fn last_index(sim: &Simulation<Service>, leader: ProcId) -> LogIndex {
    let core = sim.process(leader).and_then(Service::as_node).and_then(|n| n.core());
    core.map_or(0, |c| c.raft().status().last_index)
}

fn session_of(sim: &Simulation<Service>, c: ProcId) -> Result<SessionId, ScenarioError> {
    let client = sim.process(c).and_then(Service::as_client);
    client.and_then(|c| c.core().session()).ok_or(ScenarioError::Stuck("no session"))
}

/// Who is who, for reading the facts out of the observations.
struct Facts<'a> {
    layout: &'a ServiceLayout,
    a: ProcId,
    b: ProcId,
    a_session: SessionId,
    b_session: SessionId,
    unchecked: ProcId,
    fenced: ProcId,
    leader: ProcId,
}

impl Facts<'_> {
    fn collect(&self, run: Run, token_a: Token, a_pause: (Nanos, Nanos), seed: u64) -> Figure85 {
        let sim = &run.sim;
        let mut f = Figure85 {
            timeline: Timeline::default(),
            token_a,
            token_b: 0,
            a_expired_index: None,
            b_granted_index: None,
            a_pause,
            a_lease_end_client: None,
            a_grant_end_leader: None,
            fenced_rejected: None,
            lost_update_replaced: None,
            fenced_final: None,
            unchecked_final: None,
            story: Vec::new(),
        };
        for o in sim.observations() {
            match &o.obs {
                Obs::Node(crate::service::NodeObs::Event(e)) if o.proc == self.leader => {
                    self.node_fact(&mut f, o.t_nanos, e);
                }
                Obs::Store(StoreObs::Rejected { from, token, highest, .. })
                    if o.proc == self.fenced && *from == self.a =>
                {
                    f.fenced_rejected = token.zip(*highest);
                }
                Obs::Store(StoreObs::Accepted { from, replaced, .. })
                    if o.proc == self.unchecked && *from == self.a =>
                {
                    f.lost_update_replaced.clone_from(replaced);
                }
                _ => {}
            }
        }
        let value_of = |store: ProcId| {
            let s = sim.process(store).and_then(Service::as_store)?;
            s.get(KEY).map(|v| (v.value.clone(), v.token))
        };
        f.fenced_final = value_of(self.fenced);
        f.unchecked_final = value_of(self.unchecked);
        f.timeline = self.timeline(&run, seed);
        f.a_lease_end_client = f
            .timeline
            .bands
            .iter()
            .find(|b| {
                b.lane == self.a.index() && b.kind == crate::report::BandKind::LeaseClientView
            })
            .map(|b| b.end);
        f.story = story(&f);
        f.timeline.summary = f.story.clone();
        let raft = sim
            .trace_events()
            .iter()
            .filter(|e| e.kind == crate::TraceKind::Send)
            .filter(|e| e.from.zip(e.to).is_some_and(|(a, b)| both_nodes(self.layout, a, b)))
            .count();
        f.timeline.summary.push(format!(
            "fencing tokens are log indexes: entries between A's and B's grants (expiry, \
             keepalives, lock-delay end) make B's token {} rather than {}; {raft} Raft messages \
             between nodes are not drawn",
            f.token_b,
            f.token_a + 1
        ));
        f
    }

    fn node_fact(&self, f: &mut Figure85, t: Nanos, e: &NodeEvent) {
        match e {
            NodeEvent::SessionExpired { session, index } if *session == self.a_session => {
                f.a_expired_index = Some(*index);
                f.a_grant_end_leader = Some(t);
            }
            NodeEvent::Granted { lock, session, token, index }
                if lock == "L" && *session == self.b_session =>
            {
                f.token_b = *token;
                f.b_granted_index = Some(*index);
            }
            _ => {}
        }
    }

    fn timeline(&self, run: &Run, seed: u64) -> Timeline {
        let sim = &run.sim;
        let names = ServiceNames { lanes: self.lane_names() };
        let lane_of = |p: ProcId| Some(p.index());
        let layout = self.layout;
        let not_raft = |f: ProcId, t: ProcId| !both_nodes(layout, f, t);
        let events = sim.trace_events();
        let messages = arrows_from_trace(events, &lane_of, &not_raft);
        let name_of = |p: ProcId| names.lanes.get(p.index()).cloned().unwrap_or_default();
        let end = sim.now_nanos();
        let (mut bands, fault_windows) = fault_bands_from_trace(events, end, &lane_of, &name_of);
        let marks = service_marks(sim, layout, &names);
        bands.extend(marks.bands);
        let lanes = names
            .lanes
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let p = ProcId(i as u32);
                let kind = if layout.node_of(p).is_some() {
                    LaneKind::Node
                } else if p == self.a || p == self.b {
                    LaneKind::Client
                } else {
                    LaneKind::Store
                };
                Lane { name: name.clone(), kind }
            })
            .collect();
        Timeline {
            title: "figure 8-5: a paused lock holder is fenced off".into(),
            seed,
            summary: Vec::new(),
            end,
            lanes,
            messages,
            bands,
            marks: marks.marks,
            clock_offsets: run.offsets.clone(),
            latencies: marks.latencies,
            fault_windows,
        }
    }

    fn lane_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.layout.node_ids().iter().map(|i| format!("n{i}")).collect();
        names.extend(["client A".to_string(), "client B".to_string()]);
        names.extend(["store (unchecked)".to_string(), "store (fenced)".to_string()]);
        names
    }
}

fn both_nodes(layout: &ServiceLayout, a: ProcId, b: ProcId) -> bool {
    layout.node_of(a).is_some() && layout.node_of(b).is_some()
}

fn story(f: &Figure85) -> Vec<String> {
    let (ps, pe) = f.a_pause;
    let at = |t: Option<Nanos>| t.map_or("never".to_string(), |t| format!("at {}", secs(t)));
    let idx = |i: Option<LogIndex>| i.map_or("?".to_string(), |i| i.to_string());
    let fenced = match f.fenced_rejected {
        Some((p, h)) => format!("REJECTED it: token {p} < {h}, already seen"),
        None => "accepted it (fencing failed!)".to_string(),
    };
    let lost = match &f.lost_update_replaced {
        Some(v) => format!("accepted it over \"{}\": B's update is LOST", show_value(v)),
        None => "did not receive it".to_string(),
    };
    let fin = |v: &Option<(Vec<u8>, Option<Token>)>| match v {
        Some((bytes, tok)) => format!("\"{}\" (token {})", show_value(bytes), tok.unwrap_or(0)),
        None => "nothing".to_string(),
    };
    vec![
        format!(
            "client A acquires lock L with fencing token {} (the grant's log index)",
            f.token_a
        ),
        format!(
            "A checks its lease, then stops (stop-the-world) from {} to {}: {}",
            secs(ps),
            secs(pe),
            secs(pe - ps)
        ),
        format!(
            "A's lease runs out on A's own clock {} (A is asleep, it cannot notice)",
            at(f.a_lease_end_client)
        ),
        format!(
            "the leader expires A's session through the log: entry {} applied {}",
            idx(f.a_expired_index),
            at(f.a_grant_end_leader)
        ),
        format!(
            "after the lock-delay, B is granted L with token {} (entry {}) and writes to both \
             stores",
            f.token_b,
            idx(f.b_granted_index)
        ),
        format!("A wakes and its writes, with token {}, arrive:", f.token_a),
        format!("  the fenced store {fenced}"),
        format!("  the unchecked store {lost}"),
        format!(
            "final value: fenced store {}; unchecked store {}",
            fin(&f.fenced_final),
            fin(&f.unchecked_final)
        ),
    ]
}
