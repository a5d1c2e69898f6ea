//! [`RaftClient`]: the workload, a client that never stops proposing.
//!
//! Every `interval` of its clock it sends a new command to the server it believes leads
//! (unless `outstanding_max` commands are already waiting), and re-sends a command that got
//! no answer within `retry_after`, to the next server in turn. A rejection that names a leader
//! redirects it there after a short back-off (so two servers with stale views cannot bounce it
//! at network speed). A command is *acknowledged* when a server that applied it answers
//! `Committed`: only then does the client report [`RaftObs::Acked`], and from then on the
//! durability checker demands that the command stays at that index forever.
//!
//! A retried command may be committed twice, at two indexes (there is no deduplication at
//! this layer: that is the lock service's job). Each acknowledgement names the index it is
//! about, so the checkers are not confused by it.

use std::collections::BTreeMap;
use std::time::Duration;

use palisade_clock::MonoInstant;
use palisade_raft::Payload;

use crate::raft::msg::{RaftObs, SimMsg, payload_hash};
use crate::{Ctx, ProcId};

/// Back-off before following a redirect.
const REDIRECT_BACKOFF: Duration = Duration::from_millis(10);
/// Back-off before trying another server after a rejection that named no leader.
const UNKNOWN_LEADER_BACKOFF: Duration = Duration::from_millis(50);

/// How the client behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Number of servers (process ids `0..servers`).
    pub servers: u32,
    /// A new command every this long.
    pub interval: Duration,
    /// Re-send a command unanswered for this long.
    pub retry_after: Duration,
    /// Most commands waiting for an answer at once.
    pub outstanding_max: usize,
}

/// A command waiting for its acknowledgement.
#[derive(Clone, Debug)]
struct Outstanding {
    command: Vec<u8>,
    payload: u64,
    resend_at: MonoInstant,
    /// `resend_at` is a back-off after a rejection, not the end of a wait for an answer.
    backing_off: bool,
}

/// The proposing client: see the module documentation.
#[derive(Debug)]
pub struct RaftClient {
    cfg: ClientConfig,
    next_seq: u64,
    target: u32,
    outstanding: BTreeMap<u64, Outstanding>,
    next_tick: Option<MonoInstant>,
    acked: u64,
    sends: u64,
}

impl RaftClient {
    /// A client that has proposed nothing yet.
    ///
    /// # Panics
    /// If there are no servers or the interval is zero.
    pub fn new(cfg: ClientConfig) -> RaftClient {
        assert!(cfg.servers > 0, "a client needs servers");
        assert!(!cfg.interval.is_zero(), "the proposal interval must be positive");
        assert!(cfg.outstanding_max > 0, "outstanding_max must be positive");
        RaftClient {
            cfg,
            next_seq: 0,
            target: 0,
            outstanding: BTreeMap::new(),
            next_tick: None,
            acked: 0,
            sends: 0,
        }
    }

    /// The sequence number the next new command will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Commands acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Proposals sent so far (first sends and re-sends).
    pub fn sends(&self) -> u64 {
        self.sends
    }

    /// Starts the proposal clock.
    pub fn handle_start(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>) {
        self.next_tick = Some(ctx.now().mono + self.cfg.interval);
    }

    /// An answer from a server.
    pub fn handle_message(
        &mut self,
        ctx: &mut Ctx<'_, SimMsg, RaftObs>,
        from: ProcId,
        msg: SimMsg,
    ) {
        let now = ctx.now().mono;
        match msg {
            SimMsg::Committed { seq, index, term } => {
                if let Some(o) = self.outstanding.remove(&seq) {
                    self.acked += 1;
                    self.target = from.0;
                    ctx.observe(RaftObs::Acked { seq, index, term, payload: o.payload });
                }
            }
            SimMsg::Rejected { seq, leader } => {
                let Some(o) = self.outstanding.get_mut(&seq) else { return };
                match leader.filter(|&l| l < self.cfg.servers && l != from.0) {
                    Some(l) => {
                        self.target = l;
                        o.resend_at = now + REDIRECT_BACKOFF;
                        o.backing_off = true;
                    }
                    None => {
                        if self.target == from.0 {
                            self.target = (from.0 + 1) % self.cfg.servers;
                        }
                        o.resend_at = now + UNKNOWN_LEADER_BACKOFF;
                        o.backing_off = true;
                    }
                }
            }
            SimMsg::Raft(_) | SimMsg::Propose { .. } => {}
        }
    }

    /// Proposes a new command when its tick is due, and re-sends overdue ones.
    pub fn handle_timeout(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>) {
        let now = ctx.now().mono;
        let overdue: Vec<u64> =
            self.outstanding.iter().filter(|(_, o)| o.resend_at <= now).map(|(&s, _)| s).collect();
        if overdue.iter().any(|s| !self.outstanding[s].backing_off) {
            // Unanswered for a whole retry period (not a back-off): try another server.
            self.target = (self.target + 1) % self.cfg.servers;
        }
        for seq in overdue {
            self.send(ctx, seq, now);
        }
        if self.next_tick.is_some_and(|t| t <= now) {
            if self.outstanding.len() < self.cfg.outstanding_max {
                let seq = self.next_seq;
                self.next_seq += 1;
                let mut command = seq.to_le_bytes().to_vec();
                command.extend_from_slice(&ctx.me().0.to_le_bytes());
                let payload = payload_hash(&Payload::Command(command.clone()));
                self.outstanding.insert(
                    seq,
                    Outstanding { command, payload, resend_at: now, backing_off: false },
                );
                self.send(ctx, seq, now);
            }
            self.next_tick = Some(now + self.cfg.interval);
        }
    }

    fn send(&mut self, ctx: &mut Ctx<'_, SimMsg, RaftObs>, seq: u64, now: MonoInstant) {
        let o = self.outstanding.get_mut(&seq).expect("outstanding");
        o.resend_at = now + self.cfg.retry_after;
        o.backing_off = false;
        self.sends += 1;
        let msg = SimMsg::Propose { seq, command: o.command.clone() };
        ctx.send(ProcId(self.target), msg);
    }

    /// The next tick or re-send.
    pub fn poll_timeout(&self) -> Option<MonoInstant> {
        let resend = self.outstanding.values().map(|o| o.resend_at).min();
        match (self.next_tick, resend) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
