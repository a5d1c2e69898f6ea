//! The Rust client against a real in-process cluster (three nodes on 127.0.0.1).
//!
//! Each test names the guarantee it checks (docs/DESIGN.md, "Mechanisms"): fencing tokens
//! strictly increase and a stale one is rejected; the client finds the leader from any member;
//! a retried mutation runs at most once (same request id); the lock guard goes to `Lost` when
//! its session can no longer be renewed; an outcome the client could not learn is `Unknown`,
//! never a guessed success or failure.

mod common;

use std::time::Duration;

use common::{Cluster, Proxy, quick};
use palisade_client::{Client, ClientOptions, Error, Expect, LeaseState, Outcome};

const TTL: Duration = Duration::from_secs(2);

fn done<T: std::fmt::Debug>(outcome: Outcome<T>) -> T {
    match outcome {
        Outcome::Done(value) => value,
        Outcome::Unknown => panic!("outcome unknown"),
    }
}

/// Fencing: tokens strictly increase across grants; a write with the old token is rejected;
/// a held lock is refused to another session with the holder named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_lock_and_fencing_token() {
    let cluster = Cluster::start(3).await;
    cluster.leader().await;
    let a = Client::connect(cluster.options(TTL)).await.unwrap();
    let b = Client::connect(cluster.options(TTL)).await.unwrap();
    assert_eq!(a.members().len(), 3);

    let guard = done(a.lock("demo", Duration::from_secs(5)).await.unwrap());
    assert!(guard.token() > 0);
    assert!(guard.is_safe_now());
    assert_eq!(guard.state(), LeaseState::Held);
    assert_eq!(*guard.watch().borrow(), LeaseState::Held);
    done(a.put("data", "from a", Some(guard.fence())).await.unwrap());

    match b.try_lock("demo").await {
        Err(Error::LockHeld { holder: Some(holder), .. }) => {
            assert_eq!(holder.token, guard.token());
            assert_eq!(holder.session, guard.session());
        }
        other => panic!("expected LockHeld, got {other:?}"),
    }
    let message = b.try_lock("demo").await.unwrap_err().to_string();
    assert!(message.contains(&format!("token {}", guard.token())), "{message}");

    let old_fence = guard.fence();
    done(guard.release().await.unwrap());
    let second = done(b.lock("demo", Duration::from_secs(5)).await.unwrap());
    assert!(second.token() > old_fence.token, "tokens strictly increase");
    done(b.put("data", "from b", Some(second.fence())).await.unwrap());

    let stale = a.put("data", "late write from a", Some(old_fence.clone())).await;
    match stale {
        Err(e @ Error::StaleFence(_)) => {
            assert_eq!(e.current_token(), Some(second.token()));
            assert!(e.to_string().contains("stale"), "{e}");
        }
        other => panic!("expected a stale fence, got {other:?}"),
    }
    let value = a.get("data").await.unwrap().expect("the key exists");
    assert_eq!(value.data, b"from b");
    assert_eq!(value.written_by, Some(second.fence()));
    a.shutdown();
    b.shutdown();
    cluster.stop().await;
}

/// Leader discovery: given only a follower's endpoint, the client learns the members and
/// reaches the leader (NotLeader hints), for mutations and reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_is_found_from_a_follower_endpoint() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let follower = (leader + 1) % 3;
    let options = quick(ClientOptions::new([cluster.url(follower)]).with_ttl(TTL));
    let client = Client::connect(options).await.unwrap();
    assert_eq!(client.members().len(), 3, "all members learned from one");
    done(client.put("k", "v", None).await.unwrap());
    assert_eq!(client.get("k").await.unwrap().unwrap().data, b"v");
    let guard = done(client.lock("L", Duration::from_secs(5)).await.unwrap());
    assert!(guard.is_safe_now());
    let reports = client.cluster_status().await;
    assert_eq!(reports.len(), 3);
    let leaders: Vec<_> = reports
        .iter()
        .filter(|r| r.status.as_ref().is_ok_and(|s| s.raft.leader == Some(s.raft.id)))
        .map(|r| r.node)
        .collect();
    assert_eq!(leaders, vec![leader as u64 + 1]);
    client.shutdown();
    cluster.stop().await;
}

/// At-most-once: the first answer to a compare-and-swap (expect absent) is lost after the
/// leader applied it; the client retries with the same request id, and the state machine
/// answers from its dedup table. A second execution would have answered `CasMismatch`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_with_the_same_id_is_not_applied_twice() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let upstream = cluster.configs[leader].http_listen.resolve("http").unwrap();
    let proxy = Proxy::start(upstream, b"\"Cas\"", 1).await;
    // Only the proxy is given: the leader's id maps to it, the followers to themselves.
    let client = Client::connect(quick(ClientOptions::new([proxy.url()]))).await.unwrap();
    let version = client.cas("once", Expect::Absent, "first", None).await.unwrap();
    assert!(version.is_done(), "the retry learned the first execution's answer");
    assert_eq!(proxy.swallowed.load(std::sync::atomic::Ordering::SeqCst), 1, "one answer lost");
    let value = client.get("once").await.unwrap().unwrap();
    assert_eq!(value.data, b"first");
    assert_eq!(Some(value.version), version.done());
    client.shutdown();
    cluster.stop().await;
}

