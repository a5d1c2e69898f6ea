//! A tiny deterministic network of Raft nodes for scenario tests (in the spirit of quinn's
//! `Pair`): a map of nodes, each with a simulated disk and a toy state machine, one message
//! queue ordered by delivery time, virtual time that jumps to the next event, and a bound on
//! the number of steps. Latencies come from a seeded `ChaCha8Rng`, so a run replays from its
//! seed. Checkers record violations (two leaders in a term, two different entries applied at
//! one index) instead of panicking, so tests of deliberately broken variants can assert them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use palisade_clock::{MonoInstant, Now, WallTime};
use palisade_raft::{
    Config, Entry, LogIndex, Membership, Message, NodeId, Payload, RaftNode, ReadState, Ready,
    Recovered, Role, Snapshot, Term,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The wall clock of every node starts here (2023-11-14), plus the node's offset.
const WALL_ORIGIN_NANOS: u64 = 1_700_000_000_000_000_000;

/// What a node made durable.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: palisade_raft::HardState,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

impl Disk {
    fn persist(&mut self, ready: &Ready) {
        if let Some(snapshot) = &ready.snapshot {
            self.entries.clear();
            self.snapshot = Some(snapshot.clone());
        }
        if let Some(first) = ready.entries.first() {
            self.entries.retain(|e| e.index < first.index);
            self.entries.extend(ready.entries.iter().cloned());
        }
        if let Some(hs) = ready.hard_state {
            self.hard_state = hs;
        }
    }

    /// What a restarted node recovers (the app snapshot replaces compacted entries).
    fn recovered(&self, initial: &Membership) -> Recovered {
        Recovered {
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
            initial_membership: initial.clone(),
        }
    }
}

/// The toy state machine: the list of applied commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct App {
    pub applied_index: LogIndex,
    pub commands: Vec<Vec<u8>>,
}

impl App {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.applied_index.to_le_bytes().to_vec();
        for c in &self.commands {
            out.extend_from_slice(&(c.len() as u32).to_le_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    pub fn decode(data: &[u8]) -> App {
        let applied_index = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
        let mut commands = Vec::new();
        let mut rest = &data[8..];
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
            commands.push(rest[4..4 + len].to_vec());
            rest = &rest[4 + len..];
        }
        App { applied_index, commands }
    }
}

/// One member of the test cluster.
#[derive(Debug)]
pub struct Slot {
    pub node: Option<RaftNode>,
    pub config: Config,
    pub disk: Disk,
    pub app: App,
    pub initial: Membership,
    /// This node's time of day minus true time.
    pub wall_offset_nanos: i64,
    pub read_states: Vec<ReadState>,
    pub reads_dropped: Vec<u64>,
    pub starts: u64,
}

impl Slot {
    pub fn node(&self) -> &RaftNode {
        self.node.as_ref().expect("node is up")
    }
}

/// A crash in the middle of handling a `Ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyCrash {
    /// The node crashes before anything of the batch reached the disk.
    BeforePersist,
    /// Only the entries reached the disk (a storage that writes them before the hard state).
    AfterEntries,
}

/// A message on the wire.
#[derive(Clone, Debug)]
pub struct InFlight {
    pub from: NodeId,
    pub to: NodeId,
    pub msg: Message,
}

type Filter = Box<dyn FnMut(NodeId, NodeId, &Message) -> bool>;

/// The cluster, its network and its checkers.
pub struct Cluster {
    pub now_nanos: u64,
    pub slots: BTreeMap<NodeId, Slot>,
    queue: BTreeMap<(u64, u64), InFlight>,
    seq: u64,
    rng: ChaCha8Rng,
    seed: u64,
    pub latency_min: Duration,
    pub latency_max: Duration,
    blocked: BTreeSet<(NodeId, NodeId)>,
    /// Returns false to drop a message at delivery.
    pub filter: Option<Filter>,
    /// Every delivered message, for determinism checks.
    pub trace: Vec<String>,
    pub leaders: BTreeMap<Term, BTreeSet<NodeId>>,
    pub applied: BTreeMap<LogIndex, (Term, Payload)>,
    pub violations: Vec<String>,
    pub steps: u64,
    /// For each read context: the highest index any node had applied when the read was
    /// issued. A linearizable read must be answered at an index at least that high.
    read_floor: BTreeMap<u64, LogIndex>,
    /// Crash these nodes while they handle their next `Ready` that needs persisting.
    pub crash_in_ready: BTreeMap<NodeId, ReadyCrash>,
}

