//! The HTTP/JSON API (`docs/http-api.md`; the OpenAPI document is `docs/openapi.json`).
//!
//! Why it is shaped like this. The API is the node loop's front door and nothing more: every
//! request becomes one input of the node thread ([`crate::node_loop::Input`]) with a fresh
//! connection id and a oneshot for the answer, and the answer is turned into JSON. The
//! protocol endpoint `POST /v1/rpc` passes `ClientRequest`/`ClientReply` through unchanged (the
//! Rust client's retries and leader discovery live in `ClientCore`); the REST endpoints are for
//! curl and every other language, so they do what a person expects: a follower forwards them
//! to the leader, an election in progress is waited out (within `request_timeout`), and every
//! outcome has an HTTP status and a stable error `code`.
//!
//! Every input is bounded: bodies by [`HTTP_BODY_BYTES_MAX`], requests in flight by
//! [`HTTP_IN_FLIGHT_MAX`], the node thread's queue by
//! [`crate::node_loop::INPUTS_QUEUED_MAX`], names and values by the core's own limits, waits
//! by `request_timeout` plus the long-poll bound. A request that gives up (timeout, client
//! gone) tells the node loop, which forgets its answer ([`ConnGuard`]).

mod error;
mod proxy;
mod rest;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request as HttpRequest, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, on};
use palisade_node::{ClientRequest, ConnId};
use tokio::sync::oneshot;

pub use error::{ApiError, ERROR_CODES, ErrorCode};
use proxy::Proxy;

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::node_loop::{Answer, Input, Request};
use crate::status::status_page_router;

/// Largest request body, in bytes: a ClientRequest carrying a value of
/// `palisade_lock::VALUE_BYTES_MAX` bytes as a JSON array of numbers fits with room to spare.
pub const HTTP_BODY_BYTES_MAX: usize = 1024 * 1024;
/// Most HTTP requests in progress at once; more are answered `overloaded` at once.
pub const HTTP_IN_FLIGHT_MAX: usize = 8192;
/// Pause between two attempts of a REST call that the node asked to retry (election in
/// progress, leader not ready, leadership transfer).
pub const REST_RETRY_BACKOFF: Duration = Duration::from_millis(25);
/// The OpenAPI 3.1 document of this API, served at `/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../../../docs/openapi.json");
/// Header a follower sets on a request it forwards to the leader (its node id): the leader
/// never forwards such a request again.
pub const FORWARDED_HEADER: &str = "x-palisade-forwarded-by";
/// Header carrying a REST mutation's request id, `<client-hex>:<seq>`.
pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The `op` label of a request's metrics, set by handlers that serve several operations.
#[derive(Debug, Clone, Copy)]
pub struct OpLabel(pub &'static str);

/// One route of the API: method, path as the OpenAPI document writes it, path as the router
/// matches it, the `op` label of its metrics.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    /// The HTTP method.
    pub method: &'static str,
    /// The path in `docs/openapi.json`.
    pub openapi_path: &'static str,
    /// The path the router matches (a `{*wildcard}` where names may contain `/`).
    pub router_path: &'static str,
    /// The `op` label.
    pub op: &'static str,
}

/// Every route of [`router`], the status page's `GET /` included.
pub const ROUTES: &[RouteSpec] = &[
    route("POST", "/v1/rpc", "/v1/rpc", "rpc"),
    route("POST", "/v1/sessions", "/v1/sessions", "session_open"),
    route(
        "POST",
        "/v1/sessions/{session}/keepalive",
        "/v1/sessions/{session}/keepalive",
        "keepalive",
    ),
    route("DELETE", "/v1/sessions/{session}", "/v1/sessions/{session}", "session_close"),
    route("POST", "/v1/locks/{name}/acquire", "/v1/locks/{*path}", "acquire"),
    route("POST", "/v1/locks/{name}/release", "/v1/locks/{*path}", "release"),
    route("GET", "/v1/locks/{name}", "/v1/locks/{*path}", "lock_info"),
    route("GET", "/v1/kv/{key}", "/v1/kv/{*path}", "kv_get"),
    route("PUT", "/v1/kv/{key}", "/v1/kv/{*path}", "kv_put"),
    route("DELETE", "/v1/kv/{key}", "/v1/kv/{*path}", "kv_delete"),
    route("POST", "/v1/kv/{key}/cas", "/v1/kv/{*path}", "kv_cas"),
    route("GET", "/v1/status", "/v1/status", "status"),
    route("GET", "/v1/time", "/v1/time", "time"),
    route("POST", "/v1/admin/drain", "/v1/admin/drain", "drain"),
    route("GET", "/metrics", "/metrics", "metrics"),
    route("GET", "/openapi.json", "/openapi.json", "openapi"),
    route("GET", "/", "/", "status_page"),
];

