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
//! `latency::*` measures (and prints, see `--nocapture`) how long frames take
//! from the fake server's write to the host's stdout; it asserts nothing
//! about speed.

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

/// One test per API for a scenario function `name(api)`.
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn anthropic() {
                super::$name(super::Api::Anthropic)
            }
            #[test]
            fn openai() {
                super::$name(super::Api::OpenAi)
            }
        }
    )*};
}

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

/// A host with the short retry config.
fn start_with_retries(api: Api, srv: &FakeServer) -> (Rpc, TempDir) {
    let (dir, path) = config_file(RETRY_CONFIG);
    let mut rpc = spawn(api, srv).arg("--config").arg(&path).start();
    rpc.ready();
    (rpc, dir)
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

/// CLOCK_MONOTONIC in seconds: the clock of the fake server's timestamps.
fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

// ------------------------------------------------------------ 1. happy path

both!(happy_path, keyless_configured_endpoint);

/// Text deltas make the echoed text; usage (converted for OpenAI) reaches
/// `agent_end`, the response and the session stats; a catalogue model is
/// priced.
fn happy_path(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    let (frames, resp) = run(
        &mut rpc,
        "1",
        "hello there friend [[usage_in=120 usage_out=7 cache_read=30 cache_write=11]]",
    );
    assert_ok(&resp, &rpc);
    assert_eq!(text_of(&frames), "hello there friend");
    assert!(
        events(&frames, "text_delta").len() >= 3,
        "word-by-word deltas: {frames:?}"
    );
    let expected = match api {
        // All four as sent.
        Api::Anthropic => (120, 7, 30, 11),
        // input = prompt_tokens - cached_tokens; cache_read = cached_tokens.
        Api::OpenAi => (90, 7, 30, 0),
    };
    let end = agent_end(&frames);
    assert_eq!(end["stop_reason"], "end_turn", "{end}");
    assert_eq!(usage_tuple(&end["usage"]), expected, "agent_end: {end}");
    assert_eq!(usage_tuple(&resp["usage"]), expected, "response: {resp}");

    let stats = rpc.call(json!({"type": "get_session_stats"}), "s");
    assert_eq!(stats["ok"], true, "{stats}");
    assert_eq!(stats["input_tokens"], expected.0, "{stats}");
    assert_eq!(stats["output_tokens"], expected.1, "{stats}");
    assert_eq!(stats["cache_read_input_tokens"], expected.2, "{stats}");
    assert_eq!(stats["cache_creation_input_tokens"], expected.3, "{stats}");
    let cost = stats["cost_usd"]
        .as_f64()
        .unwrap_or_else(|| panic!("cost_usd is a number for a catalogue model: {stats}"));
    assert!(cost > 0.0, "{stats}");
    // Catalogue prices (USD per million): sonnet-5-5 2/10/0.1/2.5,
    // gpt-4o-mini 0.15/0.6/0.075/0.15.
    let want = match api {
        Api::Anthropic => (120.0 * 2.0 + 7.0 * 10.0 + 30.0 * 0.1 + 11.0 * 2.5) / 1e6,
        Api::OpenAi => (90.0 * 0.15 + 7.0 * 0.6 + 30.0 * 0.075) / 1e6,
    };
    assert!(
        (cost - want).abs() <= want * 1e-6,
        "cost_usd {cost} != {want}: {stats}"
    );

    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0]["path"], api.path());
    assert_eq!(reqs[0]["outcome"], "complete", "{:?}", reqs[0]);
}

/// A configured keyless endpoint with a model outside the catalogue: works,
/// sends no credentials, and has no price.
fn keyless_configured_endpoint(api: Api) {
    let srv = FakeServer::with_args(&["--no-auth"]);
    let (_dir, path) = config_file(&format!(
        "[providers.local]\nkind = \"{}\"\nbase_url = \"{}\"\n",
        api.kind(),
        api.base_url(srv.port)
    ));
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .arg("--config")
        .arg(&path)
        .model("local/some-model")
        .start();
    rpc.ready();
    let (frames, resp) = run(&mut rpc, "1", "local models are nice");
    assert_ok(&resp, &rpc);
    assert_eq!(text_of(&frames), "local models are nice");
    let stats = rpc.call(json!({"type": "get_session_stats"}), "s");
    assert_eq!(stats["ok"], true, "{stats}");
    assert!(
        stats["cost_usd"].is_null(),
        "an unknown model has no price: {stats}"
    );
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let h = &reqs[0]["headers"];
    assert!(
        h.get("authorization").is_none(),
        "keyless endpoint sent authorization: {h}"
    );
    assert!(
        h.get("x-api-key").is_none(),
        "keyless endpoint sent x-api-key: {h}"
    );
    assert_eq!(
        reqs[0]["body"]["model"], "some-model",
        "{}",
        reqs[0]["body"]
    );
    assert_eq!(reqs[0]["path"], api.path());
}

// --------------------------------------------------------------- 2. thinking

