//! The checkers catch the three broken builds (design: fencing tokens, expiry through the log,
//! the client's drift margin), each within 200 seeds. Each test sweeps seeds until the first
//! violation of the checker that must notice, and fails if none within the budget. The seeds
//! run short phases to keep each test quick, and pin on the fault kind that exposes each bug
//! (remembered tokens; bad clocks and clients that stop renewing); the rest is swarm.

use std::time::Duration;

use palisade_sim::lab::{
    KIND_NAMES, LabBroken, LabCheck, LabFaults, LabOptions, LabReport, run_lab,
};

/// The budget of seeds per broken build.
const SEEDS_MAX: u64 = 200;

/// Sweeps seeds of `broken` until `check` reports a violation; returns that report. The
/// fault kinds named in `on` are pinned on, the others drawn by each seed (swarm).
fn first_caught(broken: LabBroken, on: &[&str], check: LabCheck) -> LabReport {
    let mut faults = LabFaults::SWARM;
    for name in on {
        let i = KIND_NAMES.iter().position(|k| k == name).expect("a fault kind");
        faults.on[i] = Some(true);
    }
    for seed in 0..SEEDS_MAX {
        let mut o = LabOptions::new(seed);
        o.broken = Some(broken);
        o.faults = faults;
        o.safety = Duration::from_secs(15);
        o.liveness = Duration::from_secs(5);
        let report = run_lab(&o);
        if report.count(check) > 0 {
            println!("{report}");
            return report;
        }
    }
    panic!("{} not caught by {} within {SEEDS_MAX} seeds", broken.name(), check.name());
}

#[test]
fn fence_check_off_is_caught() {
    let r = first_caught(LabBroken::FenceCheckOff, &["stale-tokens"], LabCheck::Fencing);
    assert!(!r.passed());
}

#[test]
fn expire_without_log_is_caught() {
    let r = first_caught(LabBroken::ExpireWithoutLog, &[], LabCheck::ReplicaAgreement);
    assert!(!r.passed());
}

/// The lock history carries the log's session ends (`ExpiryRule::Logged`), so a lock that
/// changes hands without one is a linearizability violation seen from the clients alone.
#[test]
fn expire_without_log_is_caught_by_linearizability() {
    let r = first_caught(LabBroken::ExpireWithoutLog, &[], LabCheck::Linearizability);
    assert!(!r.passed());
}

#[test]
fn trust_lease_without_drift_margin_is_caught() {
    let r = first_caught(
        LabBroken::TrustLeaseWithoutDrift,
        &["bad-clocks", "quiet-clients"],
        LabCheck::LeaseSanity,
    );
    assert!(!r.passed());
}
