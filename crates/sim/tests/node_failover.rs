//! Sessions across leader failures (design: "leases and process pauses"; the tracker's
//! "never early" and "how much a leader change can extend a session").
//!
//! 1. Leaders crash while sessions are live, with every clock drifting the worst way allowed
//!    (servers 500 ppm fast, clients 500 ppm slow): no session is expired before its client's
//!    own lease ran out (the client's `valid_until`, mapped to true time, against the true
//!    time the expiry entry was first applied), and the sessions of clients that keep renewing
//!    survive the failovers.
//! 2. Leaders are crashed over and over, each soon after it took office, while a client that
//!    stopped renewing holds a session: it still expires, within the documented bound — a
//!    leader change does not restart its timer from the full TTL (etcd #9395).

mod node_common;

use std::collections::BTreeMap;
use std::time::Duration;

use node_common::*;
use palisade_node::lock::{LeaseState, SessionId};
use palisade_node::{NodeEvent, UserOp};
use palisade_sim::service::{
    Action, ClientObs, ClientSpec, Obs, Service, ServiceLayout, act, run_until,
};
use palisade_sim::{ProcId, Simulation};

const DRIFT_PPM: i32 = 500;

fn spec(ttl: Duration) -> ClientSpec {
    let mut config = client_config();
    config.ttl = ttl;
    ClientSpec { config, script: vec![] }
}

/// Servers run fast, clients slow: the server's deadline comes as early, and the client's
/// lease ends as late, in true time, as the drift bound allows.
fn skew_clocks(layout: &ServiceLayout, sim: &mut Simulation<Service>) {
    for id in layout.node_ids() {
        sim.set_drift(layout.node_proc(id), DRIFT_PPM).expect("node");
    }
    for i in 0..layout.clients.len() {
        sim.set_drift(layout.client_proc(i), -DRIFT_PPM).expect("client");
    }
}

/// The client process of a session, from the node events (client ids are `(proc + 1) << 32`).
fn sessions(sim: &Simulation<Service>) -> BTreeMap<SessionId, ProcId> {
    node_events(sim)
        .into_iter()
        .filter_map(|(_, _, e)| match e {
            NodeEvent::SessionOpened { session, client, .. } => {
                Some((session, ProcId(u32::try_from((client >> 32) - 1).expect("fits"))))
            }
            _ => None,
        })
        .collect()
}

/// The true time each expired session was first expired on any node.
fn expiries(sim: &Simulation<Service>) -> BTreeMap<SessionId, u64> {
    let mut out = BTreeMap::new();
    for (t, _, e) in node_events(sim) {
        if let NodeEvent::SessionExpired { session, .. } = e {
            out.entry(session).or_insert(t);
        }
    }
    out
}

/// The latest end of `client`'s local lease ever observed, in true time.
fn lease_end(sim: &Simulation<Service>, client: ProcId) -> Option<u64> {
    let clock = sim.clock(client).expect("client");
    sim.observations()
        .iter()
        .filter(|o| o.proc == client)
        .filter_map(|o| match &o.obs {
            Obs::Client(ClientObs::Lease { valid_until: Some(v), .. }) => {
                Some(clock.true_nanos_at_mono(*v))
            }
            _ => None,
        })
        .max()
}

fn crash_leader(layout: &ServiceLayout, sim: &mut Simulation<Service>) -> ProcId {
    let leader = layout.node_proc(await_leader(layout, sim));
    sim.crash(leader).expect("the leader runs");
    leader
}

#[test]
fn no_session_expires_before_its_clients_lease_ran_out_across_failovers() {
    for seed in seeds(&[42, 43, 44]) {
        no_early_expiry(seed);
    }
}

