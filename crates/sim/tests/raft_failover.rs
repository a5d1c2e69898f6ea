//! The failover comparison of the two elections (design: "fixed-timeout detector kept as the
//! baseline for comparison"): on the same seeds, every lost leader is replaced by one that
//! commits, for both the randomized-timeout and the phi-accrual election, and safety holds
//! throughout. The numbers themselves are reported by `palisade sim raft --failover-compare`.

use palisade_sim::raft::{ElectionKind, FailoverOptions, failover_compare};

#[test]
fn both_elections_fail_over_every_lost_leader() {
    let mut options = FailoverOptions::new(0..3);
    options.losses = 4;
    let report = failover_compare(&options);
    print!("{report}");
    for stats in [report.fixed, report.phi] {
        let kind = stats.election.name();
        assert_eq!(stats.losses, 12, "{kind}: a leader to lose every time");
        assert_eq!(stats.failovers, stats.losses, "{kind}: every loss is recovered from");
        assert!(stats.failover_nanos_max < 5_000_000_000, "{kind}: within the outage");
        assert_eq!(stats.failed_runs, 0, "{kind}: every checker passed");
        assert!(stats.crash_failovers.0 > 0 && stats.isolate_failovers.0 > 0);
    }
    assert_eq!(report.fixed.election, ElectionKind::Fixed);
    assert_eq!(report.phi.election, ElectionKind::Phi);
    assert_eq!(report.to_string(), failover_compare(&options).to_string(), "deterministic");
}
