//! Unit tests of the node on one or three in-memory nodes with explicit times (design: the
//! driver contract, exactly-once answers, long polls, recovery, snapshots).

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_clock::{MonoInstant, Now, WallTime};
use palisade_lock::{Fence, Op, Refused, Reply, RequestId, SessionId};
use palisade_raft::{Membership, NodeId};
use palisade_storage::{Disk, SimDisk};

use super::*;
use crate::protocol::{Consistency, ReadOp, ReadReply, ReplyResult, RequestBody, RetryReason};

const TTL: Duration = Duration::from_secs(5);
const WALL_BASE: u64 = 1_700_000_000_000_000_000;

fn at(ms: u64) -> Now {
    Now::new(
        MonoInstant::from_nanos(ms * 1_000_000),
        WallTime::from_nanos(WALL_BASE + ms * 1_000_000),
    )
}

fn config(id: NodeId) -> NodeConfig {
    let mut c = NodeConfig::default_for(7, id);
    c.lock.ttl_min = Duration::from_secs(1);
    c.lock.lock_delay = Duration::from_secs(1);
    c
}

fn mutate(attempt: u64, client: u64, seq: u64, op: Op) -> ClientRequest {
    let id = Some(RequestId { client, seq });
    ClientRequest { attempt, id, body: RequestBody::Mutate(op), wait: None }
}

fn read(attempt: u64, op: ReadOp) -> ClientRequest {
    ClientRequest { attempt, id: None, body: RequestBody::Read(op), wait: None }
}

/// One node on a simulated disk, driven by hand.
struct One {
    core: ServerCore<SimDisk>,
    disk: SimDisk,
    ms: u64,
    replies: Vec<(ConnId, ClientReply)>,
    events: Vec<NodeEvent>,
}

impl One {
    fn open_with(disk: SimDisk, config: NodeConfig, ms: u64) -> One {
        let core =
            ServerCore::open(config, disk.clone(), Membership::new([1]), at(ms), 1).expect("opens");
        let mut one = One { core, disk, ms, replies: Vec::new(), events: Vec::new() };
        one.drain();
        one
    }

    fn new() -> One {
        One::open_with(SimDisk::new(), config(1), 0)
    }

    fn drain(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Reply { conn, reply } => self.replies.push((conn, reply)),
                Output::Peer { .. } => panic!("a single node has no peers"),
            }
        }
        while let Some(e) = self.core.poll_event() {
            self.events.push(e);
        }
    }

    /// Runs timers up to `ms`.
    fn run_until(&mut self, ms: u64) {
        while let Some(t) = self.core.poll_timeout().filter(|t| *t <= at(ms).mono) {
            self.ms = self.ms.max(t.as_nanos() / 1_000_000);
            self.core.handle_timeout(Now::new(t, at(self.ms).wall));
            self.drain();
        }
        self.ms = ms;
    }

    fn elect(&mut self) {
        self.run_until(self.ms + 3_000);
        assert!(self.core.is_leader_ready(), "a single node elects itself");
    }

    fn send(&mut self, conn: ConnId, req: ClientRequest) -> Vec<ReplyResult> {
        self.core.handle_client_request(at(self.ms), conn, req);
        self.drain();
        self.take(conn)
    }

    fn take(&mut self, conn: ConnId) -> Vec<ReplyResult> {
        let (mine, rest) = self.replies.drain(..).partition(|(c, _)| *c == conn);
        self.replies = rest;
        mine.into_iter().map(|(_, r)| r.result).collect()
    }

    fn open_session(&mut self, client: u64) -> SessionId {
        match &self.send(client, mutate(1, client, 1, Op::OpenSession { ttl: TTL }))[..] {
            [ReplyResult::Done(Ok(Reply::SessionOpened { session, .. }))] => *session,
            other => panic!("open: {other:?}"),
        }
    }
}

fn token_of(results: &[ReplyResult]) -> u64 {
    match results {
        [ReplyResult::Done(Ok(Reply::Acquired { holder, .. }))] => holder.token,
        other => panic!("not acquired: {other:?}"),
    }
}