const fn route(
    method: &'static str,
    openapi_path: &'static str,
    router_path: &'static str,
    op: &'static str,
) -> RouteSpec {
    RouteSpec { method, openapi_path, router_path, op }
}

/// Why a call to the node thread got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallError {
    /// The node thread's queue is full.
    Overloaded,
    /// The node thread is gone (stopping, or stopped).
    Stopped,
    /// No answer within the time allowed.
    Timeout,
}

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    inner: Arc<AppInner>,
}

#[derive(Debug)]
struct AppInner {
    config: Arc<ServerConfig>,
    inputs: SyncSender<Input>,
    next_conn: AtomicU64,
    in_flight: AtomicUsize,
    metrics: Arc<Metrics>,
    proxy: Proxy,
}

impl AppState {
    /// The state of a node's API: its configuration, the node thread's input queue, its
    /// metrics.
    pub fn new(
        config: Arc<ServerConfig>,
        inputs: SyncSender<Input>,
        metrics: Arc<Metrics>,
    ) -> AppState {
        let inner = AppInner {
            config,
            inputs,
            next_conn: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            metrics,
            proxy: Proxy::new(),
        };
        AppState { inner: Arc::new(inner) }
    }

    fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Sends a request to the node thread and waits up to `timeout` for its answer.
    pub(crate) async fn call(
        &self,
        request: Request,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        let conn = self.inner.next_conn.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.send(Input::Request { conn, request, reply })?;
        let mut guard = ConnGuard { conn, inputs: Some(self.inner.inputs.clone()) };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => {
                guard.inputs = None;
                Ok(answer)
            }
            Ok(Err(_)) => Err(CallError::Stopped),
            Err(_) => Err(CallError::Timeout),
        }
    }

    /// Asks the node thread a question (status, time, drain).
    pub(crate) async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Input,
    ) -> Result<T, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply)).map_err(ApiError::from_call)?;
        match tokio::time::timeout(self.config().request_timeout, answer).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err(ApiError::from_call(CallError::Stopped)),
            Err(_) => Err(ApiError::from_call(CallError::Timeout)),
        }
    }

    fn send(&self, input: Input) -> Result<(), CallError> {
        self.inner.inputs.try_send(input).map_err(|e| match e {
            TrySendError::Full(_) => CallError::Overloaded,
            TrySendError::Disconnected(_) => CallError::Stopped,
        })
    }
}

/// Tells the node thread that a request ended without its answer, so the core forgets it.
struct ConnGuard {
    conn: ConnId,
    inputs: Option<SyncSender<Input>>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        if let Some(inputs) = self.inputs.take() {
            // A full queue: the answer will find no receiver and be dropped; bounded anyway
            // (every parked request has a deadline).
            let _ = inputs.try_send(Input::ConnClosed(self.conn));
        }
    }
}

/// The API's router, the status page included, with the body limit, the in-flight bound and
/// the request metrics.
pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    let mut seen = std::collections::BTreeSet::new();
    for spec in ROUTES.iter().filter(|s| s.router_path != "/") {
        if seen.insert((spec.method, spec.router_path)) {
            router = router.route(spec.router_path, handler_of(spec));
        }
    }
    router
        .merge(status_page_router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(HTTP_BODY_BYTES_MAX))
        .with_state(state)
}

