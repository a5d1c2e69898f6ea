//! A modest sweep of the Raft simulation, as CI runs it: every seed must pass every checker
//! (election safety, log matching, state machine safety, durability, liveness) under its swarm
//! of faults, and with every kind of fault on at once. Failures print the full report and
//! the command that reproduces them. Bigger sweeps: `palisade sim raft --seeds 0..1000`.

use palisade_sim::raft::{FaultSelection, RaftSimOptions, capture_panics, run_seed};

fn sweep(seeds: std::ops::Range<u64>, faults: FaultSelection) {
    capture_panics();
    let mut failed = Vec::new();
    for seed in seeds {
        let mut o = RaftSimOptions::new(seed);
        o.faults = faults;
        let report = run_seed(&o);
        if !report.passed() {
            println!("{report}");
            failed.push(seed);
        }
    }
    assert!(failed.is_empty(), "failed seeds: {failed:?}");
}

/// Seeds 0..20 with the seed's swarm of faults.
#[test]
fn swarm_seeds_pass() {
    sweep(0..20, FaultSelection::Swarm);
}

/// Seeds 1000..1020 with every kind of fault on.
#[test]
fn all_faults_seeds_pass() {
    sweep(1000..1020, FaultSelection::All);
}
