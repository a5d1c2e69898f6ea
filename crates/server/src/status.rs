//! The JSON of `GET /v1/status`, and the router of the status page that renders it.
//!
//! Why a view type of its own: the page, the CLI's `palisade status` and the node loop must
//! agree on field names, and the core's `Status` is neither stable nor JSON-friendly (it
//! carries durations, enums and ids a browser cannot hold: JavaScript numbers are exact only
//! to 2^53, and cluster and client ids are random 64-bit values, so those two travel as hex
//! strings). The node loop fills a [`StatusView`] with the helpers below; the page
//! (`web/status.html`, embedded here) polls it every second and renders it without a build
//! step or external assets.
//!
//! Field names, types and meaning are the contract; `status_view_field_names` in the tests
//! pins them.

use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use palisade_clock::{BoundedNow, ClockStatus, OffsetEstimate};
use palisade_lock::{LockInfo, Session};
use palisade_node::NodeStatus;
use palisade_raft::{NodeId, PeerStatus, Role};
use serde::{Deserialize, Serialize};

use crate::config::{PeerConfig, ServerConfig};

/// The status page, served at `/` by [`status_page_router`].
pub const STATUS_PAGE_HTML: &str = include_str!("../web/status.html");

/// Everything the status page shows about one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    /// This node's id.
    pub node_id: NodeId,
    /// The cluster id, as a hex string (`"0x..."`).
    #[serde(with = "hex_u64")]
    pub cluster_id: u64,
    /// The cluster's name, when configured by name.
    pub cluster_name: Option<String>,
    /// This node's role.
    pub role: RoleView,
    /// Its current term.
    pub term: u64,
    /// The leader it knows of in this term.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit: u64,
    /// Last applied index.
    pub applied: u64,
    /// Every node of the configuration, this one included, by id.
    pub members: Vec<MemberView>,
    /// Open sessions, by id.
    pub sessions: Vec<SessionView>,
    /// Lock records, by name.
    pub locks: Vec<LockView>,
    /// This node's time-of-day uncertainty interval.
    pub time: TimeView,
    /// The server's version (`CARGO_PKG_VERSION`).
    pub version: String,
}

/// A node's Raft role, as JSON: `"follower"`, `"pre_candidate"`, `"candidate"`, `"leader"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleView {
    /// Follows a leader or waits for one.
    Follower,
    /// Runs a PreVote round.
    PreCandidate,
    /// Campaigns.
    Candidate,
    /// Leads.
    Leader,
}

impl From<Role> for RoleView {
    fn from(role: Role) -> Self {
        match role {
            Role::Follower => RoleView::Follower,
            Role::PreCandidate => RoleView::PreCandidate,
            Role::Candidate => RoleView::Candidate,
            Role::Leader => RoleView::Leader,
        }
    }
}

/// One node of the cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    /// Its id.
    pub id: NodeId,
    /// Its peer transport address (`host:port`).
    pub peer_addr: String,
    /// Its HTTP address (`host:port`): the page links to its status page.
    pub http_addr: String,
    /// Whether this is the node serving the page.
    pub is_self: bool,
    /// Whether it is the leader this node knows of.
    pub is_leader: bool,
    /// Highest index known replicated on it (known on the leader only).
    pub match_index: Option<u64>,
    /// Phi accrual suspicion of it, as seen here (`None` for this node itself).
    pub phi: Option<f64>,
    /// Its clock's offset from this node's (its clock minus ours), in milliseconds.
    pub offset_ms: Option<f64>,
    /// The error bound of `offset_ms`, in milliseconds.
    pub offset_error_ms: Option<f64>,
    /// Its offset judged against `clock_offset_max`.
    pub clock: PeerClockView,
}

/// A peer's clock offset against the configured maximum, as JSON: `"unknown"`, `"ok"`,
/// `"uncertain"`, `"beyond_max"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerClockView {
    /// No estimate (or this node itself).
    Unknown,
    /// Definitely within the maximum: `|offset| + error <= max`.
    Ok,
    /// Neither definitely within nor definitely beyond.
    Uncertain,
    /// Definitely beyond the maximum: `|offset| - error > max`.
    BeyondMax,
}

impl PeerClockView {
    /// Judges an offset estimate against `clock_offset_max`.
    pub fn of(estimate: Option<&OffsetEstimate>, max: std::time::Duration) -> PeerClockView {
        match estimate {
            None => PeerClockView::Unknown,
            Some(e) if e.within(max) => PeerClockView::Ok,
            Some(e) if e.exceeds(max) => PeerClockView::BeyondMax,
            Some(_) => PeerClockView::Uncertain,
        }
    }
}

impl MemberView {
    /// The row of `peer` from this node's raft status line for it (`None` for this node, or a
    /// peer the core does not track).
    pub fn new(
        peer: &PeerConfig,
        own_id: NodeId,
        leader: Option<NodeId>,
        status: Option<&PeerStatus>,
        clock_offset_max: std::time::Duration,
    ) -> MemberView {
        let offset = status.and_then(|s| s.offset.as_ref());
        MemberView {
            id: peer.id,
            peer_addr: peer.peer_addr.to_string(),
            http_addr: peer.http_addr.to_string(),
            is_self: peer.id == own_id,
            is_leader: leader == Some(peer.id),
            match_index: status.and_then(|s| s.progress).map(|p| p.match_index),
            phi: status.map(|s| s.phi),
            offset_ms: offset.map(|o| o.offset_nanos as f64 / 1e6),
            offset_error_ms: offset.map(|o| o.error.as_secs_f64() * 1e3),
            clock: PeerClockView::of(offset, clock_offset_max),
        }
    }
}

