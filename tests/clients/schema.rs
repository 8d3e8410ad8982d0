//! The published JSON Schema (`rpc schema`, checked in at
//! `schema/agent-rpc.schema.json`) against what the host really does.
//!
//! Both directions, with the `jsonschema` package from PyPI as the judge
//! (`fixtures/schema/validate.py`), not our own code: every frame of real
//! sessions — every command, errors, a tool call behind a permission
//! request, a cancelled permission request, an HTTP retry, an abort with a
//! dropped follow-up and steer — and every command they sent must be valid;
//! lines a client or host must never write must be invalid.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::fake_http::{Api, FakeServer};
use crate::common::*;
use serde_json::{json, Value};

const SCHEMA: &str = "schema/agent-rpc.schema.json";

fn schema_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(SCHEMA)
}

/// Validates each `(definition, instance)`; returns `None` or the error.
fn validate(cases: &[(&str, Value)]) -> Vec<Option<String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schema/validate.py");
    let mut input = Vec::new();
    for (def, instance) in cases {
        serde_json::to_writer(&mut input, &json!({"def": def, "instance": instance}))
            .expect("encode a case");
        input.push(b'\n');
    }
    let (status, stdout, stderr) = bounded::run_bounded(
        Command::new(python_env::python())
            .arg(script)
            .arg(schema_path()),
        &input,
        std::time::Duration::from_secs(60),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the validator failed ({status:?}): {stderr}"
    );
    let results: Vec<Option<String>> = stdout
        .as_bytes()
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_slice(l).expect("validator line");
            match v["valid"].as_bool() {
                Some(true) => None,
                _ => Some(v["error"].as_str().unwrap_or("invalid").to_owned()),
            }
        })
        .collect();
    assert_eq!(results.len(), cases.len(), "one result per case");
    results
}

/// Every frame must be a valid `Frame`, and every command a valid `Command`.
fn assert_all_valid(frames: &[Value], commands: &[Value]) {
    let mut cases: Vec<(&str, Value)> = frames.iter().map(|f| ("Frame", f.clone())).collect();
    cases.extend(commands.iter().map(|c| ("Command", c.clone())));
    let results = validate(&cases);
    let bad: Vec<String> = cases
        .iter()
        .zip(&results)
        .filter_map(|((def, v), r)| r.as_ref().map(|e| format!("{def} {v}: {e}")))
        .collect();
    assert!(
        bad.is_empty(),
        "invalid against the schema:\n{}",
        bad.join("\n")
    );
}

/// Sends commands and records them, for validation as `Command`s.
struct Session {
    rpc: Rpc,
    sent: Vec<Value>,
}

impl Session {
    /// A command that must succeed; its answer, for the test to look into.
    fn ok(&mut self, cmd: Value, id: &str) -> Value {
        let answer = self.call(cmd, id);
        assert_eq!(answer["ok"], true, "{answer}");
        answer
    }

    fn send(&mut self, cmd: Value) {
        self.sent.push(cmd.clone());
        self.rpc.send(cmd);
    }

    fn call(&mut self, mut cmd: Value, id: &str) -> Value {
        cmd["id"] = json!(id);
        self.send(cmd);
        self.rpc.answer(&json!(id))
    }

    fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        self.rpc.until(what, pred).1
    }
}

