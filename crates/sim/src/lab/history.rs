//! The recorder: every client operation with its true call and return times, turned into the
//! two histories the linearizability checker reads (locks, kv registers).
//!
//! Times are the simulator's true time: the call is when the workload handed the operation to
//! the client (if a pause then held the request back, the call is earlier than the send, which
//! only makes the checker more lenient), the return is when the client's completion took
//! effect. An operation whose outcome the client never learnt — it timed out, its client
//! crashed, the run ended — is recorded with an unknown outcome, as the checker requires; a
//! read that did not return is left out (it changed nothing). A definite refusal that had no
//! effect (not leader, no session, a limit) is left out too: it did not happen.
//!
//! A blocking acquire answered `Queued` stays open until the client reports the grant; if it
//! never does, its outcome is unknown (it may have been granted and lost with the session).

use std::collections::BTreeMap;

use palisade_linearize::{KvInput, KvOp, KvOutput, LockInput, LockOp, LockOutput, Operation};
use palisade_node::lock::{Outcome, Refused, Reply, RequestId};
use palisade_node::{OpId, OpOutcome, ReadReply, ReplyResult};

use crate::ProcId;
use crate::report::{LatencyOutcome, LatencyPoint};

/// A kv value in the histories.
pub type Bytes = Vec<u8>;
/// A lock operation of the history.
pub type LockOperation = Operation<LockInput, LockOutput>;
/// A kv operation of the history.
pub type KvOperation = Operation<KvInput<Bytes>, KvOutput<Bytes>>;

/// What an operation is, for the histories.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum OpSpec {
    /// An acquire (try or blocking) or a release by `session`.
    Lock { lock: String, session: u64, op: LockOp },
    /// A kv operation on a key no lock guards.
    Kv { key: String, op: KvOp<Bytes> },
    /// A put to palisade's kv fenced with `token` of `lock`.
    Fenced { lock: String, session: u64, token: u64, key: String, value: Bytes },
    /// A close of `session`: in the lock history through the log's `SessionClosed` (an
    /// `Expire` operation from this call to the close's first apply).
    Close { session: u64 },
    /// Sessions, waits: not in the histories.
    Other,
}

#[derive(Clone, Debug)]
struct Pending {
    process: u64,
    call: u64,
    spec: OpSpec,
    name: &'static str,
    request: Option<RequestId>,
}

/// An operation the liveness checker judges: invoked in the liveness phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Judged {
    pub call: u64,
    pub ret: Option<u64>,
    pub definite: bool,
    /// The lock it asks to hold (acquire, try-acquire, wait for the grant), if any.
    pub wants: Option<String>,
}

/// Collects the operations of a run.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pending: BTreeMap<(ProcId, u32, OpId), Pending>,
    queued: BTreeMap<(ProcId, u32, String), Pending>,
    /// The lock history.
    pub lock_ops: Vec<LockOperation>,
    /// The kv history.
    pub kv_ops: Vec<KvOperation>,
    /// One point per completed or abandoned operation.
    pub latencies: Vec<LatencyPoint>,
    /// Acknowledged mutations, with the true time of the acknowledgement.
    pub acked: Vec<(RequestId, u64)>,
    /// Operations invoked from this true time on are judged for liveness.
    pub judge_from: Option<u64>,
    /// The judged operations.
    pub judged: BTreeMap<(ProcId, u32, OpId), Judged>,
    /// Operations completed / completed with an unknown outcome.
    pub completed: u64,
    /// Operations whose outcome the client never learnt.
    pub unknown: u64,
    /// Session -> true time of the first call to close it.
    pub close_calls: BTreeMap<u64, u64>,
}

/// A process number for the histories: client process and incarnation.
pub(crate) fn process_of(p: ProcId, incarnation: u32) -> u64 {
    (u64::from(p.0) << 16) | u64::from(incarnation)
}

impl Recorder {
    /// The workload handed operation `op` to client `p` (incarnation `inc`) at `t`.
    pub fn invoked(
        &mut self,
        key: (ProcId, u32, OpId),
        t: u64,
        spec: OpSpec,
        name: &'static str,
        request: Option<RequestId>,
    ) {
        let process = process_of(key.0, key.1);
        if let OpSpec::Close { session } = spec {
            self.close_calls.entry(session).or_insert(t);
        }
        self.pending.insert(key, Pending { process, call: t, spec, name, request });
        if self.judge_from.is_some_and(|from| t >= from) {
            self.judged.insert(key, Judged { call: t, ret: None, definite: false, wants: None });
        }
    }

