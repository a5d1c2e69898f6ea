//! The node loop: one OS thread that owns the core and moves its inputs and outputs.
//!
//! Why one thread and not tasks: the core is a plain state machine that must see its inputs one
//! batch at a time, each with a fresh clock reading, and persist before anything it says leaves
//! the process. A dedicated thread that owns it outright needs no lock, never shares it with an
//! `await` point, and makes the order of everything it does the order of one loop:
//!
//! ```text
//! loop {
//!     wait for an input, at most until core.poll_timeout() (or the housekeeping tick);
//!     take every further input already queued (up to BATCH_INPUTS_MAX);
//!     now = SystemClock.now();
//!     core.handle_batch(now, peer messages + client requests + closed connections);
//!     answer the queries (status, time, drain) from the state after the batch;
//!     core.handle_timeout(now) if due;
//!     drain poll_output (Peer -> transport.send, Reply -> the request's oneshot)
//!       and poll_event (-> tracing and metrics);
//! }
//! ```
//!
//! **Group commit across requests.** Everything that queued while the previous batch was being
//! written goes into the next one, and `handle_batch` drives Raft once for all of it: N
//! concurrent requests cost one fsync on the leader and one per follower per append round, not
//! N. Under load the batches grow by themselves; idle, a batch is one request and nothing
//! waits for company.
//!
//! Inputs come on one bounded `std::sync::mpsc` channel ([`INPUTS_QUEUED_MAX`]): HTTP handlers
//! `try_send` (a full queue is answered `overloaded` at once), the peer forwarder thread
//! blocks (TCP flow control then pushes back on the peers). Replies go back on `tokio` oneshot
//! channels, which a plain thread can send on.

mod report;
mod rest;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use palisade_clock::{BoundConfig, Clock, ClockBound, MonoInstant, Now};
use palisade_node::lock::RequestId;
use palisade_node::raft::{Message, NodeId, Role};
use palisade_node::storage::FileDisk;
use palisade_node::{
    AdminError, ClientReply, ClientRequest, ConnId, Input as CoreInput, Output, ServerCore,
};
use tokio::sync::{oneshot, watch};

use crate::clock::SystemClock;
use crate::config::ServerConfig;
use crate::disk::TimedDisk;
use crate::error::ServerError;
use crate::metrics::Metrics;
use crate::status::{StatusView, TimeView};
use crate::transport::PeerTransport;

pub use rest::RestCall;
use rest::RestIds;

/// Most inputs waiting for the node thread; past it HTTP requests are answered `overloaded`.
pub const INPUTS_QUEUED_MAX: usize = 16_384;
/// Most inputs handled as one batch (one drive of the core).
pub const BATCH_INPUTS_MAX: usize = 1024;
/// Longest the loop sleeps without looking at the clock: metrics, the time bound and the
/// published role are refreshed at least this often.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(200);

/// The core as the server runs it: on the real data directory, with timed fsyncs.
pub type Core = ServerCore<TimedDisk<FileDisk>>;

/// A client request for the core.
#[derive(Debug)]
pub enum Request {
    /// A protocol request from `POST /v1/rpc`, passed as is.
    Rpc(ClientRequest),
    /// A REST call; the node thread turns it into a request, with `key` as its id (or a
    /// generated one, on a ready leader).
    Rest {
        /// The call.
        call: RestCall,
        /// The `Idempotency-Key`, if given.
        key: Option<RequestId>,
    },
}

/// The core's answer to one request, and the id it carried (REST calls retry with it).
#[derive(Debug)]
pub struct Answer {
    /// The reply.
    pub reply: ClientReply,
    /// The request id the call ran with (`None` for reads).
    pub id: Option<RequestId>,
}

/// `GET /v1/time`: the time-of-day interval of this node, as JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TimeReply {
    /// The interval and its status (see [`TimeView`]).
    #[serde(flatten)]
    pub view: TimeView,
    /// Half the interval's width, in milliseconds (`None` without a bound).
    pub error_ms: Option<f64>,
}

/// What the node thread takes in.
#[derive(Debug)]
pub enum Input {
    /// A message from a peer.
    Peer {
        /// The peer.
        from: NodeId,
        /// The message.
        msg: Message,
    },
    /// A client request on connection `conn`; the answer goes to `reply`.
    Request {
        /// The connection id (one per HTTP request).
        conn: ConnId,
        /// The request.
        request: Request,
        /// Where the answer goes.
        reply: oneshot::Sender<Answer>,
    },
    /// The HTTP request `conn` ended before its answer (timeout, client gone).
    ConnClosed(ConnId),
    /// The status of this node.
    Status(oneshot::Sender<StatusView>),
    /// The time interval of this node.
    Time(oneshot::Sender<TimeReply>),
    /// Hand leadership away (leader only).
    Drain(oneshot::Sender<Result<NodeId, AdminError>>),
    /// Stop the loop after this batch.
    Shutdown,
}

