//! How fast the simulator core runs: 5 servers heartbeating each other every 50 ms and 10
//! clients each sending a request to a server every 10 ms (and getting a reply), on a flaky
//! network with random faults. Prints simulated seconds per real second and events per second.
//!
//! Run: `cargo run --release -p palisade-sim --example speed -- [seed] [simulated seconds]`.

use std::time::{Duration, Instant};

use palisade_clock::MonoInstant;
use palisade_sim::{
    Ctx, FaultOptions, FaultPlan, NetworkConfig, ProcId, Process, Simulation, TraceSink,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

const SERVERS: u32 = 5;
const CLIENTS: u32 = 10;
const HEARTBEAT: Duration = Duration::from_millis(50);
const REQUEST_EVERY: Duration = Duration::from_millis(10);

#[derive(Clone, Debug, Serialize, Deserialize)]
enum Msg {
    Heartbeat { term: u64, commit: u64 },
    Request { id: u64, key: String },
    Reply { id: u64, ok: bool },
}

#[derive(Debug)]
struct Node {
    server: bool,
    next: MonoInstant,
    count: u64,
}

impl Process for Node {
    type Msg = Msg;
    type Obs = u64;

    fn handle_start(&mut self, ctx: &mut Ctx<'_, Msg, u64>) {
        self.next = ctx.now().mono + if self.server { HEARTBEAT } else { REQUEST_EVERY };
    }

    fn handle_message(&mut self, ctx: &mut Ctx<'_, Msg, u64>, from: ProcId, msg: Msg) {
        match msg {
            Msg::Request { id, .. } => ctx.send(from, Msg::Reply { id, ok: true }),
            Msg::Reply { id, .. } if id % 100 == 0 => ctx.observe(id),
            Msg::Heartbeat { .. } | Msg::Reply { .. } => self.count += 1,
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, Msg, u64>) {
        self.count += 1;
        if self.server {
            let me = ctx.me();
            for s in (0..SERVERS).map(ProcId).filter(|&s| s != me) {
                ctx.send(s, Msg::Heartbeat { term: 3, commit: self.count });
            }
            self.next = ctx.now().mono + HEARTBEAT;
        } else {
            let to = ProcId(ctx.rng().random_range(0..SERVERS));
            ctx.send(to, Msg::Request { id: self.count, key: "lock/a".into() });
            self.next = ctx.now().mono + REQUEST_EVERY;
        }
    }

    fn poll_timeout(&self) -> Option<MonoInstant> {
        Some(self.next)
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seed: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let seconds: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(600);
    println!(
        "speed: seed {seed}, {seconds} simulated seconds, {SERVERS} servers {CLIENTS} clients"
    );
    let factory = Box::new(|id: ProcId, _| Node {
        server: id.0 < SERVERS,
        next: MonoInstant::ZERO,
        count: 0,
    });
    let mut sim = Simulation::new(seed, NetworkConfig::flaky(), factory);
    sim.set_trace_sink(TraceSink::HashOnly);
    let procs: Vec<ProcId> = (0..SERVERS + CLIENTS).map(|_| sim.add_process()).collect();
    let options = FaultOptions {
        servers: procs[..SERVERS as usize].to_vec(),
        network: NetworkConfig::flaky(),
        ..FaultOptions::default()
    };
    let total = seconds * 1_000_000_000;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let plan = FaultPlan::random(&mut rng, &options, &procs, total * 4 / 5);
    println!("swarm {:?}", plan.swarm);
    sim.schedule_plan(&plan);
    let start = Instant::now();
    sim.run_until(total);
    let real = start.elapsed().as_secs_f64();
    let stats = sim.stats();
    println!("trace hash {:#018x}", sim.trace_hash());
    println!("{stats:?}");
    println!(
        "real {real:.3}s: {:.0}x real time, {:.2}M events/s, {:.2}M traced events/s",
        seconds as f64 / real,
        stats.events as f64 / real / 1e6,
        sim.trace_len() as f64 / real / 1e6
    );
}
