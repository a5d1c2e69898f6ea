//! Benchmark: check a 10,000-operation concurrent kv history (the target: under one
//! second). Run with `cargo run --release -p palisade-linearize --example bench`.
//!
//! The history is recorded from a real store with random concurrency windows (see
//! tests/common/generate.rs): `--processes` clients, `--keys` keys, `--unknown-per-mille`
//! operations whose outcome the client never learnt. It is checked twice: from memory
//! (`check_operations`), and as a JSON file (`check_json`: parse + check, what `palisade check`
//! does). `--write PATH` saves the file, to time `palisade check PATH --timing` on it.

#[path = "../tests/common/generate.rs"]
mod generate;

use std::time::Instant;

use generate::{GenConfig, kv_history};
use palisade_linearize::{CheckOptions, KvRegister, check_json, check_operations, kv_history_json};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name}: not a number: {v}")))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let config = GenConfig {
        processes: arg(&args, "--processes", 10),
        keys: arg(&args, "--keys", 20) as usize,
        ops: arg(&args, "--ops", 10_000) as usize,
        unknown_per_mille: arg(&args, "--unknown-per-mille", 10) as u32,
        seed: arg(&args, "--seed", 1),
    };
    println!("{config:?} (reproduce with --seed {})", config.seed);
    let history = kv_history(&config);
    let unknown = history.iter().filter(|op| op.is_unknown()).count();
    println!("operations: {} ({unknown} with unknown outcome)", history.len());

    let start = Instant::now();
    let checked = check_operations(&KvRegister::new(), &history, &CheckOptions::default())
        .expect("a valid history");
    let in_memory = start.elapsed();
    assert!(checked.result.is_ok(), "a recorded history is linearizable: {:?}", checked.result);
    println!(
        "check_operations: {:.1} ms, {} partitions, {} search steps, result ok",
        in_memory.as_secs_f64() * 1e3,
        checked.partitions,
        checked.steps
    );

    let text = kv_history_json(&history);
    let start = Instant::now();
    let report = check_json(&text, &CheckOptions::default()).expect("a valid file");
    let from_json = start.elapsed();
    println!(
        "check_json ({} bytes): {:.1} ms, result {}",
        text.len(),
        from_json.as_secs_f64() * 1e3,
        report.verdict
    );
    if let Some(i) = args.iter().position(|a| a == "--write") {
        let path = args.get(i + 1).expect("--write PATH");
        std::fs::write(path, &text).expect("write the history file");
        println!("wrote {path}");
    }
}
