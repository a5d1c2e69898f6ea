//! Forwarding a REST request from a follower to the leader.
//!
//! Why the REST request itself and not a `ClientRequest` to the leader's `/v1/rpc`: a REST
//! mutation without an `Idempotency-Key` gets its request id from the node, and only a ready
//! leader can make one that never repeats an id in flight (see `node_loop::rest`). So a
//! follower that learns from its node thread that it is not the leader (nothing was proposed)
//! sends the same method, path, body and `Idempotency-Key` to the leader's `http_addr`, marked
//! with [`super::FORWARDED_HEADER`] so that it is forwarded at most once, and returns the
//! leader's answer as it is. A connection that could not be made is `unavailable` (nothing was
//! sent); a mutation whose answer was lost after sending is `outcome_unknown`.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use palisade_node::raft::NodeId;

use super::{ApiError, FORWARDED_HEADER, HTTP_BODY_BYTES_MAX, IDEMPOTENCY_KEY_HEADER};
use crate::config::HostPort;

/// Largest answer accepted from the leader, in bytes.
pub const PROXY_RESPONSE_BYTES_MAX: usize = 4 * HTTP_BODY_BYTES_MAX;

/// A REST request as received, kept to be forwarded.
#[derive(Debug, Clone)]
pub(crate) struct Forwardable {
    pub method: Method,
    /// Path and query, as received (still percent-encoded).
    pub path_and_query: String,
    pub idempotency_key: Option<HeaderValue>,
    pub body: Bytes,
    /// Whether it changes state (an unknown outcome must be said so).
    pub mutation: bool,
}

/// The HTTP client of the forwarding (pooled connections to the leaders).
#[derive(Clone, Debug)]
pub(crate) struct Proxy {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Proxy {
    pub fn new() -> Proxy {
        Proxy { client: Client::builder(TokioExecutor::new()).build_http() }
    }

    /// Sends `request` to `leader` at `addr` (from node `from`) and returns its answer, within
    /// `timeout`.
    pub async fn forward(
        &self,
        from: NodeId,
        leader: NodeId,
        addr: &HostPort,
        request: &Forwardable,
        timeout: Duration,
    ) -> Response {
        let uri = format!("http://{addr}{}", request.path_and_query);
        let mut builder = hyper::Request::builder()
            .method(request.method.clone())
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .header(FORWARDED_HEADER, from.to_string());
        if let Some(key) = &request.idempotency_key {
            builder = builder.header(IDEMPOTENCY_KEY_HEADER, key.clone());
        }
        let outgoing = match builder.body(Full::new(request.body.clone())) {
            Ok(outgoing) => outgoing,
            Err(e) => return ApiError::internal(format!("cannot forward: {e}")).into_response(),
        };
        let lost = |what: String| {
            if request.mutation {
                ApiError::outcome_unknown(format!(
                    "forwarded to the leader (node {leader} at {addr}) but {what}; retry with \
                     the same Idempotency-Key to learn the outcome"
                ))
            } else {
                ApiError::unavailable(format!("leader {leader} at {addr}: {what}"))
            }
        };
        let response = match tokio::time::timeout(timeout, self.client.request(outgoing)).await {
            Err(_) => return lost("no answer in time".to_owned()).into_response(),
            Ok(Err(e)) if e.is_connect() => {
                let message = format!("cannot reach the leader (node {leader} at {addr}): {e}");
                return ApiError::unavailable(message).into_response();
            }
            Ok(Err(e)) => return lost(format!("the exchange failed: {e}")).into_response(),
            Ok(Ok(response)) => response,
        };
        let (parts, body) = response.into_parts();
        let body = match Limited::new(body, PROXY_RESPONSE_BYTES_MAX).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => return lost(format!("its answer could not be read: {e}")).into_response(),
        };
        let mut out = Response::new(Body::from(body));
        *out.status_mut() = StatusCode::from_u16(parts.status.as_u16())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
            out.headers_mut().insert(header::CONTENT_TYPE, content_type.clone());
        }
        out
    }
}
