//! session/load (replay before the answer, from a new process; the file
//! untouched), one store for both protocols (ACP → native and back), two
//! sessions on one connection, and config options (model, thinking).

use std::time::Duration;

use serde_json::{json, Value};

use super::{chunk_text, of_kind, Acp};
use crate::common::{self, call_ok, message_text, messages, Spawn, ECHO};

const BASH: &str = r#"look [[tool=bash input={"command": "echo from-bash"}]]"#;

/// Runs a session over ACP in `data` and closes the process; returns its id.
fn acp_session(data: &std::path::Path, cwd: &std::path::Path) -> String {
    let mut acp = Acp::start(Some(data), &["--permission-mode", "allow-all"]);
    acp.initialize();
    let id = acp.new_session(cwd)["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    acp.prompt(&id, "first words [[thinking=1]]");
    acp.prompt(&id, BASH);
    acp.finish();
    id
}

#[test]
fn load_replays_the_history_before_answering_and_does_not_modify_it() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let id = acp_session(data.path(), cwd.path());
    let file = common::session_file(data.path(), &id);
    let before = std::fs::read(&file).unwrap();

    // The flags are for new sessions: the loaded one keeps its stored mode
    // (and the file is not touched).
    let mut acp = Acp::start(Some(data.path()), &["--permission-mode", "read-only"]);
    acp.initialize();
    let load = acp.request(
        "session/load",
        json!({"sessionId": id, "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (updates, answer) = acp.until_answer(load);
    assert!(answer.get("error").is_none(), "{answer}");
    assert_eq!(answer["result"]["modes"]["currentModeId"], "allow-all");
    let kinds: Vec<&str> = updates
        .iter()
        .map(|u| u["update"]["sessionUpdate"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"user_message_chunk"), "{kinds:?}");
    assert!(chunk_text(&updates, "user_message_chunk").contains("first words"));
    assert!(chunk_text(&updates, "agent_thought_chunk").contains("hmm"));
    assert!(chunk_text(&updates, "agent_message_chunk").contains("first words"));
    let call = of_kind(&updates, "tool_call");
    assert_eq!(call.len(), 1, "{kinds:?}");
    assert_eq!(call[0]["title"], "echo from-bash");
    let done = of_kind(&updates, "tool_call_update");
    assert_eq!(done[0]["status"], "completed");
    assert!(done[0]["content"][0]["content"]["text"]
        .as_str()
        .unwrap()
        .contains("from-bash"));
    // Nothing of the history arrives after the answer (only the model
    // list, when its background listing finishes now, and the session's
    // commands), and the file is as it was.
    while let Some(late) = acp.rpc.recv_within(Duration::from_millis(300)) {
        assert!(super::is_announcement(&late), "{late}");
    }
    assert_eq!(std::fs::read(&file).unwrap(), before);
    // The session goes on, with its history.
    let (_, answer) = acp.prompt(&id, "[[show=messages]]");
    assert_eq!(answer["result"]["stopReason"], "end_turn");
    acp.finish();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.len() > before.len() && text.contains("show=messages"));
}

/// A replayed call closes with the same update as the live one: result,
/// `rawOutput` and the write's diff.
#[test]
fn a_replayed_tool_call_closes_as_it_did_live() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(Some(data.path()), &["--permission-mode", "allow-all"]);
    acp.initialize();
    let id = acp.new_session(cwd.path())["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let (live, _) = acp.prompt(
        &id,
        r#"w [[tool=write input={"path": "a.txt", "content": "hi\n"}]]"#,
    );
    acp.finish();
    let closing = |updates: &[Value]| -> Value {
        of_kind(updates, "tool_call_update")
            .into_iter()
            .find(|u| u["status"] == "completed")
            .cloned()
            .unwrap_or_else(|| panic!("no completed call: {updates:?}"))
    };
    let live = closing(&live);
    assert_eq!(live["content"][0]["type"], "diff", "{live}");
    let mut acp = Acp::start(Some(data.path()), &[]);
    acp.initialize();
    let load = acp.request(
        "session/load",
        json!({"sessionId": id, "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (replayed, answer) = acp.until_answer(load);
    assert!(answer.get("error").is_none(), "{answer}");
    assert_eq!(closing(&replayed), live);
    acp.finish();
}

#[test]
fn loading_an_unknown_session_is_an_error_naming_it() {
    let cwd = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(None, &[]);
    acp.initialize();
    let missing = "01900000-0000-7000-8000-000000000000";
    let load = acp.request(
        "session/load",
        json!({"sessionId": missing, "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (updates, answer) = acp.until_answer(load);
    assert!(updates.is_empty());
    assert!(answer["error"].to_string().contains(missing), "{answer}");
    // Not "the latest session of the cwd", as an empty id is natively.
    let load = acp.request(
        "session/load",
        json!({"sessionId": "", "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (_, answer) = acp.until_answer(load);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    acp.finish();
}

#[test]
fn an_acp_session_resumes_natively_and_a_native_one_loads_over_acp() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    // ACP → native.
    let id = acp_session(data.path(), cwd.path());
    let mut rpc = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .data(data.path())
        .arg("--continue")
        .arg(&id)
        .start();
    let ready = rpc.ready();
    assert_eq!(ready["session_id"], id.as_str());
    let history = messages(&mut rpc, "m");
    assert!(message_text(&history[0]).contains("first words"));
    let listed = call_ok(&mut rpc, json!({"type": "list_sessions"}), "l");
    assert!(listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["session_id"] == id.as_str()));
    common::ok_prompt(&mut rpc, "p", "natively now");
    common::finish(rpc);

    // Native → ACP: the native turn is part of what is replayed.
    let mut acp = Acp::start(Some(data.path()), &[]);
    acp.initialize();
    let listed = acp.call("session/list", json!({}));
    assert!(listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["sessionId"] == id.as_str()));
    let load = acp.request(
        "session/load",
        json!({"sessionId": id, "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (updates, answer) = acp.until_answer(load);
    assert!(answer.get("error").is_none(), "{answer}");
    assert!(chunk_text(&updates, "user_message_chunk").contains("natively now"));
    assert!(chunk_text(&updates, "agent_message_chunk").contains("natively now"));
    acp.finish();
}

#[test]
fn two_sessions_on_one_connection_run_turns_at_the_same_time() {
    let one = tempfile::tempdir().unwrap();
    let two = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(Some(data.path()), &["--permission-mode", "allow-all"]);
    acp.initialize();
    let a = acp.new_session(one.path())["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = acp.new_session(two.path())["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(a, b);
    // A's turn sits in a bash `sleep` (its provider round is over), B's
    // whole turn runs meanwhile: B is answered first.
    let slow = acp.request(
        "session/prompt",
        json!({"sessionId": a, "prompt": [{"type": "text", "text": r#"[[tool=bash input={"command": "sleep 4; echo done-a"}]]"#}]}),
    );
    acp.until(|m| {
        m["params"]["sessionId"] == a.as_str() && m["params"]["update"]["status"] == "in_progress"
    });
    let quick = acp.request(
        "session/prompt",
        json!({"sessionId": b, "prompt": [{"type": "text", "text": "quokka"}]}),
    );
    let mut answers = Vec::new();
    let mut updates = Vec::new();
    while answers.len() < 2 {
        let m = acp.next_message();
        if m["method"] == "session/update" {
            updates.push(m["params"].clone());
        } else if m.get("result").is_some() || m.get("error").is_some() {
            answers.push(m);
        }
    }
    assert_eq!(answers[0]["id"], quick, "{answers:?}");
    assert_eq!(answers[1]["id"], slow, "{answers:?}");
    assert!(answers
        .iter()
        .all(|a| a["result"]["stopReason"] == "end_turn"));
    let of = |id: &str| -> Vec<Value> {
        updates
            .iter()
            .filter(|u| u["sessionId"] == id)
            .cloned()
            .collect()
    };
    assert_eq!(chunk_text(&of(&b), "agent_message_chunk"), "quokka");
    assert!(chunk_text(&of(&a), "agent_message_chunk").contains("done-a"));
    // Separate histories, separate files.
    acp.finish();
    let file_a = std::fs::read_to_string(common::session_file(data.path(), &a)).unwrap();
    let file_b = std::fs::read_to_string(common::session_file(data.path(), &b)).unwrap();
    // (Words no hex id can spell: the files also hold uuids.)
    assert!(file_a.contains("done-a") && !file_a.contains("quokka"));
    assert!(file_b.contains("quokka") && !file_b.contains("done-a"));
}

#[test]
fn config_options_set_the_thinking_level_and_model_and_persist_them() {
    let cwd = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(Some(data.path()), &[]);
    acp.initialize();
    let new = acp.new_session(cwd.path());
    let id = new["sessionId"].as_str().unwrap().to_owned();
    acp.settle(&new);
    let set = acp.request(
        "session/set_config_option",
        json!({"sessionId": id, "configId": "thinking", "value": "high"}),
    );
    let (updates, answer) = acp.until_answer(set);
    let options = answer["result"]["configOptions"].as_array().unwrap();
    let thinking = options.iter().find(|o| o["id"] == "thinking").unwrap();
    assert_eq!(thinking["currentValue"], "high", "{answer}");
    let announced = of_kind(&updates, "config_option_update");
    assert_eq!(announced.len(), 1, "{updates:?}");
    let set = acp.request(
        "session/set_config_option",
        json!({"sessionId": id, "configId": "model", "value": "echo:echo:echo-complete"}),
    );
    let (updates, answer) = acp.until_answer(set);
    let model = answer["result"]["configOptions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "model")
        .unwrap()
        .clone();
    assert_eq!(model["currentValue"], "echo:echo:echo-complete", "{answer}");
    assert_eq!(
        of_kind(&updates, "config_option_update").len(),
        1,
        "{updates:?}"
    );
    // The same model again is still announced, once.
    let again = acp.request(
        "session/set_config_option",
        json!({"sessionId": id, "configId": "model", "value": "echo:echo:echo-complete"}),
    );
    let (updates, answer) = acp.until_answer(again);
    assert!(answer.get("error").is_none(), "{answer}");
    let announced = of_kind(&updates, "config_option_update");
    assert_eq!(announced.len(), 1, "{updates:?}");
    let bad = acp.request(
        "session/set_config_option",
        json!({"sessionId": id, "configId": "model", "value": "nope:nope:nope"}),
    );
    let (_, answer) = acp.until_answer(bad);
    // An unknown model is a bad value, like an unknown level.
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    assert_eq!(answer["error"]["data"]["code"], "not_found", "{answer}");
    let (_, answer) = acp.prompt(&id, "persist me");
    assert_eq!(answer["result"]["stopReason"], "end_turn");
    acp.finish();
    // Reloaded by a new process (the native protocol, `--continue <id>`):
    // the session comes back with both.
    let mut rpc = common::Spawn::new()
        .data(data.path())
        .ext("echo")
        .arg("--continue")
        .arg(&id)
        .start();
    let ready = rpc.ready();
    assert_eq!(ready["session_id"], id.as_str(), "{ready}");
    let state = common::get_state(&mut rpc, "state");
    assert_eq!(state["thinking_level"], "high", "{state}");
    assert_eq!(state["model"], "echo:echo:echo-complete", "{state}");
    common::finish(rpc);
}

/// Two sessions streaming from the same extension at once: each gets its
/// own deltas (the extension protocol's events carry no request id, so
/// its rounds take turns).
#[test]
fn two_sessions_streaming_from_one_extension_keep_their_own_text() {
    let one = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(None, &[]);
    acp.initialize();
    let a = acp.new_session(one.path())["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = acp.new_session(one.path())["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut pending = Vec::new();
    for (session, delta) in [(&a, "a "), (&b, "b ")] {
        let text = format!("[[n=10 delay_ms=20 delta=\"{delta}\"]]");
        pending.push(acp.request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]}),
        ));
    }
    let mut updates = Vec::new();
    let mut answered = 0;
    while answered < 2 {
        let m = acp.next_message();
        if m["method"] == "session/update" {
            updates.push(m["params"].clone());
        } else if pending.iter().any(|id| m["id"] == *id) {
            assert_eq!(m["result"]["stopReason"], "end_turn", "{m}");
            answered += 1;
        }
    }
    for (session, delta) in [(&a, "a "), (&b, "b ")] {
        let own: Vec<Value> = updates
            .iter()
            .filter(|u| u["sessionId"] == session.as_str())
            .cloned()
            .collect();
        assert_eq!(chunk_text(&own, "agent_message_chunk"), delta.repeat(10));
    }
    acp.finish();
}

/// Cancelling one session's prompt kills an extension that ignores the
/// cancel; another session's prompt, waiting for that extension's one
/// round, was never cancelled: it runs on the restarted extension and ends
/// normally (SPEC §4, §11).
#[test]
fn cancelling_one_session_leaves_the_other_sessions_prompt_to_run() {
    let one = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(None, &[]);
    acp.initialize();
    let mut session = || {
        acp.new_session(one.path())["sessionId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (a, b) = (session(), session());
    let prompt =
        |s: &str, text: &str| json!({"sessionId": s, "prompt": [{"type": "text", "text": text}]});
    // A streams one delta, then ignores everything but a kill.
    let pa = acp.request("session/prompt", prompt(&a, "[[n=3 hang_after=1]]"));
    acp.until(|m| m["method"] == "session/update" && m["params"]["sessionId"] == a.as_str());
    let pb = acp.request("session/prompt", prompt(&b, "hello there"));
    // B's turn reaches the extension and waits for A's round to end.
    std::thread::sleep(Duration::from_millis(300));
    acp.notify("session/cancel", json!({"sessionId": a}));
    let mut updates = Vec::new();
    let mut answers = std::collections::HashMap::new();
    while answers.len() < 2 {
        let m = acp.next_message();
        if m["method"] == "session/update" {
            updates.push(m["params"].clone());
        } else if m["id"] == pa || m["id"] == pb {
            answers.insert(m["id"].as_u64().unwrap(), m);
        }
    }
    assert_eq!(
        answers[&pa]["result"]["stopReason"], "cancelled",
        "{}",
        answers[&pa]
    );
    assert_eq!(
        answers[&pb]["result"]["stopReason"], "end_turn",
        "{}",
        answers[&pb]
    );
    let own: Vec<Value> = updates
        .iter()
        .filter(|u| u["sessionId"] == b.as_str())
        .cloned()
        .collect();
    assert_eq!(chunk_text(&own, "agent_message_chunk"), "hello there");
    acp.finish();
}
