//! Shared test harness: one replica (state machine + tracker) driven like a leader would.
#![allow(dead_code)]

pub mod world;

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_clock::{HlcTimestamp, MonoInstant, Now, WallTime};
use palisade_lock::{
    Applied, Command, Fence, LeaderOp, LockConfig, LockStateMachine, Op, Reply, Request, RequestId,
    Response, SessionId, SessionTracker,
};
use palisade_raft::LogIndex;

/// `ms` milliseconds as a `Now` (wall clock unused by the lock service's safety).
pub fn ms(ms: u64) -> Now {
    Now::new(MonoInstant::from_nanos(ms * 1_000_000), WallTime::from_nanos(ms * 1_000_000))
}

/// A replica that is also the leader: applies commands at consecutive indices, feeds the
/// tracker, and proposes (applies) whatever the tracker asks for.
pub struct Replica {
    pub sm: LockStateMachine,
    pub tracker: SessionTracker,
    pub index: LogIndex,
    pub now: Now,
    seqs: BTreeMap<u64, u64>,
    pub log: Vec<(LogIndex, Command, Applied)>,
    /// Run the full invariant check and keep the log after every entry (off for bulk tests).
    pub thorough: bool,
}

impl Replica {
    pub fn new(config: LockConfig) -> Self {
        Replica {
            sm: LockStateMachine::new(config.clone()),
            tracker: SessionTracker::new(config),
            index: 0,
            now: ms(0),
            seqs: BTreeMap::new(),
            log: Vec::new(),
            thorough: true,
        }
    }

    /// A replica for bulk tests: invariants are checked at the end only (call `finish`).
    pub fn bulk(config: LockConfig) -> Self {
        Replica { thorough: false, ..Replica::new(config) }
    }

    /// The full invariant check, once.
    pub fn finish(&self) {
        self.sm.check_invariants().expect("invariants hold");
    }

    /// Become a ready leader at the current time.
    pub fn lead(&mut self) {
        self.tracker.handle_role(self.now, true, true);
    }

    /// Skip indices (Raft no-ops, other entries) so the next entry gets `next`.
    pub fn next_index_is(&mut self, next: LogIndex) {
        assert!(next > self.index);
        self.index = next - 1;
    }

    pub fn apply(&mut self, cmd: Command) -> Applied {
        self.index += 1;
        let applied = self.sm.apply(self.index, &cmd);
        self.tracker.handle_applied(self.now, &applied);
        if self.thorough {
            self.sm.check_invariants().expect("invariants hold after every entry");
            self.log.push((self.index, cmd, applied.clone()));
        }
        applied
    }

    pub fn request(&mut self, client: u64, op: Op) -> Response {
        let seq = self.seqs.entry(client).or_insert(0);
        *seq += 1;
        let id = RequestId { client, seq: *seq };
        let mut req = Request { id, op };
        req.stamp_hlc(HlcTimestamp::new(self.now.wall.as_nanos(), 0));
        self.apply(Command::Client(req)).response.expect("client entry").1
    }

    pub fn open(&mut self, client: u64, ttl: Duration) -> SessionId {
        match self.request(client, Op::OpenSession { ttl }) {
            Ok(Reply::SessionOpened { session, .. }) => session,
            other => panic!("open session: {other:?}"),
        }
    }

    pub fn put(&mut self, client: u64, key: &str, value: &[u8], fence: Option<Fence>) -> Response {
        let hlc = HlcTimestamp::ZERO;
        self.request(client, Op::Put { key: key.into(), value: value.to_vec(), fence, hlc })
    }

    /// Lets time pass until `until`, waking at every `poll_timeout` like a driver would, and
    /// committing (applying) every op the tracker proposes.
    pub fn run_until(&mut self, until: Now) -> Vec<LeaderOp> {
        let mut proposed = Vec::new();
        loop {
            let wake = self.tracker.poll_timeout().map_or(until.mono, |t| t.min(until.mono));
            let wake = wake.max(self.now.mono);
            self.now = Now::new(wake, WallTime::from_nanos(wake.as_nanos()));
            let ops = self.tracker.handle_timeout(self.now);
            for op in ops {
                proposed.push(op.clone());
                self.apply(Command::Leader(op));
            }
            if wake >= until.mono {
                return proposed;
            }
        }
    }
}
