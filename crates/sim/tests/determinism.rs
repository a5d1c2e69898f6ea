//! Integration tests of the simulator core: determinism, and that each fault does what its
//! documentation says (design brief: "seed-reproducible simulation of every fault").

#[allow(dead_code)]
#[path = "../examples/toy.rs"]
mod toy;

mod common;

use std::collections::BTreeMap;

use common::{MS, Msg, Obs, Peer, SEC, ping, pinger, received, world};
use palisade_sim::{
    DelayConfig, NetworkConfig, NetworkModel, Partition, ProcId, SimError, Simulation, TraceEvent,
    TraceKind,
};
use palisade_storage::Disk;

/// The same seed gives the same trace hash and stats; other seeds give other hashes.
#[test]
fn same_seed_same_trace_hash() {
    for seed in [1, 2, 3] {
        let a = toy::run(seed);
        let b = toy::run(seed);
        println!("seed {seed}: hash {:#018x}", a.trace_hash);
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed} is not deterministic");
        assert_eq!(a.stats, b.stats, "seed {seed}: stats differ");
        assert!(a.violations.is_empty(), "seed {seed}: toy durability {:?}", a.violations);
        assert!(a.stats.messages_delivered > 1_000, "seed {seed}: too little happened");
    }
    let hashes: Vec<u64> = (10..14).map(|s| toy::run(s).trace_hash).collect();
    for (i, h) in hashes.iter().enumerate() {
        assert!(!hashes[i + 1..].contains(h), "two seeds gave one hash: {hashes:x?}");
    }
}

/// A crash keeps synced data and may lose (or tear) unsynced data, which the restarted process
/// then does not see (Disk contract, "What survives a crash").
#[test]
fn crash_restart_loses_unsynced_writes() {
    let mut lost = 0;
    for seed in 0..32 {
        let mut sim = world(seed, 1, NetworkConfig::default());
        let p = ProcId(0);
        sim.invoke(p, |peer, _| {
            peer.disk.append("data", b"synced").expect("append");
            peer.disk.sync("data").expect("sync");
            peer.disk.sync_dir().expect("sync_dir");
            peer.disk.append("data", b"+unsynced").expect("append");
        })
        .expect("invoke");
        sim.crash(p).expect("crash");
        assert_eq!(sim.crash(p), Err(SimError::Down(p)));
        assert!(!sim.is_up(p));
        sim.restart(p).expect("restart");
        assert_eq!(sim.incarnation(p), Some(1));
        let Obs::Started(bytes) = &sim.observations().last().expect("started").obs else {
            panic!("seed {seed}: last observation is not a start");
        };
        assert!(bytes.starts_with(b"synced"), "seed {seed}: synced data lost: {bytes:?}");
        assert!(b"synced+unsynced".starts_with(bytes), "seed {seed}: invented data");
        if bytes.len() < b"synced+unsynced".len() {
            lost += 1;
        }
    }
    assert!(lost > 0, "no crash in 32 seeds lost an unsynced write");
}

/// Messages to a paused process wait, and are handled at the resume with the resume's clock.
#[test]
fn pause_delays_delivery_to_the_resume() {
    let mut sim = world(5, 2, NetworkConfig::default());
    sim.pause(ProcId(1), SEC).expect("pause");
    assert!(sim.is_paused(ProcId(1)));
    ping(&mut sim, 0, 1, 1);
    sim.run_until(SEC - 1);
    assert!(received(&sim).is_empty(), "delivered during the pause");
    sim.run_until(SEC);
    assert!(!sim.is_paused(ProcId(1)));
    let got = sim.observations().iter().find(|o| matches!(o.obs, Obs::Got(..))).expect("got");
    assert_eq!(got.t_nanos, SEC, "the backlog is handled at the resume");
    let resume_now = sim.local_now(ProcId(1)).expect("clock");
    assert!(matches!(got.obs, Obs::Got(_, _, now) if now == resume_now));
    sim.run_for(SEC);
    assert_eq!(received(&sim).len(), 2, "the pong came back");
}

/// A mid-handler pause lets the handler run but holds its sends until the pause ends.
#[test]
fn mid_handler_pause_holds_the_effects() {
    let mut sim = world(6, 2, NetworkConfig::default());
    sim.pause_mid_handler(ProcId(1), 500 * MS).expect("arm");
    ping(&mut sim, 0, 1, 9);
    sim.run_until(2 * SEC);
    let events = sim.trace_events();
    let got = events.iter().find(|e| e.kind == TraceKind::Deliver).expect("delivered");
    let pong = events
        .iter()
        .find(|e| e.kind == TraceKind::Send && e.from == Some(ProcId(1)))
        .expect("pong sent");
    assert_eq!(pong.t, got.t + 500 * MS, "the pong left only after the pause");
    assert_eq!(received(&sim).len(), 2);
}

