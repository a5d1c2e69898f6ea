//! A three-node cluster in one process (real sockets on 127.0.0.1, real data directories):
//! the HTTP API end to end, restarts, refusals and the graceful stop.
//!
//! These tests wait for conditions with generous deadlines; they measure nothing.

mod common;

use std::time::Duration;

use common::Cluster;
use palisade_node::lock::{Fence, Op, Refused, Reply, RequestId};
use palisade_node::{ClientRequest, ReplyResult, RequestBody};
use palisade_server::ServerError;
use serde_json::{Value, json};

fn mutate(attempt: u64, client: u64, seq: u64, op: Op) -> ClientRequest {
    let id = Some(RequestId { client, seq });
    ClientRequest { attempt, id, body: RequestBody::Mutate(op), wait: None }
}

fn follower_of(leader: usize) -> usize {
    (leader + 1) % 3
}

/// The protocol endpoint on the leader: session, acquire, fenced put, and the stale token
/// refused (fencing, figure 8-5); a follower answers NotLeader itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_serves_sessions_locks_and_fenced_writes() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let (http, base) = (&cluster.http, cluster.url(leader));
    let ttl = Duration::from_secs(10);
    let reply = http.rpc(&base, &mutate(1, 0xa1, 1, Op::OpenSession { ttl })).await;
    assert_eq!(reply.attempt, 1);
    let ReplyResult::Done(Ok(Reply::SessionOpened { session, .. })) = reply.result else {
        panic!("{reply:?}")
    };
    let acquire = Op::Acquire { session, lock: "L".into(), wait: false };
    let reply = http.rpc(&base, &mutate(2, 0xa1, 2, acquire)).await;
    let ReplyResult::Done(Ok(Reply::Acquired { holder, .. })) = reply.result else {
        panic!("{reply:?}")
    };
    let put = |seq, token| {
        let fence = Some(Fence { lock: "L".into(), token });
        let op = Op::Put { key: "k".into(), value: b"v".to_vec(), fence, hlc: Default::default() };
        mutate(seq, 0xa1, seq, op)
    };
    let reply = http.rpc(&base, &put(3, holder.token)).await;
    assert!(matches!(reply.result, ReplyResult::Done(Ok(Reply::Written { .. }))), "{reply:?}");
    let reply = http.rpc(&base, &put(4, holder.token - 1)).await;
    assert!(matches!(reply.result, ReplyResult::Done(Err(Refused::Fence(_)))), "{reply:?}");
    // A follower does not propose: it names the leader.
    let other = cluster.url(follower_of(leader));
    let reply = http.rpc(&other, &put(5, holder.token)).await;
    let leader_id = leader as u64 + 1;
    assert_eq!(reply.result, ReplyResult::NotLeader { leader: Some(leader_id) });
    // Bad JSON and invalid requests are 400 bad_request.
    let (status, body) = http.post(&format!("{base}/v1/rpc"), &json!({"attempt": 1})).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
    let mut no_id = put(6, holder.token);
    no_id.id = None;
    let body = serde_json::to_value(&no_id).unwrap();
    let (status, body) = http.post(&format!("{base}/v1/rpc"), &body).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("bad_request")), "{body}");
    cluster.stop().await;
}

