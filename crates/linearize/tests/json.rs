//! The JSON history format: the sample files, Jepsen-style events, the op form, the writers,
//! the report, and errors that say where and what.

mod common;

use common::generate::{GenConfig, kv_history};
use palisade_linearize::{
    CheckOptions, ExpiryRule, HistoryOps, LinearizeError, LockInput, LockModel, LockOp, LockOutput,
    Operation, ParseError, Verdict, check_json, check_size, kv_history_json, lock_history_json,
    parse_history,
};

const LINEARIZABLE: &str = include_str!("../examples/linearizable.json");
const NOT_LINEARIZABLE: &str = include_str!("../examples/not_linearizable.json");
const LOCK_FENCING: &str = include_str!("../examples/lock_fencing.json");

fn check(text: &str) -> palisade_linearize::Report {
    check_json(text, &CheckOptions::default()).unwrap()
}

fn parse_error(text: &str) -> ParseError {
    match parse_history(text) {
        Err(LinearizeError::Parse(e)) => e,
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn the_linearizable_sample_is_linearizable() {
    let report = check(LINEARIZABLE);
    assert_eq!(report.verdict, Verdict::Linearizable, "{report}");
    assert_eq!(report.verdict.exit_code(), 0);
    assert_eq!(report.entries, 23);
    // 12 operations, of which the failed write is left out; the timed-out cas and the write with no
    // completion have unknown outcomes (both took effect: reads saw 2 and 9).
    assert_eq!((report.operations, report.left_out, report.unknown), (11, 1, 2));
    assert_eq!(report.partitions, 2);
    assert!(report.explanation.is_empty());
}

#[test]
fn the_not_linearizable_sample_explains_the_stale_read() {
    let report = check(NOT_LINEARIZABLE);
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    assert_eq!(report.verdict.exit_code(), 1);
    let text = report.to_string();
    assert!(text.contains("result: NOT LINEARIZABLE"), "{text}");
    assert!(text.contains("key \"x\" (3 operations) has no linearization."), "{text}");
    assert!(
        text.contains(
            "cannot place: process 2: read => 1, called at 40 (line 10), returned at 50 (line 13)"
        ),
        "{text}"
    );
    assert!(text.contains("state after the longest linearizable prefix (2 of 3 operations): 2"));
    assert!(
        text.contains("process 1: write 2 => ok, called at 20 (line 8), returned at 30 (line 9)")
    );
}

#[test]
fn the_fencing_sample_is_linearizable_with_logged_expiry_and_its_tokens_in_order() {
    let report = check(LOCK_FENCING);
    assert_eq!(report.model, "lock (expiry: logged)");
    assert_eq!(report.verdict, Verdict::Linearizable, "{report}");
    assert_eq!((report.operations, report.left_out), (8, 0));
    // Without the expiry in the log, B's grant overlaps A's, and A's release is a lie no more:
    // under the logged rule that is a violation.
    let without_expiry: String =
        LOCK_FENCING.lines().filter(|l| !l.contains("\"expire\"")).collect::<Vec<_>>().join("\n");
    assert_eq!(check(&without_expiry).verdict, Verdict::NotLinearizable);
    let silent = without_expiry.replace("\"logged\"", "\"silent\"");
    assert_eq!(check(&silent).verdict, Verdict::Linearizable);
}

#[test]
fn tokens_out_of_order_across_locks_are_reported() {
    let text = r#"{"model": "lock", "operations": [
      {"process": 1, "type": "ok", "f": "acquire", "key": "a", "value": 9, "call": 0, "return": 10},
      {"process": 2, "type": "ok", "f": "acquire", "key": "b", "value": 7, "call": 20, "return": 30}
    ]}"#;
    let report = check(text);
    assert_eq!(report.verdict, Verdict::TokenOrderViolated);
    assert_eq!(report.verdict.exit_code(), 1);
    assert!(report.explanation[1].contains("process 1: session 1 acquire => granted, token 9"));
}

