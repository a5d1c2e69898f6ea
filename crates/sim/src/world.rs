//! The simulated world: processes, their clocks and disks, the network, and the event queue.
//!
//! One thread, virtual time. Every future happening (a message arriving, a timer, the end of a
//! pause, a scheduled fault) is an event in one priority queue ordered by `(true time, sequence
//! number)`, so two events at the same instant always run in the order they were queued, and a
//! run is a pure function of the seed, the processes and the calls made on the simulation.
//!
//! Every random choice comes from a ChaCha8Rng derived from the one `u64` seed, one stream per
//! concern (network, faults, clocks, each process incarnation), so that changing how often one
//! concern draws leaves the others' draws unchanged.
//!
//! True time is the simulator's own: nanoseconds since the run began, seen only by the
//! simulator, its trace and the checkers. A process sees its local clock (a [`SimClock`] that
//! drifts and steps as faults say), and its timers are set in its local monotonic time and
//! converted to true time when they are armed, and again whenever the drift changes.
//!
//! Fault injection lives in `inject.rs`; this file keeps the event loop and the plumbing.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;

use palisade_clock::{MonoInstant, Now, SimClock, WallTime};
use palisade_storage::SimDisk;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::network::{DELAY_NANOS_MIN, Links, NetOdds, sample_delay};
use crate::process::{Stream, derive_seed};
use crate::queue::EventQueue;
use crate::trace::{Head, TraceKind, Tracer};
use crate::{
    Boot, Ctx, Factory, Fault, NetworkConfig, Partition, ProcId, Process, Reachability, SimError,
    Stats, TraceEvent, TraceSink,
};

/// The true time at which the simulated world's time-of-day clocks start: 2025-01-01T00:00Z.
pub const WALL_ORIGIN_NANOS: u64 = 1_735_689_600_000_000_000;

/// Processes' monotonic clocks start at a random reading below this (about 18 minutes of
/// uptime), so no protocol can rely on two processes' monotonic readings being comparable.
pub const MONO_START_NANOS_MAX: u64 = 1 << 40;

/// How a process is set up when added.
#[derive(Debug, Default)]
pub struct ProcOptions {
    /// Initial rate drift of its clock, in parts per million (within the drift bound).
    pub drift_ppm: i32,
    /// Offset of its time-of-day clock from the world's true time of day, in nanoseconds.
    pub wall_offset_nanos: i64,
    /// Its disk; `None`: a new, empty one.
    pub disk: Option<SimDisk>,
}

/// One observation a process reported, stamped with the true time it took effect.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed<O> {
    /// True time, in nanoseconds since the run began.
    pub t_nanos: u64,
    /// The process that reported it.
    pub proc: ProcId,
    /// What it reported.
    pub obs: O,
}

/// Decides whether a disk may be corrupted now: called with the process and the set of
/// processes whose disks are currently marked corrupted; `false` refuses the bit flip.
pub type FlipPolicy = Box<dyn FnMut(ProcId, &BTreeSet<ProcId>) -> bool>;

/// A policy that keeps corrupted disks to a strict minority of `servers` at any time; processes
/// outside `servers` are never refused.
pub fn minority_flip_policy(servers: Vec<ProcId>) -> FlipPolicy {
    Box::new(move |p, corrupted| {
        if !servers.contains(&p) || corrupted.contains(&p) {
            return true;
        }
        let already = servers.iter().filter(|s| corrupted.contains(s)).count();
        (already + 1) * 2 < servers.len()
    })
}

/// A message on its way.
#[derive(Debug)]
pub(crate) struct Delivery<M> {
    pub from: ProcId,
    pub to: ProcId,
    pub msg: M,
    pub id: u64,
    pub corrupt: bool,
}

#[derive(Debug)]
pub(crate) enum Ev<M> {
    Deliver(Delivery<M>),
    Timer { proc: ProcId, generation: u64 },
    Resume { proc: ProcId, generation: u64 },
    Fault(Fault),
}

