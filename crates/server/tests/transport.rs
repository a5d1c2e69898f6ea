//! The peer transport on real sockets (127.0.0.1, ephemeral ports): delivery in order,
//! a mesh of three, every handshake refusal with its reason visible on both sides,
//! reconnection after a peer restart, and garbage on the listener.
//!
//! These tests wait for conditions with generous deadlines; they measure nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use palisade_server::transport::{
    Inbound, PeerTransport, RefusalReason, RefusedBy, TransportConfig, TransportError,
};
use palisade_wire::RefuseReason;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::Receiver;

/// How long any condition may take to come true.
const DEADLINE: Duration = Duration::from_secs(10);
/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Note {
    seq: u64,
    text: String,
}

fn note(seq: u64) -> Note {
    Note { seq, text: format!("note {seq}") }
}

type Node = (PeerTransport<Note>, Receiver<Inbound<Note>>);

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

fn config(cluster: u64, node: u64, peers: &[(u64, SocketAddr)]) -> TransportConfig {
    let peers: BTreeMap<u64, SocketAddr> = peers.iter().copied().collect();
    let listen = "127.0.0.1:0".parse().unwrap();
    let mut config = TransportConfig::new(cluster, node, listen, peers);
    config.backoff_min = Duration::from_millis(10);
    config.backoff_max = Duration::from_millis(200);
    config
}

fn start(config: TransportConfig, listener: TcpListener) -> Node {
    PeerTransport::start_on(config, listener).unwrap()
}

async fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(DEADLINE, async {
        while !condition() {
            tokio::time::sleep(POLL).await;
        }
    });
    waited.await.unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

async fn recv(rx: &mut Receiver<Inbound<Note>>) -> Inbound<Note> {
    let received = tokio::time::timeout(DEADLINE, rx.recv()).await;
    received.expect("timed out waiting for a message").expect("channel open")
}

/// Two nodes of cluster 7 that know each other.
async fn pair() -> (Node, Node, SocketAddr, SocketAddr) {
    let (la, lb) = (listener().await, listener().await);
    let (a_addr, b_addr) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let a = start(config(7, 1, &[(2, b_addr)]), la);
    let b = start(config(7, 2, &[(1, a_addr)]), lb);
    (a, b, a_addr, b_addr)
}