#[test]
fn thinking_anthropic_signature_is_kept_and_sent_back() {
    let srv = FakeServer::start();
    let mut rpc = start(Api::Anthropic, &srv);
    let (frames, resp) = run(&mut rpc, "1", "ponder this [[thinking=2]]");
    assert_ok(&resp, &rpc);
    assert_eq!(thinking_of(&frames), "hmm hmm ", "{frames:?}");
    assert_eq!(events(&frames, "thinking_delta").len(), 2);
    assert_eq!(text_of(&frames), "ponder this");
    // Thinking comes before the text.
    let first_thinking = frames
        .iter()
        .position(|f| f["event"]["type"] == "thinking_delta")
        .unwrap();
    let first_text = frames
        .iter()
        .position(|f| f["event"]["type"] == "text_delta")
        .unwrap();
    assert!(first_thinking < first_text);

    let msgs = messages(&mut rpc, "m");
    let assistant = msgs
        .iter()
        .find(|m| m["role"] == "assistant")
        .expect("assistant message");
    let thinking = assistant["content"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "thinking"))
        .unwrap_or_else(|| panic!("no thinking block: {assistant}"));
    assert_eq!(thinking["thinking"], "hmm hmm ", "{assistant}");
    assert_eq!(thinking["signature"], "sig-abc", "{assistant}");

    // The next request carries the signed thinking block back.
    let (_, resp) = run(&mut rpc, "2", "and now?");
    assert_ok(&resp, &rpc);
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let body = &reqs[1]["body"];
    let sent = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["role"] == "assistant")
        .unwrap_or_else(|| panic!("no assistant message sent back: {body}"));
    let block = sent["content"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "thinking"))
        .unwrap_or_else(|| panic!("thinking block not sent back: {sent}"));
    assert_eq!(block["signature"], "sig-abc", "{sent}");
    assert_eq!(block["thinking"], "hmm hmm ", "{sent}");
}

#[test]
fn thinking_openai_reasoning_content_and_reasoning_field() {
    let srv = FakeServer::start();
    let mut rpc = start(Api::OpenAi, &srv);
    let (frames, resp) = run(&mut rpc, "1", "ponder this [[thinking=2]]");
    assert_ok(&resp, &rpc);
    assert_eq!(
        thinking_of(&frames),
        "hmm hmm ",
        "reasoning_content: {frames:?}"
    );
    assert_eq!(text_of(&frames), "ponder this");

    let (frames, resp) = run(
        &mut rpc,
        "2",
        "ponder that [[thinking=2 reasoning_field=reasoning]]",
    );
    assert_ok(&resp, &rpc);
    assert_eq!(thinking_of(&frames), "hmm hmm ", "reasoning: {frames:?}");
    assert_eq!(text_of(&frames), "ponder that");

    let msgs = messages(&mut rpc, "m");
    let assistant = msgs
        .iter()
        .find(|m| m["role"] == "assistant")
        .expect("assistant message");
    assert!(
        assistant["content"].as_array().is_some_and(|b| b
            .iter()
            .any(|b| b["type"] == "thinking" && b["thinking"] == "hmm hmm ")),
        "stored thinking: {assistant}"
    );
    // Reasoning is not sent back to a Chat Completions server.
    let reqs = srv.api_requests();
    let sent = reqs[1]["body"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["role"] == "assistant")
        .cloned()
        .expect("assistant message sent back");
    assert_eq!(sent["content"], "ponder this", "{sent}");
}

// ------------------------------------------------------------ 3. tool calls

both!(tool_call_deltas);

/// Checks one streamed tool call: start, ≥2 deltas that concatenate to the
/// input, end with the parsed input, in that order. Returns its id.
fn check_call(frames: &[Value], id: &str, name: &str, input: &Value) {
    let pos = |kind: &str| -> Vec<usize> {
        frames
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f["type"] == "message_update"
                    && f["event"]["type"] == kind
                    && f["event"]["tool_call_id"] == id
            })
            .map(|(i, _)| i)
            .collect()
    };
    let starts = pos("toolcall_start");
    let deltas = pos("toolcall_delta");
    let ends = pos("toolcall_end");
    assert_eq!(starts.len(), 1, "one toolcall_start for {id}: {frames:?}");
    assert_eq!(ends.len(), 1, "one toolcall_end for {id}: {frames:?}");
    assert_eq!(frames[starts[0]]["event"]["name"], name);
    assert!(
        deltas.len() >= 2,
        "several toolcall_deltas for {id}: {frames:?}"
    );
    assert!(
        starts[0] < deltas[0] && *deltas.last().unwrap() < ends[0],
        "start < deltas < end for {id}"
    );
    let joined: String = deltas
        .iter()
        .map(|&i| frames[i]["event"]["delta"].as_str().unwrap_or(""))
        .collect();
    let parsed: Value = serde_json::from_str(&joined)
        .unwrap_or_else(|e| panic!("deltas of {id} do not parse ({e}): {joined:?}"));
    assert_eq!(&parsed, input, "deltas of {id}");
    let end = &frames[ends[0]]["event"];
    assert_eq!(end["name"], name, "{end}");
    assert_eq!(&end["input"], input, "{end}");
}

