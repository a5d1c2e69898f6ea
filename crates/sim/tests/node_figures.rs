//! Figures 8-4 and 8-5 of "The Trouble with Distributed Systems", on a simulated 3-node
//! palisade cluster (design: "Fencing, end to end").
//!
//! Client A takes the lock and gets token 33; A stops (a GC pause) right after checking that
//! its lease is valid and before its write leaves the machine. The lease runs out; the leader
//! expires A's session *through the log*; after the lock-delay, B — queued for the lock — gets
//! it with token 34 and writes. Then A wakes and its write, with token 33, arrives:
//! - at a store that does not check tokens, it is accepted: B's update is lost (figure 8-4);
//! - at a store that checks them (`FenceGuard`), it is rejected: 34 was seen (figure 8-5);
//! - at palisade's own fenced kv, it is refused too: A's session is gone (`NoSession`, which A's
//!   client reports as `Unknown`), and a write presenting 33 on a new session gets `StaleToken`.

mod node_common;

use std::time::Duration;

use node_common::*;
use palisade_node::event::CommandSummary;
use palisade_node::lock::{Fence, FenceRejection, Outcome, Refused, Reply, Token};
use palisade_node::{NodeEvent, ReplyResult, UserOp};
use palisade_sim::service::{
    Action, ClientObs, Obs, ScriptStep, Service, StoreObs, outcome, run_until,
};
use palisade_sim::{ProcId, Simulation};

const SEED: u64 = 8_4;
const A_VALUE: &[u8] = b"written by A with the stale lock";
const B_VALUE: &[u8] = b"written by B, the lock's holder";

/// The leader's last log index.
fn last_index(sim: &Simulation<palisade_sim::service::Service>, leader: ProcId) -> u64 {
    let node = sim.process(leader).and_then(Service::as_node).and_then(|n| n.core());
    node.expect("the leader runs").raft().status().last_index
}

fn token_of(o: &palisade_node::OpOutcome) -> Token {
    match o {
        Outcome::Done(ReplyResult::Done(Ok(Reply::Acquired { holder, .. }))) => holder.token,
        other => panic!("not acquired: {other:?}"),
    }
}