/// One open session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The session id (the log index that opened it).
    pub id: u64,
    /// The client id, as a hex string.
    #[serde(with = "hex_u64")]
    pub client: u64,
    /// The session's TTL, in milliseconds.
    pub ttl_ms: u64,
    /// Time left before the leader may expire it, in milliseconds (known on the leader only).
    pub ttl_left_ms: Option<u64>,
}

impl SessionView {
    /// The row of a session; `ttl_left` from the leader's session tracker.
    pub fn new(session: &Session, ttl_left: Option<std::time::Duration>) -> SessionView {
        SessionView {
            id: session.id.0,
            client: session.client,
            ttl_ms: millis(session.ttl),
            ttl_left_ms: ttl_left.map(millis),
        }
    }
}

/// One lock record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockView {
    /// The lock's name.
    pub name: String,
    /// The session holding it.
    pub holder_session: Option<u64>,
    /// The holder's fencing token.
    pub token: Option<u64>,
    /// Log index of the grant.
    pub since_index: Option<u64>,
    /// Waiting sessions, first in line first.
    pub waiters: Vec<u64>,
    /// Index of the expiry whose lock-delay is running (no grant until it ends).
    pub delayed_since: Option<u64>,
}

impl LockView {
    /// The row of lock `name`.
    pub fn new(name: &str, info: &LockInfo) -> LockView {
        LockView {
            name: name.to_owned(),
            holder_session: info.holder.as_ref().map(|h| h.session.0),
            token: info.holder.as_ref().map(|h| h.token),
            since_index: info.holder.as_ref().map(|h| h.since_index),
            waiters: info.waiters.iter().map(|s| s.0).collect(),
            delayed_since: info.delayed_since,
        }
    }
}

/// This node's `now() -> [earliest, latest]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeView {
    /// No earlier than this (ms since the Unix epoch); `None` when the clock has no bound.
    pub earliest_unix_ms: Option<u64>,
    /// No later than this; `None` when the clock has no bound.
    pub latest_unix_ms: Option<u64>,
    /// How far to trust the interval.
    pub status: ClockStatusView,
}

/// How far a time interval can be trusted, as JSON: `"unknown"`, `"synchronized"`,
/// `"free_running"`, `"disrupted"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockStatusView {
    /// Never synchronised: no bound.
    Unknown,
    /// Synchronised recently: the bound holds.
    Synchronized,
    /// Synchronised long ago: the bound holds and widens.
    FreeRunning,
    /// A clock disruption was detected: no bound.
    Disrupted,
}

impl From<ClockStatus> for ClockStatusView {
    fn from(status: ClockStatus) -> Self {
        match status {
            ClockStatus::Unknown => ClockStatusView::Unknown,
            ClockStatus::Synchronized => ClockStatusView::Synchronized,
            ClockStatus::FreeRunning => ClockStatusView::FreeRunning,
            ClockStatus::Disrupted => ClockStatusView::Disrupted,
        }
    }
}

impl TimeView {
    /// The view of a bounded reading; the interval is dropped when it is not a bound.
    pub fn from_bounded(now: &BoundedNow) -> TimeView {
        let bounded = now.status.is_bounded();
        // Rounded outwards, so the interval in milliseconds still contains the bound.
        let earliest = now.interval.earliest.as_nanos() / 1_000_000;
        let latest = now.interval.latest.as_nanos().div_ceil(1_000_000);
        TimeView {
            earliest_unix_ms: bounded.then_some(earliest),
            latest_unix_ms: bounded.then_some(latest),
            status: now.status.into(),
        }
    }
}

impl StatusView {
    /// The view of a node's status: `status` from the core at the time `time` was read, the
    /// members from `config`.
    pub fn from_node(config: &ServerConfig, status: &NodeStatus, time: &BoundedNow) -> StatusView {
        let raft = &status.raft;
        let members = config
            .peers
            .iter()
            .map(|peer| {
                let line = raft.peers.iter().find(|p| p.id == peer.id);
                MemberView::new(peer, config.node_id, raft.leader, line, config.clock_offset_max)
            })
            .collect();
        let sessions = status
            .sessions
            .iter()
            .map(|s| SessionView {
                id: s.session.0,
                client: s.client,
                ttl_ms: millis(s.ttl),
                ttl_left_ms: s.expires_in.map(millis),
            })
            .collect();
        let locks = status
            .locks
            .iter()
            .map(|l| LockView {
                name: l.name.clone(),
                holder_session: l.holder.as_ref().map(|h| h.session.0),
                token: l.holder.as_ref().map(|h| h.token),
                since_index: l.holder.as_ref().map(|h| h.since_index),
                waiters: l.waiters.iter().map(|s| s.0).collect(),
                delayed_since: l.delayed_since,
            })
            .collect();
        StatusView {
            node_id: config.node_id,
            cluster_id: config.cluster_id,
            cluster_name: config.cluster_name.clone(),
            role: raft.role.into(),
            term: raft.term,
            leader: raft.leader,
            commit: raft.commit,
            applied: status.applied_index,
            members,
            sessions,
            locks,
            time: TimeView::from_bounded(time),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A `u64` as a `"0x..."` string in JSON (exact in every JSON reader, unlike a number).
mod hex_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{value:#018x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        let digits = text
            .strip_prefix("0x")
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} does not start with 0x")))?;
        u64::from_str_radix(digits, 16).map_err(serde::de::Error::custom)
    }
}

/// A router serving the status page at `/`, to be merged into the HTTP API's router (which
/// serves `GET /v1/status`).
pub fn status_page_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/", get(status_page))
}

async fn status_page() -> impl IntoResponse {
    ([(axum::http::header::CACHE_CONTROL, "no-cache")], Html(STATUS_PAGE_HTML))
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
