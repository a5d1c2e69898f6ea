//! Checking a parsed history and saying what was found, in words.
//!
//! The explanation of a violation follows Porcupine's: the longest prefix of operations the
//! search could linearize, the object's state after it, and the operation that could not come
//! next — it had already returned, and no order of what was pending could produce its result.
//! Every operation is named by process, what it did and saw, its times and its lines in the
//! file, so the reader can go straight to the events.

use std::fmt;

use crate::check::{CheckOptions, CheckResult, Checked, Violation, check_operations};
use crate::error::LinearizeError;
use crate::history::{Operation, Outcome};
use crate::json::convert::{Origin, ValueId, Values};
use crate::json::{History, HistoryOps, parse_history};
use crate::kv::{KvInput, KvOp, KvOutput, KvRegister};
use crate::limits::EXPLAIN_PREFIX_OPS_MAX;
use crate::lock::{ExpiryRule, Holder, LockInput, LockOp, LockOutput, LockState, TokenKnown};
use crate::tokens::{TokenViolation, check_tokens};

/// The answer for a history file.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every partition is linearizable (and, for locks, tokens are in order across locks).
    Linearizable,
    /// A partition is not linearizable.
    NotLinearizable,
    /// Lock histories only: every lock is linearizable, but tokens are out of order across
    /// locks, or shared by two locks.
    TokenOrderViolated,
    /// The search ran out of budget before an answer.
    Unknown,
}

impl Verdict {
    /// The process exit code `palisade check` uses: 0 linearizable, 1 a violation, 3 unknown
    /// (2 is for input it cannot read).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Linearizable => 0,
            Verdict::NotLinearizable | Verdict::TokenOrderViolated => 1,
            Verdict::Unknown => 3,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Linearizable => "LINEARIZABLE",
            Verdict::NotLinearizable => "NOT LINEARIZABLE",
            Verdict::TokenOrderViolated => {
                "NOT LINEARIZABLE (fencing tokens out of order across locks)"
            }
            Verdict::Unknown => "UNKNOWN (search budget exceeded)",
        })
    }
}

