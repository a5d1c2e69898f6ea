//! Faults as data, and the swarm-style generator of random fault plans.
//!
//! Every fault the simulator can inject is a [`Fault`] value, so a plan is a plain list of
//! `(true time, fault)` that can be printed, stored, shrunk and replayed. [`FaultPlan::random`]
//! draws one from a seed the way swarm testing does: first it decides which kinds of fault this
//! run has at all and how many of each (a run with only partitions finds different bugs from a
//! run where everything happens at once), then it places them in the safety phase. Crashes are
//! paired with restarts and never take down more than the allowed number of servers at once;
//! partitions do not overlap and each ends with a heal. At the end of the safety phase the plan
//! restores a world in which liveness can be demanded: it heals, restores the base network,
//! ends every pause and restarts every server (each a no-op where nothing needs doing).

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{NetworkConfig, Partition, ProcId};

/// One fault, applied at a moment of true time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Fault {
    /// Replace the current partition with this one.
    Partition(Partition),
    /// Remove the partition: every link up.
    Heal,
    /// Crash the process: drop its value, lose its disk's unsynced writes.
    Crash(ProcId),
    /// Build the crashed process again from its disk.
    Restart(ProcId),
    /// Stop the process for this many nanoseconds (stop-the-world).
    Pause(ProcId, u64),
    /// Let the process's next handler call run, then stop it for this many nanoseconds before
    /// its sends and observations take effect (a pause between a check and its effect).
    PauseMidHandler(ProcId, u64),
    /// End the process's pause now.
    Resume(ProcId),
    /// Set the rate drift of the process's clock, in parts per million.
    SetDrift(ProcId, i32),
    /// Step the process's time-of-day clock by this many nanoseconds (negative: backwards).
    StepWall(ProcId, i64),
    /// Flip one random bit on the process's disk (subject to the corruption policy).
    FlipBit(ProcId),
    /// Replace the network configuration.
    SetNetwork(NetworkConfig),
}

/// Which kinds of fault a random plan may contain: `None` lets the seed decide (swarm testing),
/// `Some(b)` pins the choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultKinds {
    /// Partitions of every shape, each followed by a heal.
    pub partitions: Option<bool>,
    /// Crash/restart pairs of servers.
    pub crashes: Option<bool>,
    /// Stop-the-world pauses.
    pub pauses: Option<bool>,
    /// Pauses between a handler's decision and its effects.
    pub mid_handler_pauses: Option<bool>,
    /// Clock rate drift changes within the bound.
    pub drift: Option<bool>,
    /// Steps of time-of-day clocks.
    pub wall_steps: Option<bool>,
    /// Bit flips on server disks.
    pub bit_flips: Option<bool>,
    /// Changes of the per-message network fault rates.
    pub network: Option<bool>,
}

/// What a caller pins for [`FaultPlan::random`]; the rest is drawn from the seed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultOptions {
    /// Processes that may be crashed, get disk bit flips and be partitioned (the cluster).
    /// Empty: every process.
    pub servers: Vec<ProcId>,
    /// Most servers down at once. `None`: a strict minority, `(servers - 1) / 2`.
    pub crashed_max: Option<usize>,
    /// Whether processes outside `servers` take part in partitions.
    pub partition_clients: bool,
    /// Whether processes outside `servers` may be paused.
    pub pause_clients: bool,
    /// Which kinds of fault to use.
    pub kinds: FaultKinds,
    /// Most faults of one kind in a run (each enabled kind draws 1 to this many).
    pub faults_per_kind_max: u32,
    /// Longest stop-the-world pause.
    pub pause_nanos_max: u64,
    /// Longest time a crashed server stays down.
    pub down_nanos_max: u64,
    /// Longest partition.
    pub partition_nanos_max: u64,
    /// Largest time-of-day step, either way.
    pub wall_step_nanos_max: u64,
    /// Largest clock drift drawn, either way; must not exceed the simulation's bound.
    pub drift_ppm_max: u32,
    /// The network of the run, restored at the end of the safety phase.
    pub network: NetworkConfig,
    /// Highest loss probability a network change draws.
    pub drop_probability_max: f64,
    /// Highest duplication probability a network change draws.
    pub duplicate_probability_max: f64,
    /// Highest reordering probability a network change draws.
    pub reorder_probability_max: f64,
    /// Highest corruption probability a network change draws.
    pub corrupt_probability_max: f64,
}