#[test]
fn a_jepsen_style_keyed_register_history_checks() {
    // jepsen.independent histories carry [k v] tuples; the converter splits them into key and
    // value. Process 4 crashed (info) and Jepsen gave its thread a new process id (9).
    let text = r#"{"model": "kv", "operations": [
      {"index": 0, "process": 4, "type": "invoke", "f": "write", "key": 7, "value": 3, "time": 10},
      {"index": 1, "process": 4, "type": "info", "f": "write", "key": 7, "value": 3, "time": 9000},
      {"index": 2, "process": 9, "type": "invoke", "f": "read", "key": 7, "time": 9500},
      {"index": 3, "process": 9, "type": "ok", "f": "read", "key": 7, "value": 3, "time": 9600},
      {"process": 9, "type": "invoke", "f": "cas", "key": 7, "value": [3, 4], "time": 9700},
      {"process": 9, "type": "fail", "f": "cas", "key": 7, "value": [3, 4], "time": 9800},
      {"index": 6, "process": 9, "type": "invoke", "f": "read", "key": 7, "time": 9900},
      {"index": 7, "process": 9, "type": "ok", "f": "read", "key": 7, "value": 3, "time": 9950}
    ]}"#;
    let report = check(text);
    assert_eq!(report.verdict, Verdict::Linearizable, "{report}");
    // Jepsen's fail without a checked error means "did not happen": left out, not checked.
    assert_eq!((report.operations, report.left_out, report.unknown), (3, 1, 1));
    // The same failure marked as a checked mismatch contradicts the reads of 3.
    let checked = text.replace(r#""time": 9800}"#, r#""time": 9800, "error": "mismatch"}"#);
    assert_eq!(check(&checked).verdict, Verdict::NotLinearizable);
}

#[test]
fn events_without_times_are_ordered_by_position() {
    let text = r#"{"model": "kv", "operations": [
        {"process": 0, "type": "invoke", "f": "write", "value": 1},
        {"process": 0, "type": "ok", "f": "write"},
        {"process": 1, "type": "invoke", "f": "read"},
        {"process": 1, "type": "ok", "f": "read", "value": null}
    ]}"#;
    let report = check(text);
    assert_eq!(report.verdict, Verdict::NotLinearizable);
    assert!(report.explanation[0].starts_with("the register (2 operations)"), "{report}");
}

#[test]
fn generated_histories_round_trip_through_the_writer() {
    let config = GenConfig { processes: 6, keys: 4, ops: 500, unknown_per_mille: 30, seed: 7 };
    let history = kv_history(&config);
    let text = kv_history_json(&history);
    let parsed = parse_history(&text).unwrap();
    let HistoryOps::Kv { ops, values } = &parsed.ops else { panic!("kv") };
    let kept: Vec<_> = history
        .iter()
        .filter(|op| !(op.is_unknown() && op.input.op == palisade_linearize::KvOp::Read))
        .collect();
    assert_eq!(ops.len(), kept.len());
    for (parsed, original) in ops.iter().zip(kept) {
        assert_eq!(
            (parsed.process, parsed.call, parsed.ret()),
            (original.process, original.call, original.ret())
        );
        assert_eq!(parsed.input.key, original.input.key);
        if let palisade_linearize::KvOp::Write(v) = parsed.input.op {
            assert_eq!(
                values.text(v),
                format!("{:?}", original.input.op)
                    .trim_start_matches("Write(")
                    .trim_end_matches(')')
            );
        }
    }
    assert_eq!(check(&text).verdict, Verdict::Linearizable);
}

