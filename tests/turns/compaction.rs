//! Compaction of long sessions (issue 12) against the real binary and the
//! fake HTTP server (`fixtures/http/fake_llm.py` with `--context-limit`,
//! which rejects oversized requests with each API's real error body and
//! answers summarisation requests with `FAKE SUMMARY of N transcript
//! lines`): on overflow, at the threshold, on demand (`compact`), abort,
//! resume, `get_messages {all}`, `set_auto_compaction`.
//!
//! The `measure_*` test prints figures (`--nocapture`); speed is never
//! asserted.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::fake_http::{Api, FakeServer};
use crate::common::*;
use serde_json::{json, Value};
use tempfile::TempDir;

const MARKER: &str = "[Summary of the earlier conversation]";

// Every request the host sends carries the system prompt and the tool
// definitions, about 1 505 tokens as the fake counts them (290 of them the
// `task` tool's): the limits below are that plus what each test needs.

/// The settings of one host: the model's configured window and the
/// compaction keys.
struct Setup {
    window: u64,
    keep: u64,
    reserve: u64,
}

fn config(api: Api, srv: &FakeServer, s: &Setup) -> (TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[providers.fake]\nkind = \"{kind}\"\nbase_url = \"{url}\"\napi_key_env = \"FAKE_LLM_KEY\"\n\
         [[providers.fake.models]]\nid = \"m\"\ncontext_window = {window}\n\n\
         [compaction]\nkeep_tokens = {keep}\nreserve_tokens = {reserve}\n",
        kind = api.kind(),
        url = api.base_url(srv.port),
        window = s.window,
        keep = s.keep,
        reserve = s.reserve,
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).expect("write config");
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

fn host(api: Api, srv: &FakeServer, s: &Setup, data: &Path, extra: &[&str]) -> (Rpc, TempDir) {
    let (dir, path) = config(api, srv, s);
    let mut spawn = Spawn::new()
        .data(data)
        .env("XDG_CONFIG_HOME", "/nonexistent/agent-rpc-compaction-tests")
        .env("FAKE_LLM_KEY", "sk-test")
        .model("fake/m")
        .arg("--config")
        .arg(&path);
    for a in extra {
        spawn = spawn.arg(a);
    }
    let mut rpc = spawn.start();
    rpc.ready();
    (rpc, dir)
}

/// A prompt of about `tokens` tokens (4 chars each), tagged so the test
/// The window the manual-compaction tests use: large, with a small keep
/// budget so that a compaction leaves only the last turn verbatim.
const ROOMY: Setup = Setup {
    window: 100_000,
    keep: 250,
    reserve: 1_000,
};

/// `n` turns whose prompts are about `tokens` tokens, `TAG0…`, `TAG1…`.
fn long_turns(rpc: &mut Rpc, tag: &str, n: usize, tokens: usize) {
    for i in 0..n {
        ok_prompt(
            rpc,
            &format!("p{i}"),
            &long_prompt(&format!("{tag}{i}"), tokens),
        );
    }
}

/// A host with three turns of about 100 tokens each (`M0…`, `M1…`, `M2…`).
fn three_long_turns(api: Api, srv: &FakeServer, data: &Path) -> (Rpc, TempDir) {
    let (mut rpc, cfg) = host(api, srv, &ROOMY, data, &[]);
    long_turns(&mut rpc, "M", 3, 100);
    (rpc, cfg)
}

/// can tell later whether the model was sent it.
fn long_prompt(tag: &str, tokens: usize) -> String {
    let mut s = format!("{tag} ");
    while s.len() < tokens * 4 {
        s.push_str("word ");
    }
    s
}

/// The API requests' bodies as one string each, in order.
fn bodies(srv: &FakeServer) -> Vec<(Value, String)> {
    srv.api_requests()
        .into_iter()
        .map(|r| {
            let body = r["body"].to_string();
            (r, body)
        })
        .collect()
}

