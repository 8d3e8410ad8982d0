//! A prompt waiting for its model's extension to start (abortable, stores
//! nothing), and a model the extension does not offer.

use super::*;

#[test]
fn a_prompt_waiting_for_its_starting_extension_can_be_aborted_and_stores_nothing() {
    // The model's extension hangs in initialize: the prompt waits for its
    // check, other commands are answered meanwhile, and abort cancels it.
    let mut rpc = Host::start(
        Spawn::new()
            .ext("hang-init")
            .model("hang-init:hang:hang-1")
            .arg("--init-timeout")
            .arg("30"),
    );
    rpc.ready();
    rpc.send(json!({"type": "prompt", "id": "1", "message": "hello"}));
    rpc.send(json!({"type": "follow_up", "id": "2", "message": "then this"}));
    let state = call_ok(&mut rpc, json!({"type": "get_state"}), "st");
    assert_eq!(state["streaming"], false, "{state}");
    assert_eq!(state["queued"], 2, "{state}");
    let busy = rpc.call(json!({"type": "prompt", "message": "another"}), "3");
    assert_eq!(busy["code"], "busy", "{busy}");
    let abort = rpc.call(json!({"type": "abort"}), "a");
    assert_eq!(abort["ok"], true, "{abort}");
    assert_eq!(
        abort["dropped"],
        json!([
            {"type": "prompt", "id": "1", "message": "hello"},
            {"type": "follow_up", "id": "2", "message": "then this"}
        ]),
        "{abort}"
    );
    // Both were answered as cancelled before the abort, and never started.
    let seen = rpc.seen.clone();
    for id in ["1", "2"] {
        let answer = seen
            .iter()
            .find(|f| f["type"] == "response" && f["id"] == id)
            .unwrap_or_else(|| panic!("{id} answered: {seen:?}"));
        assert_eq!(answer["cancelled"], true, "{answer}");
    }
    assert!(seen.iter().all(|f| f["type"] != "agent_start"), "{seen:?}");
    let state = call_ok(&mut rpc, json!({"type": "get_state"}), "st2");
    assert_eq!(state["message_count"], 0, "{state}");
    assert_eq!(state["queued"], 0, "{state}");
    finish(rpc);
}

/// Waits for the `model_error` frame, with nothing sent to the host.
fn model_error(rpc: &mut Rpc) -> Value {
    let (before, frame) = rpc.until("model_error", |f| f["type"] == "model_error");
    assert!(before.is_empty(), "nothing else comes first: {before:?}");
    frame
}

#[test]
fn an_extension_model_it_does_not_offer_is_reported_once_it_has_initialized() {
    // From --model.
    let mut rpc = Host::start(Spawn::new().ext("echo").model("echo:echo:nope"));
    let ready = rpc.ready();
    assert_eq!(
        ready["model"], "echo:echo:nope",
        "ready does not wait: {ready}"
    );
    let frame = model_error(&mut rpc);
    assert_eq!(frame["model"], "echo:echo:nope", "{frame}");
    let message = frame["message"].as_str().expect("message");
    assert!(
        message.starts_with("provider echo:echo has no model \"nope\" (it has: echo-1"),
        "{message}"
    );
    assert!(message.contains("set_model"), "{message}");
    // The next prompt is refused, naming the models it does offer.
    let (_, err) = prompt(&mut rpc, "1", "hello");
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], "not_found", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("it has: echo-1"),
        "{err}"
    );
    // A model it offers runs, and no second model_error comes.
    set_model(&mut rpc, ECHO);
    assert_eq!(run_ok(&mut rpc, "2", "fine"), "fine");
    assert_eq!(
        rpc.seen
            .iter()
            .filter(|f| f["type"] == "model_error")
            .count(),
        1
    );
    finish(rpc);

    // From the config's default_model (valid syntax, known plugin).
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join("agent-rpc")).unwrap();
    std::fs::write(
        home.path().join("agent-rpc/config.toml"),
        "default_model = \"echo:nosuch:echo-1\"\n",
    )
    .unwrap();
    let mut rpc = Host::start(
        Spawn::new()
            .ext("echo")
            .env("XDG_CONFIG_HOME", home.path().to_str().unwrap()),
    );
    rpc.ready();
    let frame = model_error(&mut rpc);
    assert_eq!(frame["model"], "echo:nosuch:echo-1", "{frame}");
    assert!(
        frame["message"]
            .as_str()
            .unwrap_or("")
            .contains("has no provider \"nosuch\" (it has: echo"),
        "{frame}"
    );
    finish(rpc);
}

#[test]
fn a_model_the_extension_offers_gets_no_model_error() {
    let mut rpc = Host::start(Spawn::new().ext("echo").model(ECHO));
    rpc.ready();
    assert_eq!(run_ok(&mut rpc, "1", "hi"), "hi");
    assert!(
        rpc.seen.iter().all(|f| f["type"] != "model_error"),
        "{:?}",
        rpc.seen
    );
    finish(rpc);
}
