//! A read-only snapshot of a node's state for operators, metrics and tests.
//!
//! Why a separate type: the status page, the metrics exporter and the simulator's checkers all
//! want the same facts (role, term, indices, per-peer replication and health, clock offsets)
//! without reaching into the state machine. Time-dependent values (phi, offset ages) are
//! evaluated at the latest time the node was given.

use std::time::Duration;

use palisade_clock::OffsetEstimate;
use palisade_detector::FailureDetector;
use serde::{Deserialize, Serialize};

use crate::node::{RaftNode, Role};
use crate::progress::ProgressState;
use crate::types::{LogIndex, Membership, NodeId, Term};

/// The state of a node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// This node.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// Its vote in the current term.
    pub vote: Option<NodeId>,
    /// The leader it knows of in this term.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit: LogIndex,
    /// Last index handed out for apply.
    pub applied: LogIndex,
    /// Last durable index.
    pub stable: LogIndex,
    /// Last index in the log.
    pub last_index: LogIndex,
    /// Term of the last entry.
    pub last_term: Term,
    /// Index the log is compacted to (0: never).
    pub snapshot_index: LogIndex,
    /// The membership in force.
    pub membership: Membership,
    /// One line per other voter.
    pub peers: Vec<PeerStatus>,
    /// Target of a leadership transfer in progress.
    pub transfer_target: Option<NodeId>,
    /// This node's clock is definitely beyond `clock_offset_max` from a majority: it will not
    /// campaign or lead.
    pub clock_unfit: bool,
    /// Reads waiting for a heartbeat round.
    pub reads_pending: usize,
    /// Messages dropped as malformed or out of limits.
    pub messages_rejected: u64,
    /// Time since the last message from the leader (followers).
    pub leader_contact_age: Option<Duration>,
    /// Phi of the watched leader (phi election, followers).
    pub leader_phi: Option<f64>,
}

/// What this node knows about another voter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    /// The peer.
    pub id: NodeId,
    /// Replication progress (leader only).
    pub progress: Option<PeerProgress>,
    /// Phi of the peer's messages as seen here (0 before any message; infinite when the
    /// detector's probability of a late heartbeat underflows — a peer long silent). JSON has
    /// no infinity: a non-finite phi is written as `null` and read back as infinity.
    #[serde(with = "phi_json")]
    pub phi: f64,
    /// The peer's clock offset (remote minus local), if measured.
    pub offset: Option<OffsetEstimate>,
}

/// A leader's replication progress to one follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProgress {
    /// Highest index known to be stored durably on the follower.
    pub match_index: LogIndex,
    /// Next index to send.
    pub next_index: LogIndex,
    /// Replication state.
    pub state: ProgressState,
    /// Heard from during the current CheckQuorum period.
    pub recent_active: bool,
}

impl RaftNode {
    /// The node's state, evaluated at the latest time it was given.
    pub fn status(&self) -> Status {
        let now = self.now;
        let peers = self
            .peers()
            .into_iter()
            .map(|id| PeerStatus {
                id,
                progress: self.tracker.get(&id).map(|p| PeerProgress {
                    match_index: p.match_index,
                    next_index: p.next_index,
                    state: p.state,
                    recent_active: p.recent_active,
                }),
                phi: self.peer_detectors.get(&id).map_or(0.0, |d| d.phi(now.mono)),
                offset: self.clocks.estimate(id, now),
            })
            .collect();
        let contact = self.leader.and_then(|l| self.watch.contact(l, self.term));
        let following = self.role == Role::Follower;
        Status {
            id: self.cfg.id,
            role: self.role,
            term: self.term,
            vote: self.vote,
            leader: self.leader,
            commit: self.log.committed(),
            applied: self.log.applied(),
            stable: self.log.stable(),
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            snapshot_index: self.log.snapshot_index(),
            membership: self.members.current.clone(),
            peers,
            transfer_target: self.transfer_target(),
            clock_unfit: self.clock_unfit(),
            reads_pending: self.reads.len(),
            messages_rejected: self.messages_rejected,
            leader_contact_age: contact.filter(|_| following).map(|c| now.mono - c),
            leader_phi: self.watch.phi(now.mono).filter(|_| following && contact.is_some()),
        }
    }
}

/// Serde for a phi value that may be infinite: JSON numbers cannot be, so a non-finite phi is
/// written as `null`, and `null` is read back as `f64::INFINITY`.
mod phi_json {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(phi: &f64, s: S) -> Result<S::Ok, S::Error> {
        if phi.is_finite() { s.serialize_some(phi) } else { s.serialize_none() }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::INFINITY))
    }
}