impl Cluster {
    /// `ids` form a new cluster; `config` adjusts each node's default configuration.
    pub fn new(ids: &[NodeId], seed: u64, config: impl Fn(&mut Config)) -> Cluster {
        let mut cluster = Cluster {
            now_nanos: 1_000_000,
            slots: BTreeMap::new(),
            queue: BTreeMap::new(),
            seq: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            latency_min: Duration::from_millis(2),
            latency_max: Duration::from_millis(8),
            blocked: BTreeSet::new(),
            filter: None,
            trace: Vec::new(),
            leaders: BTreeMap::new(),
            applied: BTreeMap::new(),
            violations: Vec::new(),
            steps: 0,
            read_floor: BTreeMap::new(),
            crash_in_ready: BTreeMap::new(),
        };
        let members = Membership::new(ids.iter().copied());
        for &id in ids {
            let mut cfg = Config::default_for(id);
            config(&mut cfg);
            cluster.add_slot(id, cfg, members.clone());
        }
        cluster
    }

    /// Adds (and starts) a node with an empty disk and the given initial membership.
    pub fn add_slot(&mut self, id: NodeId, config: Config, initial: Membership) {
        let slot = Slot {
            node: None,
            config,
            disk: Disk::default(),
            app: App::default(),
            initial,
            wall_offset_nanos: 0,
            read_states: Vec::new(),
            reads_dropped: Vec::new(),
            starts: 0,
        };
        self.slots.insert(id, slot);
        self.start(id);
    }

    pub fn now_of(&self, id: NodeId) -> Now {
        let offset = self.slots[&id].wall_offset_nanos;
        let wall = (WALL_ORIGIN_NANOS + self.now_nanos).saturating_add_signed(offset);
        Now::new(MonoInstant::from_nanos(self.now_nanos), WallTime::from_nanos(wall))
    }

    /// Starts (or restarts) `id` from its disk.
    pub fn start(&mut self, id: NodeId) {
        let now = self.now_of(id);
        let seed = self.seed ^ (id << 32) ^ self.slots[&id].starts;
        let slot = self.slots.get_mut(&id).expect("known node");
        slot.starts += 1;
        let recovered = slot.disk.recovered(&slot.initial);
        slot.app = match &slot.disk.snapshot {
            Some(s) => App::decode(&s.data),
            None => App::default(),
        };
        let node = RaftNode::new(slot.config.clone(), recovered, now, seed).expect("valid node");
        slot.node = Some(node);
    }

    /// Stops `id`: it loses everything not on its disk.
    pub fn crash(&mut self, id: NodeId) {
        self.slots.get_mut(&id).expect("known node").node = None;
    }

