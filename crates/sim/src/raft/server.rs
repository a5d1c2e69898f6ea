//! [`RaftServer`]: one Raft node as the server runs it, on a simulated disk.
//!
//! The driver follows the contract of `palisade_raft` to the letter, because the point is to
//! test that contract under faults: take a `Ready`; write its snapshot and entries to the WAL;
//! wait for the fsync; write the hard state and fsync; **then** send its messages, restore and
//! apply, answer the client, and call `handle_persisted`. The fsync takes simulated time (a
//! latency drawn per call), during which new messages keep arriving and Raft keeps
//! accumulating the next batch (group commit, as a real disk forces). A crash during that
//! window loses or tears the unsynced writes, which is exactly the case the WAL's torn-tail
//! recovery and Raft's persist-before-send rule exist for.
//!
//! The state machine is deliberately tiny: the index applied, the number of commands, and a
//! hash chain over every applied entry (index, term, payload). Two nodes with equal chains at
//! an index applied the same history; a snapshot carries the chain, so a node that restores
//! one can be checked against the nodes that applied the entries one by one.
//!
//! A node whose WAL refuses to open (corruption of synced data) or whose recovered state Raft
//! refuses does nothing at all: it "refuses to start", and the checkers count it as stopped.
//!
//! [`LogMirror`] keeps, beside the WAL, the (term, payload hash) of every entry the WAL holds,
//! following the WAL's own rules (append replaces the suffix, a snapshot keeps the log only if
//! the log holds its last entry), so the log-matching checker can compare the durable logs of
//! every pair of nodes without reopening their disks.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use palisade_clock::{MonoInstant, duration_nanos};
use palisade_raft::{
    Config, Entry, LogIndex, Membership, Payload, ProposeError, RaftNode, Ready, Recovered, Role,
    Term,
};
use palisade_storage::{SimDisk, Wal, WalOptions};
use rand::Rng;

use crate::raft::msg::{RaftObs, SimMsg, chain_next, node_of, payload_hash, proc_of};
use crate::{Boot, Ctx, ProcId};

/// How every server of a simulated cluster is set up.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Raft's configuration; `id` is set per node.
    pub raft: Config,
    /// The founding members.
    pub voters: Membership,
    /// Compact the log into a snapshot every this many applied entries.
    pub compact_every: u64,
    /// WAL options (small segments, so segments roll and are deleted often).
    pub wal: WalOptions,
    /// Shortest fsync.
    pub fsync_min: Duration,
    /// Longest fsync.
    pub fsync_max: Duration,
}

/// The state machine: how far it applied, how many commands, and a hash chain of the entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct App {
    /// Index of the last applied entry.
    pub applied: LogIndex,
    /// Commands applied (no-ops and membership entries excluded).
    pub commands: u64,
    /// Hash chain over every applied entry's index, term and payload hash.
    pub chain: u64,
}

/// Bytes of an encoded [`App`].
const APP_BYTES: usize = 24;

impl App {
    /// The state after applying `entry` (whose payload hash is `payload`).
    pub fn apply(&mut self, entry: &Entry, payload: u64) {
        assert_eq!(entry.index, self.applied + 1, "entries are applied in order");
        self.chain = chain_next(self.chain, entry.index, entry.term, payload);
        self.applied = entry.index;
        if matches!(entry.payload, Payload::Command(_)) {
            self.commands += 1;
        }
    }

    /// The snapshot data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(APP_BYTES);
        for word in [self.applied, self.commands, self.chain] {
            out.extend_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// Reads snapshot data; `None` if it is not an encoded `App`.
    pub fn decode(data: &[u8]) -> Option<App> {
        if data.len() != APP_BYTES {
            return None;
        }
        let word = |i: usize| u64::from_le_bytes(data[i * 8..i * 8 + 8].try_into().expect("8"));
        Some(App { applied: word(0), commands: word(1), chain: word(2) })
    }
}

/// The (term, payload hash) of every entry a node's WAL holds, after its snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogMirror {
    base_index: LogIndex,
    base_term: Term,
    entries: VecDeque<(Term, u64)>,
}

