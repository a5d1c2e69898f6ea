//! [`Client`]: the async API over the driver.
//!
//! Every method turns into one or a few [`UserOp`]s of the core and translates the answer:
//! the state machine's refusals become [`Error`] variants that say what to do, a mutation whose
//! outcome the core could not learn becomes [`Outcome::Unknown`] (unless the driver can prove
//! no attempt ran, in which case the reason is the error), and a read without an answer is an
//! error (a read changes nothing, so there is nothing to be unknown about).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use palisade_clock::HlcTimestamp;
use palisade_lock::{
    Expect, Fence, LeaseState, LockInfo, Outcome, Refused, Reply, SessionId, Value,
};
use palisade_node::config::LONG_POLL_WAIT_MAX;
use palisade_node::raft::NodeId;
use palisade_node::{
    ClientConfig, ClientCore, ClientRequest, Consistency, ReadOp, ReadReply, ReplyResult,
    RequestBody, UserOp,
};

use crate::driver::{Shared, now};
use crate::error::Error;
use crate::guard::LockGuard;
use crate::http::Http;
use crate::options::{
    ClientOptions, LOCK_WAIT_MAX, check_key, check_lock_name, check_value, endpoint_url,
};
use crate::seed::fresh_u64;

/// A palisade client: one cluster, at most one session at a time, any number of locks in it.
/// Cheap to clone (all clones share one background task and one session).
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    /// Stops the background task when the last clone (or guard) is dropped.
    _owner: Arc<CloseOnDrop>,
}

/// Closes the driver when dropped.
#[derive(Debug)]
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The subset of `GET /v1/status` the client needs to find every member.
#[derive(Debug, serde::Deserialize)]
struct MembersView {
    node_id: NodeId,
    members: Vec<MemberAddr>,
}

#[derive(Debug, serde::Deserialize)]
struct MemberAddr {
    id: NodeId,
    http_addr: String,
}

/// One node's status, or why it could not be read.
#[derive(Debug, Clone)]
pub struct NodeReport {
    /// The node.
    pub node: NodeId,
    /// Its base URL.
    pub endpoint: String,
    /// Its status.
    pub status: Result<Box<palisade_node::NodeStatus>, String>,
}

/// A node's time-of-day uncertainty interval (`GET /v1/time`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct TimeReading {
    /// No earlier than this (ms since the Unix epoch); `None` when the node has no bound.
    pub earliest_unix_ms: Option<u64>,
    /// No later than this; `None` when the node has no bound.
    pub latest_unix_ms: Option<u64>,
    /// `synchronized`, `free_running`, `unknown` or `disrupted`.
    pub status: String,
    /// Half the interval's width, in milliseconds.
    pub error_ms: Option<f64>,
    /// The node that answered (filled in by the client).
    #[serde(default)]
    pub node: NodeId,
}

/// What a drain request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainResult {
    /// The node led and started handing its leadership to this voter.
    TransferredTo(NodeId),
    /// The node is not the leader (it can be restarted without a transfer); the leader it
    /// knows of.
    NotLeader(Option<NodeId>),
}

impl Client {
    /// Connects: asks the endpoints (concurrently) for the member list and starts the
    /// background task. Fails with [`Error::NoClusterReachable`] listing every endpoint tried.
    pub async fn connect(options: ClientOptions) -> Result<Client, Error> {
        let urls = options.validate()?;
        let http = Http::new();
        let endpoints = discover(&http, &urls, options.connect_timeout).await?;
        let servers: Vec<NodeId> = endpoints.keys().copied().collect();
        let mut config = ClientConfig::new(servers, options.ttl);
        config.attempt_timeout = options.attempt_timeout;
        config.op_timeout = options.op_timeout;
        config.drift_bound_ppm = options.drift_bound_ppm;
        let client_id = loop {
            let id = fresh_u64();
            if id != 0 {
                break id;
            }
        };
        let core = ClientCore::new(config, client_id, fresh_u64(), now())
            .map_err(|e| Error::BadInput(e.to_string()))?;
        let shared =
            Shared::start(core, http, endpoints, options.attempt_timeout, options.op_timeout);
        let owner = Arc::new(CloseOnDrop(Arc::clone(&shared)));
        Ok(Client { shared, _owner: owner })
    }

