//! A small sweep of the whole-service laboratory with every fault on (design: safety under
//! every fault of the chapter; liveness once they stop): every seed must pass every checker.
//! `PALISADE_LAB_SEEDS=<n>` sweeps seeds 0..n instead of the default 20.

use std::time::Duration;

use palisade_sim::lab::{LabFaults, LabOptions, NetworkKind, run_lab};

fn seeds() -> u64 {
    std::env::var("PALISADE_LAB_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20)
}

#[test]
fn a_sweep_with_every_fault_passes() {
    let mut failed = Vec::new();
    for seed in 0..seeds() {
        let mut o = LabOptions::new(seed);
        o.faults = LabFaults::ALL;
        o.safety = Duration::from_secs(20);
        o.liveness = Duration::from_secs(30);
        let report = run_lab(&o);
        println!("seed {seed}: {}", if report.passed() { "pass" } else { "FAIL" });
        if !report.passed() {
            println!("{report}");
            failed.push(report.reproduce());
        }
    }
    assert!(failed.is_empty(), "failed: {failed:?}");
}

/// Each system model runs; safety holds in all three, liveness where it is demanded.
#[test]
fn every_network_model_runs_and_passes() {
    for (seed, network) in
        [(1, NetworkKind::Synchronous), (2, NetworkKind::Partial), (3, NetworkKind::Asynchronous)]
    {
        let mut o = LabOptions::new(seed);
        o.network = Some(network);
        o.safety = Duration::from_secs(15);
        o.liveness = Duration::from_secs(30);
        let report = run_lab(&o);
        assert!(report.passed(), "{report}");
        assert_eq!(report.liveness.judged, network.checks_liveness(), "{report}");
    }
}

/// Seeds 963 and 1758 of `palisade sim --faults all` (bad clocks: ±20000 ppm): once the faults
/// stop, the clocks must stay disciplined (NTP is back), or within ~12 s two healthy nodes are
/// definitely more than `clock_offset_max` apart, the leader turns `clock_unfit` and steps
/// down, and nobody may campaign — no leader for seconds, live sessions expire in calm.
#[test]
fn calm_clocks_stay_within_the_offset_bound() {
    for seed in [963, 1758] {
        let mut o = LabOptions::new(seed);
        o.faults = LabFaults::ALL;
        let report = run_lab(&o);
        assert!(report.passed(), "{report}");
    }
}