/// A one-way partition loses one direction only (A hears B, B does not hear A).
#[test]
fn one_way_partition_drops_one_direction() {
    let mut sim = world(7, 2, NetworkConfig::default());
    sim.set_partition(Partition::one_way(vec![ProcId(0)], vec![ProcId(1)]));
    assert!(!sim.can_reach(ProcId(0), ProcId(1)));
    assert!(sim.can_reach(ProcId(1), ProcId(0)));
    ping(&mut sim, 0, 1, 1);
    ping(&mut sim, 1, 0, 2);
    sim.run_for(SEC);
    // p1's ping reaches p0, p0's pong back to p1 is lost, p0's ping is lost.
    assert_eq!(received(&sim), vec![(ProcId(0), ProcId(1), Msg::Ping(2))]);
    assert_eq!(sim.stats().messages_dropped_partition, 2);
    sim.heal();
    ping(&mut sim, 0, 1, 3);
    sim.run_for(SEC);
    assert_eq!(received(&sim).len(), 3, "after the heal both ways work");
}

/// A message in flight on a link that is cut before it arrives is lost.
#[test]
fn partition_cuts_messages_in_flight() {
    let mut sim = world(8, 2, NetworkConfig::default());
    ping(&mut sim, 0, 1, 1);
    sim.set_partition(Partition::isolate(ProcId(1)));
    sim.run_for(SEC);
    assert!(received(&sim).is_empty());
    assert_eq!(sim.stats().messages_dropped_partition, 1);
}

/// Delivers a ping on every ordered pair and returns which pairs got through.
fn delivered_pairs(sim: &mut Simulation<Peer>, n: u32) -> Vec<(u32, u32)> {
    sim.drain_observations();
    for a in 0..n {
        for b in 0..n {
            if a != b {
                ping(sim, a, b, u64::from(a * 100 + b));
            }
        }
    }
    sim.run_for(SEC);
    let mut pairs: Vec<(u32, u32)> = received(sim)
        .into_iter()
        .filter(|(_, _, m)| matches!(m, Msg::Ping(_)))
        .map(|(to, from, _)| (from.0, to.0))
        .collect();
    pairs.sort_unstable();
    pairs
}

/// Bridge: the two sides cannot talk, the bridge talks to both. Ring: only neighbours talk.
#[test]
fn bridge_and_ring_shapes() {
    let mut sim = world(9, 5, NetworkConfig::default());
    let ids = |v: &[u32]| v.iter().map(|&i| ProcId(i)).collect::<Vec<_>>();
    sim.set_partition(Partition::bridge(ids(&[0, 1]), ids(&[3, 4]), ProcId(2)));
    let pairs = delivered_pairs(&mut sim, 5);
    let side = |p: u32| -> u32 {
        if p < 2 {
            0
        } else if p > 2 {
            2
        } else {
            1
        }
    };
    let expected: Vec<(u32, u32)> = (0..5)
        .flat_map(|a| (0..5).map(move |b| (a, b)))
        .filter(|&(a, b)| a != b && side(a).abs_diff(side(b)) < 2)
        .collect();
    assert_eq!(pairs, expected, "bridge");
    sim.set_partition(Partition::ring(ids(&[0, 2, 4, 1, 3])));
    let pairs = delivered_pairs(&mut sim, 5);
    let ring = [0, 2, 4, 1, 3];
    let pos = |p: u32| ring.iter().position(|&r| r == p).expect("in ring");
    let expected: Vec<(u32, u32)> = (0..5)
        .flat_map(|a| (0..5).map(move |b| (a, b)))
        .filter(|&(a, b)| a != b && matches!((pos(a) + 5 - pos(b)) % 5, 1 | 4))
        .collect();
    assert_eq!(pairs, expected, "ring");
    assert_eq!(pairs.len(), 10);
}

/// Heavy tails, slow pinger: returns `(sent, delay)` of every message pairing send and deliver.
fn delays(sim: &Simulation<Peer>) -> Vec<(u64, u64)> {
    let mut sent: BTreeMap<u64, u64> = BTreeMap::new();
    let mut out = Vec::new();
    for e in sim.trace_events() {
        let TraceEvent { t, kind, msg: Some(id), .. } = e else { continue };
        match kind {
            TraceKind::Send => {
                sent.insert(*id, *t);
            }
            TraceKind::Deliver => out.push((sent[id], t - sent[id])),
            _ => {}
        }
    }
    out
}

