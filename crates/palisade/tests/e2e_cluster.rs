//! End to end: real `palisade server` processes on 127.0.0.1, talked to over the HTTP/JSON API
//! (docs/http-api.md), killed with SIGKILL and restarted from their data directories.
//!
//! What they check (docs/DESIGN.md): fencing tokens strictly increase across leaders; a
//! session outlives the leader that granted it, and a dead holder's lock is released after its
//! TTL (timed again by the new leader); a stale token is refused with the stable
//! `stale_token` code; an acknowledged write survives a crash and a restarted node catches up;
//! a damaged WAL stops the node at start with one line naming the file. The tests wait for
//! conditions with generous deadlines; they measure nothing.

mod common;

use common::{Client, Cluster, DEADLINE, wait_for};
use serde_json::{Value, json};

/// `(status, body)` of an acquire of `lock` by `session`, waiting up to `wait_ms` (or try).
fn acquire(
    cluster: &Cluster,
    client: &mut Client,
    lock: &str,
    session: u64,
    wait_ms: Option<u64>,
) -> (u16, Value) {
    let body = json!({ "session": session, "wait_ms": wait_ms });
    cluster.post(client, &format!("/v1/locks/{lock}/acquire"), &body)
}

/// The token of a successful acquire.
fn token_of(status: u16, granted: &Value) -> u64 {
    assert_eq!(status, 200, "acquire: {granted}");
    granted["token"].as_u64().unwrap_or_else(|| panic!("a token in {granted}"))
}

/// Acquires `lock`, long-polling until granted (the lock may be held, or in lock-delay).
fn acquire_blocking(cluster: &Cluster, client: &mut Client, lock: &str, session: u64) -> u64 {
    let start = std::time::Instant::now();
    loop {
        let (status, answer) = acquire(cluster, client, lock, session, Some(2000));
        match (status, answer["code"].as_str()) {
            (200, _) => return token_of(status, &answer),
            (202, Some("still_waiting")) => {}
            _ => panic!("acquire {lock}: {status} {answer}"),
        }
        assert!(start.elapsed() < DEADLINE, "{lock} was not granted\n{}", cluster.logs());
    }
}

/// Client A holds a lock and a short-lived client holds another when the leader is SIGKILLed.
/// A new leader is elected; A's session survives (keepalive through the new leader) and still
/// holds its lock with the same token; B finds it held, gets it after A releases, with a
/// larger token. The short-lived session is never kept alive: the new leader expires it after
/// its TTL and lock-delay, and D gets its lock with a larger token too.
#[test]
fn acquire_and_release_across_a_leader_failover() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let (mut a, mut b, mut c, mut d) =
        (Client::new(0xa), Client::new(0xb), Client::new(0xc), Client::new(0xd));
    let session_a = cluster.open_session(&mut a, 20_000);
    let (status, granted) = acquire(&cluster, &mut a, "failover", session_a, None);
    let t1 = token_of(status, &granted);
    let session_c = cluster.open_session(&mut c, 2_000);
    let (status, granted) = acquire(&cluster, &mut c, "orphan", session_c, None);
    let orphan_token = token_of(status, &granted);
    assert!(orphan_token > t1, "tokens increase: {orphan_token} after {t1}");

    cluster.kill(leader);
    let new_leader = cluster.leader_except(Some(leader));
    assert_ne!(new_leader, leader);
    let term = cluster.status(new_leader).map(|s| s["term"].clone()).unwrap_or(Value::Null);
    eprintln!("node {} killed; node {} leads in term {term}", leader + 1, new_leader + 1);

    // A's session survived the leader: the keepalive is served by the new leader.
    let keepalive = format!("/v1/sessions/{session_a}/keepalive");
    let (status, kept) = cluster.post(&mut a, &keepalive, &json!({}));
    assert_eq!(status, 200, "A's session survives the failover: {kept}");
    let (status, info) = cluster.read("/v1/locks/failover");
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["token"].as_u64(), Some(t1), "still A's grant: {info}");
    assert_eq!(info["holder"]["session"].as_u64(), Some(session_a), "{info}");

    // B finds the lock held by A's grant, and gets it after A releases it.
    let session_b = cluster.open_session(&mut b, 20_000);
    let (status, busy) = acquire(&cluster, &mut b, "failover", session_b, None);
    assert_eq!((status, busy["code"].as_str()), (409, Some("lock_held")), "{busy}");
    assert_eq!(busy["holder"]["token"].as_u64(), Some(t1), "{busy}");
    let release = json!({ "session": session_a });
    let (status, released) = cluster.post(&mut a, "/v1/locks/failover/release", &release);
    assert_eq!((status, released["released"].as_bool()), (200, Some(true)), "{released}");
    let (status, granted) = acquire(&cluster, &mut b, "failover", session_b, None);
    let t2 = token_of(status, &granted);
    assert!(t2 > t1, "fencing tokens strictly increase across leaders: t2 {t2} <= t1 {t1}");

    // C never kept its session alive: the new leader expires it, and D gets the lock.
    let session_d = cluster.open_session(&mut d, 20_000);
    let orphan_next = acquire_blocking(&cluster, &mut d, "orphan", session_d);
    assert!(orphan_next > orphan_token, "{orphan_next} <= {orphan_token}");
    let keepalive_c = format!("/v1/sessions/{session_c}/keepalive");
    let (status, gone) = cluster.post(&mut c, &keepalive_c, &json!({}));
    assert_eq!((status, gone["code"].as_str()), (404, Some("no_session")), "{gone}");
}

