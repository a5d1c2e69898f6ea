//! Blocking acquire hands off at once (design: "Locks and tokens" — the next waiter is granted
//! in the same apply step as the release; the node answers the parked long poll from that
//! step's `Granted` event, with no timer on the way).

mod node_common;

use std::time::Duration;

use node_common::*;
use palisade_node::event::CommandSummary;
use palisade_node::lock::{Outcome, Reply};
use palisade_node::{NodeEvent, ReplyResult, UserOp};
use palisade_sim::service::{ClientObs, Obs, Service, run_until, submit};
use palisade_sim::{DelayConfig, NetworkConfig};

#[test]
fn a_release_grants_the_parked_waiter_in_the_same_apply_step() {
    for seed in seeds(&[7]) {
        release_grants_the_parked_waiter(seed);
    }
}

fn release_grants_the_parked_waiter(seed: u64) {
    println!("seed {seed}");
    let layout = layout(2, &[]);
    let (a, b) = (layout.client_proc(0), layout.client_proc(1));
    // No heavy tail: every message arrives within 300 µs, so "immediate" has a sharp bound.
    let delay = DelayConfig { tail_probability: 0.0, ..DelayConfig::default() };
    let network = NetworkConfig { delay, ..NetworkConfig::default() };
    let mut sim = layout.clone().simulation(seed, network);
    let leader = layout.node_proc(await_leader(&layout, &mut sim));
    let long = Duration::from_secs(10);
    for c in [a, b] {
        assert!(run_op(&mut sim, c, UserOp::OpenSession, long).is_done());
    }
    let lock = || "L".to_string();
    assert!(run_op(&mut sim, a, UserOp::TryAcquire { lock: lock() }, long).is_done());
    let wait = Some(Duration::from_secs(30));
    let b_acquire = submit(&mut sim, b, UserOp::Acquire { lock: lock(), wait }).expect("B runs");
    let b_session = session_of(&sim, b);
    let limit = sim.now_nanos() + SEC;
    let queued = run_until(&mut sim, limit, MS, |s| {
        let core = s.process(leader).and_then(Service::as_node).and_then(|n| n.core());
        core.and_then(|c| c.state_machine().lock_info("L").cloned())
            .is_some_and(|info| info.waiters == vec![b_session])
    });
    assert!(queued, "B is parked in the queue");
    // Let B's long poll sit for a while: nothing answers it but the grant.
    sim.run_for(2 * SEC);
    let parked = sim.process(leader).and_then(Service::as_node).and_then(|n| n.core()).unwrap();
    assert_eq!(parked.status(parked.now()).parked_waiters, 1);
    assert!(run_op(&mut sim, a, UserOp::Release { lock: lock() }, long).is_done());
    let granted = wait_op(&mut sim, b, b_acquire, long);

    let events = node_events(&sim);
    let (release_at, release_index, next) = events
        .iter()
        .find_map(|(t, p, e)| match e {
            NodeEvent::Applied {
                index,
                command:
                    CommandSummary::Client {
                        op: "Release",
                        response: Ok(Reply::Released { next, .. }),
                        ..
                    },
                ..
            } if *p == leader => Some((*t, *index, next.clone())),
            _ => None,
        })
        .expect("the leader applied A's release");
    let next = next.expect("the release named the next holder");
    let grant_index = events
        .iter()
        .find_map(|(_, p, e)| match e {
            NodeEvent::Granted { session, index, .. } if *p == leader && *session == b_session => {
                Some(*index)
            }
            _ => None,
        })
        .expect("the leader granted B");
    assert_eq!(grant_index, release_index, "B is granted by the releasing entry itself");
    match &granted {
        Outcome::Done(ReplyResult::Done(Ok(Reply::Acquired { holder, .. }))) => {
            assert_eq!(holder.session, b_session);
            assert_eq!(holder.token, release_index, "the token is the releasing entry's index");
            assert_eq!(*holder, next);
        }
        other => panic!("B's blocking acquire: {other:?}"),
    }
    let completed_at = sim
        .observations()
        .iter()
        .find_map(|o| match &o.obs {
            Obs::Client(ClientObs::Completed { op, .. }) if o.proc == b && *op == b_acquire => {
                Some(o.t_nanos)
            }
            _ => None,
        })
        .expect("B's completion was observed");
    let lag = completed_at - release_at;
    println!("release applied at index {release_index}; B answered {lag} ns later");
    assert!(lag < MS, "one network hop, no timer: {lag} ns");
}
