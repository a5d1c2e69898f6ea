//! Text output of the evaluation: the parameters and the aligned table, deterministic to the
//! byte (fixed decimal places, no locale, no time of day).

use std::fmt;
use std::time::Duration;

use super::{EvalConfig, EvalReport};
use crate::any::fmt_seconds;

impl fmt::Display for EvalConfig {
    /// One `name: value` line per parameter, then one line per scenario model.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |xs: &[Duration]| xs.iter().map(|&d| fmt_seconds(d)).collect::<Vec<_>>();
        let thresholds: Vec<String> = self.phi_thresholds.iter().map(f64::to_string).collect();
        writeln!(f, "seed: {}", self.seed)?;
        writeln!(f, "heartbeat interval: {}", fmt_seconds(self.heartbeat_interval))?;
        writeln!(f, "live hours per scenario: {}", self.live_hours)?;
        writeln!(f, "crash trials per scenario: {}", self.crash_trials)?;
        writeln!(f, "phi thresholds: {}", thresholds.join(", "))?;
        writeln!(f, "phi acceptable pauses: {}", list(&self.acceptable_pauses).join(", "))?;
        writeln!(
            f,
            "phi min std deviation: {}, max sample size: {}, first heartbeat estimate: {}",
            fmt_seconds(self.min_std_deviation),
            self.max_sample_size,
            fmt_seconds(self.heartbeat_interval)
        )?;
        writeln!(f, "fixed timeouts: {}", list(&self.fixed_timeouts).join(", "))?;
        for m in &self.scenarios {
            write!(
                f,
                "scenario {}: send jitter {}%, delay {} + |N(0, {})|",
                m.name,
                m.send_jitter_ratio * 100.0,
                fmt_seconds(m.delay_base),
                fmt_seconds(m.delay_jitter_std)
            )?;
            if let Some(t) = m.delay_tail {
                write!(f, " + Pareto(x_m {}, alpha {})", fmt_seconds(t.scale), t.alpha)?;
            }
            if let Some(p) = m.pauses {
                write!(
                    f,
                    ", pauses {}..{} every {} on average",
                    fmt_seconds(p.min),
                    fmt_seconds(p.max),
                    fmt_seconds(p.mean_between)
                )?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for EvalReport {
    /// The scenario summaries, then the table (scenario, detector, detection mean / p99 / max,
    /// false suspicions and false suspicions per hour), columns aligned.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.scenarios {
            writeln!(
                f,
                "{}: {} heartbeats, arrival gap mean {} max {}, {} gaps >= 2 intervals",
                s.name,
                s.heartbeats,
                secs(s.arrival_gap_mean),
                secs(s.arrival_gap_max),
                s.long_gaps
            )?;
        }
        writeln!(f)?;
        let header = ["scenario", "detector", "detect mean", "detect p99", "detect max"];
        let header_tail = ["false susp", "false/hour"];
        let mut cells: Vec<[String; 7]> = vec![[
            header[0].to_string(),
            header[1].to_string(),
            header[2].to_string(),
            header[3].to_string(),
            header[4].to_string(),
            header_tail[0].to_string(),
            header_tail[1].to_string(),
        ]];
        for r in &self.rows {
            cells.push([
                r.scenario.clone(),
                r.detector.to_string(),
                secs(r.detection_mean),
                secs(r.detection_p99),
                secs(r.detection_max),
                r.false_suspicions.to_string(),
                format!("{:.3}", r.false_suspicions_per_hour),
            ]);
        }
        write_table(f, &cells)
    }
}

/// Left-aligns the two text columns and right-aligns the numbers, two spaces apart.
fn write_table(f: &mut fmt::Formatter<'_>, cells: &[[String; 7]]) -> fmt::Result {
    let mut widths = [0_usize; 7];
    for row in cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for (i, row) in cells.iter().enumerate() {
        if i > 1 && row[0] != cells[i - 1][0] {
            writeln!(f)?;
        }
        let mut line = String::new();
        for (c, (cell, &w)) in row.iter().zip(&widths).enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            if c < 2 {
                line.push_str(&format!("{cell:<w$}"));
            } else {
                line.push_str(&format!("{cell:>w$}"));
            }
        }
        writeln!(f, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `1.234 s`: seconds with millisecond precision.
fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}