/// Figure 8-5 of the chapter over HTTP: A writes with its token and releases; B acquires
/// (a larger token) and writes; A's late write with its old token is refused with 409
/// `stale_token` naming both tokens, also when sent to a follower (which forwards it), and
/// B's value stays.
#[test]
fn a_fenced_write_with_a_stale_token_is_refused() {
    let cluster = Cluster::start(3);
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    let (mut a, mut b) = (Client::new(0xa), Client::new(0xb));
    let session_a = cluster.open_session(&mut a, 20_000);
    let session_b = cluster.open_session(&mut b, 20_000);
    let (status, granted) = acquire(&cluster, &mut a, "storage", session_a, None);
    let t1 = token_of(status, &granted);
    let write = |value: &str, token: u64, session: u64| {
        json!({
            "value": value,
            "fence": { "lock": "storage", "token": token },
            "session": session,
        })
    };
    let (status, written) = cluster.put(&mut a, "/v1/kv/account", &write("from A", t1, session_a));
    assert_eq!(status, 200, "A writes with its current token: {written}");
    let release = json!({ "session": session_a });
    let (status, released) = cluster.post(&mut a, "/v1/locks/storage/release", &release);
    assert_eq!(status, 200, "{released}");
    let (status, granted) = acquire(&cluster, &mut b, "storage", session_b, None);
    let t2 = token_of(status, &granted);
    assert!(t2 > t1, "{t2} <= {t1}");
    let (status, written) = cluster.put(&mut b, "/v1/kv/account", &write("from B", t2, session_b));
    assert_eq!(status, 200, "B writes with the new token: {written}");

    // A wakes up and writes with its old token: to the leader, and through a follower.
    for node in [leader, follower] {
        let url = format!("{}/v1/kv/account", cluster.url(node));
        let key = a.next_key();
        let headers = [("Idempotency-Key", key.as_str())];
        let body = write("late A", t1, session_a);
        let (status, stale) = common::request("PUT", &url, Some(&body), &headers)
            .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        assert_eq!((status, stale["code"].as_str()), (409, Some("stale_token")), "{stale}");
        assert_eq!(stale["presented"].as_u64(), Some(t1), "{stale}");
        assert_eq!(stale["current"].as_u64(), Some(t2), "{stale}");
        assert!(stale["message"].as_str().is_some_and(|m| !m.is_empty()), "{stale}");
    }
    let (status, read) = cluster.read("/v1/kv/account");
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["value"], "from B", "the stale write changed nothing: {read}");
    assert_eq!(read["fence"]["token"].as_u64(), Some(t2), "{read}");
}

/// Node `i`'s serializable (local) read of `key`, if it has the value `expected`.
fn local_read_is(cluster: &Cluster, i: usize, key: &str, expected: &str) -> Option<()> {
    let url = format!("{}/v1/kv/{key}?consistency=serializable", cluster.url(i));
    match common::request("GET", &url, None, &[]) {
        Ok((200, read)) if read["value"] == expected => Some(()),
        _ => None,
    }
}

