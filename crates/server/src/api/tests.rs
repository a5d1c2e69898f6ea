//! The API against its OpenAPI document: the served document is the file, every route is in
//! it and every path of it is routed, the error codes agree; and the body limit.

use std::collections::BTreeSet;
use std::sync::mpsc::sync_channel;

use axum::body::{Body, to_bytes};
use axum::http::Request as HttpRequest;
use serde_json::Value;
use tower::ServiceExt;

use super::*;

fn config() -> Arc<ServerConfig> {
    let dir = std::env::temp_dir().join("palisade-api-tests");
    let config = ServerConfig::dev_cluster(&dir, 1, 17300).expect("a config").remove(0);
    Arc::new(config)
}

/// A router whose node thread is gone: every call to it is `unavailable` at once.
fn router_without_node() -> Router {
    let (inputs, receiver) = sync_channel(1);
    drop(receiver);
    router(AppState::new(config(), inputs, Arc::new(Metrics::new())))
}

async fn send(router: &Router, method: &str, uri: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let request = HttpRequest::builder().method(method).uri(uri).body(Body::from(body)).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    (status, to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
}

fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    let text = std::fs::read_to_string(path).expect("docs/openapi.json");
    assert_eq!(text, OPENAPI_JSON, "the embedded document is the file");
    serde_json::from_str(&text).expect("the document is JSON")
}

#[tokio::test]
async fn the_served_document_is_the_file() {
    let file = document();
    let (status, body) = send(&router_without_node(), "GET", "/openapi.json", Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let served: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(served, file);
    assert_eq!(file["openapi"], "3.1.0");
}

#[test]
fn every_route_is_documented_and_every_documented_path_is_a_route() {
    let doc = document();
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> =
        ROUTES.iter().map(|r| (r.method.to_owned(), r.openapi_path.to_owned())).collect();
    assert_eq!(routed.len(), ROUTES.len(), "no route is listed twice");
    assert_eq!(documented, routed);
}

#[test]
fn the_documented_error_codes_are_the_codes() {
    let doc = document();
    let codes = &doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"];
    let documented: Vec<&str> =
        codes.as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(documented, ERROR_CODES);
}

/// Each documented route reaches its handler (the node is gone: `unavailable`, or a page),
/// never the fallback.
#[tokio::test]
async fn every_route_reaches_a_handler() {
    let router = router_without_node();
    for spec in ROUTES {
        let uri = spec
            .openapi_path
            .replace("{session}", "7")
            .replace("{name}", "a/b")
            .replace("{key}", "a/b");
        let body = match spec.op {
            "rpc" => br#"{"attempt":1,"id":null,"body":{"Read":"Status"},"wait":null}"#.to_vec(),
            "session_open" => br#"{"ttl_ms":10000}"#.to_vec(),
            "acquire" | "release" => br#"{"session":7}"#.to_vec(),
            "kv_put" => br#"{"value":"v","session":7}"#.to_vec(),
            "kv_cas" => br#"{"expected":{"absent":true},"value":"v","session":7}"#.to_vec(),
            _ => Vec::new(),
        };
        let uri = if spec.op == "kv_delete" { format!("{uri}?session=7") } else { uri };
        let (status, body) = send(&router, spec.method, &uri, body).await;
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("no endpoint"), "{} {uri}: {status} {text}", spec.method);
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{} {uri}", spec.method);
        let answered = status == StatusCode::OK || text.contains("\"unavailable\"");
        assert!(answered, "{} {uri}: {status} {text}", spec.method);
    }
}

#[tokio::test]
async fn unknown_paths_and_bad_bodies_are_json_errors() {
    let router = router_without_node();
    let (status, body) = send(&router, "GET", "/v2/nothing", Vec::new()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["code"], "not_found");
    let (status, body) = send(&router, "POST", "/v1/locks/a/smash", b"{}".to_vec()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{}", String::from_utf8_lossy(&body));
    let (status, body) = send(&router, "POST", "/v1/sessions", b"{\"ttl\":1}".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
    let (status, body) = send(&router, "DELETE", "/v1/status", Vec::new()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["code"], "bad_request");
}

#[tokio::test]
async fn a_body_past_the_limit_is_refused() {
    let router = router_without_node();
    let huge = vec![b' '; HTTP_BODY_BYTES_MAX + 1];
    for uri in ["/v1/rpc", "/v1/sessions", "/v1/kv/k"] {
        let method = if uri == "/v1/kv/k" { "PUT" } else { "POST" };
        let (status, body) = send(&router, method, uri, huge.clone()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        let error: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["code"], "limit_exceeded", "{uri}");
    }
}
