//! The session file: a header then one entry per line, private permissions;
//! no file for a host that never got a prompt.

use super::*;

#[test]
fn session_file_has_header_then_entries_and_private_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    // A data dir that does not exist yet, so the host creates it (and its mode
    // is the host's doing, not tempfile's).
    let data = tmp.path().join("data");
    let mut h = Spawn::new()
        .data(&data)
        .ext("slow")
        .model("slow:slow:slow-1")
        .start();
    let ready = h.ready();
    let id = ready["session_id"].as_str().unwrap().to_owned();
    let path = session_file(&data, &id);

    h.send(json!({"type": "prompt", "id": "1", "message": "persist me first [[n=10]]"}));
    h.until("agent_start", |v| v["type"] == "agent_start");
    // The provider is still streaming (10 × 50 ms): the user message must
    // already be on disk.
    let early = read_jsonl(&path);
    let users: Vec<&Value> = early
        .iter()
        .filter(|e| e["type"] == "message" && e["message"]["role"] == "user")
        .collect();
    assert_eq!(
        users.len(),
        1,
        "user message on disk before the answer: {early:?}"
    );
    assert_eq!(users[0]["message"]["content"], "persist me first [[n=10]]");
    assert!(
        !early.iter().any(|e| e["message"]["role"] == "assistant"),
        "the answer cannot be on disk yet: {early:?}"
    );
    let (_, resp) = h.until("response", |v| v["type"] == "response" && v["id"] == "1");
    assert_eq!(resp["ok"], true, "{resp}");

    let lines = read_jsonl(&path);
    let header = &lines[0];
    assert_eq!(header["type"], "session", "{header}");
    assert_eq!(header["version"], 1, "{header}");
    assert_eq!(header["id"], id.as_str());
    assert_eq!(header["cwd"], ready["cwd"]);
    assert_eq!(header["model"], "slow:slow:slow-1");
    let created = header["created_at"].as_str().expect("created_at string");
    assert!(
        created.contains('T') && created.len() >= 20,
        "RFC 3339 time: {created}"
    );
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "session").count(),
        1,
        "exactly one header"
    );
    let kinds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"message"));
    let assistant = lines
        .iter()
        .find(|l| l["type"] == "message" && l["message"]["role"] == "assistant")
        .expect("assistant message on disk after the turn");
    assert_eq!(message_text(&assistant["message"]), "tok ".repeat(10));
    let turn_end = lines
        .iter()
        .find(|l| l["type"] == "turn_end")
        .expect("usage entry");
    assert!(
        turn_end["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{turn_end}"
    );

    assert_eq!(mode_of(&path), 0o600, "session file mode");
    assert_eq!(mode_of(&data.join("sessions")), 0o700, "sessions dir mode");
    assert_eq!(mode_of(&data), 0o700, "data dir mode");
    finish(h);
}

#[test]
fn host_closed_without_a_prompt_leaves_no_session_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = echo_spawn_in(tmp.path()).model(ECHO).start();
    h.ready();
    call_ok(&mut h, json!({"type": "get_state"}), "st");
    finish(h);
    assert!(
        sessions_in(tmp.path()).is_empty(),
        "{:?}",
        sessions_in(tmp.path())
    );
}