/// What the node thread publishes after every batch, for the HTTP side and the shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeSnapshot {
    /// This node's role.
    pub role: Role,
    /// Its term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Whether it is a leader that applied an entry of its own term.
    pub leader_ready: bool,
}

impl NodeSnapshot {
    fn of(core: &Core) -> NodeSnapshot {
        let raft = core.raft();
        NodeSnapshot {
            role: raft.role(),
            term: raft.term(),
            leader: raft.leader(),
            leader_ready: core.is_leader_ready(),
        }
    }
}

/// The node thread's state.
pub struct NodeLoop {
    core: Core,
    config: Arc<ServerConfig>,
    clock: SystemClock,
    transport: PeerTransport<Message>,
    metrics: Arc<Metrics>,
    pending: HashMap<ConnId, (oneshot::Sender<Answer>, Option<RequestId>)>,
    rest_ids: RestIds,
    bound: ClockBound,
    /// When the offset sample last synced into `bound` was taken (its age subtracted).
    bound_sample: Option<MonoInstant>,
    snapshot: watch::Sender<NodeSnapshot>,
    next_housekeeping: MonoInstant,
    counted_election_term: u64,
}

impl std::fmt::Debug for NodeLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeLoop").field("node", &self.core.id()).finish_non_exhaustive()
    }
}

impl NodeLoop {
    /// A loop around an opened core. `seed` seeds the ids of REST clients.
    pub fn new(
        core: Core,
        config: Arc<ServerConfig>,
        transport: PeerTransport<Message>,
        metrics: Arc<Metrics>,
        seed: u64,
    ) -> (NodeLoop, watch::Receiver<NodeSnapshot>) {
        let (snapshot, snapshot_rx) = watch::channel(NodeSnapshot::of(&core));
        let bound = ClockBound::new(config.drift_bound_ppm, BoundConfig::default());
        let node = NodeLoop {
            core,
            config,
            clock: SystemClock::new(),
            transport,
            metrics,
            pending: HashMap::new(),
            rest_ids: RestIds::new(seed),
            bound,
            bound_sample: None,
            snapshot,
            next_housekeeping: MonoInstant::ZERO,
            counted_election_term: 0,
        };
        (node, snapshot_rx)
    }

