//! One seed of the Raft simulation: build the cluster, run the safety phase under the fault
//! plan, then the liveness phase, feeding the checkers all along.
//!
//! The safety phase runs the plan's faults for `safety` of true time; the checkers read every
//! observation as it is made and compare the durable logs every second. When it ends the plan
//! itself restores a world in which progress can be demanded: the network heals and returns
//! to its base configuration, every pause ends, every crashed server restarts (a server whose
//! disk refuses stays stopped). The runner then corrects every time-of-day clock (NTP came
//! back: a node whose clock stayed a minute off would rightly refuse to lead), and demands,
//! each within a bound: a leader; the acknowledgement of a command proposed after the faults
//! stopped; every live server having applied it. Servers that refused to start are excluded,
//! and the corruption policy keeps them a minority.
//!
//! A panic anywhere in a seed (Raft's `assert!`s, the WAL's, the driver's) fails the seed and
//! is reported with its message; the checkers still judge everything observed up to it. With
//! [`capture_panics`] installed, the message carries its source location and nothing is
//! printed to stderr for it.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use palisade_raft::{LogIndex, Role, Term};
use palisade_storage::WalOptions;

use crate::fault::wall_step_corrections;
use crate::raft::checker::{CheckerKind, RaftCheckers};
use crate::raft::client::RaftClient;
use crate::raft::completeness::{DiskLogs, View, electable_without, log_end};
use crate::raft::io_crash::IoCrashes;
use crate::raft::msg::{RaftObs, RaftProc};
use crate::raft::options::{
    LIVENESS_COMMIT_NANOS_MAX, LIVENESS_CONVERGE_NANOS_MAX, LIVENESS_LEADER_NANOS_MAX,
    RaftSimOptions, SeedOptions,
};
use crate::raft::report::{Counters, LivenessOutcome, RaftRunReport, secs};
use crate::raft::server::RaftServer;
use crate::raft::targeted::LeaderFaults;
use crate::{
    Boot, Fault, FaultPlan, Observed, ProcId, Simulation, Swarm, TraceSink, WALL_ORIGIN_NANOS,
    minority_flip_policy,
};

/// The safety phase runs in slices of this much true time, between which leader faults fire
/// and the logs are compared.
const SLICE_NANOS: u64 = 100_000_000;
/// The durable logs are compared this often (true time) in the safety phase.
const LOG_CHECK_EVERY_NANOS: u64 = 1_000_000_000;
/// Granularity of the liveness phase's measurements.
const LIVENESS_STEP_NANOS: u64 = 10_000_000;