/// Everything the world keeps about one process, up or down.
pub(crate) struct Slot<P: Process> {
    pub proc: Option<P>,
    pub disk: SimDisk,
    pub clock: SimClock,
    pub incarnation: u32,
    pub rng: ChaCha8Rng,
    /// Bumped whenever the armed timer changes; a timer event of another generation is stale.
    pub timer_generation: u64,
    /// True time the timer is armed for; `None`: not armed.
    pub timer_at: Option<u64>,
    /// The local deadline `timer_at` was computed from, to skip recomputing an unchanged one.
    pub timer_mono: Option<MonoInstant>,
    /// Bumped whenever the pause changes; a resume event of another generation is stale.
    pub pause_generation: u64,
    pub paused_until: Option<u64>,
    pub backlog: VecDeque<Delivery<P::Msg>>,
    /// A mid-handler pause armed for the next handler call.
    pub hold_next: Option<u64>,
    pub held_sends: Vec<(ProcId, P::Msg)>,
    pub held_obs: Vec<P::Obs>,
}

/// Prints nothing: the detail of events that have none.
pub(crate) struct NoDetail;

impl fmt::Debug for NoDetail {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

/// A deterministic simulation of processes of type `P`.
///
/// Driver order: build with [`Simulation::new`], add processes, schedule faults, then
/// [`Simulation::run_until`] (or [`Simulation::step`]); read observations, stats and the trace
/// hash at any point. Everything, including processes added and faults applied mid-run, is
/// deterministic given the seed and the sequence of calls.
pub struct Simulation<P: Process> {
    pub(crate) seed: u64,
    pub(crate) now: u64,
    queue: EventQueue<Ev<P::Msg>>,
    pub(crate) slots: Vec<Slot<P>>,
    factory: Factory<P>,
    pub(crate) network: NetworkConfig,
    pub(crate) odds: NetOdds,
    links: Links,
    pub(crate) partition: Option<Partition>,
    pub(crate) reach: Reachability,
    net_rng: ChaCha8Rng,
    pub(crate) fault_rng: ChaCha8Rng,
    clock_rng: ChaCha8Rng,
    pub(crate) drift_bound_ppm: u32,
    pub(crate) tracer: Tracer,
    pub(crate) stats: Stats,
    observations: Vec<Observed<P::Obs>>,
    out: Vec<(ProcId, P::Msg)>,
    obs: Vec<P::Obs>,
    pub(crate) flip_policy: Option<FlipPolicy>,
    pub(crate) corrupted: BTreeSet<ProcId>,
    next_msg: u64,
}

impl<P: Process> Simulation<P> {
    /// A world with no processes at true time 0.
    ///
    /// # Panics
    /// If `network` is invalid ([`NetworkConfig::validate`]).
    pub fn new(seed: u64, network: NetworkConfig, factory: Factory<P>) -> Self {
        if let Err(e) = network.validate() {
            panic!("{e}");
        }
        let rng = |s| ChaCha8Rng::seed_from_u64(derive_seed(seed, s, 0, 0));
        Simulation {
            seed,
            now: 0,
            queue: EventQueue::new(),
            slots: Vec::new(),
            factory,
            network,
            odds: NetOdds::of(&network),
            links: Links::default(),
            partition: None,
            reach: Reachability::full(0),
            net_rng: rng(Stream::Network),
            fault_rng: rng(Stream::Faults),
            clock_rng: rng(Stream::Clocks),
            drift_bound_ppm: palisade_clock::DRIFT_BOUND_PPM_DEFAULT,
            tracer: Tracer::new(TraceSink::HashOnly),
            stats: Stats::default(),
            observations: Vec::new(),
            out: Vec::new(),
            obs: Vec::new(),
            flip_policy: None,
            corrupted: BTreeSet::new(),
            next_msg: 0,
        }
    }

    /// Where trace events go besides the hash. Set it before the run to see every event.
    pub fn set_trace_sink(&mut self, sink: TraceSink) {
        self.tracer.set_sink(sink);
    }

    /// The seed the world was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// True time, in nanoseconds since the run began.
    pub fn now_nanos(&self) -> u64 {
        self.now
    }

    /// Adds a process with default options (no drift, no wall offset, a new disk) and starts it.
    pub fn add_process(&mut self) -> ProcId {
        self.add_process_with(ProcOptions::default())
    }

