//! JSON errors with stable codes.
//!
//! Every answer that is not the success of its endpoint is `{"code": .., "message": ..}` plus
//! the facts a client needs to act (the current holder, the current token, the leader). The
//! codes are an interface ([`ERROR_CODES`], listed in the OpenAPI document, checked by a test);
//! the HTTP status says how a generic client should treat it: 4xx the request is wrong or
//! refused by the state machine, 429/503 retry, 504 the outcome is unknown (retry with the
//! same `Idempotency-Key` to learn it).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::CallError;

/// Every error code the API answers with.
pub const ERROR_CODES: &[&str] = &[
    "bad_request",
    "not_found",
    "not_leader",
    "no_leader",
    "unavailable",
    "outcome_unknown",
    "timeout",
    "overloaded",
    "lock_held",
    "still_waiting",
    "stale_token",
    "lock_not_held",
    "unknown_lock",
    "cas_mismatch",
    "no_session",
    "not_holder",
    "limit_exceeded",
    "internal",
];

/// The code of an error response, kept in the response's extensions for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// An error answer: HTTP status, stable code, message, extra fields.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Map<String, Value>,
}

impl ApiError {
    /// An error with `status`, `code` (one of [`ERROR_CODES`]) and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        assert!(ERROR_CODES.contains(&code), "undeclared error code {code}");
        ApiError { status, code, message: message.into(), extra: Map::new() }
    }

    /// Adds a field to the JSON body.
    pub fn with(mut self, field: &str, value: impl Into<Value>) -> ApiError {
        self.extra.insert(field.to_owned(), value.into());
        self
    }

    /// The stable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 429 `overloaded`.
    pub fn overloaded(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", message)
    }

    /// 503 `unavailable`.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 504 `outcome_unknown`.
    pub fn outcome_unknown(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "outcome_unknown", message)
    }

    /// 504 `timeout`.
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// The answer when the node thread gave none.
    pub(crate) fn from_call(e: CallError) -> ApiError {
        match e {
            CallError::Overloaded => ApiError::overloaded("the node's input queue is full"),
            CallError::Stopped => ApiError::unavailable("the node is shutting down"),
            CallError::Timeout => ApiError::timeout("no answer within request_timeout"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("code".into(), json!(self.code));
        body.insert("message".into(), json!(self.message));
        body.extend(self.extra);
        let mut response = (self.status, axum::Json(Value::Object(body))).into_response();
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

/// Parses a JSON body; a body past the limit is 413 `limit_exceeded`, anything unreadable 400.
pub(crate) fn json_body<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            let message = format!("the body is larger than {} bytes", super::HTTP_BODY_BYTES_MAX);
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "limit_exceeded", message)
        } else {
            ApiError::bad_request(format!("cannot read the body: {rejection}"))
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not the expected JSON: {e}")))
}
