//! `lww-clock-skew`: last-write-wins loses a causally later write when the writer's clock is
//! behind (the chapter's "timestamps for ordering events" figure); HLC versions do not.
//!
//! Three replicas of one register `x`; two clients. Client A writes `x = 1` at n1, which
//! stamps it and replicates it. Client B reads `x` at n3 until it sees A's value, then
//! writes `x + 1 = 2` at n3: B's write is causally after A's. But n3's time-of-day clock is
//! [`N3_BEHIND`] behind n1's, so B's write carries the *smaller* wall-clock timestamp, and a
//! last-write-wins register keeps A's value everywhere: B's increment is silently lost.
//!
//! Every replica keeps a second register, versioned by a hybrid logical clock
//! (`palisade_clock::Hlc`) instead: n3's HLC was pulled forward when A's replicated write
//! reached it, so B's write gets a larger HLC timestamp and wins everywhere.
//!
//! The replicas are a small [`Process`] written for this scenario (palisade's own kv is
//! linearizable through Raft and never needed timestamps to order writes).

use std::time::Duration;

use palisade_clock::{Hlc, HlcTimestamp, MonoInstant};
use serde::{Deserialize, Serialize};

use super::record::{arrows_from_trace, sample_offsets, secs};
use super::{MS, ScenarioError};
use crate::report::{
    Lane, LaneKind, LatencyOutcome, LatencyPoint, Mark, MarkKind, Nanos, OffsetSample, Timeline,
};
use crate::{
    Boot, Ctx, DelayConfig, NetworkConfig, ProcId, ProcOptions, Process, Simulation, TraceSink,
    WALL_ORIGIN_NANOS,
};

/// How far n3's time-of-day clock is behind true time.
pub const N3_BEHIND: Duration = Duration::from_millis(50);
/// How far n2's clock is ahead (a small, harmless skew, for contrast).
const N2_AHEAD: Duration = Duration::from_millis(3);
/// When A writes, on its own clock after boot.
const A_WRITES_AFTER: Duration = Duration::from_millis(10);
/// When B starts reading, after boot.
const B_READS_AFTER: Duration = Duration::from_millis(12);
/// B polls this often until it sees A's value.
const B_POLL_EVERY: Duration = Duration::from_millis(3);
/// Length of the run.
const RUN_NANOS: u64 = 70 * MS;
/// Offsets are sampled this often.
const SAMPLE_EVERY_NANOS: u64 = 5 * MS;
/// Wall-clock readings are shown as seconds of the minute from this second, like the book.
const SHOWN_SECOND: f64 = 42.0;

/// The three replicas (process ids 0..3), then clients A (3) and B (4).
const REPLICAS: [ProcId; 3] = [ProcId(0), ProcId(1), ProcId(2)];
const CLIENT_A: ProcId = ProcId(3);
const CLIENT_B: ProcId = ProcId(4);

/// A version of `x`: its value and both timestamps it was written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The value.
    pub value: u64,
    /// The writer replica's time-of-day reading, in nanoseconds since the epoch.
    pub wall: u64,
    /// The writer replica's HLC timestamp.
    pub hlc: HlcTimestamp,
}

/// What the scenario's processes send.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LwwMsg {
    /// Client to replica: write `x = value`.
    Write(u64),
    /// Replica to client: the write was stamped with this version.
    WriteAck(Version),
    /// Client to replica: read `x`.
    Read,
    /// Replica to client: the last-write-wins register's value.
    ReadReply(Option<u64>),
    /// Replica to replica: a version to merge.
    Replicate(Version),
}

/// What the scenario's processes report.
#[derive(Clone, Debug, PartialEq)]
pub enum LwwObs {
    /// A replica stamped a client's write.
    Stamped(Version),
    /// A replica merged a version: whether each register took it, and what it held before.
    Merged {
        /// The incoming version.
        incoming: Version,
        /// The last-write-wins register's previous version.
        lww_before: Option<Version>,
        /// Whether last-write-wins took the incoming version.
        lww_took: bool,
        /// Whether the HLC register took it.
        hlc_took: bool,
    },
    /// A client sent an operation (`value`: what a write writes).
    Invoked {
        /// The operation.
        op: &'static str,
        /// A write's value.
        value: Option<u64>,
    },
    /// A client's operation returned (`value`: what a read saw).
    Returned {
        /// The operation.
        op: &'static str,
        /// A read's value.
        value: Option<u64>,
    },
}