/// The REST endpoints through a follower, which forwards them to the leader: open a session,
/// acquire, fenced write, a stale token refused with 409 stale_token, read, release, close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_on_a_follower_is_forwarded_to_the_leader() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let (http, base) = (&cluster.http, cluster.url(follower_of(leader)));
    let (status, opened) =
        http.post(&format!("{base}/v1/sessions"), &json!({"ttl_ms": 10000})).await;
    assert_eq!(status, 200, "{opened}");
    let session = opened["session"].as_u64().expect("a session id");
    assert!(opened["client"].as_str().is_some_and(|c| c.starts_with("0x")), "{opened}");
    assert_eq!(opened["ttl_ms"], 10000);
    let acquire = json!({"session": session, "wait_ms": null});
    let (status, granted) = http.post(&format!("{base}/v1/locks/res/L1/acquire"), &acquire).await;
    assert_eq!(status, 200, "{granted}");
    assert_eq!(granted["lock"], "res/L1");
    let token = granted["token"].as_u64().expect("a token");
    // A second session finds the lock held.
    let (_, other) = http.post(&format!("{base}/v1/sessions"), &json!({"ttl_ms": 10000})).await;
    let other = other["session"].as_u64().unwrap();
    let (status, busy) =
        http.post(&format!("{base}/v1/locks/res/L1/acquire"), &json!({"session": other})).await;
    assert_eq!((status, busy["code"].as_str()), (409, Some("lock_held")), "{busy}");
    assert_eq!(busy["holder"]["token"], token);
    // Fenced writes: the current token passes, an older one is refused.
    let fence = |token: u64| json!({"lock": "res/L1", "token": token});
    let write = |token: u64| json!({"value": "hello", "fence": fence(token), "session": session});
    let (status, written) = http.put(&format!("{base}/v1/kv/greeting"), &write(token)).await;
    assert_eq!(status, 200, "{written}");
    assert!(written["version"].as_str().is_some(), "{written}");
    let (status, stale) = http.put(&format!("{base}/v1/kv/greeting"), &write(token - 1)).await;
    assert_eq!((status, stale["code"].as_str()), (409, Some("stale_token")), "{stale}");
    assert_eq!(
        (stale["presented"].as_u64(), stale["current"].as_u64()),
        (Some(token - 1), Some(token))
    );
    let (status, unknown) = http
        .put(
            &format!("{base}/v1/kv/greeting"),
            &json!({"value": "x", "fence": {"lock": "nope", "token": 1}, "session": session}),
        )
        .await;
    assert_eq!((status, unknown["code"].as_str()), (409, Some("unknown_lock")), "{unknown}");
    // A write without a session or key is refused before anything happens.
    let (status, refused) =
        http.put(&format!("{base}/v1/kv/greeting"), &json!({"value": "x"})).await;
    assert_eq!((status, refused["code"].as_str()), (400, Some("bad_request")), "{refused}");
    // Reads: linearizable (forwarded), serializable (local, eventually the same).
    let (status, read) = http.get(&format!("{base}/v1/kv/greeting")).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        (read["value"].as_str(), read["fence"]["token"].as_u64()),
        (Some("hello"), Some(token))
    );
    let (status, missing) =
        http.get(&format!("{base}/v1/kv/nothing?consistency=serializable")).await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("not_found")), "{missing}");
    let (status, info) = http.get(&format!("{base}/v1/locks/res/L1")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        (info["token"].as_u64(), info["holder"]["session"].as_u64()),
        (Some(token), Some(session))
    );
    // Release hands nothing over (nobody waits); the old token is stale from now on.
    let (status, released) =
        http.post(&format!("{base}/v1/locks/res/L1/release"), &json!({"session": session})).await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(
        (released["released"].as_bool(), released["token"].as_u64()),
        (Some(true), Some(token))
    );
    let (status, not_holder) =
        http.post(&format!("{base}/v1/locks/res/L1/release"), &json!({"session": session})).await;
    assert_eq!((status, not_holder["code"].as_str()), (409, Some("not_holder")), "{not_holder}");
    let (status, kept) =
        http.post(&format!("{base}/v1/sessions/{session}/keepalive"), &json!({})).await;
    assert_eq!(status, 200, "{kept}");
    let (status, closed) =
        http.send("DELETE", &format!("{base}/v1/sessions/{session}"), None, &[]).await;
    assert_eq!((status, closed["closed"].as_bool()), (200, Some(true)), "{closed}");
    let (status, gone) =
        http.post(&format!("{base}/v1/sessions/{session}/keepalive"), &json!({})).await;
    assert_eq!((status, gone["code"].as_str()), (404, Some("no_session")), "{gone}");
    cluster.stop().await;
}

/// An Idempotency-Key makes a REST mutation safely retryable: the retry gets the first
/// execution's answer, and nothing runs twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotency_key_makes_a_retry_return_the_first_answer() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let (http, base) = (&cluster.http, cluster.url(leader));
    let open = json!({"ttl_ms": 10000});
    let key = [("idempotency-key", "0xbeef:1")];
    let url = format!("{base}/v1/sessions");
    let (status, first) = http.send("POST", &url, Some(&open), &key).await;
    assert_eq!(status, 200, "{first}");
    let (status, again) = http.send("POST", &url, Some(&open), &key).await;
    assert_eq!((status, &again), (200, &first), "the same session, not a second one");
    assert_eq!(first["client"], "0x000000000000beef");
    let session = first["session"].as_u64().unwrap();
    let put = json!({"value": "a"});
    let key2 = [("idempotency-key", "beef:2")];
    let url = format!("{base}/v1/kv/k");
    let (status, one) = http.send("PUT", &url, Some(&put), &key2).await;
    assert_eq!(status, 200, "{one}");
    let (_, two) = http.send("PUT", &url, Some(&json!({"value": "b"})), &key2).await;
    assert_eq!(one, two, "the retry is answered from the first execution");
    let (_, read) = http.get(&format!("{base}/v1/kv/k")).await;
    assert_eq!(read["value"], "a");
    let (status, bad) = http.send("PUT", &url, Some(&put), &[("idempotency-key", "zz")]).await;
    assert_eq!((status, bad["code"].as_str()), (400, Some("bad_request")), "{bad}");
    let (status, gone) = http
        .send(
            "DELETE",
            &format!("{base}/v1/sessions/{session}"),
            None,
            &[("idempotency-key", "beef:3")],
        )
        .await;
    assert_eq!(status, 200, "{gone}");
    cluster.stop().await;
}