fn heavy_tails(model: NetworkModel) -> NetworkConfig {
    let delay = DelayConfig {
        tail_probability: 0.3,
        tail_scale_nanos: 5 * MS,
        tail_max_nanos: 3 * SEC,
        ..DelayConfig::default()
    };
    NetworkConfig { reorder_probability: 0.2, delay, model, ..NetworkConfig::default() }
}

/// Partial synchrony: after GST every delay is within the bound; before it, not so.
#[test]
fn partial_synchrony_caps_delays_after_gst() {
    let gst = 5 * SEC;
    let cap = 20 * MS;
    let model =
        NetworkModel::PartiallySynchronous { gst_nanos: gst, delay_max_after_gst_nanos: cap };
    let mut sim = pinger(11, heavy_tails(model));
    sim.run_until(10 * SEC);
    let d = delays(&sim);
    assert!(d.len() > 1_500, "{} deliveries", d.len());
    let after: Vec<_> = d.iter().filter(|(s, _)| *s >= gst).collect();
    assert!(!after.is_empty());
    assert!(after.iter().all(|(_, delay)| *delay <= cap), "a delay past the cap after GST");
    assert!(d.iter().any(|(s, delay)| *s < gst && *delay > cap), "no slow message before GST");
    assert!(d.iter().all(|(s, delay)| s + delay <= s.max(&gst) + cap), "bound max(t, GST) + cap");
}

/// Synchronous: every delay within the bound; asynchronous: the tail goes past it.
#[test]
fn synchronous_caps_every_delay() {
    let cap = 20 * MS;
    let mut sync = pinger(12, heavy_tails(NetworkModel::Synchronous { delay_max_nanos: cap }));
    sync.run_until(5 * SEC);
    assert!(delays(&sync).iter().all(|(_, d)| *d <= cap));
    let mut not = pinger(12, heavy_tails(NetworkModel::Asynchronous));
    not.run_until(5 * SEC);
    assert!(delays(&not).iter().any(|(_, d)| *d > cap));
}

/// Every corrupted frame is caught by the CRC and dropped; nothing corrupt is delivered.
#[test]
fn corruption_is_detected_by_the_crc() {
    let net = NetworkConfig { corrupt_probability: 1.0, ..NetworkConfig::default() };
    let mut sim = pinger(13, net);
    sim.run_until(10 * SEC);
    sim.crash(ProcId(0)).expect("stop the pinger");
    sim.run_until(11 * SEC);
    let s = sim.stats();
    assert!(s.corrupt_detected >= 900, "{s:?}");
    assert_eq!(s.corrupt_undetected, 0);
    assert_eq!(s.messages_delivered, 0);
    assert_eq!(s.corrupt_detected, s.messages_sent);
}

/// Duplication delivers a message twice.
#[test]
fn duplicates_arrive_twice() {
    let net = NetworkConfig { duplicate_probability: 1.0, ..NetworkConfig::default() };
    let mut sim = world(14, 2, net);
    ping(&mut sim, 0, 1, 1);
    sim.run_for(SEC);
    let pings = received(&sim).iter().filter(|r| r.2 == Msg::Ping(1)).count();
    assert_eq!(pings, 2);
    assert_eq!(sim.stats().messages_duplicated, 3, "the ping and both pongs were duplicated");
}

/// Timers run on the local clock: a fast clock fires early in true time, a slow one late.
#[test]
fn drift_moves_timers_in_true_time() {
    let fire_at = |ppm: i32| {
        let mut sim = pinger(15, NetworkConfig::default());
        sim.set_drift(ProcId(0), ppm).expect("drift");
        sim.run_until(11 * MS);
        let tick = sim.observations().iter().find(|o| matches!(o.obs, Obs::Tick(_)));
        tick.expect("ticked").t_nanos
    };
    assert_eq!(fire_at(0), 10 * MS);
    assert!(fire_at(500) < 10 * MS, "a fast clock fires early in true time");
    assert!(fire_at(-500) > 10 * MS, "a slow clock fires late in true time");
}

/// The simulator refuses to break the drift bound that safety may assume.
#[test]
#[should_panic(expected = "beyond the bound")]
fn drift_beyond_the_bound_is_refused() {
    let mut sim = world(16, 1, NetworkConfig::default());
    let _ = sim.set_drift(ProcId(0), 501);
}

/// A wall-clock step moves the time of day and leaves the monotonic reading alone.
#[test]
fn wall_steps_leave_monotonic_time_alone() {
    let mut sim = world(17, 1, NetworkConfig::default());
    let before = sim.local_now(ProcId(0)).expect("clock");
    sim.step_wall(ProcId(0), -30 * SEC as i64).expect("step");
    let after = sim.local_now(ProcId(0)).expect("clock");
    assert_eq!(before.mono, after.mono);
    assert_eq!(before.wall.as_nanos() - after.wall.as_nanos(), 30 * SEC);
}
