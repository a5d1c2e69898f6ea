//! What the node loop tells people: log lines for the core's events, gauges for its state.
//!
//! Levels follow what an operator does with them: `info` for what changes the cluster's shape
//! (recovery, leadership, expiries, snapshots), `warn` for what needs a look (a detected pause,
//! a deposed leader), `error` for what stops the node or should never happen in production
//! (the testing fault), `debug` for the per-request stream (grants, applies), `trace` for
//! persistence. The gauges are refreshed on the housekeeping tick, not per request.

use palisade_node::raft::NodeId;
use palisade_node::{CommandSummary, NodeEvent};

use super::Core;
use crate::metrics::Metrics;
use crate::transport::PeerTransport;

/// Logs one event of node `node`.
pub(super) fn log_event(node: NodeId, event: &NodeEvent) {
    match event {
        NodeEvent::Recovered { snapshot_index, last_index, torn_tail_bytes } => tracing::info!(
            node,
            snapshot_index,
            last_index,
            torn_tail_bytes,
            "recovered the data directory"
        ),
        NodeEvent::BecameLeader { term } => tracing::info!(node, term, "became leader"),
        NodeEvent::LeaderReady { term } => {
            tracing::info!(node, term, "leader ready: applied an entry of its term")
        }
        NodeEvent::SteppedDown { term, now_term, leader } => {
            tracing::warn!(node, term, now_term, leader = ?leader, "stepped down as leader")
        }
        NodeEvent::Applied { index, term, command } => log_applied(node, *index, *term, command),
        NodeEvent::Granted { lock, session, token, index } => {
            tracing::debug!(node, lock, %session, token, index, "lock granted")
        }
        NodeEvent::Released { lock, session, token, cause, index } => {
            tracing::debug!(node, lock, %session, token, ?cause, index, "lock released")
        }
        NodeEvent::SessionOpened { session, client, ttl } => {
            let client = format!("{client:#x}");
            tracing::debug!(node, %session, client, ?ttl, "session opened")
        }
        NodeEvent::ExpiryProposed { session, index, term } => {
            tracing::debug!(node, %session, index, term, "proposed a session expiry")
        }
        NodeEvent::SessionExpired { session, index } => {
            tracing::info!(node, %session, index, "session expired")
        }
        NodeEvent::SessionClosed { session, index } => {
            tracing::debug!(node, %session, index, "session closed")
        }
        NodeEvent::UnloggedExpiry { session } => tracing::error!(
            node,
            %session,
            "TESTING FAULT: session expired without a log entry"
        ),
        NodeEvent::Persisted { entries, fsyncs } => {
            tracing::trace!(node, entries, fsyncs, "persisted")
        }
        NodeEvent::SnapshotTaken { index, bytes } => {
            tracing::info!(node, index, bytes, "snapshot taken, log compacted")
        }
        NodeEvent::SnapshotInstalled { index } => {
            tracing::info!(node, index, "snapshot from the leader installed")
        }
        NodeEvent::PauseDetected { gap } => tracing::warn!(
            node,
            ?gap,
            "this process was paused while leading; session deadlines pushed back"
        ),
        NodeEvent::Stopped { reason } => tracing::error!(node, reason, "node stopped"),
    }
}

fn log_applied(node: NodeId, index: u64, term: u64, command: &CommandSummary) {
    match command {
        CommandSummary::Client { id, op, target, response } => tracing::debug!(
            node,
            index,
            term,
            client = %format!("{:#x}", id.client),
            seq = id.seq,
            op,
            target = target.as_deref().unwrap_or(""),
            ok = response.is_ok(),
            "applied"
        ),
        CommandSummary::ExpireSession { session, basis } => {
            tracing::debug!(node, index, term, %session, basis, "applied expiry")
        }
        CommandSummary::Membership { voters } => {
            tracing::info!(node, index, term, ?voters, "applied membership")
        }
        other => tracing::trace!(node, index, term, command = ?other, "applied"),
    }
}

/// Sets the gauges from the core's state and the transport's counters.
pub(super) fn set_metrics(
    metrics: &Metrics,
    core: &Core,
    transport: &PeerTransport<palisade_node::raft::Message>,
) {
    let raft = core.raft().status();
    metrics.set_raft(raft.term, raft.role, raft.commit, core.applied_index());
    let sm = core.state_machine();
    let waiters: usize = sm.locks().map(|(_, info)| info.waiters.len()).sum();
    metrics.set_lock_counts(
        sm.sessions().count() as u64,
        sm.locks().count() as u64,
        waiters as u64,
    );
    for peer in &raft.peers {
        let offset = peer.offset.map(|o| (o.offset_nanos as f64 / 1e9, o.error.as_secs_f64()));
        metrics.set_peer(peer.id, peer.phi, offset);
    }
    metrics.observe_transport(&transport.stats());
}
