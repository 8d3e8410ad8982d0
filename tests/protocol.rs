//! Wire-level behaviour of `rpc` (protocol.md, "Framing", "Commands", "Start-up
//! and end"): how lines are cut and bounded, which error code every kind of bad
//! input earns and under which id, that every command is answered exactly once,
//! and how the process ends (EOF, `shutdown`, signals, a closed stdout,
//! start-up failures).
//!
//! Every test drives the real binary. Reads go through the harness (bounded by
//! timeouts); the two tests that must own the child's pipes themselves (a
//! 64 MiB line written from a thread, a closed stdout) use the small `raw`
//! helpers below, which bound their reads the same way.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::procfs::{alive, descendants, vm_hwm_kib};
use common::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/// An echo host that has already run one prompt, so "state unchanged" means
/// something (two messages, one turn) rather than comparing zeros.
fn primed_host() -> (Rpc, Value) {
    let (mut rpc, _) = echo_host();
    let (frames, resp) = prompt(&mut rpc, "prime", "hello there");
    assert_eq!(resp["type"], "response", "priming prompt failed: {resp}");
    assert_eq!(resp["ok"], true, "priming prompt failed: {resp}");
    assert_eq!(text_of(&frames), "hello there");
    let state = get_state(&mut rpc, &fresh_id("state"));
    assert_eq!(state["message_count"], 2, "{state}");
    (rpc, state)
}

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

fn fresh_id(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// The host still answers and nothing observable about its state moved.
fn assert_state_unchanged(rpc: &mut Rpc, before: &Value, after_what: &str) {
    let now = get_state(rpc, &fresh_id("state"));
    for k in [
        "streaming",
        "model",
        "session_id",
        "message_count",
        "queued",
        "cwd",
    ] {
        assert_eq!(
            now[k], before[k],
            "{k} changed after {after_what}: {before} -> {now}"
        );
    }
}

/// Writes `line` plus a newline and expects the very next frame to be an
/// `error` with `code` and `id` (and a message a person can read).
fn expect_error(rpc: &mut Rpc, line: &[u8], code: &str, id: Value) -> Value {
    let mut bytes = line.to_vec();
    bytes.push(b'\n');
    rpc.send_raw(&bytes);
    let f = rpc.recv();
    let shown = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
    assert_eq!(f["type"], "error", "line {shown:?} should be rejected: {f}");
    assert_eq!(f["code"], code, "line {shown:?}: {f}");
    assert_eq!(f["id"], id, "line {shown:?}: id must be echoed: {f}");
    assert!(
        f["message"].as_str().is_some_and(|m| !m.is_empty()),
        "error frames carry a message: {f}"
    );
    f
}

/// `expect_error`, then the host must still answer with its state unchanged.
fn rejects(rpc: &mut Rpc, before: &Value, line: &str, code: &str, id: Value) {
    expect_error(rpc, line.as_bytes(), code, id);
    assert_state_unchanged(rpc, before, line);
}

/// Reads frames until `n` text deltas of the running prompt have arrived, so
/// what follows happens mid-stream.
fn wait_for_deltas(rpc: &mut Rpc, n: usize) {
    let mut seen = 0;
    while seen < n {
        let f = rpc.recv();
        assert_ne!(f["type"], "response", "prompt ended before {n} deltas: {f}");
        assert_ne!(f["type"], "error", "prompt rejected: {f}");
        if f["type"] == "message_update" && f["event"]["type"] == "text_delta" {
            seen += 1;
        }
    }
}

/// Every object with a `role` anywhere in the session file's lines: the
/// history as persisted, whatever the entry envelope looks like.
fn persisted_messages(data: &Path, session_id: &str) -> Vec<Value> {
    fn collect(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Object(m) => {
                if m.contains_key("role") {
                    out.push(v.clone());
                } else {
                    m.values().for_each(|x| collect(x, out));
                }
            }
            Value::Array(a) => a.iter().for_each(|x| collect(x, out)),
            _ => {}
        }
    }
    let path = data.join("sessions").join(format!("{session_id}.jsonl"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("session file {} unreadable: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line) {
            collect(&v, &mut out);
        }
    }
    out
}

fn content_text(m: &Value) -> String {
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks.iter().filter_map(|b| b["text"].as_str()).collect(),
        _ => String::new(),
    }
}

/// After a turn was cut short by `how`: the user message and the partial,
/// aborted-marked assistant message are on disk.
fn assert_partial_persisted(data: &Path, session_id: &str, user_text: &str, how: &str) {
    let msgs = persisted_messages(data, session_id);
    assert!(
        msgs.iter()
            .any(|m| m["role"] == "user" && content_text(m) == user_text),
        "{how}: user message not persisted: {msgs:?}"
    );
    let partial = msgs.iter().find(|m| m["role"] == "assistant");
    let Some(partial) = partial else {
        panic!("{how}: partial assistant message not persisted: {msgs:?}");
    };
    assert_eq!(
        partial["aborted"], true,
        "{how}: partial must be marked aborted: {partial}"
    );
    assert!(
        content_text(partial).starts_with("tok "),
        "{how}: partial text kept: {partial}"
    );
}

fn exit_code(status: Option<ExitStatus>, rpc: &Rpc, within: &str) -> i32 {
    let status = status.unwrap_or_else(|| {
        panic!(
            "process did not exit within {within}; stderr:\n{}",
            rpc.stderr()
        )
    });
    status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal ({status:?}); stderr:\n{}", rpc.stderr()))
}

fn answers_of<'a>(frames: &'a [Value], id: &Value) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|f| (f["type"] == "response" || f["type"] == "error") && f["id"] == *id)
        .collect()
}

// --- raw children, for tests that must own the pipes -----------------------

/// A child spawned directly (no harness), killed on drop.
struct RawChild {
    child: Child,
    stderr: StderrLog,
    _data: tempfile::TempDir,
    data: std::path::PathBuf,
}

impl RawChild {
    fn spawn(args: &[&str]) -> RawChild {
        let data = tempfile::tempdir().expect("tempdir");
        let mut child = rpc_command(data.path(), None)
            .args(args)
            .spawn()
            .expect("spawn rpc");
        let stderr = StderrLog::collect(child.stderr.take().unwrap());
        RawChild {
            child,
            stderr,
            data: data.path().to_path_buf(),
            _data: data,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Parsed stdout lines on a channel (the reader thread owns stdout).
    fn frames(&mut self) -> mpsc::Receiver<Value> {
        let out = self.child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| json!({"type": "NOT_JSON", "line": line}));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        rx
    }

    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }
}