    /// This client's id (the first half of every request id).
    pub fn client_id(&self) -> u64 {
        self.shared.state().core.client_id()
    }

    /// The members, by node id, with their base URLs.
    pub fn members(&self) -> &BTreeMap<NodeId, String> {
        &self.shared.endpoints
    }

    /// The open session, if any.
    pub fn session(&self) -> Option<SessionId> {
        self.shared.state().core.session()
    }

    /// The session lease's state now (`None` before the first session).
    pub fn lease_state(&self) -> Option<LeaseState> {
        self.shared.state().core.lease_state(now())
    }

    /// Turns the background keepalives off (to let the session expire, in tests) or on.
    pub fn set_keepalives_enabled(&self, enabled: bool) {
        self.shared.with_core(|core| core.set_keepalives_enabled(enabled));
    }

    /// Stops the background task (dropping the last clone and guard does too). Locks stay
    /// held until the session expires on the server (release them, or close the session,
    /// first).
    pub fn shutdown(&self) {
        self.shared.close();
    }

    /// Submits `op` and returns its final answer; a mutation that may have run without the
    /// client learning the outcome is `Unknown`, one that certainly did not run is the error
    /// saying why.
    pub(crate) async fn call(&self, op: UserOp) -> Result<Outcome<ReplyResult>, Error> {
        let result = self.shared.call(op).await?;
        match result.outcome {
            Outcome::Unknown if result.diag.may_have_run() => Ok(Outcome::Unknown),
            Outcome::Unknown => Err(result.diag.error(self.shared.op_timeout)),
            Outcome::Done(ReplyResult::Invalid(reason)) => Err(self.invalid(reason)),
            Outcome::Done(ReplyResult::Done(Err(refused))) => Err(self.refusal(refused)),
            Outcome::Done(answer) => Ok(Outcome::Done(answer)),
        }
    }

    /// A read: an answer, or an error (never `Unknown`).
    async fn read(&self, op: UserOp) -> Result<ReadReply, Error> {
        let result = self.shared.call(op).await?;
        match result.outcome {
            Outcome::Unknown => Err(result.diag.error(self.shared.op_timeout)),
            Outcome::Done(ReplyResult::Read(read)) => Ok(read),
            Outcome::Done(ReplyResult::Invalid(reason)) => Err(self.invalid(reason)),
            Outcome::Done(other) => Err(unexpected(&other)),
        }
    }

    fn invalid(&self, reason: String) -> Error {
        if reason == "no open session" {
            return self.session_error();
        }
        Error::BadInput(reason)
    }

    /// `SessionExpired` if a session was opened before, else `NoSession`.
    pub(crate) fn session_error(&self) -> Error {
        match self.shared.state().last_session {
            Some(session) => Error::SessionExpired { session },
            None => Error::NoSession,
        }
    }

    pub(crate) fn refusal(&self, refused: Refused) -> Error {
        match refused {
            Refused::Fence(rejection) => Error::StaleFence(rejection),
            Refused::CasMismatch { current } => Error::CasMismatch { current },
            Refused::NoSession { .. }
            | Refused::UnknownSession { .. }
            | Refused::NotSessionOwner { .. } => self.session_error(),
            Refused::NotHolder { lock, .. } => Error::NotHolder { lock },
            other => Error::BadInput(other.to_string()),
        }
    }

