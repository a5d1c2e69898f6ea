//! How fast the whole service simulates: palisade nodes, clients running a lock and kv
//! workload, and a fenced store, under a light fault mix, on one thread. Prints simulated
//! seconds per wall-clock second and runs (of `--seconds` simulated seconds) per minute — the
//! speed targets of the fault laboratory (issue 5: at least 1,000x real time for 5 servers and
//! 10 clients; at least 100 runs of 60 simulated seconds per minute).
//!
//! Run: `cargo run --release -p palisade-sim --example service_speed -- [--servers 5]
//! [--clients 10] [--seconds 60] [--seeds N] [--first-seed S] [--think-ms 20]
//! [--faults light|none] [--verbose 1]`.
//!
//! The workload: every `--think-ms` of simulated time each idle client is handed a random
//! operation (open a session, try or blocking acquire, release, put, compare-and-set, read,
//! lock info, a store write fenced by a held lock). The light fault mix, drawn per seed over
//! the first half of the run, has a few partitions, crash/restart pairs of servers, pauses
//! (mid-handler ones too), clock drift and lossy network spells; the second half is calm.
//! Each seed prints its trace hash, so two runs of the same seed can be compared.

use std::time::{Duration, Instant};

use palisade_node::lock::Expect;
use palisade_node::raft::NodeId;
use palisade_node::{ClientConfig, Consistency, NodeConfig, UserOp};
use palisade_sim::service::{
    Action, ClientObs, ClientSpec, Obs, Service, ServiceLayout, StoreSpec, act, submit,
};
use palisade_sim::{
    FaultKinds, FaultOptions, FaultPlan, NetworkConfig, Observed, ProcId, Simulation, Stats,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const MS: u64 = 1_000_000;
const SEC: u64 = 1_000_000_000;

/// What the command line sets.
#[derive(Debug)]
struct Args {
    servers: u32,
    clients: usize,
    seconds: u64,
    seeds: u64,
    first_seed: u64,
    think_ms: u64,
    faults: bool,
    verbose: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        servers: 5,
        clients: 10,
        seconds: 60,
        seeds: 3,
        first_seed: 0,
        think_ms: 20,
        faults: true,
        verbose: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        let num = || value.parse::<u64>().unwrap_or_else(|e| panic!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--servers" => a.servers = u32::try_from(num()).expect("--servers fits u32"),
            "--clients" => a.clients = usize::try_from(num()).expect("--clients fits usize"),
            "--seconds" => a.seconds = num(),
            "--seeds" => a.seeds = num(),
            "--first-seed" => a.first_seed = num(),
            "--think-ms" => a.think_ms = num().max(1),
            "--verbose" => a.verbose = num() != 0,
            "--faults" => {
                a.faults = match value.as_str() {
                    "light" => true,
                    "none" => false,
                    _ => panic!("--faults light|none, not {value}"),
                }
            }
            _ => panic!("unknown flag {flag}"),
        }
    }
    assert!(a.servers >= 1, "at least one server");
    assert!(a.seconds >= 1, "at least one simulated second");
    a
}

fn node_config(id: NodeId) -> NodeConfig {
    let mut c = NodeConfig::default_for(0x5eed, id);
    c.lock.ttl_min = Duration::from_secs(1);
    c.lock.lock_delay = Duration::from_secs(1);
    c.snapshot_every_entries = 1_000;
    c
}

fn layout(args: &Args) -> ServiceLayout {
    let mut layout = ServiceLayout::new(args.servers, node_config);
    let mut config = ClientConfig::new(layout.node_ids(), Duration::from_secs(3));
    config.attempt_timeout = Duration::from_millis(300);
    layout.clients =
        (0..args.clients).map(|_| ClientSpec { config: config.clone(), script: vec![] }).collect();
    layout.stores = vec![StoreSpec { checked: true }];
    layout
}

/// The light fault mix: a few of each kind, no time-of-day steps or disk corruption (which
/// keep nodes from leading or starting and would measure recovery rather than speed).
fn fault_options(servers: Vec<ProcId>) -> FaultOptions {
    let on = Some(true);
    FaultOptions {
        servers,
        kinds: FaultKinds {
            partitions: on,
            crashes: on,
            pauses: on,
            mid_handler_pauses: on,
            drift: on,
            wall_steps: Some(false),
            bit_flips: Some(false),
            network: on,
        },
        faults_per_kind_max: 3,
        pause_nanos_max: 2 * SEC,
        down_nanos_max: 3 * SEC,
        partition_nanos_max: 3 * SEC,
        drop_probability_max: 0.05,
        duplicate_probability_max: 0.02,
        reorder_probability_max: 0.05,
        corrupt_probability_max: 0.01,
        ..FaultOptions::default()
    }
}

