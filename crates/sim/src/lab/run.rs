//! One seed of the lab: build the world, run the safety phase under faults, then the liveness
//! phase in calm, then judge.
//!
//! The world is the service of `crate::service`: servers first, then clients, then the store
//! that checks tokens and the one that does not. Faults come from three places, all drawn from
//! the seed: the core's swarm plan (partitions of every shape over servers, clients and stores;
//! server crashes with torn disks; pauses of anyone; clock drift and steps; bit flips; network
//! changes), the lab's own schedule (client crashes, some for good; starting clocks at the drift
//! extremes or beyond the cluster's offset bound), and the workload's (pauses between a lease
//! check and its write, quiet clients, remembered tokens). At the end of the safety phase the
//! plan heals everything and the runner steps every time-of-day clock back to true time; the
//! liveness phase then runs the same workload without faults.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::sync::Once;

use palisade_linearize::{
    CheckOptions, CheckResult, ExpiryRule, KvRegister, LockInput, LockModel, LockOp, LockOutput,
    Operation, check_operations, check_tokens,
};
use palisade_node::lock::{Outcome, Reply};
use palisade_node::{ReplyResult, UserOp};
use rand::Rng;

use crate::fault::wall_step_corrections;
use crate::lab::checkers::{LabCheck, LabCheckers};
use crate::lab::history::Recorder;
use crate::lab::options::{DRIFT_GOOD_PPM, LabOptions, LabSeed, nanos};
use crate::lab::report::{LabLiveness, LabReport, LinSummary};
use crate::lab::timeline::TimelineBuilder;
use crate::lab::workload::{Workload, lock_of_key};
use crate::report::Timeline;
use crate::service::{ClientObs, ClientSpec, NodeObs, Obs, Service, ServiceLayout, StoreSpec};
use crate::{
    Fault, FaultPlan, NetworkConfig, Observed, ProcId, ProcOptions, Simulation, Swarm, TraceEvent,
    TraceSink, WALL_ORIGIN_NANOS, minority_flip_policy,
};

/// The driver hands out work and samples beliefs this often (true time).
pub const TICK_NANOS: u64 = 5_000_000;
/// Replicas' state machines are compared this often.
const STATE_CHECK_EVERY_NANOS: u64 = 1_000_000_000;
/// A leader must be ready within this after the liveness phase begins.
pub const LIVENESS_LEADER_NANOS_MAX: u64 = 15_000_000_000;
/// An operation invoked in the liveness phase (after the settling time) must complete with a
/// definite outcome within this.
pub const LIVENESS_REQUEST_NANOS_MAX: u64 = 10_000_000_000;
/// Beyond TTL + lock-delay, time a dead client's lock may stay held into the liveness phase.
pub const LIVENESS_RELEASE_SLACK_NANOS: u64 = 10_000_000_000;
/// The linearizability search budget per lock or key: a partition that needs more is reported
/// as inconclusive (neither shown linearizable nor not), so no seed checks for minutes. The
/// hard partitions are those with many overlapping unknown outcomes (crashed clients).
pub const LIN_STEPS_MAX: u64 = 2_000_000;
/// The process number of the log's own operations (session ends) in the lock history.
const LOG_PROCESS: u64 = u64::MAX;
/// The memo cache bound per partition.
pub const LIN_CACHE_ENTRIES_MAX: usize = 500_000;
/// In the liveness phase every clock's rate drift is clamped to this (disciplined clocks):
/// two clocks then part by at most 2 × 500 ppm, 30 ms in 30 s of calm, well inside the
/// servers' `clock_offset_max`.
const CALM_DRIFT_PPM_MAX: i32 = DRIFT_GOOD_PPM as i32;
/// Offsets drawn for servers that start beyond the cluster's offset bound.
const OFFSET_BEYOND_NANOS_MAX: i64 = 5_000_000_000;

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that, while a lab run is in progress on this thread, records
/// the panic's message and location instead of printing it; other panics print as before.
pub fn capture_lab_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.with(Cell::get) {
                let location = info.location().map(|l| format!(" at {l}")).unwrap_or_default();
                let text = format!("{}{location}", panic_text(info.payload()));
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    crate::raft::panic_message(payload)
}

/// What one run produced.
#[derive(Debug)]
pub struct LabRun {
    /// The result.
    pub report: LabReport,
    /// The report's timeline, if asked for.
    pub timeline: Option<Timeline>,
}

/// Where a run's trace events go besides the hash.
pub type TraceCallback = Box<dyn FnMut(&TraceEvent)>;

