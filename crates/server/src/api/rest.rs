//! The REST endpoints: JSON in, a [`RestCall`] to the node thread, JSON out.
//!
//! Each handler parses its path, query and body into a [`RestCall`] (bad input is 400 before
//! the node hears of it), then [`run`] takes it to the node: a follower's node answers
//! `NotLeader` without proposing anything and the request is forwarded to the leader; an
//! election or a leader that is not ready yet is waited out, retrying every
//! [`super::REST_RETRY_BACKOFF`] within `request_timeout`; an overloaded node is 429 at once.
//! Then the endpoint's converter turns the core's answer into the documented JSON, and
//! [`refusal`] / [`other`] give every other answer its stable code.
//!
//! Lock names and keys may contain `/` (the routes are wildcards); percent-encoded ones are
//! decoded. A key that itself ends in `/cas` can be compare-and-swapped only through
//! `/v1/rpc`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use palisade_node::lock::{
    Expect, Fence, FenceRejection, Holder, Refused, Reply, RequestId, SessionId,
};
use palisade_node::{Consistency, ReadOp, ReadReply, ReplyResult, RetryReason};
use serde::Deserialize;
use serde_json::{Value as Json, json};

use super::error::json_body;
use super::proxy::Forwardable;
use super::{
    ApiError, AppState, CallError, FORWARDED_HEADER, IDEMPOTENCY_KEY_HEADER, OpLabel,
    REST_RETRY_BACKOFF,
};
use crate::node_loop::{Request, RestCall};

/// A REST request with what it takes to forward it.
struct Ctx {
    app: AppState,
    forwardable: Forwardable,
    key: Option<RequestId>,
    forwarded: bool,
}

/// Where the answer came from.
enum Routed {
    /// This node's core answered, to a request with this id.
    Local(ReplyResult, Option<RequestId>),
    /// The leader answered a forwarded request.
    Proxied(Response),
}

fn ctx(
    app: AppState,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    mutation: bool,
) -> Result<Ctx, ApiError> {
    let key_header = headers.get(IDEMPOTENCY_KEY_HEADER).cloned();
    let key = key_header.as_ref().map(parse_key).transpose()?;
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let forwardable =
        Forwardable { method, path_and_query, idempotency_key: key_header, body, mutation };
    Ok(Ctx { app, forwardable, key, forwarded: headers.contains_key(FORWARDED_HEADER) })
}

/// `<client-hex>:<seq>` (the client with or without `0x`).
fn parse_key(value: &axum::http::HeaderValue) -> Result<RequestId, ApiError> {
    let bad = || ApiError::bad_request("Idempotency-Key must be <client-hex>:<seq>, e.g. 0x1f:7");
    let text = value.to_str().map_err(|_| bad())?;
    let (client, seq) = text.trim().split_once(':').ok_or_else(bad)?;
    let client = client.trim_start_matches("0x");
    let client = u64::from_str_radix(client, 16).map_err(|_| bad())?;
    let seq = seq.parse::<u64>().map_err(|_| bad())?;
    if client == 0 {
        return Err(ApiError::bad_request("Idempotency-Key: client id 0 is reserved"));
    }
    Ok(RequestId { client, seq })
}

