//! The whole service under every fault at once (design: safety under the chapter's faults,
//! liveness once they stop). Three nodes and three clients running a random lock and kv
//! workload through a swarm-style random fault plan — partitions, crashes with torn disks,
//! pauses (also between a handler's decision and its effects), clock drift and steps, bit
//! flips on a minority of disks, lossy and corrupting networks — for 20 s, then 20 s of calm.
//! Checked: no assertion of the node fires; every node agrees on every grant's token and
//! tokens strictly increase; each node's state machine passes its invariant check; once calm,
//! a leader serves requests and the replicas that applied the same log hold the same state.

mod node_common;

use std::collections::BTreeMap;
use std::time::Duration;

use node_common::*;
use palisade_node::lock::Expect;
use palisade_node::{Consistency, NodeEvent, UserOp};
use palisade_sim::service::{Service, ServiceLayout, submit};
use palisade_sim::{
    FaultOptions, FaultPlan, NetworkConfig, ProcId, Simulation, WALL_ORIGIN_NANOS,
    minority_flip_policy,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SAFETY_NANOS: u64 = 20 * SEC;
const CALM_NANOS: u64 = 20 * SEC;

fn random_op(rng: &mut ChaCha8Rng, has_session: bool) -> UserOp {
    if !has_session {
        return UserOp::OpenSession;
    }
    let lock = ["L1", "L2"][rng.random_range(0..2)].to_string();
    let key = ["k1", "k2", "k3"][rng.random_range(0..3)].to_string();
    match rng.random_range(0..10) {
        0 | 1 => UserOp::TryAcquire { lock },
        2 => UserOp::Acquire { lock, wait: Some(Duration::from_millis(500)) },
        3 | 4 => UserOp::Release { lock },
        5 | 6 => UserOp::Put { key, value: vec![rng.random()], fence: None },
        7 => UserOp::Cas { key, expected: Expect::Absent, value: vec![1], fence: None },
        8 => UserOp::Get { key, consistency: Consistency::Linearizable },
        _ => UserOp::LockInfo { name: lock, consistency: Consistency::Serializable },
    }
}

/// Hands every idle client a random operation.
fn drive_clients(layout: &ServiceLayout, sim: &mut Simulation<Service>, rng: &mut ChaCha8Rng) {
    for i in 0..layout.clients.len() {
        let p = layout.client_proc(i);
        let Some(c) = sim.process(p).and_then(Service::as_client) else { continue };
        if c.core().in_flight().is_some() {
            continue;
        }
        let op = random_op(rng, c.core().session().is_some());
        // A paused client takes nothing now.
        let _ = submit(sim, p, op);
    }
}

fn chaos(seed: u64) {
    let mut layout = layout(3, &[]);
    for c in &mut layout.clients {
        c.config.ttl = Duration::from_secs(2);
    }
    let servers: Vec<ProcId> = layout.node_ids().into_iter().map(|n| layout.node_proc(n)).collect();
    let mut sim = simulation(&layout, seed);
    sim.set_flip_policy(Some(minority_flip_policy(servers.clone())));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let options = FaultOptions {
        servers: servers.clone(),
        network: NetworkConfig::default(),
        ..FaultOptions::default()
    };
    let procs = sim.procs();
    let plan = FaultPlan::random(&mut rng, &options, &procs, SAFETY_NANOS);
    println!("swarm {:?}", plan.swarm);
    sim.schedule_plan(&plan);
    while sim.now_nanos() < SAFETY_NANOS + CALM_NANOS {
        drive_clients(&layout, &mut sim, &mut rng);
        sim.run_for(20 * MS);
        if sim.now_nanos() == SAFETY_NANOS {
            correct_wall_clocks(&mut sim);
        }
    }
    check_grants(&sim);
    let running: Vec<ProcId> = servers
        .iter()
        .copied()
        .filter(|&p| sim.process(p).and_then(Service::as_node).and_then(|n| n.core()).is_some())
        .collect();
    println!("running nodes {running:?}; stats {:?}", sim.stats());
    for &p in &running {
        let core = sim.process(p).and_then(Service::as_node).and_then(|n| n.core()).unwrap();
        assert_eq!(core.state_machine().check_invariants(), Ok(()), "{p}");
        assert_eq!(core.stopped(), None, "{p} stopped");
    }
    // Liveness: a leader, a fresh session opens, the replicas converge.
    let leader = await_leader(&layout, &mut sim);
    let fresh = layout.client_proc(0);
    sim.run_for(SEC);
    let op = UserOp::Get { key: "k1".into(), consistency: Consistency::Linearizable };
    assert!(run_op(&mut sim, fresh, op, Duration::from_secs(20)).is_done(), "served when calm");
    sim.run_for(2 * SEC);
    let leader_core = sim.process(layout.node_proc(leader)).and_then(Service::as_node).unwrap();
    let leader_core = leader_core.core().unwrap();
    for &p in &running {
        let core = sim.process(p).and_then(Service::as_node).and_then(|n| n.core()).unwrap();
        if core.applied_index() == leader_core.applied_index() {
            assert_eq!(
                core.state_machine().snapshot(),
                leader_core.state_machine().snapshot(),
                "{p} and the leader applied the same log"
            );
        }
    }
}

/// Steps every time-of-day clock back to true time (the plan's steps would otherwise keep
/// nodes from leading: a node whose clock is far off refuses to).
fn correct_wall_clocks(sim: &mut Simulation<Service>) {
    let t = sim.now_nanos();
    for p in sim.procs() {
        let wall = sim.clock(p).expect("proc").reading(t).wall.as_nanos();
        let offset =
            i64::try_from(i128::from(wall) - i128::from(WALL_ORIGIN_NANOS + t)).expect("fits");
        sim.step_wall(p, -offset).expect("proc");
    }
}

/// Every node that applied a grant's entry reports the same token; on each node tokens
/// strictly increase in application order (across restarts too: the log is the same).
fn check_grants(sim: &Simulation<Service>) {
    let mut by_index: BTreeMap<(u64, String), u64> = BTreeMap::new();
    let mut last: BTreeMap<ProcId, u64> = BTreeMap::new();
    for (_, p, e) in node_events(sim) {
        match e {
            NodeEvent::Recovered { .. } | NodeEvent::SnapshotInstalled { .. } => {
                last.remove(&p);
            }
            NodeEvent::Granted { lock, token, index, .. } => {
                let known = *by_index.entry((index, lock.clone())).or_insert(token);
                assert_eq!(known, token, "nodes disagree on the token of {lock} at {index}");
                let previous = last.insert(p, token).unwrap_or(0);
                assert!(token > previous, "{p}: token {token} after {previous}");
            }
            _ => {}
        }
    }
    println!("{} grants checked", by_index.len());
}

#[test]
fn every_fault_at_once_breaks_no_safety_property() {
    for seed in seeds(&[1, 2, 3, 4, 5]) {
        chaos(seed);
    }
}
