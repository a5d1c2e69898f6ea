//! Determinism: the same seed gives the same run, message for message.

use crate::harness::{Cluster, ms, secs};

fn run(seed: u64) -> Vec<String> {
    let mut c = Cluster::new(&[1, 2, 3, 4, 5], seed, |_| {});
    let leader = c.elect(secs(10));
    for i in 0..20u8 {
        c.propose(leader, &[i]);
        c.run_for(ms(10));
    }
    c.crash(leader);
    let next = c.elect(secs(10));
    c.propose(next, b"after failover");
    c.start(leader);
    c.run_for(secs(2));
    c.assert_safe();
    std::mem::take(&mut c.trace)
}

/// Same seed, same message sequence (timestamps, senders, receivers, contents).
#[test]
fn same_seed_same_message_sequence() {
    let first = run(7);
    assert!(first.len() > 100);
    assert_eq!(first, run(7));
    assert_ne!(first, run(8), "a different seed draws different timeouts");
}
