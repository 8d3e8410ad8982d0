//! initialize, session/new, a prompt's updates and answer, session/list,
//! and what stdout may carry.

use std::time::Duration;

use serde_json::{json, Value};

use super::{chunk_text, of_kind, started, Acp};
use crate::common::{self, Spawn};

#[test]
fn initialize_advertises_what_the_issue_asks_for() {
    let mut acp = Acp::start(None, &[]);
    let init = acp.initialize();
    assert_eq!(init["protocolVersion"], 1);
    let caps = &init["agentCapabilities"];
    assert_eq!(caps["loadSession"], true);
    assert!(caps["sessionCapabilities"]["list"].is_object(), "{init}");
    assert_eq!(caps["mcpCapabilities"]["http"], true);
    assert_eq!(caps["promptCapabilities"]["image"], true);
    assert_eq!(caps["promptCapabilities"]["embeddedContext"], true);
    assert_eq!(init["agentInfo"]["name"], "agent-rpc");
    assert_eq!(init["agentInfo"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(init["authMethods"], json!([]));
    acp.finish();
}

#[test]
fn session_new_returns_modes_and_config_options() {
    let dir = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(None, &["--permission-mode", "accept-edits"]);
    acp.initialize();
    let new = acp.new_session(dir.path());
    assert!(new["sessionId"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(new["modes"]["currentModeId"], "accept-edits");
    let modes: Vec<&str> = new["modes"]["availableModes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(modes, ["accept-edits", "ask", "allow-all", "read-only"]);
    let options = new["configOptions"].as_array().unwrap();
    let model = options.iter().find(|o| o["id"] == "model").expect("model");
    assert_eq!(model["category"], "model");
    assert_eq!(model["currentValue"], common::ECHO);
    let thinking = options
        .iter()
        .find(|o| o["id"] == "thinking")
        .expect("thinking");
    assert_eq!(thinking["category"], "thought_level");
    assert_eq!(thinking["currentValue"], "off");
    acp.finish();
}

/// A session opened before the model listing finished (its extension is
/// still starting) gets the whole list in a `config_option_update` once
/// the listing is done.
#[test]
fn the_model_list_arrives_as_an_update_for_sessions_opened_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let rpc = common::Spawn::new()
        .ext("slow-init")
        .model("slow-init:echo:echo-1")
        .arg("--acp")
        .start();
    let mut acp = super::Acp::from_rpc(rpc);
    acp.initialize();
    let new = acp.new_session(dir.path());
    let id = new["sessionId"].as_str().unwrap().to_owned();
    let values = |options: &Value| -> Vec<String> {
        options
            .as_array()
            .and_then(|o| o.iter().find(|o| o["id"] == "model"))
            .and_then(|m| m["options"].as_array())
            .map(|o| {
                o.iter()
                    .filter_map(|v| v["value"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Answered while the extension answers `initialize` 800 ms later.
    assert!(
        !values(&new["configOptions"]).contains(&"slow-init:echo:echo-complete".to_owned()),
        "{new}"
    );
    // (The extension coming up announces its model first, still alone.)
    let (_, update) = acp.until(|m| {
        m["method"] == "session/update"
            && m["params"]["update"]["sessionUpdate"] == "config_option_update"
            && values(&m["params"]["update"]["configOptions"]).len() >= 2
    });
    assert_eq!(update["params"]["sessionId"], id.as_str());
    let listed = values(&update["params"]["update"]["configOptions"]);
    assert!(
        listed.contains(&"slow-init:echo:echo-1".to_owned())
            && listed.contains(&"slow-init:echo:echo-complete".to_owned()),
        "{update}"
    );
    acp.finish();
}

#[test]
fn a_prompt_streams_chunks_and_usage_then_answers_end_turn() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    let (updates, answer) = acp.prompt(&session, "hello there friend [[thinking=2]]");
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    assert!(updates.iter().all(|u| u["sessionId"] == session.as_str()));
    assert_eq!(
        chunk_text(&updates, "agent_message_chunk"),
        "hello there friend"
    );
    assert_eq!(chunk_text(&updates, "agent_thought_chunk"), "hmm hmm ");
    let usage = of_kind(&updates, "usage_update");
    assert_eq!(usage.len(), 1, "{updates:?}");
    assert_eq!(usage[0]["size"], 200000);
    assert!(usage[0]["used"].as_u64().unwrap() > 0);
    // Nothing of the turn comes after its answer.
    assert!(acp.rpc.recv_within(Duration::from_millis(300)).is_none());
    acp.finish();
}

#[test]
fn stop_reasons_max_tokens_and_max_turn_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(
        dir.path(),
        &["--max-rounds", "1", "--permission-mode", "allow-all"],
    );
    let (_, answer) = acp.prompt(&session, "cut [[stop=max_tokens]]");
    assert_eq!(answer["result"]["stopReason"], "max_tokens", "{answer}");
    let (_, answer) = acp.prompt(&session, r#"go [[tool=ls input={"path": "."}]]"#);
    assert_eq!(
        answer["result"]["stopReason"], "max_turn_requests",
        "{answer}"
    );
    acp.finish();
}

/// A session's budget (`--max-turns`, provider rounds over the session)
/// ends a turn like `--max-rounds` does: `max_turn_requests`.
#[test]
fn a_spent_budget_is_max_turn_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(
        dir.path(),
        &["--max-turns", "2", "--permission-mode", "allow-all"],
    );
    let (_, answer) = acp.prompt(&session, "one round");
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let (_, answer) = acp.prompt(&session, r#"go [[tool=ls input={"path": "."}]]"#);
    assert_eq!(
        answer["result"]["stopReason"], "max_turn_requests",
        "{answer}"
    );
    acp.finish();
}

#[test]
fn session_list_shows_titles_filtered_by_cwd() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let (mut acp, first) = started(one.path(), &[]);
    acp.prompt(&first, "first session here");
    let second = acp.new_session(two.path())["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.prompt(&second, "second one");
    let all = acp.call("session/list", json!({}));
    let ids: Vec<&str> = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sessionId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&first.as_str()) && ids.contains(&second.as_str()));
    let only = acp.call("session/list", json!({"cwd": two.path().to_string_lossy()}));
    let listed = only["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{only}");
    assert_eq!(listed[0]["sessionId"], second.as_str());
    assert_eq!(listed[0]["title"], "second one");
    assert_eq!(listed[0]["cwd"], common::canonical(two.path()));
    assert!(listed[0]["updatedAt"].as_str().is_some());
    acp.finish();
}

#[test]
fn errors_are_json_rpc_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, _) = started(dir.path(), &[]);
    let id = acp.request(
        "session/prompt",
        json!({"sessionId": "nope", "prompt": [{"type": "text", "text": "x"}]}),
    );
    let (_, answer) = acp.until_answer(id);
    assert!(answer["error"]["code"].is_i64(), "{answer}");
    let id = acp.request(
        "session/new",
        json!({"cwd": "relative/dir", "mcpServers": []}),
    );
    let (_, answer) = acp.until_answer(id);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let id = acp.request("no/such_method", json!({}));
    let (_, answer) = acp.until_answer(id);
    assert_eq!(answer["error"]["code"], -32601, "{answer}");
    acp.finish();
}

/// Start-up errors go to stderr: stdout carries JSON-RPC only.
#[test]
fn a_start_up_failure_writes_nothing_to_stdout() {
    let mut rpc = Spawn::new()
        .arg("--acp")
        .arg("--extension")
        .arg("/nonexistent/extension")
        .start();
    let status = rpc.wait(Duration::from_secs(10)).expect("exits");
    assert_eq!(status.code(), Some(2));
    assert!(rpc.drain(Duration::from_millis(200)).is_empty());
    assert!(rpc.stderr().contains("rpc:"), "{}", rpc.stderr());
}

/// Every line of a whole session (tools, permissions, several turns) is a
/// JSON-RPC 2.0 message: `Acp` checks each one as it reads it; this runs a
/// busy session through it, logs on at debug level.
#[test]
fn every_stdout_line_is_json_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &["--log-level", "debug"]);
    acp.prompt(&session, "one [[thinking=1]]");
    acp.prompt(
        &session,
        r#"two [[tool=bash input={"command": "echo out; echo err >&2"}]]"#,
    );
    acp.prompt(
        &session,
        r#"three [[tool=write input={"path": "f.txt", "content": "x"}]]"#,
    );
    acp.rpc.close_stdin();
    for m in acp.rpc.drain(Duration::from_secs(5)) {
        assert_eq!(m["jsonrpc"], "2.0", "{m}");
    }
    assert!(acp.rpc.seen.iter().all(|m: &Value| m["jsonrpc"] == "2.0"));
    assert!(!acp.asked.is_empty());
}

/// SIGTERM mid-turn: every session's host aborts and syncs, the process
/// exits 0, and the aborted turn is on disk.
#[test]
fn sigterm_mid_turn_exits_cleanly_with_the_session_saved() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(Some(data.path()), &[]);
    acp.initialize();
    let session = acp.new_session(dir.path())["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.request(
        "session/prompt",
        json!({"sessionId": session, "prompt": [{"type": "text", "text": "[[n=200 delay_ms=20]]"}]}),
    );
    acp.until(|m| m["params"]["update"]["sessionUpdate"] == "agent_message_chunk");
    acp.rpc.signal("TERM");
    let status = acp.rpc.wait(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "{status:?}\n{}", acp.rpc.stderr());
    let file = common::session_file(data.path(), &session);
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains("delay_ms") && text.contains("\"aborted\":true"),
        "{text}"
    );
}