/// A replica or a client.
#[derive(Debug)]
pub enum LwwProc {
    /// A replica of `x`.
    Replica {
        /// The last-write-wins register.
        lww: Option<Version>,
        /// The HLC-versioned register.
        hlc_reg: Option<Version>,
        /// The replica's hybrid logical clock.
        hlc: Hlc,
    },
    /// A client: A writes once; B reads until it sees a value, then writes it plus one.
    Client {
        /// When to act next, on the local monotonic clock.
        next: Option<MonoInstant>,
        /// Whether this is B.
        incrementer: bool,
    },
}

impl Process for LwwProc {
    type Msg = LwwMsg;
    type Obs = LwwObs;

    fn handle_start(&mut self, _: &mut Ctx<'_, LwwMsg, LwwObs>) {}

    fn handle_message(&mut self, ctx: &mut Ctx<'_, LwwMsg, LwwObs>, from: ProcId, msg: LwwMsg) {
        match self {
            LwwProc::Replica { lww, hlc_reg, hlc } => match msg {
                LwwMsg::Write(value) => {
                    let now = ctx.now();
                    let v = Version { value, wall: now.wall.as_nanos(), hlc: hlc.now(now.wall) };
                    ctx.observe(LwwObs::Stamped(v));
                    let merged = merge(lww, hlc_reg, v);
                    ctx.observe(merged);
                    let me = ctx.me();
                    for r in REPLICAS.into_iter().filter(|r| *r != me) {
                        ctx.send(r, LwwMsg::Replicate(v));
                    }
                    ctx.send(from, LwwMsg::WriteAck(v));
                }
                LwwMsg::Read => ctx.send(from, LwwMsg::ReadReply(lww.map(|v| v.value))),
                LwwMsg::Replicate(v) => {
                    // No max-offset check here: the scenario is about ordering, not refusal.
                    let _ = hlc.update(ctx.now().wall, v.hlc);
                    let merged = merge(lww, hlc_reg, v);
                    ctx.observe(merged);
                }
                _ => {}
            },
            LwwProc::Client { incrementer, next } => match msg {
                LwwMsg::WriteAck(_) => {
                    ctx.observe(LwwObs::Returned { op: "write", value: None });
                }
                LwwMsg::ReadReply(value) => {
                    ctx.observe(LwwObs::Returned { op: "read", value });
                    match value {
                        Some(x) if *incrementer => {
                            ctx.observe(LwwObs::Invoked { op: "write", value: Some(x + 1) });
                            ctx.send(from, LwwMsg::Write(x + 1));
                        }
                        _ => *next = Some(ctx.now().mono + B_POLL_EVERY),
                    }
                }
                _ => {}
            },
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, LwwMsg, LwwObs>) {
        let LwwProc::Client { next, incrementer } = self else { return };
        if next.is_none_or(|t| t > ctx.now().mono) {
            return;
        }
        *next = None;
        if *incrementer {
            ctx.observe(LwwObs::Invoked { op: "read", value: None });
            ctx.send(REPLICAS[2], LwwMsg::Read);
        } else {
            ctx.observe(LwwObs::Invoked { op: "write", value: Some(1) });
            ctx.send(REPLICAS[0], LwwMsg::Write(1));
        }
    }

    fn poll_timeout(&self) -> Option<MonoInstant> {
        match self {
            LwwProc::Client { next, .. } => *next,
            LwwProc::Replica { .. } => None,
        }
    }
}

/// Merges `v` into both registers (a local write goes through the same rule as a replicated
/// one, as in a last-write-wins store): each keeps the version with the larger timestamp.
fn merge(lww: &mut Option<Version>, hlc_reg: &mut Option<Version>, v: Version) -> LwwObs {
    let lww_before = *lww;
    let lww_took = lww.is_none_or(|cur| v.wall > cur.wall);
    let hlc_took = hlc_reg.is_none_or(|cur| v.hlc > cur.hlc);
    if lww_took {
        *lww = Some(v);
    }
    if hlc_took {
        *hlc_reg = Some(v);
    }
    LwwObs::Merged { incoming: v, lww_before, lww_took, hlc_took }
}

fn build(p: ProcId, boot: Boot) -> LwwProc {
    match p {
        CLIENT_A => {
            LwwProc::Client { next: Some(boot.now.mono + A_WRITES_AFTER), incrementer: false }
        }
        CLIENT_B => {
            LwwProc::Client { next: Some(boot.now.mono + B_READS_AFTER), incrementer: true }
        }
        _ => LwwProc::Replica { lww: None, hlc_reg: None, hlc: Hlc::new() },
    }
}

/// What the lww-clock-skew run showed.
#[derive(Clone, Debug)]
pub struct LwwClockSkew {
    /// The report.
    pub timeline: Timeline,
    /// A's write `x = 1`, as n1 stamped it.
    pub a_write: Option<Version>,
    /// B's write `x = 2`, as n3 stamped it.
    pub b_write: Option<Version>,
    /// The value B read before writing (A's, so B's write is causally after A's).
    pub b_read: Option<u64>,
    /// Each replica's last-write-wins value at the end.
    pub lww_final: Vec<Option<u64>>,
    /// Each replica's HLC-versioned value at the end.
    pub hlc_final: Vec<Option<u64>>,
    /// The story, one line per step.
    pub story: Vec<String>,
}

/// Runs the scenario with `seed` (network delays).
pub fn run(seed: u64) -> Result<LwwClockSkew, ScenarioError> {
    let delay = DelayConfig {
        base_nanos: 4 * MS,
        jitter_nanos: 2 * MS,
        tail_probability: 0.0,
        ..DelayConfig::default()
    };
    let network = NetworkConfig { delay, ..NetworkConfig::default() };
    let mut sim = Simulation::new(seed, network, Box::new(build));
    sim.set_trace_sink(TraceSink::Keep);
    let offsets = [0, N2_AHEAD.as_nanos() as i64, -(N3_BEHIND.as_nanos() as i64), 0, 0];
    for wall_offset_nanos in offsets {
        sim.add_process_with(ProcOptions { wall_offset_nanos, ..ProcOptions::default() });
    }
    let mut samples = Vec::new();
    while sim.now_nanos() < RUN_NANOS {
        sample_offsets(&sim, &|p| Some(p.index()), &mut samples);
        sim.run_for(SAMPLE_EVERY_NANOS);
    }
    sample_offsets(&sim, &|p| Some(p.index()), &mut samples);
    Ok(collect(&sim, samples, seed))
}

fn collect(sim: &Simulation<LwwProc>, offsets: Vec<OffsetSample>, seed: u64) -> LwwClockSkew {
    let mut r = LwwClockSkew {
        timeline: Timeline::default(),
        a_write: None,
        b_write: None,
        b_read: None,
        lww_final: Vec::new(),
        hlc_final: Vec::new(),
        story: Vec::new(),
    };
    for o in sim.observations() {
        match &o.obs {
            LwwObs::Stamped(v) if o.proc == REPLICAS[0] => r.a_write = Some(*v),
            LwwObs::Stamped(v) if o.proc == REPLICAS[2] => r.b_write = Some(*v),
            LwwObs::Returned { op: "read", value: Some(x) } if o.proc == CLIENT_B => {
                r.b_read = Some(*x);
            }
            _ => {}
        }
    }
    for p in REPLICAS {
        let (lww, hlc) = match sim.process(p) {
            Some(LwwProc::Replica { lww, hlc_reg, .. }) => (*lww, *hlc_reg),
            _ => (None, None),
        };
        r.lww_final.push(lww.map(|v| v.value));
        r.hlc_final.push(hlc.map(|v| v.value));
    }
    r.story = story(&r);
    r.timeline = timeline(sim, offsets, seed, r.story.clone());
    r
}

/// A wall reading as seconds of the minute, like the book's `42.004`.
fn wall(nanos: u64) -> String {
    let since = nanos as f64 - WALL_ORIGIN_NANOS as f64;
    format!("{:.3}", SHOWN_SECOND + since / 1e9)
}

fn hlc(ts: HlcTimestamp) -> String {
    format!("{}+{}", wall(ts.wall_nanos), ts.logical)
}

fn story(r: &LwwClockSkew) -> Vec<String> {
    let v = |x: Option<Version>, f: &dyn Fn(Version) -> String| x.map_or("?".into(), f);
    let finals = |xs: &[Option<u64>]| {
        let shown: Vec<String> =
            xs.iter().map(|x| x.map_or("-".to_string(), |x| x.to_string())).collect();
        shown.join(", ")
    };
    vec![
        format!(
            "n3's time-of-day clock is {} behind (n2: {} ahead); wall readings shown as seconds \
             of the minute, as in the book",
            secs(N3_BEHIND.as_nanos() as u64),
            secs(N2_AHEAD.as_nanos() as u64)
        ),
        format!(
            "client A writes x = 1 at n1: wall timestamp {}, HLC {}",
            v(r.a_write, &|a| wall(a.wall)),
            v(r.a_write, &|a| hlc(a.hlc))
        ),
        format!(
            "client B reads x = {} at n3 (A's write, replicated), then writes x = {} there: \
             causally after A's write",
            r.b_read.map_or("?".into(), |x| x.to_string()),
            r.b_write.map_or("?".into(), |b| b.value.to_string())
        ),
        format!(
            "n3 stamps B's write with wall {} (earlier than A's!) and HLC {} (later: n3's HLC \
             moved forward when A's version arrived)",
            v(r.b_write, &|b| wall(b.wall)),
            v(r.b_write, &|b| hlc(b.hlc))
        ),
        format!(
            "last-write-wins, final x on n1, n2, n3: {} — B's increment is silently lost",
            finals(&r.lww_final)
        ),
        format!(
            "HLC versions, final x on n1, n2, n3: {} — the causally later write wins",
            finals(&r.hlc_final)
        ),
    ]
}

fn timeline(
    sim: &Simulation<LwwProc>,
    clock_offsets: Vec<OffsetSample>,
    seed: u64,
    summary: Vec<String>,
) -> Timeline {
    let names = ["n1", "n2 (+3 ms)", "n3 (-50 ms)", "client A", "client B"];
    let lanes = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let kind = if i < 3 { LaneKind::Node } else { LaneKind::Client };
            Lane { name: (*name).to_string(), kind }
        })
        .collect();
    let messages = arrows_from_trace(sim.trace_events(), &|p| Some(p.index()), &|_, _| true);
    let mut marks = Vec::new();
    let mut latencies = Vec::new();
    let mut invoked: Vec<(ProcId, Nanos, &'static str)> = Vec::new();
    for o in sim.observations() {
        let (lane, at) = (o.proc.index(), o.t_nanos);
        let mark = |kind, label| Mark { lane, at, kind, label };
        match &o.obs {
            LwwObs::Stamped(v) => marks.push(mark(
                MarkKind::Note,
                format!("x={} stamped {} / HLC {}", v.value, wall(v.wall), hlc(v.hlc)),
            )),
            LwwObs::Merged { incoming: v, lww_before, lww_took, hlc_took } => {
                marks.push(merge_mark(lane, at, *v, *lww_before, *lww_took, *hlc_took));
            }
            LwwObs::Invoked { op, value } => {
                invoked.push((o.proc, at, op));
                if let Some(x) = value {
                    marks.push(mark(MarkKind::Note, format!("write x={x}")));
                }
            }
            LwwObs::Returned { op, value } => {
                if let Some(i) = invoked.iter().position(|(p, _, w)| *p == o.proc && w == op) {
                    let (_, start, _) = invoked.remove(i);
                    let outcome = LatencyOutcome::Ok;
                    let op = op.to_string();
                    latencies.push(LatencyPoint { at: start, latency: at - start, op, outcome });
                }
                if let Some(x) = value {
                    marks.push(mark(MarkKind::Note, format!("read x={x}")));
                }
            }
        }
    }
    Timeline {
        title: "lww-clock-skew: last-write-wins loses a causally later write".into(),
        seed,
        summary,
        end: sim.now_nanos(),
        lanes,
        messages,
        bands: Vec::new(),
        marks,
        clock_offsets,
        latencies,
        fault_windows: Vec::new(),
    }
}

fn merge_mark(
    lane: usize,
    at: Nanos,
    v: Version,
    before: Option<Version>,
    lww_took: bool,
    hlc_took: bool,
) -> Mark {
    let (kind, label) = match (lww_took, hlc_took) {
        (false, true) => (
            MarkKind::LostUpdate,
            format!(
                "LWW drops x={} ({} < {}); HLC takes it",
                v.value,
                wall(v.wall),
                before.map_or("?".into(), |b| wall(b.wall))
            ),
        ),
        (true, true) => (MarkKind::WriteAccepted, format!("x={} applied", v.value)),
        (true, false) => (MarkKind::Violation, format!("HLC drops x={}", v.value)),
        (false, false) => (MarkKind::Note, format!("x={} older, ignored", v.value)),
    };
    Mark { lane, at, kind, label }
}
