//! Fault injection on the simulated world: the network, partitions, nodes, clocks and disks.
//!
//! Each fault is a method that takes effect now, and a [`Fault`] value that can be scheduled for
//! later; [`Simulation::apply`] maps one to the other, so a random plan, a scripted scenario and a
//! test all go through the same code. Every fault leaves a trace event, so the trace hash covers
//! what was injected as well as what the processes did about it.
//!
//! Semantics worth knowing when writing a checker:
//! - A partition is checked when a message is sent and again when it arrives: a message in
//!   flight on a link that is cut before it arrives is lost, like packets in a switch buffer
//!   when the cable is pulled; a message sent while the link is cut is lost at once.
//! - A crash drops the process value, its armed timer, its held outputs and the messages queued
//!   while it was paused, and crashes its disk (unsynced writes lost, the last write maybe
//!   torn). Messages it sent before crashing are on the wire and still arrive. Messages that
//!   arrive while it is down are lost. Its clock keeps running (it is the machine's clock).
//! - A pause stops the process, not its clock: messages that arrive queue up, timers do not
//!   fire; at the end it handles the queue in arrival order with its clock reading the resume
//!   time, then any timer that fell due. A second pause during a pause extends it.
//! - A mid-handler pause arms a pause for the process's next handler call: the call runs and
//!   changes the process's state, then its sends and observations are held until the pause
//!   ends. It models a process that checked a condition (a lease, a lock) and then stopped for
//!   a while before the effect of that check left the machine.

use crate::trace::{Head, TraceKind};
use crate::world::NoDetail;
use crate::{
    Fault, FaultPlan, FlipPolicy, NetworkConfig, Partition, ProcId, Process, Reachability,
    SimError, Simulation,
};

impl<P: Process> Simulation<P> {
    /// Applies `fault` now. A fault that cannot apply (say, crashing a process that is down)
    /// is recorded as a no-op in the trace and the stats, and returned as the error.
    pub fn apply(&mut self, fault: Fault) -> Result<(), SimError> {
        self.tracer.event(Head::at(self.now, TraceKind::Fault, None), &fault);
        let result = match fault {
            Fault::Partition(p) => {
                self.set_partition(p);
                Ok(())
            }
            Fault::Heal => {
                self.heal();
                Ok(())
            }
            Fault::Crash(id) => self.crash(id),
            Fault::Restart(id) => self.restart(id),
            Fault::Pause(id, nanos) => self.pause(id, nanos),
            Fault::PauseMidHandler(id, nanos) => self.pause_mid_handler(id, nanos),
            Fault::Resume(id) => self.resume(id),
            Fault::SetDrift(id, ppm) => self.set_drift(id, ppm),
            Fault::StepWall(id, delta) => self.step_wall(id, delta),
            Fault::FlipBit(id) => self.flip_random_bit(id).map(|_| ()),
            Fault::SetNetwork(cfg) => self.set_network(cfg),
        };
        match &result {
            Ok(()) => self.stats.faults_applied += 1,
            Err(e) => {
                self.stats.faults_noop += 1;
                let head = Head::at(self.now, TraceKind::FaultNoop, None);
                self.tracer.event(head, &format_args!("{e}"));
            }
        }
        result
    }

    /// Schedules every fault of `plan` (none may be in the past).
    pub fn schedule_plan(&mut self, plan: &FaultPlan) {
        for (at, fault) in &plan.faults {
            self.schedule(*at, fault.clone());
        }
    }

    /// The network configuration in force.
    pub fn network(&self) -> &NetworkConfig {
        &self.network
    }

    /// Replaces the network configuration for messages sent from now on.
    pub fn set_network(&mut self, network: NetworkConfig) -> Result<(), SimError> {
        network.validate()?;
        self.network = network;
        self.odds = crate::network::NetOdds::of(&network);
        self.tracer.event(Head::at(self.now, TraceKind::Network, None), &network);
        Ok(())
    }

