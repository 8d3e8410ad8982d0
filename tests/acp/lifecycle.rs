//! The rest of a session's life: `session/resume` (no replay),
//! `session/close` (its prompt cancelled, its lock released at once for
//! another process, the connection's other sessions unaffected) and
//! `session/fork` (a new session with the same history); all advertised;
//! and `session_info_update` (title, updatedAt) agreeing with
//! `session/list`.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{of_kind, Acp};
use crate::common::{self, message_text, messages, Spawn, ECHO};

fn id_of(answer: &Value) -> String {
    answer["sessionId"].as_str().expect("sessionId").to_owned()
}

/// A session run over ACP in `data`, the process closed; returns its id.
fn stored_session(data: &std::path::Path, cwd: &std::path::Path) -> String {
    let mut acp = Acp::start(Some(data), &["--permission-mode", "allow-all"]);
    acp.initialize();
    let id = id_of(&acp.new_session(cwd));
    acp.prompt(&id, "first words");
    acp.finish();
    id
}

#[test]
fn initialize_advertises_resume_close_and_fork() {
    let mut acp = Acp::start(None, &[]);
    let init = acp.initialize();
    let caps = &init["agentCapabilities"]["sessionCapabilities"];
    for name in ["list", "resume", "close", "fork"] {
        assert_eq!(caps[name], json!({}), "{name}: {init}");
    }
    acp.finish();
}