/// Runs one seed: no trace kept, no timeline.
pub fn run_lab(options: &LabOptions) -> LabReport {
    run_lab_with(options, None, None).report
}

/// Runs one seed, handing every trace event to `trace` (if any) and building the report's
/// timeline (if `window` is `Some`: `Some(None)` for the whole run).
pub fn run_lab_with(
    options: &LabOptions,
    trace: Option<TraceCallback>,
    window: Option<Option<(u64, u64)>>,
) -> LabRun {
    let seed = LabSeed::derive(options);
    let timeline = window.map(|w| Rc::new(RefCell::new(TimelineBuilder::new(w))));
    let sink = match (trace, &timeline) {
        (None, None) => TraceSink::HashOnly,
        (trace, tl) => {
            let tl = tl.clone();
            let mut trace = trace;
            TraceSink::Stream(Box::new(move |e: &TraceEvent| {
                if let Some(f) = trace.as_mut() {
                    f(e);
                }
                if let Some(tl) = &tl {
                    tl.borrow_mut().trace(e);
                }
            }))
        }
    };
    let mut w = World::build(seed, sink, timeline.clone());
    capture_lab_panics();
    LAST_PANIC.with(|p| p.borrow_mut().take());
    CAPTURING.with(|c| c.set(true));
    let result = catch_unwind(AssertUnwindSafe(|| w.drive()));
    CAPTURING.with(|c| c.set(false));
    if let Err(payload) = result {
        let message =
            LAST_PANIC.with(|p| p.borrow_mut().take()).unwrap_or_else(|| panic_text(&*payload));
        let _ = catch_unwind(AssertUnwindSafe(|| w.pump()));
        let t = w.sim.now_nanos();
        w.checks.violation(LabCheck::Panic, t, message);
    }
    let report = w.report();
    let timeline = timeline.map(|tl| {
        let mut tl = tl.borrow_mut();
        tl.finish(&report, w.sim.now_nanos(), &w.rec.latencies)
    });
    LabRun { report, timeline }
}

/// The world of one seed.
pub(crate) struct World {
    pub sim: Simulation<Service>,
    pub seed: LabSeed,
    layout: ServiceLayout,
    pub nodes: Vec<ProcId>,
    pub clients: Vec<ProcId>,
    pub stores: (ProcId, ProcId),
    pub checks: LabCheckers,
    pub rec: Recorder,
    work: Workload,
    swarm: Swarm,
    dead: BTreeSet<ProcId>,
    client_crashes: u32,
    liveness: LabLiveness,
    lin: LinSummary,
    timeline: Option<Rc<RefCell<TimelineBuilder>>>,
    /// The buffer `pump` drains observations into (kept, so that draining allocates nothing).
    drained: Vec<Observed<Obs>>,
}

impl World {
    fn build(
        seed: LabSeed,
        sink: TraceSink,
        timeline: Option<Rc<RefCell<TimelineBuilder>>>,
    ) -> World {
        let mut layout = ServiceLayout::new(seed.nodes as u32, |id| seed.node_config(id));
        let spec = ClientSpec { config: seed.client_config(), script: vec![] };
        layout.clients = vec![spec; seed.clients];
        layout.stores = vec![StoreSpec { checked: true }, StoreSpec { checked: false }];
        let network = seed.fault_options.network;
        let factory = Rc::new(layout.clone()).factory();
        let mut sim = Simulation::new(seed.options.seed, network, factory);
        sim.set_trace_sink(sink);
        sim.set_drift_bound_ppm(seed.drift_bound_ppm);
        let mut rng = seed.plan_rng();
        let bound = i32::try_from(seed.drift_bound_ppm).expect("a small bound");
        let total = seed.nodes + seed.clients + 2;
        let offsets_max = (seed.nodes - 1) / 2;
        for i in 0..total {
            let drift_ppm = if seed.swarm.bad_clocks {
                if rng.random_bool(0.5) { bound } else { -bound }
            } else {
                rng.random_range(-bound..=bound)
            };
            let wall_offset_nanos = if seed.swarm.clock_offsets && i < offsets_max {
                rng.random_range(-OFFSET_BEYOND_NANOS_MAX..=OFFSET_BEYOND_NANOS_MAX)
            } else {
                0
            };
            sim.add_process_with(ProcOptions { drift_ppm, wall_offset_nanos, disk: None });
        }
        let nodes: Vec<ProcId> = (0..seed.nodes).map(|i| ProcId(i as u32)).collect();
        let clients: Vec<ProcId> = (0..seed.clients).map(|i| layout.client_proc(i)).collect();
        let stores = (layout.store_proc(0), layout.store_proc(1));
        sim.set_flip_policy(Some(minority_flip_policy(nodes.clone())));
        let work = Workload::new(&seed, &clients, stores);
        World {
            sim,
            seed,
            layout,
            nodes,
            clients,
            stores,
            checks: LabCheckers::new(),
            rec: Recorder::default(),
            work,
            swarm: Swarm::default(),
            dead: BTreeSet::new(),
            client_crashes: 0,
            liveness: LabLiveness::default(),
            lin: LinSummary::default(),
            timeline,
            drained: Vec::new(),
        }
    }

