//! The background task that drives [`ClientCore`] over HTTP: a thin loop, no protocol logic.
//!
//! Why a task and a mutex, not a task and channels only: a lock guard must answer
//! `is_safe_now()` from the lease *at the moment it is asked*, not from the last state the task
//! happened to publish. So the core sits behind a `std::sync::Mutex` that the task and the
//! guards take briefly (never across an `.await`), and the task sleeps until the core's next
//! timer, a reply, or a new operation (a `Notify`).
//!
//! What the driver adds to the core is bookkeeping for honest error messages. Every attempt of
//! an operation gets a fate: *not run* (the connection could not be made, so nothing was sent;
//! or the node answered `NotLeader`/`Retry`, which mean "not applied by this attempt"), or
//! *maybe run* (anything else, including no answer yet). When the core gives up with
//! `Unknown`, an operation whose every attempt is *not run* did not happen, and the caller gets
//! the reason (no cluster reachable, no leader) instead of `Unknown`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use palisade_clock::{MonoInstant, Now, WallTime, duration_nanos};
use palisade_lock::{LeaseState, Op, SessionId};
use palisade_node::raft::NodeId;
use palisade_node::{
    ClientCore, ClientEvent, ClientReply, ClientRequest, OpId, OpOutcome, ReplyResult, RequestBody,
    RetryReason, UserOp,
};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::error::Error;
use crate::http::{Http, HttpFailure};

/// Most HTTP exchanges of one client in flight at once; a transmission past it is dropped (the
/// core retries it after its attempt timeout, with the same request id).
pub const HTTP_IN_FLIGHT_MAX: usize = 256;
/// Most attempts remembered per operation for its diagnosis (past it: "maybe run").
pub const ATTEMPTS_DIAGNOSED_MAX: usize = 64;
/// Most operations diagnosed at once (one in flight, one just finished).
const OPS_DIAGNOSED_MAX: usize = 16;
/// Most notes (endpoint: what went wrong) kept per operation.
const NOTES_MAX: usize = 8;
/// Extra time an HTTP exchange gets beyond the core's attempt timeout and long poll, so the
/// core's own timer, not the transport's, decides when to give up on an attempt.
const HTTP_SLACK: Duration = Duration::from_millis(500);
/// How long the driver sleeps when the core has no timer.
const IDLE_WAKE: Duration = Duration::from_secs(3600);

/// The origin of every monotonic reading of this process.
static MONO_ORIGIN: OnceLock<Instant> = OnceLock::new();

fn origin() -> Instant {
    *MONO_ORIGIN.get_or_init(Instant::now)
}

/// The OS clocks as the core's `Now` (monotonic from a process-wide origin).
pub(crate) fn now() -> Now {
    let mono = MonoInstant::from_nanos(duration_nanos(origin().elapsed()));
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(duration_nanos)
        .unwrap_or(0);
    Now { mono, wall: WallTime::from_nanos(wall) }
}

fn tokio_instant(at: MonoInstant) -> tokio::time::Instant {
    let at = origin().checked_add(Duration::from_nanos(at.as_nanos()));
    tokio::time::Instant::from_std(at.unwrap_or_else(|| Instant::now() + IDLE_WAKE))
}

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// Sent (or being sent), no answer: it may have run.
    Maybe,
    /// Certainly not applied by this attempt.
    NotRun,
}

/// What the driver saw of one operation's attempts.
#[derive(Debug, Clone)]
pub(crate) struct OpDiag {
    attempts: Vec<(u64, Fate)>,
    overflow: bool,
    no_leader: bool,
    all_not_sent: bool,
    notes: Vec<String>,
}

impl Default for OpDiag {
    fn default() -> OpDiag {
        OpDiag {
            attempts: Vec::new(),
            overflow: false,
            no_leader: false,
            all_not_sent: true,
            notes: Vec::new(),
        }
    }
}

impl OpDiag {
    fn note(&mut self, note: String) {
        if self.notes.len() == NOTES_MAX {
            self.notes.remove(0);
        }
        if !self.notes.contains(&note) {
            self.notes.push(note);
        }
    }

    /// Whether some attempt may have been applied.
    pub fn may_have_run(&self) -> bool {
        self.overflow || self.attempts.iter().any(|(_, f)| *f == Fate::Maybe)
    }

    /// Why the operation got no answer, for an operation that did not (or cannot) change state.
    pub fn error(&self, timeout: Duration) -> Error {
        let detail = if self.notes.is_empty() {
            "no answer from any node".to_string()
        } else {
            self.notes.join("; ")
        };
        if self.all_not_sent && !self.attempts.is_empty() {
            Error::NoClusterReachable { tried: self.notes.clone() }
        } else if self.no_leader {
            Error::NoLeader { detail }
        } else {
            Error::Timeout { timeout, detail }
        }
    }
}

/// How an operation ended, with what the driver saw of it.
#[derive(Debug)]
pub(crate) struct OpResult {
    pub outcome: OpOutcome,
    pub diag: OpDiag,
}