/// Takes `call` to the node (and to the leader if needed), within `request_timeout + wait`.
async fn run(ctx: &Ctx, call: RestCall, wait: Duration) -> Result<Routed, ApiError> {
    let app = &ctx.app;
    let deadline = Instant::now() + app.config().request_timeout + wait;
    let mutation = ctx.forwardable.mutation;
    let mut key = ctx.key;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let request = Request::Rest { call: call.clone(), key };
        let answer = match app.call(request, left).await {
            Ok(answer) => answer,
            Err(CallError::Timeout) if mutation && key.is_some() => {
                return Err(ApiError::outcome_unknown(
                    "no outcome within request_timeout; retry with the same Idempotency-Key",
                ));
            }
            Err(e) => return Err(ApiError::from_call(e)),
        };
        key = answer.id.or(key);
        let retry_reason = match answer.reply.result {
            ReplyResult::NotLeader { leader: Some(leader) } if !ctx.forwarded => {
                return Ok(Routed::Proxied(forward(ctx, leader, deadline).await));
            }
            ReplyResult::NotLeader { leader } if ctx.forwarded => {
                return Err(not_leader(app, leader));
            }
            ReplyResult::NotLeader { leader: None } => "no leader is known yet",
            ReplyResult::Retry { reason: RetryReason::Overloaded } => {
                return Err(ApiError::overloaded("the node's queues are full; retry"));
            }
            ReplyResult::Retry { reason } => retry_text(reason),
            result => return Ok(Routed::Local(result, key)),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left < REST_RETRY_BACKOFF {
            return Err(match answer.reply.result {
                ReplyResult::NotLeader { .. } => ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_leader",
                    "no leader within request_timeout (an election is in progress, or a \
                     majority is unreachable)",
                ),
                _ => ApiError::unavailable(format!("{retry_reason} (for request_timeout)")),
            });
        }
        tokio::time::sleep(REST_RETRY_BACKOFF).await;
    }
}

fn retry_text(reason: RetryReason) -> &'static str {
    match reason {
        RetryReason::Overloaded => "overloaded",
        RetryReason::LeaderNotReady => "the leader has not committed an entry of its term yet",
        RetryReason::ProposalDropped => "the proposal was overwritten by another leader's",
        RetryReason::LeadershipTransfer => "a leadership transfer is in progress",
        RetryReason::Superseded => "a newer attempt with the same id arrived",
    }
}

fn not_leader(app: &AppState, leader: Option<u64>) -> ApiError {
    let leader_json = leader.map(|id| {
        let addr = app.config().peers.iter().find(|p| p.id == id).map(|p| p.http_addr.to_string());
        json!({ "id": id, "http_addr": addr })
    });
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_leader", "this node is not the leader")
        .with("leader", leader_json.unwrap_or(Json::Null))
}

async fn forward(ctx: &Ctx, leader: u64, deadline: Instant) -> Response {
    let config = ctx.app.config();
    let Some(peer) = config.peers.iter().find(|p| p.id == leader) else {
        return ApiError::unavailable(format!("leader {leader} is not in the configuration"))
            .into_response();
    };
    let left = deadline.saturating_duration_since(Instant::now());
    let proxy = &ctx.app.inner.proxy;
    proxy.forward(config.node_id, leader, &peer.http_addr, &ctx.forwardable, left).await
}

/// Runs `call` and converts a local answer with `convert`.
async fn respond(
    ctx: Result<Ctx, ApiError>,
    call: Result<RestCall, ApiError>,
    wait: Duration,
    convert: impl FnOnce(ReplyResult, Option<RequestId>) -> Result<Response, ApiError>,
) -> Response {
    let result = async {
        let (ctx, call) = (ctx?, call?);
        match run(&ctx, call, wait).await? {
            Routed::Proxied(response) => Ok(response),
            Routed::Local(result, id) => convert(result, id),
        }
    };
    result.await.unwrap_or_else(IntoResponse::into_response)
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "limit_exceeded", rejection.body_text())
        } else {
            ApiError::bad_request(rejection.body_text())
        }
    })
}

fn parse<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    json_body(Ok(bytes.clone()))
}

fn path_param<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p).map_err(|e| ApiError::bad_request(format!("bad path: {e}")))
}

fn ok(value: Json) -> Result<Response, ApiError> {
    Ok(axum::Json(value).into_response())
}

