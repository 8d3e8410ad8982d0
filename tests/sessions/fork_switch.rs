//! `fork`, `switch_session` and `--continue <id> --fork`: the fork's
//! history on disk and in memory, the original left byte-identical,
//! `forked_from` in listings, every bad index and id, `busy` during a turn,
//! and the host's state (model, mode, thinking level, directory, lock)
//! following a switch. Every process is the real `rpc` binary.

use std::path::Path;
use std::time::Duration;

use crate::common::{
    call_ok, canonical, finish, get_state, message_text, messages, ok_prompt, read_jsonl, rpc_cli,
    session_file, Rpc, Spawn, ECHO, SLOW,
};
use serde_json::{json, Value};

/// A model of the echo extension other than `ECHO`, to see a switch
/// change the model.
const ECHO_COMPLETE: &str = "echo:echo:echo-complete";

// ---------------------------------------------------------------- helpers

/// The texts of the `message` entries of a session file.
fn stored_texts(path: &Path) -> Vec<String> {
    read_jsonl(path)
        .iter()
        .filter(|e| e["type"] == "message")
        .map(|e| message_text(&e["message"]))
        .collect()
}

fn texts(msgs: &[Value]) -> Vec<String> {
    msgs.iter().map(message_text).collect()
}

fn id_of(v: &Value) -> String {
    v["session_id"].as_str().expect("session_id").to_owned()
}

/// An error answer with `code`; returns its message.
fn expect_error(rpc: &mut Rpc, cmd: Value, id: &str, code: &str) -> String {
    let err = rpc.call(cmd, id);
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], code, "{err}");
    err["message"].as_str().expect("message").to_owned()
}