    pub fn node(&self, id: NodeId) -> &RaftNode {
        self.slots[&id].node()
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut RaftNode {
        self.slots.get_mut(&id).and_then(|s| s.node.as_mut()).expect("node is up")
    }

    /// Cuts `id` off from every other node, both ways.
    pub fn isolate(&mut self, id: NodeId) {
        let ids: Vec<NodeId> = self.slots.keys().copied().collect();
        for other in ids.into_iter().filter(|&o| o != id) {
            self.blocked.insert((id, other));
            self.blocked.insert((other, id));
        }
    }

    /// Blocks messages from `from` to `to`.
    pub fn block(&mut self, from: NodeId, to: NodeId) {
        self.blocked.insert((from, to));
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Runs one input on `id` and then drains its outputs.
    pub fn with_node<T>(&mut self, id: NodeId, f: impl FnOnce(&mut RaftNode, Now) -> T) -> T {
        let now = self.now_of(id);
        let out = f(self.node_mut(id), now);
        self.drain(id);
        out
    }

    /// Takes and handles every `Ready` of `id`: persist, send, apply, acknowledge.
    pub fn drain(&mut self, id: NodeId) {
        let now = self.now_of(id);
        loop {
            let Some(node) = self.slots.get_mut(&id).and_then(|s| s.node.as_mut()) else { return };
            if !node.has_ready() {
                return;
            }
            let ready = node.ready();
            let token = ready.token();
            let slot = self.slots.get_mut(&id).expect("known");
            let crash = if ready.needs_persist() { self.crash_in_ready.remove(&id) } else { None };
            if let Some(crash) = crash {
                if crash == ReadyCrash::AfterEntries {
                    let torn = Ready { entries: ready.entries.clone(), ..Ready::default() };
                    slot.disk.persist(&torn);
                }
                slot.node = None;
                return;
            }
            slot.disk.persist(&ready);
            for (to, msg) in ready.messages.iter().cloned() {
                self.send(id, to, msg);
            }
            self.apply(id, &ready);
            let slot = self.slots.get_mut(&id).expect("known");
            if let Some(node) = slot.node.as_mut() {
                node.handle_persisted(now, token);
            }
        }
    }

    fn apply(&mut self, id: NodeId, ready: &Ready) {
        let slot = self.slots.get_mut(&id).expect("known");
        if let Some(s) = &ready.snapshot {
            slot.app = App::decode(&s.data);
            assert_eq!(slot.app.applied_index, s.meta.index, "snapshot data matches meta");
        }
        for entry in &ready.committed {
            assert_eq!(entry.index, slot.app.applied_index + 1, "node {id} applies in order");
            slot.app.applied_index = entry.index;
            if let Payload::Command(c) = &entry.payload {
                slot.app.commands.push(c.clone());
            }
            match self.applied.get(&entry.index) {
                Some((t, p)) if (*t, p) != (entry.term, &entry.payload) => {
                    let (term, payload, index) = (entry.term, &entry.payload, entry.index);
                    self.violations.push(format!(
                        "state machine safety: node {id} applied ({term}, {payload:?}) at \
                         {index} after ({t}, {p:?})"
                    ));
                }
                Some(_) => {}
                None => {
                    self.applied.insert(entry.index, (entry.term, entry.payload.clone()));
                }
            }
        }
        for read in &ready.read_states {
            let floor = self.read_floor.get(&read.ctx).copied().unwrap_or(0);
            if read.index < floor {
                self.violations.push(format!(
                    "stale read: ctx {} answered at {} but {floor} was applied before it began",
                    read.ctx, read.index
                ));
            }
        }
        slot.read_states.extend(ready.read_states.iter().copied());
        slot.reads_dropped.extend(ready.reads_dropped.iter().copied());
        if let Some(change) = ready.role_change.filter(|c| c.role == Role::Leader) {
            let leaders = self.leaders.entry(change.term).or_default();
            leaders.insert(id);
            if leaders.len() > 1 {
                let msg = format!("election safety: leaders {leaders:?} in term {}", change.term);
                self.violations.push(msg);
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, msg: Message) {
        let latency = self.rng.random_range(self.latency_min..=self.latency_max);
        let at = self.now_nanos + latency.as_nanos() as u64;
        self.seq += 1;
        self.queue.insert((at, self.seq), InFlight { from, to, msg });
    }

    /// The next event time: a delivery or a node's timer.
    fn next_event(&self) -> Option<u64> {
        let message = self.queue.keys().next().map(|&(at, _)| at);
        let timer = self
            .slots
            .values()
            .filter_map(|s| s.node.as_ref()?.poll_timeout())
            .map(|t| t.as_nanos())
            .min();
        [message, timer].into_iter().flatten().min()
    }

    /// Processes the next event (if it is not after `limit`); returns false if there was none.
    pub fn step_until(&mut self, limit: u64) -> bool {
        let Some(at) = self.next_event() else { return false };
        if at > limit {
            return false;
        }
        self.steps += 1;
        self.now_nanos = self.now_nanos.max(at);
        if let Some((&key, _)) = self.queue.iter().next().filter(|(k, _)| k.0 <= self.now_nanos) {
            let InFlight { from, to, msg } = self.queue.remove(&key).expect("present");
            self.deliver(from, to, msg);
            return true;
        }
        let ids: Vec<NodeId> = self.slots.keys().copied().collect();
        for id in ids {
            let due = self.slots[&id]
                .node
                .as_ref()
                .and_then(|n| n.poll_timeout())
                .is_some_and(|t| t.as_nanos() <= self.now_nanos);
            if due {
                self.with_node(id, |n, now| n.handle_timeout(now));
            }
        }
        true
    }

    fn deliver(&mut self, from: NodeId, to: NodeId, msg: Message) {
        if self.blocked.contains(&(from, to)) {
            return;
        }
        if self.filter.as_mut().is_some_and(|filter| !filter(from, to, &msg)) {
            return;
        }
        if self.slots.get(&to).is_none_or(|s| s.node.is_none()) {
            return;
        }
        self.trace.push(format!("{} {from}->{to} {msg:?}", self.now_nanos));
        self.with_node(to, |n, now| n.handle_message(now, from, msg));
    }

    /// Runs for `d` of virtual time (bounded by `STEPS_MAX` events).
    pub fn run_for(&mut self, d: Duration) {
        let end = self.now_nanos + d.as_nanos() as u64;
        let start_steps = self.steps;
        while self.step_until(end) {
            assert!(self.steps - start_steps < STEPS_MAX, "step bound exceeded");
        }
        self.now_nanos = self.now_nanos.max(end);
    }

    /// Runs until `done` holds (checked after every event) or `d` passed; returns `done`.
    pub fn run_until(&mut self, d: Duration, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let end = self.now_nanos + d.as_nanos() as u64;
        let start_steps = self.steps;
        while !done(self) {
            if !self.step_until(end) {
                self.now_nanos = self.now_nanos.max(end);
                return done(self);
            }
            assert!(self.steps - start_steps < STEPS_MAX, "step bound exceeded");
        }
        true
    }

    /// The live leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.slots
            .iter()
            .filter_map(|(&id, s)| s.node.as_ref().map(|n| (id, n)))
            .filter(|(_, n)| n.role() == Role::Leader)
            .max_by_key(|(_, n)| n.term())
            .map(|(id, _)| id)
    }

    /// Runs until exactly one live leader exists that every live voter follows.
    pub fn elect(&mut self, d: Duration) -> NodeId {
        let ok = self.run_until(d, |c| c.stable_leader().is_some());
        assert!(ok, "no stable leader within {d:?}");
        self.stable_leader().expect("checked")
    }

    /// A leader that every live member of its membership follows in its term.
    pub fn stable_leader(&self) -> Option<NodeId> {
        let leader = self.leader()?;
        let lead = self.node(leader);
        let members = lead.status().membership.voters;
        let all = members.iter().all(|id| match self.slots.get(id).and_then(|s| s.node.as_ref()) {
            Some(n) => n.term() == lead.term() && n.leader() == Some(leader),
            None => true,
        });
        all.then_some(leader)
    }

    /// Proposes `command` at `id`; panics if refused.
    pub fn propose(&mut self, id: NodeId, command: &[u8]) -> (LogIndex, Term) {
        let cmd = command.to_vec();
        self.with_node(id, |n, now| n.propose(now, cmd)).expect("proposal accepted")
    }

    /// Issues a linearizable read at `id`, remembering what had been applied before it.
    pub fn read(&mut self, id: NodeId, ctx: u64) -> Result<(), palisade_raft::ProposeError> {
        let floor = self.applied.keys().next_back().copied().unwrap_or(0);
        self.read_floor.insert(ctx, floor);
        self.with_node(id, |n, now| n.read_index(now, ctx))
    }

    /// Runs until every live node applied `index`.
    pub fn wait_applied(&mut self, index: LogIndex, d: Duration) -> bool {
        self.run_until(d, |c| {
            c.slots.values().filter(|s| s.node.is_some()).all(|s| s.app.applied_index >= index)
        })
    }

    /// One line per node: role, term, indices, and the leader's view of each peer.
    pub fn dump(&self) -> String {
        let mut out = format!("t={}ms\n", self.now_nanos / 1_000_000);
        for (id, slot) in &self.slots {
            let Some(node) = slot.node.as_ref() else {
                out.push_str(&format!("{id}: down\n"));
                continue;
            };
            let s = node.status();
            out.push_str(&format!(
                "{id}: {:?} t{} leader {:?} commit {} applied {} stable {} last {} app {} \
                 peers {:?}\n",
                s.role,
                s.term,
                s.leader,
                s.commit,
                s.applied,
                s.stable,
                s.last_index,
                slot.app.applied_index,
                s.peers.iter().map(|p| (p.id, p.progress)).collect::<Vec<_>>()
            ));
        }
        out
    }

    /// Panics with the violations recorded so far, if any.
    pub fn assert_safe(&self) {
        assert!(
            self.violations.is_empty(),
            "violations (seed {}): {:?}",
            self.seed,
            self.violations
        );
    }
}

/// Events one `run_*` call may process before the test is declared stuck.
pub const STEPS_MAX: u64 = 2_000_000;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
