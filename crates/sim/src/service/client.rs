//! [`ClientProcess`]: a palisade client (`ClientCore`) and a small scripted workload.
//!
//! A script is a list of [`ScriptStep`]s run one after the other: an operation step starts
//! `delay` after the previous step finished (for an operation: after it completed). Tests can
//! also drive a client directly through `Simulation::invoke` with [`ClientProcess::submit`]
//! and [`ClientProcess::act`], and read its `ClientCore` at any time. Guarded writes (a fenced
//! put, a store write under a lock) behave like a careful application: they check the lock's
//! guard — held, lease safe — right before sending, and carry the grant's token. A pause
//! between that check and the write reaching its destination is exactly what the fence is
//! there for; the simulator's mid-handler pause produces it.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use palisade_clock::{MonoInstant, Now};
use palisade_node::lock::{LeaseState, Token};
use palisade_node::{ClientCore, ClientEvent, OpId, OpOutcome, UserOp};

use super::{ClientObs, ClientSpec, Msg, Obs, SvcCtx, node_proc};
use crate::{Boot, ProcId};

/// Something a scripted client does.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A client operation.
    Op(UserOp),
    /// A put through palisade's fenced kv with the token of the held lock `lock`; skipped if
    /// the lock is not held or the lease is not safe.
    FencedPut {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// The lock whose token fences the write.
        lock: String,
    },
    /// A write to an external store: under `lock` (its token, checked like a fenced put) or
    /// unfenced.
    StoreWrite {
        /// The store's process.
        store: ProcId,
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
        /// The lock whose token fences the write, if any.
        lock: Option<String>,
    },
    /// Turns keepalives off (the client stops renewing) or on.
    SetKeepalives(bool),
}

/// One step of a script.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptStep {
    /// Wait this long after the previous step finished.
    pub delay: Duration,
    /// What to do.
    pub action: Action,
}

impl ScriptStep {
    /// `action` after `delay`.
    pub fn after(delay: Duration, action: Action) -> ScriptStep {
        ScriptStep { delay, action }
    }

    /// `action` at once.
    pub fn now(action: Action) -> ScriptStep {
        ScriptStep { delay: Duration::ZERO, action }
    }
}

/// A simulated client.
#[derive(Debug)]
pub struct ClientProcess {
    core: ClientCore,
    script: VecDeque<ScriptStep>,
    next_step_at: Option<MonoInstant>,
    waiting_for: Option<OpId>,
    ops: BTreeMap<OpId, UserOp>,
    reported: (Option<LeaseState>, Option<MonoInstant>),
    next_write: u64,
    /// The outcomes of the latest operations, for tests and workloads to poll.
    completed: BTreeMap<OpId, OpOutcome>,
}

/// Most completed operations whose outcome [`ClientProcess::outcome`] still returns.
pub const COMPLETED_KEPT_MAX: usize = 4096;

impl ClientProcess {
    /// A client for `spec` (its script only in the first incarnation: a restarted client is a
    /// new client, with a new client id, that starts idle).
    pub fn boot(me: ProcId, spec: &ClientSpec, boot: Boot) -> ClientProcess {
        let client_id = ((u64::from(me.0) + 1) << 32) | u64::from(boot.incarnation);
        let core = ClientCore::new(spec.config.clone(), client_id, boot.seed, boot.now)
            .unwrap_or_else(|e| panic!("client {me}: {e}"));
        let script =
            if boot.incarnation == 0 { spec.script.clone().into() } else { VecDeque::new() };
        ClientProcess {
            core,
            script,
            next_step_at: None,
            waiting_for: None,
            ops: BTreeMap::new(),
            reported: (None, None),
            next_write: 1,
            completed: BTreeMap::new(),
        }
    }

    /// The client core.
    pub fn core(&self) -> &ClientCore {
        &self.core
    }

    /// The client core, mutably (follow with [`ClientProcess::flush`] inside an invoke).
    pub fn core_mut(&mut self) -> &mut ClientCore {
        &mut self.core
    }

    /// The outcome of operation `op`, once it completed (the latest [`COMPLETED_KEPT_MAX`]).
    pub fn outcome(&self, op: OpId) -> Option<&OpOutcome> {
        self.completed.get(&op)
    }

    /// Whether the script has run to its end (and its last operation completed).
    pub fn script_done(&self) -> bool {
        self.script.is_empty() && self.waiting_for.is_none()
    }

    /// Starts an operation now (outside the script).
    pub fn submit(&mut self, ctx: &mut SvcCtx<'_>, op: UserOp) -> OpId {
        let now = ctx.now();
        let id = self.core.submit(now, op.clone());
        self.ops.insert(id, op.clone());
        ctx.observe(Obs::Client(ClientObs::Invoked { op: id, user: op, at: now }));
        self.flush(ctx);
        id
    }

