//! Tool calls as `tool_call` / `tool_call_update`, permissions (allow with a
//! diff, reject that continues the turn, allow always, cancelled), modes,
//! session/cancel during a bash `sleep`, and a prompt while one runs.

use std::time::{Duration, Instant};

use serde_json::json;

use super::{chunk_text, of_kind, started, Answer};
use crate::common::procfs;

const WRITE: &str = r#"make it [[tool=write input={"path": "a.txt", "content": "hello\n"}]]"#;

#[test]
fn an_allowed_write_goes_pending_in_progress_completed_with_a_diff() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    let (updates, answer) = acp.prompt(&session, WRITE);
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let calls = of_kind(&updates, "tool_call");
    assert_eq!(calls.len(), 1, "{updates:?}");
    let call = calls[0];
    assert_eq!(call["status"], "pending");
    assert_eq!(call["kind"], "edit");
    assert_eq!(call["title"], "a.txt");
    assert_eq!(call["rawInput"]["content"], "hello\n");
    let path = dir.path().canonicalize().unwrap().join("a.txt");
    assert_eq!(
        call["locations"][0]["path"],
        path.to_string_lossy().as_ref()
    );
    // The permission request names the call and offers the three options.
    assert_eq!(acp.asked.len(), 1);
    let asked = &acp.asked[0]["params"];
    assert_eq!(asked["toolCall"]["toolCallId"], call["toolCallId"]);
    let kinds: Vec<&str> = asked["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["allow_once", "allow_always", "reject_once"]);
    let steps: Vec<&str> = of_kind(&updates, "tool_call_update")
        .iter()
        .filter_map(|u| u["status"].as_str())
        .collect();
    assert_eq!(steps, ["in_progress", "completed"]);
    let done = of_kind(&updates, "tool_call_update")
        .into_iter()
        .find(|u| u["status"] == "completed")
        .unwrap();
    let diff = &done["content"][0];
    assert_eq!(diff["type"], "diff");
    assert_eq!(diff["path"], path.to_string_lossy().as_ref());
    assert_eq!(diff["newText"], "hello\n");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello\n");
    acp.finish();
}

/// `pending` while the permission request is open (the request keeps the
/// call's title), `in_progress` only once approved, then `completed`.
#[test]
fn a_call_stays_pending_while_asking_and_runs_in_progress_once_approved() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    acp.permissions = Answer::Hold;
    let id = acp.request(
        "session/prompt",
        json!({"sessionId": session, "prompt": [{"type": "text", "text": WRITE}]}),
    );
    let (before, asked) = acp.until(|m| m["method"] == "session/request_permission");
    let call = of_kind(&before, "tool_call");
    assert_eq!(call.len(), 1, "{before:?}");
    assert_eq!(call[0]["status"], "pending");
    assert!(
        of_kind(&before, "tool_call_update").is_empty(),
        "a status change before approval: {before:?}"
    );
    let asked_call = &asked["params"]["toolCall"];
    assert_eq!(asked_call["title"], call[0]["title"], "renamed: {asked}");
    assert_eq!(asked_call["status"], "pending", "{asked}");
    acp.rpc.send(json!({"jsonrpc": "2.0", "id": asked["id"], "result": {"outcome": {"outcome": "selected", "optionId": "allow_once"}}}));
    let (after, answer) = acp.until_answer(id);
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let steps: Vec<&str> = of_kind(&after, "tool_call_update")
        .iter()
        .filter_map(|u| u["status"].as_str())
        .collect();
    assert_eq!(steps, ["in_progress", "completed"]);
    acp.finish();
}

/// `usage_update` after a turn of two provider calls: `used` is what the
/// context held after the last one (input + cache + output), not the
/// turn's sum, against the model's window.
#[test]
fn usage_update_reports_the_context_after_the_last_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut acp = super::Acp::start(None, &["--permission-mode", "allow-all"]);
    acp.initialize();
    let new = acp.new_session(dir.path());
    let session = new["sessionId"].as_str().unwrap().to_owned();
    // The window comes with the model listing.
    acp.settle(&new);
    let (updates, answer) = acp.prompt(
        &session,
        r#"[[tool=bash input={"command": "true"} usage_in=100 usage_out=50 cache_read=20 cache_write=30]]"#,
    );
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    assert_eq!(
        of_kind(&updates, "tool_call").len(),
        1,
        "two calls: {updates:?}"
    );
    let usage = of_kind(&updates, "usage_update");
    assert_eq!(usage.len(), 1, "{updates:?}");
    assert_eq!(usage[0]["used"], 200, "{}", usage[0]);
    assert_eq!(usage[0]["size"], 200_000);
    // The echo extension has no prices.
    assert!(usage[0].get("cost").is_none(), "{}", usage[0]);
    acp.finish();
}

