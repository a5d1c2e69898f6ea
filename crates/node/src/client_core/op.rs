//! The user operation in flight: build, send, retry, finish.
//!
//! Retries reuse the request id (the state machine runs it at most once); each transmission
//! gets a fresh attempt number. A final answer (`Done`, `Read`, `Invalid`) is taken from any
//! attempt of the operation — an older attempt's answer is as true as the newest's — while
//! non-final answers (`NotLeader`, `Retry`, `Unknown`, `StillWaiting`) count only from the
//! latest attempt, so a slow answer from a node given up on cannot redirect the client.

use palisade_lock::{ClientLease, LockGuardState, Op, Outcome, Refused, Reply, Response};
use palisade_raft::NodeId;

use super::{ClientCore, ClientEvent, InFlight, OpId, Purpose, UserOp, invalid};
use crate::protocol::{ClientReply, ClientRequest, ReadOp, ReadReply, ReplyResult, RequestBody};

impl ClientCore {
    /// Starts `user` now: builds its request (or refuses it locally) and sends the first
    /// attempt.
    pub(super) fn start(&mut self, op: OpId, user: UserOp) {
        let body = match self.request_body(&user) {
            Ok(body) => body,
            Err(reason) => return self.complete(op, Outcome::Done(invalid(reason))),
        };
        let wait = match &user {
            UserOp::Acquire { wait, .. } | UserOp::WaitGrant { wait, .. } => *wait,
            _ => None,
        };
        let id = matches!(body, RequestBody::Mutate(_)).then(|| self.fresh_id());
        let probe = ClientRequest { attempt: 0, id, body, wait };
        if let Err(e) = probe.validate() {
            return self.complete(op, Outcome::Done(invalid(e.to_string())));
        }
        let body = probe.body;
        if user == UserOp::OpenSession {
            let mut lease = ClientLease::new(self.config.ttl, self.config.drift_bound_ppm);
            if let Some(fault) = self.config.testing_fault {
                lease = lease.with_testing_fault(fault);
            }
            self.lease = Some(lease);
            self.session = None;
            self.keepalive = None;
            self.locks.clear();
        }
        let deadline = self.now.mono + self.config.op_timeout + wait.unwrap_or_default();
        self.current = Some(InFlight {
            op,
            user,
            id,
            body,
            wait,
            deadline,
            attempt: 0,
            attempt_deadline: deadline,
            resend_at: None,
            open_kid: None,
            sent_to: self.target(),
        });
        self.send_current();
    }

    /// The request body of `user`, or why it cannot be sent.
    fn request_body(&self, user: &UserOp) -> Result<RequestBody, String> {
        let live = self.session.filter(|_| self.lease.is_some());
        let session = || live.ok_or_else(|| "no open session".to_string());
        let mutate = |op| Ok(RequestBody::Mutate(op));
        let read = |op| Ok(RequestBody::Read(op));
        match user.clone() {
            UserOp::OpenSession => match live {
                Some(s) if self.lease_state_now() != Some(palisade_lock::LeaseState::Lost) => {
                    Err(format!("session {s} is already open"))
                }
                _ => mutate(Op::OpenSession { ttl: self.config.ttl }),
            },
            UserOp::CloseSession => mutate(Op::CloseSession { session: session()? }),
            UserOp::Acquire { lock, .. } => {
                mutate(Op::Acquire { session: session()?, lock, wait: true })
            }
            UserOp::TryAcquire { lock } => {
                mutate(Op::Acquire { session: session()?, lock, wait: false })
            }
            UserOp::Release { lock } => mutate(Op::Release { session: session()?, lock }),
            UserOp::Put { key, value, fence } => {
                mutate(Op::Put { key, value, fence, hlc: palisade_clock::HlcTimestamp::ZERO })
            }
            UserOp::Cas { key, expected, value, fence } => {
                let hlc = palisade_clock::HlcTimestamp::ZERO;
                mutate(Op::Cas { key, expected, value, fence, hlc })
            }
            UserOp::Delete { key, fence } => {
                mutate(Op::Delete { key, fence, hlc: palisade_clock::HlcTimestamp::ZERO })
            }
            UserOp::Get { key, consistency } => read(ReadOp::Get { key, consistency }),
            UserOp::LockInfo { name, consistency } => read(ReadOp::LockInfo { name, consistency }),
            UserOp::WaitGrant { lock, .. } => read(ReadOp::WaitGrant { session: session()?, lock }),
            UserOp::SessionInfo => read(ReadOp::SessionInfo { session: session()? }),
        }
    }

