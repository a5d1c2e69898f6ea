//! Randomized runs: every seed derives its own options (cluster size, loss, latency, PreVote,
//! election kind) and faults (partitions, crashes with restarts, crashes in the middle of a
//! `Ready`, compaction, leadership transfers) during a safety phase; then a liveness phase on
//! a healed network must elect a leader and bring every node to the same state. Reads are
//! checked for linearizability by the harness. A failure names the seed; rerun it alone with
//! `RAFT_SWARM_FROM=<seed> RAFT_SWARM_SEEDS=1` (add `RAFT_SWARM_VERBOSE=1` for a dump per
//! round).

use palisade_raft::ElectionConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::harness::{Cluster, ReadyCrash, ms, secs};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn compact(c: &mut Cluster, id: u64) {
    let slot = c.slots.get_mut(&id).expect("known");
    let Some(node) = slot.node.as_mut() else { return };
    let (index, data) = (slot.app.applied_index, slot.app.encode());
    if node.compact(index, data).is_ok() {
        slot.disk.snapshot = node.snapshot().cloned();
        slot.disk.entries.retain(|e| e.index > index);
    }
}

fn cluster(seed: u64, rng: &mut ChaCha8Rng) -> Cluster {
    let size = [3, 5][rng.random_range(0..2)];
    let ids: Vec<u64> = (1..=size).collect();
    let loss = rng.random_range(0.0..0.2);
    let pre_vote = rng.random_bool(0.7);
    let phi = rng.random_bool(0.3);
    eprintln!("swarm seed {seed}: {size} nodes, loss {loss:.2}, pre_vote {pre_vote}, phi {phi}");
    let mut c = Cluster::new(&ids, seed, |cfg| {
        cfg.pre_vote = pre_vote;
        if phi {
            cfg.election = ElectionConfig::phi_default(cfg.heartbeat_interval);
        }
        cfg.entries_per_message_max = 8;
        cfg.snapshot_chunk_bytes = 128;
    });
    c.latency_max = ms(rng.random_range(5..60));
    let mut net_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfeed);
    c.filter = Some(Box::new(move |_, _, _| !net_rng.random_bool(loss)));
    c
}

/// One random fault (or none) against a random node.
fn inject_fault(c: &mut Cluster, rng: &mut ChaCha8Rng, ids: &[u64]) {
    let victim = ids[rng.random_range(0..ids.len())];
    match rng.random_range(0..10) {
        0 => c.isolate(victim),
        1 => c.heal(),
        2 if c.slots[&victim].node.is_some() => c.crash(victim),
        3 => compact(c, victim),
        4 => {
            if let Some(leader) = c.leader() {
                let _ = c.with_node(leader, |n, now| n.transfer_leadership(now, victim));
            }
        }
        5 => {
            let crash = if rng.random_bool(0.5) {
                ReadyCrash::BeforePersist
            } else {
                ReadyCrash::AfterEntries
            };
            c.crash_in_ready.insert(victim, crash);
        }
        _ => {}
    }
    let down: Vec<u64> = ids.iter().copied().filter(|id| c.slots[id].node.is_none()).collect();
    if down.len() * 2 >= ids.len() || rng.random_bool(0.3) {
        for id in down {
            c.start(id);
        }
    }
}

/// Faults, proposals and reads; safety is checked after every round.
fn safety_phase(c: &mut Cluster, rng: &mut ChaCha8Rng, ids: &[u64]) {
    for round in 0..60u32 {
        inject_fault(c, rng, ids);
        if let Some(leader) = c.leader() {
            for k in 0..rng.random_range(0..4u32) {
                let cmd = (round * 4 + k).to_le_bytes().to_vec();
                if c.slots[&leader].node.is_some() {
                    let _ = c.with_node(leader, |n, now| n.propose(now, cmd));
                }
            }
            if c.slots[&leader].node.is_some() {
                let _ = c.read(leader, u64::from(round));
            }
        }
        c.run_for(ms(rng.random_range(50..500)));
        if std::env::var("RAFT_SWARM_VERBOSE").is_ok() {
            eprintln!("round {round}:\n{}", c.dump());
        }
        c.assert_safe();
    }
}

/// Heals everything; a proposal must then be applied by every node. An accepted proposal may
/// still be lost if its leader is deposed before it commits (a follower that missed the
/// healed leader's heartbeats times out), so it is retried.
fn liveness_phase(c: &mut Cluster, seed: u64, ids: &[u64]) {
    c.heal();
    c.filter = None;
    c.crash_in_ready.clear();
    for &id in ids {
        if c.slots[&id].node.is_none() {
            c.start(id);
        }
    }
    let mut live = None;
    for _ in 0..20 {
        let leader = c.elect(secs(30));
        let proposal = c.with_node(leader, |n, now| n.propose(now, b"liveness".to_vec()));
        let Ok((index, term)) = proposal else {
            c.run_for(ms(100));
            continue;
        };
        let ours = |c: &Cluster| c.applied.get(&index).is_some_and(|(t, _)| *t == term);
        if c.wait_applied(index, secs(10)) && ours(c) {
            live = Some((leader, index));
            break;
        }
    }
    let (leader, last) =
        live.unwrap_or_else(|| panic!("seed {seed}: nothing committed\n{}", c.dump()));
    let expected = c.slots[&leader].app.commands.clone();
    let chunks = c.trace.iter().filter(|t| t.contains("InstallSnapshot(")).count();
    let reads: usize = c.slots.values().map(|s| s.read_states.len()).sum();
    eprintln!(
        "  applied {last}, leader terms {}, snapshot chunks {chunks}, reads {reads}",
        c.leaders.len()
    );
    for id in ids {
        assert_eq!(c.slots[id].app.commands, expected, "seed {seed}: node {id} diverged");
    }
    c.assert_safe();
}

/// Safety under random faults and liveness once they stop, over a fixed set of seeds (set
/// `RAFT_SWARM_SEEDS=N` to run more).
#[test]
fn random_faults_keep_safety_and_heal_to_liveness() {
    let from = env("RAFT_SWARM_FROM", 0);
    for seed in from..from + env("RAFT_SWARM_SEEDS", 12) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut c = cluster(seed, &mut rng);
        let ids: Vec<u64> = c.slots.keys().copied().collect();
        safety_phase(&mut c, &mut rng, &ids);
        liveness_phase(&mut c, seed, &ids);
    }
}