    /// Performs `action` now; returns the operation it started, if any.
    pub fn act(&mut self, ctx: &mut SvcCtx<'_>, action: Action) -> Option<OpId> {
        let now = ctx.now();
        match action {
            Action::Op(op) => Some(self.submit(ctx, op)),
            Action::FencedPut { key, value, lock } => match self.core.fence(&lock, now) {
                Ok(fence) => Some(self.submit(ctx, UserOp::Put { key, value, fence: Some(fence) })),
                Err(why) => {
                    let reason = format!("{why:?}");
                    ctx.observe(Obs::Client(ClientObs::WriteSkipped { key, reason }));
                    None
                }
            },
            Action::StoreWrite { store, key, value, lock } => {
                let token = match lock.map(|l| self.core.fence(&l, now)) {
                    None => None,
                    Some(Ok(fence)) => Some(fence.token),
                    Some(Err(why)) => {
                        let reason = format!("{why:?}");
                        ctx.observe(Obs::Client(ClientObs::WriteSkipped { key, reason }));
                        return None;
                    }
                };
                self.store_write(ctx, store, key, value, token);
                None
            }
            Action::SetKeepalives(on) => {
                self.core.set_keepalives_enabled(on);
                None
            }
        }
    }

    /// Appends steps to the script; an idle client starts them.
    pub fn push_script(&mut self, ctx: &mut SvcCtx<'_>, steps: Vec<ScriptStep>) {
        self.script.extend(steps);
        if self.waiting_for.is_none() && self.next_step_at.is_none() {
            self.schedule_next(ctx.now());
        }
        self.run_due_steps(ctx);
        self.flush(ctx);
    }

    fn store_write(
        &mut self,
        ctx: &mut SvcCtx<'_>,
        store: ProcId,
        key: String,
        value: Vec<u8>,
        token: Option<Token>,
    ) {
        let id = self.next_write;
        self.next_write += 1;
        let obs = ClientObs::StoreWriteSent { store, id, key: key.clone(), token };
        ctx.observe(Obs::Client(obs));
        ctx.send(store, Msg::StoreWrite { id, key, value, token });
    }

    pub(super) fn handle_start(&mut self, ctx: &mut SvcCtx<'_>) {
        self.schedule_next(ctx.now());
        self.run_due_steps(ctx);
        self.flush(ctx);
    }

    pub(super) fn handle_message(&mut self, ctx: &mut SvcCtx<'_>, from: ProcId, msg: Msg) {
        match msg {
            Msg::Reply(reply) => {
                self.core.handle_reply(ctx.now(), u64::from(from.0) + 1, *reply);
            }
            Msg::StoreAck { id, accepted } => {
                ctx.observe(Obs::Client(ClientObs::StoreAcked { id, accepted }));
            }
            _ => {}
        }
        self.flush(ctx);
        self.run_due_steps(ctx);
    }

    pub(super) fn handle_timeout(&mut self, ctx: &mut SvcCtx<'_>) {
        self.core.handle_timeout(ctx.now());
        self.flush(ctx);
        self.run_due_steps(ctx);
    }

    pub(super) fn poll_timeout(&self) -> Option<MonoInstant> {
        [self.core.poll_timeout(), self.next_step_at].into_iter().flatten().min()
    }

    fn schedule_next(&mut self, now: Now) {
        self.next_step_at = self.script.front().map(|s| now.mono + s.delay);
    }

    fn run_due_steps(&mut self, ctx: &mut SvcCtx<'_>) {
        while self.waiting_for.is_none() && self.next_step_at.is_some_and(|t| t <= ctx.now().mono) {
            let step = self.script.pop_front().expect("a step is scheduled");
            self.next_step_at = None;
            match self.act(ctx, step.action) {
                Some(op) if self.ops.contains_key(&op) => self.waiting_for = Some(op),
                _ => self.schedule_next(ctx.now()),
            }
        }
        self.flush(ctx);
    }

    /// Moves the core's transmissions to the network and its events to the observations.
    pub fn flush(&mut self, ctx: &mut SvcCtx<'_>) {
        let now = ctx.now();
        while let Some((node, req)) = self.core.poll_transmit() {
            ctx.send(node_proc(node), Msg::Request(Box::new(req)));
        }
        while let Some(event) = self.core.poll_event() {
            match event {
                ClientEvent::OpDone { op, outcome } => {
                    let user = self.ops.remove(&op).expect("every operation was submitted here");
                    if self.completed.len() == COMPLETED_KEPT_MAX {
                        self.completed.pop_first();
                    }
                    self.completed.insert(op, outcome.clone());
                    ctx.observe(Obs::Client(ClientObs::Completed { op, user, outcome, at: now }));
                    if self.waiting_for == Some(op) {
                        self.waiting_for = None;
                        self.schedule_next(now);
                    }
                }
                ClientEvent::Granted { lock, token } => {
                    ctx.observe(Obs::Client(ClientObs::Granted { lock, token }));
                }
                ClientEvent::LeaseChanged(_) => {}
            }
        }
        let lease = (self.core.lease_state(now), self.core.lease_valid_until());
        if lease != self.reported {
            self.reported = lease;
            let (state, valid_until) = lease;
            ctx.observe(Obs::Client(ClientObs::Lease { state, valid_until }));
        }
    }
}