    /// Adds a process and starts it: the factory builds it, then its `handle_start` runs.
    ///
    /// # Panics
    /// If the drift is beyond the drift bound.
    pub fn add_process_with(&mut self, options: ProcOptions) -> ProcId {
        assert!(
            options.drift_ppm.unsigned_abs() <= self.drift_bound_ppm,
            "drift {} ppm beyond the bound {} ppm",
            options.drift_ppm,
            self.drift_bound_ppm
        );
        let index = self.slots.len();
        let id = ProcId(u32::try_from(index).expect("process count fits u32"));
        let mono = MonoInstant::from_nanos(self.clock_rng.random_range(0..MONO_START_NANOS_MAX));
        let wall_true = i128::from(WALL_ORIGIN_NANOS) + i128::from(self.now);
        let wall =
            (wall_true + i128::from(options.wall_offset_nanos)).clamp(0, i128::from(u64::MAX));
        let wall = WallTime::from_nanos(u64::try_from(wall).unwrap_or(u64::MAX));
        self.slots.push(Slot {
            proc: None,
            disk: options.disk.unwrap_or_default(),
            clock: SimClock::new(self.now, mono, wall, options.drift_ppm),
            incarnation: 0,
            rng: ChaCha8Rng::seed_from_u64(0),
            timer_generation: 0,
            timer_at: None,
            timer_mono: None,
            pause_generation: 0,
            paused_until: None,
            backlog: VecDeque::new(),
            hold_next: None,
            held_sends: Vec::new(),
            held_obs: Vec::new(),
        });
        let n = self.slots.len();
        self.links.grow(n);
        self.reach = match &self.partition {
            Some(p) => Reachability::of(n, p),
            None => Reachability::full(n),
        };
        self.boot(id, TraceKind::Start);
        id
    }

    /// Builds the process from its disk and runs `handle_start`.
    pub(crate) fn boot(&mut self, id: ProcId, kind: TraceKind) {
        let t = self.now;
        let slot = &mut self.slots[id.index()];
        let inc = slot.incarnation;
        let index = u64::from(id.0);
        slot.rng =
            ChaCha8Rng::seed_from_u64(derive_seed(self.seed, Stream::ProcCtx, index, inc.into()));
        let boot = Boot {
            disk: slot.disk.clone(),
            incarnation: inc,
            seed: derive_seed(self.seed, Stream::ProcBoot, index, inc.into()),
            now: slot.clock.reading(t),
        };
        self.tracer.event(Head::at(t, kind, Some(id)), &format_args!("incarnation {inc}"));
        let p = (self.factory)(id, boot);
        self.slots[id.index()].proc = Some(p);
        self.call(id, t, |p, ctx| p.handle_start(ctx));
    }

    /// All process ids, in order.
    pub fn procs(&self) -> Vec<ProcId> {
        (0..self.slots.len()).map(|i| ProcId(i as u32)).collect()
    }

    /// Number of processes (up or down).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the world has no processes.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub(crate) fn slot(&self, id: ProcId) -> Result<&Slot<P>, SimError> {
        self.slots.get(id.index()).ok_or(SimError::UnknownProc(id))
    }

    pub(crate) fn slot_mut(&mut self, id: ProcId) -> Result<&mut Slot<P>, SimError> {
        self.slots.get_mut(id.index()).ok_or(SimError::UnknownProc(id))
    }

    /// The running process, or `None` if it is down or unknown.
    pub fn process(&self, id: ProcId) -> Option<&P> {
        self.slots.get(id.index())?.proc.as_ref()
    }

    /// The running process, mutably. A change that moves its timer is noticed at its next
    /// handler call; to act as the process (send, observe) use [`Simulation::invoke`].
    pub fn process_mut(&mut self, id: ProcId) -> Option<&mut P> {
        self.slots.get_mut(id.index())?.proc.as_mut()
    }

    /// The process's disk (kept across crashes).
    pub fn disk(&self, id: ProcId) -> Option<&SimDisk> {
        Some(&self.slots.get(id.index())?.disk)
    }

    /// The process's clock (kept across crashes: the machine's clock, not the process's).
    pub fn clock(&self, id: ProcId) -> Option<&SimClock> {
        Some(&self.slots.get(id.index())?.clock)
    }

    /// The process's local clock readings now.
    pub fn local_now(&self, id: ProcId) -> Option<Now> {
        Some(self.slots.get(id.index())?.clock.reading(self.now))
    }

    /// Whether the process is running (possibly paused).
    pub fn is_up(&self, id: ProcId) -> bool {
        self.process(id).is_some()
    }