    /// Runs until a [`Input::Shutdown`], until every sender is gone, or until the core stops
    /// after a storage failure ([`ServerError::Stopped`]).
    pub fn run(mut self, inputs: Receiver<Input>) -> Result<(), ServerError> {
        self.flush();
        let mut batch = Vec::with_capacity(BATCH_INPUTS_MAX);
        loop {
            let wait = self.wait_time();
            match inputs.recv_timeout(wait) {
                Ok(input) => batch.push(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            while batch.len() < BATCH_INPUTS_MAX {
                match inputs.try_recv() {
                    Ok(input) => batch.push(input),
                    Err(_) => break,
                }
            }
            let now = self.clock.now();
            let shutdown = self.handle_inputs(now, &mut batch);
            if self.core.poll_timeout().is_some_and(|t| t <= now.mono) {
                self.core.handle_timeout(now);
            }
            self.flush();
            self.after_batch(now);
            if let Some(reason) = self.core.stopped() {
                tracing::error!(reason, "the node stopped after a storage failure");
                return Err(ServerError::Stopped(reason.to_owned()));
            }
            if shutdown {
                // The final fsync: the commit index, which batches write lazily.
                self.core.handle_shutdown();
                if let Some(reason) = self.core.stopped() {
                    return Err(ServerError::Stopped(reason.to_owned()));
                }
                return Ok(());
            }
        }
    }

    /// How long to wait for the next input.
    fn wait_time(&self) -> Duration {
        let now = self.clock.mono();
        let next = self
            .core
            .poll_timeout()
            .map_or(self.next_housekeeping, |t| t.min(self.next_housekeeping));
        next.saturating_duration_since(now).min(HOUSEKEEPING_INTERVAL)
    }

    /// Feeds the core's inputs as one batch, then answers the queries. Returns whether a
    /// shutdown was asked for.
    ///
    /// Peer messages go first, in a batch of their own, and their outputs are sent at once:
    /// on a leader they are mostly acknowledgements, whose commits apply and answer clients
    /// without an fsync (the commit index alone is not synced), so those answers do not wait
    /// behind the fsync of the new requests' entries, which form the second batch.
    fn handle_inputs(&mut self, now: Now, batch: &mut Vec<Input>) -> bool {
        let mut peer_inputs = Vec::with_capacity(batch.len());
        let mut client_inputs = Vec::new();
        let mut queries = Vec::new();
        let mut shutdown = false;
        for input in batch.drain(..) {
            match input {
                Input::Peer { from, msg } => peer_inputs.push(CoreInput::PeerMessage { from, msg }),
                Input::Request { conn, request, reply } => {
                    if let Some(input) = self.request(conn, request, reply) {
                        client_inputs.push(input);
                    }
                }
                Input::ConnClosed(conn) => {
                    if self.pending.remove(&conn).is_some() {
                        client_inputs.push(CoreInput::ConnClosed { conn });
                    }
                }
                Input::Shutdown => shutdown = true,
                query => queries.push(query),
            }
        }
        if !peer_inputs.is_empty() {
            self.core.handle_batch(now, peer_inputs);
            if !client_inputs.is_empty() {
                self.flush();
            }
        }
        if !client_inputs.is_empty() {
            self.core.handle_batch(now, client_inputs);
        }
        for query in queries {
            self.query(now, query);
        }
        shutdown
    }

    /// Registers the answer's destination and turns the request into a core input (or
    /// answers at once when a REST call cannot be built here).
    fn request(
        &mut self,
        conn: ConnId,
        request: Request,
        reply: oneshot::Sender<Answer>,
    ) -> Option<CoreInput> {
        let request = match request {
            Request::Rpc(request) => request,
            Request::Rest { call, key } => match self.rest_ids.build(&self.core, call, key) {
                Ok(request) => request,
                Err(result) => {
                    let reply_now = ClientReply { attempt: conn, result };
                    // The handler may be gone already; nothing to do then.
                    let _ = reply.send(Answer { reply: reply_now, id: key });
                    return None;
                }
            },
        };
        self.pending.insert(conn, (reply, request.id));
        Some(CoreInput::ClientRequest { conn, request })
    }

    fn query(&mut self, now: Now, query: Input) {
        // A dropped receiver means the HTTP request gave up: nothing to do.
        match query {
            Input::Status(reply) => {
                self.sync_time_bound(now);
                let status = self.core.status(now);
                let bounded = self.bound.now(now);
                let _ = reply.send(StatusView::from_node(&self.config, &status, &bounded));
            }
            Input::Time(reply) => {
                self.sync_time_bound(now);
                let _ = reply.send(self.time_reply(now));
            }
            Input::Drain(reply) => {
                let result = self.core.drain(now);
                match &result {
                    Ok(to) => tracing::info!(to, "draining: leadership transfer started"),
                    Err(e) => tracing::info!(error = %e, "drain refused"),
                }
                let _ = reply.send(result);
            }
            other => unreachable!("not a query: {other:?}"),
        }
    }

    /// Sends every output (all already durable) and reports every event.
    fn flush(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Peer { to, msg } => {
                    // Refused only after shutdown or for an unknown peer; Raft retransmits.
                    if let Err(e) = self.transport.send(to, msg) {
                        tracing::debug!(to, error = %e, "peer message not sent");
                    }
                }
                Output::Reply { conn, reply } => {
                    if let Some((sender, id)) = self.pending.remove(&conn) {
                        let _ = sender.send(Answer { reply, id });
                    }
                }
            }
        }
        while let Some(event) = self.core.poll_event() {
            report::log_event(self.core.id(), &event);
        }
    }

    /// Publishes the role, counts elections, and runs the housekeeping when due.
    fn after_batch(&mut self, now: Now) {
        let snapshot = NodeSnapshot::of(&self.core);
        self.snapshot.send_if_modified(|old| {
            let changed = *old != snapshot;
            *old = snapshot;
            changed
        });
        if snapshot.role == Role::Candidate && snapshot.term != self.counted_election_term {
            self.counted_election_term = snapshot.term;
            self.metrics.inc_elections();
        }
        self.rest_ids.observe_term(snapshot.term);
        if now.mono >= self.next_housekeeping {
            self.next_housekeeping = now.mono + HOUSEKEEPING_INTERVAL;
            self.sync_time_bound(now);
            report::set_metrics(&self.metrics, &self.core, &self.transport);
        }
    }

    /// Synchronises the time bound with the reference clock, the leader's: the leader is its
    /// own reference; a follower takes a fresh offset sample against the leader (Raft's
    /// ping/pong estimate, whose error already covers rtt/2 and the sample's age). An old
    /// sample is not synced again, so the status turns `free_running` when samples stop.
    fn sync_time_bound(&mut self, now: Now) {
        let raft = self.core.raft();
        if raft.role() == Role::Leader {
            self.bound.handle_sync(now, 0, Duration::ZERO);
            self.bound_sample = Some(now.mono);
            return;
        }
        let Some(leader) = raft.leader() else { return };
        let status = raft.status();
        let estimate = status.peers.iter().find(|p| p.id == leader).and_then(|p| p.offset);
        let Some(estimate) = estimate else { return };
        let taken = now.mono.saturating_sub(estimate.age);
        if self.bound_sample.is_some_and(|s| s >= taken) {
            return;
        }
        self.bound_sample = Some(taken);
        self.bound.handle_sync(now, estimate.offset_nanos, estimate.error);
    }

    fn time_reply(&self, now: Now) -> TimeReply {
        let bounded = self.bound.now(now);
        let error_ms = bounded.status.is_bounded().then_some(bounded.error.as_secs_f64() * 1e3);
        TimeReply { view: TimeView::from_bounded(&bounded), error_ms }
    }
}
