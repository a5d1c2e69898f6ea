//! Giving operations their meaning under the file's model: kv or lock.
//!
//! This is where `fail` is interpreted. A `fail` means the operation did not take effect and
//! is left out — unless its `error` names a *checked* refusal, an outcome that says something
//! about the state: `"mismatch"` for `cas` (the register held another value), `"busy"` for
//! `acquire`, `"not_holder"` for `release`, `"rejected"` for `fenced_write`. A read whose
//! outcome is unknown constrains nothing and is left out too.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ParseError;
use crate::history::Operation;
use crate::json::assemble::{Completion, RawOp};
use crate::json::entry::{At, show};
use crate::kv::{KvInput, KvOp, KvOutput};
use crate::lock::{LockInput, LockOp, LockOutput};

/// A kv value of a JSON history: an id into the history's table of values (values compare by
/// their JSON text, with object keys sorted).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ValueId(pub u32);

/// The distinct values of a kv history, as JSON text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Values {
    ids: HashMap<String, u32>,
    texts: Vec<String>,
}

impl Values {
    /// The id of `value`, interning it.
    pub fn intern(&mut self, value: &Value) -> ValueId {
        let text = value.to_string();
        if let Some(&id) = self.ids.get(&text) {
            return ValueId(id);
        }
        let id = u32::try_from(self.texts.len()).expect("fewer values than OPERATIONS_MAX");
        self.ids.insert(text.clone(), id);
        self.texts.push(text);
        ValueId(id)
    }

    /// The JSON text of a value.
    pub fn text(&self, id: ValueId) -> &str {
        &self.texts[id.0 as usize]
    }

    /// Displays an optional value (`None` shows as "absent").
    pub fn show(&self, value: &Option<ValueId>) -> String {
        value.map_or_else(|| "absent".to_string(), |v| self.text(v).to_string())
    }
}

/// A kv operation of a JSON history.
pub(crate) type KvOperation = Operation<KvInput<ValueId>, KvOutput<ValueId>>;

/// Where an operation came from in the file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// Line of the invoke (op form: of the operation).
    pub call_line: usize,
    /// Line of the completion, if any (`info` included).
    pub ret_line: Option<usize>,
}

/// Operations of one model, with their origins and how many entries were left out.
#[derive(Clone, Debug)]
pub(crate) struct Converted<I, O> {
    pub ops: Vec<Operation<I, O>>,
    pub origins: Vec<Origin>,
    pub left_out: usize,
}

fn checked_refusal(raw: &RawOp, error: &str) -> bool {
    raw.completion == Completion::Fail && raw.error.as_deref() == Some(error)
}

fn operation<I, O>(raw: &RawOp, input: I, output: Option<O>) -> Operation<I, O> {
    match (output, raw.ret) {
        (Some(out), Some(ret)) => Operation::returned(raw.process, input, raw.call, ret, out),
        _ => Operation::unknown(raw.process, input, raw.call),
    }
}

fn finish<I, O>(
    raws: &[RawOp],
    mut one: impl FnMut(&RawOp) -> Result<Option<Operation<I, O>>, ParseError>,
) -> Result<Converted<I, O>, ParseError> {
    let mut converted = Converted { ops: Vec::new(), origins: Vec::new(), left_out: 0 };
    for raw in raws {
        match one(raw)? {
            Some(op) => {
                converted.ops.push(op);
                converted.origins.push(Origin { call_line: raw.call_line, ret_line: raw.ret_line });
            }
            None => converted.left_out += 1,
        }
    }
    Ok(converted)
}

/// Converts operations under the kv model.
pub(crate) fn kv(
    raws: &[RawOp],
    values: &mut Values,
) -> Result<Converted<KvInput<ValueId>, KvOutput<ValueId>>, ParseError> {
    finish(raws, |raw| kv_op(raw, values))
}

fn kv_op(raw: &RawOp, values: &mut Values) -> Result<Option<KvOperation>, ParseError> {
    let key = raw.key.clone().unwrap_or_default();
    let (op, output) = match raw.f.as_str() {
        "read" => {
            if raw.completion != Completion::Ok {
                return Ok(None);
            }
            let seen = raw.output_value.as_ref().map(|v| values.intern(v));
            (KvOp::Read, Some(KvOutput::Read(seen)))
        }
        "write" => {
            let v = required_value(raw, "the value written")?;
            (KvOp::Write(values.intern(v)), Some(KvOutput::Written))
        }
        "cas" => {
            let (expected, new) = cas_value(raw)?;
            let op =
                KvOp::Cas { expected: expected.map(|v| values.intern(v)), new: values.intern(new) };
            let output = if checked_refusal(raw, "mismatch") {
                KvOutput::Mismatch
            } else {
                KvOutput::Swapped
            };
            (op, Some(output))
        }
        "delete" => {
            let existed = match &raw.output_value {
                None => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(v) if raw.completion == Completion::Ok => {
                    let msg = format!(
                        "a delete's result is whether the key existed (true, false or null), \
                         found {}",
                        show(v)
                    );
                    return Err(raw.at.field("value", msg));
                }
                Some(_) => None,
            };
            (KvOp::Delete, Some(KvOutput::Deleted { existed }))
        }
        other => {
            let msg = format!(
                "expected one of \"read\", \"write\", \"cas\", \"delete\" (model kv), \
                 found {other:?}"
            );
            return Err(raw.at.field("f", msg));
        }
    };
    outcome(raw, KvInput { key, op }, output, "mismatch", raw.f == "cas")
}