impl Drop for RawChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn recv_raw(rx: &mpsc::Receiver<Value>, what: &str, child: &RawChild) -> Value {
    let v = rx.recv_timeout(READ_TIMEOUT).unwrap_or_else(|_| {
        panic!(
            "no frame ({what}) within {READ_TIMEOUT:?}; stderr:\n{}",
            child.stderr()
        )
    });
    assert_ne!(v["type"], "NOT_JSON", "stdout carried a non-JSON line: {v}");
    v
}

// ---------------------------------------------------------------------------
// 1. ready
// ---------------------------------------------------------------------------

#[test]
fn ready_is_the_first_line_and_describes_the_session() {
    let cwd = tempfile::tempdir().unwrap();
    let mut rpc = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .arg("--cwd")
        .arg(cwd.path().to_str().unwrap())
        .start();
    // `ready()` asserts it is the very first frame.
    let ready = rpc.ready();
    assert_eq!(ready["protocol_version"], 1, "{ready}");
    assert!(
        ready["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{ready}"
    );
    let sid = ready["session_id"]
        .as_str()
        .expect("session_id is a string");
    assert!(!sid.is_empty());
    assert_eq!(ready["model"], ECHO, "{ready}");
    let canonical = cwd.path().canonicalize().unwrap();
    assert_eq!(ready["cwd"], canonical.to_str().unwrap(), "{ready}");
    // The session it announces is the one commands act on.
    let state = get_state(&mut rpc, &fresh_id("state"));
    assert_eq!(state["session_id"], sid);
}

#[test]
fn ready_does_not_wait_for_provider_processes() {
    // `hang-init` never answers `initialize` (the init timeout is 10 s): ready
    // must come long before that.
    let mut rpc = Spawn::new().ext("hang-init").start();
    let t = Instant::now();
    let ready = rpc
        .recv_within(Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no ready within 3 s; stderr:\n{}", rpc.stderr()));
    assert_eq!(ready["type"], "ready", "{ready}");
    assert!(t.elapsed() < Duration::from_secs(3));
    // Read-only commands are not held up by the stuck extension either.
    let r = rpc.call(json!({"type": "get_state"}), "s");
    assert_eq!(r["ok"], true, "{r}");
    // Nor is shutdown.
    rpc.call(json!({"type": "shutdown"}), "bye");
    assert_eq!(
        exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown"),
        0
    );
}

// ---------------------------------------------------------------------------
// 2. errors reachable from the wire
// ---------------------------------------------------------------------------

#[test]
fn unknown_type_is_unknown_command_with_the_id() {
    let (mut rpc, before) = primed_host();
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"frobnicate","id":"u1"}"#,
        "unknown_command",
        json!("u1"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"","id":"u2"}"#,
        "unknown_command",
        json!("u2"),
    );
    // Case matters: command names are exact.
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"GET_STATE","id":"u3"}"#,
        "unknown_command",
        json!("u3"),
    );
}

#[test]
fn missing_or_mistyped_message_is_invalid_params_with_the_id() {
    let (mut rpc, before) = primed_host();
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"prompt","id":"m1"}"#,
        "invalid_params",
        json!("m1"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"prompt","id":"m2","message":42}"#,
        "invalid_params",
        json!("m2"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"prompt","id":"m3","message":null}"#,
        "invalid_params",
        json!("m3"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"prompt","id":"m4","message":{"text":"hi"}}"#,
        "invalid_params",
        json!("m4"),
    );
    // Same field, the other commands that carry it.
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"follow_up","id":"m5"}"#,
        "invalid_params",
        json!("m5"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"steer","id":"m6","message":[1]}"#,
        "invalid_params",
        json!("m6"),
    );
}

#[test]
fn set_model_without_a_model_is_invalid_params_with_the_id() {
    let (mut rpc, before) = primed_host();
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"set_model","id":"s1"}"#,
        "invalid_params",
        json!("s1"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"set_model","id":"s2","model":7}"#,
        "invalid_params",
        json!("s2"),
    );
}

#[test]
fn missing_or_non_string_type_is_invalid_request_with_the_id() {
    let (mut rpc, before) = primed_host();
    rejects(
        &mut rpc,
        &before,
        r#"{"id":"t1","message":"hi"}"#,
        "invalid_request",
        json!("t1"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":3,"id":"t2"}"#,
        "invalid_request",
        json!("t2"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":null,"id":"t3"}"#,
        "invalid_request",
        json!("t3"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":["prompt"],"id":"t4"}"#,
        "invalid_request",
        json!("t4"),
    );
}

#[test]
fn non_object_json_is_invalid_request_with_null_id() {
    let (mut rpc, before) = primed_host();
    rejects(
        &mut rpc,
        &before,
        r#"[{"type":"get_state","id":"a"}]"#,
        "invalid_request",
        Value::Null,
    );
    rejects(&mut rpc, &before, "42", "invalid_request", Value::Null);
    rejects(
        &mut rpc,
        &before,
        r#""get_state""#,
        "invalid_request",
        Value::Null,
    );
    rejects(&mut rpc, &before, "null", "invalid_request", Value::Null);
}

#[test]
fn non_json_and_invalid_utf8_are_parse_error_with_null_id() {
    let (mut rpc, before) = primed_host();
    rejects(&mut rpc, &before, "hello, host", "parse_error", Value::Null);
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"get_state","id":"x""#,
        "parse_error",
        Value::Null,
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"get_state","id":"x"} trailing"#,
        "parse_error",
        Value::Null,
    );
    // Invalid UTF-8 inside an otherwise fine command: the id cannot be
    // trusted, so it is null.
    expect_error(
        &mut rpc,
        b"{\"type\":\"get_state\",\"id\":\"\xff\xfe\"}",
        "parse_error",
        Value::Null,
    );
    assert_state_unchanged(&mut rpc, &before, "invalid UTF-8");
    expect_error(&mut rpc, b"\xc3\x28", "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "invalid UTF-8");
}

#[test]
fn id_that_is_not_a_string_or_number_is_invalid_request_with_null_id() {
    let (mut rpc, before) = primed_host();
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"get_state","id":{"a":1}}"#,
        "invalid_request",
        Value::Null,
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"get_state","id":[1]}"#,
        "invalid_request",
        Value::Null,
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"get_state","id":true}"#,
        "invalid_request",
        Value::Null,
    );
}

