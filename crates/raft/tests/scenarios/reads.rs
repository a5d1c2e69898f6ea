//! ReadIndex (thesis §6.4).

use palisade_raft::{ProposeError, ReadState, Role};

use crate::harness::{Cluster, ms, secs};

/// Thesis §6.4: a new leader refuses ReadIndex until it has committed an entry of its term
/// (its no-op); followers refuse with the leader's id so the caller can forward.
#[test]
fn read_index_is_refused_before_the_first_commit_of_the_term() {
    let mut c = Cluster::new(&[1, 2, 3], 71, |_| {});
    assert!(c.run_until(secs(10), |c| c.leader().is_some()));
    let leader = c.leader().expect("leader");
    let refused = c.with_node(leader, |n, now| n.read_index(now, 1));
    assert_eq!(refused, Err(ProposeError::NotCommittedInTerm));
    let leader = c.elect(secs(5));
    assert!(c.wait_applied(1, secs(1)));
    let follower = if leader == 1 { 2 } else { 1 };
    let refused = c.with_node(follower, |n, now| n.read_index(now, 2));
    assert_eq!(refused, Err(ProposeError::NotLeader { leader: Some(leader) }));
    assert_eq!(c.with_node(leader, |n, now| n.read_index(now, 3)), Ok(()));
    c.run_for(ms(50));
    let index = c.node(leader).status().commit;
    assert_eq!(c.slots[&leader].read_states, vec![ReadState { ctx: 3, index }]);
}

/// Thesis §6.4: the read is answered only after a heartbeat round started after it was
/// received is acknowledged by a majority; if leadership is lost first, it is dropped.
#[test]
fn read_index_waits_for_a_heartbeat_round() {
    let mut c = Cluster::new(&[1, 2, 3], 72, |_| {});
    let leader = c.elect(secs(10));
    let (index, _) = c.propose(leader, b"w");
    assert!(c.wait_applied(index, secs(1)));
    for peer in [1, 2, 3].into_iter().filter(|&p| p != leader) {
        c.block(peer, leader);
    }
    assert_eq!(c.with_node(leader, |n, now| n.read_index(now, 7)), Ok(()));
    c.run_for(ms(500));
    assert!(c.slots[&leader].read_states.is_empty(), "no answer without a majority round");
    assert_eq!(c.node(leader).status().reads_pending, 1);
    c.heal();
    c.run_for(ms(150));
    assert_eq!(c.slots[&leader].read_states, vec![ReadState { ctx: 7, index }]);

    for peer in [1, 2, 3].into_iter().filter(|&p| p != leader) {
        c.block(peer, leader);
    }
    assert_eq!(c.with_node(leader, |n, now| n.read_index(now, 8)), Ok(()));
    assert!(c.run_until(secs(5), |c| c.node(leader).role() != Role::Leader));
    assert_eq!(c.slots[&leader].reads_dropped, vec![8], "a deposed leader drops its reads");
    assert_eq!(c.slots[&leader].read_states.len(), 1);
    c.assert_safe();
}
