//! The JSON history format read by `palisade check`, and writers for it.
//!
//! Why this format: it is Jepsen's history (a list of `invoke`/`ok`/`fail`/`info` events per
//! process, in time order) written as JSON, so a history recorded by Jepsen or any tool that
//! logs the same facts converts with a few lines of code (see the crate README), and histories
//! palisade's simulator and chaos harness record can be checked by the same command.
//!
//! # The file
//!
//! ```json
//! { "model": "kv",
//!   "operations": [
//!     {"process": 0, "type": "invoke", "f": "write", "key": "x", "value": 1, "time": 10},
//!     {"process": 1, "type": "invoke", "f": "read",  "key": "x",             "time": 12},
//!     {"process": 0, "type": "ok",     "f": "write", "key": "x", "value": 1, "time": 20},
//!     {"process": 1, "type": "ok",     "f": "read",  "key": "x", "value": 1, "time": 25}
//!   ] }
//! ```
//!
//! * `model`: `"kv"` (registers by key) or `"lock"` (palisade's locks by name). For `"lock"`,
//!   `"expiry"` may be `"silent"` (default: holders may lose a lock at any time, unseen) or
//!   `"logged"` (every expiry is in the history as an `expire` operation); see
//!   [`crate::lock`]. No other top-level fields are accepted.
//! * `operations`: the entries, in one of two forms, chosen by the first entry:
//!   - **event form** (primary; Jepsen's): each entry is an event. `type` is `"invoke"`,
//!     `"ok"`, `"fail"` or `"info"`. A process runs one operation at a time: its `invoke` is
//!     completed by its next `ok`/`fail`/`info`, with the same `f` (and `key`, if given);
//!     an `invoke` never completed is an unknown outcome. `time` (a non-negative integer,
//!     e.g. nanoseconds) is optional but then on every entry, and never decreases from entry
//!     to entry; without it the position in the array is the time.
//!   - **op form**: each entry is a whole operation with `call` and `return` times (`return`
//!     is required for `ok` and `fail`, and meaningless for `info`); `type` is `"ok"`,
//!     `"fail"` or `"info"`; `value` plays the role of both the invoke's and the completion's.
//!
//! Fields of an entry (others, such as Jepsen's `index`, are ignored):
//!
//! * `process` (required): non-negative integer, the client thread;
//! * `type`: `invoke`; `ok` (it happened, here is the result); `fail` (it did not happen —
//!   unless `error` is a *checked refusal*, below, which makes it a result to check); `info`
//!   (unknown: it may have happened at any time after the call, or never);
//! * `f` (required): the operation, below;
//! * `key`: kv: the key, a string or an integer (absent: one unnamed register); lock: the
//!   lock's name (required);
//! * `value`: input or result, per `f` below;
//! * `error`: on `fail`, a checked refusal or anything else (then the failure is left out);
//! * `session`: lock: the session acting (default: `process`); required for `expire`;
//! * `time` (event form), `call` and `return` (op form): non-negative integers.
//!
//! `kv` operations (every key starts absent; `null` means absent):
//!
//! * `read`: `ok` value = the value read (`null`: absent);
//! * `write`: invoke value = the value written (not null);
//! * `cas`: invoke value = `[expected, new]` (`expected` null: the key must be absent);
//!   `ok` = swapped; checked refusal `"mismatch"` = it ran and found another value;
//! * `delete`: `ok` value optional, `true`/`false` = whether the key existed.
//!
//! `lock` operations (every lock starts free):
//!
//! * `acquire`: `ok` = granted, value = the token (required); checked refusal `"busy"`;
//! * `release`: `ok` = released; checked refusal `"not_holder"`;
//! * `fenced_write`: invoke value = the token presented; `ok` = palisade's fenced kv accepted
//!   it; checked refusal `"rejected"`;
//! * `expire` (from the server's log): `session` expired and lost the lock if it held it.
//!
//! Values compare by their JSON text with object keys sorted (`1` and `1.0` differ). Reads
//! with an unknown outcome and failed operations without a checked refusal are left out (and
//! counted). Limits: [`crate::HISTORY_FILE_BYTES_MAX`], [`crate::HISTORY_EVENTS_MAX`],
//! [`crate::OPERATIONS_MAX`]. Errors name the line, the entry and the field.

mod assemble;
mod convert;
mod entry;
mod report;
mod write;

use serde::Deserialize;
use serde_json::value::RawValue;

pub use convert::{Origin, ValueId, Values};
pub use report::{Report, Verdict, check_history, check_json};
pub use write::{kv_history_json, lock_history_json};

use crate::error::{LinearizeError, ParseError};
use crate::history::Operation;
use crate::kv::{KvInput, KvOutput};
use crate::limits::{HISTORY_EVENTS_MAX, HISTORY_FILE_BYTES_MAX, OPERATIONS_MAX};
use crate::lock::{ExpiryRule, LockInput, LockModel, LockOutput};