    /// Opens the session (TTL from the options). After a lost session this opens a new one.
    pub async fn open_session(&self) -> Result<SessionId, Error> {
        // An OpenSession whose answer was lost is retried once: if it did run, the retry
        // answers `SessionExists` and the client adopts that session.
        for _ in 0..2 {
            match self.call(UserOp::OpenSession).await? {
                Outcome::Done(ReplyResult::Done(Ok(Reply::SessionOpened { session, .. }))) => {
                    return Ok(session);
                }
                Outcome::Done(other) => return Err(unexpected(&other)),
                Outcome::Unknown => continue,
            }
        }
        Err(Error::Timeout {
            timeout: self.shared.op_timeout,
            detail: "opening the session: no answer; if it was opened on the server it expires \
                     after its TTL"
                .into(),
        })
    }

    /// The open session, opening one if none was ever opened; [`Error::SessionExpired`] if
    /// the last one was lost (its locks are gone: open a new one explicitly).
    pub async fn ensure_session(&self) -> Result<SessionId, Error> {
        let (session, lease, last) = {
            let state = self.shared.state();
            (state.core.session(), state.core.lease_state(now()), state.last_session)
        };
        match (session, lease, last) {
            (Some(s), Some(l), _) if l != LeaseState::Lost => Ok(s),
            (_, _, Some(last)) => Err(Error::SessionExpired { session: last }),
            _ => self.open_session().await,
        }
    }

    /// A live session for a kv write: the state machine deduplicates a client's requests in
    /// its session, so every mutation needs one. Unlike a lock, a write does not depend on
    /// which session it runs in (its fence does the guarding), so a lost session is replaced.
    async fn write_session(&self) -> Result<SessionId, Error> {
        match self.ensure_session().await {
            Err(Error::SessionExpired { .. }) => self.open_session().await,
            other => other,
        }
    }

    /// Closes the session; its locks are released at once.
    pub async fn close_session(&self) -> Result<Outcome<()>, Error> {
        Ok(self.call(UserOp::CloseSession).await?.map(|_| ()))
    }

    /// Acquires `lock`, waiting up to `wait` (zero: only if it is free now). Opens the
    /// session first if needed. `Ok(Unknown)` only when the client could not learn whether it
    /// holds the lock; [`Error::LockHeld`] when the wait ran out (the client then left the
    /// queue).
    pub async fn lock(&self, lock: &str, wait: Duration) -> Result<Outcome<LockGuard>, Error> {
        check_lock_name(lock)?;
        if wait > LOCK_WAIT_MAX {
            return Err(Error::BadInput(format!(
                "wait {wait:?} is above the maximum {LOCK_WAIT_MAX:?} (LOCK_WAIT_MAX)"
            )));
        }
        self.ensure_session().await?;
        if wait.is_zero() {
            return self.try_lock(lock).await;
        }
        let deadline = tokio::time::Instant::now() + wait;
        let first = UserOp::Acquire { lock: lock.into(), wait: Some(wait.min(LONG_POLL_WAIT_MAX)) };
        let mut answer = self.call(first).await?;
        loop {
            match answer {
                Outcome::Unknown => return self.resolve_acquire(lock).await,
                Outcome::Done(ReplyResult::Done(Ok(Reply::Acquired { holder, .. }))) => {
                    return Ok(Outcome::Done(self.guard(lock, holder.token, holder.session)));
                }
                Outcome::Done(ReplyResult::Read(ReadReply::Granted { holder, .. })) => {
                    return Ok(Outcome::Done(self.guard(lock, holder.token, holder.session)));
                }
                Outcome::Done(ReplyResult::Read(ReadReply::NotWaiting { .. })) => {
                    // Neither holding nor queued any more: the session ended, or the queue
                    // entry went with a leader change of the long poll. Queue again.
                    self.ensure_session().await?;
                    let op = UserOp::Acquire { lock: lock.into(), wait: Some(Duration::ZERO) };
                    answer = self.call(op).await?;
                    continue;
                }
                Outcome::Done(ReplyResult::StillWaiting { .. })
                | Outcome::Done(ReplyResult::Done(Ok(Reply::Queued { .. }))) => {}
                Outcome::Done(other) => return Err(unexpected(&other)),
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return self.give_up(lock, Some(wait)).await;
            }
            let op =
                UserOp::WaitGrant { lock: lock.into(), wait: Some(left.min(LONG_POLL_WAIT_MAX)) };
            answer = match self.read(op).await {
                Ok(read) => Outcome::Done(ReplyResult::Read(read)),
                Err(e) => return Err(e),
            };
        }
    }