    /// Judged operation `key` asks for `lock` (the liveness judge demands its grant).
    pub fn wants(&mut self, key: (ProcId, u32, OpId), lock: &str) {
        if let Some(j) = self.judged.get_mut(&key) {
            j.wants = Some(lock.to_owned());
        }
    }

    /// Client `p` reported the end of operation `op` at `t`; returns the operation's call time.
    pub fn completed(
        &mut self,
        key: (ProcId, u32, OpId),
        outcome: &OpOutcome,
        t: u64,
    ) -> Option<u64> {
        let op = self.pending.remove(&key)?;
        let call = op.call;
        self.completed += 1;
        if let Some(j) = self.judged.get_mut(&key) {
            j.ret = Some(t);
            j.definite = outcome.is_done();
        }
        let result = match outcome {
            Outcome::Unknown => {
                self.unknown += 1;
                self.point(&op, t, LatencyOutcome::Unknown);
                self.abandon(op);
                return Some(call);
            }
            Outcome::Done(r) => r,
        };
        let ok = matches!(result, ReplyResult::Done(Ok(_)) | ReplyResult::Read(_));
        self.point(&op, t, if ok { LatencyOutcome::Ok } else { LatencyOutcome::Fail });
        if matches!(result, ReplyResult::Done(Ok(_)))
            && let Some(r) = op.request
        {
            self.acked.push((r, t));
        }
        self.returned(key, op, result, t);
        Some(call)
    }

    fn point(&mut self, op: &Pending, t: u64, outcome: LatencyOutcome) {
        let latency = t.saturating_sub(op.call);
        self.latencies.push(LatencyPoint { at: op.call, latency, op: op.name.into(), outcome });
    }