fn session_file(rpc: &mut Rpc, data: &Path) -> std::path::PathBuf {
    let id = get_state(rpc, "state-for-file")["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    data.join("sessions").join(format!("{id}.jsonl"))
}

fn entries(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .expect("session file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Overflow: the fake's real limit is below what the config claims, so the
/// host learns it from the provider's 400, compacts once and retries; the
/// retried request is under the limit and carries the summary.
fn overflow_compacts_and_retries(api: Api) {
    let srv = FakeServer::with_args(&["--context-limit", "2800"]);
    let data = tempfile::tempdir().unwrap();
    let setup = Setup {
        window: 100_000,
        keep: 300,
        reserve: 1_000,
    };
    let (mut rpc, _cfg) = host(api, &srv, &setup, data.path(), &[]);
    long_turns(&mut rpc, "OLD", 3, 200);
    let (frames, resp) = prompt(&mut rpc, "p3", &long_prompt("NEWEST", 300));
    assert_ok(&resp, &rpc);
    let start = the_frame(&frames, "compaction_start");
    assert_eq!(start["reason"], "overflow");
    assert_eq!(start["prompt_id"], resp["prompt_id"]);
    let end = the_frame(&frames, "compaction_end");
    assert_eq!(end["ok"], true, "{end}");
    assert!(end["summary"].as_str().unwrap().starts_with("FAKE SUMMARY"));
    let (after, before) = (end["tokens_after"].as_u64(), end["tokens_before"].as_u64());
    assert!(after.zip(before).is_some_and(|(a, b)| a < b), "{end}");
    // Inside the turn: after agent_start, before the response.
    let pos = |t: &str| frames.iter().position(|f| f["type"] == t).unwrap();
    assert!(pos("agent_start") < pos("compaction_start"));

    let reqs = bodies(&srv);
    let rejected: Vec<_> = reqs.iter().filter(|(r, _)| r["status"] == 400).collect();
    assert!(!rejected.is_empty(), "the fake never rejected a request");
    assert!(rejected[0].1.contains("NEWEST"));
    let (last, body) = reqs.last().unwrap();
    assert_eq!(last["status"], 200, "{last}");
    assert!(last["summary_request"].is_null());
    assert!(
        body.contains(MARKER) && body.contains("FAKE SUMMARY"),
        "{body}"
    );
    assert!(body.contains("NEWEST") && !body.contains("OLD0"));
    assert!(reqs.iter().any(|(r, _)| r["summary_request"] == true));

    let file = session_file(&mut rpc, data.path());
    let compactions: Vec<_> = entries(&file)
        .into_iter()
        .filter(|e| e["type"] == "compaction")
        .collect();
    assert_eq!(compactions.len(), 1);
    assert!(compactions[0]["first_kept"].as_u64().unwrap() > 0);
}

/// A request still too long after one compaction fails the turn with a
/// clear `provider_error`, and is not compacted a second time.
fn second_overflow_fails_the_turn(api: Api) {
    let srv = FakeServer::with_args(&["--context-limit", "2100"]);
    let data = tempfile::tempdir().unwrap();
    let setup = Setup {
        window: 100_000,
        keep: 100,
        reserve: 1_000,
    };
    let (mut rpc, _cfg) = host(api, &srv, &setup, data.path(), &[]);
    ok_prompt(&mut rpc, "p0", &long_prompt("OLD", 100));
    let (frames, resp) = prompt(&mut rpc, "p1", &long_prompt("HUGE", 900));
    assert_eq!(resp["ok"], false, "{resp}");
    assert_eq!(resp["code"], "provider_error");
    let error = resp["error"].as_str().unwrap();
    assert!(
        error.contains("still too long") && error.contains("context window"),
        "{error}"
    );
    let starts = frames
        .iter()
        .filter(|f| f["type"] == "compaction_start")
        .count();
    assert_eq!(starts, 1);
}

/// Threshold: with a small configured window the host compacts before the
/// round that would leave less than the reserve free; the provider never
/// sees an oversized request.
fn threshold_compacts_before_the_round(api: Api) {
    // The fake refuses what exceeds the configured window, so "every
    // request was accepted" below proves the compaction came first.
    let srv = FakeServer::with_args(&["--context-limit", "3300"]);
    let data = tempfile::tempdir().unwrap();
    let setup = Setup {
        window: 3_300,
        keep: 20_000,
        reserve: 400,
    };
    let (mut rpc, _cfg) = host(api, &srv, &setup, data.path(), &[]);
    let mut compacted_at = None;
    for i in 0..8 {
        let (frames, resp) = prompt(
            &mut rpc,
            &format!("p{i}"),
            &long_prompt(&format!("T{i}"), 150),
        );
        assert_ok(&resp, &rpc);
        if let Some(s) = frames.iter().find(|f| f["type"] == "compaction_start") {
            assert_eq!(s["reason"], "threshold");
            compacted_at.get_or_insert(i);
        }
    }
    let at = compacted_at.expect("no threshold compaction in 8 prompts");
    assert!(at >= 2, "compacted too early, at prompt {at}");
    let reqs = bodies(&srv);
    assert!(reqs.iter().all(|(r, _)| r["status"] == 200));
    let (_, body) = reqs.last().unwrap();
    assert!(body.contains(MARKER) && !body.contains("T0 "));
    let view = messages(&mut rpc, "m");
    assert!(message_text(&view[0]).starts_with(MARKER));
}

/// `compact {instructions}`: the instructions reach the summarisation
/// request; `get_messages` shows the summary then the kept messages,
/// `{all: true}` the whole history; a resume sends the summary, not the
/// compacted messages.
fn manual_compact_then_resume(api: Api) {
    let srv = FakeServer::start();
    let data = tempfile::tempdir().unwrap();
    let (mut rpc, _cfg) = three_long_turns(api, &srv, data.path());
    rpc.send(json!({"type": "compact", "id": "c", "instructions": "keep the file paths"}));
    let (frames, resp) = rpc.until("compact answer", |f| is_answer_to(f, "c"));
    assert_ok(&resp, &rpc);
    assert_eq!(
        resp["summary"],
        "FAKE SUMMARY of 4 transcript lines; instructions: keep the file paths"
    );
    assert_eq!(resp["messages_summarized"], 4);
    let (after, before) = (
        resp["tokens_after"].as_u64(),
        resp["tokens_before"].as_u64(),
    );
    assert!(after.zip(before).is_some_and(|(a, b)| a < b), "{resp}");
    let start = the_frame(&frames, "compaction_start");
    assert_eq!(start["reason"], "manual");
    assert!(start.get("prompt_id").is_none());
    let summary_req = srv
        .api_requests()
        .into_iter()
        .find(|r| r["summary_request"] == true)
        .expect("summarisation request");
    let body = summary_req["body"].to_string();
    assert!(body.contains("Additional instructions: keep the file paths"));
    assert!(summary_req["body"].get("tools").is_none(), "tools offered");

    let view = messages(&mut rpc, "m");
    assert_eq!(view.len(), 3);
    assert!(message_text(&view[0]).starts_with(MARKER));
    assert!(message_text(&view[1]).starts_with("M2"));
    let all = call_ok(
        &mut rpc,
        json!({"type": "get_messages", "all": true}),
        "all",
    );
    assert_eq!(all["messages"].as_array().unwrap().len(), 6);
    let id = get_state(&mut rpc, "s")["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    finish(rpc);

    let before = srv.api_requests().len();
    let (mut rpc, _cfg) = host(api, &srv, &ROOMY, data.path(), &["--continue", &id]);
    ok_prompt(&mut rpc, "after", "after resume");
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), before + 1);
    let body = reqs.last().unwrap()["body"].to_string();
    assert!(body.contains(MARKER) && body.contains("M2"), "{body}");
    assert!(!body.contains("M0 ") && !body.contains("M1 "), "{body}");
}

/// `abort` during a `compact` stops it and leaves the session file byte
/// for byte as it was; `get_state` shows `compacting` meanwhile.
fn abort_mid_compaction_changes_nothing(api: Api) {
    let srv = FakeServer::with_args(&["--summary-delay-ms", "5000"]);
    let data = tempfile::tempdir().unwrap();
    let setup = Setup {
        window: 100_000,
        keep: 100,
        reserve: 1_000,
    };
    let (mut rpc, _cfg) = host(api, &srv, &setup, data.path(), &[]);
    long_turns(&mut rpc, "A", 2, 100);
    let file = session_file(&mut rpc, data.path());
    let bytes = std::fs::read(&file).unwrap();
    rpc.send(json!({"type": "compact", "id": "c"}));
    rpc.until("compaction_start", |f| f["type"] == "compaction_start");
    assert_eq!(get_state(&mut rpc, "busy")["compacting"], true);
    let busy = rpc.call(json!({"type": "prompt", "message": "x"}), "px");
    assert_eq!(busy["code"], "busy", "{busy}");
    let sent = Instant::now();
    rpc.send(json!({"type": "abort", "id": "a"}));
    let (frames, compact) = rpc.until("compact answer", |f| is_answer_to(f, "c"));
    eprintln!("abort stopped the compaction in {:?}", sent.elapsed());
    assert_eq!(compact["ok"], true, "{compact}");
    assert_eq!(compact["cancelled"], true, "{compact}");
    let end = the_frame(&frames, "compaction_end");
    assert_eq!(end["ok"], false);
    let abort = rpc.answer(&json!("a"));
    assert_ok(&abort, &rpc);
    assert_eq!(get_state(&mut rpc, "idle")["compacting"], false);
    assert_eq!(std::fs::read(&file).unwrap(), bytes);
    assert_eq!(messages(&mut rpc, "m").len(), 4);
    // The host goes on normally.
    ok_prompt(&mut rpc, "after", "still here");
}

both!(
    overflow_compacts_and_retries,
    second_overflow_fails_the_turn,
    threshold_compacts_before_the_round,
    manual_compact_then_resume,
    abort_mid_compaction_changes_nothing,
);

/// `set_auto_compaction` is stored in the session and restored on resume;
/// `--no-auto-compaction` turns it off for the process; with it off an
/// overflow fails the turn and says how to compact.
#[test]
fn auto_compaction_switch_is_persisted() {
    let api = Api::Anthropic;
    let srv = FakeServer::with_args(&["--context-limit", "1900"]);
    let data = tempfile::tempdir().unwrap();
    let setup = Setup {
        window: 100_000,
        keep: 100,
        reserve: 1_000,
    };
    let (mut rpc, _cfg) = host(api, &srv, &setup, data.path(), &[]);
    assert_eq!(get_state(&mut rpc, "s0")["auto_compaction"], true);
    let r = call_ok(
        &mut rpc,
        json!({"type": "set_auto_compaction", "enabled": false}),
        "off",
    );
    assert_eq!(r["enabled"], false);
    ok_prompt(&mut rpc, "p0", "short one");
    let (frames, resp) = prompt(&mut rpc, "p1", &long_prompt("BIG", 500));
    assert_eq!(resp["code"], "provider_error", "{resp}");
    assert!(resp["error"]
        .as_str()
        .unwrap()
        .contains("auto-compaction is off"));
    assert!(!frames.iter().any(|f| f["type"] == "compaction_start"));
    let id = get_state(&mut rpc, "s1")["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = data.path().join("sessions").join(format!("{id}.jsonl"));
    assert!(entries(&file)
        .iter()
        .any(|e| e["type"] == "auto_compaction" && e["enabled"] == false));
    finish(rpc);

    let (mut rpc, _cfg) = host(api, &srv, &setup, data.path(), &["--continue", &id]);
    assert_eq!(get_state(&mut rpc, "s2")["auto_compaction"], false);
    call_ok(
        &mut rpc,
        json!({"type": "set_auto_compaction", "enabled": true}),
        "on",
    );
    finish(rpc);
    let (mut rpc, _cfg) = host(
        api,
        &srv,
        &setup,
        data.path(),
        &["--continue", &id, "--no-auto-compaction"],
    );
    assert_eq!(get_state(&mut rpc, "s3")["auto_compaction"], false);
    finish(rpc);
    let (mut rpc, _cfg) = host(api, &srv, &setup, data.path(), &["--continue", &id]);
    assert_eq!(get_state(&mut rpc, "s4")["auto_compaction"], true);
}

/// `compact` is refused while a turn runs, and with nothing to compact.
#[test]
fn compact_refusals() {
    let srv = FakeServer::start();
    let data = tempfile::tempdir().unwrap();
    let setup = Setup {
        window: 100_000,
        keep: 100,
        reserve: 1_000,
    };
    let (mut rpc, _cfg) = host(Api::Anthropic, &srv, &setup, data.path(), &[]);
    let r = rpc.call(json!({"type": "compact"}), "empty");
    assert_eq!(r["code"], "not_compacted", "{r}");
    rpc.send(json!({"type": "prompt", "id": "p", "message": "slow [[n=20 delay_ms=50]]"}));
    rpc.until("agent_start", |f| f["type"] == "agent_start");
    let r = rpc.call(json!({"type": "compact"}), "during");
    assert_eq!(r["code"], "busy", "{r}");
    let resp = rpc.answer(&json!("p"));
    assert_ok(&resp, &rpc);
}

/// Figures for the report: tokens before/after compacting a 200-message
/// session, and the time the host adds around the summarisation request
/// (from `compact` sent to its answer, minus the fake's time on it).
#[test]
fn measure_compaction_of_200_messages() {
    let srv = FakeServer::start();
    let data = tempfile::tempdir().unwrap();
    let setup = Setup {
        window: 200_000,
        keep: 20_000,
        reserve: 16_384,
    };
    let (mut rpc, _cfg) = host(Api::Anthropic, &srv, &setup, data.path(), &[]);
    long_turns(&mut rpc, "Q", 100, 400);
    assert_eq!(messages(&mut rpc, "m").len(), 200);
    let sent = Instant::now();
    let resp = call_ok(&mut rpc, json!({"type": "compact"}), "c");
    let total = sent.elapsed();
    let req = srv
        .api_requests()
        .into_iter()
        .find(|r| r["summary_request"] == true)
        .expect("summarisation request");
    let fake =
        Duration::from_secs_f64(req["end_time"].as_f64().unwrap() - req["time"].as_f64().unwrap());
    eprintln!(
        "200 messages: tokens_before {} tokens_after {} messages_summarized {}; compact took {:?}, \
         of which the fake served the summarisation request in {:?}: host overhead {:?}",
        resp["tokens_before"],
        resp["tokens_after"],
        resp["messages_summarized"],
        total,
        fake,
        total.saturating_sub(fake)
    );
    // The kept part is at most 20k; the rest is the tool definitions,
    // the system prompt and the summary.
    assert!(resp["tokens_after"].as_u64().unwrap() <= 20_000 + 3_000);
    assert!(resp["tokens_before"].as_u64().unwrap() > 70_000);
}

/// An extension signals an overflow with `context_overflow` in its error:
/// the turn compacts and retries the round once.
#[test]
fn extension_context_overflow_is_recognised() {
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    rpc.ready();
    // Long enough that a short summary is smaller than what it replaces.
    ok_prompt(&mut rpc, "p0", &"first words ".repeat(100));
    let (frames, resp) = prompt(
        &mut rpc,
        "p1",
        "too big [[n=0 error=\"the prompt does not fit: context_overflow\"]]",
    );
    let start = frames
        .iter()
        .find(|f| f["type"] == "compaction_start")
        .unwrap_or_else(|| panic!("no compaction_start: {resp} {frames:?}"));
    assert_eq!(start["reason"], "overflow");
    let end = the_frame(&frames, "compaction_end");
    // The echo extension summarises (offline), so the history is
    // compacted; the prompt itself still asks for the overflow, so the
    // retried round overflows again and the turn fails, saying why.
    assert_eq!(end["ok"], true, "{end}");
    assert!(
        end["summary"]
            .as_str()
            .unwrap_or("")
            .starts_with("FAKE SUMMARY of "),
        "{end}"
    );
    assert_eq!(resp["ok"], false, "{resp}");
    assert_eq!(resp["code"], "provider_error", "{resp}");
    assert!(
        resp["error"]
            .as_str()
            .unwrap_or("")
            .contains("still too long"),
        "{resp}"
    );
    let view = messages(&mut rpc, "view");
    assert!(message_text(&view[0]).starts_with(MARKER));
}

/// `abort` during a turn's own (threshold) compaction ends the turn
/// `aborted` at once and writes no `compaction` entry.
#[test]
fn abort_during_a_threshold_compaction() {
    let srv = FakeServer::with_args(&["--summary-delay-ms", "5000"]);
    let data = tempfile::tempdir().unwrap();
    let setup = Setup {
        window: 2_000,
        keep: 20_000,
        reserve: 400,
    };
    let (mut rpc, _cfg) = host(Api::OpenAi, &srv, &setup, data.path(), &[]);
    ok_prompt(&mut rpc, "p0", &long_prompt("T0", 300));
    rpc.send(json!({"type": "prompt", "id": "p1", "message": long_prompt("T1", 300)}));
    let (_, start) = rpc.until("compaction_start", |f| f["type"] == "compaction_start");
    assert_eq!(start["reason"], "threshold");
    // The turn reports the compaction to the host beside the event, so
    // get_state may need a moment to show it (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    while get_state(&mut rpc, &format!("s{n}"))["compacting"] != true {
        assert!(
            Instant::now() < deadline,
            "get_state never showed compacting"
        );
        std::thread::sleep(Duration::from_millis(10));
        n += 1;
    }
    rpc.send(json!({"type": "abort", "id": "a"}));
    let resp = rpc.answer(&json!("p1"));
    assert_eq!(resp["cancelled"], true, "{resp}");
    assert_ok(&rpc.answer(&json!("a")), &rpc);
    assert_eq!(get_state(&mut rpc, "after")["compacting"], false);
    let file = session_file(&mut rpc, data.path());
    assert!(!entries(&file).iter().any(|e| e["type"] == "compaction"));
    let view = messages(&mut rpc, "m");
    assert!(!message_text(&view[0]).starts_with(MARKER));
    assert_eq!(view.len(), 3);
}

/// A fork past the compaction keeps the summary (the model must not get
/// the whole history back); a fork before it holds only the messages the
/// summary had not yet replaced (regression: forks dropped the compaction).
#[test]
fn a_fork_keeps_the_compaction_it_includes() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let data = tempfile::tempdir().unwrap();
    let (mut rpc, _cfg) = three_long_turns(api, &srv, data.path());
    let resp = call_ok(&mut rpc, json!({"type": "compact"}), "c");
    assert_eq!(resp["messages_summarized"], 4);

    let fork = call_ok(&mut rpc, json!({"type": "fork"}), "f");
    assert_eq!(fork["message_count"], 6);
    let view = messages(&mut rpc, "m");
    assert_eq!(view.len(), 3, "summary + the kept turn");
    assert!(message_text(&view[0]).starts_with(MARKER));
    let file = data
        .path()
        .join("sessions")
        .join(format!("{}.jsonl", fork["session_id"].as_str().unwrap()));
    assert!(
        entries(&file).iter().any(|e| e["type"] == "compaction"),
        "the fork's file records the compaction"
    );

    // Back to a point before the compaction: plain history.
    let original = fork["forked_from"].as_str().unwrap().to_owned();
    call_ok(
        &mut rpc,
        json!({"type": "switch_session", "session_id": original}),
        "sw",
    );
    call_ok(&mut rpc, json!({"type": "fork", "message_index": 2}), "f2");
    let view = messages(&mut rpc, "m2");
    assert_eq!(view.len(), 2);
    assert!(message_text(&view[0]).starts_with("M0"));
    finish(rpc);
}

/// A "summary" that is not shorter than what it replaces (the echo model
/// repeats the request when its instructions carry a directive) is not
/// applied: the client learns why, with a code of its own (no provider
/// failed), and the history stays as it was (regression: it was recorded
/// and grew the context).
#[test]
fn a_summary_that_does_not_shrink_the_context_is_not_applied() {
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    rpc.ready();
    ok_prompt(&mut rpc, "1", "first prompt");
    ok_prompt(&mut rpc, "2", "second prompt");
    let restate = json!({"type": "compact", "instructions": "[[thinking=0]]"});
    let e = rpc.call(restate, "c");
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], "not_compacted", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .contains("would not shrink"),
        "{e}"
    );
    let view = messages(&mut rpc, "m");
    assert_eq!(view.len(), 4, "history unchanged");
    assert!(!message_text(&view[0]).starts_with(MARKER));
    finish(rpc);
}