/// A start-up that must fail with `code` and exit status 2.
fn expect_startup_error(mut rpc: Rpc, code: &str) {
    let frame = rpc.recv();
    assert_eq!(frame["type"], "error", "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    let status = rpc.wait(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(2));
}

/// A host on `data` that has run a prompt for each text; returns it and
/// its session id.
fn host_with_history(data: &Path, prompts: &[&str]) -> (Rpc, String) {
    let mut h = Spawn::new().data(data).ext("echo").model(ECHO).start();
    let id = id_of(&h.ready());
    for (n, p) in prompts.iter().enumerate() {
        ok_prompt(&mut h, &format!("p{n}"), p);
    }
    (h, id)
}

// ---------------------------------------------------------------- fork

#[test]
fn fork_round_trips_by_default_and_at_an_index_leaving_the_original_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let (mut h, original) = host_with_history(data, &["one", "two", "three"]);
    call_ok(
        &mut h,
        json!({"type": "set_permission_mode", "mode": "accept-edits"}),
        "m",
    );
    call_ok(
        &mut h,
        json!({"type": "set_thinking_level", "level": "high"}),
        "t",
    );
    let original_path = session_file(data, &original);
    let original_bytes = std::fs::read(&original_path).unwrap();

    // Default: the whole history.
    let whole = call_ok(&mut h, json!({"type": "fork"}), "f1");
    let first_fork = id_of(&whole);
    assert_ne!(first_fork, original);
    assert_eq!(whole["forked_from"], original.as_str(), "{whole}");
    assert_eq!(whole["message_count"], 6, "{whole}");
    assert!(whole.get("message").is_none(), "nothing left out: {whole}");
    let state = get_state(&mut h, "s1");
    assert_eq!(state["session_id"], first_fork.as_str());
    assert_eq!(state["message_count"], 6);
    assert_eq!(state["model"], ECHO, "the model carries over");
    assert_eq!(
        state["permission_mode"], "accept-edits",
        "the mode carries over"
    );
    assert_eq!(state["thinking_level"], "high", "the level carries over");
    let stats = call_ok(&mut h, json!({"type": "get_session_stats"}), "st");
    assert_eq!(
        (stats["turns"].as_u64(), stats["input_tokens"].as_u64()),
        (Some(0), Some(0)),
        "a fork's totals start at zero: {stats}"
    );
    // Never listed as changed before it was made (file times come from a
    // coarser clock than `created_at`).
    let listed = call_ok(&mut h, json!({"type": "list_sessions"}), "l");
    for s in listed["sessions"].as_array().unwrap() {
        let time = |key: &str| {
            let text = s[key].as_str().unwrap_or_else(|| panic!("{key}: {s}"));
            humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{key} {text:?}: {e}"))
        };
        assert!(
            time("updated_at") >= time("created_at"),
            "updated before created: {s}"
        );
    }
    // Written at once (before any prompt), with its header naming the original.
    let fork_path = session_file(data, &first_fork);
    let lines = read_jsonl(&fork_path);
    assert_eq!(lines[0]["type"], "session");
    assert_eq!(lines[0]["forked_from"], original.as_str(), "{}", lines[0]);
    assert_eq!(lines[0]["permission_mode"], "accept-edits");
    assert_eq!(lines[0]["thinking_level"], "high");
    let history = ["one", "one", "two", "two", "three", "three"];
    assert_eq!(stored_texts(&fork_path), history);
    assert_eq!(texts(&messages(&mut h, "g1")), history);

    // At the second user message (index 2): "two" is handed back.
    let cut = call_ok(&mut h, json!({"type": "fork", "message_index": 2}), "f2");
    let second_fork = id_of(&cut);
    assert_eq!(cut["forked_from"], first_fork.as_str(), "{cut}");
    assert_eq!(cut["message_count"], 2);
    assert_eq!(cut["message"], "two", "{cut}");
    assert_eq!(texts(&messages(&mut h, "g2")), ["one", "one"]);
    assert_eq!(
        stored_texts(&session_file(data, &second_fork)),
        ["one", "one"]
    );
    // The fork goes on by itself; the sessions it came from do not change.
    ok_prompt(&mut h, "p9", "two, differently");
    assert_eq!(
        texts(&messages(&mut h, "g3")),
        ["one", "one", "two, differently", "two, differently"]
    );
    assert_eq!(stored_texts(&fork_path), history);
    // At index 0: an empty fork, the first message handed back.
    let empty = call_ok(&mut h, json!({"type": "fork", "message_index": 0}), "f3");
    assert_eq!(
        (empty["message_count"].as_u64(), empty["message"].as_str()),
        (Some(0), Some("one"))
    );
    assert!(messages(&mut h, "g4").is_empty());

    // list_sessions and `rpc sessions --json` show where each came from.
    let list = call_ok(&mut h, json!({"type": "list_sessions"}), "ls");
    let from = |listed: &[Value], id: &str| -> Value {
        listed
            .iter()
            .find(|s| s["session_id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {listed:?}"))["forked_from"]
            .clone()
    };
    let listed = list["sessions"].as_array().expect("sessions").clone();
    assert_eq!(listed.len(), 4, "{list}");
    assert_eq!(from(&listed, &original), Value::Null);
    assert_eq!(from(&listed, &first_fork), original.as_str());
    assert_eq!(from(&listed, &second_fork), first_fork.as_str());
    finish(h);
    let out = rpc_cli(data, &["sessions", "--all", "--json"]);
    assert!(out.status.success());
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("--json");
    assert_eq!(from(&listed, &original), Value::Null);
    assert_eq!(from(&listed, &second_fork), first_fork.as_str());

    assert_eq!(
        std::fs::read(&original_path).unwrap(),
        original_bytes,
        "the original session file is byte-identical"
    );
}

#[test]
fn fork_refuses_every_index_that_is_not_a_user_message_or_the_length() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let (mut h, original) = host_with_history(data, &["one", "two"]);
    let before = std::fs::read(session_file(data, &original)).unwrap();
    // 4 messages: user 0, assistant 1, user 2, assistant 3.
    for (n, index) in [
        json!(1),
        json!(3),
        json!(5),
        json!(1000),
        json!(-1),
        json!(1.5),
        json!("2"),
    ]
    .into_iter()
    .enumerate()
    {
        let cmd = json!({"type": "fork", "message_index": index});
        let message = expect_error(&mut h, cmd, &format!("b{n}"), "invalid_params");
        assert!(message.contains("message_index"), "{message}");
    }
    let message = expect_error(
        &mut h,
        json!({"type": "fork", "message_index": 1}),
        "asst",
        "invalid_params",
    );
    assert!(message.contains("assistant"), "{message}");
    // Nothing changed: same session, same file, no other file.
    assert_eq!(get_state(&mut h, "s")["session_id"], original.as_str());
    let files = std::fs::read_dir(data.join("sessions")).unwrap().count();
    assert_eq!(files, 1, "a refused fork writes nothing");
    assert_eq!(
        std::fs::read(session_file(data, &original)).unwrap(),
        before
    );
    finish(h);
}