fn holder_json(holder: &Holder) -> Json {
    json!({
        "session": holder.session.0,
        "client": format!("{:#018x}", holder.client),
        "token": holder.token,
        "since_index": holder.since_index,
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenBody {
    ttl_ms: u64,
}

/// `POST /v1/sessions`.
pub(super) async fn open_session(
    State(app): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = body_bytes(body);
    let call = body
        .as_ref()
        .map_err(Clone::clone)
        .and_then(parse::<OpenBody>)
        .map(|b| RestCall::OpenSession { ttl: Duration::from_millis(b.ttl_ms) });
    let ctx = body.and_then(|b| ctx(app, method, &uri, &headers, b, true));
    respond(ctx, call, Duration::ZERO, |result, id| match result {
        ReplyResult::Done(Ok(Reply::SessionOpened { session, ttl })) => {
            let client = id.map(|id| format!("{:#018x}", id.client));
            ok(json!({ "session": session.0, "client": client, "ttl_ms": millis(ttl) }))
        }
        other => Err(other_answer(other)),
    })
    .await
}

/// `POST /v1/sessions/{session}/keepalive`.
pub(super) async fn keepalive(
    State(app): State<AppState>,
    path: Result<Path<u64>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = path_param(path).map(|s| RestCall::KeepAlive { session: SessionId(s) });
    let ctx = ctx(app, method, &uri, &headers, Bytes::new(), true);
    respond(ctx, call, Duration::ZERO, |result, _| match result {
        ReplyResult::Done(Ok(Reply::Renewed { session, ttl })) => {
            ok(json!({ "session": session.0, "ttl_ms": millis(ttl) }))
        }
        other => Err(other_answer(other)),
    })
    .await
}

/// `DELETE /v1/sessions/{session}`.
pub(super) async fn close_session(
    State(app): State<AppState>,
    path: Result<Path<u64>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = path_param(path).map(|s| RestCall::CloseSession { session: SessionId(s) });
    let ctx = ctx(app, method, &uri, &headers, Bytes::new(), true);
    respond(ctx, call, Duration::ZERO, |result, _| match result {
        ReplyResult::Done(Ok(Reply::SessionClosed { session })) => {
            ok(json!({ "session": session.0, "closed": true }))
        }
        other => Err(other_answer(other)),
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcquireBody {
    session: u64,
    #[serde(default)]
    wait_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseBody {
    session: u64,
}

/// `POST /v1/locks/{name}/acquire` and `POST /v1/locks/{name}/release`.
pub(super) async fn lock_post(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let action = path_param(path).and_then(|p| match p.rsplit_once('/') {
        Some((name, "acquire")) => Ok((name.to_owned(), true)),
        Some((name, "release")) => Ok((name.to_owned(), false)),
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no endpoint {uri}"))),
    });
    let releasing = matches!(action, Ok((_, false)));
    let label = OpLabel(if releasing { "release" } else { "acquire" });
    let body = body_bytes(body);
    let call = action.and_then(|(lock, acquire)| {
        let bytes = body.as_ref().map_err(Clone::clone)?;
        if acquire {
            let b: AcquireBody = parse(bytes)?;
            let wait = b.wait_ms.map(Duration::from_millis);
            Ok(RestCall::Acquire { session: SessionId(b.session), lock, wait })
        } else {
            let b: ReleaseBody = parse(bytes)?;
            Ok(RestCall::Release { session: SessionId(b.session), lock })
        }
    });
    let wait = match &call {
        Ok(RestCall::Acquire { wait: Some(wait), .. }) => *wait,
        _ => Duration::ZERO,
    };
    let ctx = body.and_then(|b| ctx(app, method, &uri, &headers, b, true));
    let convert = if releasing { release_answer } else { acquire_answer };
    let mut response = respond(ctx, call, wait, convert).await;
    response.extensions_mut().insert(label);
    response
}

fn acquire_answer(result: ReplyResult, _: Option<RequestId>) -> Result<Response, ApiError> {
    match result {
        ReplyResult::Done(Ok(Reply::Acquired { lock, holder, reentrant })) => ok(json!({
            "lock": lock,
            "token": holder.token,
            "session": holder.session.0,
            "since_index": holder.since_index,
            "reentrant": reentrant,
        })),
        ReplyResult::Done(Ok(Reply::Busy { lock, holder, delayed_since })) => {
            let message = match &holder {
                Some(h) => format!("lock {lock:?} is held by session {}", h.session.0),
                None => format!("lock {lock:?} is in its lock-delay after an expiry"),
            };
            Err(ApiError::new(StatusCode::CONFLICT, "lock_held", message)
                .with("holder", holder.as_ref().map_or(Json::Null, holder_json))
                .with("delayed_since", json!(delayed_since)))
        }
        ReplyResult::Done(Ok(Reply::Queued { position, .. })) => Err(still_waiting(position)),
        ReplyResult::Done(Ok(Reply::Dequeued { lock })) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_holder",
            format!(
                "the session left the queue of lock {lock:?} (released, expired or closed) \
                 before the grant"
            ),
        )),
        other => Err(other_answer(other)),
    }
}

fn release_answer(result: ReplyResult, _: Option<RequestId>) -> Result<Response, ApiError> {
    match result {
        ReplyResult::Done(Ok(Reply::Released { lock, token, next })) => ok(json!({
            "released": true,
            "lock": lock,
            "token": token,
            "next": next.as_ref().map_or(Json::Null, holder_json),
        })),
        ReplyResult::Done(Ok(Reply::Dequeued { lock })) => ok(json!({
            "released": false,
            "dequeued": true,
            "lock": lock,
            "next": Json::Null,
        })),
        other => Err(other_answer(other)),
    }
}

/// The query of a read: `?consistency=linearizable|serializable`.
#[derive(Deserialize)]
pub(super) struct ReadQuery {
    #[serde(default)]
    consistency: Option<String>,
}

fn consistency(
    query: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Consistency, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(format!("bad query: {e}")))?;
    match q.consistency.as_deref() {
        None | Some("linearizable") => Ok(Consistency::Linearizable),
        Some("serializable") => Ok(Consistency::Serializable),
        Some(other) => Err(ApiError::bad_request(format!(
            "consistency {other:?} is neither linearizable nor serializable"
        ))),
    }
}

fn read_ctx(
    app: AppState,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Ctx, ApiError> {
    ctx(app, method, uri, headers, Bytes::new(), false)
}

/// `GET /v1/locks/{name}`.
pub(super) async fn lock_info(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = path_param(path).and_then(|name| {
        let consistency = consistency(query)?;
        Ok(RestCall::Read(ReadOp::LockInfo { name, consistency }))
    });
    let ctx = read_ctx(app, method, &uri, &headers);
    respond(ctx, call, Duration::ZERO, |result, _| match result {
        ReplyResult::Read(ReadReply::Lock { name, info, index }) => {
            let holder = info.as_ref().and_then(|i| i.holder.as_ref());
            let waiters: Vec<u64> =
                info.as_ref().map_or(Vec::new(), |i| i.waiters.iter().map(|s| s.0).collect());
            ok(json!({
                "lock": name,
                "holder": holder.map_or(Json::Null, holder_json),
                "token": holder.map(|h| h.token),
                "since": holder.map(|h| h.since_index),
                "waiters": waiters,
                "delayed_since": info.as_ref().and_then(|i| i.delayed_since),
                "index": index,
            }))
        }
        other => Err(other_answer(other)),
    })
    .await
}

/// `GET /v1/kv/{key}`.
pub(super) async fn kv_get(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadQuery>, axum::extract::rejection::QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let call = path_param(path).and_then(|key| {
        let consistency = consistency(query)?;
        Ok(RestCall::Read(ReadOp::Get { key, consistency }))
    });
    let ctx = read_ctx(app, method, &uri, &headers);
    respond(ctx, call, Duration::ZERO, |result, _| match result {
        ReplyResult::Read(ReadReply::Value { key, value: Some(v), index }) => ok(json!({
            "key": key,
            "value": String::from_utf8_lossy(&v.data),
            "version": v.version.to_string(),
            "fence": v.written_by.as_ref().map(|f| json!({ "lock": f.lock, "token": f.token })),
            "written_index": v.index,
            "index": index,
        })),
        ReplyResult::Read(ReadReply::Value { key, value: None, .. }) => {
            Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no key {key:?}")))
        }
        other => Err(other_answer(other)),
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FenceBody {
    lock: String,
    token: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: String,
    #[serde(default)]
    fence: Option<FenceBody>,
    #[serde(default)]
    session: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedBody {
    #[serde(default)]
    absent: Option<bool>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    expected: ExpectedBody,
    value: String,
    #[serde(default)]
    fence: Option<FenceBody>,
    #[serde(default)]
    session: Option<u64>,
}

fn fence(body: Option<FenceBody>) -> Option<Fence> {
    body.map(|f| Fence { lock: f.lock, token: f.token })
}

/// A kv write must name its client: by session or by `Idempotency-Key`.
fn writer(
    session: Option<u64>,
    ctx: &Result<Ctx, ApiError>,
) -> Result<Option<SessionId>, ApiError> {
    let keyed = ctx.as_ref().is_ok_and(|c| c.key.is_some());
    match session {
        Some(s) => Ok(Some(SessionId(s))),
        None if keyed => Ok(None),
        None => Err(ApiError::bad_request(
            "a kv write is made by a session's client: give \"session\" (in the body, or \
             ?session= for DELETE) or an Idempotency-Key naming the client",
        )),
    }
}

fn expected(body: ExpectedBody) -> Result<Expect, ApiError> {
    match (body.absent, body.version, body.value) {
        (Some(true), None, None) => Ok(Expect::Absent),
        (None, Some(version), None) => version.parse().map(Expect::Version).map_err(|_| {
            ApiError::bad_request(format!("expected.version {version:?} is not WALL_NANOS+LOGICAL"))
        }),
        (None, None, Some(value)) => Ok(Expect::Value(value.into_bytes())),
        _ => Err(ApiError::bad_request(
            "expected must be exactly one of {\"absent\": true}, {\"version\": ..}, \
             {\"value\": ..}",
        )),
    }
}

fn written(result: ReplyResult, _: Option<RequestId>) -> Result<Response, ApiError> {
    match result {
        ReplyResult::Done(Ok(Reply::Written { key, version })) => {
            ok(json!({ "key": key, "version": version.to_string() }))
        }
        ReplyResult::Done(Ok(Reply::Deleted { key, existed, version })) => {
            ok(json!({ "key": key, "deleted": existed, "version": version.to_string() }))
        }
        other => Err(other_answer(other)),
    }
}

/// `PUT /v1/kv/{key}`.
pub(super) async fn kv_put(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = body_bytes(body);
    let ctx = body.clone().and_then(|b| ctx(app, method, &uri, &headers, b, true));
    let call = path_param(path).and_then(|key| {
        let b: PutBody = parse(body.as_ref().map_err(Clone::clone)?)?;
        let session = writer(b.session, &ctx)?;
        Ok(RestCall::write(session, key, Some(b.value.into_bytes()), None, fence(b.fence)))
    });
    respond(ctx, call, Duration::ZERO, written).await
}

/// `POST /v1/kv/{key}/cas`.
pub(super) async fn kv_cas(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = body_bytes(body);
    let ctx = body.clone().and_then(|b| ctx(app, method, &uri, &headers, b, true));
    let call = path_param(path).and_then(|path| {
        let Some(key) = path.strip_suffix("/cas") else {
            let message = format!("no endpoint POST {uri}");
            return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", message));
        };
        let b: CasBody = parse(body.as_ref().map_err(Clone::clone)?)?;
        let session = writer(b.session, &ctx)?;
        let expect = expected(b.expected)?;
        let value = Some(b.value.into_bytes());
        Ok(RestCall::write(session, key.to_owned(), value, Some(expect), fence(b.fence)))
    });
    respond(ctx, call, Duration::ZERO, written).await
}

/// `DELETE /v1/kv/{key}?fence=LOCK:TOKEN&session=N`.
pub(super) async fn kv_delete(
    State(app): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let ctx = ctx(app, method, &uri, &headers, Bytes::new(), true);
    let call = path_param(path).and_then(|key| {
        let Query(q) = query.map_err(|e| ApiError::bad_request(format!("bad query: {e}")))?;
        let fence = match q.get("fence") {
            None => None,
            Some(text) => {
                let bad = || ApiError::bad_request(format!("fence {text:?} is not LOCK:TOKEN"));
                let (lock, token) = text.rsplit_once(':').ok_or_else(bad)?;
                Some(Fence { lock: lock.to_owned(), token: token.parse().map_err(|_| bad())? })
            }
        };
        let session = match q.get("session") {
            None => None,
            Some(s) => Some(s.parse::<u64>().map_err(|_| ApiError::bad_request("bad session"))?),
        };
        let session = writer(session, &ctx)?;
        Ok(RestCall::write(session, key, None, None, fence))
    });
    respond(ctx, call, Duration::ZERO, written).await
}

fn still_waiting(position: u32) -> ApiError {
    let message = "the wait ended without the grant; the session is still queued";
    ApiError::new(StatusCode::ACCEPTED, "still_waiting", message).with("position", position)
}

/// The error answer of anything an endpoint's converter does not expect.
fn other_answer(result: ReplyResult) -> ApiError {
    match result {
        ReplyResult::Done(Err(refused)) => refusal(refused),
        ReplyResult::StillWaiting { position } => still_waiting(position),
        ReplyResult::Unknown => ApiError::outcome_unknown(
            "the node lost the leadership with the request pending: it may or may not be \
             applied; retry with the same Idempotency-Key to learn which",
        ),
        ReplyResult::Invalid(reason) => ApiError::bad_request(reason),
        ReplyResult::Retry { reason } => ApiError::unavailable(retry_text(reason)),
        ReplyResult::NotLeader { .. } => ApiError::unavailable("this node is not the leader"),
        other => ApiError::internal(format!("unexpected answer: {other:?}")),
    }
}

/// The error answer of a state-machine refusal.
fn refusal(refused: Refused) -> ApiError {
    let conflict = |code, message: String| ApiError::new(StatusCode::CONFLICT, code, message);
    let message = refused.to_string();
    match refused {
        Refused::Limit(_) => ApiError::new(StatusCode::BAD_REQUEST, "limit_exceeded", message),
        Refused::EmptyName { .. } | Refused::SessionExists { .. } => ApiError::bad_request(message),
        Refused::NoSession { client } => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_session",
            format!(
                "no such session (expired, closed or never opened): client {client:#x} has no \
                 open session"
            ),
        ),
        Refused::UnknownSession { .. } | Refused::NotSessionOwner { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "no_session", message)
        }
        Refused::StaleRequest { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "outcome_unknown",
            format!("{message}: its answer is no longer kept"),
        ),
        Refused::NotHolder { .. } => conflict("not_holder", message),
        Refused::Fence(FenceRejection::StaleToken { presented, current, .. }) => {
            conflict("stale_token", message).with("presented", presented).with("current", current)
        }
        Refused::Fence(FenceRejection::LockNotHeld { presented, .. }) => {
            conflict("lock_not_held", message).with("presented", presented)
        }
        Refused::Fence(FenceRejection::UnknownLock { presented, .. }) => {
            conflict("unknown_lock", message).with("presented", presented)
        }
        Refused::CasMismatch { current } => {
            conflict("cas_mismatch", message).with("current", current.map(|v| v.to_string()))
        }
    }
}
