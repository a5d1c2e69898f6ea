//! Property tests of the state machine alone (design notes: "Locks and tokens", "Exactly once").
//!
//! Random command sequences — client requests, retried duplicates, stale retries, and leader
//! ops with current and stale bases — are applied in log order, and after every entry:
//! - every invariant of `check_invariants` holds;
//! - tokens strictly increase over the whole history (across all locks);
//! - at most one holder per lock at a time: a `Granted` only for a free lock, a `Released` only
//!   by the holder, and the event model always equals the state's holders;
//! - a duplicate of a client's last request (other than a keepalive, which renews again)
//!   returns the first response and changes nothing;
//! - a replica restored from a snapshot taken at any point behaves identically afterwards.

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_clock::HlcTimestamp;
use palisade_lock::{
    Applied, CheckpointEntry, Command, Event, Expect, Fence, LeaderOp, LockConfig,
    LockStateMachine, Op, Request, RequestId, Response, SessionId,
};
use proptest::prelude::*;

const LOCKS: [&str; 3] = ["a", "b", "c"];
const KEYS: [&str; 2] = ["k1", "k2"];

fn config() -> LockConfig {
    LockConfig { ttl_min: Duration::from_secs(1), ..LockConfig::default() }
}

/// Turns abstract actions into commands against the current state.
struct Driver {
    seqs: BTreeMap<u64, u64>,
    last: BTreeMap<u64, (Request, Response, Option<SessionId>)>,
    index: u64,
}

impl Driver {
    fn new() -> Self {
        Driver { seqs: BTreeMap::new(), last: BTreeMap::new(), index: 0 }
    }

    fn request(&mut self, client: u64, op: Op) -> Command {
        let seq = self.seqs.entry(client).or_insert(0);
        *seq += 1;
        let hlc = HlcTimestamp::new(self.index * 10, 0);
        let mut req = Request { id: RequestId { client, seq: *seq }, op };
        req.stamp_hlc(hlc);
        Command::Client(req)
    }

    fn fence(sm: &LockStateMachine, lock: &str, how: u8) -> Option<Fence> {
        let current = sm.holder(lock).map(|h| h.token);
        let token = match how % 4 {
            0 => return None,
            1 => current.unwrap_or(1),
            2 => current.map_or(sm.last_token(), |t| t.saturating_sub(1)),
            _ => sm.last_token() + 1,
        };
        Some(Fence { lock: lock.to_string(), token })
    }

    fn cas(sm: &LockStateMachine, key: String, lock: &str, c: u8) -> Op {
        let expected = match (c % 3, sm.get(&key)) {
            (0, _) => Expect::Absent,
            (1, Some(v)) => Expect::Version(v.version),
            (_, Some(v)) => Expect::Value(v.data.clone()),
            (_, None) => Expect::Value(vec![c]),
        };
        let fence = Self::fence(sm, lock, c / 3);
        Op::Cas { key, expected, value: vec![c], fence, hlc: HlcTimestamp::ZERO }
    }

    fn command(&mut self, sm: &LockStateMachine, action: (u8, u8, u8, u8)) -> Command {
        let (kind, a, b, c) = action;
        let client = u64::from(a % 4) + 1;
        let own = sm.session_of_client(client).unwrap_or(SessionId(u64::from(c)));
        let lock = LOCKS[usize::from(b) % LOCKS.len()];
        let key = KEYS[usize::from(b) % KEYS.len()].to_string();
        let sessions: Vec<_> = sm.sessions().map(|s| (s.id, s.basis, s.ttl)).collect();
        let hlc = HlcTimestamp::ZERO;
        match kind % 20 {
            0..=2 => {
                let ttl = match c % 6 {
                    0 => config().ttl_min,
                    5 => Duration::from_secs(9999), // above ttl_max: refused
                    _ => Duration::from_secs(30),
                };
                self.request(client, Op::OpenSession { ttl })
            }
            3 => self.request(client, Op::KeepAlive { session: own }),
            4 => self.request(client, Op::CloseSession { session: own }),
            5..=8 => {
                let op = Op::Acquire { session: own, lock: lock.into(), wait: c % 2 == 0 };
                self.request(client, op)
            }
            9 | 10 => self.request(client, Op::Release { session: own, lock: lock.into() }),
            11 | 12 => {
                let fence = Self::fence(sm, lock, c);
                self.request(client, Op::Put { key, value: vec![c], fence, hlc })
            }
            13 => {
                let op = Self::cas(sm, key, lock, c);
                self.request(client, op)
            }
            14 => {
                let fence = Self::fence(sm, lock, c);
                self.request(client, Op::Delete { key, fence, hlc })
            }
            15 => match self.last.get(&client) {
                Some((req, _, _)) => Command::Client(req.clone()),
                None => self.request(client, Op::KeepAlive { session: own }),
            },
            16 => {
                let seq = self.seqs.get(&client).copied().unwrap_or(1).saturating_sub(1);
                let op = Op::KeepAlive { session: own };
                Command::Client(Request { id: RequestId { client, seq }, op })
            }
            17 if !sessions.is_empty() => {
                let (session, basis, _) = sessions[usize::from(b) % sessions.len()];
                let basis = if c % 3 == 0 { basis.saturating_sub(1) } else { basis };
                Command::Leader(LeaderOp::ExpireSession { session, basis })
            }
            18 => {
                let delayed =
                    sm.locks().find_map(|(n, i)| i.delayed_since.map(|s| (n.to_string(), s)));
                let (lock, since) = delayed.unwrap_or((lock.to_string(), u64::from(c)));
                let since = if c % 4 == 0 { since + 1 } else { since };
                Command::Leader(LeaderOp::LockDelayOver { lock, since })
            }
            _ => {
                let lines = sessions
                    .iter()
                    .filter(|s| s.0.0 % 2 == u64::from(c % 2))
                    .map(|&(session, basis, ttl)| CheckpointEntry {
                        session,
                        basis: if b % 5 == 0 { basis + 1 } else { basis },
                        remaining: ttl / u32::from(b % 4 + 1),
                    })
                    .collect();
                Command::Leader(LeaderOp::Checkpoint(lines))
            }
        }
    }
}