impl Default for FaultOptions {
    fn default() -> Self {
        FaultOptions {
            servers: Vec::new(),
            crashed_max: None,
            partition_clients: false,
            pause_clients: true,
            kinds: FaultKinds::default(),
            faults_per_kind_max: 8,
            pause_nanos_max: 3_000_000_000,
            down_nanos_max: 5_000_000_000,
            partition_nanos_max: 5_000_000_000,
            wall_step_nanos_max: 60_000_000_000,
            drift_ppm_max: palisade_clock::DRIFT_BOUND_PPM_DEFAULT,
            network: NetworkConfig::default(),
            drop_probability_max: 0.2,
            duplicate_probability_max: 0.1,
            reorder_probability_max: 0.2,
            corrupt_probability_max: 0.05,
        }
    }
}

/// How many faults of each kind a plan drew (0: the kind is off in this run).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Swarm {
    /// Partitions drawn.
    pub partitions: u32,
    /// Crash/restart pairs drawn (some may be skipped to respect `crashed_max`).
    pub crashes: u32,
    /// Stop-the-world pauses drawn.
    pub pauses: u32,
    /// Mid-handler pauses drawn.
    pub mid_handler_pauses: u32,
    /// Drift changes drawn.
    pub drift: u32,
    /// Time-of-day steps drawn.
    pub wall_steps: u32,
    /// Disk bit flips drawn.
    pub bit_flips: u32,
    /// Network changes drawn.
    pub network: u32,
}

/// A random fault schedule: the swarm choices (to print at the start of a run) and the faults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Which kinds of fault the seed switched on, and how many of each.
    pub swarm: Swarm,
    /// End of the safety phase; from here on the plan injects nothing.
    pub safety_phase_nanos: u64,
    /// The faults in order of time (ties keep their generation order).
    pub faults: Vec<(u64, Fault)>,
}

/// Tries to place one crash/restart pair before giving up on it.
const CRASH_PLACEMENT_TRIES_MAX: u32 = 16;

impl FaultPlan {
    /// Draws a plan for the processes `procs` whose faults all fall in `[0, safety_phase_nanos]`.
    ///
    /// # Panics
    /// If `procs` is empty, or `options.servers` names a process not in `procs`.
    pub fn random(
        rng: &mut ChaCha8Rng,
        options: &FaultOptions,
        procs: &[ProcId],
        safety_phase_nanos: u64,
    ) -> FaultPlan {
        assert!(!procs.is_empty(), "a fault plan needs processes");
        let servers =
            if options.servers.is_empty() { procs.to_vec() } else { options.servers.clone() };
        assert!(servers.iter().all(|s| procs.contains(s)), "servers must be among procs");
        let swarm = draw_swarm(rng, options);
        let mut g = Gen { rng, options, end: safety_phase_nanos.max(1), faults: Vec::new() };
        let partitioned: Vec<ProcId> =
            if options.partition_clients { procs.to_vec() } else { servers.clone() };
        let pausable: Vec<ProcId> =
            if options.pause_clients { procs.to_vec() } else { servers.clone() };
        g.partitions(swarm.partitions, &partitioned);
        g.crashes(swarm.crashes, &servers);
        g.pauses(swarm.pauses, &pausable, false);
        g.pauses(swarm.mid_handler_pauses, &pausable, true);
        g.clocks(swarm.drift, swarm.wall_steps, procs);
        g.flips(swarm.bit_flips, &servers);
        g.network(swarm.network);
        let end = g.end;
        let mut faults = g.faults;
        faults.sort_by_key(|(t, _)| *t);
        faults.push((end, Fault::Heal));
        faults.push((end, Fault::SetNetwork(options.network)));
        faults.extend(procs.iter().map(|&p| (end, Fault::Resume(p))));
        faults.extend(servers.iter().map(|&s| (end, Fault::Restart(s))));
        FaultPlan { swarm, safety_phase_nanos: end, faults }
    }
}

fn draw_swarm(rng: &mut ChaCha8Rng, o: &FaultOptions) -> Swarm {
    let max = o.faults_per_kind_max;
    let mut count = |pinned: Option<bool>| {
        let on = pinned.unwrap_or_else(|| rng.random_bool(0.5));
        if on && max > 0 { rng.random_range(1..=max) } else { 0 }
    };
    let k = o.kinds;
    Swarm {
        partitions: count(k.partitions),
        crashes: count(k.crashes),
        pauses: count(k.pauses),
        mid_handler_pauses: count(k.mid_handler_pauses),
        drift: count(k.drift),
        wall_steps: count(k.wall_steps),
        bit_flips: count(k.bit_flips),
        network: count(k.network),
    }
}

/// The state of one plan being drawn.
struct Gen<'a> {
    rng: &'a mut ChaCha8Rng,
    options: &'a FaultOptions,
    end: u64,
    faults: Vec<(u64, Fault)>,
}

