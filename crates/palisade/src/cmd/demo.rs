//! `palisade demo`: the primitives at work, in a few lines each — a checksummed frame that
//! catches a flipped bit, two drifting clocks estimating their offset, hybrid logical clocks
//! ordering events across skewed wall clocks, and a phi-accrual detector noticing a crash.
//! Everything runs on simulated clocks, so the output is the same on every run.

use std::time::Duration;

use palisade_clock::{
    DRIFT_BOUND_PPM_DEFAULT, Hlc, MonoInstant, OffsetConfig, OffsetEstimator, SimClock, WallTime,
};
use palisade_detector::{FailureDetector, PhiAccrual, PhiAccrualConfig};

use super::CmdResult;

/// Arguments of `palisade demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

const SECOND_NANOS: u64 = 1_000_000_000;

/// Runs the demo.
pub fn run(_args: Args) -> CmdResult {
    frames()?;
    clocks();
    hlc();
    detector()?;
    Ok(std::process::ExitCode::SUCCESS)
}

fn frames() -> Result<(), Box<dyn std::error::Error>> {
    println!("== frames: length | CRC32C | version | postcard payload");
    let message = ("acquire", "orders-lock", 33u64);
    let mut frame = palisade_wire::encode(&message)?;
    println!("encoded {message:?} into {} bytes", frame.len());
    let back: (String, String, u64) = palisade_wire::decode(&frame)?;
    println!("decoded: {back:?}");
    let bit = frame.len() * 8 / 2;
    frame[bit / 8] ^= 1 << (bit % 8);
    match palisade_wire::decode::<(String, String, u64)>(&frame) {
        Ok(v) => println!("flipped bit {bit}: decoded {v:?} (the checksum failed to catch it!)"),
        Err(e) => println!("flipped bit {bit}: refused: {e}"),
    }
    println!();
    Ok(())
}

fn clocks() {
    println!(
        "== clocks: two nodes, drift within ±{DRIFT_BOUND_PPM_DEFAULT} ppm, wall offset 250 ms"
    );
    let a = SimClock::new(
        0,
        MonoInstant::ZERO,
        WallTime::from_nanos(1_700_000_000 * SECOND_NANOS),
        400,
    );
    let b = SimClock::new(
        0,
        MonoInstant::from_nanos(77 * SECOND_NANOS),
        WallTime::from_nanos(1_700_000_000 * SECOND_NANOS + 250_000_000),
        -300,
    );
    let mut estimator = OffsetEstimator::new(OffsetConfig::default());
    // Ping every second; 2 ms out, 3 ms back (asymmetric), b holds the ping 0.1 ms.
    for i in 1..=5u64 {
        let t = i * SECOND_NANOS;
        let sent = a.reading(t);
        let received_remote = b.reading(t + 2_000_000).wall;
        let sent_remote = b.reading(t + 2_100_000).wall;
        let received = a.reading(t + 5_100_000);
        estimator.handle_sample(sent, received_remote, sent_remote, received);
    }
    let t = 6 * SECOND_NANOS;
    let truth = b.reading(t).wall.signed_nanos_since(a.reading(t).wall) as f64 / 1e6;
    if let Some(est) = estimator.estimate(a.reading(t).mono) {
        println!(
            "b - a offset estimate at t=6 s: {:.3} ms ± {:.3} ms (rtt {:.3} ms, sample age {:?})",
            est.offset_nanos as f64 / 1e6,
            est.error.as_secs_f64() * 1e3,
            est.rtt.as_secs_f64() * 1e3,
            est.age
        );
        println!("true offset at t=6 s (which no node can read): {truth:.3} ms");
    }
    println!();
}

fn hlc() {
    println!("== hybrid logical clocks: b's wall clock is 5 s behind a's");
    let (mut a, mut b) = (Hlc::new(), Hlc::new());
    let a_wall = WallTime::from_nanos(1_700_000_010 * SECOND_NANOS);
    let b_wall = WallTime::from_nanos(1_700_000_005 * SECOND_NANOS);
    let write_a = a.now(a_wall);
    let on_b = match b.update(b_wall, write_a) {
        Ok(ts) => ts,
        Err(e) => {
            println!("b refused a's timestamp: {e}");
            return;
        }
    };
    let write_b = b.now(b_wall.saturating_add(Duration::from_millis(1)));
    println!(
        "a writes x=1 at {write_a}; b reads it, then writes x=2 at {write_b} (received {on_b})"
    );
    println!(
        "last-write-wins by wall clock keeps {}; by HLC keeps x=2 (the causally later write)",
        if a_wall > b_wall { "x=1, losing b's write" } else { "x=2" }
    );
    println!();
}

fn detector() -> Result<(), Box<dyn std::error::Error>> {
    println!("== phi accrual failure detector: heartbeats every 100 ms, then a crash at t=4 s");
    let config = PhiAccrualConfig {
        min_std_deviation: Duration::from_millis(10),
        acceptable_heartbeat_pause: Duration::from_millis(100),
        first_heartbeat_estimate: Duration::from_millis(100),
        ..PhiAccrualConfig::default()
    };
    let mut phi = PhiAccrual::new(config)?;
    for i in 0..=30u64 {
        // A little deterministic jitter: ±7 ms.
        let jitter = (i * 7919 % 15) as i64 - 7;
        let t = (1_000 + i as i64 * 100 + jitter) as u64 * 1_000_000;
        phi.heartbeat(MonoInstant::from_nanos(t));
    }
    for ms in [4_050u64, 4_150, 4_250, 4_300, 4_400, 4_600] {
        let now = MonoInstant::from_nanos(ms * 1_000_000);
        println!(
            "t={ms} ms  phi={:6.2}  {}",
            phi.phi(now),
            if phi.is_available(now) { "available" } else { "SUSPECTED" }
        );
    }
    Ok(())
}
