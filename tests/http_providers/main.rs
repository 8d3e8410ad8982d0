//! The HTTP model providers (Anthropic Messages and OpenAI-compatible Chat
//! Completions, streaming over SSE) against the real `rpc` binary and the
//! fake server `fixtures/http/fake_llm.py`.
//!
//! Every test starts its own fake server (ephemeral port, killed on drop and
//! also when its stdin closes) and its own host, so tests run in parallel.
//! Most scenarios run for both APIs through `both!`, which makes a module per
//! scenario with an `anthropic` and an `openai` test.
//!
//! Timing: every wait is bounded; the only time assertions are generous
//! bounds from the contract (abort < 1 s, persistent 500 < 10 s with the
//! short retry config, idle timeout of 1 s fails within ~4 s).
//!
//! Latency is measured by `cargo bench` (rows 2b), not here.
//!
//! One test binary, one module per area (`streams`, `retries`, `failures`,
//! `requests`, `config`, `system_prompt`, …); the helpers and
//! `both!` are below.

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fake_http::{Api, FakeServer};
use common::*;
use serde_json::{json, Value};
use tempfile::TempDir;

/// `XDG_CONFIG_HOME` for every host: an absolute path holding no config, so
/// a developer's own `~/.config/agent-rpc/config.toml` never leaks in.
const NO_CONFIG_HOME: &str = "/nonexistent/agent-rpc-http-tests";

const ANTHROPIC_KEY: &str = "sk-ant-test-SECRET123";
const OPENAI_KEY: &str = "sk-oai-test-SECRET456";

/// Short retries so that retry tests take milliseconds.
const RETRY_CONFIG: &str =
    "[http]\nretry_base_delay_ms = 50\nmax_retries = 3\nmax_retry_secs = 10\n";

// ------------------------------------------------------------------ the APIs

/// The test keys, per API.
trait TestKeys {
    fn key(self) -> &'static str;
    /// The part of the key that must never show up anywhere.
    fn secret(self) -> &'static str;
}

impl TestKeys for Api {
    fn key(self) -> &'static str {
        match self {
            Api::Anthropic => ANTHROPIC_KEY,
            Api::OpenAi => OPENAI_KEY,
        }
    }
    fn secret(self) -> &'static str {
        match self {
            Api::Anthropic => "SECRET123",
            Api::OpenAi => "SECRET456",
        }
    }
}

// Declared after `common` (whose `both!` they use): a `macro_rules!`
// macro is visible only in the modules that come after its definition.
mod caching;
mod config;
mod failures;
mod gemini;
mod hints;
mod images;
mod models;
mod requests;
mod responses;
mod retries;
mod streams;
mod system_prompt;
mod thinking;

// ---------------------------------------------------------------- the host

/// A host pointed at `srv` for `api`, with the key set and the default model.
fn spawn(api: Api, srv: &FakeServer) -> Spawn {
    Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env(api.base_var(), &api.base_url(srv.port))
        .env(api.key_var(), api.key())
        .model(api.model())
}

/// A config file in its own temp dir (keep the dir alive while it is used).
fn config_file(text: &str) -> (TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write config");
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

/// Starts `host` with a config file holding `config`; returns it ready, and
/// the config's dir (keep it alive while the host runs).
fn start_with_config(host: Spawn, config: &str) -> (Rpc, TempDir) {
    let (dir, path) = config_file(config);
    let mut rpc = host.arg("--config").arg(&path).start();
    rpc.ready();
    (rpc, dir)
}

/// A host with the short retry config.
fn start_with_retries(api: Api, srv: &FakeServer) -> (Rpc, TempDir) {
    start_with_config(spawn(api, srv), RETRY_CONFIG)
}

/// A workspace with a file `a.txt` for `read` and `ls` to find.
fn workspace() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.txt"), "alpha").expect("write");
    dir
}

/// Starts `host` in `work` with `--thinking thinking`; returns it ready.
fn start_in(host: Spawn, work: &TempDir, thinking: &str) -> Rpc {
    let mut rpc = host
        .arg("--cwd")
        .arg(&work.path().to_string_lossy())
        .arg("--thinking")
        .arg(thinking)
        .start();
    rpc.ready();
    rpc
}

fn start(api: Api, srv: &FakeServer) -> Rpc {
    let mut rpc = spawn(api, srv).start();
    rpc.ready();
    rpc
}

/// Runs a prompt to its answer. Should the host ever ask for a tool
/// permission (tool execution is being added elsewhere), the turn is aborted
/// so that these tests only ever see the first round's tool calls.
fn run(rpc: &mut Rpc, id: &str, message: &str) -> (Vec<Value>, Value) {
    rpc.send(json!({"type": "prompt", "id": id, "message": message}));
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut frames = Vec::new();
    let mut aborted = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(f) = rpc.recv_within(left) else {
            panic!(
                "no answer to prompt {id} within {READ_TIMEOUT:?}; last frames: {:?}\nstderr:\n{}",
                frames.iter().rev().take(5).collect::<Vec<_>>(),
                rpc.stderr()
            );
        };
        if (f["type"] == "response" || f["type"] == "error") && f["id"] == id {
            return (frames, f);
        }
        if f["type"] == "permission_request" && !aborted {
            aborted = true;
            rpc.send(json!({"type": "abort", "id": format!("{id}-abort")}));
        }
        frames.push(f);
    }
}

