//! Keepalives and the lease they feed.
//!
//! A keepalive is sent when [`palisade_lock::ClientLease::next_keepalive_at`] says so, with a
//! fresh request id (keepalives are not deduplicated by the state machine, so a fresh id per
//! keepalive costs nothing and keeps them out of the user operation's one-slot dedup). The
//! lease counts from the keepalive's *first* send: a retransmission after a `NotLeader` hint
//! keeps the id, and with it the lease's [`palisade_lock::KeepaliveId`]. Any other trouble
//! (timeout, no leader known, overloaded) counts as a failed keepalive: the lease goes into
//! Jeopardy and the next keepalive follows after `ttl / KEEPALIVE_RETRY_DIVISOR`. A late
//! acknowledgement still counts, anchored at its own send time, for as long as the lease
//! remembers it.

use std::time::Duration;

use palisade_clock::MonoInstant;
use palisade_lock::{
    JEOPARDY_THRESHOLD_DIVISOR, KEEPALIVES_IN_FLIGHT_MAX, LeaseState, Op, Refused, Reply, RequestId,
};
use palisade_raft::NodeId;

use super::{ClientCore, ClientEvent, KeepaliveInFlight, Purpose, SentKeepalive};
use crate::protocol::{ClientReply, ClientRequest, ReplyResult, RequestBody};

impl ClientCore {
    /// When the next keepalive is due: `None` without a live session, while one is in
    /// flight, or with keepalives turned off.
    pub(super) fn next_keepalive_due(&self) -> Option<MonoInstant> {
        if !self.keepalives_enabled || self.keepalive.is_some() {
            return None;
        }
        self.session?;
        let lease = self.lease.as_ref()?;
        if lease.state(self.now.mono) == LeaseState::Lost {
            return None;
        }
        // No send yet (a session adopted after `SessionExists`): at once.
        Some(lease.next_keepalive_at().unwrap_or(self.now.mono))
    }

    /// Sends a keepalive if one is due.
    pub(super) fn maybe_send_keepalive(&mut self) {
        if self.next_keepalive_due().is_none_or(|at| at > self.now.mono) {
            return;
        }
        let session = self.session.expect("due only with a session");
        let id = self.fresh_id();
        let lease = self.lease.as_mut().expect("due only with a lease");
        let kid = lease.handle_keepalive_sent(self.now.mono);
        if self.sent_keepalives.len() == KEEPALIVES_IN_FLIGHT_MAX {
            self.sent_keepalives.pop_front();
        }
        self.sent_keepalives.push_back(SentKeepalive { id, kid, session });
        let now = self.now.mono;
        let sent_to = self.target();
        self.keepalive = Some(KeepaliveInFlight { id, attempt: 0, attempt_deadline: now, sent_to });
        self.send_keepalive();
    }

    /// Sends (or re-sends, same id) the keepalive in flight to the current target.
    fn send_keepalive(&mut self) {
        let attempt = self.fresh_attempt();
        let deadline = self.now.mono + self.config.attempt_timeout;
        let target = self.target();
        let ka = self.keepalive.as_mut().expect("a keepalive is in flight");
        ka.sent_to = target;
        ka.attempt = attempt;
        ka.attempt_deadline = deadline;
        let id = ka.id;
        let session = self.sent(id).expect("the keepalive in flight is remembered").session;
        let body = RequestBody::Mutate(Op::KeepAlive { session });
        let request = ClientRequest { attempt, id: Some(id), body, wait: None };
        self.transmit(Purpose::Keepalive(id), request);
    }

    fn sent(&self, id: RequestId) -> Option<SentKeepalive> {
        self.sent_keepalives.iter().find(|k| k.id == id).copied()
    }

    /// An answer to keepalive `id`.
    pub(super) fn keepalive_reply(&mut self, from: NodeId, id: RequestId, reply: ClientReply) {
        let ours = self.sent(id).filter(|k| Some(k.session) == self.session);
        let in_flight = self.keepalive.as_ref().filter(|k| k.id == id).map(|k| k.attempt);
        let latest = in_flight == Some(reply.attempt);
        match reply.result {
            ReplyResult::Done(Ok(Reply::Renewed { .. })) => {
                if let (Some(k), Some(lease)) = (ours, self.lease.as_mut()) {
                    lease.handle_keepalive_acked(k.kid, self.now.mono);
                }
                if in_flight.is_some() {
                    self.keepalive = None;
                }
            }
            ReplyResult::Done(Err(
                Refused::NoSession { .. }
                | Refused::UnknownSession { .. }
                | Refused::NotSessionOwner { .. },
            )) => {
                if ours.is_some() {
                    self.session_gone();
                }
                if in_flight.is_some() {
                    self.keepalive = None;
                }
            }
            _ if !latest => {}
            ReplyResult::NotLeader { leader } => {
                if self.follow_hint(from, leader) {
                    self.send_keepalive();
                } else {
                    self.keepalive_failed();
                }
            }
            _ => self.keepalive_failed(),
        }
    }

    pub(super) fn keepalive_failed(&mut self) {
        self.keepalive = None;
        if let Some(lease) = self.lease.as_mut() {
            lease.handle_keepalive_failed(self.now.mono);
        }
    }

    /// The keepalive in flight timed out: it failed; the next one goes to the next server
    /// (unless the operation moved the target off the silent server meanwhile).
    pub(super) fn keepalive_timeouts(&mut self) {
        let Some(k) = self.keepalive.as_ref() else { return };
        if k.attempt_deadline <= self.now.mono {
            let server = k.sent_to;
            self.keepalive_failed();
            self.rotate_from(server);
        }
    }

    /// When the lease next changes state by itself (Held → Jeopardy → Lost), if later than now.
    pub(super) fn next_lease_change(&self) -> Option<MonoInstant> {
        let lease = self.lease.as_ref()?;
        let until = lease.valid_until()?;
        let jeopardy = until.saturating_sub(lease.ttl() / JEOPARDY_THRESHOLD_DIVISOR);
        [jeopardy + Duration::from_nanos(1), until].into_iter().find(|&t| t > self.now.mono)
    }

    /// Reports a change of the lease's state.
    pub(super) fn report_lease(&mut self) {
        let state = self.lease.as_ref().map(|l| l.state(self.now.mono));
        if state != self.lease_reported {
            if let Some(s) = state {
                self.emit(ClientEvent::LeaseChanged(s));
            }
            self.lease_reported = state;
        }
    }
}
