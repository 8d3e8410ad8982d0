//! Tool execution behind the permission gate, against the real `rpc` binary,
//! the echo provider extension and (for the wire shapes) the fake HTTP
//! server `fixtures/http/fake_llm.py`.
//!
//! The echo fixture calls a tool when the prompt says
//! `[[tool=NAME input=JSON]]` (ids `call_1`, `call_2`, ...) and, once the
//! results come back, replies `tool result: <content>`. Every host gets its
//! own session cwd (`<tempdir>/work`, so `..` is a tempdir too) and its own
//! data dir.
//!
//! Every read is bounded by the harness timeout. The only timing assertions
//! are the contract's, asserted loosely: abort reaches `agent_end` within
//! 1 s, a 300 ms bash timeout reports within ~3 s.
//!
//! One test binary, one module per area (`files`, `permissions`, `bash`,
//! `rounds`, `plan`, `sandbox`, `hooks`); the helpers are below.

#[path = "../common/mod.rs"]
mod common;

mod bash;
mod files;
mod hooks;
mod permissions;
mod plan;
mod rounds;
mod sandbox;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fake_http::{Api, FakeServer};
use common::procfs::{alive, cmdline, descendants};
use common::*;
use serde_json::{json, Value};
use tempfile::TempDir;

/// `XDG_CONFIG_HOME` for every host, so no developer config leaks in.
const NO_CONFIG_HOME: &str = "/nonexistent/agent-rpc-tools-tests";

// ---------------------------------------------------------------- helpers

/// A session working directory `root/work`; `root` is "outside".
struct Dirs {
    root: TempDir,
    cwd: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let cwd = root.path().join("work");
        std::fs::create_dir(&cwd).expect("mkdir work");
        let cwd = cwd.canonicalize().expect("canonical cwd");
        Dirs { root, cwd }
    }

    /// The directory above the cwd (canonical).
    fn outside(&self) -> PathBuf {
        self.root.path().canonicalize().expect("canonical root")
    }

    fn put(&self, rel: &str, text: &str) {
        std::fs::write(self.cwd.join(rel), text).expect("write fixture file");
    }

    fn get(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.cwd.join(rel)).ok()
    }
}

/// An echo host in `cwd` with the given permission mode.
fn echo_spawn(cwd: &Path, mode: &str) -> Spawn {
    Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .ext("echo")
        .model(ECHO)
        .arg("--cwd")
        .arg(cwd.to_str().expect("utf-8 cwd"))
        .arg("--permission-mode")
        .arg(mode)
}

fn start(cwd: &Path, mode: &str) -> Rpc {
    let mut rpc = echo_spawn(cwd, mode).start();
    rpc.ready();
    rpc
}

/// The directive that makes the echo model call `tools` with `input`.
fn call(tools: &str, input: &Value) -> String {
    format!("[[tool={tools} input={input}]]")
}

fn is_event(f: &Value, kind: &str) -> bool {
    f["type"] == "message_update" && f["event"]["type"] == kind
}

fn of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}

fn index_of(frames: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    frames
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} among {frames:#?}"))
}

/// The one `tool_execution_end` among `frames`.
fn the_tool_end(frames: &[Value]) -> Value {
    let ends = of_type(frames, "tool_execution_end");
    assert_eq!(ends.len(), 1, "exactly one tool_execution_end: {frames:#?}");
    ends[0].clone()
}

/// The result text of a `tool_execution_end` ("" when it has none).
fn result_of(end: &Value) -> &str {
    end["result"].as_str().unwrap_or_default()
}

/// The one tool call among `frames` failed, its result saying `text`.
/// Returns its `tool_execution_end`.
fn the_tool_failed_with(frames: &[Value], text: &str) -> Value {
    let end = the_tool_end(frames);
    assert_eq!(end["is_error"], true, "{end}");
    assert!(result_of(&end).contains(text), "{end}");
    end
}

/// Text streamed after the (last) `tool_execution_end`: the second round.
fn reply_after_tools(frames: &[Value]) -> String {
    let at = frames
        .iter()
        .rposition(|f| f["type"] == "tool_execution_end")
        .unwrap_or_else(|| panic!("no tool_execution_end among {frames:#?}"));
    text_of(&frames[at + 1..])
}

fn no_permission_request(frames: &[Value]) {
    assert!(
        of_type(frames, "permission_request").is_empty(),
        "no permission_request expected: {frames:#?}"
    );
}

/// Runs a prompt that needs no permission to its answer; it must succeed.
fn run_ok(rpc: &mut Rpc, id: &str, message: &str) -> Vec<Value> {
    let (frames, resp) = prompt(rpc, id, message);
    assert_ok(&resp, rpc);
    frames
}

/// Sends a prompt and reads up to its `permission_request` (failing if the
/// prompt is answered first). Returns (frames before, the request).
fn until_permission(rpc: &mut Rpc, id: &str, message: &str) -> (Vec<Value>, Value) {
    rpc.send(json!({"type": "prompt", "id": id, "message": message}));
    let pid = id.to_owned();
    let (before, f) = rpc.until("permission_request", move |f| {
        f["type"] == "permission_request" || is_answer_to(f, &pid)
    });
    assert_eq!(
        f["type"], "permission_request",
        "the prompt ended without asking: {f}\nframes: {before:#?}"
    );
    (before, f)
}

/// Answers a permission request (command id `rid`) and reads to the answer
/// of prompt `prompt`. Returns (frames in between, the prompt's answer); the
/// permission_response's own answer must be a success among the frames.
fn decide(
    rpc: &mut Rpc,
    req: &Value,
    decision: &str,
    message: Option<&str>,
    rid: &str,
    prompt: &str,
) -> (Vec<Value>, Value) {
    let mut cmd = json!({"type": "permission_response", "id": rid,
        "request_id": req["request_id"], "decision": decision});
    if let Some(m) = message {
        cmd["message"] = json!(m);
    }
    rpc.send(cmd);
    let p = prompt.to_owned();
    let (frames, resp) = rpc.until("prompt answer", move |f| is_answer_to(f, &p));
    let ans = frames
        .iter()
        .find(|f| is_answer_to(f, rid))
        .unwrap_or_else(|| panic!("permission_response {rid} unanswered: {frames:#?}"));
    assert_eq!(ans["type"], "response", "{ans}");
    assert_eq!(ans["ok"], true, "{ans}");
    assert_eq!(ans["command"], "permission_response", "{ans}");
    (frames, resp)
}

fn blocks(m: &Value) -> Vec<Value> {
    m["content"].as_array().cloned().unwrap_or_default()
}

/// `shutdown`, then a clean exit.
fn shutdown(mut rpc: Rpc) {
    let r = rpc.call(json!({"type": "shutdown"}), "bye");
    assert_eq!(r["ok"], true, "{r}");
    let status = rpc
        .wait(Duration::from_secs(10))
        .expect("exit after shutdown");
    assert!(status.success(), "{status:?}\nstderr:\n{}", rpc.stderr());
}

/// A prompt that makes the echo fixture call bash with `command`.
fn bash(command: &str) -> String {
    call("bash", &json!({ "command": command }))
}