/// Holders according to the events, checked against the rules at every event.
#[derive(Default)]
struct Model {
    holders: BTreeMap<String, SessionId>,
    last_token: u64,
}

impl Model {
    fn observe(&mut self, applied: &Applied) -> Result<(), TestCaseError> {
        for e in &applied.events {
            match e {
                Event::Granted { lock, session, token, .. } => {
                    prop_assert!(
                        *token > self.last_token,
                        "token {} after {}",
                        token,
                        self.last_token
                    );
                    self.last_token = *token;
                    let previous = self.holders.insert(lock.clone(), *session);
                    prop_assert!(previous.is_none(), "two holders of {}", lock);
                }
                Event::Released { lock, session, .. } => {
                    let holder = self.holders.remove(lock);
                    prop_assert_eq!(holder, Some(*session), "release by non-holder");
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn matches(&self, sm: &LockStateMachine) -> Result<(), TestCaseError> {
        let actual: BTreeMap<String, SessionId> = sm
            .locks()
            .filter_map(|(n, i)| i.holder.as_ref().map(|h| (n.to_string(), h.session)))
            .collect();
        prop_assert_eq!(&actual, &self.holders);
        Ok(())
    }
}

fn action() -> impl Strategy<Value = (u8, u8, u8, u8)> {
    (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_every_safety_property(
        actions in prop::collection::vec(action(), 1..250),
        snapshot_at in 0usize..250,
    ) {
        let mut sm = LockStateMachine::new(config());
        let mut driver = Driver::new();
        let mut model = Model::default();
        let mut log: Vec<(u64, Command)> = Vec::new();
        let mut outputs: Vec<Applied> = Vec::new();
        let mut restored: Option<(usize, LockStateMachine)> = None;
        for (step, &act) in actions.iter().enumerate() {
            if step == snapshot_at.min(actions.len() - 1) {
                let copy = LockStateMachine::restore(&sm.snapshot()).expect("restores");
                prop_assert_eq!(&copy, &sm);
                restored = Some((log.len(), copy));
            }
            let cmd = driver.command(&sm, act);
            driver.index += 1 + u64::from(act.1 / 64);
            let duplicate_of = match &cmd {
                Command::Client(r) => {
                    // A keepalive is never deduplicated, even when it reuses the id of
                    // another request (a client bug): it renews.
                    let keepalive = matches!(r.op, Op::KeepAlive { .. });
                    driver.last.get(&r.id.client).filter(|l| l.0.id == r.id && !keepalive).cloned()
                }
                _ => None,
            };
            let applied = sm.apply(driver.index, &cmd);
            prop_assert_eq!(sm.check_invariants(), Ok(()));
            model.observe(&applied)?;
            model.matches(&sm)?;
            if let (Command::Client(req), Some((_, response))) = (&cmd, &applied.response) {
                let session = sm.session_of_client(req.id.client);
                if let Some((_, first, first_session)) = duplicate_of {
                    if first_session.is_some() && first_session == session {
                        prop_assert_eq!(response, &first, "a duplicate gets the first result");
                        prop_assert!(applied.events.is_empty(), "a duplicate changes nothing");
                    }
                } else if req.id.seq == driver.seqs.get(&req.id.client).copied().unwrap_or(0)
                    && !matches!(req.op, Op::KeepAlive { .. })
                {
                    // Keepalives bypass the dedup slot (a repeat renews again), so only other
                    // requests are replayed as duplicates of "the last request".
                    driver.last.insert(req.id.client, (req.clone(), response.clone(), session));
                }
            }
            log.push((driver.index, cmd));
            outputs.push(applied);
        }
        // The restored replica, fed the same suffix, gives the same answers and the same state.
        let (from, mut copy) = restored.expect("a snapshot was taken");
        for ((index, cmd), expected) in log[from..].iter().zip(&outputs[from..]) {
            let applied = copy.apply(*index, cmd);
            prop_assert_eq!(&applied, expected);
        }
        prop_assert_eq!(copy.snapshot(), sm.snapshot());
    }
}

#[test]
fn encoded_commands_round_trip_and_garbage_never_panics() {
    let cmds = [
        Command::Client(Request {
            id: RequestId { client: 7, seq: 1 },
            op: Op::Put {
                key: "k".into(),
                value: vec![1, 2, 3],
                fence: Some(Fence { lock: "L".into(), token: 33 }),
                hlc: HlcTimestamp::new(5, 6),
            },
        }),
        Command::Leader(LeaderOp::Checkpoint(vec![CheckpointEntry {
            session: SessionId(3),
            basis: 9,
            remaining: Duration::from_millis(1500),
        }])),
    ];
    for cmd in &cmds {
        let bytes = cmd.encode().unwrap();
        assert_eq!(&Command::decode(&bytes).unwrap(), cmd);
        for cut in 0..bytes.len() {
            assert!(Command::decode(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Command::decode(&longer).is_err(), "trailing bytes are refused");
    }
}

proptest! {
    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut with_version = vec![palisade_lock::COMMAND_FORMAT_VERSION];
        with_version.extend_from_slice(&bytes);
        let _ = Command::decode(&bytes);
        if let Ok(cmd) = Command::decode(&with_version) {
            let _ = cmd.validate(&config());
        }
        let _ = LockStateMachine::restore(&bytes);
    }
}
