//! Streams: no stray events after aborting a flood, a 20,000-delta reply
//! with bounded memory, `set_model`s in order, attachments, a null id.

use super::*;

/// Events the old request still produces after an abort never leak into the
/// next turn on the same extension.
#[test]
fn no_stray_events_after_aborting_a_flood() {
    let (mut rpc, _) = host(&["flood"], FLOOD);
    let old = start_prompt(&mut rpc, "1", "[[n=1000000]]");
    first_delta(&mut rpc);
    let ab = rpc.call(json!({"type": "abort"}), "a");
    assert_eq!(ab["ok"], true, "{ab}");
    let new = start_prompt(&mut rpc, "2", "[[n=3]]");
    assert_ne!(old, new);
    let (frames, resp) = rpc.until("prompt 2 response", |f| is_answer_to(f, "2"));
    assert_eq!(resp["ok"], true, "{resp}");
    for f in &frames {
        assert_ne!(
            f["prompt_id"],
            old.as_str(),
            "frame of the aborted turn after its end: {f}"
        );
    }
    assert_eq!(text_of(&frames), "tok tok tok ");
    assert_eq!(frames.iter().filter(|f| is_update(f)).count(), 3);
}

/// A 20,000-delta reply arrives whole, with bounded host memory.
#[test]
fn flood_of_20000_deltas_arrives_whole_with_bounded_memory() {
    let (mut rpc, _) = host(&["flood"], FLOOD);
    let (frames, resp) = prompt(&mut rpc, "1", "go");
    assert_eq!(resp["ok"], true, "{resp}");
    assert_eq!(frames.iter().filter(|f| is_update(f)).count(), 20_000);
    assert!(
        text_of(&frames) == "tok ".repeat(20_000),
        "concatenated text differs"
    );
    let hwm = vm_hwm_kib(rpc.pid()).expect("VmHWM of the host");
    eprintln!("host VmHWM after 20000 deltas: {hwm} KiB");
    assert!(hwm < 64 * 1024, "host peak RSS {hwm} KiB >= 64 MiB");
}

/// Regression (found by the docs audit): set_models sent before the
/// extension had started were applied in the order their checks finished,
/// so the earlier one could win, and a prompt sent right after them ran on
/// whatever model was set at that moment.
#[test]
fn set_models_apply_in_order_and_a_prompt_waits_for_them() {
    let mut rpc = Spawn::new().ext("echo").start();
    rpc.ready();
    // One write, so all three arrive before the extension has answered
    // initialize.
    rpc.send_raw(
        concat!(
            r#"{"type":"set_model","id":"a","model":"echo:echo:echo-1"}"#,
            "\n",
            r#"{"type":"set_model","id":"b","model":"echo:echo:echo-complete"}"#,
            "\n",
            r#"{"type":"prompt","id":"p","message":"after both"}"#,
            "\n",
        )
        .as_bytes(),
    );
    let (before, resp) = rpc.until("prompt response", |v| {
        v["type"] == "response" && v["id"] == "p"
    });
    let order: Vec<String> = before
        .iter()
        .chain(std::iter::once(&resp))
        .filter(|f| f["type"] == "response" || f["type"] == "agent_start")
        .map(|f| format!("{}:{}", f["type"].as_str().unwrap_or(""), f["id"]))
        .collect();
    assert_eq!(
        order,
        [
            "response:\"a\"",
            "response:\"b\"",
            "agent_start:\"p\"",
            "response:\"p\""
        ]
    );
    assert_eq!(resp["ok"], true, "{resp}");
    // echo-complete does not stream: the whole answer comes as one delta.
    let deltas: Vec<&Value> = before
        .iter()
        .filter(|f| f["type"] == "message_update")
        .collect();
    assert_eq!(deltas.len(), 1, "{deltas:?}");
    assert_eq!(deltas[0]["event"]["delta"], "after both");
    let state = rpc.call(json!({"type": "get_state"}), "s");
    assert_eq!(state["model"], "echo:echo:echo-complete");
}

/// SPEC §2: attachments follow the message text as blocks, in order, in the
/// history and in what the provider is sent; `mime_type` is accepted for
/// `media_type`.
#[test]
fn attachments_become_blocks_after_the_text() {
    let mut rpc = Spawn::new().ext("echo").model("echo:echo:echo-1").start();
    rpc.ready();
    rpc.send(
        json!({"type": "prompt", "id": "a", "message": "look [[show=messages]]",
        "attachments": [
            {"type": "text", "text": "notes"},
            {"type": "image", "mime_type": "image/png", "data": "iVBORw0KGgo="}
        ]}),
    );
    let (frames, resp) = rpc.until("prompt response", |v| {
        v["type"] == "response" && v["id"] == "a"
    });
    assert_eq!(resp["ok"], true, "{resp}");
    let want = json!([
        {"type": "text", "text": "look [[show=messages]]"},
        {"type": "text", "text": "notes"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    ]);
    let sent: Value = serde_json::from_str(&text_of(&frames)).expect("the echo is JSON");
    assert_eq!(sent[0]["content"], want, "what the provider got: {sent}");
    let msgs = rpc.call(json!({"type": "get_messages"}), "m");
    assert_eq!(msgs["messages"][0]["content"], want, "{msgs}");
}

/// An explicit `"id": null` is the same as no id: answered with `id: null`.
#[test]
fn an_explicit_null_id_is_answered_with_null() {
    let mut rpc = Spawn::new().start();
    rpc.ready();
    rpc.send_raw(b"{\"type\":\"get_state\",\"id\":null}\n");
    let v = rpc.recv();
    assert_eq!(v["type"], "response", "{v}");
    assert_eq!(v["command"], "get_state", "{v}");
    assert_eq!(v["id"], Value::Null, "{v}");
}

/// Prompts waiting for a `set_model` check (the extension has not answered
/// `initialize` yet) are the session's queue too: an abort drops them and
/// `new_session` is busy until they are gone (regression: an abort with no
/// turn running answered `dropped: []` and left them to run, and
/// `new_session` let them run in the new session).
#[test]
fn prompts_waiting_for_a_model_check_are_dropped_by_abort() {
    let mut rpc = Spawn::new()
        .ext("echo")
        .ext("hang-init")
        .model(ECHO)
        .arg("--init-timeout")
        .arg("3")
        .start();
    rpc.ready();
    rpc.send(json!({"type": "set_model", "id": "m", "model": "hang-init:hang:hang-1"}));
    rpc.send(json!({"type": "prompt", "id": "A", "message": "waiting"}));
    let busy = rpc.call(json!({"type": "new_session"}), "n");
    assert_eq!(busy["code"], "busy", "{busy}");
    let abort = rpc.call(json!({"type": "abort"}), "x");
    assert_eq!(
        abort["dropped"],
        json!([{"type": "prompt", "id": "A", "message": "waiting"}]),
        "{abort}"
    );
    let dropped = rpc
        .seen
        .iter()
        .find(|f| is_answer_to(f, "A"))
        .cloned()
        .expect("the dropped prompt was answered before the abort");
    assert_eq!(dropped["cancelled"], true, "{dropped}");
    // The check still ends (the extension never initialises), and nothing
    // of the dropped prompt ran.
    let checked = rpc.answer(&json!("m"));
    assert_eq!(checked["type"], "error", "{checked}");
    assert!(!rpc.seen.iter().any(|f| f["type"] == "agent_start"));
    assert_eq!(ok_prompt(&mut rpc, "B", "now it runs"), "now it runs");
    finish(rpc);
}
