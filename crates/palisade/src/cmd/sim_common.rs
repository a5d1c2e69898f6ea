//! What the simulation subcommands (`sim`, `sim raft`, `sim scenario`) share: argument
//! parsers, the sweep's thread pool, its progress bar, its speed line and its exit code.

use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A cluster size from 1 to 9.
pub fn parse_nodes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=9).contains(&n) => Ok(n),
        _ => Err(format!("{s:?}: a cluster size from 1 to 9")),
    }
}

/// A non-empty range of seeds, `A..B`.
pub fn parse_range(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let a: u64 = a.trim().parse().map_err(|e| format!("{a:?}: {e}"))?;
    let b: u64 = b.trim().parse().map_err(|e| format!("{b:?}: {e}"))?;
    if a >= b {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok(a..b)
}

/// A time of the run: a duration (`1500ms`, `12s`) or plain seconds (`12.5`).
fn parse_time(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if !(0.0..1e9).contains(&secs) {
            return Err(format!("{s:?}: out of range"));
        }
        return Ok((secs * 1e9) as u64);
    }
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    u64::try_from(d.as_nanos()).map_err(|e| e.to_string())
}

/// A window of simulated time, `A..B` (`12s..15s`, `12..15`), as nanoseconds.
pub fn parse_window(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once("..").ok_or_else(|| format!("expected A..B, got {s:?}"))?;
    let (a, b) = (parse_time(a)?, parse_time(b)?);
    if a >= b {
        return Err(format!("empty window {s:?}"));
    }
    Ok((a, b))
}

/// 0 when every run passed, 1 otherwise.
pub fn exit(passed: bool) -> ExitCode {
    if passed { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// Wall-clock figures: seeds per minute and simulated seconds per wall-clock second.
pub fn speed_line(seeds: u64, virtual_nanos: u64, wall: Duration) -> String {
    let wall_s = wall.as_secs_f64().max(1e-9);
    format!(
        "wall {:.2}s: {:.1} seeds/minute, {:.0} simulated seconds per wall-clock second",
        wall_s,
        seeds as f64 * 60.0 / wall_s,
        virtual_nanos as f64 / 1e9 / wall_s
    )
}

/// A progress bar over `len` units called `what`.
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!("{{bar:40}} {{pos}}/{{len}} {what} {{msg}} [{{elapsed}}, eta {{eta}}]");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// Runs `f` on every seed over `jobs` threads; results in seed order. `tick` sees each
/// result as it arrives (in completion order).
pub fn parallel<T: Send>(
    seeds: Range<u64>,
    jobs: u64,
    f: impl Fn(u64) -> T + Sync,
    mut tick: impl FnMut(&T),
) -> Vec<(u64, T)> {
    let next = AtomicU64::new(seeds.start);
    let (tx, rx) = mpsc::channel();
    let mut out = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (tx, next, f, end) = (tx.clone(), &next, &f, seeds.end);
            scope.spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end || tx.send((seed, f(seed))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (seed, result) in rx {
            tick(&result);
            out.push((seed, result));
        }
    });
    out.sort_by_key(|(seed, _)| *seed);
    out
}