/// `GET /v1/status` names the leader and shows the lock; `/metrics` has every family;
/// `/v1/time` is synchronized with the leader; the status page is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_time_metrics_and_the_page() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let (http, base) = (&cluster.http, cluster.url(leader));
    let (_, opened) = http.post(&format!("{base}/v1/sessions"), &json!({"ttl_ms": 10000})).await;
    let session = opened["session"].as_u64().unwrap();
    let (_, granted) =
        http.post(&format!("{base}/v1/locks/demo/acquire"), &json!({"session": session})).await;
    let token = granted["token"].as_u64().unwrap();
    let follower = cluster.url(follower_of(leader));
    let leader_id = leader as u64 + 1;
    for url in [&base, &follower] {
        // The follower may apply the grant a heartbeat later.
        let mut status = Value::Null;
        for _ in 0..200 {
            status = http.get(&format!("{url}/v1/status")).await.1;
            if status["locks"][0]["token"] == token {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(status["leader"], leader_id, "{status}");
        assert_eq!(status["locks"][0]["name"], "demo", "{status}");
        assert_eq!(status["locks"][0]["holder_session"], session);
        assert_eq!(status["members"].as_array().map(Vec::len), Some(3));
        assert_eq!(status["sessions"][0]["id"], session);
    }
    let (_, status) = http.get(&format!("{base}/v1/status")).await;
    assert_eq!(status["role"], "leader");
    let time = wait_for_time(http, &follower).await;
    assert_eq!(time["status"], "synchronized", "{time}");
    let (earliest, latest) =
        (time["earliest_unix_ms"].as_u64().unwrap(), time["latest_unix_ms"].as_u64().unwrap());
    assert!(earliest <= latest, "{time}");
    assert!(time["error_ms"].as_f64().is_some_and(|e| e >= 0.0), "{time}");
    let (status, metrics) = http.text(&format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    for family in [
        "palisade_term",
        "palisade_commit_index",
        "palisade_applied_index",
        "palisade_role",
        "palisade_sessions",
        "palisade_locks",
        "palisade_fsync_seconds_count",
        "palisade_requests_total{op=\"acquire\",outcome=\"ok\"}",
        "palisade_phi{peer=",
        "palisade_frames_sent_total",
    ] {
        assert!(metrics.contains(family), "no {family} in\n{metrics}");
    }
    let (status, page) = http.text(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert!(page.contains("/v1/status"));
    cluster.stop().await;
}

async fn wait_for_time(http: &common::Http, url: &str) -> Value {
    for _ in 0..300 {
        let (_, time) = http.get(&format!("{url}/v1/time")).await;
        if time["status"] == "synchronized" {
            return time;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    http.get(&format!("{url}/v1/time")).await.1
}

/// A node restarted from its data directory keeps what it acknowledged, and catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_data() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let base = cluster.url(leader);
    let http = cluster.http.clone();
    let (_, opened) = http.post(&format!("{base}/v1/sessions"), &json!({"ttl_ms": 60000})).await;
    let session = opened["session"].as_u64().unwrap();
    let put = json!({"value": "durable", "session": session});
    let (status, _) = http.put(&format!("{base}/v1/kv/kept"), &put).await;
    assert_eq!(status, 200);
    // Restart every node, the leader last.
    for i in [follower_of(leader), follower_of(follower_of(leader)), leader] {
        cluster.abort(i).await;
        cluster.restart(i).await;
    }
    cluster.leader().await;
    for i in 0..3 {
        let url = format!("{}/v1/kv/kept?consistency=serializable", cluster.url(i));
        let mut read = Value::Null;
        for _ in 0..500 {
            read = http.get(&url).await.1;
            if read["value"] == "durable" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(read["value"], "durable", "node {}: {read}", i + 1);
    }
    let url = format!("{}/v1/locks/x/acquire", cluster.url(0));
    let (status, granted) = http.post(&url, &json!({"session": session})).await;
    assert_eq!(status, 200, "the session survived the restarts: {granted}");
    cluster.stop().await;
}

/// SIGTERM-style stop of the leader: it hands leadership to a caught-up follower first, which
/// then leads without waiting for an election timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_stop_of_the_leader_transfers_leadership() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let server = cluster.nodes[leader].take().unwrap();
    let report = server.shutdown().await.expect("stops cleanly");
    let to = report.transferred_to.expect("the leader drained");
    assert_ne!(to, leader as u64 + 1);
    assert!(report.transfer_completed, "{report:?}");
    assert!(report.requests_finished);
    let new = cluster.leader().await;
    assert_eq!(new as u64 + 1, to, "the transfer target leads");
    let base = cluster.url(new);
    let (status, _) =
        cluster.http.post(&format!("{base}/v1/sessions"), &json!({"ttl_ms": 5000})).await;
    assert_eq!(status, 200, "the two remaining nodes serve");
    let (status, body) = cluster.http.post(&format!("{base}/v1/admin/drain"), &json!({})).await;
    assert_eq!(status, 200);
    assert!(body["transferred_to"].as_u64().is_some(), "{body}");
    cluster.stop().await;
}

/// A data directory of another node, and a corrupt WAL, are refused with one clear line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_or_corrupt_data_directory_is_refused() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let base = cluster.url(leader);
    let (_, opened) =
        cluster.http.post(&format!("{base}/v1/sessions"), &json!({"ttl_ms": 60000})).await;
    assert!(opened["session"].as_u64().is_some());
    cluster.abort(0).await;
    // Node 1's configuration on node 2's directory.
    let mut wrong = cluster.configs[0].clone();
    wrong.data_dir = cluster.data_dir(1);
    let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = palisade_server::Server::start_on(wrong, peer, http).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ServerError::Config(_)), "{text}");
    assert!(text.contains("belongs to node 2") && text.contains("this is node 1"), "{text}");
    // Flip a byte in the middle of node 1's first WAL segment.
    let dir = cluster.data_dir(0);
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
        .collect();
    segments.sort();
    let segment = segments.first().expect("a WAL segment").clone();
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();
    let config = cluster.configs[0].clone();
    let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = palisade_server::Server::start_on(config, peer, http).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, ServerError::CorruptWal { .. }), "{text}");
    assert!(text.contains(&segment.display().to_string()), "names the file: {text}");
    assert!(text.contains("byte offset"), "names the offset: {text}");
    assert!(!text.contains('\n'), "one line: {text}");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "nothing changed on disk");
    cluster.stop().await;
}

