//! The handshake that starts every peer connection, in both directions.
//!
//! Both sides run the same four steps, each writing before it reads (the frames are tiny and
//! fit the socket buffers, so neither side can block the other):
//!
//! 1. send our [`Hello`] (cluster id, node id, protocol version); read the peer's;
//! 2. check it with [`check_hello`] (the dialer names the node it dialed, the acceptor
//!    cannot) and send the verdict as a [`HelloReply`]; read the peer's verdict;
//! 3. if either side refused, stop: each side has read the other's verdict, so the refused
//!    side learns *why* and logs it, and no unread bytes are left to turn the close into a
//!    reset;
//! 4. send our [`SettingsHello`] (the fingerprint of the settings the cluster must share:
//!    TTL limits, lock-delay, drift bound, message limits); read the peer's. Both sides
//!    compare the same two numbers, so they reach the same verdict without a further reply.
//!
//! `Hello` stays exactly the wire crate's type (a future version can still refuse politely);
//! the fingerprint travels in its own frame after it, which is this crate's extension.

use std::fmt;

use futures_util::{SinkExt, StreamExt};
use palisade_raft::NodeId;
use palisade_wire::{Hello, HelloReply, RefuseReason, check_hello};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::TransportError;
use super::codec::WireCodec;

/// The frame after an accepted [`Hello`]: the settings this node runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsHello {
    /// See `ServerConfig::settings_fingerprint`.
    pub settings_fingerprint: u64,
}

/// Why a connection was refused by one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The [`Hello`] check failed.
    Hello(RefuseReason),
    /// The two nodes run with different shared settings.
    Settings {
        /// Our fingerprint.
        ours: u64,
        /// The peer's.
        theirs: u64,
    },
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::Hello(reason) => write!(f, "{reason}"),
            RefusalReason::Settings { ours, theirs } => write!(
                f,
                "settings mismatch: this node's settings fingerprint is {ours:#018x}, the \
                 peer's {theirs:#018x} (ttl_min, ttl_max, lock_delay, drift_bound_ppm and \
                 the build's message limits must agree)"
            ),
        }
    }
}

/// Which end of the connection this node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// We dialed this node.
    Dialer(NodeId),
    /// We accepted the connection.
    Acceptor,
}

/// What a side needs to know to check a peer.
#[derive(Debug, Clone)]
pub(super) struct Identity {
    pub cluster_id: u64,
    pub node_id: NodeId,
    /// The other nodes (never this one).
    pub known_nodes: Vec<NodeId>,
    pub settings_fingerprint: u64,
}

/// How a handshake ended without a connection.
#[derive(Debug)]
pub(super) enum HandshakeError {
    /// The stream failed, closed, or carried something that is not a handshake frame.
    Broken(TransportError),
    /// One side, or both, refused.
    Refused {
        /// The node id the peer claimed.
        peer_node: NodeId,
        /// Our reason, if we refused.
        by_us: Option<RefusalReason>,
        /// The peer's reason, if it refused.
        by_peer: Option<RefuseReason>,
    },
}

impl From<TransportError> for HandshakeError {
    fn from(e: TransportError) -> Self {
        HandshakeError::Broken(e)
    }
}

async fn recv<D: DeserializeOwned>(
    framed: &mut Framed<TcpStream, WireCodec<D>>,
) -> Result<D, HandshakeError> {
    match framed.next().await {
        Some(item) => Ok(item?),
        None => Err(HandshakeError::Broken(TransportError::Closed)),
    }
}

impl Identity {
    /// Our verdict on the peer's hello.
    fn check(&self, side: Side, theirs: &Hello) -> Result<(), RefuseReason> {
        let expected = match side {
            Side::Dialer(peer) => Some(peer),
            Side::Acceptor => None,
        };
        if theirs.node_id == self.node_id && theirs.cluster_id == self.cluster_id {
            tracing::warn!(
                node_id = self.node_id,
                "a peer claims this node's own id: are two nodes configured with one id?"
            );
            return Err(RefuseReason::UnknownNode(theirs.node_id));
        }
        check_hello(self.cluster_id, &self.known_nodes, expected, theirs)
    }

    /// Runs the handshake on a fresh connection; on success returns the peer's node id and
    /// the stream, ready for protocol messages of type `M`.
    pub(super) async fn handshake<M: DeserializeOwned>(
        &self,
        stream: TcpStream,
        side: Side,
    ) -> Result<(NodeId, Framed<TcpStream, WireCodec<M>>), HandshakeError> {
        let mut framed = Framed::new(stream, WireCodec::<Hello>::new());
        framed.send(Hello::new(self.cluster_id, self.node_id)).await?;
        let theirs = recv(&mut framed).await?;
        let verdict = self.check(side, &theirs);
        let mut framed = framed.map_codec(|_| WireCodec::<HelloReply>::new());
        framed.send(HelloReply::from(verdict)).await?;
        let their_verdict = recv(&mut framed).await?;
        let by_peer = match their_verdict {
            HelloReply::Accepted => None,
            HelloReply::Refused(reason) => Some(reason),
        };
        if verdict.is_err() || by_peer.is_some() {
            let by_us = verdict.err().map(RefusalReason::Hello);
            return Err(HandshakeError::Refused { peer_node: theirs.node_id, by_us, by_peer });
        }
        let mut framed = framed.map_codec(|_| WireCodec::<SettingsHello>::new());
        let ours = self.settings_fingerprint;
        framed.send(SettingsHello { settings_fingerprint: ours }).await?;
        let their_settings = recv(&mut framed).await?.settings_fingerprint;
        if their_settings != ours {
            let by_us = Some(RefusalReason::Settings { ours, theirs: their_settings });
            return Err(HandshakeError::Refused {
                peer_node: theirs.node_id,
                by_us,
                by_peer: None,
            });
        }
        Ok((theirs.node_id, framed.map_codec(|_| WireCodec::new())))
    }
}