    /// Whether the process is in a stop-the-world pause.
    pub fn is_paused(&self, id: ProcId) -> bool {
        self.slots.get(id.index()).is_some_and(|s| s.paused_until.is_some())
    }

    /// The process's incarnation (0 until its first restart).
    pub fn incarnation(&self, id: ProcId) -> Option<u32> {
        Some(self.slots.get(id.index())?.incarnation)
    }

    /// Observations so far, in the order they took effect.
    pub fn observations(&self) -> &[Observed<P::Obs>] {
        &self.observations
    }

    /// Moves the observations recorded so far, in order, into `buf`, which must be empty:
    /// the log and `buf` swap buffers, so a harness that drains after nearly every event
    /// through one buffer of its own copies and allocates nothing.
    pub fn drain_observations_into(&mut self, buf: &mut Vec<Observed<P::Obs>>) {
        assert!(buf.is_empty(), "drain_observations_into needs an empty buffer");
        std::mem::swap(&mut self.observations, buf);
    }

    /// Takes the observations so far, leaving the log empty.
    pub fn drain_observations(&mut self) -> Vec<Observed<P::Obs>> {
        // The log keeps its buffer and the caller gets an exactly sized copy: harnesses drain
        // after nearly every event, and a fresh log would grow again from nothing each time
        // (observations are a few hundred bytes, so even its first block is a slow one).
        let mut drained = Vec::with_capacity(self.observations.len());
        drained.append(&mut self.observations);
        drained
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// FNV-1a hash of every event so far: equal for two runs iff they did the same things.
    pub fn trace_hash(&self) -> u64 {
        self.tracer.hash()
    }

    /// Number of events traced so far.
    pub fn trace_len(&self) -> u64 {
        self.tracer.count()
    }

    /// Events kept so far (only with [`TraceSink::Keep`]).
    pub fn trace_events(&self) -> &[TraceEvent] {
        self.tracer.kept()
    }

    /// Takes the kept events, leaving none.
    pub fn take_trace_events(&mut self) -> Vec<TraceEvent> {
        self.tracer.take_kept()
    }

    /// Number of events waiting in the queue (stale timers included).
    pub fn pending_events(&self) -> usize {
        self.queue.len()
    }

    /// True time of the next event, if any.
    pub fn next_event_nanos(&self) -> Option<u64> {
        self.queue.peek_t()
    }

    pub(crate) fn push(&mut self, t: u64, ev: Ev<P::Msg>) {
        assert!(t >= self.now, "event scheduled in the past");
        self.queue.push(t, ev);
    }

    /// Schedules `fault` at true time `at_nanos` (not in the past).
    ///
    /// # Panics
    /// If `at_nanos` is before now.
    pub fn schedule(&mut self, at_nanos: u64, fault: Fault) {
        self.push(at_nanos, Ev::Fault(fault));
    }

    /// Runs the next event. Returns `false` if there was none.
    pub fn step(&mut self) -> bool {
        let Some((t, ev)) = self.queue.pop() else {
            return false;
        };
        assert!(t >= self.now, "time went backwards");
        self.now = t;
        self.stats.events += 1;
        match ev {
            Ev::Deliver(d) => self.on_arrival(d),
            Ev::Timer { proc, generation } => self.on_timer(proc, generation),
            Ev::Resume { proc, generation } => self.on_resume(proc, generation),
            Ev::Fault(f) => {
                let _ = self.apply(f);
            }
        }
        true
    }

    /// Runs every event up to and including true time `t_nanos`, then sets the time to it.
    pub fn run_until(&mut self, t_nanos: u64) {
        while self.queue.peek_t().is_some_and(|t| t <= t_nanos) {
            self.step();
        }
        self.now = self.now.max(t_nanos);
    }

    /// Runs for `nanos` more nanoseconds of true time.
    pub fn run_for(&mut self, nanos: u64) {
        self.run_until(self.now.saturating_add(nanos));
    }

    /// Calls into a running, unpaused process as if it were a handler call now: `f` gets the
    /// process and a [`Ctx`]; its sends and observations are applied as a handler's would be.
    /// This is how a workload hands a client its next request.
    pub fn invoke<R>(
        &mut self,
        id: ProcId,
        f: impl FnOnce(&mut P, &mut Ctx<'_, P::Msg, P::Obs>) -> R,
    ) -> Result<R, SimError> {
        let slot = self.slot(id)?;
        if slot.proc.is_none() {
            return Err(SimError::Down(id));
        }
        if slot.paused_until.is_some() {
            return Err(SimError::Paused(id));
        }
        self.stats.invokes += 1;
        self.tracer.event(Head::at(self.now, TraceKind::Invoke, Some(id)), &NoDetail);
        Ok(self.call(id, self.now, f))
    }

    /// Runs one handler call of a running process, applies (or holds) its outputs, and re-arms
    /// its timer no earlier than `timer_floor`.
    fn call<R>(
        &mut self,
        id: ProcId,
        timer_floor: u64,
        f: impl FnOnce(&mut P, &mut Ctx<'_, P::Msg, P::Obs>) -> R,
    ) -> R {
        let t = self.now;
        let Slot { proc, clock, incarnation, rng, .. } = &mut self.slots[id.index()];
        let p = proc.as_mut().expect("handler call on a down process");
        let mut ctx = Ctx {
            now: clock.reading(t),
            me: id,
            incarnation: *incarnation,
            outbox: &mut self.out,
            observed: &mut self.obs,
            rng,
        };
        let r = f(p, &mut ctx);
        let slot = &mut self.slots[id.index()];
        if let Some(d) = slot.hold_next.take() {
            slot.held_sends.append(&mut self.out);
            slot.held_obs.append(&mut self.obs);
            let held = slot.held_sends.len() + slot.held_obs.len();
            let head = Head::at(t, TraceKind::Hold, Some(id));
            self.tracer.event(head, &format_args!("{held} outputs for {d}ns"));
            self.begin_pause(id, d, "mid-handler");
        } else {
            self.flush(id);
        }
        self.arm_timer(id, timer_floor);
        r
    }

    /// Applies the outputs collected in `out` and `obs` as coming from `id` now.
    fn flush(&mut self, id: ProcId) {
        let mut out = std::mem::take(&mut self.out);
        for (to, msg) in out.drain(..) {
            self.transmit(id, to, msg);
        }
        self.out = out;
        // As `record_observation` per observation, in order, but each observation is hashed
        // where it lies and moved once, straight into the log (they are a few hundred bytes).
        let mut obs = std::mem::take(&mut self.obs);
        for o in &obs {
            self.trace_observation(id, o);
        }
        let t_nanos = self.now;
        self.observations.extend(obs.drain(..).map(|obs| Observed { t_nanos, proc: id, obs }));
        self.obs = obs;
    }

    pub(crate) fn record_observation(&mut self, id: ProcId, obs: P::Obs) {
        self.trace_observation(id, &obs);
        self.observations.push(Observed { t_nanos: self.now, proc: id, obs });
    }

    /// Counts an observation of `id` and feeds it into the trace (the caller logs it).
    fn trace_observation(&mut self, id: ProcId, obs: &P::Obs) {
        self.stats.observations += 1;
        let head = Head::at(self.now, TraceKind::Observe, Some(id));
        self.tracer.observation(head, obs, P::digest_obs);
    }

    /// Hands one message to the network now: it is lost, or queued for arrival (maybe twice).
    pub(crate) fn transmit(&mut self, from: ProcId, to: ProcId, msg: P::Msg) {
        assert!(to.index() < self.slots.len(), "{from} sent to unknown process {to}");
        let t = self.now;
        let id = self.next_msg;
        self.next_msg += 1;
        self.stats.messages_sent += 1;
        self.tracer.message(Head::link(t, TraceKind::Send, from, to, id), &msg);
        if from == to {
            let d = Delivery { from, to, msg, id, corrupt: false };
            self.push(t + DELAY_NANOS_MIN, Ev::Deliver(d));
            return;
        }
        if !self.reach.can_reach(from, to) {
            self.stats.messages_dropped_partition += 1;
            self.tracer.event(Head::link(t, TraceKind::DropPartition, from, to, id), &NoDetail);
            return;
        }
        if self.odds.drop.draw(&mut self.net_rng) {
            self.stats.messages_dropped += 1;
            self.tracer.event(Head::link(t, TraceKind::Drop, from, to, id), &NoDetail);
            return;
        }
        if self.odds.duplicate.draw(&mut self.net_rng) {
            self.stats.messages_duplicated += 1;
            self.tracer.event(Head::link(t, TraceKind::Duplicate, from, to, id), &NoDetail);
            self.enqueue(Delivery { from, to, msg: msg.clone(), id, corrupt: false });
        }
        self.enqueue(Delivery { from, to, msg, id, corrupt: false });
    }

    /// Draws the delay, reordering and corruption of one copy and queues its arrival.
    fn enqueue(&mut self, mut d: Delivery<P::Msg>) {
        let t = self.now;
        let cfg = self.network;
        let odds = self.odds;
        let delay = sample_delay(&cfg.delay, odds.tail, &mut self.net_rng);
        let reorder = odds.reorder.draw(&mut self.net_rng);
        d.corrupt = odds.corrupt.draw(&mut self.net_rng);
        let deadline = cfg.model.arrival_deadline(t);
        let link = (d.from.index(), d.to.index());
        let per_message = cfg.delay.per_message_nanos;
        let at = self.links.arrival(link, t, delay, per_message, reorder, deadline);
        if reorder {
            self.stats.messages_reordered += 1;
            let head = Head::link(t, TraceKind::Reorder, d.from, d.to, d.id);
            self.tracer.event(head, &NoDetail);
        }
        self.push(at, Ev::Deliver(d));
    }

    /// A message reaches its destination's machine.
    fn on_arrival(&mut self, d: Delivery<P::Msg>) {
        let t = self.now;
        let (from, to, id) = (d.from, d.to, d.id);
        if !self.reach.can_reach(from, to) {
            self.stats.messages_dropped_partition += 1;
            self.tracer.event(Head::link(t, TraceKind::DropPartition, from, to, id), &NoDetail);
            return;
        }
        if self.slots[to.index()].proc.is_none() {
            self.stats.messages_dropped_down += 1;
            self.tracer.event(Head::link(t, TraceKind::DropDown, from, to, id), &NoDetail);
            return;
        }
        let mut d = d;
        if d.corrupt {
            let Some(decoded) = self.corrupt(&d.msg) else {
                self.stats.corrupt_detected += 1;
                let head = Head::link(t, TraceKind::CorruptDetected, from, to, id);
                self.tracer.event(head, &NoDetail);
                return;
            };
            self.stats.corrupt_undetected += 1;
            let head = Head::link(t, TraceKind::CorruptUndetected, from, to, id);
            self.tracer.message(head, &decoded);
            d.msg = decoded;
        }
        if self.slots[to.index()].paused_until.is_some() {
            self.tracer.event(Head::link(t, TraceKind::Queue, from, to, id), &NoDetail);
            self.slots[to.index()].backlog.push_back(d);
            return;
        }
        self.deliver(d);
    }

    /// Encodes the message as a frame, flips one random bit, decodes: `None` if the frame
    /// check caught it, else whatever the damaged frame decoded to.
    fn corrupt(&mut self, msg: &P::Msg) -> Option<P::Msg> {
        let mut frame = match palisade_wire::encode(msg) {
            Ok(f) => f,
            Err(e) => panic!("a message does not encode as a frame: {e}"),
        };
        assert!(!frame.is_empty(), "empty frame");
        let bit = self.net_rng.random_range(0..frame.len() * 8);
        frame[bit / 8] ^= 1 << (bit % 8);
        palisade_wire::decode(&frame).ok()
    }

    /// Runs the destination's `handle_message`.
    pub(crate) fn deliver(&mut self, d: Delivery<P::Msg>) {
        self.stats.messages_delivered += 1;
        let head = Head::link(self.now, TraceKind::Deliver, d.from, d.to, d.id);
        // The content was hashed at the send (and again if corruption changed it).
        self.tracer.message_again(head, &d.msg);
        let (from, msg) = (d.from, d.msg);
        self.call(d.to, self.now, |p, ctx| p.handle_message(ctx, from, msg));
    }

    /// Arms the process's timer at the true time its local deadline is reached, no earlier than
    /// `floor`. Does nothing if that is the time already armed.
    pub(crate) fn arm_timer(&mut self, id: ProcId, floor: u64) {
        let slot = &mut self.slots[id.index()];
        let Some(p) = slot.proc.as_ref() else {
            return;
        };
        let deadline = p.poll_timeout();
        if deadline == slot.timer_mono && slot.timer_at.is_some_and(|at| at >= floor) {
            return; // Armed for this very deadline, on an unchanged clock.
        }
        let want = deadline.map(|m| slot.clock.true_nanos_at_mono(m).max(floor));
        if want == slot.timer_at {
            slot.timer_mono = deadline;
            return;
        }
        let later = matches!((want, slot.timer_at), (Some(w), Some(a)) if w > a && a >= floor);
        if later {
            // A later deadline (an election timer pushed back by every heartbeat): leave the
            // armed event in the queue rather than add one per move. When it fires,
            // `on_timer` finds the deadline not reached and arms it for the new one, at the
            // same true time as arming it now would.
            slot.timer_mono = deadline;
            return;
        }
        slot.timer_generation += 1;
        slot.timer_at = want;
        slot.timer_mono = deadline;
        let generation = slot.timer_generation;
        if let Some(at) = want {
            self.push(at, Ev::Timer { proc: id, generation });
        }
    }

    fn on_timer(&mut self, id: ProcId, generation: u64) {
        let t = self.now;
        let slot = &mut self.slots[id.index()];
        if slot.timer_generation != generation || slot.proc.is_none() {
            return;
        }
        slot.timer_at = None;
        if slot.paused_until.is_some() {
            return; // The resume re-arms it.
        }
        let local = slot.clock.reading(t).mono;
        let deadline = slot.proc.as_ref().and_then(|p| p.poll_timeout());
        if deadline.is_none_or(|d| d > local) {
            // The deadline moved, or the clock's rate changed since arming.
            self.arm_timer(id, t + 1);
            return;
        }
        self.stats.timers_fired += 1;
        self.tracer.event_u64(Head::at(t, TraceKind::Timer, Some(id)), local.as_nanos());
        // A timer that stays due after its handler fires again one nanosecond later, not now,
        // so a process that never clears its deadline cannot stop time.
        self.call(id, t + 1, |p, ctx| p.handle_timeout(ctx));
    }

    fn on_resume(&mut self, id: ProcId, generation: u64) {
        let slot = &self.slots[id.index()];
        if slot.pause_generation != generation || slot.proc.is_none() {
            return;
        }
        self.resume_now(id);
    }

    /// Ends the pause: releases held outputs, handles the backlog in order, re-arms the timer.
    pub(crate) fn resume_now(&mut self, id: ProcId) {
        let t = self.now;
        let slot = &mut self.slots[id.index()];
        slot.paused_until = None;
        slot.pause_generation += 1;
        let sends = std::mem::take(&mut slot.held_sends);
        let obs = std::mem::take(&mut slot.held_obs);
        let backlog = slot.backlog.len();
        self.tracer.event(
            Head::at(t, TraceKind::Resume, Some(id)),
            &format_args!("{} held, {backlog} queued", sends.len() + obs.len()),
        );
        for (to, msg) in sends {
            self.transmit(id, to, msg);
        }
        for o in obs {
            self.record_observation(id, o);
        }
        loop {
            let slot = &mut self.slots[id.index()];
            if slot.paused_until.is_some() || slot.proc.is_none() {
                break;
            }
            let Some(d) = slot.backlog.pop_front() else {
                break;
            };
            self.deliver(d);
        }
        let slot = &mut self.slots[id.index()];
        if slot.paused_until.is_none() {
            slot.timer_at = None;
            self.arm_timer(id, t);
        }
    }

    /// Starts (or extends) a pause of `nanos` from now.
    pub(crate) fn begin_pause(&mut self, id: ProcId, nanos: u64, why: &'static str) {
        let t = self.now;
        let slot = &mut self.slots[id.index()];
        let until = t.saturating_add(nanos).max(slot.paused_until.unwrap_or(0));
        slot.paused_until = Some(until);
        slot.pause_generation += 1;
        let generation = slot.pause_generation;
        self.stats.pauses += 1;
        let head = Head::at(t, TraceKind::Pause, Some(id));
        self.tracer.event(head, &format_args!("{why} for {nanos}ns until t={until}"));
        self.push(until, Ev::Resume { proc: id, generation });
    }
}

impl<P: Process> fmt::Debug for Simulation<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulation")
            .field("seed", &self.seed)
            .field("now_nanos", &self.now)
            .field("procs", &self.slots.len())
            .field("pending_events", &self.queue.len())
            .field("partition", &self.partition)
            .field("stats", &self.stats)
            .field("tracer", &self.tracer)
            .finish_non_exhaustive()
    }
}
