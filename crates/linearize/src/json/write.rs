//! Writing histories in the op form, so a simulator or a chaos run can save what it recorded
//! and `palisade check` can read it back. One operation per line, readable and diffable.

use serde_json::{Map, Value, json};

use crate::history::{Operation, Outcome};
use crate::kv::{KvInput, KvOp, KvOutput};
use crate::lock::{ExpiryRule, LockInput, LockModel, LockOp, LockOutput};

fn entry<I, O>(
    op: &Operation<I, O>,
    f: &str,
    value: Value,
    refusal: Option<&str>,
) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert("process".into(), json!(op.process));
    let kind = match (&op.outcome, refusal) {
        (Outcome::Unknown, _) => "info",
        (Outcome::Returned { .. }, Some(_)) => "fail",
        (Outcome::Returned { .. }, None) => "ok",
    };
    e.insert("type".into(), json!(kind));
    e.insert("f".into(), json!(f));
    e.insert("value".into(), value);
    e.insert("call".into(), json!(op.call));
    if let Some(ret) = op.ret() {
        e.insert("return".into(), json!(ret));
    }
    if let (Some(error), Some(_)) = (refusal, op.ret()) {
        e.insert("error".into(), json!(error));
    }
    e
}

fn file(model: Value, expiry: Option<&str>, entries: Vec<Map<String, Value>>) -> String {
    let mut out = format!("{{\"model\": {model},");
    if let Some(expiry) = expiry {
        out.push_str(&format!(" \"expiry\": {},", json!(expiry)));
    }
    out.push_str("\n \"operations\": [\n");
    let lines: Vec<String> =
        entries.into_iter().map(|e| format!("  {}", Value::Object(e))).collect();
    out.push_str(&lines.join(",\n"));
    out.push_str("\n]}\n");
    out
}

/// A kv history as a JSON history file (op form).
pub fn kv_history_json<V: Clone + Into<Value>>(
    ops: &[Operation<KvInput<V>, KvOutput<V>>],
) -> String {
    let val = |v: &V| -> Value { v.clone().into() };
    let opt = |v: &Option<V>| v.as_ref().map_or(Value::Null, val);
    let entries = ops
        .iter()
        .map(|op| {
            let (f, value) = match (&op.input.op, op.output()) {
                (KvOp::Read, Some(KvOutput::Read(seen))) => ("read", opt(seen)),
                (KvOp::Read, _) => ("read", Value::Null),
                (KvOp::Write(v), _) => ("write", val(v)),
                (KvOp::Cas { expected, new }, _) => ("cas", json!([opt(expected), val(new)])),
                (KvOp::Delete, Some(KvOutput::Deleted { existed: Some(e) })) => {
                    ("delete", json!(e))
                }
                (KvOp::Delete, _) => ("delete", Value::Null),
            };
            let refusal = matches!(op.output(), Some(KvOutput::Mismatch)).then_some("mismatch");
            let mut e = entry(op, f, value, refusal);
            e.insert("key".into(), json!(op.input.key));
            e
        })
        .collect();
    file(json!("kv"), None, entries)
}

/// A lock history as a JSON history file (op form), with the model's expiry rule.
pub fn lock_history_json(model: &LockModel, ops: &[Operation<LockInput, LockOutput>]) -> String {
    let entries = ops
        .iter()
        .map(|op| {
            let (f, value, refusal) = match (&op.input.op, op.output()) {
                (LockOp::Acquire, Some(LockOutput::Granted { token })) => {
                    ("acquire", json!(token), None)
                }
                (LockOp::Acquire, Some(LockOutput::Busy)) => ("acquire", Value::Null, Some("busy")),
                (LockOp::Acquire, _) => ("acquire", Value::Null, None),
                (LockOp::Release, Some(LockOutput::NotHolder)) => {
                    ("release", Value::Null, Some("not_holder"))
                }
                (LockOp::Release, _) => ("release", Value::Null, None),
                (LockOp::FencedWrite { token }, Some(LockOutput::Rejected)) => {
                    ("fenced_write", json!(token), Some("rejected"))
                }
                (LockOp::FencedWrite { token }, _) => ("fenced_write", json!(token), None),
                (LockOp::Expire, _) => ("expire", Value::Null, None),
            };
            let mut e = entry(op, f, value, refusal);
            e.insert("key".into(), json!(op.input.lock));
            e.insert("session".into(), json!(op.input.session));
            e
        })
        .collect();
    let expiry = match model.expiry {
        ExpiryRule::Silent => "silent",
        ExpiryRule::Logged => "logged",
    };
    file(json!("lock"), Some(expiry), entries)
}