/// A model whose catalogue has prices: `cost` is the session's, in USD,
/// summed over its turns.
#[test]
fn usage_update_carries_the_sessions_cost_when_prices_are_known() {
    use crate::common::fake_http::FakeServer;
    let srv = FakeServer::start();
    let rpc = crate::common::Spawn::new()
        .env("XDG_CONFIG_HOME", "/nonexistent/agent-rpc-acp-tests")
        .env(
            "ANTHROPIC_BASE_URL",
            &format!("http://127.0.0.1:{}", srv.port),
        )
        .env("ANTHROPIC_API_KEY", "SECRET123")
        .model("anthropic/claude-sonnet-4-5")
        .arg("--acp")
        .start();
    let mut acp = super::Acp::from_rpc(rpc);
    acp.initialize();
    let dir = tempfile::tempdir().unwrap();
    let new = acp.new_session(dir.path());
    let session = new["sessionId"].as_str().unwrap().to_owned();
    acp.settle(&new);
    // $3 per million in, $15 per million out: $4.50 a turn.
    let prompt = "hi [[usage_in=1000000 usage_out=100000 cache_read=0 cache_write=0]]";
    let mut costs = Vec::new();
    for _ in 0..2 {
        let (updates, answer) = acp.prompt(&session, prompt);
        assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
        let usage = of_kind(&updates, "usage_update");
        assert_eq!(usage.len(), 1, "{updates:?}");
        assert_eq!(usage[0]["used"], 1_100_000, "{}", usage[0]);
        assert_eq!(usage[0]["cost"]["currency"], "USD", "{}", usage[0]);
        costs.push(usage[0]["cost"]["amount"].as_f64().unwrap());
    }
    assert!((costs[0] - 4.5).abs() < 1e-9, "{costs:?}");
    assert!((costs[1] - 9.0).abs() < 1e-9, "{costs:?}");
    acp.finish();
}

#[test]
fn a_rejected_call_fails_alone_and_the_turn_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    acp.permissions = Answer::Pick("reject_once");
    let (updates, answer) = acp.prompt(&session, WRITE);
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let failed = of_kind(&updates, "tool_call_update")
        .into_iter()
        .find(|u| u["status"] == "failed")
        .expect("the call failed");
    assert!(failed["content"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("denied"));
    // It never ran: pending, then failed.
    let steps: Vec<&str> = of_kind(&updates, "tool_call_update")
        .iter()
        .filter_map(|u| u["status"].as_str())
        .collect();
    assert_eq!(steps, ["failed"]);
    // The model was told and answered in the same turn.
    assert!(chunk_text(&updates, "agent_message_chunk").contains("denied"));
    assert!(!dir.path().join("a.txt").exists());
    acp.finish();
}

#[test]
fn allow_always_is_remembered_for_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    acp.permissions = Answer::Pick("allow_always");
    acp.prompt(&session, WRITE);
    assert_eq!(acp.asked.len(), 1);
    let (_, answer) = acp.prompt(
        &session,
        r#"again [[tool=write input={"path": "b.txt", "content": "b"}]]"#,
    );
    assert_eq!(answer["result"]["stopReason"], "end_turn");
    assert_eq!(acp.asked.len(), 1, "asked again: {:?}", acp.asked);
    assert!(dir.path().join("b.txt").exists());
    acp.finish();
}

#[test]
fn read_only_refuses_without_asking_and_set_mode_is_announced() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    let id = acp.request(
        "session/set_mode",
        json!({"sessionId": session, "modeId": "read-only"}),
    );
    let (updates, answer) = acp.until_answer(id);
    assert!(answer.get("error").is_none(), "{answer}");
    let announced = of_kind(&updates, "current_mode_update");
    assert_eq!(announced.len(), 1, "{updates:?}");
    assert_eq!(announced[0]["currentModeId"], "read-only");
    // The mode is a config option too, kept in step.
    let options = of_kind(&updates, "config_option_update");
    assert_eq!(options.len(), 1, "{updates:?}");
    assert_eq!(mode_option(options[0])["currentValue"], "read-only");
    let (updates, answer) = acp.prompt(&session, WRITE);
    assert_eq!(answer["result"]["stopReason"], "end_turn");
    assert!(acp.asked.is_empty());
    let failed = of_kind(&updates, "tool_call_update")
        .into_iter()
        .find(|u| u["status"] == "failed")
        .expect("refused");
    assert!(failed["content"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("read-only"));
    assert!(!dir.path().join("a.txt").exists());
    let id = acp.request(
        "session/set_mode",
        json!({"sessionId": session, "modeId": "reckless"}),
    );
    let (_, answer) = acp.until_answer(id);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    acp.finish();
}