#[test]
fn lock_histories_round_trip_through_the_writer() {
    let model = LockModel::new(ExpiryRule::Logged);
    let input = |s, op| LockInput::new("L", s, op);
    let ops = vec![
        Operation::returned(1, input(1, LockOp::Acquire), 0, 10, LockOutput::Granted { token: 5 }),
        Operation::returned(2, input(2, LockOp::Acquire), 12, 14, LockOutput::Busy),
        Operation::returned(0, input(1, LockOp::Expire), 20, 21, LockOutput::Expired),
        Operation::returned(
            3,
            input(3, LockOp::FencedWrite { token: 5 }),
            30,
            31,
            LockOutput::Rejected,
        ),
        Operation::returned(1, input(1, LockOp::Release), 40, 45, LockOutput::NotHolder),
        Operation::unknown(2, input(2, LockOp::Acquire), 50),
    ];
    let parsed = parse_history(&lock_history_json(&model, &ops)).unwrap();
    let HistoryOps::Lock { model: m, ops: back } = parsed.ops else { panic!("lock") };
    assert_eq!(m, model);
    assert_eq!(back, ops);
}

#[test]
fn the_report_prints_the_counts_and_the_verdict() {
    let text = check(LINEARIZABLE).to_string();
    assert_eq!(
        text,
        "model: kv\n\
         operations: 11 from 23 entries (2 with unknown outcome, 1 left out)\n\
         partitions: 2\n\
         search steps: 14\n\
         result: LINEARIZABLE\n"
    );
}

#[test]
fn an_exhausted_budget_is_reported_as_unknown() {
    let options = CheckOptions { steps_max: 3, ..CheckOptions::default() };
    let report = check_json(LINEARIZABLE, &options).unwrap();
    assert_eq!(report.verdict, Verdict::Unknown);
    assert_eq!(report.verdict.exit_code(), 3);
    assert!(report.explanation[0].contains("ran out of its budget of search steps"), "{report}");
}

fn entries(ops: &str) -> String {
    format!("{{\"model\": \"kv\", \"operations\": [\n{ops}\n]}}")
}

/// Asserts that `text` fails to parse at `line`, entry `entry`, field `field`, with a message
/// containing `message`.
fn expect_error(
    text: &str,
    line: Option<usize>,
    entry: Option<usize>,
    field: Option<&str>,
    message: &str,
) {
    let e = parse_error(text);
    let shown = e.to_string();
    assert_eq!((e.line, e.entry, e.field.as_deref()), (line, entry, field), "{shown}\n{text}");
    assert!(e.message.contains(message), "{shown}");
    assert!(shown.starts_with("invalid history"), "{shown}");
}

#[test]
fn file_errors_say_where_and_what() {
    let bad_json = "{\"model\": \"kv\",\n \"operations\": [1,]}";
    expect_error(bad_json, Some(2), None, None, "trailing comma");
    expect_error("{\"operations\": []}", Some(1), None, None, "missing field `model`");
    let queue = "{\"model\": \"queue\", \"operations\": []}";
    expect_error(queue, None, None, Some("model"), "expected \"kv\" or \"lock\", found \"queue\"");
    let expiry = "{\"model\": \"kv\", \"expiry\": \"silent\", \"operations\": []}";
    expect_error(expiry, None, None, Some("expiry"), "only the lock model");
    let extra = "{\"model\": \"kv\", \"extra\": 1, \"operations\": []}";
    expect_error(extra, Some(1), None, None, "unknown field `extra`");
}

