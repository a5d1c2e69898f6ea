//! From entries to operations: pairing Jepsen-style events, or reading operation entries.
//!
//! Event form: each process runs one operation at a time, so an `invoke` is completed by the
//! next `ok`, `fail` or `info` entry of the same process; an `invoke` with no completion by
//! the end of the file is an unknown outcome, like `info`. Op form: one entry per operation,
//! with `call` and `return` times.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::ParseError;
use crate::json::entry::{At, Entry, EntryType};

/// How an operation ended, as the history says.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Completion {
    Ok,
    Fail,
    /// `info`, or no completion at all.
    Info,
}

/// One operation, before the model gives its fields a meaning.
#[derive(Clone, Debug)]
pub(crate) struct RawOp {
    pub process: u64,
    pub f: String,
    pub key: Option<String>,
    pub session: Option<u64>,
    /// The invoke's value (op form: the entry's value).
    pub input_value: Option<Value>,
    /// The completion's value (op form: the entry's value).
    pub output_value: Option<Value>,
    pub completion: Completion,
    pub error: Option<String>,
    pub call: u64,
    /// `None` unless `completion` is `Ok` or `Fail`.
    pub ret: Option<u64>,
    pub call_line: usize,
    pub ret_line: Option<usize>,
    /// The entry errors about this operation's result point at (its completion, else its
    /// invoke).
    pub at: At,
    /// The entry errors about this operation's input point at (its invoke).
    pub call_at: At,
}

fn at(e: &Entry) -> At {
    At { index: e.index, line: e.line }
}

/// Pairs or reads the entries into operations.
pub(crate) fn assemble(entries: Vec<Entry>) -> Result<Vec<RawOp>, ParseError> {
    let op_form = entries.first().is_some_and(|e| e.call.is_some());
    for e in &entries {
        if op_form && e.call.is_none() {
            return Err(at(e).field(
                "call",
                "missing: operations[0] has `call`, so every entry must be an operation with \
                 `call` (op form); an entry without it is an event (event form)",
            ));
        }
        if !op_form && e.call.is_some() {
            return Err(at(e).field(
                "call",
                "unexpected: operations[0] has no `call`, so entries are events with `time` \
                 (event form), and `call`/`return` belong to the op form",
            ));
        }
    }
    if op_form { read_ops(entries) } else { pair_events(entries) }
}

fn read_ops(entries: Vec<Entry>) -> Result<Vec<RawOp>, ParseError> {
    let mut ops = Vec::with_capacity(entries.len());
    for e in entries {
        let call = e.call.expect("checked by assemble");
        let (completion, ret) = match e.kind {
            EntryType::Invoke => {
                return Err(at(&e).field(
                    "type",
                    "\"invoke\" belongs to the event form; an operation entry is \"ok\", \"fail\" \
                     or \"info\"",
                ));
            }
            EntryType::Ok => (Completion::Ok, Some(required_return(&e, call)?)),
            EntryType::Fail => (Completion::Fail, Some(required_return(&e, call)?)),
            EntryType::Info => (Completion::Info, None),
        };
        let here = at(&e);
        ops.push(RawOp {
            process: e.process,
            f: e.f,
            key: e.key,
            session: e.session,
            input_value: e.value.clone(),
            output_value: e.value,
            completion,
            error: e.error,
            call,
            ret,
            call_line: e.line,
            ret_line: ret.map(|_| e.line),
            at: here,
            call_at: here,
        });
    }
    Ok(ops)
}

fn required_return(e: &Entry, call: u64) -> Result<u64, ParseError> {
    let ret = e.ret.ok_or_else(|| {
        at(e).field("return", "missing; an \"ok\" or \"fail\" operation needs its return time")
    })?;
    if ret < call {
        return Err(at(e).field("return", format!("{ret} is earlier than the call time {call}")));
    }
    Ok(ret)
}

fn event_time(e: &Entry, timed: bool, previous: u64) -> Result<u64, ParseError> {
    let time = match (timed, e.time) {
        (true, Some(t)) => t,
        (false, None) => e.index as u64,
        (true, None) => {
            return Err(at(e).field(
                "time",
                "missing: operations[0] has a time, so every entry needs one (or none may)",
            ));
        }
        (false, Some(_)) => {
            return Err(at(e).field(
                "time",
                "unexpected: operations[0] has no time, so entries are ordered by position and \
                 none may have one",
            ));
        }
    };
    if time < previous {
        return Err(at(e).field(
            "time",
            format!(
                "{time} is earlier than the previous entry's {previous}: events must be in \
                 time order"
            ),
        ));
    }
    Ok(time)
}

fn pair_events(entries: Vec<Entry>) -> Result<Vec<RawOp>, ParseError> {
    let timed = entries.first().is_some_and(|e| e.time.is_some());
    let mut ops: Vec<RawOp> = Vec::with_capacity(entries.len() / 2 + 1);
    let mut open: HashMap<u64, usize> = HashMap::new();
    let mut previous = 0;
    for e in entries {
        let time = event_time(&e, timed, previous)?;
        previous = time;
        if e.kind == EntryType::Invoke {
            if let Some(&i) = open.get(&e.process) {
                return Err(at(&e).entry(format!(
                    "process {} invokes again while its invoke at line {} has no completion \
                     (a process runs one operation at a time; give a process that timed out an \
                     \"info\" completion or a new process id)",
                    e.process, ops[i].call_line
                )));
            }
            open.insert(e.process, ops.len());
            ops.push(invoked(e, time));
            continue;
        }
        let Some(i) = open.remove(&e.process) else {
            return Err(at(&e).entry(format!(
                "{} completion of process {} with no invoke before it",
                e.kind.article_name(),
                e.process
            )));
        };
        complete(&mut ops[i], e, time)?;
    }
    Ok(ops)
}

fn invoked(e: Entry, time: u64) -> RawOp {
    RawOp {
        process: e.process,
        at: at(&e),
        call_at: at(&e),
        f: e.f,
        key: e.key,
        session: e.session,
        input_value: e.value,
        output_value: None,
        completion: Completion::Info,
        error: None,
        call: time,
        ret: None,
        call_line: e.line,
        ret_line: None,
    }
}

fn complete(op: &mut RawOp, e: Entry, time: u64) -> Result<(), ParseError> {
    if e.f != op.f {
        return Err(at(&e).field(
            "f",
            format!(
                "{:?} completes process {}'s invoke of {:?} at line {}",
                e.f, e.process, op.f, op.call_line
            ),
        ));
    }
    if e.key.is_some() && e.key != op.key {
        return Err(at(&e).field(
            "key",
            format!(
                "{:?} differs from the key {:?} of the invoke at line {}",
                e.key, op.key, op.call_line
            ),
        ));
    }
    op.completion = match e.kind {
        EntryType::Ok => Completion::Ok,
        EntryType::Fail => Completion::Fail,
        EntryType::Info => Completion::Info,
        EntryType::Invoke => unreachable!("invokes are handled by pair_events"),
    };
    if op.completion != Completion::Info {
        op.ret = Some(time);
    }
    op.ret_line = Some(e.line);
    op.at = at(&e);
    op.output_value = e.value;
    op.error = e.error;
    op.session = op.session.or(e.session);
    Ok(())
}