/// One operation for a client, or a fenced store write (which is not an operation).
fn random_action(rng: &mut ChaCha8Rng, has_session: bool, store: ProcId) -> Action {
    if !has_session {
        return Action::Op(UserOp::OpenSession);
    }
    let lock = ["L1", "L2", "L3"][rng.random_range(0..3)].to_string();
    let key = ["k1", "k2", "k3", "k4"][rng.random_range(0..4)].to_string();
    Action::Op(match rng.random_range(0..12) {
        0 | 1 => UserOp::TryAcquire { lock },
        2 => UserOp::Acquire { lock, wait: Some(Duration::from_millis(500)) },
        3 | 4 => UserOp::Release { lock },
        5 | 6 => UserOp::Put { key, value: vec![rng.random()], fence: None },
        7 => UserOp::Cas { key, expected: Expect::Absent, value: vec![1], fence: None },
        8 => UserOp::Get { key, consistency: Consistency::Linearizable },
        9 => UserOp::LockInfo { name: lock, consistency: Consistency::Serializable },
        _ => {
            let value = vec![rng.random()];
            return Action::StoreWrite { store, key, value, lock: Some(lock) };
        }
    })
}

/// Hands every idle, running client its next action.
fn drive(layout: &ServiceLayout, sim: &mut Simulation<Service>, rng: &mut ChaCha8Rng) {
    let store = layout.store_proc(0);
    for i in 0..layout.clients.len() {
        let p = layout.client_proc(i);
        let Some(c) = sim.process(p).and_then(Service::as_client) else { continue };
        if c.core().in_flight().is_some() {
            continue;
        }
        let action = random_action(rng, c.core().session().is_some(), store);
        // A paused client takes nothing now.
        match action {
            Action::Op(op) => {
                let _ = submit(sim, p, op);
            }
            other => {
                let _ = act(sim, p, other);
            }
        }
    }
}

/// What one run did.
#[derive(Debug, Default)]
struct RunStats {
    virtual_nanos: u64,
    stats: Stats,
    ops_done: u64,
    ops_other: u64,
    trace_hash: u64,
}

impl RunStats {
    /// Counts the completed operations among `observations` (taken from the simulation as
    /// the run goes, as a streaming checker would, so the log does not grow for 60 s).
    fn count(&mut self, observations: Vec<Observed<Obs>>) {
        for o in observations {
            if let Obs::Client(ClientObs::Completed { outcome, .. }) = &o.obs {
                if outcome.is_done() {
                    self.ops_done += 1;
                } else {
                    self.ops_other += 1;
                }
            }
        }
    }
}

fn run(args: &Args, seed: u64) -> RunStats {
    let layout = layout(args);
    let servers: Vec<ProcId> = layout.node_ids().into_iter().map(|n| layout.node_proc(n)).collect();
    let mut sim = layout.clone().simulation(seed, NetworkConfig::default());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let end = args.seconds * SEC;
    if args.faults {
        let procs = sim.procs();
        let plan = FaultPlan::random(&mut rng, &fault_options(servers), &procs, end / 2);
        sim.schedule_plan(&plan);
    }
    let think = args.think_ms * MS;
    let mut stats = RunStats::default();
    while sim.now_nanos() < end {
        drive(&layout, &mut sim, &mut rng);
        sim.run_until((sim.now_nanos() + think).min(end));
        stats.count(sim.drain_observations());
    }
    stats.virtual_nanos = sim.now_nanos();
    stats.stats = *sim.stats();
    stats.trace_hash = sim.trace_hash();
    stats
}

/// CPU time this thread has used, in seconds, where Linux tells (`/proc/thread-self/schedstat`):
/// on a shared machine, wall time also counts the time other processes held the core.
fn cpu_seconds() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(nanos as f64 / 1e9)
}

fn main() {
    let args = parse_args();
    println!(
        "service_speed: {} servers, {} clients, 1 fenced store, {} s simulated per run, \
         an op per idle client every {} ms, faults {}, one thread",
        args.servers,
        args.clients,
        args.seconds,
        args.think_ms,
        if args.faults { "light (first half)" } else { "none" }
    );
    let (mut virtual_nanos, mut events) = (0u64, 0u64);
    let cpu_start = cpu_seconds();
    let start = Instant::now();
    for seed in args.first_seed..args.first_seed + args.seeds {
        let one = Instant::now();
        let s = run(&args, seed);
        let wall = one.elapsed().as_secs_f64();
        println!(
            "  seed {seed}: trace {:#018x}, {} events, {} ops done, {} not done, \
             {:.0}x real time",
            s.trace_hash,
            s.stats.events,
            s.ops_done,
            s.ops_other,
            s.virtual_nanos as f64 / 1e9 / wall
        );
        if args.verbose {
            println!("    {:?}", s.stats);
        }
        virtual_nanos += s.virtual_nanos;
        events += s.stats.events;
    }
    let wall = start.elapsed().as_secs_f64();
    let simulated = virtual_nanos as f64 / 1e9;
    println!(
        "{} runs in {wall:.2} s wall: {:.0} simulated s per wall s, {:.1} runs of {} s per \
         minute, {:.2}M events/s",
        args.seeds,
        simulated / wall,
        60.0 * simulated / args.seconds as f64 / wall,
        args.seconds,
        events as f64 / wall / 1e6
    );
    if let (Some(a), Some(b)) = (cpu_start, cpu_seconds()) {
        let cpu = b - a;
        println!(
            "  on-CPU time {cpu:.2} s: {:.0} simulated s per CPU s, {:.1} runs per CPU minute",
            simulated / cpu,
            60.0 * simulated / args.seconds as f64 / cpu
        );
    }
}