fn tool_call_deltas(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    let input = json!({"path": "a.txt"});
    let (frames, resp) = run(
        &mut rpc,
        "1",
        r#"read it [[tool=read input={"path":"a.txt"}]]"#,
    );
    assert_eq!(resp["ok"], true, "{resp}\nstderr:\n{}", rpc.stderr());
    // The host runs the tool and goes round again; the first round's text
    // is what precedes the tool's execution.
    let first_round: Vec<Value> = frames
        .iter()
        .take_while(|f| f["type"] != "tool_execution_start")
        .cloned()
        .collect();
    assert_eq!(text_of(&first_round), "read it");
    let starts = events(&frames, "toolcall_start");
    assert_eq!(starts.len(), 1, "{frames:?}");
    let id = starts[0]["tool_call_id"]
        .as_str()
        .expect("tool_call_id")
        .to_owned();
    assert!(!id.is_empty());
    check_call(&frames, &id, "read", &input);
    // The read runs (read-only tools need no permission) and its result
    // goes back to the model in the next request.
    let ends = frames
        .iter()
        .filter(|f| f["type"] == "tool_execution_end")
        .count();
    assert_eq!(ends, 1, "the tool ran: {frames:?}");
    let requests = srv.api_requests();
    let last = requests.last().expect("a second request");
    assert!(
        last["body"].to_string().contains(&id),
        "the next request carries the result for {id}: {last}"
    );

    // Two parallel calls (interleaved on OpenAI), in a fresh session.
    let ns = rpc.call(json!({"type": "new_session"}), "ns");
    assert_eq!(ns["ok"], true, "{ns}");
    let (frames, resp) = run(
        &mut rpc,
        "2",
        r#"both [[tool=read,ls tools=2 input={"path":"a.txt"}]]"#,
    );
    assert_eq!(resp["ok"], true, "{resp}\nstderr:\n{}", rpc.stderr());
    let starts = events(&frames, "toolcall_start");
    assert_eq!(starts.len(), 2, "{frames:?}");
    let ids: Vec<String> = starts
        .iter()
        .map(|s| s["tool_call_id"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(ids[0], ids[1], "distinct ids");
    let names: Vec<String> = starts
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["read", "ls"]);
    for (id, name) in ids.iter().zip(&names) {
        check_call(&frames, id, name, &input);
    }
    assert_eq!(events(&frames, "toolcall_end").len(), 2);
}

both!(prompt_after_tool_call_turn_succeeds);

/// A turn that ended with tool calls must leave a history the API accepts:
/// the next prompt in the same session succeeds (both real APIs reject a
/// tool call without its result in the next message; so does the fake).
fn prompt_after_tool_call_turn_succeeds(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    let (_, resp) = run(
        &mut rpc,
        "1",
        r#"read it [[tool=read input={"path":"a.txt"}]]"#,
    );
    assert_eq!(resp["ok"], true, "{resp}");
    let (frames, resp) = run(&mut rpc, "2", "thanks, now just talk");
    assert_eq!(
        resp["ok"],
        true,
        "the prompt after a tool-call turn failed: {resp}\nlast request body: {}",
        srv.api_requests()
            .last()
            .map(|r| r["body"].to_string())
            .unwrap_or_default()
    );
    assert_eq!(text_of(&frames), "thanks, now just talk");
}

// -------------------------------------------------------------- 4. retries

both!(retry_429_then_success, retry_503_uses_backoff);

fn retry_429_then_success(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    let (frames, resp) = run(
        &mut rpc,
        "1",
        "after the storm [[fail=429 fail_times=2 retry_after=0.1 id=r429]]",
    );
    assert_ok(&resp, &rpc);
    let start = frames.iter().find(|f| f["type"] == "agent_start").unwrap();
    let r = retries(&frames);
    assert_eq!(r.len(), 2, "two auto_retry frames: {frames:?}");
    for (i, f) in r.iter().enumerate() {
        assert_eq!(f["attempt"], i as u64 + 1, "{f}");
        assert_eq!(f["prompt_id"], start["prompt_id"], "{f}");
        let d = f["delay_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("delay_ms: {f}"));
        assert!((90..=110).contains(&d), "retry-after 0.1 s honoured: {f}");
        let reason = f["reason"].as_str().unwrap_or("");
        assert!(reason.contains("429"), "reason names the status: {f}");
    }
    // The retries come before any delta.
    let first_retry = frames
        .iter()
        .position(|f| f["type"] == "auto_retry")
        .unwrap();
    let first_update = frames
        .iter()
        .position(|f| f["type"] == "message_update")
        .expect("deltas");
    assert!(first_retry < first_update);
    assert_eq!(text_of(&frames), "after the storm");
    let reqs = srv.requests_with("id=r429");
    let statuses: Vec<&Value> = reqs.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [&json!(429), &json!(429), &json!(200)],
        "{reqs:?}"
    );
}

fn retry_503_uses_backoff(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    let (frames, resp) = run(
        &mut rpc,
        "1",
        "back soon [[fail=503 retry_after=none id=r503]]",
    );
    assert_ok(&resp, &rpc);
    let r = retries(&frames);
    assert_eq!(r.len(), 1, "{frames:?}");
    assert_eq!(r[0]["attempt"], 1);
    let d = r[0]["delay_ms"].as_u64().expect("delay_ms");
    // Backoff: retry_base_delay_ms = 50 is the first delay (with jitter).
    assert!(d > 0 && d <= 50, "backoff delay: {}", r[0]);
    assert!(
        r[0]["reason"].as_str().unwrap_or("").contains("503"),
        "{}",
        r[0]
    );
    assert_eq!(text_of(&frames), "back soon");
    assert_eq!(srv.requests_with("id=r503").len(), 2);
}

#[test]
fn retry_anthropic_529_overloaded() {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(Api::Anthropic, &srv);
    let (frames, resp) = run(&mut rpc, "1", "busy day [[fail=529 id=r529]]");
    assert_ok(&resp, &rpc);
    let r = retries(&frames);
    assert_eq!(r.len(), 1, "{frames:?}");
    let reason = r[0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("529"), "{}", r[0]);
    assert!(reason.contains("overloaded_error"), "{}", r[0]);
    assert!(r[0]["delay_ms"].as_u64().is_some_and(|d| d > 0), "{}", r[0]);
    assert_eq!(text_of(&frames), "busy day");
}

// ----------------------------------------------------- 5. persistent 500

both!(persistent_500_gives_up);

fn persistent_500_gives_up(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    let t0 = Instant::now();
    let (frames, resp) = run(&mut rpc, "1", "doomed [[fail=500 fail_times=999 id=p500]]");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "gave up only after {took:?}"
    );
    let err = failure(&resp);
    assert!(err.contains("HTTP 500"), "{err}");
    let provider_message = match api {
        Api::Anthropic => "Internal server error",
        Api::OpenAi => "The server had an error while processing your request.",
    };
    assert!(err.contains(provider_message), "{err}");
    // max_retries = 3: four attempts in all.
    assert!(err.contains("gave up after 4 attempts"), "{err}");
    let r = retries(&frames);
    let attempts: Vec<u64> = r.iter().map(|f| f["attempt"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 3], "{frames:?}");
    assert_eq!(agent_end(&frames)["stop_reason"], "error");
    assert_eq!(srv.requests_with("id=p500").len(), 4);
    // The host keeps working. (A fresh session: on Anthropic the failed user
    // message would be merged with the next one, directives included.)
    let ns = rpc.call(json!({"type": "new_session"}), "ns");
    assert_eq!(ns["ok"], true, "{ns}");
    let (frames, resp) = run(&mut rpc, "2", "still here");
    assert_ok(&resp, &rpc);
    assert_eq!(text_of(&frames), "still here");
}