impl LogMirror {
    /// The mirror of a WAL that recovered `entries` after a snapshot at (`base_index`,
    /// `base_term`) (0, 0: none).
    pub(crate) fn recovered(base_index: LogIndex, base_term: Term, entries: &[Entry]) -> LogMirror {
        let mut m = LogMirror { base_index, base_term, entries: VecDeque::new() };
        m.append(entries);
        m
    }

    /// Index of the first entry held (after the snapshot).
    pub fn first_index(&self) -> LogIndex {
        self.base_index + 1
    }

    /// Index of the last entry (or of the snapshot if no entry follows it).
    pub fn last_index(&self) -> LogIndex {
        self.base_index + self.entries.len() as u64
    }

    /// The (term, payload hash) at `index`, if held.
    pub fn get(&self, index: LogIndex) -> Option<(Term, u64)> {
        let offset = index.checked_sub(self.first_index())?;
        self.entries.get(usize::try_from(offset).ok()?).copied()
    }

    /// The term at `index`, for the snapshot's index too.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        self.get(index).map(|(t, _)| t)
    }

    /// Appends entries; an entry at or below the last index replaces the suffix from there.
    fn append(&mut self, entries: &[Entry]) {
        let Some(first) = entries.first() else { return };
        assert!(first.index > self.base_index, "append below the snapshot");
        assert!(first.index <= self.last_index() + 1, "append leaves a gap");
        let keep = usize::try_from(first.index - self.first_index()).expect("fits");
        self.entries.truncate(keep);
        self.entries.extend(entries.iter().map(|e| (e.term, payload_hash(&e.payload))));
    }

    /// A snapshot at (`index`, `term`) was saved: the log after it survives only if the log
    /// holds that entry (the WAL's rule, Raft figure 13).
    fn snapshot(&mut self, index: LogIndex, term: Term) {
        if self.term_at(index) == Some(term) && index >= self.base_index {
            let drop = usize::try_from(index - self.base_index).expect("fits");
            self.entries.drain(..drop.min(self.entries.len()));
        } else {
            self.entries.clear();
        }
        self.base_index = index;
        self.base_term = term;
    }
}

/// (term, index) of the end of a log, as Raft compares logs.
pub(crate) fn mirror_end(log: &LogMirror) -> (Term, LogIndex) {
    let last = log.last_index();
    (log.term_at(last).unwrap_or(0), last)
}

/// A batch written to the WAL whose fsync has not completed yet.
#[derive(Debug)]
struct InFlight {
    ready: Ready,
    done_at: MonoInstant,
}

/// A server that started: Raft, its WAL and its state machine.
#[derive(Debug)]
struct Running {
    node: RaftNode,
    wal: Wal<SimDisk>,
    app: App,
    mirror: LogMirror,
    /// Client commands proposed here, by index: (client, seq, term).
    pending: BTreeMap<LogIndex, (ProcId, u64, Term)>,
    in_flight: Option<InFlight>,
    compacted_at: LogIndex,
    /// The term whose first own entry this node applied as leader (reported once).
    leader_commit_term: Term,
    /// The last (role, term) reported, so each campaign and leadership is reported once.
    role_reported: (Role, Term),
    /// (term, index) of the end of the log as of the last fsync: what a crash keeps for
    /// sure (a crash may keep more, which never makes the log end lower).
    durable_end: (Term, LogIndex),
}

#[derive(Debug)]
enum State {
    Running(Box<Running>),
    Refused(String),
}

/// What a server recovered at boot, reported by `handle_start`.
#[derive(Clone, Copy, Debug)]
struct BootInfo {
    incarnation: u32,
    snapshot_index: LogIndex,
    last_index: LogIndex,
    term: Term,
    torn_bytes: u64,
}

/// One Raft node of the simulation: see the module documentation.
#[derive(Debug)]
pub struct RaftServer {
    state: State,
    boot: BootInfo,
    compact_every: u64,
    fsync_nanos: (u64, u64),
}

