//! A test peer shared by the integration tests: it answers pings, can ping a target
//! periodically, and reports everything it sees.

#![allow(dead_code)]

use palisade_clock::{MonoInstant, Now};
use palisade_sim::{Boot, Ctx, NetworkConfig, ProcId, Process, Simulation, TraceSink};
use palisade_storage::{Disk, SimDisk};
use serde::{Deserialize, Serialize};

/// One millisecond in nanoseconds.
pub const MS: u64 = 1_000_000;
/// One second in nanoseconds.
pub const SEC: u64 = 1_000_000_000;

/// Messages of the test peer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Msg {
    Ping(u64),
    Pong(u64),
}

/// What the test peer reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Obs {
    /// Started, with the bytes of its file "data".
    Started(Vec<u8>),
    /// Received a message, with the local clock reading then.
    Got(ProcId, Msg, Now),
    /// Its timer fired, at this local reading.
    Tick(MonoInstant),
}

/// A peer that answers pings, optionally pings `target` every `period`, and reports all.
pub struct Peer {
    pub disk: SimDisk,
    pub target: Option<(ProcId, u64)>,
    pub next: Option<MonoInstant>,
    pub sent: u64,
}

impl Process for Peer {
    type Msg = Msg;
    type Obs = Obs;

    fn handle_start(&mut self, ctx: &mut Ctx<'_, Msg, Obs>) {
        ctx.observe(Obs::Started(self.disk.read("data").unwrap_or_default()));
        if let Some((_, period)) = self.target {
            self.next = Some(MonoInstant::from_nanos(ctx.now().mono.as_nanos() + period));
        }
    }

    fn handle_message(&mut self, ctx: &mut Ctx<'_, Msg, Obs>, from: ProcId, msg: Msg) {
        ctx.observe(Obs::Got(from, msg.clone(), ctx.now()));
        if let Msg::Ping(n) = msg {
            ctx.send(from, Msg::Pong(n));
        }
    }

    fn handle_timeout(&mut self, ctx: &mut Ctx<'_, Msg, Obs>) {
        ctx.observe(Obs::Tick(ctx.now().mono));
        if let Some((to, period)) = self.target {
            self.sent += 1;
            ctx.send(to, Msg::Ping(self.sent));
            self.next = Some(MonoInstant::from_nanos(ctx.now().mono.as_nanos() + period));
        } else {
            self.next = None;
        }
    }

    fn poll_timeout(&self) -> Option<MonoInstant> {
        self.next
    }
}

/// A world of `n` quiet peers (no periodic pings) on `net`, keeping the trace.
pub fn world(seed: u64, n: usize, net: NetworkConfig) -> Simulation<Peer> {
    let factory = Box::new(|_, b: Boot| Peer { disk: b.disk, target: None, next: None, sent: 0 });
    let mut sim = Simulation::new(seed, net, factory);
    sim.set_trace_sink(TraceSink::Keep);
    for _ in 0..n {
        sim.add_process();
    }
    sim
}

pub fn ping(sim: &mut Simulation<Peer>, from: u32, to: u32, n: u64) {
    sim.invoke(ProcId(from), |_, ctx| ctx.send(ProcId(to), Msg::Ping(n))).expect("invoke");
}

/// `(proc, from, msg)` of every message received, in order.
pub fn received(sim: &Simulation<Peer>) -> Vec<(ProcId, ProcId, Msg)> {
    let got = sim.observations().iter().filter_map(|o| match &o.obs {
        Obs::Got(from, m, _) => Some((o.proc, *from, m.clone())),
        _ => None,
    });
    got.collect()
}

/// Two peers: p0 pings p1 every 10 ms; the trace is kept.
pub fn pinger(seed: u64, net: NetworkConfig) -> Simulation<Peer> {
    let factory = Box::new(|id: ProcId, b: Boot| {
        let target = (id == ProcId(0)).then_some((ProcId(1), 10 * MS));
        Peer { disk: b.disk, target, next: None, sent: 0 }
    });
    let mut sim = Simulation::new(seed, net, factory);
    sim.set_trace_sink(TraceSink::Keep);
    sim.add_process();
    sim.add_process();
    sim
}
