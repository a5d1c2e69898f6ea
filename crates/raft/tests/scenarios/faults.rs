//! The deliberately broken variants of `TestingFault` are observably broken (the figure 8
//! variant is in `replication`).

use palisade_raft::TestingFault;

use crate::harness::{Cluster, secs};

/// §5.2 (election safety): with `DoubleCountOwnVote`, a candidate in a 3-node cluster wins
/// with its own vote alone, so nodes cut off from each other all lead the same term; the
/// checker sees two leaders in one term. The correct variant elects nobody.
#[test]
fn testing_fault_double_count_own_vote_elects_two_leaders() {
    let run = |fault| {
        let mut c = Cluster::new(&[1, 2, 3], 131, |cfg| cfg.testing_fault = fault);
        for id in [1, 2, 3] {
            c.isolate(id);
        }
        c.run_for(secs(5));
        c
    };
    let broken = run(Some(TestingFault::DoubleCountOwnVote));
    assert!(
        broken.violations.iter().any(|v| v.starts_with("election safety")),
        "{:?}",
        broken.violations
    );
    let correct = run(None);
    assert!(correct.leaders.is_empty(), "nobody wins without a majority");
    correct.assert_safe();
}
