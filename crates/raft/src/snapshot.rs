//! Log compaction and InstallSnapshot (Raft §7).
//!
//! Why: a log cannot grow forever. The application snapshots its state machine at an applied
//! index and calls `compact`; Raft drops the entries the snapshot covers and keeps the snapshot
//! (in memory) to send to followers that fall behind the start of the log. It is sent in chunks
//! of `snapshot_chunk_bytes`, one unanswered chunk at a time, each answer naming the next
//! offset the follower expects, so lost or duplicated chunks only cost a retry.
//!
//! On the follower the assembled snapshot replaces the whole log and comes out in
//! `Ready::snapshot`: the driver persists it and restores the state machine from it before
//! applying any later entry. If the follower already holds the snapshot's last entry (same
//! index and term) it keeps its log and only advances its commit index (Raft §7, last rule).

use palisade_clock::duration_nanos;

use crate::config::SNAPSHOT_CHUNK_RETRY_HEARTBEATS;
use crate::error::RaftError;
use crate::message::{InstallSnapshot, InstallSnapshotResponse, Message};
use crate::node::{RaftNode, Role};
use crate::progress::{ProgressState, SnapshotSend};
use crate::types::{LogIndex, NodeId, Snapshot, SnapshotMeta};

/// A snapshot being received chunk by chunk.
#[derive(Clone, Debug)]
pub(crate) struct IncomingSnapshot {
    meta: SnapshotMeta,
    total_bytes: u64,
    data: Vec<u8>,
}

impl RaftNode {
    /// The application took a snapshot at `index` (at most the last index handed out for
    /// apply) and persisted it; Raft drops the entries up to `index` and keeps `data` to send
    /// to followers that need it.
    pub fn compact(&mut self, index: LogIndex, data: Vec<u8>) -> Result<(), RaftError> {
        let snapshot_index = self.log.snapshot_index();
        if index <= snapshot_index {
            return Err(RaftError::CompactStale { index, snapshot_index });
        }
        if index > self.log.applied() {
            return Err(RaftError::CompactBeyondApplied { index, applied: self.log.applied() });
        }
        let membership = self.members.at(&self.log, index);
        let term = self.log.term_at(index).expect("an applied index above the snapshot is held");
        self.log.compact(index);
        self.members.base = membership.clone();
        self.members.rescan(&self.log);
        self.snapshot = Some(Snapshot { meta: SnapshotMeta { index, term, membership }, data });
        Ok(())
    }

    /// Switches `to` to snapshot replication and sends the first chunk.
    pub(crate) fn start_snapshot(&mut self, to: NodeId) -> bool {
        let index = self.snapshot.as_ref().map(|s| s.meta.index);
        let (Some(index), Some(progress)) = (index, self.tracker.get_mut(&to)) else {
            return false;
        };
        progress.become_snapshot(index);
        self.send_snapshot_chunk(to)
    }

    /// Sends the next chunk to `to` unless one is unanswered.
    pub(crate) fn send_snapshot_chunk(&mut self, to: NodeId) -> bool {
        let now = self.now.mono;
        let chunk_bytes = self.cfg.snapshot_chunk_bytes;
        let (Some(snapshot), Some(progress)) = (self.snapshot.as_ref(), self.tracker.get_mut(&to))
        else {
            return false;
        };
        let index = snapshot.meta.index;
        let send = progress.snapshot.get_or_insert(SnapshotSend {
            index,
            offset: 0,
            in_flight: false,
            sent_at: now,
        });
        if send.index != index {
            // A newer snapshot replaced the one being sent: start over.
            *send = SnapshotSend { index, offset: 0, in_flight: false, sent_at: now };
        }
        if send.in_flight {
            return false;
        }
        let total = snapshot.data.len();
        let offset = usize::try_from(send.offset).unwrap_or(usize::MAX).min(total);
        let end = offset.saturating_add(chunk_bytes).min(total);
        send.in_flight = true;
        send.sent_at = now;
        let msg = InstallSnapshot {
            term: self.term,
            meta: snapshot.meta.clone(),
            total_bytes: total as u64,
            offset: offset as u64,
            data: snapshot.data[offset..end].to_vec(),
        };
        self.send(to, Message::InstallSnapshot(Box::new(msg)));
        true
    }

    /// Re-sends a chunk that has been unanswered for too long.
    pub(crate) fn retry_snapshot_chunk(&mut self, to: NodeId) {
        let now = self.now.mono;
        let patience = duration_nanos(self.cfg.heartbeat_interval)
            .saturating_mul(u64::from(SNAPSHOT_CHUNK_RETRY_HEARTBEATS));
        let Some(progress) = self.tracker.get_mut(&to) else { return };
        let Some(send) = progress.snapshot.as_mut() else { return };
        if send.in_flight && duration_nanos(now - send.sent_at) >= patience {
            send.in_flight = false;
            self.send_snapshot_chunk(to);
        }
    }

    /// Follower side of InstallSnapshot (`m.term` equals the current term).
    pub(crate) fn handle_snapshot_chunk(&mut self, from: NodeId, m: InstallSnapshot) {
        if !self.accept_leader(from) {
            return;
        }
        let reply = self.receive_chunk(m);
        self.send(from, Message::InstallSnapshotResponse(reply));
    }

