//! Crash recovery of Raft servers on the simulated disk, scripted (design, system model:
//! "a restarted node keeps exactly what it had fsynced ... the last write before a crash may be
//! torn"; "a node whose disk holds corrupted synced data refuses to start rather than guess").
//!
//! In a 3-node cluster with a proposing client: one server crashes in the middle of an fsync
//! with only part of the write on the disk (a torn tail), and restarts: the WAL cuts the torn
//! record and the server rejoins. Another server's disk gets a bit flipped in synced data and
//! the server crashes: it refuses to start and counts as stopped. The two others still elect
//! a leader and commit, and every checker passes.

use palisade_raft::Role;
use palisade_sim::raft::{
    ClientConfig, FaultSelection, RaftCheckers, RaftClient, RaftObs, RaftProc, RaftServer,
    RaftSimOptions, SeedOptions,
};
use palisade_sim::{NetworkConfig, ProcId, Simulation};
use palisade_storage::{Disk, parse_segment_name, segment_name};

const SEC: u64 = 1_000_000_000;

struct Cluster {
    sim: Simulation<RaftProc>,
    checkers: RaftCheckers,
}

impl Cluster {
    fn new(seed: u64) -> Cluster {
        let mut pinned = RaftSimOptions::new(seed);
        pinned.nodes = Some(3);
        pinned.faults = FaultSelection::None;
        let o = SeedOptions::derive(&pinned);
        let mut server = o.server_config();
        server.compact_every = 1_000_000;
        let client = ClientConfig { servers: 3, ..o.client };
        let factory = Box::new(move |id: ProcId, boot| {
            if id.0 < 3 {
                RaftProc::Server(Box::new(RaftServer::boot(id, boot, &server)))
            } else {
                RaftProc::Client(RaftClient::new(client))
            }
        });
        let mut sim = Simulation::new(seed, NetworkConfig::default(), factory);
        for _ in 0..4 {
            sim.add_process();
        }
        Cluster { sim, checkers: RaftCheckers::new() }
    }

    fn pump(&mut self) -> Vec<RaftObs> {
        let observed = self.sim.drain_observations();
        for o in &observed {
            self.checkers.observe(o);
        }
        observed.into_iter().map(|o| o.obs).collect()
    }

    fn run_for(&mut self, nanos: u64) -> Vec<RaftObs> {
        self.sim.run_for(nanos);
        self.pump()
    }

    fn server(&self, p: ProcId) -> &RaftServer {
        self.sim.process(p).and_then(RaftProc::server).expect("a server process")
    }

    fn leader(&self) -> Option<ProcId> {
        (0..3)
            .map(ProcId)
            .find(|&p| self.server(p).node().is_some_and(|n| n.role() == Role::Leader))
    }

    fn acked(&self) -> u64 {
        self.sim.process(ProcId(3)).and_then(RaftProc::client).map_or(0, RaftClient::acked)
    }

    /// Steps until `p` has an fsync of entries in flight.
    fn until_entries_in_flight(&mut self, p: ProcId) {
        for _ in 0..1_000_000 {
            if self.server(p).fsync_in_flight().is_some_and(|(entries, _)| entries) {
                return;
            }
            assert!(self.sim.step(), "the simulation ran dry");
        }
        panic!("{p} never had entries in flight");
    }
}

fn segments(disk: &impl Disk) -> Vec<String> {
    let names = disk.list().expect("list");
    let mut seqs: Vec<u64> = names.iter().filter_map(|n| parse_segment_name(n)).collect();
    seqs.sort_unstable();
    seqs.into_iter().map(segment_name).collect()
}

fn last_segment(disk: &impl Disk) -> String {
    segments(disk).pop().expect("a segment")
}

#[test]
fn torn_tail_is_cut_and_corrupt_disk_refuses_to_start() {
    let mut c = Cluster::new(7);
    c.run_for(5 * SEC);
    let leader = c.leader().expect("a leader after 5 s");
    let followers: Vec<ProcId> = (0..3).map(ProcId).filter(|&p| p != leader).collect();
    let (torn, corrupt) = (followers[0], followers[1]);

    // A power cut in the middle of an fsync that keeps half of the unsynced bytes.
    c.until_entries_in_flight(torn);
    let disk = c.sim.disk(torn).expect("a disk").clone();
    let unsynced = disk.unsynced_bytes();
    assert!(unsynced > 1, "an append is waiting for its fsync");
    disk.crash_keeping(&last_segment(&disk), unsynced / 2);
    c.sim.crash(torn).expect("crash");
    c.sim.restart(torn).expect("restart");
    let started = c.pump();
    assert!(
        started.iter().any(|o| matches!(o, RaftObs::Started { torn_bytes, .. } if *torn_bytes > 0)),
        "the restart cut a torn tail: {started:?}"
    );

    // Bit rot in synced data, then a crash: the server refuses to start.
    c.run_for(2 * SEC);
    let disk = c.sim.disk(corrupt).expect("a disk").clone();
    let segment = segments(&disk).swap_remove(0);
    let len = disk.len(&segment).expect("len");
    assert!(len > 64, "the segment holds records");
    disk.flip_bit(&segment, len * 8 / 2).expect("flip");
    c.sim.crash(corrupt).expect("crash");
    c.sim.restart(corrupt).expect("restart");
    let refused = c.pump();
    assert!(
        refused
            .iter()
            .any(|o| matches!(o, RaftObs::Refused { reason } if reason.contains("corrupt"))),
        "the corrupt server refused to start: {refused:?}"
    );
    assert!(c.server(corrupt).refusal().is_some());
    assert!(c.server(corrupt).node().is_none(), "a refused server runs no Raft");

    // The two others are a majority: a leader, and the client's commands keep committing.
    let before = c.acked();
    c.run_for(10 * SEC);
    let leader = c.leader().expect("a leader among the two live servers");
    assert_ne!(leader, corrupt);
    assert!(c.acked() > before + 100, "commands commit without the refused server");
    let applied = |p| c.server(p).app().expect("running").applied;
    assert!(applied(torn) + 50 > applied(leader), "the torn server caught up");
    assert!(c.checkers.passed(), "violations: {:?}", c.checkers.violations());
    assert!(c.checkers.seen().torn_tails >= 1);
    assert_eq!(c.checkers.seen().refusals, 1);
}
