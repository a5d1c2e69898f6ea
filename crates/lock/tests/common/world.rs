//! A small event-driven world for timing tests: replicas with drifting monotonic clocks, one
//! shared committed log, per-node apply lag, elections, restarts, and one client with its
//! `ClientLease`. Real time is `u64` nanoseconds that no node can read.
//!
//! Simplifications (each conservative for what the tests check): an entry is committed when the
//! leader creates it; each node appends it `lag / 2` and applies it `lag` later, in log order;
//! a node elected leader first applies the whole log (it cannot lead with less).
#![allow(dead_code)]

use std::time::Duration;

use palisade_clock::{MonoInstant, Now, WallTime};
use palisade_lock::{
    Applied, ClientLease, ClientTestingFault, Command, Event, KeepaliveId, LockConfig,
    LockStateMachine, Op, Reply, Request, RequestId, SessionId, SessionTracker,
};

/// A monotonic clock running at `1 + ppm / 1e6` times real time from `offset`.
#[derive(Copy, Clone, Debug)]
pub struct DriftClock {
    pub offset_ns: u64,
    pub ppm: i64,
}

impl DriftClock {
    pub fn local(&self, real: u64) -> MonoInstant {
        let r = i128::from(real);
        let drift = (r * i128::from(self.ppm)).div_euclid(1_000_000);
        let local = i128::from(self.offset_ns) + r + drift;
        MonoInstant::from_nanos(u64::try_from(local).expect("positive"))
    }

    pub fn now(&self, real: u64) -> Now {
        Now::new(self.local(real), WallTime::from_nanos(real))
    }

    /// The first real time at which this clock reads at least `local`.
    pub fn real_at(&self, local: MonoInstant) -> u64 {
        if local == MonoInstant::MAX {
            return u64::MAX;
        }
        let (mut lo, mut hi) = (0u64, local.as_nanos().saturating_mul(2).saturating_add(1 << 30));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.local(mid) >= local { hi = mid } else { lo = mid + 1 }
        }
        lo
    }
}

pub struct Node {
    pub clock: DriftClock,
    pub sm: LockStateMachine,
    pub tracker: SessionTracker,
    /// Log positions appended / applied so far.
    pub appended: usize,
    pub applied: usize,
    pub lag_ns: u64,
    pub up: bool,
    /// Whether the driver reports appends to the tracker.
    pub report_appends: bool,
}

pub struct Entry {
    pub cmd: Command,
    pub created: u64,
}

/// The client: one session, keepalives on the lease's schedule until `dies_at`.
pub struct Client {
    pub id: u64,
    pub clock: DriftClock,
    pub lease: ClientLease,
    pub seq: u64,
    pub net_ns: u64,
    pub dies_at: u64,
    pub session: Option<SessionId>,
    /// Requests on their way to the cluster: (seq, keepalive id, arrival).
    pub in_network: Vec<(u64, KeepaliveId, u64)>,
    /// Requests in the log, waiting for the leader's answer: (seq, keepalive id).
    pub awaiting: Vec<(u64, KeepaliveId)>,
    /// Answers on their way back: (arrival, keepalive id, ok).
    pub replies: Vec<(u64, KeepaliveId, bool)>,
    /// Real send time of every keepalive.
    pub sent: std::collections::BTreeMap<KeepaliveId, u64>,
}

pub struct World {
    pub config: LockConfig,
    pub nodes: Vec<Node>,
    pub log: Vec<Entry>,
    pub leader: Option<usize>,
    pub now: u64,
    pub client: Client,
    /// Real creation time of the entry that expired the client's session, if any.
    pub expired_at: Option<u64>,
    /// The latest real time at which the client's local lease ended, over the whole run.
    pub lease_end_max: Option<u64>,
    /// Real send time of the last keepalive the cluster acknowledged.
    pub last_acked_send: Option<u64>,
    /// Events processed (to keep runs bounded and cheap).
    pub steps: u64,
}

pub struct WorldSpec {
    pub config: LockConfig,
    pub clocks: Vec<DriftClock>,
    pub lags_ns: Vec<u64>,
    pub report_appends: bool,
    pub client_clock: DriftClock,
    pub client_net_ns: u64,
    pub client_dies_at: u64,
    pub ttl: Duration,
    pub client_fault: Option<ClientTestingFault>,
}