impl Gen<'_> {
    fn time(&mut self) -> u64 {
        self.rng.random_range(0..self.end)
    }

    fn pick(&mut self, from: &[ProcId]) -> ProcId {
        from[self.rng.random_range(0..from.len())]
    }

    fn partitions(&mut self, count: u32, procs: &[ProcId]) {
        if procs.len() < 2 {
            return;
        }
        let mut starts: Vec<u64> = (0..count).map(|_| self.time()).collect();
        starts.sort_unstable();
        starts.dedup();
        for (i, &start) in starts.iter().enumerate() {
            let next = starts.get(i + 1).copied().unwrap_or(self.end);
            let length = self.rng.random_range(1..=self.options.partition_nanos_max.max(1));
            let heal = start.saturating_add(length).min(next);
            let shape = self.shape(procs);
            self.faults.push((start, Fault::Partition(shape)));
            self.faults.push((heal, Fault::Heal));
        }
    }

    /// One partition over `procs` (at least 2), its shape drawn uniformly among those that
    /// mean something for this many processes.
    fn shape(&mut self, procs: &[ProcId]) -> Partition {
        let mut order = procs.to_vec();
        order.shuffle(self.rng);
        let n = order.len();
        let shapes = if n >= 4 {
            6
        } else if n >= 3 {
            5
        } else {
            3
        };
        match self.rng.random_range(0..shapes) {
            0 => Partition::isolate(order[0]),
            1 => {
                let cut = self.rng.random_range(1..n);
                let right = order.split_off(cut);
                Partition::split(vec![order, right])
            }
            2 => {
                let cut = self.rng.random_range(1..n);
                let to = order.split_off(cut);
                Partition::one_way(order, to)
            }
            3 => {
                let minority_len = self.rng.random_range(1..=(n - 1) / 2);
                Partition::majority_minority(procs, &order[..minority_len])
            }
            4 => {
                let bridge = order.remove(0);
                let cut = self.rng.random_range(1..order.len());
                let right = order.split_off(cut);
                Partition::bridge(order, right, bridge)
            }
            _ => Partition::ring(order),
        }
    }

    fn crashes(&mut self, count: u32, servers: &[ProcId]) {
        let limit = self.options.crashed_max.unwrap_or(servers.len().saturating_sub(1) / 2);
        let mut down: Vec<(ProcId, u64, u64)> = Vec::new();
        for _ in 0..count {
            for _ in 0..CRASH_PLACEMENT_TRIES_MAX {
                let s = self.pick(servers);
                let start = self.time();
                let length = self.rng.random_range(1..=self.options.down_nanos_max.max(1));
                let end = start.saturating_add(length).min(self.end);
                let overlapping: Vec<_> =
                    down.iter().filter(|&&(_, a, b)| a < end && start < b).collect();
                let same = overlapping.iter().any(|&&(p, ..)| p == s);
                if same || overlapping.len() + 1 > limit {
                    continue;
                }
                down.push((s, start, end));
                self.faults.push((start, Fault::Crash(s)));
                self.faults.push((end, Fault::Restart(s)));
                break;
            }
        }
    }

    fn pauses(&mut self, count: u32, procs: &[ProcId], mid_handler: bool) {
        for _ in 0..count {
            let p = self.pick(procs);
            let at = self.time();
            let length = self.rng.random_range(1..=self.options.pause_nanos_max.max(1));
            let fault = if mid_handler {
                Fault::PauseMidHandler(p, length)
            } else {
                Fault::Pause(p, length)
            };
            self.faults.push((at, fault));
        }
    }

    fn clocks(&mut self, drifts: u32, steps: u32, procs: &[ProcId]) {
        let bound = i32::try_from(self.options.drift_ppm_max).unwrap_or(i32::MAX);
        for _ in 0..drifts {
            let (p, at) = (self.pick(procs), self.time());
            let ppm = self.rng.random_range(-bound..=bound);
            self.faults.push((at, Fault::SetDrift(p, ppm)));
        }
        let step_max = i64::try_from(self.options.wall_step_nanos_max).unwrap_or(i64::MAX);
        for _ in 0..steps {
            let (p, at) = (self.pick(procs), self.time());
            let delta = self.rng.random_range(-step_max..=step_max);
            self.faults.push((at, Fault::StepWall(p, delta)));
        }
    }

    fn flips(&mut self, count: u32, servers: &[ProcId]) {
        for _ in 0..count {
            let (s, at) = (self.pick(servers), self.time());
            self.faults.push((at, Fault::FlipBit(s)));
        }
    }

    fn network(&mut self, count: u32) {
        let o = self.options;
        for _ in 0..count {
            let at = self.time();
            let mut cfg = o.network;
            cfg.drop_probability = self.rng.random_range(0.0..=o.drop_probability_max);
            cfg.duplicate_probability = self.rng.random_range(0.0..=o.duplicate_probability_max);
            cfg.reorder_probability = self.rng.random_range(0.0..=o.reorder_probability_max);
            cfg.corrupt_probability = self.rng.random_range(0.0..=o.corrupt_probability_max);
            self.faults.push((at, Fault::SetNetwork(cfg)));
        }
    }
}