#[test]
fn ids_are_echoed_verbatim_numbers_as_numbers() {
    let (mut rpc, _) = echo_host();
    for id in [
        json!(7),
        json!(0),
        json!(-3),
        json!(2.5),
        json!(9007199254740993u64),
        json!("ü ✓ \"q\""),
    ] {
        rpc.send(json!({"type": "get_state", "id": id}));
        let r = rpc.recv();
        assert_eq!(r["type"], "response", "{r}");
        assert_eq!(
            r["id"], id,
            "id must come back verbatim (type and value): {r}"
        );
    }
    // Errors too: a numeric id on a rejected command stays a number.
    expect_error(
        &mut rpc,
        br#"{"type":"nope","id":12}"#,
        "unknown_command",
        json!(12),
    );
    // No id at all: answered with id null.
    rpc.send(json!({"type": "get_state"}));
    let r = rpc.recv();
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let (mut rpc, _) = echo_host();
    let r = rpc.call(
        json!({"type": "get_state", "future_flag": true, "nested": {"x": [1, 2]}}),
        "x1",
    );
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true);
    // Also on a command with params: the prompt runs normally.
    rpc.send(
        json!({"type": "prompt", "id": "x2", "message": "hi you", "priority": "high", "v2": null}),
    );
    let (frames, resp) = rpc.until("prompt answer", |v| {
        v["id"] == "x2" && (v["type"] == "response" || v["type"] == "error")
    });
    assert_eq!(resp["type"], "response", "{resp}");
    assert_eq!(resp["ok"], true, "{resp}");
    assert_eq!(text_of(&frames), "hi you");
}

#[test]
fn steer_when_idle_is_not_streaming() {
    let (mut rpc, before) = primed_host();
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"steer","id":"st","message":"go left"}"#,
        "not_streaming",
        json!("st"),
    );
}

#[test]
fn prompt_or_new_session_while_streaming_is_busy_and_the_stream_goes_on() {
    let mut rpc = Spawn::new().ext("slow").model(SLOW).start();
    rpc.ready();
    rpc.send(json!({"type": "prompt", "id": "run", "message": "[[n=200 delay_ms=20]]"}));
    wait_for_deltas(&mut rpc, 1);
    let before = get_state(&mut rpc, &fresh_id("state"));
    assert_eq!(before["streaming"], true, "{before}");
    for (line, id) in [
        (r#"{"type":"prompt","id":"b1","message":"me too"}"#, "b1"),
        (r#"{"type":"new_session","id":"b2"}"#, "b2"),
    ] {
        rpc.send_raw(format!("{line}\n").as_bytes());
        // Deltas of the running prompt interleave; the answer is the error.
        let e = rpc.answer(&json!(id));
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(e["code"], "busy", "{e}");
        assert_eq!(
            e["message"], "another prompt is in flight; abort first",
            "{e}"
        );
    }
    // The running prompt is unaffected: same session, nothing appended.
    let now = get_state(&mut rpc, &fresh_id("state"));
    for k in ["streaming", "session_id", "message_count"] {
        assert_eq!(now[k], before[k], "{k}: {before} -> {now}");
    }
    let r = rpc.call(json!({"type": "abort"}), "stop");
    assert_eq!(r["ok"], true, "{r}");
    let p = answers_of(&rpc.seen, &json!("run"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["cancelled"], true, "{}", p[0]);
}

#[test]
fn set_model_to_an_unknown_plugin_or_bad_syntax_is_not_found() {
    let (mut rpc, before) = primed_host();
    for (n, model) in [
        "nope:echo:echo-1",
        "echo-1",
        "echo:echo",
        "",
        "::",
        "echo::echo-1",
    ]
    .iter()
    .enumerate()
    {
        let line = json!({"type": "set_model", "id": n, "model": model}).to_string();
        rejects(&mut rpc, &before, &line, "not_found", json!(n));
    }
}

#[test]
fn set_model_to_an_unknown_provider_or_model_of_a_known_plugin_is_not_found() {
    let (mut rpc, before) = primed_host();
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"set_model","id":"p","model":"echo:nope:echo-1"}"#,
        "not_found",
        json!("p"),
    );
    rejects(
        &mut rpc,
        &before,
        r#"{"type":"set_model","id":"m","model":"echo:echo:echo-99"}"#,
        "not_found",
        json!("m"),
    );
    // And a good one still works afterwards.
    let r = rpc.call(
        json!({"type": "set_model", "model": "echo:echo:echo-complete"}),
        "ok",
    );
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["model"], "echo:echo:echo-complete", "{r}");
    assert_eq!(
        get_state(&mut rpc, &fresh_id("state"))["model"],
        "echo:echo:echo-complete"
    );
}

// ---------------------------------------------------------------------------
// 3. frame cap and line handling
// ---------------------------------------------------------------------------

#[test]
fn line_over_max_frame_bytes_is_frame_too_large_then_next_command_works() {
    let mut rpc = Spawn::new().arg("--max-frame-bytes").arg("200").start();
    rpc.ready();
    let before = get_state(&mut rpc, &fresh_id("state"));
    // A well-formed command with an id: the id is not read from an oversized
    // line (it was never buffered), so the error carries id null.
    let big = format!(
        r#"{{"type":"get_state","id":"big","pad":"{}"}}"#,
        "x".repeat(1000)
    );
    expect_error(&mut rpc, big.as_bytes(), "frame_too_large", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "oversized line");
    // Several in a row, then a good one.
    expect_error(&mut rpc, &[b'y'; 5000], "frame_too_large", Value::Null);
    expect_error(&mut rpc, &[b'z'; 201], "frame_too_large", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "oversized lines");
}