#[test]
fn resume_answers_without_replaying_and_the_session_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let id = stored_session(data.path(), cwd.path());
    let file = common::session_file(data.path(), &id);
    let before = std::fs::read(&file).unwrap();

    let mut acp = Acp::start(Some(data.path()), &["--permission-mode", "read-only"]);
    acp.initialize();
    let resume = acp.request(
        "session/resume",
        json!({"sessionId": id, "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (updates, answer) = acp.until_answer(resume);
    assert!(answer.get("error").is_none(), "{answer}");
    // No history: at most the model listing's announcement.
    assert!(
        of_kind(&updates, "user_message_chunk").is_empty(),
        "{updates:?}"
    );
    assert!(
        of_kind(&updates, "agent_message_chunk").is_empty(),
        "{updates:?}"
    );
    // The stored mode, not the flag's; the options as session/new has them.
    assert_eq!(answer["result"]["modes"]["currentModeId"], "allow-all");
    assert!(answer["result"]["configOptions"].is_array(), "{answer}");
    assert_eq!(std::fs::read(&file).unwrap(), before);
    // Resuming it twice on one connection is refused.
    let again = acp.request(
        "session/resume",
        json!({"sessionId": id, "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (_, answer) = acp.until_answer(again);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let (_, answer) = acp.prompt(&id, "second words");
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    acp.finish();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("first words") && text.contains("second words"));
}

#[test]
fn close_cancels_the_prompt_and_releases_the_lock_for_another_process() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(Some(data.path()), &["--permission-mode", "allow-all"]);
    acp.initialize();
    let id = id_of(&acp.new_session(cwd.path()));
    let other = id_of(&acp.new_session(cwd.path()));
    let prompt = acp.request(
        "session/prompt",
        json!({"sessionId": id, "prompt": [{"type": "text", "text": r#"[[tool=bash input={"command": "sleep 30"}]]"#}]}),
    );
    acp.until(|m| {
        m["params"]["sessionId"] == id.as_str() && m["params"]["update"]["status"] == "in_progress"
    });
    let started = Instant::now();
    let close = acp.request("session/close", json!({"sessionId": id}));
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let m = acp.next_message();
        if m.get("method").is_none() {
            answers.push(m);
        }
    }
    let of = |id: u64| answers.iter().find(|a| a["id"] == id).cloned().unwrap();
    assert_eq!(
        of(prompt)["result"]["stopReason"],
        "cancelled",
        "{answers:?}"
    );
    assert_eq!(of(close)["result"], json!({}), "{answers:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Another process continues it at once, while this one still runs.
    let mut native = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .data(data.path())
        .arg("--continue")
        .arg(&id)
        .start();
    let ready = native.ready();
    assert_eq!(ready["session_id"], id.as_str(), "{ready}");
    let history = messages(&mut native, "m");
    assert!(
        message_text(&history[0]).contains("sleep 30"),
        "{history:?}"
    );
    common::finish(native);

    // The session is gone from the connection; the other one goes on (the
    // shared extension was not stopped with the closed session).
    let (_, answer) = acp.prompt(&id, "still there?");
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let close = acp.request("session/close", json!({"sessionId": id}));
    let (_, answer) = acp.until_answer(close);
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let (_, answer) = acp.prompt(&other, "bee");
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    acp.finish();
}

#[test]
fn fork_opens_a_new_session_with_the_same_history() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(Some(data.path()), &["--permission-mode", "accept-edits"]);
    acp.initialize();
    let id = id_of(&acp.new_session(cwd.path()));
    acp.prompt(&id, "first words");
    let fork = acp.call(
        "session/fork",
        json!({"sessionId": id, "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let forked = id_of(&fork);
    assert_ne!(forked, id);
    assert_eq!(fork["modes"]["currentModeId"], "accept-edits", "{fork}");
    assert!(fork["configOptions"].is_array(), "{fork}");
    // Both go on, each in its own file.
    let (_, answer) = acp.prompt(&forked, "in the fork");
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let (_, answer) = acp.prompt(&id, "in the original");
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    // A session never prompted (nothing stored yet) forks too.
    let fresh = id_of(&acp.new_session(cwd.path()));
    let empty = acp.call(
        "session/fork",
        json!({"sessionId": fresh, "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    assert_ne!(id_of(&empty), fresh);
    let missing = acp.request(
        "session/fork",
        json!({"sessionId": "01900000-0000-7000-8000-000000000000", "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (_, answer) = acp.until_answer(missing);
    assert_eq!(answer["error"]["code"], -32002, "{answer}");
    acp.finish();
    let fork_text = std::fs::read_to_string(common::session_file(data.path(), &forked)).unwrap();
    assert!(fork_text.contains("first words") && fork_text.contains("in the fork"));
    assert!(!fork_text.contains("in the original"));
    assert!(fork_text.contains(&id), "forked_from names the original");
    let text = std::fs::read_to_string(common::session_file(data.path(), &id)).unwrap();
    assert!(text.contains("in the original") && !text.contains("in the fork"));
}

#[test]
fn each_turn_announces_the_title_once_and_updated_at_as_session_list_shows_them() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(Some(data.path()), &[]);
    acp.initialize();
    let id = id_of(&acp.new_session(cwd.path()));
    let first =
        "please refactor the session store so that forks and loads share one reader\nsecond line";
    let (updates, answer) = acp.prompt(&id, first);
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let info = of_kind(&updates, "session_info_update");
    assert_eq!(info.len(), 1, "{updates:?}");
    let title = "please refactor the session store so that forks and loads…";
    assert_eq!(info[0]["title"], title);
    assert!(info[0]["updatedAt"].is_string(), "{}", info[0]);
    let first_at = info[0]["updatedAt"].clone();
    // The title stays; updatedAt moves on.
    std::thread::sleep(Duration::from_millis(20));
    let (updates, _) = acp.prompt(&id, "another one");
    let info = of_kind(&updates, "session_info_update");
    assert_eq!(info.len(), 1, "{updates:?}");
    assert!(info[0].get("title").is_none(), "{}", info[0]);
    let updated = info[0]["updatedAt"].clone();
    assert_ne!(updated, first_at, "{}", info[0]);
    let listed = acp.call("session/list", json!({}));
    let entry = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sessionId"] == id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(entry["title"], title, "{entry}");
    assert_eq!(entry["updatedAt"], updated, "{entry}");
    // A prompt refused (one is running) announces nothing.
    let slow = acp.request(
        "session/prompt",
        json!({"sessionId": id, "prompt": [{"type": "text", "text": r#"[[tool=bash input={"command": "sleep 1"}]]"#}]}),
    );
    acp.until(|m| m["params"]["update"]["sessionUpdate"] == "tool_call");
    let busy = acp.request(
        "session/prompt",
        json!({"sessionId": id, "prompt": [{"type": "text", "text": "busy?"}]}),
    );
    let (updates, answer) = acp.until_answer(busy);
    assert_eq!(answer["error"]["code"], -32000, "{answer}");
    assert!(of_kind(&updates, "session_info_update").is_empty());
    acp.until_answer(slow);
    acp.finish();
}