impl RaftServer {
    /// Builds server `me` from its disk (the factory of the simulation calls this at every
    /// boot). Refuses to start, rather than fail, if the WAL or Raft refuses what the disk
    /// holds.
    pub fn boot(me: ProcId, boot: Boot, config: &ServerConfig) -> RaftServer {
        assert!(config.compact_every > 0, "compact_every must be positive");
        assert!(config.fsync_min <= config.fsync_max, "fsync range is empty");
        let mut info = BootInfo {
            incarnation: boot.incarnation,
            snapshot_index: 0,
            last_index: 0,
            term: 0,
            torn_bytes: 0,
        };
        let state = match open(me, boot, config, &mut info) {
            Ok(running) => State::Running(Box::new(running)),
            Err(reason) => State::Refused(reason),
        };
        RaftServer {
            state,
            boot: info,
            compact_every: config.compact_every,
            fsync_nanos: (duration_nanos(config.fsync_min), duration_nanos(config.fsync_max)),
        }
    }

    /// Raft, if the server started.
    pub fn node(&self) -> Option<&RaftNode> {
        self.running().map(|r| &r.node)
    }

    /// The durable log's mirror, if the server started.
    pub fn mirror(&self) -> Option<&LogMirror> {
        self.running().map(|r| &r.mirror)
    }

    /// The state machine, if the server started.
    pub fn app(&self) -> Option<App> {
        self.running().map(|r| r.app)
    }

    /// (term, index) of the end of the log as of the last fsync, if the server started.
    pub fn durable_end(&self) -> Option<(Term, LogIndex)> {
        self.running().map(|r| r.durable_end)
    }

    /// What the batch whose fsync is in flight carries, if one is: `(entries, hard state)`.
    pub fn fsync_in_flight(&self) -> Option<(bool, bool)> {
        let f = self.running()?.in_flight.as_ref()?;
        Some((!f.ready.entries.is_empty(), f.ready.hard_state.is_some()))
    }

    /// Why the server refused to start, if it did.
    pub fn refusal(&self) -> Option<&str> {
        match &self.state {
            State::Refused(reason) => Some(reason),
            State::Running(_) => None,
        }
    }

    fn running(&self) -> Option<&Running> {
        match &self.state {
            State::Running(r) => Some(r),
            State::Refused(_) => None,
        }
    }

    /// Reports how the boot went and handles whatever Raft has ready.
    pub fn handle_start(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>) {
        let b = self.boot;
        match &mut self.state {
            State::Refused(reason) => ctx.observe(RaftObs::Refused { reason: reason.clone() }),
            State::Running(r) => {
                ctx.observe(RaftObs::Started {
                    incarnation: b.incarnation,
                    snapshot_index: b.snapshot_index,
                    last_index: b.last_index,
                    term: b.term,
                    torn_bytes: b.torn_bytes,
                });
                r.drain(ctx, self.compact_every, self.fsync_nanos);
            }
        }
    }

    /// A message from a peer or the client.
    pub fn handle_message(
        &mut self,
        ctx: &mut Ctx<'_, SimMsg, RaftObs>,
        from: ProcId,
        msg: SimMsg,
    ) {
        let State::Running(r) = &mut self.state else { return };
        let now = ctx.now();
        match msg {
            SimMsg::Raft(m) => r.node.handle_message(now, node_of(from), m),
            SimMsg::Propose { seq, command } => r.propose(ctx, from, seq, command),
            SimMsg::Committed { .. } | SimMsg::Rejected { .. } => {}
        }
        r.drain(ctx, self.compact_every, self.fsync_nanos);
    }

    /// An fsync completed, or a Raft timer is due.
    pub fn handle_timeout(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>) {
        let State::Running(r) = &mut self.state else { return };
        let now = ctx.now();
        if r.in_flight.as_ref().is_some_and(|f| f.done_at <= now.mono) {
            let f = r.in_flight.take().expect("checked");
            r.complete(ctx, f.ready);
        }
        r.node.handle_timeout(now);
        r.drain(ctx, self.compact_every, self.fsync_nanos);
    }