#[tokio::test]
async fn two_transports_exchange_messages_in_order() {
    let ((a, mut a_rx), (b, mut b_rx), _, _) = pair().await;
    for seq in 0..500 {
        a.send(2, note(seq)).unwrap();
    }
    b.send(1, note(1000)).unwrap();
    for seq in 0..500 {
        assert_eq!(recv(&mut b_rx).await, Inbound { from: 1, msg: note(seq) });
    }
    assert_eq!(recv(&mut a_rx).await, Inbound { from: 2, msg: note(1000) });
    wait_for("counters", || a.stats().frames_sent == 500).await;
    assert_eq!(b.stats().frames_received, 500);
    assert_eq!(a.stats().frames_dropped, 0);
    assert!(a.is_connected(2) && b.is_connected(1));
    assert_eq!((a.stats().handshakes_refused, b.stats().handshakes_refused), (0, 0));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_transports_form_a_mesh() {
    let listeners = [listener().await, listener().await, listener().await];
    let addrs: Vec<(u64, SocketAddr)> =
        (1..=3).zip(listeners.iter().map(|l| l.local_addr().unwrap())).collect();
    let mut nodes: Vec<Node> = Vec::new();
    for (id, listener) in (1..=3).zip(listeners) {
        let peers: Vec<_> = addrs.iter().copied().filter(|&(p, _)| p != id).collect();
        nodes.push(start(config(7, id, &peers), listener));
    }
    for (i, (transport, _)) in nodes.iter().enumerate() {
        let from = i as u64 + 1;
        for to in (1..=3).filter(|&to| to != from) {
            transport.send(to, note(from * 10 + to)).unwrap();
        }
    }
    for (i, (_, rx)) in nodes.iter_mut().enumerate() {
        let me = i as u64 + 1;
        let mut got = vec![recv(rx).await, recv(rx).await];
        got.sort_by_key(|m| m.from);
        let senders: Vec<u64> = (1..=3).filter(|&p| p != me).collect();
        let expected: Vec<_> =
            senders.iter().map(|&from| Inbound { from, msg: note(from * 10 + me) }).collect();
        assert_eq!(got, expected);
    }
    for (transport, _) in &nodes {
        transport.shutdown().await;
    }
}

#[tokio::test]
async fn a_node_of_another_cluster_is_refused_with_the_reason_on_both_sides() {
    let (la, lb) = (listener().await, listener().await);
    let (a_addr, b_addr) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let (a, mut a_rx) = start(config(7, 1, &[(2, b_addr)]), la);
    let (b, _b_rx) = start(config(8, 2, &[(1, a_addr)]), lb);
    b.send(1, note(1)).unwrap();
    let wrong_cluster = RefusalReason::Hello(RefuseReason::WrongCluster { expected: 7, got: 8 });
    let refused_by = |transport: &PeerTransport<Note>, by: RefusedBy, reason: RefusalReason| {
        transport.refusals().iter().any(|r| r.by == by && r.reason == reason)
    };
    wait_for("A to refuse B", || refused_by(&a, RefusedBy::Us, wrong_cluster)).await;
    let told = RefusalReason::Hello(RefuseReason::WrongCluster { expected: 8, got: 7 });
    wait_for("B to learn why", || refused_by(&b, RefusedBy::Peer, wrong_cluster)).await;
    wait_for("B to refuse A", || refused_by(&b, RefusedBy::Us, told)).await;
    assert!(a.stats().handshakes_refused > 0);
    assert_eq!(a.stats().connections_accepted + b.stats().connections_accepted, 0);
    assert!(!a.is_connected(2) && !b.is_connected(1));
    assert!(a_rx.try_recv().is_err(), "nothing crosses a refused connection");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn an_unknown_node_is_refused() {
    let (la, lc) = (listener().await, listener().await);
    let (a_addr, c_addr) = (la.local_addr().unwrap(), lc.local_addr().unwrap());
    // A knows node 2 only; node 3 (C) knows A. C dials A; A also dials C's address as node 2.
    let (a, mut a_rx) = start(config(7, 1, &[(2, c_addr)]), la);
    let (c, _c_rx) = start(config(7, 3, &[(1, a_addr)]), lc);
    c.send(1, note(1)).unwrap();
    let unknown = RefusalReason::Hello(RefuseReason::UnknownNode(3));
    let has = |t: &PeerTransport<Note>, by: RefusedBy, reason: RefusalReason| {
        t.refusals().iter().any(|r| r.by == by && r.reason == reason && r.peer_node != 0)
    };
    wait_for("A to refuse node 3", || has(&a, RefusedBy::Us, unknown)).await;
    wait_for("C to learn why", || has(&c, RefusedBy::Peer, unknown)).await;
    assert!(a_rx.try_recv().is_err());
    a.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn a_stale_address_book_is_caught() {
    let listeners = [listener().await, listener().await, listener().await];
    let [a_addr, b_addr, c_addr] = listeners.each_ref().map(|l| l.local_addr().unwrap());
    let [la, lb, lc] = listeners;
    // A has the addresses of nodes 2 and 3 swapped.
    let (a, _a_rx) = start(config(7, 1, &[(2, c_addr), (3, b_addr)]), la);
    let (b, _b_rx) = start(config(7, 2, &[(1, a_addr), (3, c_addr)]), lb);
    let (c, _c_rx) = start(config(7, 3, &[(1, a_addr), (2, b_addr)]), lc);
    let wrong_node = RefusalReason::Hello(RefuseReason::WrongNode { expected: 2, got: 3 });
    wait_for("A to refuse the wrong node it dialed", || {
        a.refusals().iter().any(|r| r.by == RefusedBy::Us && r.reason == wrong_node)
    })
    .await;
    assert!(!a.is_connected(2) && !a.is_connected(3));
    wait_for("B and C, whose books are right, to connect", || b.is_connected(3)).await;
    for t in [a, b, c] {
        t.shutdown().await;
    }
}

#[tokio::test]
async fn different_shared_settings_are_refused() {
    let (la, lb) = (listener().await, listener().await);
    let (a_addr, b_addr) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let mut ca = config(7, 1, &[(2, b_addr)]);
    ca.settings_fingerprint = 0xaaaa;
    let mut cb = config(7, 2, &[(1, a_addr)]);
    cb.settings_fingerprint = 0xbbbb;
    let ((a, _), (b, _)) = (start(ca, la), start(cb, lb));
    let mismatch = RefusalReason::Settings { ours: 0xaaaa, theirs: 0xbbbb };
    wait_for("A to refuse B's settings", || {
        a.refusals().iter().any(|r| r.reason == mismatch && r.peer_node == 2)
    })
    .await;
    assert!(mismatch.to_string().contains("settings mismatch"));
    assert!(!a.is_connected(2));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_peer_is_reconnected() {
    let ((a, mut a_rx), (b, b_rx), a_addr, b_addr) = pair().await;
    a.send(2, note(1)).unwrap();
    drop(b_rx);
    wait_for("the first connection", || a.is_connected(2) && b.is_connected(1)).await;
    b.shutdown().await;
    drop(b);
    wait_for("A to notice", || !a.is_connected(2)).await;
    let lb = TcpListener::bind(b_addr).await.unwrap();
    let (b2, mut b2_rx) = start(config(7, 2, &[(1, a_addr)]), lb);
    let mut seq = 100;
    let first = tokio::time::timeout(DEADLINE, async {
        loop {
            a.send(2, note(seq)).unwrap();
            seq += 1;
            tokio::select! {
                got = b2_rx.recv() => return got.unwrap(),
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    });
    let first = first.await.expect("A reached the restarted B");
    assert_eq!(first.from, 1);
    assert!(first.msg.seq >= 100);
    b2.send(1, note(7)).unwrap();
    assert_eq!(recv(&mut a_rx).await, Inbound { from: 2, msg: note(7) });
    assert!(a.stats().connections_dialed >= 2);
    assert!(a.stats().connections_accepted >= 2, "B's new connection replaced the old one");
    a.shutdown().await;
    b2.shutdown().await;
}

/// Sends `bytes` on a fresh connection to `addr` and waits until the transport closes it.
async fn closed_after(addr: SocketAddr, bytes: &[u8]) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut sink = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut sink)).await;
    // Ok(n): the transport closed it; Err: it reset it. Either way, closed.
    assert!(read.is_ok(), "the connection was not closed");
    assert!(sink.len() < 64, "only the transport's hello, at most, came back");
}

#[tokio::test]
async fn garbage_on_the_listener_closes_only_that_connection() {
    let ((a, _a_rx), (b, mut b_rx), a_addr, _) = pair().await;
    closed_after(a_addr, b"GET / HTTP/1.1\r\nHost: palisade\r\n\r\n").await;
    let mut bad_crc = vec![5, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1];
    bad_crc.extend_from_slice(&[1, 2, 3, 4]);
    closed_after(a_addr, &bad_crc).await;
    let random: Vec<u8> =
        (0u32..4096).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    closed_after(a_addr, &random).await;
    assert!(a.stats().handshakes_failed >= 3);
    a.send(2, note(5)).unwrap();
    assert_eq!(recv(&mut b_rx).await, Inbound { from: 1, msg: note(5) });
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let la = listener().await;
    let addr = la.local_addr().unwrap();
    let mut c = config(7, 1, &[]);
    c.handshake_timeout = Duration::from_millis(200);
    let (a, _rx) = start(c, la);
    closed_after(addr, b"").await;
    wait_for("the failure to be counted", || a.stats().handshakes_failed == 1).await;
    a.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_drops_its_oldest_messages() {
    let nobody = listener().await.local_addr().unwrap();
    let mut c = config(7, 1, &[(2, nobody)]);
    c.outbound_frames_max = 4;
    let (a, _rx) = start(c, listener().await);
    for seq in 0..10 {
        a.send(2, note(seq)).unwrap();
    }
    assert_eq!(a.queued(2), 4);
    assert_eq!(a.stats().frames_dropped, 6);
    assert!(matches!(a.send(9, note(0)), Err(TransportError::UnknownPeer(9))));
    a.shutdown().await;
    assert!(matches!(a.send(2, note(0)), Err(TransportError::Shutdown)));
}