    fn lease_state_now(&self) -> Option<palisade_lock::LeaseState> {
        self.lease.as_ref().map(|l| l.state(self.now.mono))
    }

    /// Sends a new attempt of the operation in flight to the current target.
    pub(super) fn send_current(&mut self) {
        let attempt = self.fresh_attempt();
        let now = self.now.mono;
        let timeout = self.config.attempt_timeout;
        let target = self.target();
        let cur = self.current.as_mut().expect("an operation is in flight");
        if cur.user == UserOp::OpenSession && cur.open_kid.is_none() {
            // The lease counts from the first send of the OpenSession; retransmissions keep
            // that id, so an acknowledgement never anchors it later than the real send.
            let lease = self.lease.as_mut().expect("OpenSession creates the lease");
            cur.open_kid = Some(lease.handle_keepalive_sent(now));
        }
        cur.attempt = attempt;
        cur.attempt_deadline = now + timeout + cur.wait.unwrap_or_default();
        cur.resend_at = None;
        cur.sent_to = target;
        let request = ClientRequest { attempt, id: cur.id, body: cur.body.clone(), wait: cur.wait };
        let purpose = Purpose::Op(cur.op);
        self.transmit(purpose, request);
    }

    /// An answer to an attempt of the operation in flight.
    pub(super) fn op_reply(&mut self, from: NodeId, reply: ClientReply) {
        let cur = self.current.as_ref().expect("caller checked");
        let latest = cur.attempt == reply.attempt;
        match reply.result {
            ReplyResult::Done(response) => self.finish_done(response),
            ReplyResult::Read(read) => self.finish_read(read),
            ReplyResult::Invalid(reason) => self.finish(Outcome::Done(invalid(reason))),
            _ if !latest => {}
            ReplyResult::StillWaiting { position } => {
                self.finish(Outcome::Done(ReplyResult::StillWaiting { position }));
            }
            ReplyResult::NotLeader { leader } => {
                if self.follow_hint(from, leader) {
                    self.send_current();
                } else {
                    self.resend_later();
                }
            }
            ReplyResult::Retry { .. } | ReplyResult::Unknown => self.resend_later(),
        }
    }

    pub(super) fn resend_later(&mut self) {
        let at = self.now.mono + self.backoff();
        self.current.as_mut().expect("in flight").resend_at = Some(at);
    }

    /// Deadlines of the operation in flight.
    pub(super) fn op_timeouts(&mut self) {
        let Some(cur) = &self.current else { return };
        let now = self.now.mono;
        if now >= cur.deadline {
            return self.finish(Outcome::Unknown);
        }
        if cur.resend_at.is_some_and(|at| at <= now) {
            return self.send_current();
        }
        if now >= cur.attempt_deadline {
            let server = cur.sent_to;
            self.rotate_from(server);
            self.send_current();
        }
    }

    /// A `Done` answer: the state machine's response to the request.
    fn finish_done(&mut self, response: Response) {
        // Taken out now (nothing below looks at the operation in flight): no copy of it.
        let cur = self.current.take().expect("in flight");
        let (user, open_kid) = (&cur.user, cur.open_kid);
        let outcome = match (user, &response) {
            // The request's answer is no longer kept: it may have run.
            (_, Err(Refused::StaleRequest { .. })) => Outcome::Unknown,
            (UserOp::OpenSession, _) => {
                self.opened(&response, open_kid);
                Outcome::Done(ReplyResult::Done(response))
            }
            (
                _,
                Err(
                    Refused::NoSession { .. }
                    | Refused::UnknownSession { .. }
                    | Refused::NotSessionOwner { .. },
                ),
            ) => {
                // The session is gone, and its dedup entry with it: an earlier attempt may
                // have run before it went. Unknown is the honest answer.
                self.session_gone();
                Outcome::Unknown
            }
            _ => {
                self.note_response(user, &response);
                Outcome::Done(ReplyResult::Done(response))
            }
        };
        self.complete(cur.op, outcome);
    }