/// What `palisade check` prints (its `Display`), as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The model, as the file named it (with the expiry rule for locks).
    pub model: String,
    /// Entries in the file.
    pub entries: usize,
    /// Operations checked.
    pub operations: usize,
    /// Of which with an unknown outcome.
    pub unknown: usize,
    /// Operations left out (failed, or reads with an unknown outcome).
    pub left_out: usize,
    /// Partitions (keys or locks).
    pub partitions: usize,
    /// Search steps taken.
    pub steps: u64,
    /// The answer.
    pub verdict: Verdict,
    /// Why, when the answer is not [`Verdict::Linearizable`]: lines of text.
    pub explanation: Vec<String>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model: {}", self.model)?;
        writeln!(
            f,
            "operations: {} from {} entries ({} with unknown outcome, {} left out)",
            self.operations, self.entries, self.unknown, self.left_out
        )?;
        writeln!(f, "partitions: {}", self.partitions)?;
        writeln!(f, "search steps: {}", self.steps)?;
        writeln!(f, "result: {}", self.verdict)?;
        for line in &self.explanation {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// Parses and checks a JSON history.
pub fn check_json(text: &str, options: &CheckOptions) -> Result<Report, LinearizeError> {
    check_history(&parse_history(text)?, options)
}

/// Checks a parsed history.
pub fn check_history(history: &History, options: &CheckOptions) -> Result<Report, LinearizeError> {
    match &history.ops {
        HistoryOps::Kv { ops, values } => {
            let checked = check_operations(&KvRegister::new(), ops, options)?;
            let describe =
                |i: usize| describe(&ops[i], history.origins[i], |op| kv_what(op, values));
            let mut report = report(history, ops, "kv".into(), &checked);
            report.explanation = explain(&checked, describe, |s| values.show(s), key_name);
            Ok(report)
        }
        HistoryOps::Lock { model, ops } => {
            let checked = check_operations(model, ops, options)?;
            let describe = |i: usize| describe(&ops[i], history.origins[i], lock_what);
            let name = match model.expiry {
                ExpiryRule::Silent => "lock (expiry: silent)",
                ExpiryRule::Logged => "lock (expiry: logged)",
            };
            let mut report = report(history, ops, name.into(), &checked);
            report.explanation = explain(&checked, describe, lock_state, |l| format!("lock {l:?}"));
            // A token violation is definitive: it also settles an "unknown".
            if report.verdict != Verdict::NotLinearizable
                && let Err(violation) = check_tokens(ops)
            {
                report.verdict = Verdict::TokenOrderViolated;
                report.explanation = explain_tokens(&violation, describe);
            }
            Ok(report)
        }
    }
}

fn report<I, O, K, S>(
    history: &History,
    ops: &[Operation<I, O>],
    model: String,
    checked: &Checked<K, S>,
) -> Report {
    Report {
        model,
        entries: history.entries,
        operations: ops.len(),
        unknown: ops.iter().filter(|op| op.is_unknown()).count(),
        left_out: history.left_out,
        partitions: checked.partitions,
        steps: checked.steps,
        verdict: match checked.result {
            CheckResult::Ok => Verdict::Linearizable,
            CheckResult::Illegal(_) => Verdict::NotLinearizable,
            CheckResult::Unknown { .. } => Verdict::Unknown,
        },
        explanation: Vec::new(),
    }
}

fn key_name(key: &String) -> String {
    if key.is_empty() { "the register".to_string() } else { format!("key {key:?}") }
}

fn explain<K, S>(
    checked: &Checked<K, S>,
    describe: impl Fn(usize) -> String,
    state: impl Fn(&S) -> String,
    partition: impl Fn(&K) -> String,
) -> Vec<String> {
    match &checked.result {
        CheckResult::Ok => Vec::new(),
        CheckResult::Unknown { partition: p, budget } => vec![format!(
            "the search of {} ran out of its budget of {budget} before finding a \
             linearization or proving there is none (raise the budget, or shorten the history)",
            partition(p)
        )],
        CheckResult::Illegal(v) => explain_violation(v, describe, state, partition),
    }
}

fn explain_violation<K, S>(
    v: &Violation<K, S>,
    describe: impl Fn(usize) -> String,
    state: impl Fn(&S) -> String,
    partition: impl Fn(&K) -> String,
) -> Vec<String> {
    let mut lines = vec![
        format!(
            "{} ({} operations) has no linearization.",
            partition(&v.partition),
            v.partition_ops
        ),
        format!("cannot place: {}", describe(v.op)),
        "  it returned before any order of the operations pending with it could produce its \
         result."
            .to_string(),
        format!(
            "state after the longest linearizable prefix ({} of {} operations): {}",
            v.prefix.len(),
            v.partition_ops,
            state(&v.state)
        ),
    ];
    if !v.prefix.is_empty() {
        let shown = v.prefix.len().min(EXPLAIN_PREFIX_OPS_MAX);
        lines.push(if shown == 1 {
            "the last operation of that prefix:".to_string()
        } else {
            format!("the last {shown} operations of that prefix, in linearization order:")
        });
        lines.extend(
            v.prefix[v.prefix.len() - shown..].iter().map(|&i| format!("  {}", describe(i))),
        );
    }
    if !v.pending.is_empty() {
        lines.push("also pending at that point, none of which can go next either:".to_string());
        lines.extend(v.pending.iter().map(|&i| format!("  {}", describe(i))));
    }
    lines
}

fn explain_tokens(violation: &TokenViolation, describe: impl Fn(usize) -> String) -> Vec<String> {
    match violation {
        TokenViolation::Shared { token, first, second } => vec![
            format!("token {token} was granted for two different locks:"),
            format!("  {}", describe(*first)),
            format!("  {}", describe(*second)),
        ],
        TokenViolation::OutOfOrder { earlier, later } => vec![
            "a grant that surely came later carries a smaller token (tokens are log indices \
             and must increase across all locks):"
                .to_string(),
            format!("  returned first: {}", describe(*earlier)),
            format!("  called after that: {}", describe(*later)),
        ],
    }
}

fn describe<I, O>(
    op: &Operation<I, O>,
    origin: Origin,
    what: impl Fn(&Operation<I, O>) -> String,
) -> String {
    let when = match (&op.outcome, origin.ret_line) {
        (Outcome::Returned { time, .. }, Some(line)) => format!("returned at {time} (line {line})"),
        (Outcome::Returned { time, .. }, None) => format!("returned at {time}"),
        (Outcome::Unknown, Some(line)) => format!("outcome unknown (info at line {line})"),
        (Outcome::Unknown, None) => "outcome unknown (never completed)".to_string(),
    };
    format!(
        "process {}: {}, called at {} (line {}), {when}",
        op.process,
        what(op),
        op.call,
        origin.call_line
    )
}

fn kv_what(op: &Operation<KvInput<ValueId>, KvOutput<ValueId>>, values: &Values) -> String {
    let show = |v: &Option<ValueId>| values.show(v);
    let input = match &op.input.op {
        KvOp::Read => "read".to_string(),
        KvOp::Write(v) => format!("write {}", values.text(*v)),
        KvOp::Cas { expected, new } => format!("cas {} -> {}", show(expected), values.text(*new)),
        KvOp::Delete => "delete".to_string(),
    };
    let output = match op.output() {
        None => return input,
        Some(KvOutput::Read(v)) => show(v),
        Some(KvOutput::Written) => "ok".to_string(),
        Some(KvOutput::Swapped) => "swapped".to_string(),
        Some(KvOutput::Mismatch) => "mismatch".to_string(),
        Some(KvOutput::Deleted { existed: None }) => "deleted".to_string(),
        Some(KvOutput::Deleted { existed: Some(e) }) => format!("deleted (existed: {e})"),
    };
    format!("{input} => {output}")
}

fn lock_what(op: &Operation<LockInput, LockOutput>) -> String {
    let s = op.input.session;
    let input = match &op.input.op {
        LockOp::Acquire => format!("session {s} acquire"),
        LockOp::Release => format!("session {s} release"),
        LockOp::FencedWrite { token } => format!("fenced write with token {token}"),
        LockOp::Expire => format!("expiry of session {s}"),
    };
    let output = match op.output() {
        None => return input,
        Some(LockOutput::Granted { token }) => format!("granted, token {token}"),
        Some(LockOutput::Busy) => "busy".to_string(),
        Some(LockOutput::Released) => "released".to_string(),
        Some(LockOutput::NotHolder) => "not holder".to_string(),
        Some(LockOutput::Accepted) => "accepted".to_string(),
        Some(LockOutput::Rejected) => "rejected".to_string(),
        Some(LockOutput::Expired) => "applied".to_string(),
    };
    format!("{input} => {output}")
}

fn lock_state(state: &LockState) -> String {
    let holder = match state.holder {
        Holder::Free => "free".to_string(),
        Holder::Held { session, token: TokenKnown::Exactly(t) } => {
            format!("held by session {session} with token {t}")
        }
        Holder::Held { session, token: TokenKnown::AtLeast(t) } => {
            format!("held by session {session} with an unobserved token >= {t}")
        }
        Holder::Lost => "not held since an expiry (lock-delay may still run)".to_string(),
    };
    format!("{holder}; the next grant's token must be >= {}", state.next_token_min)
}