#[test]
fn a_single_node_serves_sessions_locks_and_fenced_writes() {
    let mut n = One::new();
    n.elect();
    let a = n.open_session(10);
    let acquire = Op::Acquire { session: a, lock: "L".into(), wait: false };
    let token = token_of(&n.send(10, mutate(2, 10, 2, acquire)));
    assert!(token > a.0, "the grant's index follows the session's");
    let put = |token| Op::Put {
        key: "k".into(),
        value: b"v".to_vec(),
        fence: Some(Fence { lock: "L".into(), token }),
        hlc: palisade_clock::HlcTimestamp::ZERO,
    };
    let written = n.send(10, mutate(3, 10, 3, put(token)));
    let version = match &written[..] {
        [ReplyResult::Done(Ok(Reply::Written { version, .. }))] => *version,
        other => panic!("{other:?}"),
    };
    assert!(version.wall_nanos > WALL_BASE, "the leader stamped its HLC reading");
    let stale = n.send(10, mutate(4, 10, 4, put(token - 1)));
    assert!(matches!(&stale[..], [ReplyResult::Done(Err(Refused::Fence(_)))]), "{stale:?}");
    // A linearizable read sees the write.
    let got = n
        .send(11, read(1, ReadOp::Get { key: "k".into(), consistency: Consistency::Linearizable }));
    match &got[..] {
        [ReplyResult::Read(ReadReply::Value { value: Some(v), .. })] => assert_eq!(v.data, b"v"),
        other => panic!("{other:?}"),
    }
    let status = n.core.status(at(n.ms));
    assert_eq!(status.session_count, 1);
    assert_eq!(status.locks[0].holder.as_ref().map(|h| h.token), Some(token));
    assert_eq!(status.kv_keys, 1);
}

#[test]
fn invalid_requests_are_refused_before_anything_happens() {
    let mut n = One::new();
    n.elect();
    let last = n.core.raft().status().last_index;
    let mut no_id = mutate(1, 10, 1, Op::OpenSession { ttl: TTL });
    no_id.id = None;
    assert!(matches!(&n.send(10, no_id)[..], [ReplyResult::Invalid(_)]));
    let long_key = "k".repeat(palisade_lock::KEY_BYTES_MAX + 1);
    let op = Op::Put { key: long_key, value: vec![], fence: None, hlc: Default::default() };
    let r = n.send(10, mutate(2, 10, 1, op));
    assert!(matches!(&r[..], [ReplyResult::Done(Err(Refused::Limit(_)))]), "{r:?}");
    let ttl = Duration::from_secs(100_000);
    let r = n.send(10, mutate(3, 10, 1, Op::OpenSession { ttl }));
    assert!(matches!(&r[..], [ReplyResult::Done(Err(Refused::Limit(_)))]), "{r:?}");
    assert_eq!(n.core.raft().status().last_index, last, "nothing was proposed");
}

#[test]
fn a_node_without_a_leader_says_so() {
    let disk = SimDisk::new();
    let core = ServerCore::open(config(1), disk, Membership::new([1, 2, 3]), at(0), 1);
    let mut core = core.expect("opens");
    core.handle_client_request(at(1), 5, mutate(9, 5, 1, Op::OpenSession { ttl: TTL }));
    let out = core.poll_output().expect("an answer");
    let Output::Reply { conn: 5, reply } = out else { panic!("{out:?}") };
    assert_eq!(reply.attempt, 9);
    assert_eq!(reply.result, ReplyResult::NotLeader { leader: None });
}

