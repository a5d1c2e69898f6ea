//! Leader election, PreVote, CheckQuorum, and the phi accrual election.

use palisade_raft::{ElectionConfig, Role};

use crate::harness::{Cluster, ms, secs};

/// §5.2: a cluster elects exactly one leader that everyone follows.
#[test]
fn elects_one_leader() {
    for seed in 0..5 {
        let mut c = Cluster::new(&[1, 2, 3], seed, |_| {});
        let leader = c.elect(secs(10));
        assert!(c.node(leader).term() >= 1);
        c.run_for(secs(5));
        assert_eq!(c.stable_leader(), Some(leader), "seed {seed}: leadership is stable");
        c.assert_safe();
    }
}

/// §5.2: when the leader is cut off, the rest elect a new leader in a newer term; once the
/// partition heals the old leader follows it.
#[test]
fn reelects_after_leader_isolation() {
    let mut c = Cluster::new(&[1, 2, 3], 11, |_| {});
    let old = c.elect(secs(10));
    let old_term = c.node(old).term();
    c.isolate(old);
    let ok = c.run_until(secs(10), |c| {
        c.leader().is_some_and(|l| l != old && c.node(l).term() > old_term)
    });
    assert!(ok, "a new leader is elected without the isolated one");
    c.heal();
    let new = c.elect(secs(10));
    assert_ne!(new, old);
    assert_eq!(c.node(old).role(), Role::Follower);
    assert_eq!(c.node(old).leader(), Some(new));
    c.assert_safe();
}

/// Thesis §9.6 (PreVote): a follower cut off for many election timeouts does not raise its
/// term, so when it rejoins the leader keeps its leadership and its term.
#[test]
fn prevote_prevents_term_inflation_on_rejoin() {
    let mut c = Cluster::new(&[1, 2, 3], 21, |_| {});
    let leader = c.elect(secs(10));
    let term = c.node(leader).term();
    let follower = if leader == 1 { 2 } else { 1 };
    c.isolate(follower);
    c.run_for(secs(20));
    assert_eq!(c.node(follower).term(), term, "PreVote never raises the term");
    c.heal();
    c.run_for(secs(5));
    assert_eq!(c.stable_leader(), Some(leader));
    assert_eq!(c.node(leader).term(), term, "the rejoining node did not disrupt the leader");
    c.assert_safe();
}

/// The same scenario without PreVote: the isolated follower inflates its term and forces an
/// election when it rejoins (this is what PreVote prevents).
#[test]
fn without_prevote_a_rejoining_node_disrupts_the_leader() {
    let mut c = Cluster::new(&[1, 2, 3], 21, |cfg| cfg.pre_vote = false);
    let leader = c.elect(secs(10));
    let term = c.node(leader).term();
    let follower = if leader == 1 { 2 } else { 1 };
    c.isolate(follower);
    c.run_for(secs(20));
    assert!(c.node(follower).term() > term + 3, "term inflates without PreVote");
    c.heal();
    c.elect(secs(20));
    let new_term = c.node(c.leader().expect("leader")).term();
    assert!(new_term > term, "the rejoining node forced a new term");
    c.assert_safe();
}

/// Thesis §6.2 (CheckQuorum): a leader that cannot hear from a majority steps down within
/// an election timeout (max), so it stops serving as leader.
#[test]
fn check_quorum_steps_down_a_leader_isolated_from_the_majority() {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], 31, |_| {});
    let leader = c.elect(secs(10));
    c.isolate(leader);
    let stepped_down = c.run_until(secs(5), |c| c.node(leader).role() != Role::Leader);
    assert!(stepped_down, "isolated leader steps down within 2 × election timeout max");
    c.assert_safe();

    let mut c = Cluster::new(&[1, 2, 3, 4, 5], 31, |cfg| cfg.check_quorum = false);
    let leader = c.elect(secs(10));
    c.isolate(leader);
    c.run_for(secs(5));
    assert_eq!(c.node(leader).role(), Role::Leader, "without CheckQuorum it keeps leading");
}

