//! Integration tests of fault mechanics: scheduling, no-ops, pauses, the disk-corruption policy,
//! per-incarnation seeds and trace streaming.

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use common::{MS, Msg, Obs, SEC, ping, received, world};
use palisade_sim::{
    Fault, NetworkConfig, ProcId, SimError, Stats, TraceEvent, TraceKind, TraceSink,
    minority_flip_policy,
};
use palisade_storage::Disk;

/// A scheduled fault that cannot apply is a traced no-op, not a failure of the run.
#[test]
fn scheduled_faults_apply_or_are_noops() {
    let mut sim = world(1, 2, NetworkConfig::default());
    let p = ProcId(1);
    sim.schedule(SEC, Fault::Crash(p));
    sim.schedule(2 * SEC, Fault::Crash(p));
    sim.schedule(3 * SEC, Fault::Restart(p));
    sim.schedule(4 * SEC, Fault::Resume(p));
    sim.run_until(5 * SEC);
    let s: &Stats = sim.stats();
    assert_eq!((s.crashes, s.restarts), (1, 1));
    assert_eq!((s.faults_applied, s.faults_noop), (2, 2));
    assert_eq!(sim.incarnation(p), Some(1));
    let noops: Vec<&TraceEvent> =
        sim.trace_events().iter().filter(|e| e.kind == TraceKind::FaultNoop).collect();
    assert_eq!(noops.len(), 2);
    assert_eq!(noops[0].detail, "process p1 is down");
    assert_eq!(noops[1].detail, "process p1 is not paused");
    assert_eq!(sim.apply(Fault::Restart(p)), Err(SimError::AlreadyUp(p)));
    assert_eq!(sim.apply(Fault::Crash(ProcId(9))), Err(SimError::UnknownProc(ProcId(9))));
}

/// Messages that arrive at a crashed process are lost, and a crash also drops the messages a
/// paused process had queued.
#[test]
fn crash_drops_queued_and_arriving_messages() {
    let mut sim = world(2, 2, NetworkConfig::default());
    sim.pause(ProcId(1), SEC).expect("pause");
    ping(&mut sim, 0, 1, 1);
    sim.run_until(100 * MS);
    sim.crash(ProcId(1)).expect("crash");
    ping(&mut sim, 0, 1, 2);
    sim.run_until(2 * SEC);
    assert!(received(&sim).is_empty());
    assert_eq!(sim.stats().messages_dropped_down, 2);
    assert!(!sim.is_paused(ProcId(1)), "a crash ends the pause");
    assert_eq!(sim.invoke(ProcId(1), |_, _| ()), Err(SimError::Down(ProcId(1))));
}

/// A pause during a pause extends it; invoke refuses a paused process.
#[test]
fn pauses_extend_and_refuse_invoke() {
    let mut sim = world(3, 2, NetworkConfig::default());
    sim.pause(ProcId(1), SEC).expect("pause");
    sim.run_until(SEC / 2);
    sim.pause(ProcId(1), SEC).expect("extend");
    assert_eq!(sim.invoke(ProcId(1), |_, _| ()), Err(SimError::Paused(ProcId(1))));
    sim.run_until(SEC + SEC / 2 - 1);
    assert!(sim.is_paused(ProcId(1)));
    sim.run_until(SEC + SEC / 2);
    assert!(!sim.is_paused(ProcId(1)));
}

/// `resume` disarms a mid-handler pause that has not been taken yet.
#[test]
fn resume_disarms_a_mid_handler_pause() {
    let mut sim = world(4, 2, NetworkConfig::default());
    sim.pause_mid_handler(ProcId(1), SEC).expect("arm");
    sim.resume(ProcId(1)).expect("disarm");
    ping(&mut sim, 0, 1, 1);
    sim.run_until(10 * MS);
    assert_eq!(received(&sim).len(), 2, "the pong was not held");
    assert_eq!(sim.stats().pauses, 0);
}