/// A `get_state` padded to exactly `len` bytes (newline excluded).
fn padded_get_state(id: &str, len: usize) -> Vec<u8> {
    let bare = format!(r#"{{"type":"get_state","id":"{id}","pad":""}}"#);
    assert!(bare.len() <= len);
    let line = format!(
        r#"{{"type":"get_state","id":"{id}","pad":"{}"}}"#,
        "p".repeat(len - bare.len())
    );
    assert_eq!(line.len(), len);
    line.into_bytes()
}

#[test]
fn line_of_exactly_the_cap_is_accepted_and_one_more_byte_is_not() {
    let mut rpc = Spawn::new().arg("--max-frame-bytes").arg("200").start();
    rpc.ready();
    let mut exact = padded_get_state("exact", 200);
    exact.push(b'\n');
    rpc.send_raw(&exact);
    let r = rpc.recv();
    assert_eq!(
        r["type"], "response",
        "a 200-byte line is within a 200-byte cap: {r}"
    );
    assert_eq!(r["id"], "exact");

    // `\r\n` ending: the `\r` belongs to the line ending, not the frame.
    let mut crlf = padded_get_state("crlf", 200);
    crlf.extend_from_slice(b"\r\n");
    rpc.send_raw(&crlf);
    let r = rpc.recv();
    assert_eq!(
        r["type"], "response",
        "200 bytes + CRLF is within the cap: {r}"
    );
    assert_eq!(r["id"], "crlf");

    expect_error(
        &mut rpc,
        &padded_get_state("over", 201),
        "frame_too_large",
        Value::Null,
    );
    let r = rpc.call(json!({"type": "get_state"}), "after");
    assert_eq!(r["type"], "response", "{r}");
}

#[test]
fn endless_line_is_discarded_without_growing_memory() {
    const TOTAL: usize = 64 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let mut host = RawChild::spawn(&[]);
    let frames = host.frames();
    let ready = recv_raw(&frames, "ready", &host);
    assert_eq!(ready["type"], "ready", "{ready}");
    let pid = host.child.id();

    // The writer thread owns stdin so that a host that stopped reading fails
    // the test by timeout (below) instead of blocking it forever.
    let mut stdin: ChildStdin = host.child.stdin.take().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let chunk = vec![b'x'; CHUNK];
        let mut result = Ok(());
        for _ in 0..TOTAL / CHUNK {
            result = stdin.write_all(&chunk);
            if result.is_err() {
                break;
            }
        }
        let _ = done_tx.send((result, stdin));
    });
    let (result, mut stdin) = done_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "64 MiB were not consumed within 30 s; stderr:\n{}",
                host.stderr()
            )
        });
    result.expect("writing the long line");

    // All 64 MiB went in and no newline yet: the host holds at most the cap.
    let peak = vm_hwm_kib(pid).expect("VmHWM readable");
    assert!(
        peak < 40 * 1024,
        "peak RSS {peak} KiB after a 64 MiB line (cap 1 MiB)"
    );

    stdin
        .write_all(b"\n{\"type\":\"get_state\",\"id\":\"after\"}\n")
        .unwrap();
    stdin.flush().unwrap();
    let err = recv_raw(&frames, "frame_too_large", &host);
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], "frame_too_large", "{err}");
    assert_eq!(err["id"], Value::Null, "{err}");
    let r = recv_raw(&frames, "get_state after the long line", &host);
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], "after", "{r}");
    let peak = vm_hwm_kib(pid).expect("VmHWM readable");
    assert!(
        peak < 40 * 1024,
        "peak RSS {peak} KiB after a 64 MiB line (cap 1 MiB)"
    );
    drop(stdin);
    let status = host.wait(Duration::from_secs(5)).expect("exits at EOF");
    assert!(status.success(), "{status:?}");
}

#[test]
fn trailing_carriage_return_is_tolerated() {
    let (mut rpc, _) = echo_host();
    rpc.send_raw(b"{\"type\":\"get_state\",\"id\":\"cr\"}\r\n");
    let r = rpc.recv();
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], "cr");
    // The prompt text does not pick up the `\r` either.
    rpc.send_raw(b"{\"type\":\"prompt\",\"id\":\"p\",\"message\":\"windows line\"}\r\n");
    let (frames, resp) = rpc.until("prompt answer", |v| {
        v["id"] == "p" && v["type"] == "response"
    });
    assert_eq!(resp["ok"], true, "{resp}");
    assert_eq!(text_of(&frames), "windows line");
}

#[test]
fn blank_lines_are_ignored() {
    let (mut rpc, _) = echo_host();
    rpc.send_raw(b"\n\n\r\n   \n\t\n");
    rpc.send_raw(b"{\"type\":\"get_state\",\"id\":\"after-blanks\"}\n");
    // The very next frame is the answer: no error for the blank lines.
    let r = rpc.recv();
    assert_eq!(
        r["type"], "response",
        "blank lines must produce nothing: {r}"
    );
    assert_eq!(r["id"], "after-blanks");
    assert!(rpc.recv_within(Duration::from_millis(200)).is_none());
}