    fn drive(&mut self) {
        let safety = self.seed.safety_nanos();
        let end = safety + self.seed.liveness_nanos();
        let procs = self.sim.procs();
        let mut rng = self.seed.plan_rng();
        let plan = FaultPlan::random(&mut rng, &self.seed.fault_options, &procs, safety);
        self.swarm = plan.swarm;
        self.sim.schedule_plan(&plan);
        // The faults stop: after the plan's own restoration (same instant, queued later), the
        // network keeps its delays and its model but loses, duplicates, reorders and corrupts
        // nothing (reliable links, as the liveness of partial synchrony assumes).
        let calm = NetworkConfig {
            drop_probability: 0.0,
            duplicate_probability: 0.0,
            reorder_probability: 0.0,
            corrupt_probability: 0.0,
            ..self.seed.fault_options.network
        };
        self.sim.schedule(safety, Fault::SetNetwork(calm));
        self.schedule_clock_corrections(&plan.faults, safety, &mut rng);
        self.schedule_client_crashes(safety, &mut rng);
        if let Some(tl) = &self.timeline {
            tl.borrow_mut().plan(&plan.faults, safety, self.nodes.len());
        }
        let mut next_state_check = STATE_CHECK_EVERY_NANOS;
        let mut in_liveness = false;
        while self.sim.now_nanos() < end {
            let t = (self.sim.now_nanos() + TICK_NANOS).min(end);
            self.run_to(t);
            if !in_liveness && t >= safety {
                in_liveness = true;
                self.start_liveness();
            }
            if in_liveness
                && self.liveness.leader_after.is_none()
                && self.layout.leader(&self.sim).is_some()
            {
                self.liveness.leader_after = Some(t - safety);
            }
            self.work.tick(&mut self.sim, &mut self.rec, &mut self.checks);
            self.pump();
            if t >= next_state_check {
                next_state_check += STATE_CHECK_EVERY_NANOS;
                self.compare_states();
                if let Some(tl) = &self.timeline {
                    tl.borrow_mut().sample_clocks(&self.sim);
                }
            }
        }
        self.finish();
    }

    /// NTP comes back: each time-of-day step is undone a few seconds later (if still in the
    /// safety phase; the liveness phase corrects the rest).
    fn schedule_clock_corrections(
        &mut self,
        faults: &[(u64, Fault)],
        end: u64,
        rng: &mut rand_chacha::ChaCha8Rng,
    ) {
        for (at, correction) in wall_step_corrections(faults, end, rng) {
            self.sim.schedule(at, correction);
        }
    }

    /// Client crashes: about half restart (a new client, same remembered tokens), the others
    /// stay dead, so the liveness phase can demand that their locks are released.
    fn schedule_client_crashes(&mut self, safety: u64, rng: &mut rand_chacha::ChaCha8Rng) {
        for _ in 0..self.seed.swarm.client_crashes {
            let p = self.clients[rng.random_range(0..self.clients.len())];
            let at = rng.random_range(0..safety.max(1));
            let restart = rng.random_bool(0.5);
            let down = rng.random_range(1..=5 * nanos(self.seed.ttl));
            if self.dead.contains(&p) {
                continue;
            }
            self.sim.schedule(at, Fault::Crash(p));
            self.client_crashes += 1;
            if restart && at + down < safety {
                self.sim.schedule(at + down, Fault::Restart(p));
            } else {
                self.dead.insert(p);
            }
        }
    }

    /// Runs every event up to true time `t`, handing observations to the checkers as they
    /// are made (so each client observation is attributed to the incarnation that made it).
    fn run_to(&mut self, t: u64) {
        while self.sim.next_event_nanos().is_some_and(|next| next <= t) {
            self.sim.step();
            if !self.sim.observations().is_empty() {
                self.pump();
            }
        }
        self.sim.run_until(t);
    }