/// The minority policy never lets a majority of servers have corrupted disks at once.
#[test]
fn flip_policy_keeps_corruption_to_a_minority() {
    let mut sim = world(5, 6, NetworkConfig::default());
    let servers: Vec<ProcId> = (0..5).map(ProcId).collect();
    assert_eq!(sim.flip_random_bit(ProcId(0)), Err(SimError::DiskEmpty(ProcId(0))));
    for p in sim.procs() {
        sim.invoke(p, |peer, _| {
            peer.disk.append("data", &[0u8; 64]).expect("append");
            peer.disk.sync("data").expect("sync");
            peer.disk.sync_dir().expect("sync_dir");
        })
        .expect("invoke");
    }
    sim.set_flip_policy(Some(minority_flip_policy(servers)));
    let (file, bit) = sim.flip_random_bit(ProcId(0)).expect("first");
    assert_eq!(file, "data");
    assert!(bit < 64 * 8);
    sim.flip_random_bit(ProcId(1)).expect("second");
    sim.flip_random_bit(ProcId(1)).expect("an already corrupted disk may take more");
    assert_eq!(sim.flip_random_bit(ProcId(2)), Err(SimError::FlipRefused(ProcId(2))));
    sim.flip_random_bit(ProcId(5)).expect("not a server");
    sim.clear_corrupted(ProcId(0));
    sim.flip_random_bit(ProcId(2)).expect("after a repair");
    assert_eq!(sim.corrupted().len(), 3);
    assert_eq!(sim.stats().bit_flips, 5);
    let bytes = sim.disk(ProcId(2)).expect("disk").read("data").expect("read");
    assert_eq!(bytes.iter().map(|b| b.count_ones()).sum::<u32>(), 1, "one bit flipped");
}

/// Each incarnation gets its own seed, and the same world gives the same seeds.
#[test]
fn incarnations_get_their_own_seeds() {
    let seeds = |world_seed: u64| {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let log = Rc::clone(&seen);
        let factory = Box::new(move |_, b: palisade_sim::Boot| {
            log.borrow_mut().push((b.incarnation, b.seed));
            common::Peer { disk: b.disk, target: None, next: None, sent: 0 }
        });
        let mut sim = palisade_sim::Simulation::new(world_seed, NetworkConfig::default(), factory);
        sim.add_process();
        sim.crash(ProcId(0)).expect("crash");
        sim.restart(ProcId(0)).expect("restart");
        seen.take()
    };
    let a = seeds(7);
    assert_eq!(a.len(), 2);
    assert_eq!((a[0].0, a[1].0), (0, 1));
    assert_ne!(a[0].1, a[1].1);
    assert_eq!(a, seeds(7));
    assert_ne!(a, seeds(8));
}

/// A streaming sink sees every event as JSON-serializable data, and the hash does not depend
/// on the sink.
#[test]
fn streamed_trace_matches_the_hash_only_run() {
    let lines = Rc::new(RefCell::new(Vec::new()));
    let out = Rc::clone(&lines);
    let mut streamed = world(6, 3, NetworkConfig::flaky());
    streamed.set_trace_sink(TraceSink::Stream(Box::new(move |e| {
        out.borrow_mut().push(serde_json::to_string(e).expect("json"));
    })));
    let mut plain = world(6, 3, NetworkConfig::flaky());
    plain.set_trace_sink(TraceSink::HashOnly);
    for sim in [&mut streamed, &mut plain] {
        for i in 0..50 {
            ping(sim, i % 3, (i + 1) % 3, u64::from(i));
        }
        sim.run_until(SEC);
    }
    assert_eq!(streamed.trace_hash(), plain.trace_hash());
    let lines = lines.borrow();
    assert!(lines.len() > 100, "{} lines", lines.len());
    assert!(lines.iter().any(|l| l.contains("\"kind\":\"deliver\"")));
    let got = plain.observations().iter().filter(|o| matches!(o.obs, Obs::Got(_, Msg::Pong(_), _)));
    assert!(got.count() > 0);
}