#[test]
fn last_line_without_a_newline_still_counts_at_eof() {
    // Not in the contract; a client writing `printf '{...}' | rpc` expects it.
    let (mut rpc, _) = echo_host();
    rpc.send_raw(br#"{"type":"get_state","id":"last"}"#);
    rpc.close_stdin();
    let rest = rpc.drain(Duration::from_secs(5));
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["id"], "last", "{}", rest[0]);
    assert_eq!(exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s"), 0);
}

#[test]
fn logs_go_to_stderr_never_to_stdout() {
    // With every log level on, stdout still carries only protocol frames
    // (the harness fails on any non-JSON line).
    let mut rpc = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .arg("--log-level")
        .arg("trace")
        .start();
    rpc.ready();
    let (_, r) = prompt(&mut rpc, "p", "some words");
    assert_eq!(r["ok"], true, "{r}");
    expect_error(&mut rpc, b"not json", "parse_error", Value::Null);
    rpc.call(json!({"type": "shutdown"}), "bye");
    rpc.drain(Duration::from_secs(5));
    assert_eq!(exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s"), 0);
    let known = [
        "ready",
        "response",
        "error",
        "agent_start",
        "agent_end",
        "message_update",
    ];
    for f in &rpc.seen {
        assert!(
            known.contains(&f["type"].as_str().unwrap_or("")),
            "unexpected frame on stdout: {f}"
        );
    }
}

// ---------------------------------------------------------------------------
// 4. hostile input
// ---------------------------------------------------------------------------

#[test]
fn deeply_nested_json_is_parse_error_and_the_host_lives() {
    let (mut rpc, before) = primed_host();
    let open = "[".repeat(100_000);
    expect_error(&mut rpc, open.as_bytes(), "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "100k-deep '['");
    // Balanced nesting is valid JSON in principle but beyond any sane depth.
    let balanced = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    expect_error(&mut rpc, balanced.as_bytes(), "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "100k-deep balanced array");
    let objects = format!(
        r#"{{"type":"get_state","id":"d","x":{}}}"#,
        r#"{"a":"#.repeat(50_000)
    );
    expect_error(&mut rpc, objects.as_bytes(), "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "50k-deep objects");
}

#[test]
fn nul_bytes_in_a_line_are_rejected_or_carried_safely() {
    let (mut rpc, before) = primed_host();
    expect_error(&mut rpc, b"\0\0\0\0", "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "NUL bytes");
    // A raw NUL inside a JSON string is not valid JSON.
    expect_error(
        &mut rpc,
        b"{\"type\":\"get_state\",\"id\":\"a\0b\"}",
        "parse_error",
        Value::Null,
    );
    expect_error(
        &mut rpc,
        b"{\"type\":\"get_state\",\"id\":\"c\"}\0",
        "parse_error",
        Value::Null,
    );
    assert_state_unchanged(&mut rpc, &before, "NUL bytes");
    // An escaped NUL is valid and comes back verbatim.
    rpc.send_raw(b"{\"type\":\"get_state\",\"id\":\"n\\u0000ul\"}\n");
    let r = rpc.recv();
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], "n\u{0}ul");
}

#[test]
fn burst_of_ten_thousand_garbage_lines_gets_ten_thousand_errors() {
    const N: usize = 10_000;
    let (mut rpc, before) = primed_host();
    let mut burst = Vec::new();
    let mut expected = Vec::new();
    for i in 0..N {
        let (line, code, id) = match i % 4 {
            0 => (format!("garbage line {i} ]]"), "parse_error", Value::Null),
            1 => (format!("[{i}]"), "invalid_request", Value::Null),
            2 => (format!(r#"{{"id":{i}}}"#), "invalid_request", json!(i)),
            _ => (
                format!(r#"{{"type":"nope","id":{i}}}"#),
                "unknown_command",
                json!(i),
            ),
        };
        burst.extend_from_slice(line.as_bytes());
        burst.push(b'\n');
        expected.push((code, id));
    }
    rpc.send_raw(&burst);
    for (i, (code, id)) in expected.iter().enumerate() {
        let f = rpc.recv();
        assert_eq!(f["type"], "error", "line {i}: {f}");
        assert_eq!(f["code"], *code, "line {i}: {f}");
        assert_eq!(f["id"], *id, "line {i}: {f}");
    }
    assert_state_unchanged(&mut rpc, &before, "10,000 garbage lines");
}

#[test]
fn burst_of_two_thousand_get_state_is_answered_in_order() {
    const N: usize = 2_000;
    let (mut rpc, _) = echo_host();
    let mut burst = Vec::new();
    for i in 0..N {
        burst.extend_from_slice(format!(r#"{{"type":"get_state","id":{i}}}"#).as_bytes());
        burst.push(b'\n');
    }
    rpc.send_raw(&burst);
    for i in 0..N {
        let r = rpc.recv();
        assert_eq!(r["type"], "response", "#{i}: {r}");
        assert_eq!(r["id"], json!(i), "answers come in command order");
        assert_eq!(r["command"], "get_state");
    }
    assert!(
        rpc.recv_within(Duration::from_millis(200)).is_none(),
        "one answer each"
    );
}

// ---------------------------------------------------------------------------
// 5. every command answered exactly once, with the contract's shape
// ---------------------------------------------------------------------------

#[test]
fn every_command_is_answered_exactly_once_with_its_shape() {
    let (mut rpc, ready) = echo_host();
    let sid = ready["session_id"].clone();
    let mut sent = Vec::new();
    let mut ask = |rpc: &mut Rpc, cmd: Value, id: Value| -> Value {
        let mut cmd = cmd;
        cmd["id"] = id.clone();
        sent.push(id.clone());
        rpc.send(cmd);
        rpc.answer(&id)
    };

    let r = ask(&mut rpc, json!({"type": "get_state"}), json!("state"));
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["command"], "get_state");
    assert_eq!(r["ok"], true);
    assert_eq!(r["streaming"], false);
    assert_eq!(r["model"], ECHO);
    assert_eq!(r["session_id"], sid);
    assert_eq!(r["message_count"], 0);
    assert_eq!(r["queued"], 0);
    assert_eq!(r["cwd"], ready["cwd"]);

    let r = ask(&mut rpc, json!({"type": "get_session_stats"}), json!(2));
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true);
    assert_eq!(r["session_id"], sid);
    assert_eq!(r["model"], ECHO);
    for k in [
        "message_count",
        "turns",
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ] {
        assert_eq!(r[k], 0, "{k} on a fresh session: {r}");
    }
    assert!(
        r.as_object().unwrap().get("cost_usd") == Some(&Value::Null),
        "cost_usd present and null when unknown: {r}"
    );

    let r = ask(
        &mut rpc,
        json!({"type": "get_available_models"}),
        json!("models"),
    );
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true);
    let models = r["models"].as_array().expect("models array");
    for m in models {
        for k in ["id", "provider", "name", "context_window", "available"] {
            assert!(m.get(k).is_some(), "model entry lacks {k}: {m}");
        }
    }
    let echo = models
        .iter()
        .find(|m| m["id"] == ECHO)
        .expect("echo:echo:echo-1 listed");
    assert_eq!(echo["available"], true, "{echo}");
    assert_eq!(echo["context_window"], 200000, "{echo}");
    assert!(
        echo["provider"].as_str().is_some() && echo["name"].as_str().is_some(),
        "{echo}"
    );

    let r = ask(
        &mut rpc,
        json!({"type": "set_model", "model": ECHO}),
        json!("model"),
    );
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["model"], ECHO);

    let r = ask(
        &mut rpc,
        json!({"type": "steer", "message": "left"}),
        json!("steer"),
    );
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "not_streaming");

    let r = ask(&mut rpc, json!({"type": "abort"}), json!("abort"));
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true, "abort when idle is ok: {r}");
    assert!(
        r.get("cancelled").is_none() || r["cancelled"] == false,
        "{r}"
    );

    let r = ask(
        &mut rpc,
        json!({"type": "prompt", "message": "first words"}),
        json!("prompt"),
    );
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["command"], "prompt");
    assert_eq!(r["ok"], true, "{r}");

    // Idle follow_up runs at once as its own turn.
    let r = ask(
        &mut rpc,
        json!({"type": "follow_up", "message": "second words"}),
        json!("follow"),
    );
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["command"], "follow_up");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(text_of(&rpc.seen), "first wordssecond words");

    let r = ask(&mut rpc, json!({"type": "get_messages"}), json!("messages"));
    assert_eq!(r["type"], "response", "{r}");
    let msgs = r["messages"].as_array().expect("messages array");
    assert_eq!(msgs.len(), 4, "{r}");
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(
        msgs[0]["content"], "first words",
        "text-only user content is a plain string"
    );
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[2]["content"], "second words");

    let r = ask(&mut rpc, json!({"type": "list_sessions"}), json!("list"));
    assert_eq!(r["type"], "response", "{r}");
    let sessions = r["sessions"].as_array().expect("sessions array");
    let ours = sessions
        .iter()
        .find(|s| s["session_id"] == sid)
        .expect("our session listed");
    for k in [
        "session_id",
        "created_at",
        "updated_at",
        "message_count",
        "model",
        "title",
        "cwd",
    ] {
        assert!(ours.get(k).is_some(), "session entry lacks {k}: {ours}");
    }
    assert_eq!(ours["message_count"], 4, "{ours}");

    let r = ask(&mut rpc, json!({"type": "new_session"}), json!("new"));
    assert_eq!(r["type"], "response", "{r}");
    let new_sid = r["session_id"].as_str().expect("new session_id");
    assert_ne!(json!(new_sid), sid);
    assert_eq!(
        get_state(&mut rpc, &fresh_id("state"))["session_id"],
        new_sid
    );

    let r = ask(&mut rpc, json!({"type": "shutdown"}), json!("bye"));
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true);

    rpc.drain(Duration::from_secs(5));
    let code = exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown");
    assert_eq!(code, 0);
    for id in &sent {
        let n = answers_of(&rpc.seen, id).len();
        assert_eq!(
            n, 1,
            "command {id} answered {n} times; frames: {:?}",
            rpc.seen
        );
    }
    assert_eq!(sent.len(), 12);
}