    fn opened(&mut self, response: &Response, kid: Option<palisade_lock::KeepaliveId>) {
        match response {
            Ok(Reply::SessionOpened { session, .. }) => {
                self.session = Some(*session);
                let lease = self.lease.as_mut().expect("OpenSession creates the lease");
                lease.handle_keepalive_acked(kid.expect("sent at least once"), self.now.mono);
            }
            Err(Refused::SessionExists { session }) => {
                // Our own session, opened by an earlier OpenSession whose answer was lost.
                // Its renewal time is unknown: the lease stays Pending until a keepalive sent
                // from now on is acknowledged (the keepalive goes out at once).
                self.session = Some(*session);
                let mut lease = ClientLease::new(self.config.ttl, self.config.drift_bound_ppm);
                if let Some(fault) = self.config.testing_fault {
                    lease = lease.with_testing_fault(fault);
                }
                self.lease = Some(lease);
            }
            _ => self.lease = None,
        }
    }

    /// Keeps the held-lock table in step with a response.
    fn note_response(&mut self, user: &UserOp, response: &Response) {
        match (user, response) {
            (_, Ok(Reply::Acquired { lock, holder, .. })) => {
                let guard = LockGuardState::new(lock.clone(), holder.token, holder.session);
                self.locks.insert(lock.clone(), guard);
                if matches!(user, UserOp::Acquire { .. }) {
                    let (lock, token) = (lock.clone(), holder.token);
                    self.emit(ClientEvent::Granted { lock, token });
                }
            }
            (_, Ok(Reply::Released { lock, .. })) => {
                self.locks.remove(lock);
            }
            (UserOp::Release { lock }, Err(Refused::NotHolder { .. })) => {
                self.locks.remove(lock);
            }
            (_, Ok(Reply::SessionClosed { .. })) => {
                self.session = None;
                self.locks.clear();
                if let Some(lease) = self.lease.as_mut() {
                    lease.handle_session_expired();
                }
            }
            _ => {}
        }
    }

    /// A `Read` answer.
    fn finish_read(&mut self, read: ReadReply) {
        match &read {
            ReadReply::Granted { lock, holder } => {
                let guard = LockGuardState::new(lock.clone(), holder.token, holder.session);
                self.locks.insert(lock.clone(), guard);
                let (lock, token) = (lock.clone(), holder.token);
                self.emit(ClientEvent::Granted { lock, token });
            }
            ReadReply::Session { session, info: None } if Some(*session) == self.session => {
                self.session_gone();
            }
            _ => {}
        }
        self.finish(Outcome::Done(ReplyResult::Read(read)));
    }

    /// The server says the session no longer exists: the lease is lost for good.
    pub(super) fn session_gone(&mut self) {
        self.session = None;
        self.locks.clear();
        if let Some(lease) = self.lease.as_mut() {
            lease.handle_session_expired();
        }
    }

    /// Ends the operation in flight.
    fn finish(&mut self, outcome: crate::OpOutcome) {
        let cur = self.current.take().expect("in flight");
        self.complete(cur.op, outcome);
    }

    /// Reports `op` done.
    pub(super) fn complete(&mut self, op: OpId, outcome: crate::OpOutcome) {
        self.emit(ClientEvent::OpDone { op, outcome });
    }

    /// Starts queued operations while none is in flight.
    pub(super) fn pump_queue(&mut self) {
        while self.current.is_none() {
            let Some((op, user)) = self.queue.pop_front() else { break };
            self.start(op, user);
        }
    }
}