/// Applies the completion: ok keeps `output`; fail is left out unless it is the checked
/// refusal; info is unknown.
fn outcome<I, O>(
    raw: &RawOp,
    input: I,
    output: Option<O>,
    refusal: &str,
    has_refusal: bool,
) -> Result<Option<Operation<I, O>>, ParseError> {
    Ok(match raw.completion {
        Completion::Ok => Some(operation(raw, input, output)),
        Completion::Fail if has_refusal && checked_refusal(raw, refusal) => {
            Some(operation(raw, input, output))
        }
        Completion::Fail => None,
        Completion::Info => Some(operation(raw, input, None)),
    })
}

fn required_value<'a>(raw: &'a RawOp, what: &str) -> Result<&'a Value, ParseError> {
    raw.input_value
        .as_ref()
        .or(raw.output_value.as_ref())
        .ok_or_else(|| raw.call_at.field("value", format!("missing; expected {what} (not null)")))
}

fn cas_value(raw: &RawOp) -> Result<(Option<&Value>, &Value), ParseError> {
    let v = required_value(raw, "[expected, new]")?;
    match v.as_array().map(Vec::as_slice) {
        Some([expected, new]) if !new.is_null() => {
            Ok(((!expected.is_null()).then_some(expected), new))
        }
        _ => Err(raw.call_at.field(
            "value",
            format!(
                "a cas value is [expected, new] (expected null = absent, new not null), found {}",
                show(v)
            ),
        )),
    }
}

/// Converts operations under the lock model.
pub(crate) fn lock(raws: &[RawOp]) -> Result<Converted<LockInput, LockOutput>, ParseError> {
    finish(raws, lock_op)
}

fn token(at: At, value: Option<&Value>, what: &str) -> Result<u64, ParseError> {
    match value {
        Some(v) => v.as_u64().ok_or_else(|| {
            at.field(
                "value",
                format!("expected {what} (a non-negative integer), found {}", show(v)),
            )
        }),
        None => {
            Err(at.field("value", format!("missing; expected {what} (a non-negative integer)")))
        }
    }
}

fn lock_op(raw: &RawOp) -> Result<Option<Operation<LockInput, LockOutput>>, ParseError> {
    let lock = raw.key.clone().ok_or_else(|| {
        raw.call_at.field("key", "missing; a lock operation names its lock in `key`")
    })?;
    let mut session = raw.session.unwrap_or(raw.process);
    let (op, output, refusal) = match raw.f.as_str() {
        "acquire" => {
            let output = match raw.completion {
                Completion::Ok => Some(LockOutput::Granted {
                    token: token(raw.at, raw.output_value.as_ref(), "the granted token")?,
                }),
                _ => Some(LockOutput::Busy),
            };
            (LockOp::Acquire, output, "busy")
        }
        "release" => {
            let output = if raw.completion == Completion::Ok {
                LockOutput::Released
            } else {
                LockOutput::NotHolder
            };
            (LockOp::Release, Some(output), "not_holder")
        }
        "fenced_write" => {
            let t = token(
                raw.call_at,
                raw.input_value.as_ref().or(raw.output_value.as_ref()),
                "the token presented",
            )?;
            let output = if raw.completion == Completion::Ok {
                LockOutput::Accepted
            } else {
                LockOutput::Rejected
            };
            (LockOp::FencedWrite { token: t }, Some(output), "rejected")
        }
        "expire" => {
            session = raw.session.ok_or_else(|| {
                raw.call_at.field("session", "missing; an expire names the session that expired")
            })?;
            (LockOp::Expire, Some(LockOutput::Expired), "")
        }
        other => {
            let msg = format!(
                "expected one of \"acquire\", \"release\", \"fenced_write\", \"expire\" \
                 (model lock), found {other:?}"
            );
            return Err(raw.at.field("f", msg));
        }
    };
    outcome(raw, LockInput { lock, session, op }, output, refusal, !refusal.is_empty())
}

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}
