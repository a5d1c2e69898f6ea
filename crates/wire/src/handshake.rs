//! The connection handshake: who is on the other end, and do we agree on what we speak?
//!
//! A frame's CRC catches bytes damaged in flight, but not a sound frame sent to the wrong
//! place: a node of another cluster reusing an address, a node the configuration does not
//! know, a stale address book that sends node 2's traffic to node 3, or a peer that runs
//! another protocol version. Each would be a "weak lie" that can corrupt a Raft log, so every
//! connection starts with both sides sending a [`Hello`] frame. Each side checks the other's
//! with [`check_hello`] (the dialer passes the node it meant to reach as `expected_peer`; the
//! acceptor, which cannot know, passes `None`) and answers with a [`HelloReply`]. A refused
//! connection is closed after the reply, which names the reason so an operator can fix it.
//!
//! `Hello` carries its own protocol version although the frame has one too: the frame's
//! version says how to read this frame, the hello's says what the node will speak after it,
//! and keeping `Hello` unchanged across versions lets a future build refuse politely.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::PROTOCOL_VERSION;

/// The first message on every connection, sent by both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The cluster the sender belongs to.
    pub cluster_id: u64,
    /// The sender's node id.
    pub node_id: u64,
    /// The protocol version the sender speaks.
    pub protocol_version: u8,
}

impl Hello {
    /// This build's hello: the given ids and [`PROTOCOL_VERSION`].
    pub fn new(cluster_id: u64, node_id: u64) -> Self {
        Self { cluster_id, node_id, protocol_version: PROTOCOL_VERSION }
    }
}

/// The answer to a [`Hello`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// The connection is accepted; protocol messages follow.
    Accepted,
    /// The connection is refused and will be closed.
    Refused(RefuseReason),
}

impl From<Result<(), RefuseReason>> for HelloReply {
    fn from(check: Result<(), RefuseReason>) -> Self {
        match check {
            Ok(()) => Self::Accepted,
            Err(reason) => Self::Refused(reason),
        }
    }
}

/// Why a [`Hello`] was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefuseReason {
    /// The peer belongs to another cluster.
    WrongCluster {
        /// Our cluster id.
        expected: u64,
        /// The peer's cluster id.
        got: u64,
    },
    /// The peer's node id is not in our configuration.
    UnknownNode(u64),
    /// We dialed one node and another answered.
    WrongNode {
        /// The node we meant to reach.
        expected: u64,
        /// The node that answered.
        got: u64,
    },
    /// The peer speaks another protocol version.
    VersionMismatch {
        /// The version we speak.
        ours: u8,
        /// The version the peer speaks.
        theirs: u8,
    },
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::WrongCluster { expected, got } => write!(
                f,
                "wrong cluster: this node is in cluster {expected:#x}, the peer in cluster {got:#x}"
            ),
            Self::UnknownNode(node_id) => {
                write!(f, "unknown node: node {node_id} is not in this cluster's configuration")
            }
            Self::WrongNode { expected, got } => {
                write!(f, "wrong node: dialed node {expected}, but node {got} answered")
            }
            Self::VersionMismatch { ours, theirs } => write!(
                f,
                "protocol version mismatch: this node speaks version {ours}, the peer {theirs}"
            ),
        }
    }
}

impl std::error::Error for RefuseReason {}