    /// Hands the observations made so far to the recorder, the checkers and the timeline.
    fn pump(&mut self) {
        let mut drained = std::mem::take(&mut self.drained);
        self.sim.drain_observations_into(&mut drained);
        for o in &drained {
            self.observe(o);
            if let Some(tl) = &self.timeline {
                tl.borrow_mut().observe(o, &self.sim);
            }
        }
        drained.clear();
        self.drained = drained;
    }

    fn observe(&mut self, o: &Observed<Obs>) {
        let (t, p) = (o.t_nanos, o.proc);
        match &o.obs {
            Obs::Node(NodeObs::Event(e)) => self.checks.node_event(t, p, e),
            Obs::Node(_) => {}
            Obs::Client(c) => self.client_obs(t, p, c),
            Obs::Store(s) => {
                let lost = self.checks.store_event(t, p, p == self.stores.0, s);
                if let (true, Some(tl)) = (lost, &self.timeline) {
                    tl.borrow_mut().lost_update(t, p, s);
                }
            }
        }
    }

    fn client_obs(&mut self, t: u64, p: ProcId, c: &ClientObs) {
        let inc = self.sim.incarnation(p).unwrap_or(0);
        match c {
            ClientObs::Completed { op, outcome, user, .. } => {
                let call = self.rec.completed((p, inc, *op), outcome, t);
                if let (
                    UserOp::Put { fence: Some(f), .. },
                    Outcome::Done(ReplyResult::Done(Ok(Reply::Written { .. }))),
                    Some(call),
                ) = (user, outcome, call)
                {
                    self.checks.kv_fenced_written(t, call, &f.lock, f.token);
                }
            }
            ClientObs::Invoked { user: UserOp::Put { fence: Some(f), .. }, .. } => {
                self.checks.write_sent(t, &f.lock, f.token);
            }
            ClientObs::StoreWriteSent { store, key, token: Some(token), .. }
                if *store == self.stores.0 =>
            {
                self.checks.write_sent(t, &lock_of_key(key), *token);
            }
            ClientObs::Granted { lock, token } => self.rec.granted(p, inc, lock, *token, t),
            _ => {}
        }
    }

    /// Replicas at equal applied indexes must hold equal state machines.
    fn compare_states(&mut self) {
        let states: Vec<_> = self
            .nodes
            .iter()
            .filter_map(|&p| {
                let core = self.sim.process(p)?.as_node()?.core()?;
                Some((p, core.applied_index(), core.state_machine().snapshot()))
            })
            .collect();
        self.checks.compare_states(self.sim.now_nanos(), &states);
    }

    /// The faults stopped: clocks back to true time, the lab's client faults off, operations
    /// from the end of the settling time on judged.
    fn start_liveness(&mut self) {
        let now = self.sim.now_nanos();
        let truth = i128::from(WALL_ORIGIN_NANOS) + i128::from(now);
        for p in self.sim.procs() {
            let local = self.sim.local_now(p).expect("known process").wall.as_nanos();
            let delta = i64::try_from(truth - i128::from(local)).expect("steps are bounded");
            if delta != 0 {
                self.sim.step_wall(p, delta).expect("known process");
            }
            // NTP disciplines the rate too: left at the bad-clock extremes (±DRIFT_BAD_PPM),
            // two healthy servers are definitely `clock_offset_max` apart ~12 s into calm, and
            // the design then lets neither lead (`clock_unfit`). Calm is not calm then.
            let drift = self.sim.clock(p).expect("known process").drift_ppm();
            let calm = drift.clamp(-CALM_DRIFT_PPM_MAX, CALM_DRIFT_PPM_MAX);
            if calm != drift {
                self.sim.set_drift(p, calm).expect("known process");
            }
        }
        self.work.faults_on = false;
        self.liveness.reached = true;
        self.liveness.start_nanos = now;
        let settle = self.settle_nanos();
        self.rec.judge_from = Some(now + settle);
    }

    /// Time after the faults stop before operations are judged: sessions lost in the safety
    /// phase are discovered and reopened, elections finish.
    pub(crate) fn settle_nanos(&self) -> u64 {
        2 * nanos(self.seed.ttl) + 5_000_000_000
    }

    fn finish(&mut self) {
        let end = self.sim.now_nanos();
        self.rec.finish(end);
        self.pump();
        self.check_histories(end);
        let final_applied = self.layout.leader(&self.sim).and_then(|id| {
            let core = self.sim.process(self.layout.node_proc(id))?.as_node()?.core()?;
            Some(core.applied_index())
        });
        let acked = std::mem::take(&mut self.rec.acked);
        self.checks.check_durability(end, &acked, final_applied);
        self.rec.acked = acked;
        if self.seed.network.checks_liveness() {
            crate::lab::liveness::judge(self, end);
        }
    }