/// A step of a time-of-day clock is undone at least this long after it (NTP comes back).
pub(crate) const WALL_CORRECTION_NANOS_MIN: u64 = 1_000_000_000;
/// A step of a time-of-day clock is undone at most this long after it.
pub(crate) const WALL_CORRECTION_NANOS_MAX: u64 = 10_000_000_000;

/// NTP comes back: for every step of a time-of-day clock in `faults`, the opposite step
/// `WALL_CORRECTION_NANOS_*` later, kept if that is before `end` (the harnesses' liveness
/// phases correct the rest). One draw from `rng` per step, kept or not.
pub(crate) fn wall_step_corrections(
    faults: &[(u64, Fault)],
    end: u64,
    rng: &mut impl Rng,
) -> Vec<(u64, Fault)> {
    let mut corrections = Vec::new();
    for (t, fault) in faults {
        let Fault::StepWall(p, delta) = *fault else { continue };
        let after = rng.random_range(WALL_CORRECTION_NANOS_MIN..=WALL_CORRECTION_NANOS_MAX);
        let at = t.saturating_add(after);
        if at < end {
            corrections.push((at, Fault::StepWall(p, delta.saturating_neg())));
        }
    }
    corrections
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn procs(n: u32) -> Vec<ProcId> {
        (0..n).map(ProcId).collect()
    }

    /// The crash generator never has more than `crashed_max` servers down at once.
    #[test]
    fn crashes_respect_the_minority_bound() {
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut o = FaultOptions::default();
            o.kinds.crashes = Some(true);
            o.servers = procs(5);
            let plan = FaultPlan::random(&mut rng, &o, &procs(8), 20_000_000_000);
            let mut down = std::collections::BTreeSet::new();
            for (_, f) in &plan.faults {
                match f {
                    Fault::Crash(p) => {
                        assert!(down.insert(*p), "seed {seed}: crashed twice");
                        assert!(down.len() <= 2, "seed {seed}: majority down");
                        assert!(p.0 < 5, "seed {seed}: crashed a client");
                    }
                    Fault::Restart(p) => {
                        down.remove(p);
                    }
                    _ => {}
                }
            }
            assert!(down.is_empty(), "seed {seed}: someone stays down");
        }
    }

    /// Pinned kinds are honoured; the plan ends with the liveness restoration at the end.
    #[test]
    fn pinned_kinds_and_liveness_tail() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let o = FaultOptions {
            kinds: FaultKinds {
                partitions: Some(true),
                crashes: Some(false),
                pauses: Some(false),
                mid_handler_pauses: Some(false),
                drift: Some(false),
                wall_steps: Some(false),
                bit_flips: Some(false),
                network: Some(false),
            },
            ..FaultOptions::default()
        };
        let plan = FaultPlan::random(&mut rng, &o, &procs(5), 10_000);
        assert!(plan.swarm.partitions > 0);
        assert_eq!(plan.swarm.crashes, 0);
        let times: Vec<u64> = plan.faults.iter().map(|(t, _)| *t).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "faults out of order");
        assert!(times.iter().all(|&t| t <= 10_000));
        let tail = &plan.faults[plan.faults.len() - 12..];
        assert_eq!(tail[0], (10_000, Fault::Heal));
        assert!(matches!(tail[1].1, Fault::SetNetwork(_)));
        assert!(plan.faults.iter().all(|(_, f)| !matches!(f, Fault::Crash(_))));
    }

    /// Every shape the generator draws is valid for the procs it is given.
    #[test]
    fn shapes_are_well_formed() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut o = FaultOptions::default();
        o.kinds.partitions = Some(true);
        for n in 2..7 {
            for _ in 0..50 {
                let mut g = Gen { rng: &mut rng, options: &o, end: 100, faults: Vec::new() };
                let shape = g.shape(&procs(n));
                let r = crate::Reachability::of(n as usize, &shape);
                let cut = (0..n)
                    .flat_map(|a| (0..n).map(move |b| (a, b)))
                    .filter(|&(a, b)| !r.can_reach(ProcId(a), ProcId(b)))
                    .count();
                assert!(cut > 0, "shape {shape:?} cuts nothing");
            }
        }
    }
}