/// A blocking acquire through REST waits for the hand-off and is answered in the release's
/// apply step; a short wait ends with 202 still_waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_acquire_waits_for_the_release() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let base = cluster.url(leader);
    let http = cluster.http.clone();
    let open = |http: common::Http, base: String| async move {
        let (_, opened) =
            http.post(&format!("{base}/v1/sessions"), &json!({"ttl_ms": 10000})).await;
        opened["session"].as_u64().unwrap()
    };
    let (a, b) = (open(http.clone(), base.clone()).await, open(http.clone(), base.clone()).await);
    let url = format!("{base}/v1/locks/q/acquire");
    let (status, _) = http.post(&url, &json!({"session": a})).await;
    assert_eq!(status, 200);
    let (status, waiting) = http.post(&url, &json!({"session": b, "wait_ms": 100})).await;
    assert_eq!((status, waiting["code"].as_str()), (202, Some("still_waiting")), "{waiting}");
    assert_eq!(waiting["position"], 0);
    let blocked = {
        let (http, url) = (http.clone(), url.clone());
        tokio::spawn(async move { http.post(&url, &json!({"session": b, "wait_ms": 5000})).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, released) =
        http.post(&format!("{base}/v1/locks/q/release"), &json!({"session": a})).await;
    assert_eq!(status, 200, "{released}");
    let next = released["next"]["token"].as_u64().expect("handed to b");
    let (status, granted) = blocked.await.unwrap();
    assert_eq!(status, 200, "{granted}");
    assert_eq!((granted["session"].as_u64(), granted["token"].as_u64()), (Some(b), Some(next)));
    cluster.stop().await;
}
