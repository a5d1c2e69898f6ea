//! A toy protocol on the simulator: a primary replicates a counter to two backups.
//!
//! Every 10 ms of its local clock the primary increments the counter, persists it, and sends it
//! to both backups, re-sending the latest value to any backup that has not acknowledged it. A
//! backup persists a value (write, then fsync) before acknowledging it: persist before send. The
//! property checked is durability: after a backup restarts, the value it recovers from its disk
//! is at least every value it acknowledged before the crash, whatever the network did.
//!
//! Run: `cargo run -p palisade-sim --example toy -- [seed]`.

use palisade_clock::MonoInstant;
use palisade_sim::{
    Boot, Ctx, FaultOptions, FaultPlan, NetworkConfig, ProcId, Process, Simulation, Stats,
};
use std::time::Duration;

use palisade_storage::{Disk, SimDisk};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The one file a toy node keeps: a sequence of 8-byte little-endian values, the last one wins.
const FILE: &str = "counter";
const TICK: Duration = Duration::from_millis(10);

/// Messages of the toy protocol.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Msg {
    /// Primary to backup: store this value.
    Replicate(u64),
    /// Backup to primary: this value is on my disk.
    Ack(u64),
}

/// What toy nodes report to the checker.
#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    /// A backup acknowledged a value (it was synced first).
    Acked(u64),
    /// A node started and read this value from its disk.
    Recovered(u64),
}

/// A toy node: the primary (id 0) or a backup.
#[derive(Debug)]
pub struct Node {
    disk: SimDisk,
    value: u64,
    acked: [u64; 3],
    next_tick: Option<MonoInstant>,
}

impl Node {
    /// Builds a node from whatever its disk holds (a torn last record is ignored).
    pub fn boot(boot: Boot) -> Node {
        let bytes = boot.disk.read(FILE).unwrap_or_default();
        let whole = bytes.len() / 8 * 8;
        let value = bytes[..whole]
            .chunks_exact(8)
            .last()
            .map_or(0, |c| u64::from_le_bytes(c.try_into().expect("8 bytes")));
        Node { disk: boot.disk, value, acked: [0; 3], next_tick: None }
    }

    fn persist(&mut self, v: u64) {
        // A torn earlier record would misalign the file: start it afresh if so.
        let len = self.disk.len(FILE).unwrap_or(0);
        let whole = len / 8 * 8;
        if whole != len {
            self.disk.truncate(FILE, whole).expect("truncate");
        }
        self.disk.append(FILE, &v.to_le_bytes()).expect("append");
        self.disk.sync(FILE).expect("sync");
        self.disk.sync_dir().expect("sync_dir");
    }
}

impl Process for Node {
    type Msg = Msg;
    type Obs = Obs;

    fn handle_start(&mut self, ctx: &mut Ctx<'_, Msg, Obs>) {
        ctx.observe(Obs::Recovered(self.value));
        if ctx.me() == ProcId(0) {
            self.next_tick = Some(ctx.now().mono + TICK);
        }
    }

    fn handle_message(&mut self, ctx: &mut Ctx<'_, Msg, Obs>, from: ProcId, msg: Msg) {
        match msg {
            Msg::Replicate(v) => {
                if v > self.value {
                    self.value = v;
                    self.persist(v);
                }
                ctx.observe(Obs::Acked(self.value));
                ctx.send(from, Msg::Ack(self.value));
            }
            Msg::Ack(v) => {
                let slot = &mut self.acked[from.index()];
                *slot = (*slot).max(v);
            }
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, Msg, Obs>) {
        self.value += 1;
        let v = self.value;
        self.persist(v);
        for b in [ProcId(1), ProcId(2)] {
            ctx.send(b, Msg::Replicate(v));
        }
        self.next_tick = Some(ctx.now().mono + TICK);
    }

    fn poll_timeout(&self) -> Option<MonoInstant> {
        self.next_tick
    }
}

/// What one toy run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The seed of the run.
    pub seed: u64,
    /// Trace hash of the run.
    pub trace_hash: u64,
    /// Counters of the run.
    pub stats: Stats,
    /// The primary's final value (0 if it is down at the end).
    pub primary_value: u64,
    /// Durability violations found: (backup, acked before a crash, recovered after it).
    pub violations: Vec<(ProcId, u64, u64)>,
}

/// Runs the toy for 20 simulated seconds of random faults, then 5 calm seconds.
pub fn run(seed: u64) -> Outcome {
    let mut sim = Simulation::new(seed, NetworkConfig::flaky(), Box::new(|_, b| Node::boot(b)));
    let procs: Vec<ProcId> = (0..3).map(|_| sim.add_process()).collect();
    let mut plan_rng = ChaCha8Rng::seed_from_u64(seed);
    let mut options = FaultOptions {
        servers: vec![ProcId(1), ProcId(2)],
        crashed_max: Some(1),
        network: NetworkConfig::flaky(),
        ..FaultOptions::default()
    };
    // The toy keeps no checksums on disk, so it cannot survive bit rot: leave that fault out.
    options.kinds.bit_flips = Some(false);
    let plan = FaultPlan::random(&mut plan_rng, &options, &procs, 20_000_000_000);
    sim.schedule_plan(&plan);
    sim.run_until(25_000_000_000);
    // The checker: per backup, the highest value acked since its last start must never exceed
    // what it recovers at its next start.
    let mut acked = [0u64; 3];
    let mut violations = Vec::new();
    for o in sim.observations() {
        let i = o.proc.index();
        match o.obs {
            Obs::Acked(v) => acked[i] = acked[i].max(v),
            Obs::Recovered(v) if v < acked[i] => violations.push((o.proc, acked[i], v)),
            Obs::Recovered(_) => {}
        }
    }
    Outcome {
        seed,
        trace_hash: sim.trace_hash(),
        stats: *sim.stats(),
        primary_value: sim.process(ProcId(0)).map_or(0, |p| p.value),
        violations,
    }
}

fn main() {
    let seed = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(42);
    println!(
        "toy: seed {seed} (reproduce with: cargo run -p palisade-sim --example toy -- {seed})"
    );
    let out = run(seed);
    println!("trace hash {:#018x}", out.trace_hash);
    println!("stats {:?}", out.stats);
    println!("primary reached {}", out.primary_value);
    if out.violations.is_empty() {
        println!("durability holds: every acked value survived every crash");
    } else {
        println!("DURABILITY VIOLATED: {:?}", out.violations);
        std::process::exit(1);
    }
}
