//! Wire-level behaviour of `rpc` (protocol.md, "Framing", "Commands", "Start-up
//! and end"): how lines are cut and bounded, which error code every kind of bad
//! input earns and under which id, that every command is answered exactly once,
//! and how the process ends (EOF, `shutdown`, signals, a closed stdout,
//! start-up failures).
//!
//! One test binary, one module per area (`ready`, `errors`, `lines`,
//! `answers`, `eof`, `shutdown`, `startup`); the helpers they share are
//! below.
//!
//! Every test drives the real binary. Reads go through the harness (bounded by
//! timeouts); the two tests that must own the child's pipes themselves (a
//! 64 MiB line written from a thread, a closed stdout) use the small `raw`
//! helpers below, which bound their reads the same way.

#[path = "../common/mod.rs"]
mod common;

mod answers;
mod eof;
mod errors;
mod lines;
mod ready;
mod shutdown;
mod startup;

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

/// Rows of a rejection table: a line the host must reject, the error code it
/// earns, and the string id the error echoes (`None`: null, because the id
/// could not be read or trusted).
type Rejections = &'static [(&'static str, &'static str, Option<&'static str>)];

/// [`rejects`] for every row, in order, on the same host: each rejection
/// must leave the state as `before`, so the rows also check one another.
fn rejects_each(rpc: &mut Rpc, before: &Value, table: Rejections) {
    for &(line, code, id) in table {
        rejects(
            rpc,
            before,
            line,
            code,
            id.map_or(Value::Null, |id| json!(id)),
        );
    }
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

/// After a turn was cut short by `how`: the user message and the partial,
/// aborted-marked assistant message are on disk.
fn assert_partial_persisted(data: &Path, session_id: &str, user_text: &str, how: &str) {
    let msgs = persisted_messages(data, session_id);
    assert!(
        msgs.iter()
            .any(|m| m["role"] == "user" && message_text(m) == user_text),
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
        message_text(partial).starts_with("tok "),
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