// ------------------------------------------------- 6. 400/401 not retried

both!(client_errors_are_not_retried);

fn client_errors_are_not_retried(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    let cases: &[(u16, &str, &str)] = match api {
        Api::Anthropic => &[
            (
                400,
                "invalid_request_error",
                "fake_llm: invalid request (fail=400)",
            ),
            (401, "authentication_error", "invalid x-api-key"),
        ],
        Api::OpenAi => &[
            (
                400,
                "invalid_request_error",
                "fake_llm: invalid request (fail=400)",
            ),
            (401, "invalid_request_error", "Incorrect API key provided."),
        ],
    };
    for &(status, kind, message) in cases {
        // A fresh session each time, so directives of the failed prompt are
        // not merged into the next (Anthropic joins adjacent user messages).
        let ns = rpc.call(json!({"type": "new_session"}), &format!("ns{status}"));
        assert_eq!(ns["ok"], true, "{ns}");
        let tag = format!("id=c{status}");
        let (frames, resp) = run(
            &mut rpc,
            &format!("p{status}"),
            &format!("no [[fail={status} fail_times=999 {tag}]]"),
        );
        assert!(retries(&frames).is_empty(), "{status} retried: {frames:?}");
        let err = failure(&resp);
        assert!(err.contains(&format!("HTTP {status}")), "{err}");
        assert!(
            err.contains(kind),
            "{status} error names its type {kind}: {err}"
        );
        assert!(
            err.contains(message),
            "{status} error has the provider's message: {err}"
        );
        assert_eq!(srv.requests_with(&tag).len(), 1, "{status} sent once");
    }
}

// ---------------------------------------------------------- 7. cut stream

both!(cut_stream_fails_and_keeps_partial);

fn cut_stream_fails_and_keeps_partial(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    for style in ["abort", "eof", "reset"] {
        let tag = format!("id=cut{style}");
        let (frames, resp) = run(
            &mut rpc,
            style,
            &format!("[[n=10 cut=3 cut_style={style} {tag}]]"),
        );
        let err = failure(&resp);
        let lower = err.to_lowercase();
        assert!(
            [
                "cut",
                "ended",
                "early",
                "incomplete",
                "before",
                "broke",
                "reset",
                "closed"
            ]
            .iter()
            .any(|w| lower.contains(w)),
            "cut_style={style}: the error says the stream was cut: {err}"
        );
        assert!(
            lower.contains("not retried"),
            "cut_style={style}: says it was not retried after deltas: {err}"
        );
        assert_eq!(
            events(&frames, "text_delta").len(),
            3,
            "cut_style={style}: {frames:?}"
        );
        assert_eq!(text_of(&frames), "tok tok tok ");
        assert!(
            retries(&frames).is_empty(),
            "cut_style={style}: no auto_retry after deltas were shown: {frames:?}"
        );
        assert_eq!(
            srv.requests_with(&tag).len(),
            1,
            "cut_style={style}: not re-sent"
        );
        let msgs = messages(&mut rpc, &format!("m-{style}"));
        let last = msgs.last().expect("messages");
        assert_eq!(last["role"], "assistant", "{last}");
        assert_eq!(message_text(last), "tok tok tok ", "{last}");
        assert!(
            last["error"].as_str().is_some_and(|e| !e.is_empty()),
            "cut_style={style}: partial answer carries an error marker: {last}"
        );
        assert!(last.get("aborted").is_none() || last["aborted"] == false);
    }
}