    /// The next fsync completion or Raft timer.
    pub fn poll_timeout(&self) -> Option<MonoInstant> {
        let r = self.running()?;
        let fsync = r.in_flight.as_ref().map(|f| f.done_at);
        match (fsync, r.node.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Opens the WAL and builds Raft from what it recovered; `Err` is the refusal to start.
fn open(
    me: ProcId,
    boot: Boot,
    config: &ServerConfig,
    info: &mut BootInfo,
) -> Result<Running, String> {
    let (wal, recovered) =
        Wal::open_with(boot.disk, config.wal).map_err(|e| format!("wal: {e}"))?;
    let app = match &recovered.snapshot {
        Some(s) => {
            let app = App::decode(&s.data).ok_or("snapshot data is not a state machine")?;
            assert_eq!(app.applied, s.meta.index, "a snapshot's state is at its index");
            app
        }
        None => App::default(),
    };
    let (base_index, base_term) =
        recovered.snapshot.as_ref().map_or((0, 0), |s| (s.meta.index, s.meta.term));
    let mirror = LogMirror::recovered(base_index, base_term, &recovered.entries);
    *info = BootInfo {
        incarnation: boot.incarnation,
        snapshot_index: base_index,
        last_index: mirror.last_index(),
        term: recovered.hard_state.term,
        torn_bytes: recovered.torn_tail_bytes,
    };
    let mut raft = config.raft.clone();
    raft.id = node_of(me);
    let start = Recovered {
        hard_state: recovered.hard_state,
        snapshot: recovered.snapshot,
        entries: recovered.entries,
        initial_membership: config.voters.clone(),
    };
    let node = RaftNode::new(raft, start, boot.now, boot.seed).map_err(|e| format!("raft: {e}"))?;
    Ok(Running {
        node,
        wal,
        app,
        pending: BTreeMap::new(),
        in_flight: None,
        compacted_at: base_index,
        leader_commit_term: 0,
        role_reported: (Role::Follower, 0),
        durable_end: mirror_end(&mirror),
        mirror,
    })
}

impl Running {
    fn propose(
        &mut self,
        ctx: &mut Ctx<'_, SimMsg, RaftObs>,
        from: ProcId,
        seq: u64,
        command: Vec<u8>,
    ) {
        match self.node.propose(ctx.now(), command) {
            Ok((index, term)) => {
                self.pending.insert(index, (from, seq, term));
            }
            Err(ProposeError::NotLeader { leader }) => {
                let leader = leader.map(|l| proc_of(l).0);
                ctx.send(from, SimMsg::Rejected { seq, leader });
            }
            Err(_) => ctx.send(from, SimMsg::Rejected { seq, leader: None }),
        }
    }

    /// Takes batches until one needs an fsync (which then runs in simulated time) or none is
    /// left; compacts when nothing is in flight.
    fn drain(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>, compact_every: u64, fsync: (u64, u64)) {
        self.note_role(ctx);
        while self.in_flight.is_none() && self.node.has_ready() {
            let ready = self.node.ready();
            if !ready.needs_persist() {
                self.complete(ctx, ready);
                continue;
            }
            self.write(&ready);
            let nanos = ctx.rng().random_range(fsync.0..=fsync.1);
            let done_at = ctx.now().mono + Duration::from_nanos(nanos);
            self.in_flight = Some(InFlight { ready, done_at });
        }
        if self.in_flight.is_none() {
            self.maybe_compact(ctx, compact_every);
        }
    }

    /// Reports a new campaign or leadership. Read from Raft after every input rather than
    /// from `Ready::role_change`, which only shows the role when a batch is taken: a leader
    /// deposed while its first batch waits for an fsync would otherwise go unreported.
    fn note_role(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>) {
        let now = (self.node.role(), self.node.term());
        if now != self.role_reported && now.0 != Role::Follower {
            ctx.observe(RaftObs::Role { role: now.0, term: now.1 });
        }
        self.role_reported = now;
    }

    /// Writes the batch's snapshot (durably: saving a snapshot syncs) and entries (not yet
    /// synced).
    fn write(&mut self, ready: &Ready) {
        if let Some(s) = &ready.snapshot {
            if let Err(e) = self.wal.save_snapshot(s) {
                panic!("saving a received snapshot failed: {e}");
            }
            self.mirror.snapshot(s.meta.index, s.meta.term);
            self.durable_end = mirror_end(&self.mirror);
        }
        if !ready.entries.is_empty() {
            if let Err(e) = self.wal.append_entries(&ready.entries) {
                panic!("appending entries failed: {e}");
            }
            self.mirror.append(&ready.entries);
        }
    }

    /// The batch is durable (or needed no fsync): hard state, then send, restore, apply,
    /// answer, acknowledge.
    fn complete(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>, ready: Ready) {
        let now = ctx.now();
        let token = ready.token();
        if ready.needs_persist() {
            if let Some(hs) = ready.hard_state {
                self.wal.set_hard_state(hs).unwrap_or_else(|e| panic!("hard state: {e}"));
            }
            self.wal.sync().unwrap_or_else(|e| panic!("fsync failed: {e}"));
            self.durable_end = mirror_end(&self.mirror);
        }
        for (to, m) in ready.messages {
            ctx.send(proc_of(to), SimMsg::Raft(m));
        }
        if let Some(s) = &ready.snapshot {
            let app = App::decode(&s.data).expect("snapshots carry an encoded state machine");
            assert_eq!(app.applied, s.meta.index, "a snapshot's state is at its index");
            self.app = app;
            self.pending.retain(|&i, _| i > app.applied);
            ctx.observe(RaftObs::Restored { index: app.applied, chain: app.chain });
        }
        for entry in &ready.committed {
            self.apply(ctx, entry);
        }
        self.node.handle_persisted(now, token);
    }

    fn apply(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>, entry: &Entry) {
        let payload = payload_hash(&entry.payload);
        self.app.apply(entry, payload);
        let (index, term) = (entry.index, entry.term);
        ctx.observe(RaftObs::Applied { index, term, payload, chain: self.app.chain });
        while let Some(entry) = self.pending.first_entry().filter(|e| *e.key() <= index) {
            let (i, (client, seq, proposed_term)) = entry.remove_entry();
            if i == index && proposed_term == term {
                ctx.send(client, SimMsg::Committed { seq, index, term });
            }
        }
        let leading = self.node.role() == Role::Leader && self.node.term() == term;
        if leading && self.leader_commit_term != term {
            self.leader_commit_term = term;
            ctx.observe(RaftObs::LeaderCommit { term, index });
        }
    }

    /// Every `compact_every` applied entries: snapshot the state machine, compact Raft's log,
    /// save the snapshot (the WAL then drops the segments it covers).
    fn maybe_compact(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>, compact_every: u64) {
        let index = self.app.applied;
        let snapshot_index = self.node.snapshot().map_or(0, |s| s.meta.index);
        if index < self.compacted_at.max(snapshot_index) + compact_every {
            return;
        }
        if let Err(e) = self.node.compact(index, self.app.encode()) {
            panic!("compaction at {index} refused: {e}");
        }
        let snapshot = self.node.snapshot().expect("compact keeps a snapshot");
        if let Err(e) = self.wal.save_snapshot(snapshot) {
            panic!("saving a snapshot failed: {e}");
        }
        self.mirror.snapshot(snapshot.meta.index, snapshot.meta.term);
        self.compacted_at = index;
        ctx.observe(RaftObs::Compacted { index });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, payload: Payload::Command(index.to_le_bytes().to_vec()) }
    }

    #[test]
    fn app_round_trips_and_chains() {
        let mut a = App::default();
        a.apply(&entry(1, 1), 7);
        let mut b = App::default();
        b.apply(&entry(1, 2), 7);
        assert_ne!(a.chain, b.chain, "the term is in the chain");
        assert_eq!(App::decode(&a.encode()), Some(a));
        assert_eq!(App::decode(&[0; 3]), None);
        assert_eq!(a.commands, 1);
    }

    #[test]
    fn mirror_follows_the_wal_rules() {
        let mut m = LogMirror::recovered(0, 0, &[entry(1, 1), entry(2, 1), entry(3, 1)]);
        m.append(&[entry(3, 2), entry(4, 2)]);
        assert_eq!((m.last_index(), m.term_at(3)), (4, Some(2)));
        m.snapshot(2, 1);
        assert_eq!((m.first_index(), m.last_index(), m.term_at(4)), (3, 4, Some(2)));
        m.snapshot(9, 3);
        assert_eq!((m.first_index(), m.last_index(), m.get(4)), (10, 9, None));
    }
}