#[test]
fn a_blocking_acquire_is_granted_in_the_release_step_or_times_out() {
    let mut n = One::new();
    n.elect();
    let (a, b) = (n.open_session(10), n.open_session(20));
    token_of(
        &n.send(10, mutate(2, 10, 2, Op::Acquire { session: a, lock: "L".into(), wait: false })),
    );
    let mut blocking = mutate(2, 20, 2, Op::Acquire { session: b, lock: "L".into(), wait: true });
    blocking.wait = Some(Duration::from_secs(2));
    assert!(n.send(20, blocking).is_empty(), "parked");
    // The bound passes: StillWaiting, and B stays queued.
    n.run_until(n.ms + 2_100);
    assert_eq!(n.take(20), vec![ReplyResult::StillWaiting { position: 0 }]);
    // Park again with WaitGrant, then A releases: B is answered in the release's apply step.
    let mut wait = read(3, ReadOp::WaitGrant { session: b, lock: "L".into() });
    wait.wait = Some(Duration::from_secs(10));
    assert!(n.send(20, wait).is_empty(), "parked again");
    let released = n.send(10, mutate(3, 10, 3, Op::Release { session: a, lock: "L".into() }));
    let release_index = match &released[..] {
        [ReplyResult::Done(Ok(Reply::Released { next: Some(next), .. }))] => next.since_index,
        other => panic!("{other:?}"),
    };
    match &n.take(20)[..] {
        [ReplyResult::Read(ReadReply::Granted { holder, .. })] => {
            assert_eq!(holder.session, b);
            assert_eq!(holder.token, release_index, "granted by the releasing entry");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_restart_recovers_everything_synced_and_replays_it() {
    let mut n = One::new();
    n.elect();
    let a = n.open_session(10);
    let token = token_of(
        &n.send(10, mutate(2, 10, 2, Op::Acquire { session: a, lock: "L".into(), wait: false })),
    );
    let disk = n.disk.clone();
    drop(n);
    disk.crash_lose_unsynced();
    let mut again = One::open_with(disk, config(1), 10_000);
    // The commit index is persisted lazily (drive.rs, `persist`): the entries are durable,
    // and the node's first commit of its new term applies them.
    again.elect();
    let sm = again.core.state_machine();
    assert_eq!(sm.holder("L").map(|h| (h.session, h.token)), Some((a, token)));
    assert!(
        matches!(again.events[0], NodeEvent::Recovered { last_index, .. } if last_index >= token)
    );
    // The dedup table survived too: the retry of the acquire gets the first answer.
    let retry =
        again.send(10, mutate(7, 10, 2, Op::Acquire { session: a, lock: "L".into(), wait: false }));
    assert_eq!(token_of(&retry), token);
}

#[test]
fn a_corrupt_wal_makes_the_node_refuse_to_start() {
    let mut n = One::new();
    n.elect();
    n.open_session(10);
    let disk = n.disk.clone();
    drop(n);
    disk.crash_lose_unsynced();
    let name = disk.list().unwrap().into_iter().find(|f| f.starts_with("wal-")).expect("a segment");
    let len = disk.len(&name).expect("the first segment exists");
    disk.flip_bit(&name, (len / 2) * 8).expect("flip");
    let err = ServerCore::open(config(1), disk, Membership::new([1]), at(0), 1).unwrap_err();
    assert!(matches!(err, NodeError::Storage(_)), "{err}");
    assert!(err.to_string().contains("refuses to start"), "{err}");
}

#[test]
fn another_nodes_directory_is_refused() {
    let n = One::new();
    let disk = n.disk.clone();
    drop(n);
    let err = ServerCore::open(config(2), disk, Membership::new([2]), at(0), 1).unwrap_err();
    assert!(err.to_string().contains("data directory holds"), "{err}");
}

#[test]
fn snapshots_compact_the_log_and_a_restart_restores_them() {
    let mut c = config(1);
    c.snapshot_every_entries = 5;
    let mut n = One::open_with(SimDisk::new(), c.clone(), 0);
    n.elect();
    let a = n.open_session(10);
    for seq in 2..12 {
        let op = Op::Put {
            key: format!("k{seq}"),
            value: vec![1],
            fence: None,
            hlc: Default::default(),
        };
        assert!(matches!(&n.send(10, mutate(seq, 10, seq, op))[..], [ReplyResult::Done(Ok(_))]));
    }
    let taken = n.events.iter().filter(|e| matches!(e, NodeEvent::SnapshotTaken { .. })).count();
    assert!(taken >= 2, "{taken} snapshots");
    assert!(n.core.raft().status().snapshot_index >= 10);
    let disk = n.disk.clone();
    drop(n);
    disk.crash_lose_unsynced();
    let mut again = One::open_with(disk, c, 50_000);
    // Replayed up to the durable commit (at least the snapshot); the rest once it leads.
    assert!(again.core.applied_index() >= again.core.raft().status().snapshot_index);
    again.elect();
    assert_eq!(again.core.state_machine().key_count(), 10);
    assert!(again.core.state_machine().session(a).is_some());
    match again.events[0] {
        NodeEvent::Recovered { snapshot_index, .. } => assert!(snapshot_index >= 10),
        ref other => panic!("{other:?}"),
    }
}

/// Three nodes with instant, lossless delivery unless a link is cut.
struct Three {
    cores: BTreeMap<NodeId, ServerCore<SimDisk>>,
    ms: u64,
    cut: Vec<NodeId>,
    replies: Vec<(NodeId, ConnId, ClientReply)>,
}

impl Three {
    fn new() -> Three {
        Three::with(config)
    }

    fn with(config: impl Fn(NodeId) -> NodeConfig) -> Three {
        let members = Membership::new([1, 2, 3]);
        let cores = (1..=3)
            .map(|id| {
                let core = ServerCore::open(config(id), SimDisk::new(), members.clone(), at(0), id);
                (id, core.expect("opens"))
            })
            .collect();
        Three { cores, ms: 0, cut: Vec::new(), replies: Vec::new() }
    }

    /// Delivers every queued output until quiet.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for id in 1..=3 {
                let core = self.cores.get_mut(&id).expect("node");
                let mut outs = Vec::new();
                while let Some(o) = core.poll_output() {
                    outs.push(o);
                }
                while core.poll_event().is_some() {}
                for out in outs {
                    moved = true;
                    match out {
                        Output::Reply { conn, reply } => self.replies.push((id, conn, reply)),
                        Output::Peer { to, msg } => {
                            if self.cut.contains(&id) || self.cut.contains(&to) {
                                continue;
                            }
                            let now = at(self.ms);
                            self.cores
                                .get_mut(&to)
                                .expect("peer")
                                .handle_peer_message(now, id, msg);
                        }
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn run_until(&mut self, ms: u64) {
        loop {
            let next = self.cores.values().filter_map(|c| c.poll_timeout()).min();
            match next.filter(|t| *t <= at(ms).mono) {
                Some(t) => {
                    self.ms = self.ms.max(t.as_nanos() / 1_000_000);
                    for core in self.cores.values_mut() {
                        if core.poll_timeout().is_some_and(|d| d <= t) {
                            core.handle_timeout(Now::new(t, at(self.ms).wall));
                        }
                    }
                    self.pump();
                }
                None => break,
            }
        }
        self.ms = ms;
    }

    fn leader(&self) -> Option<NodeId> {
        self.cores.iter().find(|(_, c)| c.is_leader_ready()).map(|(id, _)| *id)
    }
}

#[test]
fn a_leader_that_loses_office_with_a_proposal_pending_answers_unknown() {
    let mut c = Three::new();
    c.run_until(5_000);
    let leader = c.leader().expect("a leader");
    c.request(leader, 1, mutate(1, 10, 1, Op::OpenSession { ttl: Duration::from_secs(60) }));
    assert!(c.replies.iter().any(|r| matches!(r.2.result, ReplyResult::Done(Ok(_)))));
    c.replies.clear();
    // Cut the leader off, then propose: the entry cannot commit.
    c.cut = vec![leader];
    let now = at(c.ms);
    let put = Op::Put { key: "k".into(), value: vec![], fence: None, hlc: Default::default() };
    c.cores.get_mut(&leader).unwrap().handle_client_request(now, 1, mutate(2, 10, 2, put.clone()));
    c.pump();
    assert!(c.replies.is_empty(), "no answer while the entry is uncommitted");
    // The others elect a new leader; CheckQuorum makes the old one step down.
    c.run_until(c.ms + 6_000);
    let answers: Vec<_> =
        c.replies.iter().filter(|r| r.0 == leader).map(|r| r.2.result.clone()).collect();
    assert_eq!(answers, vec![ReplyResult::Unknown], "the deposed leader cannot tell");
    // The client retries the same id at the new leader; heal so the old one catches up.
    c.cut.clear();
    c.replies.clear();
    let new_leader = c.leader().expect("a new leader");
    assert_ne!(new_leader, leader);
    let now = at(c.ms);
    c.cores.get_mut(&new_leader).unwrap().handle_client_request(now, 1, mutate(3, 10, 2, put));
    c.pump();
    assert!(
        matches!(
            c.replies[..],
            [(
                _,
                1,
                ClientReply { attempt: 3, result: ReplyResult::Done(Ok(Reply::Written { .. })) }
            )]
        ),
        "{:?}",
        c.replies
    );
    c.run_until(c.ms + 1_000);
    for core in c.cores.values() {
        assert!(core.state_machine().get("k").is_some());
    }
}

#[test]
fn drain_hands_leadership_to_a_caught_up_peer() {
    let mut c = Three::new();
    c.run_until(5_000);
    let leader = c.leader().expect("a leader");
    let now = at(c.ms);
    let to = c.cores.get_mut(&leader).unwrap().drain(now).expect("drains");
    assert_ne!(to, leader);
    c.pump();
    c.run_until(c.ms + 2_000);
    assert_eq!(c.leader(), Some(to));
    let now = at(c.ms);
    let err = c.cores.get_mut(&leader).unwrap().drain(now).unwrap_err();
    assert!(matches!(err, AdminError::NotLeader { leader: Some(l) } if l == to));
}

impl Three {
    fn request(&mut self, node: NodeId, conn: ConnId, req: ClientRequest) {
        let now = at(self.ms);
        self.cores.get_mut(&node).expect("node").handle_client_request(now, conn, req);
        self.pump();
    }

    fn results(&mut self) -> Vec<(u64, ReplyResult)> {
        self.replies.drain(..).map(|(_, _, r)| (r.attempt, r.result)).collect()
    }
}

fn put(key: &str) -> Op {
    Op::Put { key: key.into(), value: vec![], fence: None, hlc: Default::default() }
}

#[test]
fn a_retry_in_flight_supersedes_the_first_attempt_and_is_proposed_once() {
    let mut c = Three::new();
    c.run_until(5_000);
    let leader = c.leader().expect("a leader");
    c.request(leader, 1, mutate(1, 10, 1, Op::OpenSession { ttl: Duration::from_secs(60) }));
    c.results();
    let last = c.cores[&leader].raft().status().last_index;
    c.cut = vec![leader];
    c.request(leader, 1, mutate(2, 10, 2, put("k")));
    c.request(leader, 1, mutate(3, 10, 2, put("k")));
    let superseded = ReplyResult::Retry { reason: RetryReason::Superseded };
    assert_eq!(c.results(), vec![(2, superseded)]);
    assert_eq!(c.cores[&leader].raft().status().last_index, last + 1, "proposed once");
    c.cut.clear();
    c.run_until(c.ms + 500);
    let results = c.results();
    assert!(
        matches!(results[..], [(3, ReplyResult::Done(Ok(Reply::Written { .. })))]),
        "{results:?}"
    );
}

#[test]
fn past_the_proposal_bound_the_answer_is_overloaded() {
    let mut c = Three::with(|id| NodeConfig { pending_requests_max: 1, ..config(id) });
    c.run_until(5_000);
    let leader = c.leader().expect("a leader");
    c.request(leader, 1, mutate(1, 10, 1, Op::OpenSession { ttl: Duration::from_secs(60) }));
    c.request(leader, 2, mutate(1, 20, 1, Op::OpenSession { ttl: Duration::from_secs(60) }));
    c.results();
    c.cut = vec![leader];
    c.request(leader, 1, mutate(2, 10, 2, put("a")));
    c.request(leader, 2, mutate(2, 20, 2, put("b")));
    let overloaded = ReplyResult::Retry { reason: RetryReason::Overloaded };
    assert_eq!(c.results(), vec![(2, overloaded)]);
    assert_eq!(c.cores[&leader].status(at(c.ms)).proposals_pending, 1);
    c.cut.clear();
    c.run_until(c.ms + 500);
    assert!(matches!(c.results()[..], [(2, ReplyResult::Done(Ok(_)))]));
}

#[test]
fn a_leader_that_was_stopped_notices_and_pushes_deadlines_back() {
    let mut n = One::new();
    n.elect();
    let a = n.open_session(10);
    let before = n.core.tracker().deadline(a).expect("timed");
    // The process is stopped for 4 s (no input at all), then gets a timer.
    let resumed = n.ms + 4_000;
    n.core.handle_timeout(at(resumed));
    n.drain();
    let gap = n.events.iter().find_map(|e| match e {
        NodeEvent::PauseDetected { gap } => Some(*gap),
        _ => None,
    });
    assert!(gap.is_some_and(|g| g >= Duration::from_secs(3)), "{gap:?}");
    let after = n.core.tracker().deadline(a).expect("still timed");
    assert!(after > before, "deadlines only move later");
    assert!(n.core.state_machine().session(a).is_some(), "nothing expired on waking");
    assert_eq!(n.core.status(at(resumed)).pauses_detected, 1);
}

#[test]
fn a_closed_connection_is_not_answered() {
    let mut n = One::new();
    n.elect();
    let (a, b) = (n.open_session(10), n.open_session(20));
    let acquire = |session, wait| Op::Acquire { session, lock: "L".into(), wait };
    token_of(&n.send(10, mutate(2, 10, 2, acquire(a, false))));
    let mut blocking = mutate(2, 20, 2, acquire(b, true));
    blocking.wait = Some(Duration::from_secs(1));
    assert!(n.send(20, blocking).is_empty());
    assert_eq!(n.core.status(at(n.ms)).parked_waiters, 1);
    n.core.handle_conn_closed(20);
    assert_eq!(n.core.status(at(n.ms)).parked_waiters, 0);
    n.send(10, mutate(3, 10, 3, Op::Release { session: a, lock: "L".into() }));
    n.run_until(n.ms + 1_500);
    assert!(n.take(20).is_empty(), "nobody to answer");
    assert_eq!(n.core.state_machine().holder("L").map(|h| h.session), Some(b), "B got it");
}

#[test]
fn expire_without_log_lets_a_cut_off_leader_release_a_lock_alone() {
    let broken = |id| {
        let mut c = config(id);
        c.lock.testing_fault = Some(palisade_lock::LockTestingFault::ExpireWithoutLog);
        // A randomized timeout of 2–3 s, so that the others elect nobody (and expire
        // nothing) during the 1.5 s cut: the phi default would replace the leader within
        // 0.5 s.
        c.raft.election = palisade_raft::ElectionConfig::RandomizedTimeout {
            min: Duration::from_secs(2),
            max: Duration::from_secs(3),
        };
        c
    };
    let mut c = Three::with(broken);
    c.run_until(5_000);
    let leader = c.leader().expect("a leader");
    let ttl = Duration::from_secs(1);
    c.request(leader, 1, mutate(1, 10, 1, Op::OpenSession { ttl }));
    c.request(leader, 2, mutate(1, 20, 1, Op::OpenSession { ttl: Duration::from_secs(60) }));
    let sessions: Vec<SessionId> =
        c.cores[&leader].state_machine().sessions().map(|s| s.id).collect();
    let (a, b) = (sessions[0], sessions[1]);
    c.request(
        leader,
        1,
        mutate(2, 10, 2, Op::Acquire { session: a, lock: "L".into(), wait: false }),
    );
    c.request(
        leader,
        2,
        mutate(2, 20, 2, Op::Acquire { session: b, lock: "L".into(), wait: true }),
    );
    c.results();
    // One heartbeat (100 ms) later the followers know the grant is committed, and apply it.
    c.run_until(c.ms + 200);
    // Cut off, the leader still believes it leads for a while, and expires A on its own.
    c.cut = vec![leader];
    c.run_until(c.ms + 1_500);
    let old = &c.cores[&leader];
    assert!(old.is_leader(), "it has not noticed yet");
    assert!(old.state_machine().session(a).is_none(), "A expired in the cut-off leader's state");
    let others: Vec<&ServerCore<SimDisk>> =
        c.cores.iter().filter(|(id, _)| **id != leader).map(|(_, core)| core).collect();
    for core in others {
        assert_eq!(core.state_machine().holder("L").map(|h| h.session), Some(a), "still A's");
    }
}

/// Group commit across inputs (driver contract, `handle_batch`): N requests fed as one batch
/// share one fsync on the leader and are all answered; fed one by one they cost one each.
#[test]
fn a_batch_of_requests_shares_one_fsync() {
    const N: u64 = 50;
    let mut n = One::new();
    n.elect();
    let open = |client: u64| mutate(1, client, 1, Op::OpenSession { ttl: TTL });
    let syncs = n.core.wal().stats().syncs;
    let batch = (1..=N).map(|client| Input::ClientRequest { conn: client, request: open(client) });
    n.core.handle_batch(at(n.ms), batch);
    n.drain();
    assert_eq!(n.core.wal().stats().syncs - syncs, 1, "one fsync for the whole batch");
    for client in 1..=N {
        let answers = n.take(client);
        assert!(
            matches!(answers[..], [ReplyResult::Done(Ok(Reply::SessionOpened { .. }))]),
            "{client}: {answers:?}"
        );
    }
    let syncs = n.core.wal().stats().syncs;
    for client in N + 1..=2 * N {
        n.send(client, open(client));
    }
    assert_eq!(n.core.wal().stats().syncs - syncs, N, "one by one: one fsync each");
    // The commit index alone is not synced (drive.rs, `persist`): it is written with the next
    // batch's fsync.
    assert!(n.core.wal().needs_sync(), "the last commit index waits for the next sync");
    n.core.handle_shutdown();
    assert!(!n.core.wal().needs_sync(), "a graceful stop syncs it");
    let disk = n.disk.clone();
    let applied = n.core.applied_index();
    drop(n);
    disk.crash_lose_unsynced();
    let again = One::open_with(disk, config(1), 60_000);
    assert_eq!(again.core.applied_index(), applied, "replayed up to the last commit at open");
}

/// The same on three nodes: a batch of puts costs one fsync on the leader and one on each
/// follower for the append round that carries them; closing a connection inside a batch
/// forgets its answer.
#[test]
fn a_batch_replicates_in_one_append_round() {
    const N: u64 = 20;
    let mut c = Three::new();
    c.run_until(5_000);
    let leader = c.leader().expect("a leader");
    c.request(leader, 1, mutate(1, 10, 1, Op::OpenSession { ttl: Duration::from_secs(60) }));
    c.results();
    let syncs = |c: &Three| -> Vec<u64> {
        (1..=3).map(|id| c.cores[&id].wal().stats().syncs).collect::<Vec<_>>()
    };
    let before = syncs(&c);
    let mut batch: Vec<Input> = (0..N)
        .map(|i| {
            let request = mutate(i + 2, 100 + i, 1, Op::OpenSession { ttl: TTL });
            Input::ClientRequest { conn: 100 + i, request }
        })
        .collect();
    batch.push(Input::ConnClosed { conn: 100 });
    c.cores.get_mut(&leader).unwrap().handle_batch(at(c.ms), batch);
    let leader_syncs = c.cores[&leader].wal().stats().syncs - before[leader as usize - 1];
    assert_eq!(leader_syncs, 1, "the leader persisted the batch with one fsync");
    // Deliver the leader's appends only (one round), before the followers answer.
    let mut appends = Vec::new();
    while let Some(out) = c.cores.get_mut(&leader).unwrap().poll_output() {
        appends.push(out);
    }
    for out in appends {
        if let Output::Peer { to, msg } = out {
            c.cores.get_mut(&to).unwrap().handle_peer_message(at(c.ms), leader, msg);
        }
    }
    let after = syncs(&c);
    for id in (1..=3).filter(|id| *id != leader) {
        let i = id as usize - 1;
        assert_eq!(after[i] - before[i], 1, "follower {id}: one fsync for the round");
    }
    c.pump();
    c.run_until(c.ms + 500);
    let answered: Vec<u64> = c.replies.iter().map(|(_, conn, _)| *conn).collect();
    assert_eq!(answered.len() as u64, N - 1, "all but the closed connection: {answered:?}");
    assert!(!answered.contains(&100));
    let opened = |r: &(NodeId, ConnId, ClientReply)| {
        matches!(r.2.result, ReplyResult::Done(Ok(Reply::SessionOpened { .. })))
    };
    assert!(c.replies.iter().all(opened), "{:?}", c.replies);
    for (id, core) in &c.cores {
        let sessions = core.state_machine().sessions().count() as u64;
        assert_eq!(sessions, N + 1, "node {id} applied the whole batch");
    }
}
