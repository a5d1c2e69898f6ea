//! Exactly-once mutations through lost replies, retries and failovers (design: "unreliable
//! network, retries" — request ids deduplicated in the replicated state machine, and an
//! explicit "outcome unknown" when the client cannot find out).
//!
//! A client increments a counter with compare-and-swap, over a network that drops 15% of all
//! messages (requests, replies, Raft traffic) and duplicates some. Twice the leader dies right
//! after replicating an increment and before its reply leaves; once the client is cut off
//! right after an increment applied, for longer than its operation timeout. Checked:
//! - no request id is ever executed twice (every application of one id — on any node, a
//!   first execution or a repeat answered from the dedup table — reports the same version);
//! - the final counter equals the number of executed increments; every increment the client
//!   saw succeed is among them, and the others were reported `Unknown`, never guessed;
//! - the cut-off increment ended `Unknown` and did apply (once).

mod node_common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use node_common::*;
use palisade_node::event::CommandSummary;
use palisade_node::lock::{Expect, Outcome, Refused, Reply, RequestId};
use palisade_node::{Consistency, NodeEvent, OpOutcome, ReadReply, ReplyResult, UserOp};
use palisade_sim::service::{Service, ServiceLayout, run_until, submit};
use palisade_sim::{NetworkConfig, Partition, ProcId, Simulation};

const INCREMENTS: u64 = 40;

fn cas(cur: u64) -> UserOp {
    let expected = if cur == 0 { Expect::Absent } else { Expect::Value(cur.to_string().into()) };
    let value = (cur + 1).to_string().into_bytes();
    UserOp::Cas { key: "counter".into(), expected, value, fence: None }
}

fn read_counter(sim: &mut Simulation<Service>, client: ProcId) -> u64 {
    loop {
        let get = UserOp::Get { key: "counter".into(), consistency: Consistency::Linearizable };
        match run_op(sim, client, get, Duration::from_secs(30)) {
            Outcome::Done(ReplyResult::Read(ReadReply::Value { value, .. })) => {
                let data = value.map(|v| v.data).unwrap_or_else(|| b"0".to_vec());
                return String::from_utf8(data).expect("utf8").parse().expect("a number");
            }
            Outcome::Unknown => continue,
            other => panic!("read: {other:?}"),
        }
    }
}

fn in_flight(sim: &Simulation<Service>, client: ProcId) -> Option<RequestId> {
    sim.process(client).and_then(Service::as_client)?.core().in_flight_request()
}

fn core(
    sim: &Simulation<Service>,
    node: ProcId,
) -> Option<&palisade_node::ServerCore<palisade_node::storage::SimDisk>> {
    sim.process(node).and_then(Service::as_node).and_then(|n| n.core())
}

/// Starts `op`; once the leader has proposed it, holds the leader's next outputs and crashes
/// it: the entry is replicated, the reply never leaves.
fn crash_leader_before_reply(
    layout: &ServiceLayout,
    sim: &mut Simulation<Service>,
    client: ProcId,
    op: UserOp,
) -> palisade_node::OpId {
    let leader = layout.node_proc(await_leader(layout, sim));
    let id = submit(sim, client, op).expect("client runs");
    let rid = in_flight(sim, client).expect("a mutation");
    let limit = sim.now_nanos() + 2 * SEC;
    let proposed = run_until(sim, limit, 10_000, |s| {
        core(s, leader).and_then(|c| c.pending_proposal(rid)).is_some()
    });
    if !proposed {
        return id;
    }
    let index = core(sim, leader).and_then(|c| c.pending_proposal(rid)).expect("proposed");
    sim.pause_mid_handler(leader, 5 * SEC).expect("leader runs");
    let limit = sim.now_nanos() + 20 * MS;
    let applied = run_until(sim, limit, 10_000, |s| {
        core(s, leader).is_some_and(|c| c.applied_index() >= index)
    });
    println!(
        "leader {leader} crashes with entry {index} {}",
        if applied { "applied, reply held" } else { "replicated" }
    );
    sim.crash(leader).expect("crash");
    sim.run_for(500 * MS);
    sim.restart(leader).expect("restart");
    id
}