#[test]
fn get_available_models_is_answered_promptly_while_an_extension_is_stuck_starting() {
    // "answered within milliseconds at any time": an extension that never
    // finishes `initialize` (init timeout 10 s) may be listed as unavailable,
    // but must not hold the answer up. Bound: 3 s.
    let mut rpc = Spawn::new().ext("hang-init").ext("echo").start();
    rpc.ready();
    rpc.send(json!({"type": "get_available_models", "id": "m"}));
    let r = rpc.recv_within(Duration::from_secs(3)).unwrap_or_else(|| {
        panic!(
            "get_available_models not answered within 3 s; stderr:\n{}",
            rpc.stderr()
        )
    });
    assert_eq!(r["id"], "m", "{r}");
    assert_eq!(r["type"], "response", "{r}");
}

// ---------------------------------------------------------------------------
// 6. end of input
// ---------------------------------------------------------------------------

#[test]
fn eof_when_idle_exits_zero_without_output() {
    let (mut rpc, _) = echo_host();
    rpc.close_stdin();
    let rest = rpc.drain(Duration::from_secs(5));
    assert!(rest.is_empty(), "nothing after ready: {rest:?}");
    assert_eq!(exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s"), 0);
}

#[test]
fn eof_lets_the_running_prompt_and_queued_follow_ups_finish() {
    let (mut rpc, _) = echo_host();
    rpc.send(json!({"type": "prompt", "id": "p", "message": "slow one [[n=6 delay_ms=50]]"}));
    rpc.send(json!({"type": "follow_up", "id": "f1", "message": "second answer"}));
    rpc.send(json!({"type": "follow_up", "id": "f2", "message": "third answer"}));
    rpc.close_stdin();
    let frames = rpc.drain(Duration::from_secs(15));
    assert_eq!(
        exit_code(
            rpc.wait(Duration::from_secs(5)),
            &rpc,
            "5 s after the last answer"
        ),
        0
    );

    // Three full lifecycles, in order, none cancelled.
    let kinds: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] != "message_update")
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "agent_start",
            "agent_end",
            "response",
            "agent_start",
            "agent_end",
            "response",
            "agent_start",
            "agent_end",
            "response"
        ],
        "frames: {frames:?}"
    );
    let responses: Vec<&Value> = frames.iter().filter(|f| f["type"] == "response").collect();
    for (r, id) in responses.iter().zip(["p", "f1", "f2"]) {
        assert_eq!(r["id"], id, "{r}");
        assert_eq!(r["ok"], true, "{r}");
        assert!(r.get("cancelled").is_none(), "nothing was cancelled: {r}");
    }
    assert_eq!(
        text_of(&frames),
        format!("{}second answerthird answer", "tok ".repeat(6))
    );
}

#[test]
fn commands_pending_at_eof_are_still_answered() {
    // EOF means "no more commands", not "forget the last ones": set_model,
    // get_available_models and list_sessions answer from background work,
    // which must finish before the process exits.
    let (mut rpc, _) = echo_host();
    rpc.send_raw(
        concat!(
            r#"{"type":"set_model","id":"m","model":"echo:echo:echo-complete"}"#,
            "\n",
            r#"{"type":"get_available_models","id":"a"}"#,
            "\n",
            r#"{"type":"list_sessions","id":"l"}"#,
            "\n",
        )
        .as_bytes(),
    );
    rpc.close_stdin();
    rpc.drain(Duration::from_secs(10));
    assert_eq!(exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s"), 0);
    for id in ["m", "a", "l"] {
        let n = answers_of(&rpc.seen, &json!(id)).len();
        assert_eq!(
            n, 1,
            "command {id} answered {n} times before exit: {:?}",
            rpc.seen
        );
    }
}

#[test]
fn get_available_models_pending_at_eof_is_answered_even_if_an_extension_hangs() {
    let mut rpc = Spawn::new().ext("hang-init").start();
    rpc.ready();
    rpc.send(json!({"type": "get_available_models", "id": "a"}));
    rpc.close_stdin();
    rpc.drain(Duration::from_secs(15));
    let status = rpc.wait(Duration::from_secs(3)).expect("exits after EOF");
    assert_eq!(status.code(), Some(0), "{status:?}");
    let n = answers_of(&rpc.seen, &json!("a")).len();
    assert_eq!(
        n, 1,
        "get_available_models answered {n} times before exit: {:?}",
        rpc.seen
    );
}

// ---------------------------------------------------------------------------
// 7. shutdown
// ---------------------------------------------------------------------------

#[test]
fn shutdown_when_idle_answers_ok_and_exits_zero() {
    let (mut rpc, _) = echo_host();
    rpc.send(json!({"type": "shutdown", "id": "bye"}));
    let r = rpc.recv();
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], "bye");
    assert_eq!(r["ok"], true);
    let t = Instant::now();
    // Contract: exits within 1 s; bounded generously for a loaded machine.
    let code = exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown");
    assert_eq!(code, 0, "took {:?}", t.elapsed());
    assert!(
        rpc.drain(Duration::from_secs(1)).is_empty(),
        "nothing after the shutdown response"
    );
}

#[test]
fn commands_sent_before_shutdown_are_still_answered() {
    // set_model is answered after the extension confirms the model; a
    // shutdown right behind it must not swallow that answer.
    let (mut rpc, _) = echo_host();
    rpc.send_raw(
        concat!(
            r#"{"type":"set_model","id":"m","model":"echo:echo:echo-complete"}"#,
            "\n",
            r#"{"type":"shutdown","id":"bye"}"#,
            "\n",
        )
        .as_bytes(),
    );
    rpc.drain(Duration::from_secs(5));
    assert_eq!(
        exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown"),
        0
    );
    for id in ["m", "bye"] {
        let n = answers_of(&rpc.seen, &json!(id)).len();
        assert_eq!(n, 1, "command {id} answered {n} times: {:?}", rpc.seen);
    }
}

