//! Single-server membership changes (thesis §4.1).

use palisade_raft::{Config, Membership, MembershipChange, ProposeError, Role};

use crate::harness::{Cluster, secs};

fn change(c: &mut Cluster, leader: u64, ch: MembershipChange) -> Result<u64, ProposeError> {
    c.with_node(leader, |n, now| n.propose_membership(now, ch)).map(|(index, _)| index)
}

/// Thesis §4.1: a new node joins with an empty membership (it never campaigns on its own),
/// is added as a voter, catches up; then a follower is removed, one change at a time, and
/// the removed node cannot disrupt the cluster.
#[test]
fn add_then_remove_a_voter() {
    let mut c = Cluster::new(&[1, 2, 3], 101, |_| {});
    let leader = c.elect(secs(10));
    assert!(c.wait_applied(1, secs(1)));
    c.add_slot(4, Config::default_for(4), Membership::default());
    c.run_for(secs(3));
    assert_eq!(c.node(4).role(), Role::Follower, "a joining node does not campaign");
    assert_eq!(c.node(4).term(), 0);
    let index = change(&mut c, leader, MembershipChange::AddVoter(4)).expect("accepted");
    let second = change(&mut c, leader, MembershipChange::RemoveVoter(2));
    assert_eq!(second, Err(ProposeError::MembershipChangePending { index }));
    assert!(c.wait_applied(index, secs(2)));
    let four = Membership::new([1, 2, 3, 4]);
    for id in [1, 2, 3, 4] {
        assert_eq!(c.node(id).status().membership, four, "node {id}");
    }
    let (last, _) = c.propose(leader, b"with four");
    assert!(c.wait_applied(last, secs(2)));

    let removed = [1, 2, 3].into_iter().find(|&n| n != leader).expect("a follower");
    let index = change(&mut c, leader, MembershipChange::RemoveVoter(removed)).expect("ok");
    assert!(c.run_until(secs(2), |c| c.node(leader).status().commit >= index));
    let term = c.node(leader).term();
    c.run_for(secs(10));
    assert_eq!(c.leader(), Some(leader), "the removed node does not disrupt the cluster");
    assert_eq!(c.node(leader).term(), term);
    assert!(!c.node(leader).status().membership.contains(removed));
    c.assert_safe();
}

/// Thesis §4.2.2: a leader that removes itself keeps leading until the removal commits, then
/// steps down; the remaining voters elect a leader and the removed node never campaigns.
#[test]
fn a_leader_removes_itself_and_steps_down() {
    let mut c = Cluster::new(&[1, 2, 3], 102, |_| {});
    let leader = c.elect(secs(10));
    assert!(c.wait_applied(1, secs(1)));
    let index = change(&mut c, leader, MembershipChange::RemoveVoter(leader)).expect("ok");
    assert!(c.run_until(secs(2), |c| c.node(leader).role() != Role::Leader));
    assert!(c.node(leader).status().commit >= index, "it stepped down after the commit");
    let next = c.elect(secs(10));
    assert_ne!(next, leader);
    c.run_for(secs(10));
    assert_ne!(c.node(leader).role(), Role::Leader);
    assert_ne!(c.node(leader).role(), Role::Candidate, "a non-voter never campaigns");
    let (last, _) = c.propose(next, b"two voters");
    let live: Vec<u64> = [1, 2, 3].into_iter().filter(|&n| n != leader).collect();
    assert!(c.run_until(secs(2), |c| live.iter().all(|&n| c.slots[&n].app.applied_index >= last)));
    c.assert_safe();
}
