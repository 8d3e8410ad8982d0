//! What an extension is sent: the stream params (ids, the history as
//! Anthropic messages, the system prompt) and the `initialize` params.

use super::*;

#[test]
fn stream_params_carry_ids_anthropic_messages_history_and_system_prompt() {
    let mut rpc = Host::start(
        Spawn::new()
            .ext("echo")
            .model(ECHO)
            .arg("--system-prompt")
            .arg("be terse"),
    );
    rpc.ready();
    assert_eq!(run_ok(&mut rpc, "1", "first words"), "first words");
    let text = run_ok(&mut rpc, "2", "[[show=params]]");
    let params: Value = serde_json::from_str(&text).expect("params JSON");
    assert_eq!(params["provider_id"], "echo", "{params}");
    assert_eq!(params["model_id"], "echo-1", "the bare model id: {params}");
    assert_eq!(params["system_prompt"], "be terse");
    let messages = params["messages"].as_array().expect("messages");
    assert_eq!(
        messages.len(),
        3,
        "history from the earlier turn included: {params}"
    );
    assert_eq!(
        messages[0],
        json!({"role": "user", "content": "first words"})
    );
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(message_text(&messages[1]), "first words");
    assert_eq!(
        messages[2],
        json!({"role": "user", "content": "[[show=params]]"})
    );
    // Host markers (stop_reason, error, aborted) stay out of what is sent.
    for m in messages {
        let keys: BTreeSet<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["role", "content"]), "{m}");
    }
    finish(rpc);
}

#[test]
fn initialize_params_carry_plugin_id_root_and_config() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_copy(tmp.path(), "configured", "echo", |m| {
        m["extension"]["config"] = json!({"greeting": "hi", "n": 3});
    });
    let mut rpc = Host::start(with_plugin(Spawn::new(), &dir).model("configured:echo:echo-1"));
    rpc.ready();
    let text = run_ok(&mut rpc, "1", "[[show=init]]");
    let init: Value = serde_json::from_str(&text).expect("init JSON");
    assert_eq!(init["plugin_id"], "configured", "{init}");
    assert_eq!(init["config"], json!({"greeting": "hi", "n": 3}), "{init}");
    assert_eq!(init["extension_protocol_version"], 1, "{init}");
    assert!(init["host_version"].is_string(), "{init}");
    let root = Path::new(init["plugin_root"].as_str().expect("plugin_root"));
    assert_eq!(root.canonicalize().unwrap(), dir.canonicalize().unwrap());
    finish(rpc);
}