    /// Acquires `lock` only if it is free now; [`Error::LockHeld`] (with the holder) if not.
    pub async fn try_lock(&self, lock: &str) -> Result<Outcome<LockGuard>, Error> {
        check_lock_name(lock)?;
        self.ensure_session().await?;
        match self.call(UserOp::TryAcquire { lock: lock.into() }).await? {
            Outcome::Unknown => self.resolve_acquire(lock).await,
            Outcome::Done(ReplyResult::Done(Ok(Reply::Acquired { holder, .. }))) => {
                Ok(Outcome::Done(self.guard(lock, holder.token, holder.session)))
            }
            Outcome::Done(ReplyResult::Done(Ok(Reply::Busy { holder, delayed_since, .. }))) => {
                Err(Error::LockHeld { lock: lock.into(), holder, waited: None, delayed_since })
            }
            Outcome::Done(ReplyResult::Done(Ok(Reply::Queued { .. }))) => {
                self.give_up(lock, None).await
            }
            Outcome::Done(other) => Err(unexpected(&other)),
        }
    }

    /// An acquire whose outcome is unknown: a try-acquire finds out (a holder's repeat is
    /// re-entrant: same grant, same token); if it is not ours, leave the queue.
    async fn resolve_acquire(&self, lock: &str) -> Result<Outcome<LockGuard>, Error> {
        match self.call(UserOp::TryAcquire { lock: lock.into() }).await? {
            Outcome::Done(ReplyResult::Done(Ok(Reply::Acquired { holder, .. }))) => {
                Ok(Outcome::Done(self.guard(lock, holder.token, holder.session)))
            }
            Outcome::Done(_) => self.give_up(lock, None).await,
            Outcome::Unknown => Ok(Outcome::Unknown),
        }
    }

    /// Leaves `lock`'s queue (releasing it if the grant raced in) and reports its holder.
    async fn give_up(
        &self,
        lock: &str,
        waited: Option<Duration>,
    ) -> Result<Outcome<LockGuard>, Error> {
        match self.call(UserOp::Release { lock: lock.into() }).await {
            Ok(Outcome::Done(_)) | Err(Error::NotHolder { .. }) => {}
            Ok(Outcome::Unknown) => return Ok(Outcome::Unknown),
            Err(e) => return Err(e),
        }
        let info = self.lock_info(lock).await.ok().flatten();
        let holder = info.as_ref().and_then(|i| i.holder.clone());
        let delayed_since = info.and_then(|i| i.delayed_since);
        Err(Error::LockHeld { lock: lock.into(), holder, waited, delayed_since })
    }

    fn guard(&self, lock: &str, token: u64, session: SessionId) -> LockGuard {
        LockGuard::new(self.clone(), lock.to_string(), token, session)
    }

    /// A lock's holder, waiters and lock-delay (linearizable); `None` if nobody holds, waits
    /// for or delays it.
    pub async fn lock_info(&self, lock: &str) -> Result<Option<LockInfo>, Error> {
        check_lock_name(lock)?;
        let op = UserOp::LockInfo { name: lock.into(), consistency: Consistency::Linearizable };
        match self.read(op).await? {
            ReadReply::Lock { info, .. } => Ok(info),
            other => Err(unexpected(&ReplyResult::Read(other))),
        }
    }

    /// Reads `key` (linearizable).
    pub async fn get(&self, key: &str) -> Result<Option<Value>, Error> {
        check_key(key)?;
        let op = UserOp::Get { key: key.into(), consistency: Consistency::Linearizable };
        match self.read(op).await? {
            ReadReply::Value { value, .. } => Ok(value),
            other => Err(unexpected(&ReplyResult::Read(other))),
        }
    }