/// Leases: with keepalives stopped, the guard's watch goes `Held → Jeopardy → Lost` within
/// the TTL, the server expires the session, and the next holder's token fences the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guard_is_lost_when_the_session_expires() {
    let cluster = Cluster::start(3).await;
    cluster.leader().await;
    let a = Client::connect(cluster.options(TTL)).await.unwrap();
    let guard = done(a.lock("job", Duration::from_secs(5)).await.unwrap());
    let mut watch = guard.watch();
    let mut seen = vec![*watch.borrow()];
    let stopped = tokio::time::Instant::now();
    a.set_keepalives_enabled(false);
    let lost = async {
        while *watch.borrow() != LeaseState::Lost {
            watch.changed().await.unwrap();
            seen.push(*watch.borrow());
        }
    };
    tokio::time::timeout(TTL * 2, lost).await.expect("lost within the TTL");
    // The local lease ends before the TTL (plus the wake-up latency of a loaded machine).
    assert!(stopped.elapsed() <= TTL + Duration::from_millis(250), "{:?}", stopped.elapsed());
    assert_eq!(seen.first(), Some(&LeaseState::Held));
    assert!(seen.contains(&LeaseState::Jeopardy), "{seen:?}");
    assert_eq!(seen.last(), Some(&LeaseState::Lost));
    assert!(!guard.is_safe_now());
    assert_eq!(guard.state(), LeaseState::Lost);

    let b = Client::connect(cluster.options(TTL)).await.unwrap();
    let next = done(b.lock("job", Duration::from_secs(10)).await.unwrap());
    assert!(next.token() > guard.token());
    let expired = a.lock("other", Duration::ZERO).await;
    assert!(matches!(expired, Err(Error::SessionExpired { .. })), "{expired:?}");
    // A write opens a new session; the old token is fenced off.
    let late = a.put("out", "late", Some(guard.fence())).await;
    assert!(matches!(late, Err(Error::StaleFence(_))), "{late:?}");
    a.shutdown();
    b.shutdown();
    cluster.stop().await;
}

/// Unknown outcomes: every answer from the leader is lost, so a write may have run (it did)
/// but the client cannot learn it: `Unknown`, not an error and not a success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outcome_that_cannot_be_learned_is_unknown() {
    let cluster = Cluster::start(3).await;
    let leader = cluster.leader().await;
    let upstream = cluster.configs[leader].http_listen.resolve("http").unwrap();
    let proxy = Proxy::start(upstream, b"\"Put\"", usize::MAX).await;
    let mut options = quick(ClientOptions::new([proxy.url()]));
    options.op_timeout = Duration::from_secs(2);
    let client = Client::connect(options).await.unwrap();
    let put = client.put("maybe", "written", None).await.unwrap();
    assert_eq!(put, Outcome::Unknown);
    assert!(proxy.swallowed.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    // It did run: which is exactly why "failed" would have been a lie.
    assert_eq!(client.get("maybe").await.unwrap().unwrap().data, b"written");
    client.shutdown();
    cluster.stop().await;
}

/// No cluster: a write that provably never left is an error naming every endpoint tried, not
/// `Unknown`; the held lock's guard goes to `Lost` on the local lease alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_cluster_loses_the_lock_and_is_reported_unreachable() {
    let mut cluster = Cluster::start(3).await;
    cluster.leader().await;
    let client = Client::connect(cluster.options(TTL)).await.unwrap();
    let guard = done(client.lock("gone", Duration::from_secs(5)).await.unwrap());
    for i in 0..3 {
        cluster.abort(i).await;
    }
    tokio::time::timeout(TTL * 2, guard.lost()).await.expect("lost within the TTL");
    assert!(!guard.is_safe_now());
    match client.put("k", "v", None).await {
        Err(Error::NoClusterReachable { tried }) => assert!(!tried.is_empty()),
        other => panic!("expected NoClusterReachable, got {other:?}"),
    }
    client.shutdown();
    let urls = cluster.urls();
    match Client::connect(quick(ClientOptions::new(urls.clone()))).await {
        Err(Error::NoClusterReachable { tried }) => {
            assert_eq!(tried.len(), 3);
            for url in &urls {
                assert!(tried.iter().any(|t| t.starts_with(url.as_str())), "{tried:?}");
            }
        }
        other => panic!("expected NoClusterReachable, got {other:?}"),
    }
    cluster.stop().await;
}
