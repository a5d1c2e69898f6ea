//! Log replication: conflict resolution, the commit rule of figure 8, lossy links.

use palisade_raft::{AppendResult, Config, ElectionConfig, Message, Payload, TestingFault};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::harness::{Cluster, ms, secs};

/// §5.3: a deposed leader's uncommitted entries conflict with the new leader's log; when it
/// rejoins, they are replaced and every state machine applies the same commands.
#[test]
fn log_conflicts_are_resolved_in_favour_of_the_leader() {
    let mut c = Cluster::new(&[1, 2, 3], 51, |_| {});
    let old = c.elect(secs(10));
    let (index, _) = c.propose(old, b"committed");
    assert!(c.wait_applied(index, secs(2)));
    c.isolate(old);
    for i in 0..5 {
        c.propose(old, format!("lost {i}").as_bytes());
    }
    let ok = c.run_until(secs(10), |c| c.leader().is_some_and(|l| l != old));
    assert!(ok);
    let new = c.leader().expect("new leader");
    let mut last = 0;
    for i in 0..3 {
        last = c.propose(new, format!("kept {i}").as_bytes()).0;
    }
    assert!(c.run_until(secs(2), |c| c.slots[&new].app.applied_index >= last));
    let stale_last = c.node(old).status().last_index;
    assert!(stale_last >= index + 5, "the old leader holds its uncommitted entries");
    c.heal();
    assert!(c.wait_applied(last, secs(10)));
    let expected = c.slots[&new].app.commands.clone();
    for id in [1, 2, 3] {
        assert_eq!(c.slots[&id].app.commands, expected, "node {id} applied the leader's log");
        assert!(!expected.iter().any(|cmd| cmd.starts_with(b"lost")));
    }
    c.assert_safe();
}

/// Replication converges over links that drop 20% of all messages and reorder the rest.
#[test]
fn replication_converges_over_lossy_reordering_links() {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], 61, |cfg| {
        cfg.entries_per_message_max = 4;
        cfg.inflight_messages_max = 3;
    });
    c.latency_min = ms(1);
    c.latency_max = ms(40);
    let mut rng = ChaCha8Rng::seed_from_u64(61);
    c.filter = Some(Box::new(move |_, _, _| rng.random_bool(0.8)));
    let mut proposed = 0;
    for i in 0..200 {
        if c.leader().is_none() {
            c.elect(secs(30));
        }
        let leader = c.leader().expect("leader");
        if let Ok((index, _)) = c.with_node(leader, |n, now| n.propose(now, vec![i as u8; 16])) {
            proposed = proposed.max(index);
        }
        c.run_for(ms(20));
    }
    c.filter = None;
    let leader = c.elect(secs(30));
    let (last, _) = c.propose(leader, b"final");
    assert!(last > proposed);
    assert!(c.wait_applied(last, secs(30)), "every node applies everything:\n{}", c.dump());
    let expected = c.slots[&leader].app.commands.clone();
    for s in c.slots.values() {
        assert_eq!(s.app.commands, expected);
    }
    c.assert_safe();
}

fn figure8_config(cfg: &mut Config, fault: Option<TestingFault>) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.entries_per_message_max = 1;
    cfg.election = ElectionConfig::RandomizedTimeout { min: secs(60), max: secs(120) };
    cfg.testing_fault = fault;
}

/// Campaigns at `id` until it leads (a campaign may first only teach it the current term).
fn campaign_until_leader(c: &mut Cluster, id: u64) {
    for _ in 0..4 {
        c.with_node(id, |n, now| n.campaign(now));
        c.run_for(ms(100));
        if c.leader() == Some(id) {
            return;
        }
    }
    panic!("node {id} did not become leader");
}

/// Raft figure 8 (§5.4.2), with 5 nodes S1..S5. Returns the cluster at the end and whether
/// S1 applied its earlier-term entry at index 2 before crashing.
fn figure8(fault: Option<TestingFault>) -> (Cluster, bool) {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], 8, |cfg| figure8_config(cfg, fault));
    // (a) S1 leads and replicates entry 2 (term 1) to S2 only.
    campaign_until_leader(&mut c, 1);
    assert!(c.wait_applied(1, secs(1)));
    for to in [3, 4, 5] {
        c.block(1, to);
    }
    c.propose(1, b"X");
    c.run_for(ms(100));
    assert_eq!(c.node(2).status().last_index, 2);
    // (b) S1 crashes; S5 wins with S3, S4 and appends its no-op at index 2 (term 2), which
    // it never replicates, then crashes.
    c.crash(1);
    c.heal();
    c.filter =
        Some(Box::new(|from, _, msg| !(from == 5 && matches!(msg, Message::AppendEntries(_)))));
    campaign_until_leader(&mut c, 5);
    c.crash(5);
    c.filter = None;
    // (c) S1 restarts and wins a later term; it gets entry 2 onto S3 (a majority: S1 S2 S3),
    // but S3 gets nothing after it and S4 nothing at all.
    c.start(1);
    let mut s3_has_2 = false;
    c.filter = Some(Box::new(move |from, to, msg| match (from, to, msg) {
        (3, 1, Message::AppendEntriesResponse(r)) => {
            if matches!(r.result, AppendResult::Success { match_index } if match_index >= 2) {
                s3_has_2 = true;
            }
            true
        }
        (1, 3, Message::AppendEntries(_)) => !s3_has_2,
        (1, 4, Message::AppendEntries(_)) => false,
        _ => true,
    }));
    campaign_until_leader(&mut c, 1);
    c.run_for(ms(300));
    let s3 = c.node(3).status();
    assert_eq!((s3.last_index, s3.last_term), (2, 1), "S3 stores S1's entry 2");
    let s1_applied_x = c.slots[&1].app.applied_index >= 2;
    // (d) S1 crashes; S5 restarts and wins with S3 and S4 (S2, which knows more, is cut off),
    // and overwrites index 2 with its own entry of term 2.
    c.crash(1);
    c.filter = None;
    c.isolate(2);
    c.start(5);
    campaign_until_leader(&mut c, 5);
    let (last, _) = c.propose(5, b"after");
    assert!(
        c.run_until(secs(2), |c| [3, 4, 5].iter().all(|&n| c.slots[&n].app.applied_index >= last))
    );
    (c, s1_applied_x)
}

/// §5.4.2, figure 8: a leader must not commit an entry of an earlier term by counting
/// replicas. S1 does not commit entry 2 even when S1, S2, S3 store it, and when S5 later
/// overwrites it no committed entry is lost.
#[test]
fn commit_rule_for_earlier_terms_figure_8() {
    let (c, s1_applied_x) = figure8(None);
    assert!(!s1_applied_x, "S1 did not commit its earlier-term entry");
    c.assert_safe();
    let index2 = c.applied.get(&2).expect("index 2 applied");
    assert_eq!(index2, &(2, Payload::Noop), "S5's entry won index 2");
}

/// The deliberately broken variant: committing by count loses a committed entry, and the
/// state-machine-safety checker sees two different entries applied at index 2.
#[test]
fn testing_fault_commit_earlier_term_by_count_loses_a_committed_entry() {
    let (c, s1_applied_x) = figure8(Some(TestingFault::CommitEarlierTermByCount));
    assert!(s1_applied_x, "the faulty S1 committed and applied entry 2");
    assert!(
        c.violations.iter().any(|v| v.starts_with("state machine safety")),
        "violation detected: {:?}",
        c.violations
    );
}