#[test]
fn fork_of_a_user_message_carrying_tool_results_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut h, _) = host_with_history(tmp.path(), &[]);
    // A tool round: user, assistant tool_use, user tool_result, assistant.
    call_ok(
        &mut h,
        json!({"type": "set_permission_mode", "mode": "allow-all"}),
        "m",
    );
    ok_prompt(&mut h, "p", "look [[tool=ls]]");
    let msgs = messages(&mut h, "g");
    let results_at = msgs
        .iter()
        .position(|m| m["role"] == "user" && m["content"].to_string().contains("tool_result"))
        .unwrap_or_else(|| panic!("no tool_result message: {msgs:?}"));
    let message = expect_error(
        &mut h,
        json!({"type": "fork", "message_index": results_at}),
        "f",
        "invalid_params",
    );
    assert!(message.contains("tool results"), "{message}");
    finish(h);
}

#[test]
fn fork_and_switch_are_busy_during_a_turn() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let (other_host, other) = host_with_history(data, &["elsewhere"]);
    finish(other_host);
    let mut h = Spawn::new().data(data).ext("slow").model(SLOW).start();
    let id = id_of(&h.ready());
    h.send(json!({"type": "prompt", "id": "1", "message": "[[n=20 delay_ms=40]]"}));
    h.until("first delta", |f| f["type"] == "message_update");
    for (n, cmd) in [
        json!({"type": "fork"}),
        json!({"type": "fork", "message_index": 0}),
        json!({"type": "switch_session", "session_id": other}),
    ]
    .into_iter()
    .enumerate()
    {
        let message = expect_error(&mut h, cmd, &format!("b{n}"), "busy");
        assert!(message.contains("abort first"), "{message}");
    }
    let (_, done) = h.until("prompt 1", |f| crate::common::is_answer_to(f, "1"));
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(get_state(&mut h, "s")["session_id"], id.as_str());
    // Once idle, both work.
    let fork = call_ok(&mut h, json!({"type": "fork"}), "f");
    assert_eq!(fork["forked_from"], id.as_str());
    let switched = call_ok(
        &mut h,
        json!({"type": "switch_session", "session_id": other}),
        "w",
    );
    assert_eq!(switched["session_id"], other.as_str());
    finish(h);
}

// ---------------------------------------------------------------- switch