#[test]
fn entry_errors_name_the_field() {
    let at =
        |text: &str, field, message| expect_error(&entries(text), Some(2), Some(0), field, message);
    at("5", None, "expected an object, found 5");
    at(r#"{"type": "invoke", "f": "read"}"#, Some("process"), "missing");
    at(
        r#"{"process": -1, "type": "invoke", "f": "read"}"#,
        Some("process"),
        "non-negative integer, found -1",
    );
    at(r#"{"process": 0, "type": "okay", "f": "read"}"#, Some("type"), "found \"okay\"");
    at(
        r#"{"process": 0, "type": "invoke", "f": "pop"}"#,
        Some("f"),
        "expected one of \"read\", \"write\"",
    );
    let key = r#"{"process": 0, "type": "ok", "f": "read", "key": [1], "call": 1, "return": 2}"#;
    at(key, Some("key"), "a string or an integer");
    let cas = r#"{"process": 0, "type": "ok", "f": "cas", "value": [1], "call": 1, "return": 2}"#;
    at(cas, Some("value"), "[expected, new]");
    let write = r#"{"process": 0, "type": "ok", "f": "write", "call": 1, "return": 2}"#;
    at(write, Some("value"), "missing; expected the value written");
}

#[test]
fn event_pairing_errors_point_at_the_second_event() {
    let w = r#"{"process": 0, "type": "invoke", "f": "write", "key": "x", "value": 1, "time": 1}"#;
    let second = |text: &str, field, message| {
        expect_error(&entries(&format!("{w},\n{text}")), Some(3), Some(1), field, message)
    };
    second(w, None, "invokes again while its invoke at line 2");
    second(
        r#"{"process": 0, "type": "ok", "f": "read", "time": 2}"#,
        Some("f"),
        "completes process 0's invoke of \"write\"",
    );
    second(
        r#"{"process": 1, "type": "invoke", "f": "read", "time": 0}"#,
        Some("time"),
        "0 is earlier than the previous entry's 1",
    );
    second(r#"{"process": 1, "type": "invoke", "f": "read"}"#, Some("time"), "missing");
    second(
        r#"{"process": 1, "type": "ok", "f": "read", "call": 1, "return": 2}"#,
        Some("call"),
        "unexpected",
    );
    let lone = entries(r#"{"process": 0, "type": "ok", "f": "read", "time": 1}"#);
    expect_error(&lone, Some(2), Some(0), None, "an \"ok\" completion of process 0 with no invoke");
}

#[test]
fn op_form_errors_name_the_times() {
    let at =
        |text: &str, field, message| expect_error(&entries(text), Some(2), Some(0), field, message);
    at(
        r#"{"process": 0, "type": "ok", "f": "read", "call": 5, "return": 2}"#,
        Some("return"),
        "2 is earlier than the call time 5",
    );
    at(r#"{"process": 0, "type": "ok", "f": "read", "call": 5}"#, Some("return"), "missing");
    at(
        r#"{"process": 0, "type": "invoke", "f": "read", "call": 5}"#,
        Some("type"),
        "belongs to the event form",
    );
}

#[test]
fn lock_parse_errors_say_what_a_lock_operation_needs() {
    let lock = |op: &str| format!("{{\"model\": \"lock\", \"operations\": [\n{op}\n]}}");
    let cases = [
        (
            r#"{"process": 0, "type": "ok", "f": "acquire", "value": 1, "call": 1, "return": 2}"#,
            "key",
            "names its lock",
        ),
        (
            r#"{"process": 0, "type": "ok", "f": "acquire", "key": "L", "call": 1, "return": 2}"#,
            "value",
            "the granted token",
        ),
        (
            r#"{"process": 0, "type": "ok", "f": "fenced_write", "key": "L", "value": "t",
                "call": 1, "return": 2}"#,
            "value",
            "the token presented",
        ),
        (
            r#"{"process": 0, "type": "ok", "f": "expire", "key": "L", "call": 1, "return": 2}"#,
            "session",
            "names the session",
        ),
        (
            r#"{"process": 0, "type": "ok", "f": "read", "key": "L", "call": 1, "return": 2}"#,
            "f",
            "(model lock)",
        ),
    ];
    for (op, field, message) in cases {
        let e = parse_error(&lock(op));
        assert_eq!((e.line, e.field.as_deref()), (Some(2), Some(field)), "{e}");
        assert!(e.message.contains(message), "{e}");
    }
    let e = parse_error("{\"model\": \"lock\", \"expiry\": \"never\", \"operations\": []}");
    assert_eq!(e.field.as_deref(), Some("expiry"));
}

#[test]
fn a_file_past_the_size_limit_is_refused_before_it_is_read() {
    let max = palisade_linearize::HISTORY_FILE_BYTES_MAX;
    assert_eq!(check_size(max), Ok(()));
    let e = check_size(max + 1).unwrap_err();
    assert_eq!(e, LinearizeError::FileTooLarge { bytes: max + 1, max });
    assert_eq!(e.to_string(), "the history file is 268435457 bytes; the limit is 268435456");
}
