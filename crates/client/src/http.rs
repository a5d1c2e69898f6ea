//! The HTTP/1 transport: one pooled hyper client, JSON in and out, every answer bounded.
//!
//! Why it distinguishes "not sent" from "lost": a connection that could not be made carried
//! nothing, so the mutation it was for did not run by that attempt; an exchange that failed
//! after connecting may have delivered the request. The driver uses that difference to tell a
//! caller "not applied, no cluster reachable" instead of "unknown" when it can prove it.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::StatusCode;
use hyper::header::CONTENT_TYPE;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::options::RESPONSE_BYTES_MAX;

/// Why an exchange gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HttpFailure {
    /// No connection could be made: nothing was sent.
    NotSent(String),
    /// The exchange failed after the request may have left (reset, timeout, unreadable
    /// answer).
    Lost(String),
    /// An answer with a non-success status: `(status, body)`.
    Status(u16, String),
}

impl HttpFailure {
    /// A one-line description.
    pub fn describe(&self) -> String {
        match self {
            HttpFailure::NotSent(e) => format!("cannot connect: {e}"),
            HttpFailure::Lost(e) => e.clone(),
            HttpFailure::Status(status, body) => {
                let message = serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                    .unwrap_or_else(|| body.chars().take(200).collect());
                format!("HTTP {status}: {message}")
            }
        }
    }
}

/// A pooled JSON-over-HTTP/1 client.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Http {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Http { client: Client::builder(TokioExecutor::new()).build(connector) }
    }

    /// `POST base+path` with a JSON body; the answer's JSON on 2xx.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        body: &B,
        timeout: Duration,
    ) -> Result<T, HttpFailure> {
        let bytes = serde_json::to_vec(body).map_err(|e| HttpFailure::NotSent(e.to_string()))?;
        self.exchange("POST", base, path, Bytes::from(bytes), timeout).await
    }

    /// `GET base+path`; the answer's JSON on 2xx.
    pub async fn get<T: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        timeout: Duration,
    ) -> Result<T, HttpFailure> {
        self.exchange("GET", base, path, Bytes::new(), timeout).await
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        method: &str,
        base: &str,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<T, HttpFailure> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{base}{path}"))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| HttpFailure::NotSent(format!("bad request: {e}")))?;
        let answer = async {
            let response = self.client.request(request).await.map_err(|e| {
                if e.is_connect() {
                    HttpFailure::NotSent(root_cause(&e))
                } else {
                    HttpFailure::Lost(format!("the exchange failed: {}", root_cause(&e)))
                }
            })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), RESPONSE_BYTES_MAX)
                .collect()
                .await
                .map_err(|e| HttpFailure::Lost(format!("the answer could not be read: {e}")))?
                .to_bytes();
            Ok::<_, HttpFailure>((status, body))
        };
        let (status, body) = match tokio::time::timeout(timeout, answer).await {
            Ok(result) => result?,
            Err(_) => return Err(HttpFailure::Lost(format!("no answer within {timeout:?}"))),
        };
        if status != StatusCode::OK {
            return Err(HttpFailure::Status(
                status.as_u16(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
        }
        serde_json::from_slice(&body)
            .map_err(|e| HttpFailure::Lost(format!("the answer is not the expected JSON: {e}")))
    }
}

/// The innermost cause of an error chain (hyper's outer messages say little).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}