/// `auto_compaction` belongs to the session: it follows `switch_session`
/// and `fork`, and a new session starts from the default (regression: the
/// host kept its own copy, which a switch left stale).
#[test]
fn auto_compaction_follows_the_session_in_use() {
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    rpc.ready();
    let auto = |rpc: &mut Rpc, id: &str| get_state(rpc, id)["auto_compaction"].clone();
    ok_prompt(&mut rpc, "1", "a first prompt");
    call_ok(
        &mut rpc,
        json!({"type": "set_auto_compaction", "enabled": false}),
        "off",
    );
    let first = get_state(&mut rpc, "s0")["session_id"].clone();
    assert_eq!(auto(&mut rpc, "s1"), false);

    call_ok(&mut rpc, json!({"type": "new_session"}), "n");
    assert_eq!(
        auto(&mut rpc, "s2"),
        true,
        "a new session starts from the default"
    );

    call_ok(
        &mut rpc,
        json!({"type": "switch_session", "session_id": first}),
        "sw",
    );
    assert_eq!(
        auto(&mut rpc, "s3"),
        false,
        "the switched-to session's own choice"
    );

    call_ok(&mut rpc, json!({"type": "fork"}), "f");
    assert_eq!(auto(&mut rpc, "s4"), false, "a fork keeps it");
    finish(rpc);
}