impl World {
    pub fn new(spec: WorldSpec) -> Self {
        let nodes = spec
            .clocks
            .iter()
            .zip(&spec.lags_ns)
            .map(|(clock, lag)| Node {
                clock: *clock,
                sm: LockStateMachine::new(spec.config.clone()),
                tracker: SessionTracker::new(spec.config.clone()),
                appended: 0,
                applied: 0,
                lag_ns: *lag,
                up: true,
                report_appends: spec.report_appends,
            })
            .collect();
        let mut lease = ClientLease::new(spec.ttl, spec.config.drift_bound_ppm);
        if let Some(f) = spec.client_fault {
            lease = lease.with_testing_fault(f);
        }
        let client = Client {
            id: 0xC11E27,
            clock: spec.client_clock,
            lease,
            seq: 0,
            net_ns: spec.client_net_ns,
            dies_at: spec.client_dies_at,
            session: None,
            in_network: Vec::new(),
            awaiting: Vec::new(),
            replies: Vec::new(),
            sent: std::collections::BTreeMap::new(),
        };
        World {
            config: spec.config,
            nodes,
            log: Vec::new(),
            leader: None,
            now: 0,
            client,
            expired_at: None,
            lease_end_max: None,
            last_acked_send: None,
            steps: 0,
        }
    }

    fn arrival(&self, node: usize, pos: usize, fraction: u64) -> u64 {
        self.log[pos].created + self.nodes[node].lag_ns / fraction
    }

    /// Applies log position `pos` on `node` at real time `real`.
    fn apply_on(&mut self, node: usize, real: u64) -> Applied {
        let n = &mut self.nodes[node];
        let pos = n.applied;
        let index = u64::try_from(pos + 1).unwrap();
        let applied = n.sm.apply(index, &self.log[pos].cmd);
        n.sm.check_invariants().expect("invariants");
        n.tracker.handle_applied(n.clock.now(real), &applied);
        n.applied += 1;
        n.appended = n.appended.max(n.applied);
        let ours = self.client.session;
        let expired = applied
            .events
            .iter()
            .any(|e| matches!(e, Event::SessionExpired { session, .. } if Some(*session) == ours));
        if expired {
            let created = self.log[pos].created;
            assert!(self.expired_at.is_none_or(|t| t == created), "one expiry entry");
            self.expired_at = Some(created);
        }
        applied
    }

    /// Brings every up node's log and state forward to `real`.
    fn replicate(&mut self, real: u64) {
        for i in 0..self.nodes.len() {
            if !self.nodes[i].up {
                continue;
            }
            while self.nodes[i].appended < self.log.len()
                && self.arrival(i, self.nodes[i].appended, 2) <= real
            {
                let pos = self.nodes[i].appended;
                let at = self.arrival(i, pos, 2);
                if self.nodes[i].report_appends {
                    let idx = u64::try_from(pos + 1).unwrap();
                    let now = self.nodes[i].clock.now(at);
                    self.nodes[i].tracker.handle_appended(now, idx, idx);
                }
                self.nodes[i].appended += 1;
            }
            while self.nodes[i].applied < self.log.len() {
                let at = self.arrival(i, self.nodes[i].applied, 1);
                if at > real {
                    break;
                }
                let applied = self.apply_on(i, at);
                if Some(i) == self.leader {
                    self.answer_client(&applied, at);
                }
            }
        }
    }

    fn answer_client(&mut self, applied: &Applied, real: u64) {
        let Some((id, response)) = &applied.response else { return };
        if id.client != self.client.id {
            return;
        }
        let Some(pos) = self.client.awaiting.iter().position(|(seq, _)| *seq == id.seq) else {
            return;
        };
        let (_, kid) = self.client.awaiting.remove(pos);
        let ok = match response {
            Ok(Reply::SessionOpened { session, .. }) => {
                self.client.session = Some(*session);
                true
            }
            Ok(Reply::Renewed { .. }) => true,
            _ => false,
        };
        self.client.replies.push((real + self.client.net_ns, kid, ok));
    }

    fn propose(&mut self, cmd: Command, real: u64) {
        self.log.push(Entry { cmd, created: real });
    }

    /// Node `node` wins an election at `real`: it catches up the whole log, then is ready.
    pub fn elect(&mut self, node: usize, real: u64) {
        self.advance_to(real);
        while self.nodes[node].applied < self.log.len() {
            self.apply_on(node, real);
        }
        let now = self.nodes[node].clock.now(real);
        self.nodes[node].tracker.handle_role(now, true, true);
        self.leader = Some(node);
    }

    /// The leader stops leading (crash or deposition) at `real`.
    pub fn depose(&mut self, real: u64) {
        self.advance_to(real);
        if let Some(l) = self.leader.take() {
            let now = self.nodes[l].clock.now(real);
            self.nodes[l].tracker.handle_role(now, false, false);
        }
    }