/// A reply (or its absence) from one HTTP exchange.
struct Arrival {
    node: NodeId,
    attempt: u64,
    result: Result<ClientReply, HttpFailure>,
}

/// Everything the task and the API share, behind the mutex.
pub(crate) struct State {
    pub core: ClientCore,
    pending: HashMap<OpId, oneshot::Sender<OpResult>>,
    diags: BTreeMap<OpId, OpDiag>,
    /// The lease of the current session, for its guards.
    pub lease: Option<(SessionId, watch::Sender<LeaseState>)>,
    /// The last session that was opened (kept after it is lost, for error messages).
    pub last_session: Option<SessionId>,
    closed: bool,
}

/// The driver's shared half.
pub(crate) struct Shared {
    state: Mutex<State>,
    wake: Notify,
    http: Http,
    in_flight: AtomicUsize,
    /// Node id to base URL.
    pub endpoints: BTreeMap<NodeId, String>,
    pub attempt_timeout: Duration,
    pub op_timeout: Duration,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("endpoints", &self.endpoints).finish_non_exhaustive()
    }
}

impl Shared {
    /// Starts the driver task for `core`.
    pub fn start(
        core: ClientCore,
        http: Http,
        endpoints: BTreeMap<NodeId, String>,
        attempt_timeout: Duration,
        op_timeout: Duration,
    ) -> Arc<Shared> {
        let state = State {
            core,
            pending: HashMap::new(),
            diags: BTreeMap::new(),
            lease: None,
            last_session: None,
            closed: false,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            wake: Notify::new(),
            http,
            in_flight: AtomicUsize::new(0),
            endpoints,
            attempt_timeout,
            op_timeout,
        });
        let (arrivals_tx, arrivals) = mpsc::unbounded_channel();
        tokio::spawn(run(Arc::clone(&shared), arrivals_tx, arrivals));
        shared
    }

    /// The shared state (never held across an `.await`).
    pub fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the core in an unknown state: stop there too.
        self.state.lock().expect("the client state is not poisoned")
    }

    /// The HTTP transport.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// Submits `op` and waits for its end.
    pub async fn call(&self, op: UserOp) -> Result<OpResult, Error> {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state();
            if state.closed {
                return Err(Error::Closed);
            }
            let id = state.core.submit(now(), op);
            state.pending.insert(id, tx);
        }
        self.wake.notify_one();
        rx.await.map_err(|_| Error::Closed)
    }

    /// Runs `f` on the core and wakes the task (its timers may have changed).
    pub fn with_core<T>(&self, f: impl FnOnce(&mut ClientCore) -> T) -> T {
        let value = f(&mut self.state().core);
        self.wake.notify_one();
        value
    }

    /// Stops the task; pending operations end with [`Error::Closed`].
    pub fn close(&self) {
        // Also called from `Drop`: a poisoned lock must not turn into a second panic.
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        state.closed = true;
        state.pending.clear();
        if let Some((_, lease)) = state.lease.take() {
            lease.send_replace(LeaseState::Lost);
        }
        drop(state);
        self.wake.notify_one();
    }
}

/// The task: move transmissions out, replies in, fire timers, deliver events.
async fn run(
    shared: Arc<Shared>,
    arrivals_tx: mpsc::UnboundedSender<Arrival>,
    mut arrivals: mpsc::UnboundedReceiver<Arrival>,
) {
    loop {
        let next = {
            let mut state = shared.state();
            if state.closed {
                return;
            }
            flush(&shared, &mut state, &arrivals_tx);
            state.core.poll_timeout()
        };
        let sleep_until =
            next.map_or_else(|| tokio::time::Instant::now() + IDLE_WAKE, tokio_instant);
        tokio::select! {
            arrival = arrivals.recv() => {
                let Some(arrival) = arrival else { return };
                shared.state().handle_arrival(arrival);
            }
            _ = tokio::time::sleep_until(sleep_until) => {
                shared.state().core.handle_timeout(now());
            }
            _ = shared.wake.notified() => {
                shared.state().core.handle_timeout(now());
            }
        }
    }
}

/// Sends every queued transmission and delivers every event.
fn flush(shared: &Arc<Shared>, state: &mut State, arrivals: &mpsc::UnboundedSender<Arrival>) {
    while let Some((node, request)) = state.core.poll_transmit() {
        let keepalive = matches!(request.body, RequestBody::Mutate(Op::KeepAlive { .. }));
        if !keepalive && let Some(op) = state.core.in_flight() {
            state.record_attempt(op, request.attempt);
        }
        send(shared, node, request, arrivals);
    }
    while let Some(event) = state.core.poll_event() {
        match event {
            ClientEvent::OpDone { op, outcome } => {
                let diag = state.diags.remove(&op).unwrap_or_default();
                state.note_session(&outcome);
                if let Some(tx) = state.pending.remove(&op) {
                    let _ = tx.send(OpResult { outcome, diag });
                }
            }
            ClientEvent::LeaseChanged(lease) => {
                tracing::debug!(?lease, "lease changed");
                if let Some((_, tx)) = &state.lease {
                    tx.send_replace(lease);
                }
            }
            ClientEvent::Granted { lock, token } => tracing::debug!(lock, token, "granted"),
        }
    }
}

