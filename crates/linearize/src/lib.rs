//! A linearizability checker for palisade's lock and key-value operations, and for register
//! histories recorded by other tools (Jepsen's, converted to JSON).
//!
//! Why palisade carries its own: "lock and kv operations are linearizable" is one of the
//! safety properties the simulator, the chaos harness and the `palisade check` command must
//! verify, and each needs the same checker: one that handles operations whose outcome the
//! client never learnt (a timeout is not a failure), explains a violation in terms of the
//! operations a reader can find in the history, and never runs forever. The Rust ports of
//! Knossos and Porcupine were too immature to rely on, and the algorithm is short.
//!
//! * [`history`]: [`Operation`]s with call and return times, or an [`Outcome::Unknown`];
//! * [`model`]: the [`Model`] trait, a sequential specification split into independent
//!   objects (keys, locks);
//! * [`check`] and the private `search`: Wing & Gong's search with Lowe's just-in-time
//!   linearization and Porcupine's memo cache of (linearized set, state), per partition, under
//!   a deterministic budget ([`CheckOptions`]);
//! * [`kv`] ([`KvRegister`]) and [`lock`] ([`LockModel`]): the models of palisade's
//!   operations; [`tokens`] ([`check_tokens`]): fencing tokens in order across all locks;
//! * [`json`]: the history file format (`palisade check history.json`), its parser with
//!   located errors, its writers, and the report.
//!
//! ```
//! use palisade_linearize::{
//!     CheckOptions, CheckResult, KvInput, KvOp, KvOutput, KvRegister, Operation,
//!     check_operations,
//! };
//!
//! let write = |v| KvInput::new("x", KvOp::Write(v));
//! let read = KvInput::new("x", KvOp::Read);
//! let history = vec![
//!     Operation::returned(0, write(1), 0, 10, KvOutput::Written),
//!     Operation::unknown(1, write(2), 20), // timed out: took effect later, or never
//!     Operation::returned(2, read.clone(), 30, 40, KvOutput::Read(Some(2))),
//!     Operation::returned(2, read, 50, 60, KvOutput::Read(Some(1))), // stale
//! ];
//! let checked = check_operations(&KvRegister::new(), &history, &CheckOptions::default())?;
//! let CheckResult::Illegal(violation) = checked.result else { panic!("a stale read") };
//! assert_eq!(violation.op, 3); // the last read cannot be placed
//! assert_eq!(violation.prefix, vec![0, 1, 2]);
//! # Ok::<(), palisade_linearize::LinearizeError>(())
//! ```
//!
//! Pure: no clock, no files, no randomness; the same history gives the same answer and the
//! same explanation everywhere, so a simulator run that fails replays byte for byte.
//! Errors: [`LinearizeError`] for inputs that are not histories; a violation or an exhausted
//! budget is an answer ([`CheckResult`]), not an error.

pub mod check;
pub mod error;
pub mod history;
pub mod json;
pub mod kv;
pub mod limits;
pub mod lock;
pub mod model;
mod search;
pub mod tokens;

pub use check::{CheckOptions, CheckResult, Checked, Violation, check_operations};
pub use error::{LinearizeError, ParseError};
pub use history::{Operation, Outcome};
pub use json::{
    History, HistoryOps, Report, Verdict, check_history, check_json, check_size, kv_history_json,
    lock_history_json, parse_history,
};
pub use kv::{KvInput, KvOp, KvOutput, KvRegister};
pub use limits::{
    Budget, CACHE_ENTRIES_MAX_DEFAULT, EXPLAIN_PENDING_OPS_MAX, EXPLAIN_PREFIX_OPS_MAX,
    HISTORY_EVENTS_MAX, HISTORY_FILE_BYTES_MAX, OPERATIONS_MAX, SEARCH_STEPS_MAX_DEFAULT,
};
pub use lock::{
    ExpiryRule, Holder, LockInput, LockModel, LockOp, LockOutput, LockState, TokenKnown,
};
pub use model::Model;
pub use tokens::{TokenViolation, check_tokens};