fn no_early_expiry(seed: u64) {
    let mut layout = layout(0, &[]);
    let renewing = Duration::from_secs(10);
    layout.clients = vec![spec(renewing), spec(renewing), spec(renewing), spec(TTL)];
    let mut sim = simulation(&layout, seed);
    skew_clocks(&layout, &mut sim);
    await_leader(&layout, &mut sim);
    let long = Duration::from_secs(10);
    for i in 0..4 {
        let c = layout.client_proc(i);
        assert!(run_op(&mut sim, c, UserOp::OpenSession, long).is_done());
        let lock = UserOp::TryAcquire { lock: format!("L{i}") };
        assert!(run_op(&mut sim, c, lock, long).is_done());
    }
    let victim = layout.client_proc(3);
    sim.run_for(SEC);
    // The victim stops for 12 s; meanwhile two leaders crash and come back.
    sim.pause(victim, 12 * SEC).expect("victim runs");
    sim.run_for(SEC);
    let first = crash_leader(&layout, &mut sim);
    sim.run_for(3 * SEC);
    sim.restart(first).expect("restarts");
    sim.run_for(4 * SEC);
    let second = crash_leader(&layout, &mut sim);
    sim.run_for(3 * SEC);
    sim.restart(second).expect("restarts");
    sim.run_for(12 * SEC);

    let owners = sessions(&sim);
    let expired = expiries(&sim);
    let victim_session = *owners.iter().find(|(_, c)| **c == victim).expect("victim's session").0;
    assert!(expired.contains_key(&victim_session), "the paused client's session expired");
    for (session, at) in &expired {
        let client = owners[session];
        let end = lease_end(&sim, client).expect("the client held a lease");
        println!("{session} of {client}: lease ended at {end} ns, expired at {at} ns");
        assert!(end <= *at, "{session} expired {} ns before its client's lease ended", end - at);
    }
    for i in 0..3 {
        let c = layout.client_proc(i);
        let session = *owners.iter().find(|(_, p)| **p == c).expect("session").0;
        assert!(!expired.contains_key(&session), "{c} kept renewing through the failovers");
        let core = sim.process(c).and_then(Service::as_client).expect("client").core();
        let state = core.lease_state(sim.local_now(c).expect("clock"));
        assert!(matches!(state, Some(LeaseState::Held | LeaseState::Jeopardy)), "{state:?}");
        assert_eq!(core.held_locks().count(), 1);
    }
    let leader = layout.node_proc(await_leader(&layout, &mut sim));
    let sm = sim.process(leader).and_then(Service::as_node).and_then(|n| n.core()).unwrap();
    assert!(sm.state_machine().holder("L3").is_none(), "the victim's lock was released");
}

#[test]
fn repeated_elections_cannot_keep_an_unrenewed_session_alive() {
    for seed in seeds(&[9395, 9396, 9397]) {
        unrenewed_session_expires(seed);
    }
}

fn unrenewed_session_expires(seed: u64) {
    let mut layout = layout(0, &[]);
    layout.clients = vec![spec(TTL)];
    let mut sim = simulation(&layout, seed);
    skew_clocks(&layout, &mut sim);
    await_leader(&layout, &mut sim);
    let client = layout.client_proc(0);
    assert!(run_op(&mut sim, client, UserOp::OpenSession, Duration::from_secs(10)).is_done());
    act(&mut sim, client, Action::SetKeepalives(false)).expect("client runs");
    let session = *sessions(&sim).keys().next().expect("a session");
    let end = lease_end(&sim, client).expect("a lease");
    // Crash every leader 300 ms after it is ready, restart it 500 ms later: leadership
    // changes every couple of seconds, more often than the 3 s TTL.
    let mut changes = 0;
    let limit = sim.now_nanos() + 60 * SEC;
    while !expiries(&sim).contains_key(&session) && sim.now_nanos() < limit {
        let crashed = crash_leader_after(&layout, &mut sim, 300 * MS);
        changes += 1;
        sim.run_for(500 * MS);
        sim.restart(crashed).expect("restarts");
    }
    let expired_at = *expiries(&sim).get(&session).expect("the session expired");
    let after = expired_at - end;
    println!("expired {after} ns after the client's lease ended, {changes} leader crashes");
    assert!(changes >= 2, "leaders changed while the session was alive");
    // The tracker's bound: the TTL (plus 4ρT) after the last renewal, plus what each leader
    // that learned the session late can add — at most a checkpoint interval and the election
    // gap — plus the time until a leader is ready to propose the expiry.
    let election_max = 2 * SEC;
    let bound = TTL.as_nanos() as u64 / 10 + 2 * (election_max + 500 * MS) + SEC;
    assert!(after <= bound, "{after} ns after the lease end; bound {bound} ns");
}

/// Waits for a ready leader, lets it lead for `lead`, crashes it.
fn crash_leader_after(layout: &ServiceLayout, sim: &mut Simulation<Service>, lead: u64) -> ProcId {
    let leader = layout.node_proc(await_leader(layout, sim));
    let limit = sim.now_nanos() + lead;
    run_until(sim, limit, MS, |s| layout.leader(s).map(|l| layout.node_proc(l)) != Some(leader));
    sim.crash(leader).ok();
    leader
}