#[test]
fn shutdown_mid_stream_cancels_the_prompt_persists_and_exits_zero() {
    let mut rpc = Spawn::new().ext("slow").model(SLOW).start();
    let sid = rpc.ready()["session_id"].as_str().unwrap().to_owned();
    let text = "long answer [[n=200 delay_ms=50]]";
    rpc.send(json!({"type": "prompt", "id": "p", "message": text}));
    wait_for_deltas(&mut rpc, 3);
    rpc.send(json!({"type": "shutdown", "id": "bye"}));
    let t = Instant::now();
    let rest = rpc.drain(Duration::from_secs(5));
    let code = exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown");
    assert_eq!(code, 0);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        t.elapsed()
    );

    // Both commands answered exactly once; the prompt as cancelled, after its
    // agent_end.
    let bye = answers_of(&rest, &json!("bye"));
    assert_eq!(bye.len(), 1, "{rest:?}");
    assert_eq!(bye[0]["ok"], true);
    let p = answers_of(&rpc.seen, &json!("p"));
    assert_eq!(p.len(), 1, "the prompt must get its one answer: {rest:?}");
    assert_eq!(p[0]["type"], "response", "{}", p[0]);
    assert_eq!(p[0]["cancelled"], true, "{}", p[0]);
    let end = rest
        .iter()
        .position(|f| f["type"] == "agent_end")
        .expect("agent_end");
    let resp = rest.iter().position(|f| f["id"] == "p").unwrap();
    assert!(end < resp, "agent_end before the prompt's response");
    assert_eq!(rest[end]["stop_reason"], "aborted");

    assert_partial_persisted(&rpc.data, &sid, text, "shutdown");
}

#[test]
fn shutdown_mid_stream_with_a_provider_that_ignores_cancel_still_exits_promptly() {
    // The `hang` fixture ignores $/cancel_request, SIGTERM and SIGINT: only a
    // kill ends it, and the host must not wait on it.
    let mut rpc = Spawn::new().ext("hang").model("hang:hang:hang-1").start();
    rpc.ready();
    rpc.send(json!({"type": "prompt", "id": "p", "message": "never ends"}));
    wait_for_deltas(&mut rpc, 1);
    let kids = descendants(rpc.pid());
    rpc.send(json!({"type": "shutdown", "id": "bye"}));
    let t = Instant::now();
    rpc.drain(Duration::from_secs(5));
    let code = exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown");
    assert_eq!(code, 0);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        t.elapsed()
    );
    let p = answers_of(&rpc.seen, &json!("p"));
    assert_eq!(
        p.len(),
        1,
        "the prompt must get its one answer: {:?}",
        rpc.seen
    );
    assert_eq!(p[0]["cancelled"], true, "{}", p[0]);
    // The provider process does not outlive the host.
    let deadline = Instant::now() + Duration::from_secs(2);
    while kids.iter().any(|&k| alive(k)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = kids.into_iter().filter(|&k| alive(k)).collect();
    for &k in &left {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(k.to_string())
            .status();
    }
    assert!(left.is_empty(), "provider processes left running: {left:?}");
}

#[test]
fn shutdown_answers_queued_follow_ups_as_cancelled() {
    // Every command gets exactly one answer, even ones that never ran.
    let mut rpc = Spawn::new().ext("slow").model(SLOW).start();
    rpc.ready();
    rpc.send(json!({"type": "prompt", "id": "p", "message": "[[n=200 delay_ms=50]]"}));
    rpc.send(json!({"type": "follow_up", "id": "f1", "message": "later"}));
    rpc.send(json!({"type": "follow_up", "id": 2, "message": "later still"}));
    wait_for_deltas(&mut rpc, 1);
    assert_eq!(get_state(&mut rpc, &fresh_id("state"))["queued"], 2);
    rpc.send(json!({"type": "shutdown", "id": "bye"}));
    rpc.drain(Duration::from_secs(5));
    assert_eq!(
        exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown"),
        0
    );
    for id in [json!("p"), json!("f1"), json!(2)] {
        let a = answers_of(&rpc.seen, &id);
        assert_eq!(
            a.len(),
            1,
            "{id} answered {} times: {:?}",
            a.len(),
            rpc.seen
        );
        assert_eq!(a[0]["type"], "response", "{}", a[0]);
        assert_eq!(a[0]["cancelled"], true, "{}", a[0]);
    }
    assert_eq!(answers_of(&rpc.seen, &json!("bye")).len(), 1);
    // Only the prompt ever started.
    let starts = rpc
        .seen
        .iter()
        .filter(|f| f["type"] == "agent_start")
        .count();
    assert_eq!(starts, 1);
}

// ---------------------------------------------------------------------------
// 8. signals
// ---------------------------------------------------------------------------

fn signal_mid_stream(sig: &str) {
    let mut rpc = Spawn::new().ext("slow").model(SLOW).start();
    let sid = rpc.ready()["session_id"].as_str().unwrap().to_owned();
    let text = format!("interrupt me {sig} [[n=200 delay_ms=50]]");
    rpc.send(json!({"type": "prompt", "id": "p", "message": text}));
    wait_for_deltas(&mut rpc, 3);
    rpc.signal(sig);
    let t = Instant::now();
    let rest = rpc.drain(Duration::from_secs(5));
    let code = exit_code(
        rpc.wait(Duration::from_secs(3)),
        &rpc,
        &format!("3 s after SIG{sig}"),
    );
    assert_eq!(code, 0, "SIG{sig} acts like shutdown: exit 0");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        t.elapsed()
    );
    // Like shutdown: the running prompt still gets its one (cancelled) answer.
    let p = answers_of(&rpc.seen, &json!("p"));
    assert_eq!(p.len(), 1, "prompt answered once: {rest:?}");
    assert_eq!(p[0]["cancelled"], true, "{}", p[0]);
    assert_partial_persisted(&rpc.data, &sid, &text, &format!("SIG{sig}"));
    assert!(!rpc.stderr().contains("panicked"), "{}", rpc.stderr());
}

#[test]
fn sigterm_when_idle_exits_zero_without_output() {
    let (mut rpc, _) = echo_host();
    get_state(&mut rpc, &fresh_id("state"));
    rpc.signal("TERM");
    let rest = rpc.drain(Duration::from_secs(5));
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after SIGTERM"),
        0
    );
}

/// A shell that sends `sig` to `pid` as soon as it reads a line: already
/// running, so the signal follows the trigger by microseconds, not by the
/// time it takes to start a `kill` process.
fn armed_kill(sig: &str, pid: u32) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("read _ && kill -{sig} {pid}"))
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh")
}