/// Thesis §4.2.3 (leader stickiness): a node that heard from the leader recently refuses
/// votes, so a partitioned node cannot win an election while a leader is healthy — even
/// without PreVote, with CheckQuorum on.
#[test]
fn stickiness_refuses_votes_while_the_leader_is_heard() {
    let mut c = Cluster::new(&[1, 2, 3], 41, |cfg| cfg.pre_vote = false);
    let leader = c.elect(secs(10));
    let term = c.node(leader).term();
    let follower = if leader == 3 { 2 } else { 3 };
    // The follower campaigns although the leader is healthy: its requests are ignored.
    assert!(c.with_node(follower, |n, now| n.campaign(now)));
    c.block(leader, follower);
    c.run_for(ms(200));
    let other = [1, 2, 3].into_iter().find(|&n| n != leader && n != follower).expect("3 nodes");
    assert_eq!(c.node(other).term(), term, "the other follower ignored the higher term");
    assert_eq!(c.node(leader).role(), Role::Leader);
    c.assert_safe();
}

fn phi_config(cfg: &mut palisade_raft::Config) {
    cfg.election = ElectionConfig::phi_default(cfg.heartbeat_interval);
}

/// The classic randomized timeout of 1–2 s (no longer the default: set it explicitly).
fn fixed_config(cfg: &mut palisade_raft::Config) {
    cfg.election = ElectionConfig::RandomizedTimeout { min: secs(1), max: secs(2) };
}

/// Failover time after a leader crash, in virtual milliseconds, and the number of terms
/// started during 20 s of healthy operation before it (spurious elections).
fn failover(seed: u64, phi: bool) -> (u64, u64) {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], seed, |cfg| {
        if phi {
            phi_config(cfg);
        } else {
            fixed_config(cfg);
        }
    });
    let leader = c.elect(secs(10));
    let term = c.node(leader).term();
    c.run_for(secs(20));
    let spurious = c.node(leader).term() - term;
    let crash_at = c.now_nanos;
    c.crash(leader);
    let ok = c.run_until(secs(10), |c| c.stable_leader().is_some_and(|l| l != leader));
    assert!(ok, "seed {seed}: a new leader after the crash");
    c.assert_safe();
    ((c.now_nanos - crash_at) / 1_000_000, spurious)
}

/// The phi accrual election elects a new leader after a leader crash, without spurious
/// elections while the leader is healthy, before the fallback timeout (`timeout_max`).
#[test]
fn phi_accrual_election_replaces_a_crashed_leader() {
    for seed in 0..4 {
        let (failover_ms, spurious) = failover(seed, true);
        assert_eq!(spurious, 0, "seed {seed}: no election while the leader is healthy");
        assert!(failover_ms < 2000, "seed {seed}: phi failover took {failover_ms} ms");
    }
}

/// On a quiet network, phi notices a crashed leader sooner than the classic 1–2 s
/// randomized timeout (which cannot fail over in under 1 s). Printed for the report.
#[test]
fn phi_fails_over_faster_than_the_randomized_timeout_on_a_quiet_network() {
    let (mut phi_total, mut classic_total) = (0, 0);
    for seed in 100..106 {
        let (phi_ms, phi_spurious) = failover(seed, true);
        let (classic_ms, classic_spurious) = failover(seed, false);
        assert_eq!((phi_spurious, classic_spurious), (0, 0));
        assert!(classic_ms >= 1000, "the randomized timeout waits at least its minimum");
        println!("seed {seed}: failover phi {phi_ms} ms, randomized {classic_ms} ms");
        phi_total += phi_ms;
        classic_total += classic_ms;
    }
    assert!(phi_total < classic_total, "phi {phi_total} ms vs randomized {classic_total} ms");
}