/// Checks a peer's [`Hello`]: same cluster, same protocol version, a configured node, and the
/// node we dialed if we dialed one. Checks run in that order; the first failure is returned.
///
/// `expected_peer`, when given, must be one of `known_nodes` (a caller bug otherwise).
///
/// # Errors
/// The [`RefuseReason`] to send back in [`HelloReply::Refused`].
pub fn check_hello(
    expected_cluster: u64,
    known_nodes: &[u64],
    expected_peer: Option<u64>,
    hello: &Hello,
) -> Result<(), RefuseReason> {
    if let Some(peer) = expected_peer {
        assert!(known_nodes.contains(&peer), "expected peer {peer} is not a known node");
    }
    if hello.cluster_id != expected_cluster {
        return Err(RefuseReason::WrongCluster {
            expected: expected_cluster,
            got: hello.cluster_id,
        });
    }
    if hello.protocol_version != PROTOCOL_VERSION {
        let theirs = hello.protocol_version;
        return Err(RefuseReason::VersionMismatch { ours: PROTOCOL_VERSION, theirs });
    }
    if !known_nodes.contains(&hello.node_id) {
        return Err(RefuseReason::UnknownNode(hello.node_id));
    }
    if let Some(peer) = expected_peer
        && peer != hello.node_id
    {
        return Err(RefuseReason::WrongNode { expected: peer, got: hello.node_id });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode, encode};

    const CLUSTER: u64 = 0xC0FFEE;
    const NODES: [u64; 3] = [1, 2, 3];

    #[test]
    fn a_known_node_of_our_cluster_is_accepted() {
        assert_eq!(check_hello(CLUSTER, &NODES, None, &Hello::new(CLUSTER, 2)), Ok(()));
        assert_eq!(check_hello(CLUSTER, &NODES, Some(3), &Hello::new(CLUSTER, 3)), Ok(()));
    }

    #[test]
    fn each_reason_is_found() {
        let refused = check_hello(CLUSTER, &NODES, None, &Hello::new(7, 2));
        assert_eq!(refused, Err(RefuseReason::WrongCluster { expected: CLUSTER, got: 7 }));
        let refused = check_hello(CLUSTER, &NODES, None, &Hello::new(CLUSTER, 9));
        assert_eq!(refused, Err(RefuseReason::UnknownNode(9)));
        let refused = check_hello(CLUSTER, &NODES, Some(2), &Hello::new(CLUSTER, 3));
        assert_eq!(refused, Err(RefuseReason::WrongNode { expected: 2, got: 3 }));
        let old = Hello { protocol_version: 0, ..Hello::new(CLUSTER, 2) };
        let refused = check_hello(CLUSTER, &NODES, None, &old);
        assert_eq!(
            refused,
            Err(RefuseReason::VersionMismatch { ours: PROTOCOL_VERSION, theirs: 0 })
        );
    }

    #[test]
    fn the_cluster_is_checked_before_the_version_and_the_node() {
        let stranger = Hello { cluster_id: 7, node_id: 9, protocol_version: 200 };
        let refused = check_hello(CLUSTER, &NODES, Some(1), &stranger);
        assert_eq!(refused, Err(RefuseReason::WrongCluster { expected: CLUSTER, got: 7 }));
        let unknown = Hello { protocol_version: 200, ..Hello::new(CLUSTER, 9) };
        let refused = check_hello(CLUSTER, &NODES, Some(1), &unknown);
        assert!(matches!(refused, Err(RefuseReason::VersionMismatch { .. })));
        let refused = check_hello(CLUSTER, &NODES, Some(1), &Hello::new(CLUSTER, 9));
        assert_eq!(refused, Err(RefuseReason::UnknownNode(9)));
    }

    #[test]
    #[should_panic(expected = "not a known node")]
    fn an_expected_peer_outside_the_configuration_is_a_caller_bug() {
        let _ = check_hello(CLUSTER, &NODES, Some(4), &Hello::new(CLUSTER, 4));
    }

    #[test]
    fn reasons_read_as_sentences() {
        let text = RefuseReason::WrongCluster { expected: 0xab, got: 0xcd }.to_string();
        assert_eq!(text, "wrong cluster: this node is in cluster 0xab, the peer in cluster 0xcd");
        let text = RefuseReason::UnknownNode(9).to_string();
        assert_eq!(text, "unknown node: node 9 is not in this cluster's configuration");
        let text = RefuseReason::WrongNode { expected: 2, got: 3 }.to_string();
        assert_eq!(text, "wrong node: dialed node 2, but node 3 answered");
        let text = RefuseReason::VersionMismatch { ours: 1, theirs: 2 }.to_string();
        assert_eq!(text, "protocol version mismatch: this node speaks version 1, the peer 2");
    }

    #[test]
    fn hello_and_replies_travel_in_frames() {
        let hello = Hello::new(CLUSTER, 1);
        assert_eq!(decode::<Hello>(&encode(&hello).unwrap()).unwrap(), hello);
        let replies = [
            HelloReply::Accepted,
            HelloReply::Refused(RefuseReason::WrongNode { expected: 1, got: 2 }),
            HelloReply::from(check_hello(CLUSTER, &NODES, None, &Hello::new(1, 1))),
        ];
        for reply in replies {
            assert_eq!(decode::<HelloReply>(&encode(&reply).unwrap()).unwrap(), reply);
        }
    }
}