#[test]
fn switch_session_follows_history_model_mode_level_and_directory_and_releases_the_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // S1: in A, echo-1, accept-edits, thinking high.
    let mut h1 = Spawn::new()
        .data(data)
        .ext("echo")
        .model(ECHO)
        .current_dir(dir_a.path())
        .arg("--permission-mode")
        .arg("accept-edits")
        .arg("--thinking")
        .arg("high")
        .start();
    let s1 = id_of(&h1.ready());
    ok_prompt(&mut h1, "1", "alpha");
    finish(h1);
    let s1_bytes = std::fs::read(session_file(data, &s1)).unwrap();

    // S2 in B on another model, with the defaults; then switch to S1.
    let mut h = Spawn::new()
        .data(data)
        .ext("echo")
        .model(ECHO_COMPLETE)
        .current_dir(dir_b.path())
        .start();
    let s2 = id_of(&h.ready());
    ok_prompt(&mut h, "2", "beta");
    let switched = call_ok(
        &mut h,
        json!({"type": "switch_session", "session_id": s1}),
        "w1",
    );
    assert_eq!(switched["session_id"], s1.as_str(), "{switched}");
    assert_eq!(switched["model"], ECHO);
    assert_eq!(switched["message_count"], 2);
    assert_eq!(switched["permission_mode"], "accept-edits");
    assert_eq!(switched["thinking_level"], "high");
    assert_eq!(switched["cwd"], canonical(dir_a.path()).as_str());
    assert!(switched["usage"]["output_tokens"].is_u64(), "{switched}");
    assert!(switched["context_files"].is_array(), "{switched}");
    assert!(
        h.seen
            .iter()
            .any(|f| f["type"] == "model_changed" && f["model"] == ECHO),
        "a model_changed event announces the switch's model"
    );
    let state = get_state(&mut h, "s1");
    assert_eq!(state["session_id"], s1.as_str());
    assert_eq!(
        (state["model"].clone(), state["permission_mode"].clone()),
        (json!(ECHO), json!("accept-edits"))
    );
    assert_eq!(state["cwd"], canonical(dir_a.path()).as_str());
    assert_eq!(texts(&messages(&mut h, "g1")), ["alpha", "alpha"]);
    assert_eq!(
        std::fs::read(session_file(data, &s1)).unwrap(),
        s1_bytes,
        "a switch alone writes nothing"
    );

    // S2's lock was released: another process can resume it now.
    let mut other = Spawn::new()
        .data(data)
        .ext("echo")
        .arg("--continue")
        .arg(&s2)
        .start();
    assert_eq!(other.ready()["message_count"], 2);
    // While it holds S2, switching back is refused.
    let message = expect_error(
        &mut h,
        json!({"type": "switch_session", "session_id": s2}),
        "w2",
        "session_locked",
    );
    assert!(message.contains(&s2), "{message}");
    assert_eq!(
        get_state(&mut h, "s2")["session_id"],
        s1.as_str(),
        "a refused switch changes nothing"
    );
    finish(other);

    // Back to S2: its model, mode, level and directory again.
    let back = call_ok(
        &mut h,
        json!({"type": "switch_session", "session_id": s2}),
        "w3",
    );
    assert_eq!(back["model"], ECHO_COMPLETE);
    assert_eq!(back["permission_mode"], "ask");
    assert_eq!(back["thinking_level"], "off");
    assert_eq!(back["cwd"], canonical(dir_b.path()).as_str());
    // S1 is free again.
    let mut other = Spawn::new()
        .data(data)
        .ext("echo")
        .arg("--continue")
        .arg(&s1)
        .start();
    assert_eq!(other.ready()["session_id"], s1.as_str());
    finish(other);
    // The current session: answered without reopening.
    let same = call_ok(
        &mut h,
        json!({"type": "switch_session", "session_id": s2}),
        "w4",
    );
    assert_eq!(
        (same["session_id"].as_str(), same["message_count"].as_u64()),
        (Some(s2.as_str()), Some(2))
    );
    // Prompts now go to S2, on its model.
    ok_prompt(&mut h, "3", "gamma");
    assert_eq!(
        texts(&messages(&mut h, "g2")),
        ["beta", "beta", "gamma", "gamma"]
    );
    finish(h);
    assert_eq!(
        stored_texts(&session_file(data, &s2)),
        ["beta", "beta", "gamma", "gamma"]
    );
    assert_eq!(std::fs::read(session_file(data, &s1)).unwrap(), s1_bytes);
}

#[test]
fn switch_session_refuses_unknown_malformed_and_missing_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut h, id) = host_with_history(tmp.path(), &["stay"]);
    let unknown = "0192f0e4-7c2a-7b4e-9d1e-3f5a6b7c8d9e";
    let message = expect_error(
        &mut h,
        json!({"type": "switch_session", "session_id": unknown}),
        "u",
        "not_found",
    );
    assert!(message.contains(unknown), "{message}");
    for (n, bad) in ["../x", "", "a/b", "x y"].into_iter().enumerate() {
        expect_error(
            &mut h,
            json!({"type": "switch_session", "session_id": bad}),
            &format!("m{n}"),
            "invalid_params",
        );
    }
    expect_error(
        &mut h,
        json!({"type": "switch_session"}),
        "none",
        "invalid_params",
    );
    expect_error(
        &mut h,
        json!({"type": "switch_session", "session_id": 7}),
        "num",
        "invalid_params",
    );
    let state = get_state(&mut h, "s");
    assert_eq!(
        (
            state["session_id"].as_str(),
            state["message_count"].as_u64()
        ),
        (Some(id.as_str()), Some(2))
    );
    ok_prompt(&mut h, "after", "still here");
    finish(h);
}