#[test]
fn signal_right_after_ready_still_acts_like_shutdown() {
    // `ready` tells the client the host is up; from then on SIGTERM/SIGINT
    // must mean "shut down cleanly" (exit 0), not the default kill. Sent the
    // moment `ready` is read, several times, since the window is short.
    for (n, sig) in ["TERM", "INT"].iter().cycle().take(40).enumerate() {
        let mut rpc = Spawn::new().start();
        let mut killer = armed_kill(sig, rpc.pid());
        rpc.ready();
        killer.stdin.take().unwrap().write_all(b"go\n").unwrap();
        common::wait_timeout(&mut killer, Duration::from_secs(5)).expect("kill ran");
        let status = rpc.wait(Duration::from_secs(3)).expect("exits");
        assert_eq!(
            status.code(),
            Some(0),
            "try {n}: SIG{sig} right after ready: {status:?} (killed by the signal's default action?)"
        );
    }
}

#[test]
fn sigterm_mid_stream_persists_the_partial_answer_and_exits_zero() {
    signal_mid_stream("TERM");
}

#[test]
fn sigint_mid_stream_persists_the_partial_answer_and_exits_zero() {
    signal_mid_stream("INT");
}

// ---------------------------------------------------------------------------
// 9. closed stdout
// ---------------------------------------------------------------------------

#[test]
fn closed_stdout_mid_flood_ends_the_host_quietly() {
    let flood = fixture("flood");
    let mut host = RawChild::spawn(&["--extension", flood.to_str().unwrap(), "--model", FLOOD]);
    let out = host.child.stdout.take().unwrap();
    let mut stdin = host.child.stdin.take().unwrap();
    // The reader thread reads `ready`, then some of the stream, then drops
    // the read end of the pipe: the host's next write gets EPIPE.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        let ready = lines.next().and_then(|l| l.ok()).unwrap_or_default();
        let _ = tx.send(ready);
        let mut deltas = 0;
        for line in lines {
            let Ok(line) = line else { break };
            if line.contains("\"message_update\"") {
                deltas += 1;
                if deltas == 500 {
                    break;
                }
            }
        }
        let _ = tx.send(format!("{deltas}"));
        // `lines` (and with it stdout) is dropped here.
    });
    let ready = rx.recv_timeout(READ_TIMEOUT).expect("ready line");
    assert!(ready.contains("\"ready\""), "{ready}");
    let sid = serde_json::from_str::<Value>(&ready).unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = "flood me [[n=1000000]]";
    writeln!(
        stdin,
        "{}",
        json!({"type": "prompt", "id": "p", "message": text})
    )
    .unwrap();
    stdin.flush().unwrap();
    let deltas = rx
        .recv_timeout(READ_TIMEOUT)
        .unwrap_or_else(|_| panic!("stream did not start; stderr:\n{}", host.stderr()));
    assert_eq!(deltas, "500", "stream ended early");

    // stdin stays open: the exit must come from the closed stdout alone.
    let status = host.wait(Duration::from_secs(5)).unwrap_or_else(|| {
        panic!(
            "host still running 5 s after its stdout closed; stderr:\n{}",
            host.stderr()
        )
    });
    let stderr = host.stderr();
    assert!(!stderr.contains("panicked"), "no panic on EPIPE:\n{stderr}");
    assert!(
        status.code().is_some(),
        "killed by a signal: {status:?}\n{stderr}"
    );
    // "Exits quietly": the contract names no status; 101 would be a panic.
    assert_ne!(status.code(), Some(101), "exits quietly\n{stderr}");
    drop(stdin);
    // "aborts the turn, persists": the partial answer is on disk, aborted.
    assert_partial_persisted(&host.data, &sid, text, "closed stdout");
}

// ---------------------------------------------------------------------------
// 10. start-up failures
// ---------------------------------------------------------------------------

/// Starts a host expected to fail: exactly one `error {id: null, code}` on
/// stdout, no `ready`, the message repeated on stderr, exit status 2.
fn startup_fails(spawn: Spawn, code: &str) {
    let mut rpc = spawn.start();
    let frames = rpc.drain(Duration::from_secs(10));
    let status = exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s");
    assert_eq!(frames.len(), 1, "exactly one frame on stdout: {frames:?}");
    let f = &frames[0];
    assert_eq!(f["type"], "error", "no ready, one error: {f}");
    assert_eq!(f["id"], Value::Null, "{f}");
    assert_eq!(f["code"], code, "{f}\nstderr:\n{}", rpc.stderr());
    let message = f["message"].as_str().expect("message");
    assert!(!message.is_empty());
    // The harness collects stderr on its own thread, which may still be
    // catching up with a process that already exited.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !rpc.stderr().contains(message) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        rpc.stderr().contains(message),
        "message repeated on stderr; stderr:\n{}",
        rpc.stderr()
    );
    assert_eq!(status, 2, "start-up failure exits 2");
}

#[test]
fn continue_with_an_unknown_id_fails_startup_with_not_found() {
    startup_fails(Spawn::new().arg("--continue").arg("nope"), "not_found");
}

#[test]
fn continue_with_no_id_and_no_sessions_fails_startup_with_not_found() {
    startup_fails(Spawn::new().arg("--continue"), "not_found");
}

#[test]
fn continue_with_a_path_like_id_fails_startup_with_invalid_params() {
    for id in ["../x", "a/b", "..", "/etc/passwd"] {
        startup_fails(Spawn::new().arg("--continue").arg(id), "invalid_params");
    }
}

#[test]
fn missing_extension_fails_startup() {
    // The contract names no code for this; the host reports invalid_params.
    startup_fails(
        Spawn::new().arg("--extension").arg("/nonexistent"),
        "invalid_params",
    );
}

#[test]
fn bad_model_fails_startup_with_not_found() {
    startup_fails(Spawn::new().model("bad"), "not_found");
    startup_fails(
        Spawn::new().ext("echo").model("nope:echo:echo-1"),
        "not_found",
    );
}

#[test]
fn continue_of_a_session_in_use_fails_startup_with_session_locked() {
    let (mut first, ready) = echo_host();
    // The session file appears with its first entry.
    let (_, r) = prompt(&mut first, "p", "hello");
    assert_eq!(r["ok"], true, "{r}");
    let sid = ready["session_id"].as_str().unwrap();
    startup_fails(
        Spawn::new()
            .ext("echo")
            .data(&first.data)
            .arg("--continue")
            .arg(sid),
        "session_locked",
    );
    // The first process is unaffected.
    assert_eq!(
        get_state(&mut first, &fresh_id("state"))["message_count"],
        2
    );
}

#[test]
fn unusable_data_dir_fails_startup() {
    // A regular file where the data directory should be. The contract names
    // no code; the host reports internal.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    startup_fails(Spawn::new().data(&file), "internal");
}
