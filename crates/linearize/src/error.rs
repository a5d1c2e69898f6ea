//! The crate's error type: histories the checker refuses to look at.
//!
//! A history that is not linearizable is not an error: it is the answer
//! ([`crate::CheckResult::Illegal`]), and so is a search that ran out of budget
//! ([`crate::CheckResult::Unknown`]). [`LinearizeError`] is for inputs that are not histories
//! at all: an operation that returns before it was called, a file that does not parse, a
//! history past a limit. Parse errors say where (line, entry, field) and what was expected, so
//! whoever converts another tool's history can fix the converter.

use std::fmt;

use thiserror::Error;

/// Everything that can make the checker refuse a history.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LinearizeError {
    /// An operation's return time is earlier than its call time.
    #[error("operation {index}: returns at {ret}, before its call at {call}")]
    ReturnBeforeCall {
        /// Index of the operation in the history.
        index: usize,
        /// Its call time.
        call: u64,
        /// Its return time.
        ret: u64,
    },
    /// The history has more operations than [`crate::OPERATIONS_MAX`].
    #[error("the history has {count} operations; the limit is {max}")]
    TooManyOperations {
        /// Operations in the history.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The history file is larger than [`crate::HISTORY_FILE_BYTES_MAX`].
    #[error("the history file is {bytes} bytes; the limit is {max}")]
    FileTooLarge {
        /// The file's size.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The history text is not a valid JSON history.
    #[error("{0}")]
    Parse(#[from] ParseError),
}

/// Where and why a JSON history failed to parse.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line of the input, when known.
    pub line: Option<usize>,
    /// 0-based index of the entry in `operations`, when the error is about one entry.
    pub entry: Option<usize>,
    /// The field at fault, when the error is about one field.
    pub field: Option<String>,
    /// What was expected and what was found.
    pub message: String,
}

impl ParseError {
    /// An error about the whole file (no line known).
    pub fn file(message: impl Into<String>) -> Self {
        ParseError { line: None, entry: None, field: None, message: message.into() }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid history")?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(entry) = self.entry {
            write!(f, ", operations[{entry}]")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}