/// SPEC §2: an embedded resource reaches an extension after the prompt's
/// text and a blank line, not glued to its last word.
#[test]
fn an_embedded_resource_reaches_the_extension_as_its_own_paragraph() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    let prompt = json!([
        {"type": "text", "text": "with a resource [[show=messages]]"},
        {"type": "resource", "resource": {"uri": "file:///w/a.txt", "text": "fox"}},
    ]);
    let id = acp.request(
        "session/prompt",
        json!({"sessionId": session, "prompt": prompt}),
    );
    let (updates, answer) = acp.until_answer(id);
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let shown: Value = serde_json::from_str(&chunk_text(&updates, "agent_message_chunk"))
        .expect("the extension's messages as JSON");
    let last = shown.as_array().and_then(|m| m.last()).expect("a message");
    assert_eq!(
        last["content"],
        "with a resource [[show=messages]]\n\n<resource uri=\"file:///w/a.txt\">\nfox\n</resource>",
        "{shown}"
    );
    acp.finish();
}

/// The sandbox is a config option: shown with its mode, and
/// `session/set_config_option` changes it (announced once); an unknown
/// mode is a bad value.
#[test]
fn the_sandbox_is_a_config_option() {
    let dir = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(None, &["--sandbox", "read-only"]);
    acp.initialize();
    let new = acp.new_session(dir.path());
    let id = new["sessionId"].as_str().unwrap().to_owned();
    acp.settle(&new);
    let sandbox = |options: &Value| -> Value {
        options
            .as_array()
            .and_then(|o| o.iter().find(|o| o["id"] == "sandbox"))
            .cloned()
            .unwrap_or_default()
    };
    let shown = sandbox(&new["configOptions"]);
    assert_eq!(shown["currentValue"], "read-only", "{new}");
    assert_eq!(
        shown["options"].as_array().map(Vec::len),
        Some(3),
        "{shown}"
    );
    let set = acp.request(
        "session/set_config_option",
        json!({"sessionId": id, "configId": "sandbox", "value": "off"}),
    );
    let (updates, answer) = acp.until_answer(set);
    assert_eq!(
        sandbox(&answer["result"]["configOptions"])["currentValue"],
        "off",
        "{answer}"
    );
    assert_eq!(
        of_kind(&updates, "config_option_update").len(),
        1,
        "{updates:?}"
    );
    let bad = acp.request(
        "session/set_config_option",
        json!({"sessionId": id, "configId": "sandbox", "value": "loose"}),
    );
    let (_, answer) = acp.until_answer(bad);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    acp.finish();
}
