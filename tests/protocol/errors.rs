//! Errors reachable from the wire: which code every kind of bad command
//! earns and under which id, and that a rejected line changes nothing. The
//! rejected lines are tables (`REJECTED` in each test), run in order against
//! a host that already holds a turn.

use super::*;

#[test]
fn unknown_type_is_unknown_command_with_the_id() {
    #[rustfmt::skip]
    const REJECTED: Rejections = &[
        (r#"{"type":"frobnicate","id":"u1"}"#, "unknown_command", Some("u1")),
        (r#"{"type":"","id":"u2"}"#, "unknown_command", Some("u2")),
        // Case matters: command names are exact.
        (r#"{"type":"GET_STATE","id":"u3"}"#, "unknown_command", Some("u3")),
    ];
    let (mut rpc, before) = primed_host();
    rejects_each(&mut rpc, &before, REJECTED);
}

#[test]
fn missing_or_mistyped_message_is_invalid_params_with_the_id() {
    #[rustfmt::skip]
    const REJECTED: Rejections = &[
        (r#"{"type":"prompt","id":"m1"}"#, "invalid_params", Some("m1")),
        (r#"{"type":"prompt","id":"m2","message":42}"#, "invalid_params", Some("m2")),
        (r#"{"type":"prompt","id":"m3","message":null}"#, "invalid_params", Some("m3")),
        (r#"{"type":"prompt","id":"m4","message":{"text":"hi"}}"#, "invalid_params", Some("m4")),
        // Same field, the other commands that carry it.
        (r#"{"type":"follow_up","id":"m5"}"#, "invalid_params", Some("m5")),
        (r#"{"type":"steer","id":"m6","message":[1]}"#, "invalid_params", Some("m6")),
    ];
    let (mut rpc, before) = primed_host();
    rejects_each(&mut rpc, &before, REJECTED);
}

#[test]
fn the_session_commands_reject_missing_or_mistyped_fields() {
    #[rustfmt::skip]
    const REJECTED: Rejections = &[
        (r#"{"type":"set_auto_compaction","id":"a1"}"#, "invalid_params", Some("a1")),
        (r#"{"type":"set_auto_compaction","id":"a2","enabled":"no"}"#, "invalid_params", Some("a2")),
        (r#"{"type":"get_messages","id":"a3","all":"yes"}"#, "invalid_params", Some("a3")),
        (r#"{"type":"get_messages","id":"a4","all":1}"#, "invalid_params", Some("a4")),
        (r#"{"type":"compact","id":"a5","instructions":5}"#, "invalid_params", Some("a5")),
        (r#"{"type":"delete_session","id":"a6"}"#, "invalid_params", Some("a6")),
        (r#"{"type":"delete_session","id":"a7","session_id":7}"#, "invalid_params", Some("a7")),
        (r#"{"type":"fork","id":"a8","message_index":"2"}"#, "invalid_params", Some("a8")),
        (r#"{"type":"switch_session","id":"a9"}"#, "invalid_params", Some("a9")),
        (r#"{"type":"set_thinking_level","id":"a10","level":"huge"}"#, "invalid_params", Some("a10")),
        (r#"{"type":"export_session","id":"a11"}"#, "invalid_params", Some("a11")),
        (r#"{"type":"export_session","id":"a12","session_id":["x"]}"#, "invalid_params", Some("a12")),
        (r#"{"type":"import_session","id":"a13"}"#, "invalid_params", Some("a13")),
        (r#"{"type":"import_session","id":"a14","data":{"type":"agent_rpc_export"}}"#, "invalid_params", Some("a14")),
        (r#"{"type":"import_session","id":"a15","data":"","new_id":"yes"}"#, "invalid_params", Some("a15")),
        (r#"{"type":"import_session","id":"a16","data":"x\n"}"#, "invalid_params", Some("a16")),
    ];
    let (mut rpc, before) = primed_host();
    rejects_each(&mut rpc, &before, REJECTED);
}

#[test]
fn set_model_without_a_model_is_invalid_params_with_the_id() {
    #[rustfmt::skip]
    const REJECTED: Rejections = &[
        (r#"{"type":"set_model","id":"s1"}"#, "invalid_params", Some("s1")),
        (r#"{"type":"set_model","id":"s2","model":7}"#, "invalid_params", Some("s2")),
    ];
    let (mut rpc, before) = primed_host();
    rejects_each(&mut rpc, &before, REJECTED);
}

#[test]
fn missing_or_non_string_type_is_invalid_request_with_the_id() {
    #[rustfmt::skip]
    const REJECTED: Rejections = &[
        (r#"{"id":"t1","message":"hi"}"#, "invalid_request", Some("t1")),
        (r#"{"type":3,"id":"t2"}"#, "invalid_request", Some("t2")),
        (r#"{"type":null,"id":"t3"}"#, "invalid_request", Some("t3")),
        (r#"{"type":["prompt"],"id":"t4"}"#, "invalid_request", Some("t4")),
    ];
    let (mut rpc, before) = primed_host();
    rejects_each(&mut rpc, &before, REJECTED);
}

#[test]
fn non_object_json_is_invalid_request_with_null_id() {
    #[rustfmt::skip]
    const REJECTED: Rejections = &[
        (r#"[{"type":"get_state","id":"a"}]"#, "invalid_request", None),
        ("42", "invalid_request", None),
        (r#""get_state""#, "invalid_request", None),
        ("null", "invalid_request", None),
    ];
    let (mut rpc, before) = primed_host();
    rejects_each(&mut rpc, &before, REJECTED);
}

#[test]
fn non_json_and_invalid_utf8_are_parse_error_with_null_id() {
    #[rustfmt::skip]
    const REJECTED: Rejections = &[
        ("hello, host", "parse_error", None),
        (r#"{"type":"get_state","id":"x""#, "parse_error", None),
        (r#"{"type":"get_state","id":"x"} trailing"#, "parse_error", None),
    ];
    let (mut rpc, before) = primed_host();
    rejects_each(&mut rpc, &before, REJECTED);
    // Invalid UTF-8 inside an otherwise fine command: the id cannot be
    // trusted, so it is null.
    expect_error(
        &mut rpc,
        b"{\"type\":\"get_state\",\"id\":\"\xff\xfe\"}",
        "parse_error",
        Value::Null,
    );
    assert_state_unchanged(&mut rpc, &before, "invalid UTF-8");
    expect_error(&mut rpc, b"\xc3\x28", "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "invalid UTF-8");
}

#[test]
fn id_that_is_not_a_string_or_number_is_invalid_request_with_null_id() {
    #[rustfmt::skip]
    const REJECTED: Rejections = &[
        (r#"{"type":"get_state","id":{"a":1}}"#, "invalid_request", None),
        (r#"{"type":"get_state","id":[1]}"#, "invalid_request", None),
        (r#"{"type":"get_state","id":true}"#, "invalid_request", None),
    ];
    let (mut rpc, before) = primed_host();
    rejects_each(&mut rpc, &before, REJECTED);
}

#[test]
fn ids_are_echoed_verbatim_numbers_as_numbers() {
    let (mut rpc, _) = echo_host();
    for id in [
        json!(7),
        json!(0),
        json!(-3),
        json!(2.5),
        json!(9007199254740993u64),
        json!("ü ✓ \"q\""),
    ] {
        rpc.send(json!({"type": "get_state", "id": id}));
        let r = rpc.recv();
        assert_eq!(r["type"], "response", "{r}");
        assert_eq!(
            r["id"], id,
            "id must come back verbatim (type and value): {r}"
        );
    }
    // Errors too: a numeric id on a rejected command stays a number.
    expect_error(
        &mut rpc,
        br#"{"type":"nope","id":12}"#,
        "unknown_command",
        json!(12),
    );
    // No id at all: answered with id null.
    rpc.send(json!({"type": "get_state"}));
    let r = rpc.recv();
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let (mut rpc, _) = echo_host();
    let r = rpc.call(
        json!({"type": "get_state", "future_flag": true, "nested": {"x": [1, 2]}}),
        "x1",
    );
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true);
    // Also on a command with params: the prompt runs normally.
    rpc.send(
        json!({"type": "prompt", "id": "x2", "message": "hi you", "priority": "high", "v2": null}),
    );
    let (frames, resp) = rpc.until("prompt answer", |v| {
        v["id"] == "x2" && (v["type"] == "response" || v["type"] == "error")
    });
    assert_eq!(resp["type"], "response", "{resp}");
    assert_eq!(resp["ok"], true, "{resp}");
    assert_eq!(text_of(&frames), "hi you");
}