// ---------------------------------------------------------------- --fork

#[test]
fn continue_with_fork_resumes_a_copy_and_leaves_the_original_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let (h, original) = host_with_history(data, &["one", "two"]);
    finish(h);
    let original_bytes = std::fs::read(session_file(data, &original)).unwrap();

    let mut forked = Spawn::new()
        .data(data)
        .ext("echo")
        .arg("--continue")
        .arg(&original)
        .arg("--fork")
        .start();
    let ready = forked.ready();
    let fork = id_of(&ready);
    assert_ne!(fork, original);
    assert_eq!(ready["message_count"], 4, "{ready}");
    assert_eq!(ready["model"], ECHO);
    assert_eq!(ready["usage"]["input_tokens"], 0, "{ready}");
    let header = &read_jsonl(&session_file(data, &fork))[0];
    assert_eq!(header["forked_from"], original.as_str(), "{header}");
    // The original is not held: another process may resume it meanwhile.
    let mut again = Spawn::new()
        .data(data)
        .ext("echo")
        .arg("--continue")
        .arg(&original)
        .start();
    assert_eq!(again.ready()["session_id"], original.as_str());
    finish(again);
    ok_prompt(&mut forked, "3", "three");
    assert_eq!(
        texts(&messages(&mut forked, "g")),
        ["one", "one", "two", "two", "three", "three"]
    );
    finish(forked);
    assert_eq!(
        std::fs::read(session_file(data, &original)).unwrap(),
        original_bytes
    );
    assert_eq!(stored_texts(&session_file(data, &fork)).len(), 6);

    // Forking an unknown session fails like --continue does.
    let bad = Spawn::new()
        .data(data)
        .ext("echo")
        .arg("--continue")
        .arg("no-such-session")
        .arg("--fork")
        .start();
    expect_startup_error(bad, "not_found");
    // --fork alone is a usage error.
    let out = rpc_cli(data, &["--fork"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_fork_survives_a_kill_right_after_its_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let (mut h, original) = host_with_history(data, &["keep me"]);
    let fork = id_of(&call_ok(&mut h, json!({"type": "fork"}), "f"));
    h.signal("KILL");
    assert!(h.wait(Duration::from_secs(5)).is_some(), "killed");
    let mut resumed = Spawn::new()
        .data(data)
        .ext("echo")
        .arg("--continue")
        .arg(&fork)
        .start();
    let ready = resumed.ready();
    assert_eq!(ready["session_id"], fork.as_str());
    assert_eq!(ready["message_count"], 2, "{ready}");
    assert_eq!(texts(&messages(&mut resumed, "g")), ["keep me", "keep me"]);
    finish(resumed);
    assert_eq!(
        read_jsonl(&session_file(data, &fork))[0]["forked_from"],
        original.as_str()
    );
}

#[test]
fn switch_session_keeps_the_directory_given_with_cwd() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let (home, pinned) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut first = Spawn::new()
        .data(data)
        .ext("echo")
        .model(ECHO)
        .current_dir(home.path())
        .start();
    let elsewhere = id_of(&first.ready());
    ok_prompt(&mut first, "1", "from home");
    finish(first);
    let mut h = Spawn::new()
        .data(data)
        .ext("echo")
        .model(ECHO)
        .arg("--cwd")
        .arg(pinned.path().to_str().unwrap())
        .start();
    h.ready();
    let switched = call_ok(
        &mut h,
        json!({"type": "switch_session", "session_id": elsewhere}),
        "w",
    );
    assert_eq!(
        switched["cwd"],
        canonical(pinned.path()).as_str(),
        "{switched}"
    );
    assert_eq!(
        get_state(&mut h, "s")["cwd"],
        canonical(pinned.path()).as_str()
    );
    finish(h);
}