thread_local! {
    /// Whether a seed is running on this thread (its panics are captured, not printed).
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    /// The last captured panic: message and location.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// Installs, once per process, a panic hook that records the message and location of a panic
/// raised while a seed runs on the current thread instead of printing it (a sweep's progress
/// bar stays clean; the report shows the panic). Other panics go to the previous hook.
pub fn capture_panics() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CAPTURING.get() {
                let location = info.location().map_or_else(String::new, |l| format!(" at {l}"));
                let text = format!("{}{location}", panic_message(info.payload()));
                LAST_PANIC.set(Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// The message of a panic payload (`&str` or `String`; anything else is named as such).
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// Runs one seed with the trace kept as a hash only.
pub fn run_seed(options: &RaftSimOptions) -> RaftRunReport {
    run_seed_with_trace(options, TraceSink::HashOnly)
}

/// Runs one seed, sending trace events to `sink`.
pub fn run_seed_with_trace(options: &RaftSimOptions, sink: TraceSink) -> RaftRunReport {
    let o = SeedOptions::derive(options);
    let mut w = World::build(&o, sink);
    LAST_PANIC.set(None);
    CAPTURING.set(true);
    let result = catch_unwind(AssertUnwindSafe(|| w.drive(&o)));
    CAPTURING.set(false);
    if let Err(payload) = result {
        let message = LAST_PANIC.take().unwrap_or_else(|| panic_message(payload.as_ref()));
        // What was observed before the panic still counts.
        let _ = catch_unwind(AssertUnwindSafe(|| w.pump()));
        let t = w.sim.now_nanos();
        w.checkers.violation(CheckerKind::Panic, t, message);
    }
    w.report(o)
}

/// A cluster under simulation and its checkers (also driven by `failover.rs`).
pub(crate) struct World {
    pub sim: Simulation<RaftProc>,
    pub checkers: RaftCheckers,
    pub servers: Vec<ProcId>,
    client: ProcId,
    swarm: Swarm,
    liveness: LivenessOutcome,
    /// In the liveness phase: the first sequence number proposed in it.
    liveness_seq: Option<u64>,
    /// The first acknowledgement of such a command: (true time, index).
    liveness_ack: Option<(u64, LogIndex)>,
    /// Faults aimed at the leader (in the safety phase).
    leader_faults: Option<LeaderFaults>,
    /// Crashes during fsyncs (in the safety phase).
    io_crashes: Option<IoCrashes>,
    /// If set, every observation is also copied here (for `failover.rs`).
    pub tap: Option<Vec<Observed<RaftObs>>>,
    /// Logs of crashed servers, read from their disks.
    disk_logs: DiskLogs,
    /// The servers' WAL options (to read their disks).
    wal: WalOptions,
}

impl World {
    /// The cluster of `o` (servers, then the client) at true time 0, tracing to `sink`.
    pub fn build(o: &SeedOptions, sink: TraceSink) -> World {
        let server_config = o.server_config();
        let client_config = o.client;
        let n = u32::try_from(o.nodes).expect("small cluster");
        let factory = Box::new(move |id: ProcId, boot: Boot| {
            if id.0 < n {
                RaftProc::Server(Box::new(RaftServer::boot(id, boot, &server_config)))
            } else {
                RaftProc::Client(RaftClient::new(client_config))
            }
        });
        let mut sim = Simulation::new(o.seed, o.fault_options.network, factory);
        sim.set_trace_sink(sink);
        let servers: Vec<ProcId> = (0..n).map(|_| sim.add_process()).collect();
        let client = sim.add_process();
        sim.set_flip_policy(Some(minority_flip_policy(servers.clone())));
        World {
            sim,
            checkers: RaftCheckers::new(),
            servers,
            client,
            swarm: Swarm::default(),
            liveness: LivenessOutcome { servers: o.nodes, ..LivenessOutcome::default() },
            liveness_seq: None,
            liveness_ack: None,
            leader_faults: None,
            io_crashes: None,
            tap: None,
            disk_logs: DiskLogs::default(),
            wal: o.server_config().wal,
        }
    }

    fn drive(&mut self, o: &SeedOptions) {
        let procs = self.sim.procs();
        let plan = FaultPlan::random(&mut o.plan_rng(), &o.fault_options, &procs, o.safety_nanos);
        self.swarm = plan.swarm;
        self.sim.schedule_plan(&plan);
        let end = plan.safety_phase_nanos;
        self.schedule_clock_corrections(o, &plan.faults, end);
        self.leader_faults = Some(LeaderFaults::draw(o, end));
        self.io_crashes = Some(IoCrashes::draw(o, end));
        let mut next_log_check = LOG_CHECK_EVERY_NANOS;
        while self.sim.now_nanos() < end {
            let slice_end = (self.sim.now_nanos() + SLICE_NANOS).min(end);
            let next_fault = self.leader_faults.as_ref().and_then(LeaderFaults::next_at);
            let fault_at = next_fault.filter(|&at| at < slice_end);
            let t = fault_at.unwrap_or(slice_end);
            self.run_to(t);
            if let Some(lf) = self.leader_faults.as_mut().filter(|_| fault_at.is_some()) {
                lf.fire(&mut self.sim, &self.servers);
            }
            if t >= next_log_check {
                self.check_logs();
                next_log_check += LOG_CHECK_EVERY_NANOS;
            }
        }
        self.liveness_phase();
    }

    /// NTP comes back: every step of a time-of-day clock is undone 1–10 s
    /// later (if that is still in the safety phase; the liveness phase corrects the rest).
    /// Without it, a few steps of seconds leave a majority of nodes with clocks too far apart
    /// to lead (they rightly refuse), and the rest of the safety phase tests nothing.
    fn schedule_clock_corrections(&mut self, o: &SeedOptions, faults: &[(u64, Fault)], end: u64) {
        let mut rng = o.clock_correction_rng();
        for (at, correction) in wall_step_corrections(faults, end, &mut rng) {
            self.sim.schedule(at, correction);
        }
    }

    /// Runs every event up to true time `t`, handing each observation to the checkers (and
    /// to the leader churn) as soon as it is made.
    pub fn run_to(&mut self, t: u64) {
        while self.sim.next_event_nanos().is_some_and(|next| next <= t) {
            self.sim.step();
            if !self.sim.observations().is_empty() {
                self.pump();
            }
            if let Some(io) = self.io_crashes.as_mut().filter(|io| io.wants(self.sim.now_nanos())) {
                io.check(&mut self.sim, &self.servers);
            }
        }
        self.sim.run_until(t);
    }

    /// Hands the observations made so far to the checkers.
    fn pump(&mut self) {
        for o in self.sim.drain_observations() {
            self.checkers.observe(&o);
            if let (RaftObs::Role { role: Role::Leader, .. }, Some(lf)) =
                (&o.obs, self.leader_faults.as_mut())
            {
                let in_fsync = lf.on_leader(&mut self.sim, o.proc);
                if let (Some(down), Some(io)) = (in_fsync, self.io_crashes.as_mut()) {
                    io.arm_for(o.proc, self.sim.now_nanos(), down);
                }
            }
            if let Some(tap) = self.tap.as_mut() {
                tap.push(o.clone());
            }
            if let Some(commit) = self.checkers.take_new_commit() {
                self.check_completeness(o.t_nanos, commit);
            }
            if let RaftObs::Acked { seq, index, .. } = o.obs {
                let fresh = self.liveness_seq.is_some_and(|s| seq >= s);
                if fresh && self.liveness_ack.is_none() {
                    self.liveness_ack = Some((o.t_nanos, index));
                }
            }
        }
    }

    /// No server lacking the newly committed entry may be electable (`completeness.rs`).
    fn check_completeness(&mut self, t: u64, commit: (LogIndex, Term, u64)) {
        let mut down = Vec::new();
        for &p in &self.servers {
            if self.sim.process(p).is_none() {
                let disk = self.sim.disk(p).expect("known server").clone();
                if let Some(log) = self.disk_logs.log_of(p, &disk, self.wal) {
                    down.push((p, log.clone()));
                }
            }
        }
        let mut views: Vec<View<'_>> =
            down.iter().map(|(p, log)| View { proc: *p, log, durable_end: log_end(log) }).collect();
        for &p in &self.servers {
            let Some(s) = self.server(p) else { continue };
            let (Some(log), Some(durable_end)) = (s.mirror(), s.durable_end()) else { continue };
            views.push(View { proc: p, log, durable_end });
        }
        views.sort_by_key(|v| v.proc);
        if let Some(detail) = electable_without(commit, &views, self.servers.len()) {
            self.checkers.violation(CheckerKind::LeaderCompleteness, t, detail);
        }
    }

    fn server(&self, p: ProcId) -> Option<&RaftServer> {
        self.sim.process(p)?.server()
    }

    /// Log matching over the running servers' durable logs.
    pub fn check_logs(&mut self) {
        let t = self.sim.now_nanos();
        let sim = &self.sim;
        let logs: Vec<_> = self
            .servers
            .iter()
            .filter_map(|&p| {
                let s = sim.process(p)?.server()?;
                // Entries up to `stable` are durable and match Raft's memory (a replacement
                // may be waiting for its fsync above it).
                let status = s.node()?.status();
                Some((p, s.mirror()?, status.commit.min(status.stable)))
            })
            .collect();
        self.checkers.check_logs(t, &logs);
    }

    /// Steps every time-of-day clock back to true time.
    fn fix_clocks(&mut self) {
        let truth = i128::from(WALL_ORIGIN_NANOS) + i128::from(self.sim.now_nanos());
        for p in self.sim.procs() {
            let local = self.sim.local_now(p).expect("known process").wall.as_nanos();
            let delta = i64::try_from(truth - i128::from(local)).expect("steps are bounded");
            if delta != 0 {
                self.sim.step_wall(p, delta).expect("known process");
            }
        }
    }

    fn liveness_phase(&mut self) {
        self.fix_clocks();
        let start = self.sim.now_nanos();
        self.liveness.reached = true;
        self.liveness.start_nanos = start;
        self.liveness.refused = self
            .servers
            .iter()
            .copied()
            .filter(|&p| self.server(p).is_none_or(|s| s.refusal().is_some()))
            .collect();
        let live: Vec<ProcId> =
            self.servers.iter().copied().filter(|p| !self.liveness.refused.contains(p)).collect();
        if live.len() * 2 <= self.servers.len() {
            let detail = format!("only {} of {} servers can start", live.len(), self.servers.len());
            self.checkers.violation(CheckerKind::Liveness, start, detail);
            return;
        }
        self.liveness_seq =
            self.sim.process(self.client).and_then(|c| c.client()).map(|c| c.next_seq());
        let mut target = None;
        while self.sim.now_nanos() - start < LIVENESS_CONVERGE_NANOS_MAX {
            self.run_to(self.sim.now_nanos() + LIVENESS_STEP_NANOS);
            let elapsed = self.sim.now_nanos() - start;
            if self.liveness.leader_after.is_none() && self.leader_exists(&live) {
                self.liveness.leader_after = Some(elapsed);
            }
            if let (None, Some((t, index))) = (target, self.liveness_ack) {
                self.liveness.commit_after = Some((t - start, index));
                target = Some(index.max(self.checkers.seen().acked_index_max));
            }
            if target.is_some_and(|target| self.all_applied(&live, target)) {
                self.liveness.converged_after = Some(elapsed);
                break;
            }
        }
        self.check_logs();
        self.judge_liveness(start, &live);
    }

    fn all_applied(&self, live: &[ProcId], index: LogIndex) -> bool {
        live.iter()
            .all(|&p| self.server(p).and_then(RaftServer::app).is_some_and(|a| a.applied >= index))
    }

    fn leader_exists(&self, live: &[ProcId]) -> bool {
        let nodes: Vec<_> = live.iter().filter_map(|&p| self.server(p)?.node()).collect();
        let term_max = nodes.iter().map(|n| n.term()).max();
        nodes.iter().any(|n| n.role() == Role::Leader && Some(n.term()) == term_max)
    }

    fn judge_liveness(&mut self, start: u64, live: &[ProcId]) {
        let l = &self.liveness;
        let mut failures = Vec::new();
        if l.leader_after.is_none_or(|t| t > LIVENESS_LEADER_NANOS_MAX) {
            failures.push(format!("no leader within {}", secs(LIVENESS_LEADER_NANOS_MAX)));
        }
        if l.commit_after.is_none_or(|(t, _)| t > LIVENESS_COMMIT_NANOS_MAX) {
            failures.push(format!("no commit within {}", secs(LIVENESS_COMMIT_NANOS_MAX)));
        }
        if l.converged_after.is_none() {
            failures.push(format!(
                "live servers not caught up within {}",
                secs(LIVENESS_CONVERGE_NANOS_MAX)
            ));
        }
        if failures.is_empty() {
            return;
        }
        let states: Vec<String> = live.iter().map(|&p| self.describe(p)).collect();
        let detail = format!("{}; servers: {}", failures.join(", "), states.join("; "));
        self.checkers.violation(CheckerKind::Liveness, start, detail);
    }

    /// One server's state in a few words, for a liveness failure.
    fn describe(&self, p: ProcId) -> String {
        let Some(node) = self.server(p).and_then(RaftServer::node) else {
            return format!("{p} down");
        };
        let s = node.status();
        format!(
            "{p} {:?} t{} leader {:?} commit {} applied {} last {} unfit {}",
            s.role, s.term, s.leader, s.commit, s.applied, s.last_index, s.clock_unfit
        )
    }

    fn report(self, options: SeedOptions) -> RaftRunReport {
        let client_sends =
            self.sim.process(self.client).and_then(RaftProc::client).map_or(0, RaftClient::sends);
        RaftRunReport {
            options,
            swarm: self.swarm,
            leader_faults_applied: self.leader_faults.as_ref().map_or(0, |l| l.applied),
            leader_churned: self.leader_faults.as_ref().map_or(0, |l| l.churned),
            io_crashes_applied: self.io_crashes.as_ref().map_or(0, |l| l.applied),
            counters: Counters {
                stats: *self.sim.stats(),
                seen: self.checkers.seen(),
                client_sends,
            },
            liveness: self.liveness,
            violations: self.checkers.violations().to_vec(),
            counts: CheckerKind::ALL.iter().map(|&k| (k, self.checkers.count(k))).collect(),
            trace_hash: self.sim.trace_hash(),
            virtual_nanos: self.sim.now_nanos(),
        }
    }
}
