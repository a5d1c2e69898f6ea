//! Leadership transfer (thesis §3.10).

use palisade_raft::{ProposeError, Role};

use crate::harness::{Cluster, ms, secs};

/// Thesis §3.10: the leader catches a lagging target up, stops taking proposals meanwhile,
/// sends TimeoutNow, and the target wins the next term at once (well before any election
/// timeout, and despite the other voters having heard from the old leader).
#[test]
fn leadership_transfer_to_a_lagging_follower() {
    let mut c = Cluster::new(&[1, 2, 3], 81, |_| {});
    let old = c.elect(secs(10));
    let term = c.node(old).term();
    let target = if old == 3 { 2 } else { 3 };
    c.isolate(target);
    let mut last = 0;
    for i in 0..20 {
        last = c.propose(old, &[i]).0;
    }
    c.run_for(ms(100));
    c.heal();
    assert!(c.node(target).status().last_index < last, "the target lags");
    assert_eq!(c.with_node(old, |n, now| n.transfer_leadership(now, target)), Ok(()));
    let refused = c.with_node(old, |n, now| n.propose(now, b"no".to_vec()));
    assert_eq!(refused, Err(ProposeError::TransferInProgress { target }));
    let start = c.now_nanos;
    assert!(c.run_until(secs(1), |c| c.stable_leader() == Some(target)));
    assert!(c.now_nanos - start < 200_000_000, "transfer takes round trips, not timeouts");
    assert_eq!(c.node(target).term(), term + 1);
    assert_eq!(c.node(old).role(), Role::Follower);
    assert!(c.wait_applied(last, secs(1)));
    c.assert_safe();
}

/// Thesis §3.10: a transfer that cannot finish is abandoned after an election timeout and
/// the leader accepts proposals again.
#[test]
fn leadership_transfer_to_a_dead_node_is_abandoned() {
    let mut c = Cluster::new(&[1, 2, 3], 82, |_| {});
    let leader = c.elect(secs(10));
    let target = if leader == 3 { 2 } else { 3 };
    c.crash(target);
    assert_eq!(c.with_node(leader, |n, now| n.transfer_leadership(now, target)), Ok(()));
    assert_eq!(c.node(leader).transfer_target(), Some(target));
    let other = c.with_node(leader, |n, now| n.transfer_leadership(now, 99));
    assert_eq!(other, Err(ProposeError::InvalidTransferTarget { target: 99 }));
    c.run_for(ms(2100));
    assert_eq!(c.node(leader).role(), Role::Leader);
    assert_eq!(c.node(leader).transfer_target(), None);
    c.propose(leader, b"accepted again");
    c.assert_safe();
}
