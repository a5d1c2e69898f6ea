//! Shared setup of the node scenario tests: a 3-node cluster with clients and stores on the
//! simulator, helpers to run an operation to completion, and lookups in the observations.
#![allow(dead_code)]

use std::time::Duration;

use palisade_node::lock::SessionId;
use palisade_node::raft::{LogIndex, NodeId};
use palisade_node::{ClientConfig, NodeConfig, NodeEvent, OpId, OpOutcome, UserOp};
use palisade_sim::service::{
    ClientSpec, NodeObs, Obs, Service, ServiceLayout, StoreSpec, outcome, run_until, submit,
};
use palisade_sim::{NetworkConfig, Observed, ProcId, Simulation};

pub const MS: u64 = 1_000_000;
pub const SEC: u64 = 1_000_000_000;

/// The client TTL of the scenarios.
pub const TTL: Duration = Duration::from_secs(3);

/// Node configuration: default Raft timing (heartbeat 100 ms, elections 1–2 s), TTLs from
/// 1 s, a 1 s lock-delay, snapshots every 200 entries (so they happen in every run).
pub fn node_config(id: NodeId) -> NodeConfig {
    let mut c = NodeConfig::default_for(0x9a11, id);
    c.lock.ttl_min = Duration::from_secs(1);
    c.lock.lock_delay = Duration::from_secs(1);
    c.snapshot_every_entries = 200;
    c
}

/// A client of nodes 1..=3 with the scenario TTL, 300 ms attempts and 10 s operations.
pub fn client_config() -> ClientConfig {
    let mut c = ClientConfig::new(vec![1, 2, 3], TTL);
    c.attempt_timeout = Duration::from_millis(300);
    c
}

/// A layout of 3 nodes, `clients` idle clients and the given stores.
pub fn layout(clients: usize, stores: &[bool]) -> ServiceLayout {
    let mut layout = ServiceLayout::new(3, node_config);
    layout.clients =
        (0..clients).map(|_| ClientSpec { config: client_config(), script: vec![] }).collect();
    layout.stores = stores.iter().map(|&checked| StoreSpec { checked }).collect();
    layout
}

/// The simulation of `layout` with a lossless LAN.
pub fn simulation(layout: &ServiceLayout, seed: u64) -> Simulation<Service> {
    println!("seed {seed}");
    layout.clone().simulation(seed, NetworkConfig::default())
}

/// Runs until a leader is ready; returns it.
pub fn await_leader(layout: &ServiceLayout, sim: &mut Simulation<Service>) -> NodeId {
    let limit = sim.now_nanos() + 20 * SEC;
    assert!(run_until(sim, limit, 10 * MS, |s| layout.leader(s).is_some()), "no leader");
    layout.leader(sim).expect("a leader")
}

/// Submits `op` on `client` and runs until it completes (within `limit` of true time).
pub fn run_op(
    sim: &mut Simulation<Service>,
    client: ProcId,
    op: UserOp,
    limit: Duration,
) -> OpOutcome {
    let id = submit(sim, client, op).expect("the client runs");
    wait_op(sim, client, id, limit)
}

/// Runs until `op` of `client` completes.
pub fn wait_op(
    sim: &mut Simulation<Service>,
    client: ProcId,
    op: OpId,
    limit: Duration,
) -> OpOutcome {
    let deadline = sim.now_nanos() + limit.as_nanos() as u64;
    let done = run_until(sim, deadline, MS, |s| outcome(s, client, op).is_some());
    assert!(done, "{op:?} of {client} did not complete within {limit:?}");
    outcome(sim, client, op).expect("completed")
}

/// The session of `client`.
pub fn session_of(sim: &Simulation<Service>, client: ProcId) -> SessionId {
    let c = sim.process(client).and_then(Service::as_client).expect("a running client");
    c.core().session().expect("an open session")
}

/// Every node event, with its true time and node process.
pub fn node_events(sim: &Simulation<Service>) -> Vec<(u64, ProcId, NodeEvent)> {
    sim.observations()
        .iter()
        .filter_map(|o: &Observed<Obs>| match &o.obs {
            Obs::Node(NodeObs::Event(e)) => Some((o.t_nanos, o.proc, e.clone())),
            _ => None,
        })
        .collect()
}

/// The index of the first applied entry matching `pred` on any node.
pub fn applied_index(
    sim: &Simulation<Service>,
    pred: impl Fn(&NodeEvent) -> bool,
) -> Option<LogIndex> {
    node_events(sim).into_iter().find_map(|(_, _, e)| match e {
        NodeEvent::Applied { index, .. } if pred(&e) => Some(index),
        _ => None,
    })
}

/// The seeds a scenario runs with: `defaults`, or with `PALISADE_NODE_SEEDS=<n>` in the
/// environment, seeds `1..=n` (a sweep to look for schedules that break it).
pub fn seeds(defaults: &[u64]) -> Vec<u64> {
    match std::env::var("PALISADE_NODE_SEEDS").ok().and_then(|s| s.parse::<u64>().ok()) {
        Some(n) => (1..=n).collect(),
        None => defaults.to_vec(),
    }
}
