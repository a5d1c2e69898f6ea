//! Status: the node's state as one value (see [`crate::NodeStatus`]).

use palisade_clock::Now;
use palisade_lock::SessionId;
use palisade_storage::Disk;

use super::ServerCore;
use crate::config::STATUS_ITEMS_MAX;
use crate::protocol::SessionView;
use crate::status::{LockStatus, NodeStatus, PeerClock, SessionStatus, WalCounters};

impl<D: Disk> ServerCore<D> {
    /// The node's state; durations left are measured from `now` on this node's clock.
    pub fn status(&self, now: Now) -> NodeStatus {
        let mono = now.mono.max(self.now.mono);
        let left = |t: palisade_clock::MonoInstant| t.saturating_duration_since(mono);
        let sessions = self
            .sm
            .sessions()
            .take(STATUS_ITEMS_MAX)
            .map(|s| SessionStatus {
                session: s.id,
                client: s.client,
                ttl: s.ttl,
                expires_in: self.tracker.deadline(s.id).map(left),
                held: s.held.iter().cloned().collect(),
                waiting: s.waiting.iter().cloned().collect(),
            })
            .collect();
        let locks = self
            .sm
            .locks()
            .take(STATUS_ITEMS_MAX)
            .map(|(name, info)| LockStatus {
                name: name.to_string(),
                holder: info.holder.clone(),
                waiters: info.waiters.clone(),
                delayed_since: info.delayed_since,
                delay_ends_in: self.tracker.lock_delay_ends(name).map(left),
            })
            .collect();
        let raft = self.raft.status();
        let clock_offsets =
            raft.peers.iter().map(|p| PeerClock { peer: p.id, offset: p.offset }).collect();
        let wal = self.wal.stats();
        NodeStatus {
            applied_index: self.applied.index,
            leader_ready: self.is_leader_ready(),
            session_count: self.sm.sessions().count(),
            sessions,
            lock_count: self.sm.locks().count(),
            locks,
            kv_keys: self.sm.key_count(),
            last_token: self.sm.last_token(),
            clock_offsets,
            proposals_pending: self.requests.proposals_len(),
            parked_waiters: self.requests.parked_len(),
            reads_pending: self.requests.reads_len(),
            events_dropped: self.events_dropped,
            pauses_detected: self.tracker.pauses_detected(),
            wal: WalCounters {
                records_written: wal.records_written,
                bytes_written: wal.bytes_written,
                syncs: wal.syncs,
                segments: self.wal.segment_count(),
            },
            stopped: self.stopped.clone(),
            raft,
        }
    }

    /// A session as this node sees it.
    pub fn session_view(&self, session: SessionId) -> Option<SessionView> {
        let s = self.sm.session(session)?;
        Some(SessionView {
            session,
            client: s.client,
            ttl: s.ttl,
            basis: s.basis,
            expires_in: self
                .tracker
                .deadline(session)
                .map(|d| d.saturating_duration_since(self.now.mono)),
            held: s.held.iter().cloned().collect(),
            waiting: s.waiting.iter().cloned().collect(),
        })
    }
}
