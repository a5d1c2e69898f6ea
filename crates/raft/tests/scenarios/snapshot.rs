//! Log compaction and InstallSnapshot (§7).

use palisade_raft::{Membership, Payload};

use crate::harness::{Cluster, secs};

/// Compacts `id`'s log at its applied index, as an application would.
fn compact(c: &mut Cluster, id: u64) -> u64 {
    let slot = c.slots.get_mut(&id).expect("known");
    let (index, data) = (slot.app.applied_index, slot.app.encode());
    let node = slot.node.as_mut().expect("up");
    node.compact(index, data).expect("compaction accepted");
    slot.disk.snapshot = node.snapshot().cloned();
    slot.disk.entries.retain(|e| e.index > index);
    index
}

/// §7: a follower that was down while the leader compacted its log receives the snapshot in
/// chunks, restores its state machine from it, and then follows the log again.
#[test]
fn lagging_follower_catches_up_through_install_snapshot() {
    let mut c = Cluster::new(&[1, 2, 3], 91, |cfg| cfg.snapshot_chunk_bytes = 64);
    let leader = c.elect(secs(10));
    let lagging = if leader == 3 { 2 } else { 3 };
    let other = [1, 2, 3].into_iter().find(|&n| n != leader && n != lagging).expect("3 nodes");
    c.crash(lagging);
    let mut last = 0;
    for i in 0..30u8 {
        last = c.propose(leader, &[i; 10]).0;
    }
    assert!(c.wait_applied(last, secs(2)));
    let snapshot_index = compact(&mut c, leader);
    compact(&mut c, other);
    assert_eq!(c.node(leader).status().snapshot_index, snapshot_index);
    c.start(lagging);
    let (after, _) = c.propose(leader, b"after the snapshot");
    assert!(c.wait_applied(after, secs(5)));
    let lag = &c.slots[&lagging];
    assert_eq!(lag.node().status().snapshot_index, snapshot_index, "installed the snapshot");
    assert_eq!(lag.disk.snapshot.as_ref().map(|s| s.meta.index), Some(snapshot_index));
    assert_eq!(lag.app.commands, c.slots[&leader].app.commands);
    assert_eq!(lag.node().status().membership, Membership::new([1, 2, 3]));
    // The restored follower restarts from its snapshot and log.
    c.crash(lagging);
    c.start(lagging);
    assert!(c.wait_applied(after, secs(5)));
    assert_eq!(
        c.slots[&lagging].app.commands.last().map(Vec::as_slice),
        Some(&b"after the snapshot"[..])
    );
    assert!(c.applied.values().any(|(_, p)| matches!(p, Payload::Command(_))));
    c.assert_safe();
}