    /// Node `node` crashes at `real` and restarts: fresh memory, replays the log at once.
    pub fn restart(&mut self, node: usize, real: u64) {
        self.advance_to(real);
        let n = &mut self.nodes[node];
        n.sm = LockStateMachine::new(self.config.clone());
        n.tracker = SessionTracker::new(self.config.clone());
        n.applied = 0;
        n.appended = 0;
        while self.nodes[node].applied < self.log.len()
            && self.log[self.nodes[node].applied].created <= real
        {
            self.apply_on(node, real);
        }
        self.nodes[node].appended = self.nodes[node].applied;
    }

    fn client_send_time(&self) -> Option<u64> {
        let c = &self.client;
        if c.seq == 0 {
            return Some(0);
        }
        c.session?;
        let t = c.clock.real_at(c.lease.next_keepalive_at()?);
        (t < c.dies_at).then_some(t)
    }

    fn client_next(&self) -> Option<u64> {
        let c = &self.client;
        let replies = c.replies.iter().map(|r| r.0);
        let arrivals = c.in_network.iter().map(|r| r.2);
        replies.chain(arrivals).chain(self.client_send_time()).min()
    }

    fn client_step(&mut self, real: u64) {
        let (due, later): (Vec<_>, Vec<_>) =
            self.client.replies.drain(..).partition(|r| r.0 <= real);
        self.client.replies = later;
        for (at, kid, ok) in due {
            let local = self.client.clock.local(at);
            if ok {
                self.client.lease.handle_keepalive_acked(kid, local);
                let sent = self.client.sent[&kid];
                self.last_acked_send = Some(self.last_acked_send.map_or(sent, |m| m.max(sent)));
            } else {
                self.client.lease.handle_keepalive_failed(local);
            }
            if let Some(v) = self.client.lease.valid_until() {
                let end = self.client.clock.real_at(v);
                self.lease_end_max = Some(self.lease_end_max.map_or(end, |m| m.max(end)));
            }
        }
        let (due, later): (Vec<_>, Vec<_>) =
            self.client.in_network.drain(..).partition(|r| r.2 <= real);
        self.client.in_network = later;
        for (seq, kid, at) in due {
            self.deliver_request(seq, kid, at.max(real));
        }
        if self.client_send_time().is_some_and(|t| t <= real) {
            let c = &mut self.client;
            c.seq += 1;
            let kid = c.lease.handle_keepalive_sent(c.clock.local(real));
            c.sent.insert(kid, real);
            c.in_network.push((c.seq, kid, real + c.net_ns));
        }
    }

    fn deliver_request(&mut self, seq: u64, kid: KeepaliveId, at: u64) {
        if self.leader.is_none() {
            self.client.replies.push((at + self.client.net_ns, kid, false));
            return;
        }
        let op = match self.client.session {
            None => Op::OpenSession { ttl: self.client.lease.ttl() },
            Some(session) => Op::KeepAlive { session },
        };
        let id = RequestId { client: self.client.id, seq };
        self.client.awaiting.push((seq, kid));
        self.propose(Command::Client(Request { id, op }), at);
    }

    fn leader_next(&self) -> Option<u64> {
        let l = self.leader?;
        let n = &self.nodes[l];
        n.tracker.poll_timeout().map(|t| n.clock.real_at(t))
    }

    fn leader_step(&mut self, real: u64) {
        let Some(l) = self.leader else { return };
        let now = self.nodes[l].clock.now(real);
        for op in self.nodes[l].tracker.handle_timeout(now) {
            self.propose(Command::Leader(op), real);
        }
    }

    fn next_event(&self) -> Option<u64> {
        let mut times: Vec<u64> = Vec::new();
        for (i, n) in self.nodes.iter().enumerate() {
            if n.up && n.appended < self.log.len() {
                times.push(self.arrival(i, n.appended, 2));
            }
            if n.up && n.applied < self.log.len() {
                times.push(self.arrival(i, n.applied, 1));
            }
        }
        times.extend(self.leader_next());
        times.extend(self.client_next());
        times.into_iter().map(|t| t.max(self.now)).min()
    }

    /// Runs every event up to and including real time `until`.
    pub fn advance_to(&mut self, until: u64) {
        loop {
            let next = match self.next_event() {
                Some(t) if t <= until => t,
                _ => break,
            };
            self.now = next;
            self.replicate(next);
            self.client_step(next);
            self.leader_step(next);
            self.replicate(next);
            self.steps += 1;

            assert!(self.steps < 1_000_000, "world does not make progress");
        }
        self.now = self.now.max(until);
        self.replicate(until);
    }

    /// The real time at which the client's local lease ends (its clock reaches valid_until).
    pub fn client_lease_end_real(&self) -> Option<u64> {
        self.client.lease.valid_until().map(|v| self.client.clock.real_at(v))
    }
}