// ------------------------------------------------------------ 8. malformed

both!(malformed_sse_fails_cleanly);

fn malformed_sse_fails_cleanly(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    let (frames, resp) = run(&mut rpc, "1", "[[n=5 malformed=1 id=mal]]");
    let err = failure(&resp);
    assert!(err.to_lowercase().contains("malformed"), "{err}");
    assert!(retries(&frames).is_empty(), "{frames:?}");
    assert_eq!(events(&frames, "text_delta").len(), 2, "{frames:?}");
    assert_eq!(srv.requests_with("id=mal").len(), 1);
    let (frames, resp) = run(&mut rpc, "2", "are you ok");
    assert_ok(&resp, &rpc);
    assert_eq!(text_of(&frames), "are you ok");
}

// ---------------------------------------------------------- 9. missing key

both!(missing_key_is_named);

fn model_entry(rpc: &mut Rpc, id: &str, model: &str) -> Value {
    let r = rpc.call(json!({"type": "get_available_models"}), id);
    assert_eq!(r["ok"], true, "{r}");
    r["models"]
        .as_array()
        .expect("models")
        .iter()
        .find(|m| m["id"] == model)
        .cloned()
        .unwrap_or_else(|| panic!("{model} not listed: {r}"))
}

fn missing_key_is_named(api: Api) {
    let srv = FakeServer::start();
    // Unset (or, if the test environment itself has a key, empty), then empty.
    let inherited = std::env::var_os(api.key_var()).is_some();
    for (label, value) in [("unset", None), ("empty", Some(""))] {
        let mut s = Spawn::new()
            .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
            .env(api.base_var(), &api.base_url(srv.port))
            .model(api.model());
        match value {
            Some(v) => s = s.env(api.key_var(), v),
            None if inherited => s = s.env(api.key_var(), ""),
            None => {}
        }
        let mut rpc = s.start();
        rpc.ready();
        let entry = model_entry(&mut rpc, "models", api.model());
        assert_eq!(entry["available"], false, "{label}: {entry}");
        let (frames, resp) = run(&mut rpc, "1", "hello");
        let err = failure(&resp);
        assert!(err.contains(api.key_var()), "{label}: {err}");
        assert!(text_of(&frames).is_empty());
    }
    assert!(srv.api_requests().is_empty(), "no request without a key");

    let mut rpc = start(api, &srv);
    let entry = model_entry(&mut rpc, "models", api.model());
    assert_eq!(entry["available"], true, "with the key: {entry}");
}

// --------------------------------------------------------------- 10. abort

both!(abort_mid_stream_closes_the_connection);

fn abort_mid_stream_closes_the_connection(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    rpc.send(
        json!({"type": "prompt", "id": "1", "message": "[[n=200 delay_ms=50 usage_in=37 id=ab]]"}),
    );
    rpc.until("first delta", |f| {
        f["type"] == "message_update" && f["event"]["type"] == "text_delta"
    });
    let t0 = Instant::now();
    rpc.send(json!({"type": "abort", "id": "a"}));
    let (_, end) = rpc.until("agent_end", |f| f["type"] == "agent_end");
    let took = t0.elapsed();
    assert_eq!(end["stop_reason"], "aborted", "{end}");
    assert!(
        took < Duration::from_secs(1),
        "agent_end {took:?} after abort"
    );
    // Anthropic reports input usage up front: an aborted round still counts
    // it (regression: it was only taken from message_stop, so it was 0).
    // The OpenAI stream sends usage only at its end, so there it is unknown.
    if api == Api::Anthropic {
        assert_eq!(end["usage"]["input_tokens"], 37, "{end}");
    }
    let resp = rpc.answer(&json!("1"));
    assert_eq!(resp["ok"], true, "{resp}");
    assert_eq!(resp["cancelled"], true, "{resp}");
    let abort = rpc.answer(&json!("a"));
    assert_eq!(abort["ok"], true, "{abort}");

    // The server sees the client hang up.
    let deadline = Instant::now() + Duration::from_secs(3);
    let outcome = loop {
        let reqs = srv.requests_with("id=ab");
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        let outcome = reqs[0]["outcome"].clone();
        if !outcome.is_null() || Instant::now() > deadline {
            break outcome;
        }
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_eq!(
        outcome, "client_gone",
        "the request should end as client_gone within 3 s"
    );
    let msgs = messages(&mut rpc, "m");
    let last = msgs.last().unwrap();
    assert_eq!(last["role"], "assistant");
    assert_eq!(last["aborted"], true, "{last}");
}

// -------------------------------------------------------------- 11. headers

both!(request_headers_and_body);

fn request_headers_and_body(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = spawn(api, &srv)
        .arg("--system-prompt")
        .arg("You are terse.")
        .start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "1", "hi");
    assert_ok(&resp, &rpc);
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r["method"], "POST");
    assert_eq!(r["path"], api.path());
    let h = &r["headers"];
    let b = &r["body"];
    assert_eq!(b["stream"], true, "{b}");
    assert!(
        h["content-type"]
            .as_str()
            .unwrap_or("")
            .starts_with("application/json"),
        "{h}"
    );
    match api {
        Api::Anthropic => {
            assert_eq!(h["x-api-key"], ANTHROPIC_KEY, "{h}");
            assert_eq!(h["anthropic-version"], "2023-06-01", "{h}");
            assert!(h.get("authorization").is_none(), "{h}");
            assert!(b["max_tokens"].as_u64().is_some_and(|n| n > 0), "{b}");
            assert_eq!(b["system"], "You are terse.", "{b}");
            assert_eq!(b["model"], "claude-sonnet-5-5", "{b}");
            assert_eq!(b["messages"][0]["role"], "user", "{b}");
        }
        Api::OpenAi => {
            assert_eq!(h["authorization"], format!("Bearer {OPENAI_KEY}"), "{h}");
            assert!(h.get("x-api-key").is_none(), "{h}");
            assert_eq!(b["stream_options"]["include_usage"], true, "{b}");
            assert_eq!(
                b["messages"][0],
                json!({"role": "system", "content": "You are terse."}),
                "{b}"
            );
            assert_eq!(b["messages"][1]["role"], "user", "{b}");
            assert_eq!(b["model"], "gpt-4o-mini", "{b}");
        }
    }
}