    fn receive_chunk(&mut self, m: InstallSnapshot) -> InstallSnapshotResponse {
        let index = m.meta.index;
        let respond = |term, next_offset, done| InstallSnapshotResponse {
            term,
            snapshot_index: index,
            next_offset,
            done,
        };
        let holds_last = self.log.term_at(index) == Some(m.meta.term);
        if index <= self.log.committed() || holds_last {
            self.incoming = None;
            if holds_last {
                self.log.commit_to(index);
            }
            return respond(self.term, m.total_bytes, true);
        }
        let mut incoming = match self.incoming.take() {
            Some(inc) if inc.meta == m.meta && inc.total_bytes == m.total_bytes => inc,
            _ if m.offset == 0 => IncomingSnapshot {
                meta: m.meta.clone(),
                total_bytes: m.total_bytes,
                data: Vec::new(),
            },
            _ => return respond(self.term, 0, false),
        };
        let received = incoming.data.len() as u64;
        if m.offset != received {
            self.incoming = Some(incoming);
            return respond(self.term, received, false);
        }
        incoming.data.extend_from_slice(&m.data);
        let received = incoming.data.len() as u64;
        if received < incoming.total_bytes {
            self.incoming = Some(incoming);
            return respond(self.term, received, false);
        }
        self.install_snapshot(Snapshot { meta: incoming.meta, data: incoming.data });
        respond(self.term, received, true)
    }

    /// Replaces the log by a complete received snapshot.
    fn install_snapshot(&mut self, snapshot: Snapshot) {
        assert!(self.role == Role::Follower, "only a follower installs a snapshot");
        self.log.restore(&snapshot.meta);
        self.members.base = snapshot.meta.membership.clone();
        self.members.rescan(&self.log);
        self.prune_peer_state();
        self.out.snapshot = Some(snapshot.clone());
        self.snapshot = Some(snapshot);
    }

    /// Leader side of an InstallSnapshot answer (`m.term` equals the current term).
    pub(crate) fn handle_snapshot_response(&mut self, from: NodeId, m: InstallSnapshotResponse) {
        if self.role != Role::Leader {
            return;
        }
        let total = self.snapshot.as_ref().map_or(0, |s| s.data.len() as u64);
        let Some(progress) = self.tracker.get_mut(&from) else { return };
        progress.recent_active = true;
        let current = progress.state == ProgressState::Snapshot
            && progress.snapshot.is_some_and(|s| s.index == m.snapshot_index);
        if !current {
            return;
        }
        if m.done {
            progress.maybe_update(m.snapshot_index, self.now.mono);
            progress.become_probe();
            if self.maybe_commit() {
                self.after_commit();
            }
            self.send_append(from, true);
        } else {
            if let Some(send) = progress.snapshot.as_mut() {
                send.offset = m.next_offset.min(total);
                send.in_flight = false;
            }
            self.send_snapshot_chunk(from);
        }
    }
}

#[cfg(test)]
mod tests {
    use palisade_clock::{MonoInstant, Now, WallTime};

    use crate::config::Config;
    use crate::error::RaftError;
    use crate::message::{InstallSnapshot, InstallSnapshotResponse, Message};
    use crate::node::{RaftNode, Recovered};
    use crate::types::{HardState, Membership, SnapshotMeta};

    fn now() -> Now {
        Now::new(MonoInstant::from_nanos(5), WallTime::from_nanos(5))
    }

    fn follower() -> RaftNode {
        let recovered = Recovered {
            hard_state: HardState { term: 2, vote: None, commit: 0 },
            initial_membership: Membership::new([1, 2, 3]),
            ..Recovered::default()
        };
        RaftNode::new(Config::default_for(2), recovered, now(), 1).expect("valid")
    }

    fn chunk(offset: u64, data: &[u8]) -> Message {
        Message::InstallSnapshot(Box::new(InstallSnapshot {
            term: 2,
            meta: SnapshotMeta { index: 9, term: 2, membership: Membership::new([1, 2, 3, 4]) },
            total_bytes: 6,
            offset,
            data: data.to_vec(),
        }))
    }

    fn reply(node: &mut RaftNode) -> (Option<Vec<u8>>, InstallSnapshotResponse) {
        let ready = node.ready();
        node.handle_persisted(now(), ready.token());
        let data = ready.snapshot.map(|s| s.data);
        match ready.messages.into_iter().last() {
            Some((1, Message::InstallSnapshotResponse(r))) => (data, r),
            other => panic!("expected a snapshot response, got {other:?}"),
        }
    }

    #[test]
    fn chunks_assemble_in_order_and_out_of_order_ones_are_redirected() {
        let mut node = follower();
        node.handle_message(now(), 1, chunk(0, b"abc"));
        assert_eq!(reply(&mut node).1.next_offset, 3);
        node.handle_message(now(), 1, chunk(0, b"abc"));
        assert_eq!(reply(&mut node).1.next_offset, 3, "a duplicate chunk is not appended twice");
        node.handle_message(now(), 1, chunk(3, b"def"));
        let (data, response) = reply(&mut node);
        assert!(response.done);
        assert_eq!(data, Some(b"abcdef".to_vec()));
        let status = node.status();
        assert_eq!((status.commit, status.applied, status.last_index), (9, 9, 9));
        assert_eq!(status.membership, Membership::new([1, 2, 3, 4]));
        node.handle_message(now(), 1, chunk(3, b"def"));
        assert!(reply(&mut node).1.done, "a snapshot at or below commit is acknowledged");
    }

    #[test]
    fn compact_checks_its_index() {
        let mut node = follower();
        assert_eq!(
            node.compact(0, vec![]),
            Err(RaftError::CompactStale { index: 0, snapshot_index: 0 })
        );
        assert_eq!(
            node.compact(1, vec![]),
            Err(RaftError::CompactBeyondApplied { index: 1, applied: 0 })
        );
    }
}