    /// Replaces the current partition (if any) with `partition`.
    pub fn set_partition(&mut self, partition: Partition) {
        self.reach = Reachability::of(self.slots.len(), &partition);
        self.tracer.event(Head::at(self.now, TraceKind::Network, None), &partition);
        self.partition = Some(partition);
    }

    /// Removes the partition: every link up.
    pub fn heal(&mut self) {
        self.reach = Reachability::full(self.slots.len());
        self.partition = None;
        self.tracer.event(Head::at(self.now, TraceKind::Network, None), &format_args!("heal"));
    }

    /// The partition in force, if any.
    pub fn partition(&self) -> Option<&Partition> {
        self.partition.as_ref()
    }

    /// Whether a message from `from` to `to` would get through the partition now.
    pub fn can_reach(&self, from: ProcId, to: ProcId) -> bool {
        self.reach.can_reach(from, to)
    }

    /// Crashes the process (see the module doc for what is lost).
    pub fn crash(&mut self, id: ProcId) -> Result<(), SimError> {
        let t = self.now;
        if self.slot(id)?.proc.is_none() {
            return Err(SimError::Down(id));
        }
        let slot = &mut self.slots[id.index()];
        slot.proc = None;
        slot.timer_generation += 1;
        slot.timer_at = None;
        slot.pause_generation += 1;
        slot.paused_until = None;
        slot.hold_next = None;
        slot.held_sends.clear();
        slot.held_obs.clear();
        let backlog = std::mem::take(&mut slot.backlog);
        slot.disk.crash(&mut self.fault_rng);
        self.stats.crashes += 1;
        self.tracer.event(Head::at(t, TraceKind::Crash, Some(id)), &NoDetail);
        for d in backlog {
            self.stats.messages_dropped_down += 1;
            let head = Head::link(t, TraceKind::DropDown, d.from, d.to, d.id);
            self.tracer.event(head, &NoDetail);
        }
        Ok(())
    }

    /// Builds a crashed process again from its disk, with the next incarnation number.
    pub fn restart(&mut self, id: ProcId) -> Result<(), SimError> {
        let slot = self.slot_mut(id)?;
        if slot.proc.is_some() {
            return Err(SimError::AlreadyUp(id));
        }
        slot.incarnation += 1;
        self.stats.restarts += 1;
        self.boot(id, TraceKind::Restart);
        Ok(())
    }

    /// Stops the process for `nanos` of true time (extends a pause in progress).
    pub fn pause(&mut self, id: ProcId, nanos: u64) -> Result<(), SimError> {
        if self.slot(id)?.proc.is_none() {
            return Err(SimError::Down(id));
        }
        self.begin_pause(id, nanos, "stop-the-world");
        Ok(())
    }

    /// Arms a pause of `nanos` between the process's next handler call and that call's effects.
    pub fn pause_mid_handler(&mut self, id: ProcId, nanos: u64) -> Result<(), SimError> {
        let t = self.now;
        let slot = self.slot_mut(id)?;
        if slot.proc.is_none() {
            return Err(SimError::Down(id));
        }
        slot.hold_next = Some(nanos);
        let head = Head::at(t, TraceKind::Pause, Some(id));
        self.tracer.event(head, &format_args!("armed mid-handler for {nanos}ns"));
        Ok(())
    }

    /// Ends the process's pause now and disarms a mid-handler pause not yet taken: after this
    /// the process runs freely (the liveness phase of a fault plan relies on it).
    pub fn resume(&mut self, id: ProcId) -> Result<(), SimError> {
        let slot = self.slot_mut(id)?;
        if slot.proc.is_none() {
            return Err(SimError::Down(id));
        }
        let disarmed = slot.hold_next.take().is_some();
        if slot.paused_until.is_some() {
            self.resume_now(id);
        } else if disarmed {
            let head = Head::at(self.now, TraceKind::Resume, Some(id));
            self.tracer.event(head, &format_args!("disarmed mid-handler pause"));
        } else {
            return Err(SimError::NotPaused(id));
        }
        Ok(())
    }