// -------------------------------------------------------------- 12. no leaks

both!(keys_never_leak);

fn keys_never_leak(api: Api) {
    let srv = FakeServer::start();
    let (_cfg, path) = config_file(RETRY_CONFIG);
    let mut rpc = spawn(api, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--log-level")
        .arg("trace")
        .start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "1", "hello secret world");
    assert_ok(&resp, &rpc);
    let (_, resp) = run(&mut rpc, "2", "[[fail=401 id=leak401]]");
    failure(&resp);
    let (_, resp) = run(
        &mut rpc,
        "3",
        "again [[fail=429 retry_after=0.05 id=leak429]]",
    );
    assert_ok(&resp, &rpc);
    let (_, resp) = run(&mut rpc, "4", "[[n=5 cut=2 id=leakcut]]");
    failure(&resp);
    for cmd in [
        "get_state",
        "get_session_stats",
        "get_messages",
        "get_available_models",
        "list_sessions",
    ] {
        let r = rpc.call(json!({"type": cmd}), cmd);
        assert_eq!(r["ok"], true, "{r}");
    }
    let bye = rpc.call(json!({"type": "shutdown"}), "bye");
    assert_eq!(bye["ok"], true, "{bye}");
    rpc.drain(Duration::from_secs(5));
    let status = rpc.wait(Duration::from_secs(5));
    assert!(status.is_some(), "host did not exit after shutdown");

    let secret = api.secret();
    for f in &rpc.seen {
        assert!(!f.to_string().contains(secret), "key leaked on stdout: {f}");
    }
    let stderr = rpc.stderr();
    assert!(
        !stderr.is_empty(),
        "--log-level trace should log something (else this test proves little)"
    );
    if let Some(pos) = stderr.find(secret) {
        let from = stderr[..pos]
            .char_indices()
            .rev()
            .nth(200)
            .map_or(0, |(i, _)| i);
        let to = (pos + 200).min(stderr.len());
        panic!(
            "key leaked on stderr: …{}…",
            stderr.get(from..to).unwrap_or(&stderr[from..])
        );
    }
    let files = files_under(&rpc.data);
    assert!(!files.is_empty(), "the session was written to the data dir");
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "key leaked into {}",
            file.display()
        );
    }
}

// ---------------------------------------------------------- 13. idle timeout

both!(idle_timeout_fails_without_retry);

fn idle_timeout_fails_without_retry(api: Api) {
    let srv = FakeServer::start();
    let (_cfg, path) = config_file(RETRY_CONFIG);
    let mut rpc = spawn(api, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--provider-idle-timeout")
        .arg("1")
        .start();
    rpc.ready();
    let t0 = Instant::now();
    let (frames, resp) = run(&mut rpc, "1", "[[n=3 stall_ms=5000 id=idle]]");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "idle timeout of 1 s took {took:?}"
    );
    let err = failure(&resp);
    let lower = err.to_lowercase();
    assert!(
        lower.contains("silent") || lower.contains("idle"),
        "mentions the silence/idle timeout: {err}"
    );
    assert!(
        !lower.contains("extension"),
        "an HTTP provider is not an extension: {err}"
    );
    assert_eq!(events(&frames, "text_delta").len(), 1, "{frames:?}");
    assert!(
        retries(&frames).is_empty(),
        "not retried after a delta: {frames:?}"
    );
    assert_eq!(srv.requests_with("id=idle").len(), 1);
}