fn store_obs(sim: &Simulation<Service>, store: ProcId) -> Vec<StoreObs> {
    let of_store = |o: &&palisade_sim::Observed<Obs>| o.proc == store;
    sim.observations()
        .iter()
        .filter(of_store)
        .filter_map(|o| match &o.obs {
            Obs::Store(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn figure_8_4_and_8_5_a_paused_holder_is_fenced_off() {
    for seed in seeds(&[SEED]) {
        paused_holder_is_fenced_off(seed);
    }
}

fn paused_holder_is_fenced_off(seed: u64) {
    let layout = layout(3, &[false, true]);
    let (a, b, filler) = (layout.client_proc(0), layout.client_proc(1), layout.client_proc(2));
    let (unchecked, checked) = (layout.store_proc(0), layout.store_proc(1));
    let mut sim = simulation(&layout, seed);
    let leader = layout.node_proc(await_leader(&layout, &mut sim));
    let long = Duration::from_secs(10);
    for c in [a, b, filler] {
        assert!(matches!(run_op(&mut sim, c, UserOp::OpenSession, long), Outcome::Done(_)));
    }
    // Prior traffic, so that A's grant lands at index 33 as in the book (if a keepalive or a
    // checkpoint slips in between, the relation below still holds and the numbers are printed).
    let mut n = 0;
    while last_index(&sim, leader) < 32 {
        n += 1;
        let put = UserOp::Put { key: format!("filler{n}"), value: vec![], fence: None };
        assert!(run_op(&mut sim, filler, put, long).is_done());
    }
    let token_a = token_of(&run_op(&mut sim, a, UserOp::TryAcquire { lock: "L".into() }, long));
    println!("A holds L with token {token_a}");
    // B queues for L with a long poll, then writes under it once granted.
    let grant_wait = Some(Duration::from_secs(30));
    let b_script = vec![
        ScriptStep::now(Action::Op(UserOp::Acquire { lock: "L".into(), wait: grant_wait })),
        ScriptStep::now(store_write(unchecked, B_VALUE, "L")),
        ScriptStep::now(store_write(checked, B_VALUE, "L")),
        ScriptStep::now(Action::FencedPut {
            key: "file".into(),
            value: B_VALUE.into(),
            lock: "L".into(),
        }),
    ];
    sim.invoke(b, |p, ctx| p.as_client_mut().expect("client").push_script(ctx, b_script))
        .expect("B runs");
    let b_session = session_of(&sim, b);
    let limit = sim.now_nanos() + SEC;
    let queued = run_until(&mut sim, limit, MS, |s| {
        let core = s.process(leader).and_then(Service::as_node).and_then(|n| n.core());
        let info = core.and_then(|c| c.state_machine().lock_info("L").cloned());
        info.is_some_and(|i| i.waiters.contains(&b_session))
    });
    assert!(queued, "B waits for L");
    // A checks its lease (valid), then stops before its writes leave: a GC pause of 8 s.
    let a_session = session_of(&sim, a);
    sim.pause_mid_handler(a, 8 * SEC).expect("A runs");
    let a_put = sim
        .invoke(a, |p, ctx| {
            let c = p.as_client_mut().expect("client");
            assert!(c.core().is_safe_now(ctx.now()), "A's lease is valid when it checks");
            c.act(ctx, store_write(unchecked, A_VALUE, "L"));
            c.act(ctx, store_write(checked, A_VALUE, "L"));
            let put =
                Action::FencedPut { key: "file".into(), value: A_VALUE.into(), lock: "L".into() };
            c.act(ctx, put).expect("A's put starts")
        })
        .expect("A runs");
    // While A sleeps: its session expires through the log, B gets L and writes.
    sim.run_for(9 * SEC);
    let events = node_events(&sim);
    let expired_at = applied_index(&sim, |e| match e {
        NodeEvent::Applied { command: CommandSummary::ExpireSession { session, .. }, .. } => {
            *session == a_session
        }
        _ => false,
    })
    .expect("the leader expired A through the log");
    let (token_b, granted_at) = events
        .iter()
        .find_map(|(_, _, e)| match e {
            NodeEvent::Granted { lock, session, token, index }
                if lock == "L" && *session == b_session =>
            {
                Some((*token, *index))
            }
            _ => None,
        })
        .expect("B was granted L");
    println!(
        "A's session expired by entry {expired_at}; B granted L at {granted_at}, token {token_b}"
    );
    assert!(expired_at < granted_at, "the expiry is applied before B's grant");
    assert!(token_b > token_a, "fencing tokens increase: {token_a} then {token_b}");
    let a_expiry_applied = events.iter().any(|(_, p, e)| {
        *p == leader
            && matches!(e, NodeEvent::SessionExpired { session, .. } if *session == a_session)
    });
    assert!(a_expiry_applied, "the leader applied the expiry");

    // Figure 8-4: the store that does not check tokens lost B's update.
    let lost: Vec<_> = store_obs(&sim, unchecked)
        .into_iter()
        .filter(|o| matches!(o, StoreObs::Accepted { from, .. } if *from == a))
        .collect();
    assert_eq!(lost.len(), 1, "A's stale write was accepted: {lost:?}");
    match &lost[0] {
        StoreObs::Accepted { token, replaced, value, .. } => {
            assert_eq!(*token, Some(token_a));
            assert_eq!(value.as_slice(), A_VALUE);
            assert_eq!(replaced.as_deref(), Some(B_VALUE), "B's update is lost");
        }
        other => panic!("{other:?}"),
    }
    let unchecked_store = sim.process(unchecked).and_then(Service::as_store).expect("store");
    assert_eq!(unchecked_store.get("file").expect("written").value, A_VALUE);
    // Figure 8-5: the store that checks tokens refused A's write.
    let rejected = store_obs(&sim, checked)
        .into_iter()
        .find(|o| matches!(o, StoreObs::Rejected { from, .. } if *from == a))
        .expect("the checked store rejected A");
    assert_eq!(
        rejected,
        StoreObs::Rejected {
            from: a,
            key: "file".into(),
            token: Some(token_a),
            highest: Some(token_b)
        }
    );
    let checked_store = sim.process(checked).and_then(Service::as_store).expect("store");
    assert_eq!(checked_store.get("file").expect("written").value, B_VALUE);
    assert_eq!(checked_store.get("file").expect("written").token, Some(token_b));

    // Palisade's own fenced kv: A's put found no session; A cannot tell whether it ran.
    assert_eq!(outcome(&sim, a, a_put), Some(Outcome::Unknown));
    let a_put_response = events.iter().find_map(|(_, p, e)| match e {
        NodeEvent::Applied {
            command: CommandSummary::Client { op: "Put", target: Some(k), response, .. },
            ..
        } if *p == leader && k == "file" && matches!(response, Err(Refused::NoSession { .. })) => {
            Some(response.clone())
        }
        _ => None,
    });
    println!("A's stale put at the leader: {a_put_response:?}");
    assert!(a_put_response.is_some(), "the leader refused A's put: no session");
    let leader_core =
        sim.process(leader).and_then(Service::as_node).and_then(|n| n.core()).unwrap();
    let file = leader_core.state_machine().get("file").expect("B wrote the file");
    assert_eq!(
        (file.data.as_slice(), file.written_by.as_ref().map(|f| f.token)),
        (B_VALUE, Some(token_b))
    );
    // A, awake, notices it lost its lease; on a new session, writing with 33 is a stale token.
    let a_lease = sim
        .process(a)
        .and_then(Service::as_client)
        .unwrap()
        .core()
        .lease_state(sim.local_now(a).unwrap());
    assert_eq!(a_lease, Some(palisade_node::lock::LeaseState::Lost));
    assert!(run_op(&mut sim, a, UserOp::OpenSession, long).is_done());
    let stale = UserOp::Put {
        key: "file".into(),
        value: A_VALUE.into(),
        fence: Some(Fence { lock: "L".into(), token: token_a }),
    };
    let refused = run_op(&mut sim, a, stale, long);
    let expected = Refused::Fence(FenceRejection::StaleToken {
        lock: "L".into(),
        presented: token_a,
        current: token_b,
    });
    assert_eq!(refused, Outcome::Done(ReplyResult::Done(Err(expected))));
    let skipped = sim
        .observations()
        .iter()
        .any(|o| matches!(&o.obs, Obs::Client(ClientObs::WriteSkipped { .. })));
    assert!(!skipped, "every guarded write was sent (A checked before its pause)");
}

fn store_write(store: ProcId, value: &[u8], lock: &str) -> Action {
    Action::StoreWrite { store, key: "file".into(), value: value.into(), lock: Some(lock.into()) }
}