    /// Writes `key`, through `fence` if given; the new version. Opens a session if none is
    /// live (every mutation runs in one).
    pub async fn put(
        &self,
        key: &str,
        value: impl Into<Vec<u8>>,
        fence: Option<Fence>,
    ) -> Result<Outcome<HlcTimestamp>, Error> {
        let value = value.into();
        check_key(key)?;
        check_value(&value)?;
        check_fence(fence.as_ref())?;
        self.write_session().await?;
        let op = UserOp::Put { key: key.into(), value, fence };
        self.written(self.call(op).await?)
    }

    /// Compare-and-swap on `key`; the new version.
    pub async fn cas(
        &self,
        key: &str,
        expected: Expect,
        value: impl Into<Vec<u8>>,
        fence: Option<Fence>,
    ) -> Result<Outcome<HlcTimestamp>, Error> {
        let value = value.into();
        check_key(key)?;
        check_value(&value)?;
        if let Expect::Value(v) = &expected {
            check_value(v)?;
        }
        check_fence(fence.as_ref())?;
        self.write_session().await?;
        let op = UserOp::Cas { key: key.into(), expected, value, fence };
        self.written(self.call(op).await?)
    }

    fn written(&self, answer: Outcome<ReplyResult>) -> Result<Outcome<HlcTimestamp>, Error> {
        match answer {
            Outcome::Done(ReplyResult::Done(Ok(Reply::Written { version, .. }))) => {
                Ok(Outcome::Done(version))
            }
            Outcome::Done(other) => Err(unexpected(&other)),
            Outcome::Unknown => Ok(Outcome::Unknown),
        }
    }

    /// Deletes `key`, through `fence` if given; whether it existed.
    pub async fn delete(&self, key: &str, fence: Option<Fence>) -> Result<Outcome<bool>, Error> {
        check_key(key)?;
        check_fence(fence.as_ref())?;
        self.write_session().await?;
        match self.call(UserOp::Delete { key: key.into(), fence }).await? {
            Outcome::Done(ReplyResult::Done(Ok(Reply::Deleted { existed, .. }))) => {
                Ok(Outcome::Done(existed))
            }
            Outcome::Done(other) => Err(unexpected(&other)),
            Outcome::Unknown => Ok(Outcome::Unknown),
        }
    }

    /// Every member's own status (asked directly and concurrently; a node that does not
    /// answer is reported with the reason).
    pub async fn cluster_status(&self) -> Vec<NodeReport> {
        let mut tasks = tokio::task::JoinSet::new();
        for (&node, endpoint) in &self.shared.endpoints {
            let shared = Arc::clone(&self.shared);
            let endpoint = endpoint.clone();
            tasks.spawn(async move {
                let body = RequestBody::Read(ReadOp::Status);
                let request = ClientRequest { attempt: 0, id: None, body, wait: None };
                let timeout = shared.attempt_timeout;
                let reply: Result<palisade_node::ClientReply, _> =
                    shared.http().post(&endpoint, "/v1/rpc", &request, timeout).await;
                let status = match reply {
                    Ok(r) => match r.result {
                        ReplyResult::Read(ReadReply::Status(status)) => Ok(status),
                        other => Err(format!("unexpected answer {other:?}")),
                    },
                    Err(e) => Err(e.describe()),
                };
                NodeReport { node, endpoint, status }
            });
        }
        let mut reports = tasks.join_all().await;
        reports.sort_by_key(|r| r.node);
        reports
    }

    /// The time-of-day interval of the first node that answers (the leader the client talks
    /// to first).
    pub async fn time(&self) -> Result<TimeReading, Error> {
        let first = self.shared.state().core.target();
        let mut order: Vec<NodeId> = vec![first];
        order.extend(self.shared.endpoints.keys().copied().filter(|&n| n != first));
        let mut tried = Vec::new();
        for node in order {
            let endpoint = &self.shared.endpoints[&node];
            let timeout = self.shared.attempt_timeout;
            match self.shared.http().get::<TimeReading>(endpoint, "/v1/time", timeout).await {
                Ok(reading) => return Ok(TimeReading { node, ..reading }),
                Err(e) => tried.push(format!("{endpoint}: {}", e.describe())),
            }
        }
        Err(Error::NoClusterReachable { tried })
    }