/// The `mode` entry of a `configOptions` holder.
fn mode_option(holder: &serde_json::Value) -> &serde_json::Value {
    holder["configOptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "mode")
        .unwrap_or_else(|| panic!("no mode option: {holder}"))
}

#[test]
fn the_mode_config_option_sets_the_mode_and_announces_both_views() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    let id = acp.request(
        "session/set_config_option",
        json!({"sessionId": session, "configId": "mode", "value": "read-only"}),
    );
    let (updates, answer) = acp.until_answer(id);
    let option = mode_option(&answer["result"]);
    assert_eq!(option["category"], "mode", "{answer}");
    assert_eq!(option["type"], "select");
    assert_eq!(option["currentValue"], "read-only");
    assert_eq!(option["options"].as_array().unwrap().len(), 4);
    let announced = of_kind(&updates, "current_mode_update");
    assert_eq!(announced.len(), 1, "{updates:?}");
    assert_eq!(announced[0]["currentModeId"], "read-only");
    let options = of_kind(&updates, "config_option_update");
    assert_eq!(options.len(), 1, "{updates:?}");
    assert_eq!(mode_option(options[0])["currentValue"], "read-only");
    // The host applies it: a write is refused without asking.
    let (_, answer) = acp.prompt(&session, WRITE);
    assert_eq!(answer["result"]["stopReason"], "end_turn");
    assert!(acp.asked.is_empty());
    assert!(!dir.path().join("a.txt").exists());
    let id = acp.request(
        "session/set_config_option",
        json!({"sessionId": session, "configId": "mode", "value": "reckless"}),
    );
    let (_, answer) = acp.until_answer(id);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    acp.finish();
}

#[test]
fn cancel_during_bash_sleep_kills_it_and_answers_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &["--permission-mode", "allow-all"]);
    let id = acp.request(
        "session/prompt",
        json!({"sessionId": session, "prompt": [{"type": "text", "text": r#"[[tool=bash input={"command": "sleep 30"}]]"#}]}),
    );
    acp.until(|m| m["params"]["update"]["status"] == "in_progress");
    let pid = acp.rpc.pid();
    let deadline = Instant::now() + Duration::from_secs(10);
    let sleeper = loop {
        let found = procfs::descendants(pid)
            .into_iter()
            .find(|p| procfs::cmdline(*p).is_some_and(|c| c.contains("sleep 30")));
        if let Some(p) = found {
            break p;
        }
        assert!(Instant::now() < deadline, "sleep never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    acp.notify("session/cancel", json!({"sessionId": session}));
    let (_, answer) = acp.until_answer(id);
    assert_eq!(answer["result"]["stopReason"], "cancelled", "{answer}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while procfs::alive(sleeper) {
        assert!(Instant::now() < deadline, "sleep {sleeper} outlived cancel");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The session goes on.
    let (_, answer) = acp.prompt(&session, "still here");
    assert_eq!(answer["result"]["stopReason"], "end_turn");
    acp.finish();
}

#[test]
fn cancel_while_a_permission_request_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    acp.permissions = Answer::Hold;
    let id = acp.request(
        "session/prompt",
        json!({"sessionId": session, "prompt": [{"type": "text", "text": WRITE}]}),
    );
    let (_, asked) = acp.until(|m| m["method"] == "session/request_permission");
    acp.notify("session/cancel", json!({"sessionId": session}));
    // The agent withdraws its request (`$/cancel_request` naming the
    // permission request's id), then the prompt ends cancelled.
    let (_, withdrawn) = acp.until(|m| m["method"] == "$/cancel_request" || m["id"] == json!(id));
    assert_eq!(
        withdrawn["method"], "$/cancel_request",
        "the prompt was answered before its permission request was withdrawn: {withdrawn}"
    );
    assert_eq!(withdrawn["params"]["requestId"], asked["id"], "{withdrawn}");
    let (_, answer) = acp.until_answer(id);
    assert_eq!(answer["result"]["stopReason"], "cancelled", "{answer}");
    assert!(!dir.path().join("a.txt").exists());
    acp.finish();
}

#[test]
fn a_cancelled_permission_outcome_aborts_the_turn() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    acp.permissions = Answer::Hold;
    let id = acp.request(
        "session/prompt",
        json!({"sessionId": session, "prompt": [{"type": "text", "text": WRITE}]}),
    );
    let (_, asked) = acp.until(|m| m["method"] == "session/request_permission");
    acp.rpc.send(json!({"jsonrpc": "2.0", "id": asked["id"], "result": {"outcome": {"outcome": "cancelled"}}}));
    let (_, answer) = acp.until_answer(id);
    assert_eq!(answer["result"]["stopReason"], "cancelled", "{answer}");
    assert!(!dir.path().join("a.txt").exists());
    acp.finish();
}

#[test]
fn a_prompt_while_one_runs_is_rejected_saying_to_cancel_first() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    let first = acp.request(
        "session/prompt",
        json!({"sessionId": session, "prompt": [{"type": "text", "text": "[[n=40 delay_ms=50]]"}]}),
    );
    acp.until(|m| m["params"]["update"]["sessionUpdate"] == "agent_message_chunk");
    let second = acp.request(
        "session/prompt",
        json!({"sessionId": session, "prompt": [{"type": "text", "text": "me too"}]}),
    );
    let (_, answer) = acp.until_answer(second);
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("session/cancel"), "{answer}");
    let (_, answer) = acp.until_answer(first);
    assert_eq!(answer["result"]["stopReason"], "end_turn");
    acp.finish();
}

#[test]
fn an_edit_carries_its_diff_and_bash_output_streams_into_the_call() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e.txt"), "one two\n").unwrap();
    let (mut acp, session) = started(dir.path(), &["--permission-mode", "allow-all"]);
    let (updates, _) = acp.prompt(
        &session,
        r#"[[tool=edit input={"path": "e.txt", "old_string": "two", "new_string": "three"}]]"#,
    );
    let done = of_kind(&updates, "tool_call_update")
        .into_iter()
        .find(|u| u["status"] == "completed")
        .expect("edited");
    assert_eq!(done["content"][0]["type"], "diff", "{done}");
    assert_eq!(done["content"][0]["oldText"], "two");
    assert_eq!(done["content"][0]["newText"], "three");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("e.txt")).unwrap(),
        "one three\n"
    );
    let (updates, _) = acp.prompt(
        &session,
        r#"[[tool=bash input={"command": "echo first; echo second"}]]"#,
    );
    let call = of_kind(&updates, "tool_call");
    assert_eq!(call[0]["kind"], "execute");
    assert_eq!(call[0]["title"], "echo first; echo second");
    // Output while it runs: the text so far, in a content block.
    let running: Vec<&str> = of_kind(&updates, "tool_call_update")
        .into_iter()
        .filter(|u| u.get("status").is_none())
        .filter_map(|u| u["content"][0]["content"]["text"].as_str())
        .collect();
    assert_eq!(running.last(), Some(&"first\nsecond"), "{updates:?}");
    acp.finish();
}