/// A `compact` sent after a `set_model` that is still being checked does
/// not run on the old model: it is `busy` until the check is done.
#[test]
fn compact_waits_for_a_set_model_sent_before_it() {
    let mut rpc = Spawn::new()
        .ext("echo")
        .ext("hang-init")
        .model(ECHO)
        .arg("--init-timeout")
        .arg("3")
        .start();
    rpc.ready();
    ok_prompt(&mut rpc, "1", "something to summarise");
    rpc.send(json!({"type": "set_model", "id": "m", "model": "hang-init:hang:hang-1"}));
    let busy = rpc.call(json!({"type": "compact"}), "c");
    assert_eq!(busy["code"], "busy", "{busy}");
    assert_eq!(rpc.answer(&json!("m"))["type"], "error");
    finish(rpc);
}

/// `/compact <instructions>` as a prompt runs the `compact` command (no
/// turn: no `agent_start`, nothing stored as a message) and is answered
/// like it, under the prompt's id; a `/compact` follow-up sent during a
/// turn runs after it.
#[test]
fn slash_compact_runs_the_compaction_in_place_of_a_turn() {
    let srv = FakeServer::start();
    let data = tempfile::tempdir().unwrap();
    let (mut rpc, _cfg) = three_long_turns(Api::Anthropic, &srv, data.path());
    rpc.send(json!({"type": "prompt", "id": "c", "message": "/compact keep the file paths"}));
    let (frames, resp) = rpc.until("/compact answer", |f| is_answer_to(f, "c"));
    assert_ok(&resp, &rpc);
    assert_eq!(resp["command"], "prompt");
    assert_eq!(
        resp["summary"],
        "FAKE SUMMARY of 4 transcript lines; instructions: keep the file paths"
    );
    assert_eq!(resp["messages_summarized"], 4);
    let kinds: Vec<&str> = frames.iter().filter_map(|f| f["type"].as_str()).collect();
    assert_eq!(kinds, ["compaction_start", "compaction_end"]);
    let all = call_ok(
        &mut rpc,
        json!({"type": "get_messages", "all": true}),
        "all",
    );
    assert_eq!(all["messages"].as_array().unwrap().len(), 6, "{all}");

    rpc.send(json!({"type": "prompt", "id": "p", "message": "slow [[n=10 delay_ms=20]]"}));
    rpc.send(json!({"type": "follow_up", "id": "f", "message": "/compact"}));
    let (frames, resp) = rpc.until("/compact follow-up", |f| is_answer_to(f, "f"));
    assert_eq!(resp["command"], "follow_up", "{resp}");
    assert!(
        resp.get("summary").is_some() || resp["code"].is_string(),
        "{resp}"
    );
    let ended = frames.iter().position(|f| is_answer_to(f, "p")).unwrap();
    let started = frames
        .iter()
        .position(|f| f["type"] == "compaction_start")
        .unwrap();
    assert!(
        ended < started,
        "the follow-up ran after the turn: {frames:?}"
    );
}
