//! The JSON contract of `/v1/status`, the helpers that fill it, and the page's router.

use std::collections::BTreeSet;
use std::time::Duration;

use palisade_clock::{TimeInterval, WallTime};
use palisade_lock::{Holder, SessionId};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::config::HostPort;

fn sample() -> StatusView {
    StatusView {
        node_id: 1,
        cluster_id: 0xfeed_0000_0000_0001,
        cluster_name: Some("example".into()),
        role: RoleView::Leader,
        term: 3,
        leader: Some(1),
        commit: 42,
        applied: 41,
        members: vec![MemberView {
            id: 2,
            peer_addr: "127.0.0.1:7002".into(),
            http_addr: "127.0.0.1:8002".into(),
            is_self: false,
            is_leader: false,
            match_index: Some(42),
            phi: Some(0.4),
            offset_ms: Some(-1.5),
            offset_error_ms: Some(0.25),
            clock: PeerClockView::Ok,
        }],
        sessions: vec![SessionView {
            id: 7,
            client: u64::MAX - 1,
            ttl_ms: 10_000,
            ttl_left_ms: Some(8_500),
        }],
        locks: vec![LockView {
            name: "L0".into(),
            holder_session: Some(7),
            token: Some(33),
            since_index: Some(33),
            waiters: vec![9],
            delayed_since: None,
        }],
        time: TimeView {
            earliest_unix_ms: Some(1_700_000_000_000),
            latest_unix_ms: Some(1_700_000_000_004),
            status: ClockStatusView::Synchronized,
        },
        version: "0.1.0".into(),
    }
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().expect("an object").keys().map(String::as_str).collect()
}

#[test]
fn status_view_field_names() {
    let json = serde_json::to_value(sample()).unwrap();
    let top = [
        "node_id",
        "cluster_id",
        "cluster_name",
        "role",
        "term",
        "leader",
        "commit",
        "applied",
        "members",
        "sessions",
        "locks",
        "time",
        "version",
    ];
    assert_eq!(keys(&json), top.into());
    let member = [
        "id",
        "peer_addr",
        "http_addr",
        "is_self",
        "is_leader",
        "match_index",
        "phi",
        "offset_ms",
        "offset_error_ms",
        "clock",
    ];
    assert_eq!(keys(&json["members"][0]), member.into());
    assert_eq!(keys(&json["sessions"][0]), ["id", "client", "ttl_ms", "ttl_left_ms"].into());
    let lock = ["name", "holder_session", "token", "since_index", "waiters", "delayed_since"];
    assert_eq!(keys(&json["locks"][0]), lock.into());
    assert_eq!(keys(&json["time"]), ["earliest_unix_ms", "latest_unix_ms", "status"].into());
    assert_eq!(json["cluster_id"], json!("0xfeed000000000001"));
    assert_eq!(json["sessions"][0]["client"], json!("0xfffffffffffffffe"));
    assert_eq!(json["role"], json!("leader"));
    assert_eq!(json["members"][0]["clock"], json!("ok"));
    assert_eq!(json["time"]["status"], json!("synchronized"));
    assert_eq!(json["locks"][0]["token"], json!(33));
    let back: StatusView = serde_json::from_value(json).unwrap();
    assert_eq!(back, sample());
}

#[test]
fn roles_and_clock_statuses_are_snake_case() {
    let roles = [Role::Follower, Role::PreCandidate, Role::Candidate, Role::Leader];
    let names: Vec<Value> = roles.map(|r| serde_json::to_value(RoleView::from(r)).unwrap()).into();
    assert_eq!(
        names,
        vec![json!("follower"), json!("pre_candidate"), json!("candidate"), json!("leader")]
    );
    let free = ClockStatusView::from(ClockStatus::FreeRunning);
    assert_eq!(serde_json::to_value(free).unwrap(), json!("free_running"));
    assert_eq!(serde_json::to_value(PeerClockView::BeyondMax).unwrap(), json!("beyond_max"));
}

#[test]
fn helpers_fill_rows_from_core_types() {
    let max = Duration::from_millis(500);
    let estimate = |offset_ms: i64, error_ms: u64| OffsetEstimate {
        offset_nanos: offset_ms * 1_000_000,
        rtt: Duration::from_millis(1),
        error: Duration::from_millis(error_ms),
        age: Duration::ZERO,
    };
    assert_eq!(PeerClockView::of(None, max), PeerClockView::Unknown);
    assert_eq!(PeerClockView::of(Some(&estimate(-100, 10)), max), PeerClockView::Ok);
    assert_eq!(PeerClockView::of(Some(&estimate(495, 10)), max), PeerClockView::Uncertain);
    assert_eq!(PeerClockView::of(Some(&estimate(-600, 10)), max), PeerClockView::BeyondMax);

    let peer = PeerConfig {
        id: 2,
        peer_addr: HostPort::parse("127.0.0.1:7002").unwrap(),
        http_addr: HostPort::parse("127.0.0.1:8002").unwrap(),
    };
    let status = PeerStatus { id: 2, progress: None, phi: 1.5, offset: Some(estimate(3, 1)) };
    let row = MemberView::new(&peer, 1, Some(2), Some(&status), max);
    assert!(row.is_leader && !row.is_self);
    assert_eq!((row.phi, row.offset_ms, row.offset_error_ms), (Some(1.5), Some(3.0), Some(1.0)));
    assert_eq!((row.match_index, row.clock), (None, PeerClockView::Ok));
    let own = MemberView::new(&peer, 2, None, None, max);
    assert!(own.is_self && !own.is_leader && own.phi.is_none());

    let holder = Holder { session: SessionId(7), client: 5, token: 33, since_index: 33 };
    let info = LockInfo { holder: Some(holder), waiters: vec![SessionId(9)], delayed_since: None };
    let lock = LockView::new("L0", &info);
    assert_eq!((lock.holder_session, lock.token, lock.waiters), (Some(7), Some(33), vec![9]));

    let bounded = BoundedNow {
        interval: TimeInterval {
            earliest: WallTime::from_nanos(1_500_000),
            latest: WallTime::from_nanos(3_500_001),
        },
        status: ClockStatus::Synchronized,
        error: Duration::from_millis(1),
    };
    let time = TimeView::from_bounded(&bounded);
    assert_eq!((time.earliest_unix_ms, time.latest_unix_ms), (Some(1), Some(4)));
    let unknown = BoundedNow { status: ClockStatus::Unknown, ..bounded };
    assert_eq!(TimeView::from_bounded(&unknown).earliest_unix_ms, None);
}

#[test]
fn the_page_is_self_contained_and_has_the_documented_ids() {
    for id in ["leader", "role", "term", "members", "sessions", "locks", "banner"] {
        assert!(STATUS_PAGE_HTML.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    for hint in ["data-lock", "token", "/v1/status"] {
        assert!(STATUS_PAGE_HTML.contains(hint), "no {hint}");
    }
    for external in ["<script src", "<link", "@import", "https://", "url("] {
        assert!(!STATUS_PAGE_HTML.contains(external), "external asset: {external}");
    }
    assert!(!STATUS_PAGE_HTML.contains("innerHTML"), "data is inserted as text only");
}

#[tokio::test]
async fn get_root_serves_the_page() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, status_page_router::<()>()).await.unwrap();
    });
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    server.abort();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: text/html"), "{head}");
    assert!(body.contains("<title>palisade"));
    assert!(body.contains("id=\"locks\""));
}