    fn check_histories(&mut self, end: u64) {
        let options =
            CheckOptions { steps_max: LIN_STEPS_MAX, cache_entries_max: LIN_CACHE_ENTRIES_MAX };
        self.add_session_ends();
        self.lin.lock_ops = self.rec.lock_ops.len();
        self.lin.kv_ops = self.rec.kv_ops.len();
        let lock_model = LockModel::new(ExpiryRule::Logged);
        match check_operations(&lock_model, &self.rec.lock_ops, &options) {
            Ok(c) => {
                self.lin.steps += c.steps;
                self.lin.partitions += c.partitions;
                self.judge_lin("lock", c.result, end);
            }
            Err(e) => self.checks.violation(LabCheck::Linearizability, end, format!("{e}")),
        }
        match check_operations(&KvRegister::new(), &self.rec.kv_ops, &options) {
            Ok(c) => {
                self.lin.steps += c.steps;
                self.lin.partitions += c.partitions;
                self.judge_lin("kv", c.result, end);
            }
            Err(e) => self.checks.violation(LabCheck::Linearizability, end, format!("{e}")),
        }
        if let Err(v) = check_tokens(&self.rec.lock_ops) {
            self.checks.violation(LabCheck::TokenOrder, end, format!("{v:?}"));
        }
    }

    /// Adds to the clients' lock operations, on every lock, an `Expire` for each entry that ended
    /// a session, so the checker runs with [`ExpiryRule::Logged`]: a holder loses a lock only
    /// by releasing it or by a session end in the log, and two grants to different sessions
    /// without one in between are a violation. Each `Expire` spans from when it was asked for
    /// (the leader's proposal, the client's close) to its first apply: its commit lies inside.
    fn add_session_ends(&mut self) {
        let locks: BTreeSet<String> =
            self.rec.lock_ops.iter().map(|op| op.input.lock.clone()).collect();
        let view = &self.checks.view;
        for (&index, end) in &view.session_ends {
            let asked = view.end_asked_at(index, end, &self.rec.close_calls);
            for lock in &locks {
                let input = LockInput::new(lock.as_str(), end.session, LockOp::Expire);
                let expired = LockOutput::Expired;
                let op = Operation::returned(LOG_PROCESS, input, asked, end.applied_at, expired);
                self.rec.lock_ops.push(op);
            }
        }
    }

    fn judge_lin<K: std::fmt::Debug, S: std::fmt::Debug>(
        &mut self,
        what: &str,
        result: CheckResult<K, S>,
        end: u64,
    ) {
        match result {
            CheckResult::Ok => {}
            CheckResult::Illegal(v) => {
                let ops = if what == "lock" {
                    format!("{:?}", self.rec.lock_ops.get(v.op))
                } else {
                    format!("{:?}", self.rec.kv_ops.get(v.op))
                };
                let detail = format!(
                    "{what} history not linearizable: {:?} ({} ops): state {:?} after {} ops, \
                     cannot place {ops}",
                    v.partition,
                    v.partition_ops,
                    v.state,
                    v.prefix.len()
                );
                self.checks.violation(LabCheck::Linearizability, end, detail);
            }
            CheckResult::Unknown { partition, budget } => {
                self.lin.inconclusive.push(format!("{what} {partition:?} ({budget:?})"));
            }
        }
    }

    /// The liveness outcome, for the judge to fill in.
    pub(crate) fn liveness_mut(&mut self) -> &mut LabLiveness {
        &mut self.liveness
    }

    fn report(&self) -> LabReport {
        LabReport {
            seed: self.seed.clone(),
            swarm: self.swarm,
            stats: *self.sim.stats(),
            seen: self.checks.seen,
            client_crashes: self.client_crashes,
            dead_clients: self.dead.iter().copied().collect(),
            check_write_pauses: self.work.check_write_pauses,
            stale_token_writes: self.work.stale_token_writes,
            ops_completed: self.rec.completed,
            ops_unknown: self.rec.unknown,
            lin: self.lin.clone(),
            liveness: self.liveness.clone(),
            violations: self.checks.violations().to_vec(),
            counts: LabCheck::ALL.iter().map(|&k| (k, self.checks.count(k))).collect(),
            trace_hash: self.sim.trace_hash(),
            virtual_nanos: self.sim.now_nanos(),
        }
    }
}