    fn returned(&mut self, key: (ProcId, u32, OpId), op: Pending, result: &ReplyResult, t: u64) {
        let (process, call) = (op.process, op.call);
        let lock_op = |input: LockInput, out| Operation::returned(process, input, call, t, out);
        let kv_op = |input: KvInput<Bytes>, out| Operation::returned(process, input, call, t, out);
        match (op.spec.clone(), result) {
            (OpSpec::Lock { lock, session, op: lop }, ReplyResult::Done(r)) => {
                let out = match (r, &lop) {
                    (Ok(Reply::Acquired { holder, .. }), _) => {
                        LockOutput::Granted { token: holder.token }
                    }
                    (Ok(Reply::Busy { .. }), _) => LockOutput::Busy,
                    (Ok(Reply::Queued { .. }), _) => {
                        self.queued.insert((key.0, key.1, lock), op);
                        return;
                    }
                    (Ok(Reply::Released { .. }), _) => LockOutput::Released,
                    (Ok(Reply::Dequeued { .. }), LockOp::Acquire) => {
                        // Queued, then the session left the queue: granted in between or not.
                        self.abandon(op);
                        return;
                    }
                    (Ok(Reply::Dequeued { .. }) | Err(Refused::NotHolder { .. }), _) => {
                        LockOutput::NotHolder
                    }
                    _ => return,
                };
                self.lock_ops.push(lock_op(LockInput::new(lock, session, lop), out));
            }
            (OpSpec::Lock { lock, .. }, ReplyResult::StillWaiting { .. }) => {
                self.queued.insert((key.0, key.1, lock), op);
            }
            (OpSpec::Kv { key, op: kop }, ReplyResult::Done(r)) => {
                let out = match (r, &kop) {
                    (Ok(Reply::Written { .. }), KvOp::Write(_)) => KvOutput::Written,
                    (Ok(Reply::Written { .. }), KvOp::Cas { .. }) => KvOutput::Swapped,
                    (Err(Refused::CasMismatch { .. }), KvOp::Cas { .. }) => KvOutput::Mismatch,
                    (Ok(Reply::Deleted { existed, .. }), KvOp::Delete) => {
                        KvOutput::Deleted { existed: Some(*existed) }
                    }
                    _ => return,
                };
                self.kv_ops.push(kv_op(KvInput::new(key, kop), out));
            }
            (
                OpSpec::Kv { key, op: KvOp::Read },
                ReplyResult::Read(ReadReply::Value { value, .. }),
            ) => {
                let v = value.as_ref().map(|v| v.data.clone());
                self.kv_ops.push(kv_op(KvInput::new(key, KvOp::Read), KvOutput::Read(v)));
            }
            (OpSpec::Fenced { lock, session, token, key, value }, ReplyResult::Done(r)) => {
                let fenced = LockInput::new(lock, session, LockOp::FencedWrite { token });
                match r {
                    Ok(Reply::Written { .. }) => {
                        self.lock_ops.push(lock_op(fenced, LockOutput::Accepted));
                        let write = KvInput::new(key, KvOp::Write(value));
                        self.kv_ops.push(kv_op(write, KvOutput::Written));
                    }
                    Err(Refused::Fence(_)) => {
                        self.lock_ops.push(lock_op(fenced, LockOutput::Rejected));
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    /// Records `op` with an unknown outcome (mutations only: reads and others are dropped).
    fn abandon(&mut self, op: Pending) {
        let (process, call) = (op.process, op.call);
        match op.spec {
            OpSpec::Lock { lock, session, op } => {
                let input = LockInput::new(lock, session, op);
                self.lock_ops.push(Operation::unknown(process, input, call));
            }
            OpSpec::Kv { op: KvOp::Read, .. } | OpSpec::Close { .. } | OpSpec::Other => {}
            OpSpec::Kv { key, op } => {
                self.kv_ops.push(Operation::unknown(process, KvInput::new(key, op), call));
            }
            OpSpec::Fenced { lock, session, token, key, value } => {
                let fenced = LockInput::new(lock, session, LockOp::FencedWrite { token });
                self.lock_ops.push(Operation::unknown(process, fenced, call));
                let write = KvInput::new(key, KvOp::Write(value));
                self.kv_ops.push(Operation::unknown(process, write, call));
            }
        }
    }

    /// Client `p` (incarnation `inc`) reported the grant of `lock` with `token` at `t`: closes
    /// its queued acquire of that lock, if any.
    pub fn granted(&mut self, p: ProcId, inc: u32, lock: &str, token: u64, t: u64) {
        let Some(op) = self.queued.remove(&(p, inc, lock.to_owned())) else { return };
        let OpSpec::Lock { lock, session, op: lop } = op.spec else { return };
        let input = LockInput::new(lock, session, lop);
        let out = LockOutput::Granted { token };
        self.lock_ops.push(Operation::returned(op.process, input, op.call, t, out));
    }

    /// Whether client `p` (incarnation `inc`) waits in the queue of `lock`.
    #[cfg(test)]
    pub fn is_queued(&self, p: ProcId, inc: u32, lock: &str) -> bool {
        self.queued.contains_key(&(p, inc, lock.to_owned()))
    }

    /// The locks client `p` (incarnation `inc`) waits for.
    pub fn queued_locks(&self, p: ProcId, inc: u32) -> Vec<String> {
        self.queued.keys().filter(|k| k.0 == p && k.1 == inc).map(|k| k.2.clone()).collect()
    }

    /// The client gave up waiting for `lock` (released it, or its session ended).
    pub fn drop_queued(&mut self, p: ProcId, inc: u32, lock: &str) {
        if let Some(op) = self.queued.remove(&(p, inc, lock.to_owned())) {
            self.abandon(op);
        }
    }

    /// The run ended at `t`: everything still open has an unknown outcome.
    pub fn finish(&mut self, t: u64) {
        for (_, op) in std::mem::take(&mut self.pending) {
            self.unknown += 1;
            self.point(&op, t, LatencyOutcome::Unknown);
            self.abandon(op);
        }
        for (_, op) in std::mem::take(&mut self.queued) {
            self.abandon(op);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(op: u64) -> (ProcId, u32, OpId) {
        (ProcId(3), 0, OpId(op))
    }

    /// A queued acquire becomes one operation from its call to the grant; an abandoned write
    /// becomes an unknown one; a read that did not return is dropped.
    #[test]
    fn outcomes_map_to_history_entries() {
        let mut r = Recorder::default();
        let acquire = OpSpec::Lock { lock: "L".into(), session: 7, op: LockOp::Acquire };
        r.invoked(key(1), 10, acquire, "acquire", None);
        let queued = Reply::Queued { lock: "L".into(), position: 0 };
        r.completed(key(1), &Outcome::Done(ReplyResult::Done(Ok(queued))), 20);
        assert!(r.is_queued(ProcId(3), 0, "L"));
        r.granted(ProcId(3), 0, "L", 42, 50);
        assert_eq!(r.lock_ops.len(), 1);
        assert_eq!(r.lock_ops[0].call, 10);
        assert_eq!(r.lock_ops[0].output(), Some(&LockOutput::Granted { token: 42 }));
        let write = OpSpec::Kv { key: "k".into(), op: KvOp::Write(vec![1]) };
        r.invoked(key(2), 60, write, "put", None);
        let read = OpSpec::Kv { key: "k".into(), op: KvOp::Read };
        r.invoked(key(3), 70, read, "get", None);
        r.finish(100);
        assert_eq!(r.kv_ops.len(), 1);
        assert!(r.kv_ops[0].is_unknown());
    }
}