/// Starts `op`, and once it applied on the leader cuts the client off for 12 s (longer than
/// its operation timeout).
fn cut_off_after_apply(
    layout: &ServiceLayout,
    sim: &mut Simulation<Service>,
    client: ProcId,
    op: UserOp,
) -> palisade_node::OpId {
    let id = submit(sim, client, op).expect("client runs");
    let rid = in_flight(sim, client).expect("a mutation");
    let limit = sim.now_nanos() + 10 * SEC;
    let applied = run_until(sim, limit, 10_000, |s| {
        layout.node_ids().into_iter().any(|n| {
            core(s, layout.node_proc(n)).is_some_and(|c| {
                c.state_machine()
                    .sessions()
                    .any(|sess| sess.client == rid.client && sess.last_seq == rid.seq)
            })
        })
    });
    assert!(applied, "the increment applied");
    sim.set_partition(Partition::isolate(client));
    sim.run_for(12 * SEC);
    sim.heal();
    id
}

#[test]
fn lost_replies_retries_and_failovers_never_apply_a_request_twice() {
    for seed in seeds(&[1010, 1011]) {
        exactly_once(seed);
    }
}

fn exactly_once(seed: u64) {
    let mut layout = layout(1, &[]);
    layout.clients[0].config.ttl = Duration::from_secs(30);
    let client = layout.client_proc(0);
    let network = NetworkConfig {
        drop_probability: 0.15,
        duplicate_probability: 0.05,
        reorder_probability: 0.05,
        ..NetworkConfig::default()
    };
    println!("seed {seed}");
    let mut sim = layout.clone().simulation(seed, network);
    await_leader(&layout, &mut sim);
    loop {
        match run_op(&mut sim, client, UserOp::OpenSession, Duration::from_secs(30)) {
            Outcome::Done(ReplyResult::Done(Ok(Reply::SessionOpened { .. }))) => break,
            other => println!("open: {other:?}"),
        }
    }
    let mut cur = 0;
    let (mut succeeded, mut unknown) = (0u64, 0u64);
    let mut cut_off = None;
    for i in 0..INCREMENTS {
        let op = cas(cur);
        let id = match i {
            10 | 25 => crash_leader_before_reply(&layout, &mut sim, client, op),
            18 => {
                let id = cut_off_after_apply(&layout, &mut sim, client, op);
                cut_off = Some((id, cur));
                id
            }
            _ => submit(&mut sim, client, op).expect("client runs"),
        };
        let outcome: OpOutcome = wait_op(&mut sim, client, id, Duration::from_secs(60));
        match outcome {
            Outcome::Done(ReplyResult::Done(Ok(Reply::Written { .. }))) => {
                succeeded += 1;
                cur += 1;
            }
            Outcome::Done(ReplyResult::Done(Err(Refused::CasMismatch { .. }))) => {
                cur = read_counter(&mut sim, client);
            }
            Outcome::Unknown => {
                unknown += 1;
                cur = read_counter(&mut sim, client);
            }
            other => panic!("increment {i}: a guess or a protocol leak: {other:?}"),
        }
    }
    let final_value = read_counter(&mut sim, client);
    println!("counter {final_value}: {succeeded} known increments, {unknown} unknown");

    // Every application of a request id, on every node, reports one and the same version.
    let mut versions: BTreeMap<RequestId, BTreeSet<String>> = BTreeMap::new();
    for (_, _, e) in node_events(&sim) {
        if let NodeEvent::Applied {
            command:
                CommandSummary::Client {
                    id,
                    op: "Cas",
                    response: Ok(Reply::Written { version, .. }),
                    ..
                },
            ..
        } = e
        {
            versions.entry(id).or_default().insert(version.to_string());
        }
    }
    for (id, v) in &versions {
        assert_eq!(v.len(), 1, "{id:?} executed more than once: {v:?}");
    }
    let executed = versions.len() as u64;
    assert_eq!(final_value, executed, "the counter counts each executed increment once");
    assert!(
        succeeded <= executed && executed <= succeeded + unknown,
        "{succeeded} + {unknown} vs {executed}"
    );
    let (cut_id, before) = cut_off.expect("the cut-off increment ran");
    let cut_outcome = palisade_sim::service::outcome(&sim, client, cut_id);
    assert_eq!(cut_outcome, Some(Outcome::Unknown), "the client gave up without guessing");
    assert!(final_value > before, "the cut-off increment did apply");
    assert!(unknown >= 1);
    let stats = sim.stats();
    println!("{stats:?}");
    assert!(stats.messages_dropped > 100, "replies and requests were lost on the way");
}