    /// The bound on every clock's rate drift, in parts per million.
    pub fn drift_bound_ppm(&self) -> u32 {
        self.drift_bound_ppm
    }

    /// Sets the drift bound.
    ///
    /// # Panics
    /// If it exceeds `palisade_clock::DRIFT_BOUND_PPM_MAX` or a clock already drifts beyond it.
    pub fn set_drift_bound_ppm(&mut self, ppm: u32) {
        assert!(ppm <= palisade_clock::DRIFT_BOUND_PPM_MAX, "drift bound {ppm} ppm too large");
        for s in &self.slots {
            assert!(s.clock.drift_ppm().unsigned_abs() <= ppm, "a clock drifts beyond {ppm} ppm");
        }
        self.drift_bound_ppm = ppm;
    }

    /// Sets the rate drift of the process's clock from now on, and re-arms its timer.
    ///
    /// # Panics
    /// If `|ppm|` exceeds the drift bound: safety may assume the bound, so the simulator never
    /// breaks it.
    pub fn set_drift(&mut self, id: ProcId, ppm: i32) -> Result<(), SimError> {
        let bound = self.drift_bound_ppm;
        assert!(ppm.unsigned_abs() <= bound, "drift {ppm} ppm beyond the bound {bound} ppm");
        let t = self.now;
        let slot = self.slot_mut(id)?;
        slot.clock.set_drift(t, ppm);
        slot.timer_at = None;
        self.tracer.event(Head::at(t, TraceKind::Clock, Some(id)), &format_args!("drift {ppm}ppm"));
        self.arm_timer(id, t);
        Ok(())
    }

    /// Steps the process's time-of-day clock by `delta_nanos` (monotonic time is untouched).
    pub fn step_wall(&mut self, id: ProcId, delta_nanos: i64) -> Result<(), SimError> {
        let t = self.now;
        self.slot_mut(id)?.clock.step_wall(t, delta_nanos);
        let head = Head::at(t, TraceKind::Clock, Some(id));
        self.tracer.event(head, &format_args!("wall step {delta_nanos}ns"));
        Ok(())
    }

    /// Flips one random bit of the process's disk, if the corruption policy allows; the
    /// process is then marked corrupted until [`Simulation::clear_corrupted`]. Returns the file
    /// and the bit.
    pub fn flip_random_bit(&mut self, id: ProcId) -> Result<(String, u64), SimError> {
        self.slot(id)?;
        let allowed = match self.flip_policy.as_mut() {
            Some(policy) => policy(id, &self.corrupted),
            None => true,
        };
        if !allowed {
            return Err(SimError::FlipRefused(id));
        }
        let slot = &self.slots[id.index()];
        let Some((file, bit)) = slot.disk.flip_random_bit(&mut self.fault_rng) else {
            return Err(SimError::DiskEmpty(id));
        };
        self.corrupted.insert(id);
        self.stats.bit_flips += 1;
        let head = Head::at(self.now, TraceKind::DiskFlip, Some(id));
        self.tracer.event(head, &format_args!("{file} bit {bit}"));
        Ok((file, bit))
    }

    /// Sets (or with `None`, removes) the policy consulted before every bit flip.
    pub fn set_flip_policy(&mut self, policy: Option<FlipPolicy>) {
        self.flip_policy = policy;
    }

    /// Processes whose disks had a bit flipped and were not cleared since.
    pub fn corrupted(&self) -> &std::collections::BTreeSet<ProcId> {
        &self.corrupted
    }

    /// Marks the process's disk as no longer corrupted (e.g. the harness knows it was repaired
    /// or wiped), so the policy counts it no more.
    pub fn clear_corrupted(&mut self, id: ProcId) {
        self.corrupted.remove(&id);
    }
}