/// The handler of a route (several specs may share one wildcard route and method).
fn handler_of(spec: &RouteSpec) -> MethodRouter<AppState> {
    use axum::routing::MethodFilter as M;
    match (spec.method, spec.router_path) {
        ("POST", "/v1/rpc") => on(M::POST, rpc),
        ("POST", "/v1/sessions") => on(M::POST, rest::open_session),
        ("POST", "/v1/sessions/{session}/keepalive") => on(M::POST, rest::keepalive),
        ("DELETE", "/v1/sessions/{session}") => on(M::DELETE, rest::close_session),
        ("POST", "/v1/locks/{*path}") => on(M::POST, rest::lock_post),
        ("GET", "/v1/locks/{*path}") => on(M::GET, rest::lock_info),
        ("GET", "/v1/kv/{*path}") => on(M::GET, rest::kv_get),
        ("PUT", "/v1/kv/{*path}") => on(M::PUT, rest::kv_put),
        ("DELETE", "/v1/kv/{*path}") => on(M::DELETE, rest::kv_delete),
        ("POST", "/v1/kv/{*path}") => on(M::POST, rest::kv_cas),
        ("GET", "/v1/status") => on(M::GET, status),
        ("GET", "/v1/time") => on(M::GET, time),
        ("POST", "/v1/admin/drain") => on(M::POST, drain),
        ("GET", "/metrics") => on(M::GET, metrics),
        ("GET", "/openapi.json") => on(M::GET, openapi),
        (method, path) => unreachable!("no handler for {method} {path}"),
    }
}

/// Bounds the requests in flight and records each one's duration and outcome.
async fn observe(State(app): State<AppState>, request: HttpRequest, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let matched = request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let in_flight = app.inner.in_flight.fetch_add(1, Ordering::Relaxed);
    let response = if in_flight >= HTTP_IN_FLIGHT_MAX {
        ApiError::overloaded("too many HTTP requests in progress").into_response()
    } else {
        next.run(request).await
    };
    app.inner.in_flight.fetch_sub(1, Ordering::Relaxed);
    let op = response.extensions().get::<OpLabel>().map(|l| l.0).unwrap_or_else(|| {
        let path = matched.as_deref().unwrap_or("");
        ROUTES
            .iter()
            .find(|r| r.method == method.as_str() && r.router_path == path)
            .map_or("other", |r| r.op)
    });
    let outcome = match response.extensions().get::<ErrorCode>() {
        Some(code) => code.0,
        // A forwarded request's answer (the leader counted its code).
        None if !response.status().is_success() => "forwarded_error",
        None => "ok",
    };
    app.inner.metrics.observe_request(op, outcome, start.elapsed());
    response
}

/// `POST /v1/rpc`: a `ClientRequest` in, its `ClientReply` out.
async fn rpc(State(app): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let request: ClientRequest = match error::json_body(body) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = request.validate() {
        return ApiError::bad_request(format!("invalid request: {e}")).into_response();
    }
    let timeout = app.config().request_timeout + request.wait.unwrap_or(Duration::ZERO);
    match app.call(Request::Rpc(request), timeout).await {
        Ok(answer) => axum::Json(answer.reply).into_response(),
        Err(e) => ApiError::from_call(e).into_response(),
    }
}

/// `GET /v1/status`.
async fn status(State(app): State<AppState>) -> Response {
    match app.ask(Input::Status).await {
        Ok(view) => axum::Json(view).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /v1/time`.
async fn time(State(app): State<AppState>) -> Response {
    match app.ask(Input::Time).await {
        Ok(reply) => axum::Json(reply).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /v1/admin/drain`.
async fn drain(State(app): State<AppState>) -> Response {
    use palisade_node::AdminError;
    match app.ask(Input::Drain).await {
        Ok(Ok(to)) => axum::Json(serde_json::json!({ "transferred_to": to })).into_response(),
        Ok(Err(AdminError::NotLeader { leader })) => {
            axum::Json(serde_json::json!({ "not_leader": true, "leader": leader })).into_response()
        }
        Ok(Err(e)) => ApiError::unavailable(format!("drain refused: {e}")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /metrics`: the Prometheus families (OpenMetrics text).
async fn metrics(State(app): State<AppState>) -> Response {
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], app.inner.metrics.encode()).into_response()
}

/// `GET /openapi.json`.
async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no endpoint {method} {uri}"))
        .into_response()
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    let message = format!("{method} is not allowed on {}", uri.path());
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "bad_request", message).into_response()
}