/// Spawns one HTTP exchange for `request` to `node`.
fn send(
    shared: &Arc<Shared>,
    node: NodeId,
    request: ClientRequest,
    arrivals: &mpsc::UnboundedSender<Arrival>,
) {
    let Some(base) = shared.endpoints.get(&node).cloned() else {
        tracing::warn!(node, "no endpoint for node; the attempt will time out");
        return;
    };
    if shared.in_flight.fetch_add(1, Ordering::Relaxed) >= HTTP_IN_FLIGHT_MAX {
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        tracing::warn!(node, "too many HTTP exchanges in flight; attempt dropped");
        return;
    }
    let timeout = shared.attempt_timeout + request.wait.unwrap_or_default() + HTTP_SLACK;
    let (shared, arrivals) = (Arc::clone(shared), arrivals.clone());
    tokio::spawn(async move {
        let attempt = request.attempt;
        let result = shared.http().post(&base, "/v1/rpc", &request, timeout).await;
        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
        let _ = arrivals.send(Arrival { node, attempt, result });
    });
}

impl State {
    fn record_attempt(&mut self, op: OpId, attempt: u64) {
        if !self.diags.contains_key(&op) && self.diags.len() == OPS_DIAGNOSED_MAX {
            self.diags.pop_first();
        }
        let diag = self.diags.entry(op).or_default();
        if diag.attempts.len() == ATTEMPTS_DIAGNOSED_MAX {
            diag.overflow = true;
        } else {
            diag.attempts.push((attempt, Fate::Maybe));
        }
    }

    fn diag_of(&mut self, attempt: u64) -> Option<(&mut OpDiag, usize)> {
        self.diags.values_mut().find_map(|d| {
            let i = d.attempts.iter().position(|(a, _)| *a == attempt)?;
            Some((d, i))
        })
    }

    fn handle_arrival(&mut self, arrival: Arrival) {
        let Arrival { node, attempt, result } = arrival;
        let endpoint = format!("node {node}");
        let (fate, note, reply) = match result {
            Ok(reply) => {
                let fate = match &reply.result {
                    ReplyResult::NotLeader { .. } | ReplyResult::Retry { .. } => Fate::NotRun,
                    _ => Fate::Maybe,
                };
                let note = match &reply.result {
                    ReplyResult::NotLeader { leader: None } => {
                        Some(format!("{endpoint}: not the leader, knows of none"))
                    }
                    ReplyResult::Retry { reason } => {
                        Some(format!("{endpoint}: retry ({reason:?})"))
                    }
                    _ => None,
                };
                (fate, note, Some(reply))
            }
            Err(HttpFailure::Status(429, _)) => {
                // The node's input queue is full: nothing was done, like its own `Retry`.
                let result = ReplyResult::Retry { reason: RetryReason::Overloaded };
                let note = format!("{endpoint}: overloaded");
                (Fate::NotRun, Some(note), Some(ClientReply { attempt, result }))
            }
            Err(failure @ HttpFailure::NotSent(_)) => {
                (Fate::NotRun, Some(format!("{endpoint}: {}", failure.describe())), None)
            }
            Err(failure) => {
                (Fate::Maybe, Some(format!("{endpoint}: {}", failure.describe())), None)
            }
        };
        let no_leader = matches!(
            reply.as_ref().map(|r| &r.result),
            Some(ReplyResult::NotLeader { leader: None })
        );
        if let Some((diag, i)) = self.diag_of(attempt) {
            diag.attempts[i].1 = fate;
            diag.no_leader |= no_leader;
            if reply.is_some() || fate == Fate::Maybe {
                diag.all_not_sent = false;
            }
            if let Some(note) = note {
                diag.note(note);
            }
        }
        match reply {
            Some(reply) => self.core.handle_reply(now(), node, reply),
            // Never delivered: the core moves on now instead of at the attempt's timeout.
            None if fate == Fate::NotRun => self.core.handle_unreachable(now(), attempt),
            None => {}
        }
    }

    /// Tracks the session an `OpenSession` opened, and gives it a fresh lease channel.
    fn note_session(&mut self, outcome: &OpOutcome) {
        use palisade_lock::{Outcome, Refused, Reply};
        let session = match outcome {
            Outcome::Done(ReplyResult::Done(Ok(Reply::SessionOpened { session, .. })))
            | Outcome::Done(ReplyResult::Done(Err(Refused::SessionExists { session }))) => *session,
            _ => return,
        };
        if self.lease.as_ref().is_some_and(|(s, _)| *s == session) {
            return;
        }
        if let Some((_, old)) = self.lease.take() {
            old.send_replace(LeaseState::Lost);
        }
        let current = self.core.lease_state(now()).unwrap_or(LeaseState::Pending);
        self.lease = Some((session, watch::channel(current).0));
        self.last_session = Some(session);
    }
}
