//! `--continue`: id, model, history and usage come back and new turns
//! append; without an id the latest session; `--model` overrides the stored one.

use super::*;

#[test]
fn continue_restores_id_model_history_and_usage_and_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();

    let mut a = echo_spawn_in(data).model(ECHO).start();
    let ready = a.ready();
    let id = ready["session_id"].as_str().unwrap().to_owned();
    assert_eq!(
        ok_prompt(&mut a, "1", "remember this sentence"),
        "remember this sentence"
    );
    let history = messages(&mut a, "msgs");
    let stats = call_ok(&mut a, json!({"type": "get_session_stats"}), "s");
    assert_eq!(stats["turns"], 1);
    assert_eq!(stats["message_count"], 2);
    assert!(stats["input_tokens"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["output_tokens"].as_u64().unwrap() > 0, "{stats}");
    finish(a);

    // No --model: the stored one comes back.
    let mut b = echo_spawn_in(data).arg("--continue").arg(&id).start();
    let ready = b.ready();
    assert_eq!(ready["session_id"], id.as_str());
    assert_eq!(ready["model"], ECHO);
    assert_eq!(ready["message_count"], 2);
    assert_eq!(
        ready["usage"]["input_tokens"], stats["input_tokens"],
        "{ready}"
    );
    assert_eq!(
        ready["usage"]["output_tokens"], stats["output_tokens"],
        "{ready}"
    );
    assert_eq!(
        messages(&mut b, "msgs"),
        history,
        "history must survive a restart unchanged"
    );
    let stats2 = call_ok(&mut b, json!({"type": "get_session_stats"}), "s");
    for k in [
        "session_id",
        "model",
        "message_count",
        "turns",
        "input_tokens",
        "output_tokens",
    ] {
        assert_eq!(stats2[k], stats[k], "get_session_stats.{k} after resume");
    }

    // A further prompt appends to the same session (and to its file).
    assert_eq!(ok_prompt(&mut b, "2", "and this one"), "and this one");
    let after = messages(&mut b, "msgs");
    assert_eq!(after.len(), 4);
    assert_eq!(&after[..2], &history[..]);
    assert_eq!(after[2]["content"], "and this one");
    let stats3 = call_ok(&mut b, json!({"type": "get_session_stats"}), "s");
    assert_eq!(stats3["turns"], 2);
    assert!(stats3["input_tokens"].as_u64() > stats["input_tokens"].as_u64());
    finish(b);

    let mut c = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(c.ready()["message_count"], 4);
    assert_eq!(
        sessions_in(data).len(),
        1,
        "resuming must not create another file"
    );
    finish(c);
}

#[test]
fn continue_without_id_resumes_the_most_recently_updated_session() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut ids = Vec::new();
    for text in ["older session", "newer session"] {
        let mut h = echo_spawn_in(data).model(ECHO).start();
        ids.push(h.ready()["session_id"].as_str().unwrap().to_owned());
        ok_prompt(&mut h, "1", text);
        finish(h);
        // Keep modification times apart even on coarse clocks.
        std::thread::sleep(Duration::from_millis(30));
    }
    let (older, newer) = (&ids[0], &ids[1]);

    let mut h = echo_spawn_in(data).arg("--continue").start();
    assert_eq!(h.ready()["session_id"], newer.as_str());
    finish(h);

    // Touch the older one by continuing it with a prompt.
    let mut h = echo_spawn_in(data).arg("--continue").arg(older).start();
    h.ready();
    ok_prompt(&mut h, "1", "touching the older one");
    finish(h);

    let mut h = echo_spawn_in(data).arg("--continue").start();
    let ready = h.ready();
    assert_eq!(ready["session_id"], older.as_str());
    assert_eq!(ready["message_count"], 4);
    finish(h);
}

#[test]
fn continue_with_model_overrides_and_persists_the_stored_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut h = echo_spawn_in(data).model(ECHO).start();
    let id = h.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut h, "1", "hi");
    finish(h);

    let other = "echo:echo:echo-complete";
    let mut h = echo_spawn_in(data)
        .model(other)
        .arg("--continue")
        .arg(&id)
        .start();
    let ready = h.ready();
    assert_eq!(ready["session_id"], id.as_str());
    assert_eq!(ready["model"], other);
    let state = call_ok(&mut h, json!({"type": "get_state"}), "st");
    assert_eq!(state["model"], other);
    // The overriding model is the one actually used.
    assert_eq!(
        ok_prompt(&mut h, "2", "non streaming now"),
        "non streaming now"
    );
    finish(h);

    // The override was recorded in the session.
    let mut h = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(h.ready()["model"], other);
    finish(h);
}

/// `--continue` of a session whose model is an extension's, without that
/// extension: `ready` names the stored model and a `model_error` follows at
/// once saying the extension is not installed, rather than the first
/// prompt finding out.
#[test]
fn continue_without_the_sessions_extension_says_so_after_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut a = echo_spawn_in(data).model(ECHO).start();
    let id = a.ready()["session_id"].as_str().unwrap().to_owned();
    assert_eq!(ok_prompt(&mut a, "1", "remember me"), "remember me");
    finish(a);

    let mut b = Spawn::new().data(data).arg("--continue").arg(&id).start();
    let ready = b.ready();
    assert_eq!(ready["model"], ECHO, "{ready}");
    let (_, error) = b.until("model_error", |f| f["type"] == "model_error");
    assert_eq!(error["model"], ECHO, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("no provider extension \"echo\" is installed"),
        "{message}"
    );
    assert!(
        message.ends_with("pick another model with set_model, or prompts will be refused"),
        "{message}"
    );
    // And so they are, saying why.
    let refused = b.call(json!({"type": "prompt", "message": "hi"}), "p");
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["code"], "not_found", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("\"echo\""),
        "{refused}"
    );
    finish(b);
}
