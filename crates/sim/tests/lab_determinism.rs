//! The lab replays byte for byte: the same seed gives the same report text and the same trace
//! hash (which covers every event of the run); different seeds give different runs.

use std::time::Duration;

use palisade_sim::lab::{LabFaults, LabOptions, run_lab};

fn short(seed: u64) -> LabOptions {
    let mut o = LabOptions::new(seed);
    o.faults = LabFaults::ALL;
    o.safety = Duration::from_secs(10);
    o.liveness = Duration::from_secs(20);
    o
}

#[test]
fn the_same_seed_replays_byte_for_byte() {
    for seed in [3, 11] {
        let a = run_lab(&short(seed));
        let b = run_lab(&short(seed));
        println!("{a}");
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}: trace hashes differ");
        assert_eq!(a.to_string(), b.to_string(), "seed {seed}: reports differ");
    }
    assert_ne!(run_lab(&short(3)).trace_hash, run_lab(&short(4)).trace_hash);
}
