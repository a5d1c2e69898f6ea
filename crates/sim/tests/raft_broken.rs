//! The checkers catch a deliberately broken Raft (raft's `TestingFault`): each variant breaks
//! one safety rule, and the simulator must find the violation, named by the right checker,
//! within 100 seeds. Without this, a sweep that passes could mean the checkers look at
//! nothing.

use palisade_sim::raft::{
    Broken, CheckerKind, FaultSelection, RaftRunReport, RaftSimOptions, capture_panics, run_seed,
};

/// The first seed below 100 whose run `caught` accepts, with its report.
fn first_caught(
    broken: Broken,
    faults: FaultSelection,
    caught: impl Fn(&RaftRunReport) -> bool,
) -> Option<RaftRunReport> {
    capture_panics();
    (0..100).find_map(|seed| {
        let mut o = RaftSimOptions::new(seed);
        o.broken = Some(broken);
        o.faults = faults;
        let report = run_seed(&o);
        caught(&report).then_some(report)
    })
}

/// Raft §5.2, election safety: a candidate that counts its own vote twice wins alone in a
/// 3-node cluster, so two nodes lead one term. The election-safety checker must say so.
#[test]
fn double_vote_is_caught_by_election_safety() {
    let report = first_caught(Broken::DoubleVote, FaultSelection::Swarm, |r| {
        r.count(CheckerKind::ElectionSafety) > 0
    });
    let report = report.expect("two leaders in one term within 100 seeds");
    println!("{report}");
    assert!(!report.passed());
}

/// Raft §5.4.2 and figure 8: a leader that commits an entry of an earlier term by counting
/// its replicas commits an entry that a later leader may overwrite. The leader-completeness
/// checker must see, at that commit, a node lacking the entry that could still be elected.
#[test]
fn commit_of_an_earlier_term_by_count_is_caught_by_leader_completeness() {
    let report = first_caught(Broken::EarlierTerm, FaultSelection::All, |r| {
        r.count(CheckerKind::LeaderCompleteness) > 0
    });
    let report = report.expect("an unsafe commit within 100 seeds");
    println!("{report}");
    assert!(!report.passed());
}