/// The events (the `event` objects) of `message_update`s of one type.
fn events(frames: &[Value], kind: &str) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "message_update" && f["event"]["type"] == kind)
        .map(|f| f["event"].clone())
        .collect()
}

fn thinking_of(frames: &[Value]) -> String {
    events(frames, "thinking_delta")
        .iter()
        .map(|e| e["delta"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn retries(frames: &[Value]) -> Vec<Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "auto_retry")
        .cloned()
        .collect()
}

fn agent_end(frames: &[Value]) -> Value {
    frames
        .iter()
        .rev()
        .find(|f| f["type"] == "agent_end")
        .cloned()
        .unwrap_or_else(|| panic!("no agent_end among {frames:?}"))
}

/// The `error` of a failed prompt (asserting it failed as a provider error).
fn failure(resp: &Value) -> String {
    assert_eq!(
        resp["type"], "response",
        "a failed prompt is a response: {resp}"
    );
    assert_eq!(resp["ok"], false, "the prompt should have failed: {resp}");
    assert_eq!(resp["code"], "provider_error", "{resp}");
    assert_eq!(resp["stop_reason"], "error", "{resp}");
    let err = resp["error"]
        .as_str()
        .unwrap_or_else(|| panic!("error is not a string: {resp}"))
        .to_owned();
    eprintln!("prompt {} failed as expected: {err}", resp["id"]);
    err
}

fn usage_tuple(u: &Value) -> (u64, u64, u64, u64) {
    let g = |k: &str| {
        u[k].as_u64()
            .unwrap_or_else(|| panic!("usage.{k} missing in {u}"))
    };
    (
        g("input_tokens"),
        g("output_tokens"),
        g("cache_read_input_tokens"),
        g("cache_creation_input_tokens"),
    )
}

// ------------------------------------- scenarios the native APIs share

/// `message` (`long [[n=3 stop=...]]`) stops at the output limit: its text
/// so far is the answer, stored with `stop_reason` max_tokens.
fn stops_at_max_tokens(rpc: &mut Rpc, id: &str, message: &str) {
    let (frames, resp) = run(rpc, id, message);
    assert_ok(&resp, rpc);
    assert_eq!(text_of(&frames), "tok tok tok ");
    let stored = messages(rpc, "m");
    assert_eq!(stored.last().unwrap()["stop_reason"], "max_tokens");
}

/// An error after a delta (`[[n=3 error_after=1 id=e1]]`) fails the prompt
/// with the API's message `says`, not retried: one request.
fn an_error_after_a_delta_is_not_retried(rpc: &mut Rpc, srv: &FakeServer, id: &str, says: &str) {
    let (_, resp) = run(rpc, id, "[[n=3 error_after=1 id=e1]]");
    let err = failure(&resp);
    assert!(err.contains(says), "{err}");
    assert!(err.contains("not retried"), "{err}");
    assert_eq!(srv.requests_with("id=e1").len(), 1);
}

/// A 429 saying to wait 0.2 s is waited for and retried once; the retry's
/// reason contains `reason`.
fn a_429_is_waited_for_and_retried(rpc: &mut Rpc, srv: &FakeServer, id: &str, reason: &str) {
    let (frames, resp) = run(rpc, id, "[[fail=429 retry_after=0.2 id=rl]]");
    assert_ok(&resp, rpc);
    let r = retries(&frames);
    assert_eq!(r.len(), 1, "{frames:?}");
    assert_eq!(r[0]["delay_ms"], 200);
    assert!(r[0]["reason"].as_str().unwrap().contains(reason), "{r:?}");
    assert_eq!(srv.requests_with("id=rl").len(), 2);
}

/// A body cut before any event is retried (nothing was shown) until the
/// short retry config gives up; the error says `why`.
fn a_cut_before_any_event_is_retried(rpc: &mut Rpc, srv: &FakeServer, id: &str, why: &str) {
    let (_, resp) = run(rpc, id, "[[cut=0 cut_style=eof id=cut]]");
    let err = failure(&resp);
    assert!(err.contains(why), "{err}");
    assert!(err.contains("gave up after 4 attempts"), "{err}");
    assert_eq!(srv.requests_with("id=cut").len(), 4);
}

/// Three long turns, then a fourth over the fake's limit: the host
/// compacts for the overflow and sends again, the last request (a success)
/// carrying the summary. Returns the requests the fake saw.
fn an_overflow_compacts_and_is_sent_again(rpc: &mut Rpc, srv: &FakeServer) -> Vec<Value> {
    let words = |tag: &str| format!("{tag} {}", "word ".repeat(200));
    for i in 0..3 {
        ok_prompt(rpc, &format!("p{i}"), &words(&format!("OLD{i}")));
    }
    let (frames, resp) = run(rpc, "p3", &words("NEWEST"));
    assert_ok(&resp, rpc);
    let start = the_frame(&frames, "compaction_start");
    assert_eq!(start["reason"], "overflow");
    let reqs = srv.api_requests();
    let last = reqs.last().unwrap();
    assert_eq!(last["status"], 200);
    assert!(last["body"].to_string().contains("FAKE SUMMARY"));
    reqs
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