    /// Asks `node` to hand its leadership away before a restart (`POST /v1/admin/drain`).
    pub async fn drain(&self, node: NodeId) -> Result<DrainResult, Error> {
        let Some(endpoint) = self.shared.endpoints.get(&node) else {
            let members: Vec<String> = self.shared.endpoints.keys().map(u64::to_string).collect();
            return Err(Error::BadInput(format!(
                "node {node} is not a member (members: {})",
                members.join(", ")
            )));
        };
        let timeout = self.shared.op_timeout;
        let answer: serde_json::Value = self
            .shared
            .http()
            .post(endpoint, "/v1/admin/drain", &serde_json::json!({}), timeout)
            .await
            .map_err(|e| match e {
                crate::http::HttpFailure::NotSent(_) => Error::NoClusterReachable {
                    tried: vec![format!("{endpoint}: {}", e.describe())],
                },
                other => Error::Node { endpoint: endpoint.clone(), message: other.describe() },
            })?;
        if let Some(to) = answer.get("transferred_to").and_then(serde_json::Value::as_u64) {
            return Ok(DrainResult::TransferredTo(to));
        }
        if answer.get("not_leader").and_then(serde_json::Value::as_bool) == Some(true) {
            let leader = answer.get("leader").and_then(serde_json::Value::as_u64);
            return Ok(DrainResult::NotLeader(leader));
        }
        Err(Error::Protocol { endpoint: endpoint.clone(), detail: format!("drain: {answer}") })
    }
}

fn check_fence(fence: Option<&Fence>) -> Result<(), Error> {
    fence.map_or(Ok(()), |f| check_lock_name(&f.lock))
}

fn unexpected(answer: &ReplyResult) -> Error {
    Error::Protocol {
        endpoint: "the cluster".into(),
        detail: format!("unexpected answer {answer:?}"),
    }
}

/// Asks every endpoint for the member list; the first answer wins.
async fn discover(
    http: &Http,
    urls: &[String],
    timeout: Duration,
) -> Result<BTreeMap<NodeId, String>, Error> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, url) in urls.iter().enumerate() {
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let view = http.get::<MembersView>(&url, "/v1/status", timeout).await;
            (i, url, view)
        });
    }
    let mut tried: Vec<(usize, String)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let Ok((i, url, view)) = joined else { continue };
        match view {
            Ok(view) => return members_of(&url, view),
            Err(e) => tried.push((i, format!("{url}: {}", e.describe()))),
        }
    }
    tried.sort();
    Err(Error::NoClusterReachable { tried: tried.into_iter().map(|(_, t)| t).collect() })
}

/// The members of `view` (answered by `url`) as base URLs; an unspecified listen host
/// (`0.0.0.0`, `[::]`) is replaced by the host that answered.
fn members_of(url: &str, view: MembersView) -> Result<BTreeMap<NodeId, String>, Error> {
    let answered_host = url.trim_start_matches("http://").rsplit_once(':').map(|(h, _)| h);
    let mut endpoints = BTreeMap::new();
    for member in view.members.iter().take(crate::options::ENDPOINTS_MAX) {
        let base = if member.id == view.node_id {
            url.to_string()
        } else {
            let addr = match (member.http_addr.rsplit_once(':'), answered_host) {
                (Some(("0.0.0.0" | "[::]", port)), Some(host)) => format!("{host}:{port}"),
                _ => member.http_addr.clone(),
            };
            endpoint_url(&addr)?
        };
        endpoints.insert(member.id, base);
    }
    if endpoints.is_empty() || !endpoints.contains_key(&view.node_id) {
        let detail = "the member list does not contain the answering node".to_string();
        return Err(Error::Protocol { endpoint: url.to_string(), detail });
    }
    Ok(endpoints)
}
