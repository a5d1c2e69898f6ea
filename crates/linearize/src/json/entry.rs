//! One entry of a JSON history's `operations` array, with precise errors.
//!
//! Each entry is read as a JSON object and its fields are taken one by one, so an error can
//! name the line, the entry and the field, and say what was expected and what was found.
//! Unknown fields are ignored (Jepsen histories carry `index`, `node`, ... which are of no use
//! here).

use serde_json::{Map, Value};

use crate::error::ParseError;

/// The `type` of an entry.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum EntryType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EntryType {
    /// "an \"ok\"", "a \"fail\"", ... for messages.
    pub fn article_name(self) -> &'static str {
        match self {
            EntryType::Invoke => "an \"invoke\"",
            EntryType::Ok => "an \"ok\"",
            EntryType::Fail => "a \"fail\"",
            EntryType::Info => "an \"info\"",
        }
    }
}

/// The fields of one entry the checker uses.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub index: usize,
    pub line: usize,
    pub process: u64,
    pub kind: EntryType,
    pub f: String,
    pub key: Option<String>,
    pub value: Option<Value>,
    pub error: Option<String>,
    pub session: Option<u64>,
    /// Event form.
    pub time: Option<u64>,
    /// Op form.
    pub call: Option<u64>,
    /// Op form.
    pub ret: Option<u64>,
}

/// Builds errors about one entry.
#[derive(Copy, Clone, Debug)]
pub(crate) struct At {
    pub index: usize,
    pub line: usize,
}

impl At {
    /// An error about `field` of this entry.
    pub fn field(self, field: &str, message: impl Into<String>) -> ParseError {
        ParseError {
            line: Some(self.line),
            entry: Some(self.index),
            field: Some(field.to_string()),
            message: message.into(),
        }
    }

    /// An error about the entry as a whole.
    pub fn entry(self, message: impl Into<String>) -> ParseError {
        ParseError {
            line: Some(self.line),
            entry: Some(self.index),
            field: None,
            message: message.into(),
        }
    }
}

/// A short rendering of a JSON value for error messages.
pub(crate) fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 60 {
        let mut end = 57;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &text[..end])
    } else {
        text
    }
}

fn u64_field(obj: &Map<String, Value>, at: At, name: &str) -> Result<Option<u64>, ParseError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            at.field(name, format!("expected a non-negative integer, found {}", show(v)))
        }),
    }
}

fn string_field(
    obj: &Map<String, Value>,
    at: At,
    name: &str,
) -> Result<Option<String>, ParseError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(at.field(name, format!("expected a string, found {}", show(v)))),
    }
}

fn key_field(obj: &Map<String, Value>, at: At) -> Result<Option<String>, ParseError> {
    match obj.get("key") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
        Some(v) => {
            Err(at.field("key", format!("expected a string or an integer, found {}", show(v))))
        }
    }
}

fn type_field(obj: &Map<String, Value>, at: At) -> Result<EntryType, ParseError> {
    const EXPECTED: &str = "expected one of \"invoke\", \"ok\", \"fail\", \"info\"";
    match obj.get("type") {
        None => Err(at.field("type", format!("missing; {EXPECTED}"))),
        Some(Value::String(s)) => match s.as_str() {
            "invoke" => Ok(EntryType::Invoke),
            "ok" => Ok(EntryType::Ok),
            "fail" => Ok(EntryType::Fail),
            "info" => Ok(EntryType::Info),
            _ => Err(at.field("type", format!("{EXPECTED}, found {s:?}"))),
        },
        Some(v) => Err(at.field("type", format!("{EXPECTED}, found {}", show(v)))),
    }
}

/// Reads one entry.
pub(crate) fn parse_entry(raw: &str, index: usize, line: usize) -> Result<Entry, ParseError> {
    let at = At { index, line };
    let value: Value = serde_json::from_str(raw).map_err(|e| at.entry(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(at.entry(format!("expected an object, found {}", show(&value))));
    };
    let process = u64_field(&obj, at, "process")?
        .ok_or_else(|| at.field("process", "missing; expected a non-negative integer"))?;
    let f = string_field(&obj, at, "f")?
        .ok_or_else(|| at.field("f", "missing; expected the operation's name, e.g. \"read\""))?;
    let error = match obj.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    Ok(Entry {
        index,
        line,
        process,
        kind: type_field(&obj, at)?,
        f,
        key: key_field(&obj, at)?,
        value: obj.get("value").filter(|v| !v.is_null()).cloned(),
        error,
        session: u64_field(&obj, at, "session")?,
        time: u64_field(&obj, at, "time")?,
        call: u64_field(&obj, at, "call")?,
        ret: u64_field(&obj, at, "return")?,
    })
}