/// A subagent inside an ACP session: its tool call is shown as a child of
/// the `task` call, its permission question reaches the editor, and its
/// text fills the `task` call.
#[test]
fn a_subagents_calls_and_text_show_inside_the_task_call() {
    let dir = tempfile::tempdir().unwrap();
    let (mut acp, session) = started(dir.path(), &[]);
    let child = r#"[[id_prefix=k_ tool=write input={"path": "a.txt", "content": "hi\n"}]]"#;
    let input = json!({"description": "write it", "prompt": child});
    let (updates, answer) = acp.prompt(&session, &format!("go [[tool=task input={input}]]"));
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let calls = of_kind(&updates, "tool_call");
    let task = calls
        .iter()
        .find(|c| c["toolCallId"] == "call_1")
        .expect("the task call");
    assert!(task.get("_meta").is_none(), "{task}");
    let write = calls
        .iter()
        .find(|c| c["toolCallId"] == "k_call_1")
        .expect("the child's call");
    assert_eq!(write["_meta"]["parentToolCallId"], "call_1", "{write}");
    // The child's question went to the editor, naming the child's call.
    assert_eq!(acp.asked.len(), 1, "{:?}", acp.asked);
    assert_eq!(acp.asked[0]["params"]["toolCall"]["toolCallId"], "k_call_1");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        "hi\n"
    );
    // The child's answer shows in the task call, then its result closes it.
    let task_updates: Vec<_> = of_kind(&updates, "tool_call_update")
        .into_iter()
        .filter(|u| u["toolCallId"] == "call_1")
        .collect();
    let texts: Vec<&str> = task_updates
        .iter()
        .filter_map(|u| u["content"][0]["content"]["text"].as_str())
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("tool result: Created a.txt")),
        "{texts:?}"
    );
    let last = task_updates.last().expect("closing update");
    assert_eq!(last["status"], "completed", "{last}");
    assert!(
        last["rawOutput"]["result"]
            .as_str()
            .unwrap()
            .contains("session_id"),
        "{last}"
    );
    // Child updates for its own call carry the parent too.
    for u in of_kind(&updates, "tool_call_update") {
        if u["toolCallId"] == "k_call_1" {
            assert_eq!(u["_meta"]["parentToolCallId"], "call_1", "{u}");
        }
    }
    acp.finish();
}
