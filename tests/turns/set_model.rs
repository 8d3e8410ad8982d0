//! `set_model` mid-turn applies to the next request and persists; an
//! unknown provider is `not_found`.

use super::*;

/// set_model mid-turn answers at once and applies to the next provider
/// request (here the steer's round), is recorded on disk, and survives a
/// restart with --continue.
#[test]
fn set_model_mid_turn_applies_to_next_request_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let mut rpc = Spawn::new()
        .ext("slow")
        .ext("echo")
        .model(SLOW)
        .data(dir.path())
        .start();
    let ready = rpc.ready();
    let sid = ready["session_id"].as_str().unwrap().to_owned();
    start_prompt(&mut rpc, "1", "[[n=40 delay_ms=40]]");
    first_delta(&mut rpc);
    let r = rpc.call(json!({"type": "set_model", "model": ECHO}), "sm");
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true);
    assert_eq!(r["model"], ECHO);
    assert!(
        !rpc.seen.iter().any(|f| f["type"] == "agent_end"),
        "set_model answered mid-turn, not after it"
    );
    let st = rpc.call(json!({"type": "get_state"}), "st");
    assert_eq!(st["model"], ECHO, "{st}");
    // The steer forces a second request; it must go to echo, which echoes.
    let r = rpc.call(json!({"type": "steer", "message": "echo says hi"}), "s");
    assert_eq!(r["queued"], true, "{r}");
    let (frames, resp) = rpc.until("prompt response", |f| is_answer_to(f, "1"));
    assert_eq!(resp["ok"], true, "{resp}");
    assert!(
        text_of(&frames).ends_with("tok echo says hi"),
        "{}",
        text_of(&frames)
    );

    let file = dir.path().join("sessions").join(format!("{sid}.jsonl"));
    let disk = std::fs::read_to_string(&file).expect("session file");
    let changes: Vec<Value> = disk
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "model_change")
        .collect();
    assert!(
        changes.iter().any(|c| c["model"] == ECHO),
        "model_change line for {ECHO}:\n{disk}"
    );

    let r = rpc.call(json!({"type": "shutdown"}), "bye");
    assert_eq!(r["ok"], true);
    let status = rpc
        .wait(Duration::from_secs(5))
        .expect("exits after shutdown");
    assert!(status.success(), "{status:?}");
    drop(rpc);

    let mut again = Spawn::new()
        .ext("slow")
        .ext("echo")
        .arg("--continue")
        .arg(&sid)
        .data(dir.path())
        .start();
    let ready = again.ready();
    assert_eq!(ready["session_id"], sid.as_str());
    assert_eq!(ready["model"], ECHO, "{ready}");
}

/// Unknown plugins and unknown providers of a known plugin are not_found.
#[test]
fn set_model_unknown_provider_is_not_found() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    for (id, model) in [("a", "nope:nope:nope-1"), ("b", "echo:nope:echo-1")] {
        let r = rpc.call(json!({"type": "set_model", "model": model}), id);
        assert_eq!(r["type"], "error", "{r}");
        assert_eq!(r["id"], id);
        assert_eq!(r["code"], "not_found", "{r}");
    }
    let st = rpc.call(json!({"type": "get_state"}), "st");
    assert_eq!(st["model"], ECHO, "a refused set_model changes nothing");
}