#[test]
fn the_checked_in_schema_is_what_rpc_schema_prints() {
    let (status, printed, stderr) = bounded::run_bounded(
        Command::new(bin()).arg("schema"),
        b"",
        std::time::Duration::from_secs(60),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "rpc schema: {status:?} {stderr}"
    );
    let checked_in = std::fs::read_to_string(schema_path()).unwrap_or_default();
    assert!(
        printed == checked_in,
        "{SCHEMA} differs from `rpc schema`; regenerate it with:\n    cargo run --quiet -- schema > {SCHEMA}"
    );
    let doc: Value = serde_json::from_str(&printed).expect("the schema is JSON");
    assert_eq!(
        doc["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    for def in [
        "Command",
        "Frame",
        "PromptCommand",
        "GetStateResponse",
        "MessageUpdateFrame",
    ] {
        assert!(doc["$defs"][def].is_object(), "$defs.{def} missing");
    }
}

/// Every command, the errors a client can provoke, tools behind
/// permission requests (granted, and cancelled by an abort), steer and
/// follow-up dropped by an abort, through the echo and slow extensions.
#[test]
fn frames_and_commands_of_an_extension_session_are_valid() {
    let cwd = tempfile::tempdir().expect("cwd");
    let rpc = Spawn::new()
        .ext("echo")
        .ext("slow")
        .model(ECHO)
        .arg("--cwd")
        .arg(cwd.path().to_str().expect("utf-8 cwd"))
        .start();
    let mut s = Session {
        rpc,
        sent: Vec::new(),
    };
    s.rpc.ready();
    for (n, read) in [
        "get_state",
        "get_session_stats",
        "get_messages",
        "get_available_models",
        "list_sessions",
    ]
    .iter()
    .enumerate()
    {
        let r = s.call(json!({"type": read}), &format!("r{n}"));
        assert_eq!(r["ok"], true, "{r}");
    }
    let r = s.call(
        json!({"type": "prompt", "message": "hello [[thinking=2]]"}),
        "p1",
    );
    assert_eq!(r["ok"], true, "{r}");

    // A write asks first; granted, it runs.
    let write = json!({"path": "a.txt", "content": "x\n"});
    s.send(
        json!({"type": "prompt", "id": "p2", "message": format!("[[tool=write input={write}]]")}),
    );
    let ask = s.until("permission_request", |f| f["type"] == "permission_request");
    let id = ask["request_id"].clone();
    let granted = s.call(
        json!({"type": "permission_response", "request_id": id, "decision": "allow_once"}),
        "pr1",
    );
    assert_eq!(granted["ok"], true, "{granted}");
    let r = s.rpc.answer(&json!("p2"));
    assert_eq!(r["ok"], true, "{r}");

    // bash streams its output as tool_execution_update.
    let bash = json!({"command": "echo one; echo two"});
    s.send(json!({"type": "prompt", "id": "p3", "message": format!("[[tool=bash input={bash}]]")}));
    let ask = s.until("permission_request", |f| f["type"] == "permission_request");
    s.call(
        json!({"type": "permission_response", "request_id": ask["request_id"], "decision": "allow_always", "message": "fine"}),
        "pr2",
    );
    s.rpc.answer(&json!("p3"));

    // An abort cancels a pending permission request.
    s.send(
        json!({"type": "prompt", "id": "p4", "message": format!("[[tool=write input={write}]]")}),
    );
    s.until("permission_request", |f| f["type"] == "permission_request");
    // permission_cancelled comes before the abort's answer.
    s.call(json!({"type": "abort"}), "a1");

    // A slow turn: steer, a follow-up, then abort drops both.
    assert_eq!(
        s.call(json!({"type": "set_model", "model": SLOW}), "m1")["ok"],
        true
    );
    s.send(json!({"type": "prompt", "id": "p5", "message": "slowly [[n=50 delay_ms=50]]"}));
    s.until("first delta", |f| f["type"] == "message_update");
    s.call(json!({"type": "steer", "message": "be brief"}), "st1");
    s.send(json!({"type": "follow_up", "id": "f1", "message": "and then?"}));
    let busy = s.call(json!({"type": "prompt", "message": "too soon"}), "busy");
    assert_eq!(busy["code"], "busy", "{busy}");
    let abort = s.call(json!({"type": "abort"}), "a2");
    assert_eq!(abort["command"], "abort", "{abort}");

    // Errors a client can provoke.
    let e = s.call(json!({"type": "steer", "message": "nobody listens"}), "e1");
    assert_eq!(e["code"], "not_streaming", "{e}");
    let e = s.call(
        json!({"type": "permission_response", "request_id": "nope", "decision": "deny"}),
        "e2",
    );
    assert_eq!(e["code"], "not_found", "{e}");
    let e = s.call(json!({"type": "set_model", "model": "nope/nothing"}), "e3");
    assert_eq!(e["type"], "error", "{e}");
    // Invalid commands on purpose: sent, but not recorded as valid ones.
    let e = s.rpc.call(json!({"type": "prompt"}), "e4");
    assert_eq!(e["code"], "invalid_params", "{e}");
    let e = s.rpc.call(json!({"type": "launch"}), "e5");
    assert_eq!(e["code"], "unknown_command", "{e}");
    s.rpc.send_raw(b"not json\n");
    s.until("parse_error", |f| f["code"] == "parse_error");

    s.ok(json!({"type": "set_model", "model": ECHO}), "m2");
    s.ok(
        json!({"type": "set_permission_mode", "mode": "read-only"}),
        "pm",
    );
    s.ok(
        json!({"type": "set_thinking_level", "level": "xhigh"}),
        "tl",
    );
    // The session commands: fork, switch back, a compaction that would not
    // shrink (an error answer: the echo model restates when the
    // instructions carry a directive), one that does, the auto-compaction
    // switch, deleting the fork.
    let fork = s.ok(json!({"type": "fork"}), "f1");
    let original = fork["forked_from"].clone();
    let switched = s.ok(
        json!({"type": "switch_session", "session_id": original}),
        "sw",
    );
    assert_eq!(switched["ok"], true, "{switched}");
    let refused = s.call(
        json!({"type": "compact", "instructions": "[[thinking=0]]"}),
        "c1",
    );
    assert_eq!(refused["code"], "not_compacted", "{refused}");
    let compact = s.call(json!({"type": "compact", "instructions": "short"}), "c2");
    assert_eq!(compact["ok"], true, "{compact}");
    s.ok(
        json!({"type": "set_auto_compaction", "enabled": false}),
        "ac",
    );
    s.ok(json!({"type": "get_messages", "all": true}), "all");
    let exported = s.ok(
        json!({"type": "export_session", "session_id": fork["session_id"]}),
        "ex",
    );
    let copy = json!({"type": "import_session", "data": exported["data"], "new_id": true});
    s.ok(copy, "im");
    let deleted = s.ok(
        json!({"type": "delete_session", "session_id": fork["session_id"]}),
        "d1",
    );
    assert_eq!(deleted["ok"], true, "{deleted}");
    s.ok(json!({"type": "new_session"}), "n1");
    s.ok(json!({"type": "shutdown"}), "bye");
    let status = s.rpc.wait(READ_TIMEOUT).expect("exits after shutdown");
    assert!(status.success(), "{status:?}");
    s.rpc.drain(std::time::Duration::from_millis(200));

    let kinds: std::collections::BTreeSet<String> = s
        .rpc
        .seen
        .iter()
        .map(|f| {
            let event = f["event"]["type"].as_str().unwrap_or("");
            format!("{} {event}", f["type"].as_str().unwrap_or("?"))
        })
        .collect();
    for kind in [
        "ready ",
        "response ",
        "error ",
        "agent_start ",
        "agent_end ",
        "message_update text_delta",
        "message_update thinking_delta",
        "message_update toolcall_start",
        "message_update toolcall_end",
        "tool_execution_start ",
        "tool_execution_update ",
        "tool_execution_end ",
        "permission_request ",
        "permission_cancelled ",
        "model_changed ",
        "compaction_start ",
        "compaction_end ",
    ] {
        assert!(kinds.contains(kind), "no {kind:?} frame seen: {kinds:?}");
    }
    assert_all_valid(&s.rpc.seen, &s.sent);
}

/// The HTTP path: `auto_retry`, tool calls streamed as `toolcall_delta`,
/// and a failed turn's `ok: false` response.
#[test]
fn frames_of_an_http_session_with_a_retry_are_valid() {
    let srv = FakeServer::start();
    let api = Api::OpenAi;
    let config = tempfile::tempdir().expect("config dir");
    let path = config.path().join("config.toml");
    std::fs::write(
        &path,
        "[http]\nretry_base_delay_ms = 50\nmax_retries = 3\nmax_retry_secs = 10\n",
    )
    .expect("write config");
    let rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", "/nonexistent/agent-rpc-schema-tests")
        .env(api.base_var(), &api.base_url(srv.port))
        .env(api.key_var(), "sk-test")
        .model(api.model())
        .arg("--config")
        .arg(path.to_str().expect("utf-8 path"))
        .arg("--permission-mode")
        .arg("allow-all")
        .start();
    let mut s = Session {
        rpc,
        sent: Vec::new(),
    };
    s.rpc.ready();
    let r = s.call(
        json!({"type": "prompt", "message": "after the storm [[fail=429 fail_times=1 retry_after=0.05 id=s1]]"}),
        "h1",
    );
    assert_eq!(r["ok"], true, "{r}");
    let ls = json!({"path": "."});
    let r = s.call(
        json!({"type": "prompt", "message": format!("look [[tool=ls input={ls}]]")}),
        "h2",
    );
    assert_eq!(r["ok"], true, "{r}");
    let todos = json!({"todos": [{"content": "look", "status": "in_progress", "priority": "low"}]});
    let r = s.call(
        json!({"type": "prompt", "message": format!("plan [[tool=todo_write input={todos}]]")}),
        "h2b",
    );
    assert_eq!(r["ok"], true, "{r}");
    s.call(json!({"type": "get_state"}), "h2c");
    s.call(json!({"type": "set_budget", "budget_usd": 100.0}), "h2d");
    let r = s.call(
        json!({"type": "prompt", "message": "[[fail=500 fail_times=9 id=s2]]"}),
        "h3",
    );
    assert_eq!(r["ok"], false, "{r}");
    s.call(json!({"type": "get_session_stats"}), "h4");
    s.ok(json!({"type": "shutdown"}), "bye");
    let status = s.rpc.wait(READ_TIMEOUT).expect("exits after shutdown");
    assert!(status.success(), "{status:?}");
    let seen = &s.rpc.seen;
    for kind in ["auto_retry", "tool_execution_end", "plan"] {
        assert!(seen.iter().any(|f| f["type"] == kind), "no {kind} frame");
    }
    assert!(
        seen.iter().any(|f| f["event"]["type"] == "toolcall_delta"),
        "no toolcall_delta"
    );
    assert_all_valid(seen, &s.sent);
}

/// Lines that break the contract fail validation: the schema is precise,
/// not merely permissive.
#[test]
fn malformed_commands_and_frames_are_invalid() {
    let state = json!({"type": "response", "id": 1, "command": "get_state", "ok": true,
        "streaming": false, "prompt_id": null, "model": null, "message_count": 0,
        "queued": 0, "cwd": "/", "permission_mode": "ask", "thinking_level": "off", "context_files": [], "skills": [], "skill_errors": [], "compacting": false, "auto_compaction": true, "mcp_servers": [], "plan": [],
        "sandbox": {"mode": "workspace-write", "enforced": true}});
    let mut with_session = state.clone();
    with_session["session_id"] = json!("s");
    let cases: Vec<(&str, Value, bool)> = vec![
        ("Command", json!({"type": "prompt", "message": "hi"}), true),
        (
            "Command",
            json!({"type": "prompt", "id": 7, "message": "hi", "attachments": [{"type": "text", "text": "t"}]}),
            true,
        ),
        ("Command", json!({"type": "prompt"}), false),
        ("Command", json!({"type": "prompt", "message": 5}), false),
        (
            "Command",
            json!({"type": "prompt", "id": {"x": 1}, "message": "hi"}),
            false,
        ),
        (
            "Command",
            json!({"type": "prompt", "message": "hi", "attachments": [{"type": "image", "data": "AA=="}]}),
            false,
        ),
        (
            "Command",
            json!({"type": "permission_response", "request_id": "r", "decision": "allow_once"}),
            true,
        ),
        (
            "Command",
            json!({"type": "permission_response", "request_id": "r", "decision": "maybe"}),
            false,
        ),
        (
            "Command",
            json!({"type": "set_permission_mode", "mode": "yolo"}),
            false,
        ),
        (
            "Command",
            json!({"type": "set_thinking_level", "level": "maximum"}),
            false,
        ),
        (
            "Frame",
            json!({"type": "model_changed", "model": "anthropic/claude-sonnet-5-5"}),
            true,
        ),
        ("Frame", json!({"type": "model_changed"}), false),
        (
            "Frame",
            json!({"type": "mcp_server_status", "name": "docs", "status": "ready",
                "tools": ["mcp__docs__search"]}),
            true,
        ),
        (
            "Frame",
            json!({"type": "mcp_server_status", "name": "docs", "status": "failed",
                "error": "cannot start `x`: No such file or directory (os error 2)"}),
            true,
        ),
        (
            "Frame",
            json!({"type": "mcp_server_status", "name": "docs", "status": "stopped"}),
            false,
        ),
        (
            "Frame",
            json!({"type": "plan", "prompt_id": "p1", "entries": [
                {"content": "read", "status": "in_progress", "priority": "high"},
                {"content": "fix", "status": "pending"}]}),
            true,
        ),
        (
            "Frame",
            json!({"type": "plan", "prompt_id": "p1", "entries": [{"content": "x", "status": "done"}]}),
            false,
        ),
        (
            "Command",
            json!({"type": "set_budget", "max_turns": 3, "budget_usd": null}),
            true,
        ),
        (
            "Command",
            json!({"type": "set_budget", "max_turns": "x"}),
            false,
        ),
        ("Command", json!({"type": "launch_missiles"}), false),
        ("Command", json!({"type": "fork", "message_index": 2}), true),
        (
            "Command",
            json!({"type": "fork", "message_index": "2"}),
            false,
        ),
        (
            "Command",
            json!({"type": "switch_session", "session_id": "s"}),
            true,
        ),
        ("Command", json!({"type": "switch_session"}), false),
        (
            "Command",
            json!({"type": "set_auto_compaction", "enabled": false}),
            true,
        ),
        ("Command", json!({"type": "set_auto_compaction"}), false),
        (
            "Command",
            json!({"type": "delete_session", "session_id": 7}),
            false,
        ),
        (
            "Command",
            json!({"type": "get_messages", "all": "yes"}),
            false,
        ),
        (
            "Command",
            json!({"type": "compact", "instructions": 5}),
            false,
        ),
        ("Command", json!({"message": "no type"}), false),
        ("Frame", with_session, true),
        ("Frame", state, false),
        (
            "Frame",
            json!({"type": "message_update", "prompt_id": "p1", "event": {"type": "text_delta", "delta": "x"}}),
            true,
        ),
        (
            "Frame",
            json!({"type": "message_update", "prompt_id": "p1", "event": {"type": "text_delta"}}),
            false,
        ),
        (
            "Frame",
            json!({"type": "message_update", "prompt_id": "p1", "event": {"type": "sparkle"}}),
            false,
        ),
        (
            "Frame",
            json!({"type": "error", "id": null, "code": "parse_error", "message": "m"}),
            true,
        ),
        (
            "Frame",
            json!({"type": "error", "id": null, "code": "oops", "message": "m"}),
            false,
        ),
        (
            "Frame",
            json!({"type": "response", "id": 1, "command": "abort", "ok": true}),
            false,
        ),
        (
            "Frame",
            json!({"type": "agent_end", "prompt_id": "p1", "stop_reason": "end_turn"}),
            false,
        ),
        ("Frame", json!({"type": "telemetry"}), false),
        (
            "Command",
            json!({"type": "prompt", "message": "x", "attachments": [{"type": "image", "mime_type": "image/png", "data": "AA=="}]}),
            true,
        ),
        (
            "Frame",
            json!({"type": "response", "id": 1, "command": "shutdown", "ok": false}),
            false,
        ),
        (
            "Frame",
            json!({"type": "response", "id": 1, "command": "prompt", "ok": true, "cancelled": false}),
            false,
        ),
        (
            "Frame",
            json!({"type": "response", "id": 1, "command": "prompt", "ok": true, "cancelled": true}),
            true,
        ),
        (
            "Frame",
            json!({"type": "response", "id": 1, "command": "prompt", "ok": false, "prompt_id": "p1", "stop_reason": "error", "usage": {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}),
            false,
        ),
        (
            "Frame",
            json!({"type": "agent_start", "prompt_id": "p1", "id": 1, "command": "get_state"}),
            false,
        ),
        (
            "Frame",
            json!({"type": "error", "id": 1, "command": null, "code": "busy", "message": "m"}),
            false,
        ),
    ];
    let instances: Vec<(&str, Value)> = cases.iter().map(|(d, v, _)| (*d, v.clone())).collect();
    let results = validate(&instances);
    for ((def, v, valid), result) in cases.iter().zip(results) {
        assert_eq!(
            result.is_none(),
            *valid,
            "{def} {v} should be {}: {result:?}",
            if *valid { "valid" } else { "invalid" }
        );
    }
}