/// A follower that was SIGKILLed and started again with the same config file, on the same
/// data directory, serves what was written before its crash and catches up with what was
/// written while it was down.
#[test]
fn a_killed_node_restarts_from_its_data_dir_and_catches_up() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let node = (leader + 1) % 3;
    let mut client = Client::new(0x5e);
    let session = cluster.open_session(&mut client, 60_000);
    for i in 0..5 {
        let body = json!({ "value": format!("before-{i}"), "session": session });
        let (status, written) = cluster.put(&mut client, &format!("/v1/kv/before-{i}"), &body);
        assert_eq!(status, 200, "{written}");
    }
    let context = || cluster.logs();
    wait_for("the follower to apply the writes", context, || {
        local_read_is(&cluster, node, "before-4", "before-4")
    });
    cluster.kill(node);

    let body = json!({ "value": "while down", "session": session });
    let (status, written) = cluster.put(&mut client, "/v1/kv/during", &body);
    assert_eq!(status, 200, "the two others still commit: {written}");

    cluster.spawn(node);
    let context = || cluster.logs();
    wait_for("the restarted node to catch up", context, || {
        local_read_is(&cluster, node, "during", "while down")
    });
    for i in 0..5 {
        let value = format!("before-{i}");
        let read = local_read_is(&cluster, node, &value, &value);
        assert!(read.is_some(), "node {} lost {value}\n{}", node + 1, cluster.logs());
    }
    let status = cluster.status(node).expect("the restarted node answers");
    assert!(status["leader"].as_u64().is_some(), "it knows the leader: {status}");
    assert!(status["applied"].as_u64() >= Some(7), "it applied the writes: {status}");
    // It serves linearizable reads too (through the leader) and its session data survived.
    let url = format!("{}/v1/kv/before-0", cluster.url(node));
    let read = wait_for(
        "a linearizable read on the restarted node",
        || cluster.logs(),
        || common::request("GET", &url, None, &[]).ok().filter(|(status, _)| *status == 200),
    );
    assert_eq!(read.1["value"], "before-0", "{}", read.1);
    let keepalive = format!("/v1/sessions/{session}/keepalive");
    let (status, kept) = cluster.post(&mut client, &keepalive, &json!({}));
    assert_eq!(status, 200, "{kept}");

    // Every node crashes at once: what was acknowledged can only come back from the disks.
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.spawn(i);
    }
    cluster.leader();
    for (key, value) in
        [("before-0", "before-0"), ("before-4", "before-4"), ("during", "while down")]
    {
        let (status, read) = cluster.read(&format!("/v1/kv/{key}"));
        assert_eq!(status, 200, "{key} after a crash of every node: {read}");
        assert_eq!(read["value"], value, "{key}: {read}");
    }
    let context = || cluster.logs();
    for i in 0..3 {
        wait_for("every node to recover the data", context, || {
            local_read_is(&cluster, i, "during", "while down")
        });
    }
    let (status, kept) = cluster.post(&mut client, &keepalive, &json!({}));
    assert_eq!(status, 200, "the session survived the crash of every node: {kept}");
}

/// A single-node cluster writes some records and is killed; a few bytes in the middle of its
/// WAL segment are flipped; `palisade server --config FILE` then exits non-zero at start with
/// one error line naming the segment and the byte offset, and leaves the file as it was.
#[test]
fn a_corrupt_wal_is_refused_at_start_with_a_clear_error() {
    let mut cluster = Cluster::start(1);
    let mut client = Client::new(0xc0);
    let session = cluster.open_session(&mut client, 60_000);
    for i in 0..20 {
        let body = json!({ "value": format!("value-{i}"), "session": session });
        let (status, written) = cluster.put(&mut client, &format!("/v1/kv/k{i}"), &body);
        assert_eq!(status, 200, "{written}");
    }
    cluster.kill(0);

    let dir = cluster.data_dir(0);
    let mut segments: Vec<_> = std::fs::read_dir(&dir)
        .expect("the data directory")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("wal-")))
        .collect();
    segments.sort();
    let segment = segments.first().unwrap_or_else(|| panic!("no wal-* in {dir:?}")).clone();
    let mut bytes = std::fs::read(&segment).expect("read the segment");
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 3] {
        *byte ^= 0x5a;
    }
    std::fs::write(&segment, &bytes).expect("write the damaged segment");

    let log = cluster.next_log(0);
    let mut proc = common::Proc::spawn(cluster.command(0), &log);
    let exit = proc.wait_exit(DEADLINE);
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    let exit = exit.unwrap_or_else(|| panic!("the node started on a corrupt WAL:\n{stderr}"));
    assert!(!exit.success(), "exit status {exit}:\n{stderr}");
    assert_eq!(exit.code(), Some(2), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"));
    assert!(line.contains("corrupt WAL"), "{line}");
    assert!(line.contains(&segment.display().to_string()), "names the file: {line}");
    assert!(line.contains("byte offset"), "names the offset: {line}");
    assert!(line.contains("refuses to start"), "says what it did: {line}");
    assert_eq!(std::fs::read(&segment).expect("read"), bytes, "nothing changed on disk");
}