/// A parsed history: the operations under their model.
#[derive(Clone, Debug)]
pub struct History {
    /// Entries in the file's `operations` array.
    pub entries: usize,
    /// Operations left out: failed without a checked refusal, or reads with unknown outcome.
    pub left_out: usize,
    /// The operations.
    pub ops: HistoryOps,
    /// Where each operation (same index) came from in the file.
    pub origins: Vec<Origin>,
}

/// The operations of a history, by model.
#[derive(Clone, Debug)]
pub enum HistoryOps {
    /// `"model": "kv"`.
    Kv {
        /// The operations (values are ids into `values`).
        ops: Vec<Operation<KvInput<ValueId>, KvOutput<ValueId>>>,
        /// The values.
        values: Values,
    },
    /// `"model": "lock"`.
    Lock {
        /// The model, with the file's expiry rule.
        model: LockModel,
        /// The operations.
        ops: Vec<Operation<LockInput, LockOutput>>,
    },
}

impl HistoryOps {
    /// How many operations.
    pub fn len(&self) -> usize {
        match self {
            HistoryOps::Kv { ops, .. } => ops.len(),
            HistoryOps::Lock { ops, .. } => ops.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile<'a> {
    model: String,
    #[serde(default)]
    expiry: Option<String>,
    #[serde(borrow)]
    operations: Vec<&'a RawValue>,
}

fn serde_error(e: &serde_json::Error) -> ParseError {
    let mut message = e.to_string();
    if let Some(at) = message.rfind(" at line ") {
        message.truncate(at);
    }
    ParseError {
        line: Some(e.line()),
        entry: None,
        field: None,
        message: format!("{message} (column {})", e.column()),
    }
}

fn model_of(file: &RawFile<'_>) -> Result<Option<LockModel>, ParseError> {
    let field = |name: &str, message: String| ParseError {
        line: None,
        entry: None,
        field: Some(name.to_string()),
        message,
    };
    match (file.model.as_str(), file.expiry.as_deref()) {
        ("kv", None) => Ok(None),
        ("kv", Some(_)) => Err(field("expiry", "only the lock model has an expiry rule".into())),
        ("lock", None | Some("silent")) => Ok(Some(LockModel::new(ExpiryRule::Silent))),
        ("lock", Some("logged")) => Ok(Some(LockModel::new(ExpiryRule::Logged))),
        ("lock", Some(other)) => {
            Err(field("expiry", format!("expected \"silent\" or \"logged\", found {other:?}")))
        }
        (other, _) => Err(field("model", format!("expected \"kv\" or \"lock\", found {other:?}"))),
    }
}

/// Refuses a history of `bytes` bytes past [`HISTORY_FILE_BYTES_MAX`]. A reader calls it with
/// the file's size before reading it; [`parse_history`] calls it again on the text.
pub fn check_size(bytes: u64) -> Result<(), LinearizeError> {
    if bytes > HISTORY_FILE_BYTES_MAX {
        return Err(LinearizeError::FileTooLarge { bytes, max: HISTORY_FILE_BYTES_MAX });
    }
    Ok(())
}

/// Parses a JSON history (see the module doc for the format).
pub fn parse_history(text: &str) -> Result<History, LinearizeError> {
    check_size(text.len() as u64)?;
    let file: RawFile<'_> = serde_json::from_str(text).map_err(|e| serde_error(&e))?;
    let lock_model = model_of(&file)?;
    if file.operations.len() > HISTORY_EVENTS_MAX {
        let message =
            format!("{} entries; the limit is {HISTORY_EVENTS_MAX}", file.operations.len());
        return Err(
            ParseError { field: Some("operations".into()), ..ParseError::file(message) }.into()
        );
    }
    let mut entries = Vec::with_capacity(file.operations.len());
    let (mut offset, mut line) = (0, 1);
    for (index, raw) in file.operations.iter().enumerate() {
        let start = raw.get().as_ptr().addr() - text.as_ptr().addr();
        line += text.as_bytes()[offset..start].iter().filter(|&&b| b == b'\n').count();
        offset = start;
        entries.push(entry::parse_entry(raw.get(), index, line)?);
    }
    let count = entries.len();
    let raws = assemble::assemble(entries)?;
    if raws.len() > OPERATIONS_MAX {
        return Err(LinearizeError::TooManyOperations { count: raws.len(), max: OPERATIONS_MAX });
    }
    let history = match lock_model {
        None => {
            let mut values = Values::default();
            let c = convert::kv(&raws, &mut values)?;
            History {
                entries: count,
                left_out: c.left_out,
                ops: HistoryOps::Kv { ops: c.ops, values },
                origins: c.origins,
            }
        }
        Some(model) => {
            let c = convert::lock(&raws)?;
            History {
                entries: count,
                left_out: c.left_out,
                ops: HistoryOps::Lock { model, ops: c.ops },
                origins: c.origins,
            }
        }
    };
    Ok(history)
}