/// A retry the host announced (`auto_retry` with a delay longer than
/// `--provider-idle-timeout`) is a wait, not a silent provider: the turn
/// must not be failed by the idle timer meanwhile.
fn announced_retry_outlives_idle_timeout(api: Api) {
    let srv = FakeServer::start();
    let (_cfg, path) = config_file(RETRY_CONFIG);
    let mut rpc = spawn(api, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--provider-idle-timeout")
        .arg("1")
        .start();
    rpc.ready();
    let (frames, resp) = run(
        &mut rpc,
        "1",
        "patience [[fail=429 retry_after=1.5 id=slowretry]]",
    );
    let r = retries(&frames);
    assert_eq!(r.len(), 1, "{frames:?}");
    assert_eq!(r[0]["delay_ms"], 1500, "{}", r[0]);
    assert_eq!(
        resp["ok"], true,
        "the host announced a retry in 1500 ms, then failed the turn: {resp}"
    );
    assert_eq!(text_of(&frames), "patience");
}

/// A server slow to send its response head: whatever the host decides,
/// the message must describe an HTTP provider, not an extension.
fn slow_response_head_error_names_http(api: Api) {
    let srv = FakeServer::start();
    let (_cfg, path) = config_file(RETRY_CONFIG);
    let mut rpc = spawn(api, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--provider-idle-timeout")
        .arg("1")
        .start();
    rpc.ready();
    let t0 = Instant::now();
    let (_, resp) = run(&mut rpc, "1", "[[head_ms=3000 id=slowhead]]");
    assert!(t0.elapsed() < Duration::from_secs(12));
    let err = failure(&resp);
    assert!(err.contains("1 s"), "names the timeout: {err}");
    assert!(
        !err.to_lowercase().contains("extension"),
        "an HTTP provider is not an extension: {err}"
    );
}

both!(
    announced_retry_outlives_idle_timeout,
    slow_response_head_error_names_http
);

// --------------------------------------------------------- 14. config errors

#[test]
fn config_errors_name_file_line_and_field() {
    let cases = [
        (
            "unknown key",
            "[http]\nretry_base_delay_ms = 50\nmax_retriez = 3\n",
            "line 3",
            "max_retriez",
        ),
        (
            "bad type",
            "# retries\n[http]\nmax_retries = \"three\"\n",
            "line 3",
            "max_retries",
        ),
        (
            "bad type in a provider",
            "[providers.local]\nkind = \"openai\"\nbase_url = 42\n",
            "line 3",
            "base_url",
        ),
        (
            "unknown key in a provider",
            "default_model = \"gpt-4o-mini\"\n\n[providers.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key = \"x\"\n",
            "line 6",
            "api_key",
        ),
    ];
    for (label, text, line, field) in cases {
        let (_dir, path) = config_file(text);
        let mut rpc = Spawn::new()
            .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
            .arg("--config")
            .arg(&path)
            .start();
        let f = rpc.recv();
        assert_eq!(f["type"], "error", "{label}: start-up error frame, got {f}");
        assert!(f["id"].is_null(), "{label}: {f}");
        assert_eq!(f["code"], "invalid_params", "{label}: {f}");
        let msg = f["message"].as_str().unwrap_or("");
        assert!(msg.contains(&path), "{label}: names the file: {msg}");
        assert!(msg.contains(line), "{label}: names {line}: {msg}");
        assert!(
            msg.contains(field),
            "{label}: names the field {field}: {msg}"
        );
        let status = rpc.wait(Duration::from_secs(5)).expect("exits");
        assert_eq!(status.code(), Some(2), "{label}: exit status");
        assert!(rpc.recv_within(Duration::from_millis(200)).is_none());
    }
}

// -------------------------------------------------------------- 15. model ids

#[test]
fn model_id_rules_through_set_model() {
    let mut rpc = Spawn::new().env("XDG_CONFIG_HOME", NO_CONFIG_HOME).start();
    rpc.ready();
    for model in [
        "openrouter/anthropic/claude-sonnet-4",
        "ollama/qwen2.5:7b",
        "claude-sonnet-5-5",
        "gpt-4o-mini",
    ] {
        let r = rpc.call(json!({"type": "set_model", "model": model}), model);
        assert_eq!(r["type"], "response", "{model}: {r}");
        assert_eq!(r["ok"], true, "{model}: {r}");
        assert_eq!(r["model"], model, "{model}: {r}");
    }
    let state = rpc.call(json!({"type": "get_state"}), "st");
    assert_eq!(state["model"], "gpt-4o-mini", "{state}");
    for model in ["nonsense-name", "unknownprov/x", "/x", "openai/"] {
        let r = rpc.call(json!({"type": "set_model", "model": model}), model);
        assert_eq!(r["type"], "error", "{model}: {r}");
        assert_eq!(r["code"], "not_found", "{model}: {r}");
        assert!(
            r["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{model}: {r}"
        );
    }
    let state = rpc.call(json!({"type": "get_state"}), "st2");
    assert_eq!(
        state["model"], "gpt-4o-mini",
        "rejected set_model changed nothing: {state}"
    );
}

#[test]
fn unknown_provider_in_model_flag_is_a_startup_error() {
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .model("unknownprov/x")
        .start();
    let f = rpc.recv();
    assert_eq!(f["type"], "error", "{f}");
    assert_eq!(f["code"], "not_found", "{f}");
    assert!(
        f["message"].as_str().unwrap_or("").contains("unknownprov"),
        "{f}"
    );
    let status = rpc.wait(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(2));
}

// ---------------------------------------------------------- 16. chunked SSE

both!(chunked_stream_yields_exact_text);

fn chunked_stream_yields_exact_text(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    let text = "Grüße, 世界! the quick brown fox — naïve café ☕ jumps";
    let (frames, resp) = run(
        &mut rpc,
        "1",
        &format!("{text} [[chunked=1 thinking=2 usage_in=40 usage_out=9]]"),
    );
    assert_ok(&resp, &rpc);
    assert_eq!(text_of(&frames), text);
    assert_eq!(thinking_of(&frames), "hmm hmm ");
    let u = usage_tuple(&agent_end(&frames)["usage"]);
    assert_eq!((u.0, u.1), (40, 9), "{u:?}");
    // And a chunked tool call.
    let (frames, resp) = run(
        &mut rpc,
        "2",
        r#"[[chunked=1 seed=7 tool=read input={"path":"ü/世界.txt"}]]"#,
    );
    assert_ok(&resp, &rpc);
    let ends = events(&frames, "toolcall_end");
    assert_eq!(ends.len(), 1, "{frames:?}");
    assert_eq!(ends[0]["input"], json!({"path": "ü/世界.txt"}));
}

// ---------------------------------------------------------------- latency

both!(latency);

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Sends `message`, timestamps (CLOCK_MONOTONIC) the send, the first
/// text_delta and agent_end.
fn timed_prompt(rpc: &mut Rpc, id: &str, message: &str) -> (f64, f64, f64) {
    let sent = monotonic();
    rpc.send(json!({"type": "prompt", "id": id, "message": message}));
    let mut delta = None;
    let mut end = None;
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let f = rpc
            .recv_within(deadline.saturating_duration_since(Instant::now()))
            .expect("frame");
        let now = monotonic();
        if f["type"] == "message_update" && f["event"]["type"] == "text_delta" && delta.is_none() {
            delta = Some(now);
        }
        if f["type"] == "agent_end" {
            end = Some(now);
        }
        if f["type"] == "response" && f["id"] == id {
            assert_eq!(f["ok"], true, "{f}");
            return (sent, delta.expect("a text delta"), end.expect("agent_end"));
        }
    }
}

/// Prints medians (ms) over 20 prompts; asserts nothing about speed.
///
/// The fake server logs times per request, not per event: `time` (request
/// arrival) and `end_time` (after the last byte was written), both
/// CLOCK_MONOTONIC, the clock read here at each frame's arrival. With
/// `[[n=1 head_ms=0]]`:
/// - request at server → first text_delta frame: the fallback metric; it
///   includes the server's own work (parsing, validation, status line and
///   the events before the delta), so it bounds the host's per-event
///   latency from above;
/// - server end_time → agent_end frame: the last event's decoding plus the
///   end of the turn (session append and fsync) and the frame write;
/// - prompt sent → request at server: the host's request set-up.
///
/// (An attempt to date the delta itself via `delay_ms` + `end_time` was
/// dropped: Python's sleep overshoot, ~0.5–1 ms, exceeds what is measured.)
fn latency(api: Api) {
    const N: usize = 20;
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    // Warm up (connection, client set-up).
    timed_prompt(&mut rpc, "w", "warm up");
    let mut runs = Vec::new();
    for i in 0..N {
        runs.push(timed_prompt(
            &mut rpc,
            &format!("a{i}"),
            &format!("[[n=1 head_ms=0 id=la{i}]]"),
        ));
    }
    let reqs = srv.api_requests();
    let ms = |s: f64| s * 1000.0;
    let (mut send_to_arrival, mut arrival_to_delta, mut end_to_agent_end) =
        (vec![], vec![], vec![]);
    for (i, (sent, delta, end)) in runs.iter().enumerate() {
        let tag = format!("id=la{i}");
        let r = reqs
            .iter()
            .find(|r| {
                r["scenario"]
                    .as_str()
                    .is_some_and(|s| s.split_whitespace().any(|w| w == tag))
            })
            .unwrap_or_else(|| panic!("no request {tag}"));
        let arrival = r["time"].as_f64().expect("time");
        let finished = r["end_time"].as_f64().expect("end_time");
        send_to_arrival.push(ms(arrival - sent));
        arrival_to_delta.push(ms(delta - arrival));
        end_to_agent_end.push(ms(end - finished));
    }
    let max = |v: &[f64]| v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (m1, m2, m3) = (
        max(&send_to_arrival),
        max(&arrival_to_delta),
        max(&end_to_agent_end),
    );
    println!(
        "LATENCY {api:?} (ms, median/max of {N}): prompt sent→request at server {:.3}/{m1:.3}; \
         request at server→first text_delta frame {:.3}/{m2:.3}; \
         server end_time→agent_end frame {:.3}/{m3:.3}",
        median(&mut send_to_arrival),
        median(&mut arrival_to_delta),
        median(&mut end_to_agent_end),
    );
}
