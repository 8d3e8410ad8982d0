//! Hostile lines: a wrong JSON type for every field of every command, and
//! 10,000 garbage lines of 100 KiB each.

use super::*;

// ---- 5. hostile lines -----------------------------------------------------

/// One row: a command line with one field of the wrong type, and whether
/// the value could legitimately be accepted (null for an optional field).
struct Case {
    command: &'static str,
    field: String,
    line: Value,
    maybe_valid: bool,
}

/// Wrong-typed values for a field whose right type is `kind`.
fn wrong_values(kind: &str) -> Vec<(&'static str, Value)> {
    let all = [
        ("null", Value::Null),
        ("number", json!(42)),
        ("float", json!(1.5)),
        ("bool", json!(true)),
        ("array", json!(["x"])),
        ("object", json!({"x": 1})),
        ("string", json!("bogus")),
    ];
    all.into_iter()
        .filter(|(k, _)| match kind {
            // A free string: any string is valid.
            "string" => *k != "string",
            // Enums and lists: a string of the wrong kind is a wrong value.
            _ => true,
        })
        .collect()
}

/// (field, JSON kind, optional) for one command's fields.
type Fields = Vec<(&'static str, &'static str, bool)>;

/// Every field of every command (SPEC §2), each with every wrong JSON type.
fn field_cases() -> Vec<Case> {
    // (command, base command, [(field, kind, optional)])
    let text_att = json!({"type": "text", "text": "t"});
    let image_att = json!({"type": "image", "media_type": "image/png", "data": "iVBORw0KGgo="});
    let table: Vec<(&str, Value, Fields)> = vec![
        (
            "prompt",
            json!({"type": "prompt", "message": "m", "attachments": [text_att.clone()]}),
            vec![("message", "string", false), ("attachments", "list", true)],
        ),
        (
            "follow_up",
            json!({"type": "follow_up", "message": "m", "attachments": [text_att.clone()]}),
            vec![("message", "string", false), ("attachments", "list", true)],
        ),
        (
            "steer",
            json!({"type": "steer", "message": "m"}),
            vec![("message", "string", false)],
        ),
        (
            "set_model",
            json!({"type": "set_model", "model": ECHO}),
            vec![("model", "string", false)],
        ),
        (
            "permission_response",
            json!({"type": "permission_response", "request_id": "perm-x", "decision": "deny", "message": "no"}),
            vec![
                ("request_id", "string", false),
                ("decision", "enum", false),
                ("message", "string", true),
            ],
        ),
        (
            "set_permission_mode",
            json!({"type": "set_permission_mode", "mode": "ask"}),
            vec![("mode", "enum", false)],
        ),
    ];
    let mut cases = Vec::new();
    for (command, base, fields) in &table {
        for (field, kind, optional) in fields {
            for (_, v) in wrong_values(kind) {
                let mut line = base.clone();
                line[*field] = v.clone();
                cases.push(Case {
                    command,
                    field: field.to_string(),
                    line,
                    maybe_valid: *optional && v.is_null(),
                });
            }
        }
        // Inside an attachment: each field of each attachment kind, and
        // an entry that is not an object at all.
        if base.get("attachments").is_some() {
            for (att, fields) in [
                (&text_att, vec![("type", "enum"), ("text", "string")]),
                (
                    &image_att,
                    vec![
                        ("type", "enum"),
                        ("media_type", "string"),
                        ("data", "string"),
                    ],
                ),
            ] {
                for (field, kind) in fields {
                    for (_, v) in wrong_values(kind) {
                        let mut a = att.clone();
                        a[field] = v;
                        let mut line = base.clone();
                        line["attachments"] = json!([a]);
                        cases.push(Case {
                            command,
                            field: format!("attachments[0].{field}"),
                            line,
                            maybe_valid: false,
                        });
                    }
                }
            }
            for (_, v) in wrong_values("object") {
                if v.is_object() {
                    continue;
                }
                let mut line = base.clone();
                line["attachments"] = json!([v]);
                cases.push(Case {
                    command,
                    field: "attachments[0]".into(),
                    line,
                    maybe_valid: false,
                });
            }
        }
    }
    cases
}

const ALL_COMMANDS: [&str; 14] = [
    "prompt",
    "follow_up",
    "abort",
    "steer",
    "set_model",
    "permission_response",
    "set_permission_mode",
    "get_state",
    "get_session_stats",
    "get_messages",
    "get_available_models",
    "new_session",
    "list_sessions",
    "shutdown",
];

/// Sends `line` (with `id`) and returns its answer: the next frame that
/// answers it (an accepted prompt's events are skipped).
fn answer_of(rpc: &mut Rpc, line: &Value) -> Value {
    rpc.send(line.clone());
    let id = line["id"].clone();
    let (_, ans) = rpc.until("answer", |f| {
        (f["type"] == "response" || f["type"] == "error") && (f["id"] == id || f["id"].is_null())
    });
    ans
}

/// A wrong JSON type for every field of every command: `invalid_params`
/// under the command's id (or accepted, for null on an optional field);
/// `id` and `type` of wrong types are `invalid_request`. Nothing changes.
#[test]
fn wrong_type_for_every_field_of_every_command_is_rejected_with_the_id() {
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    rpc.ready();
    assert_eq!(ok_prompt(&mut rpc, "prime", "hello"), "hello");
    let before = get_state(&mut rpc, "before");
    let mut failures = Vec::new();
    let mut n = 0;

    for (i, case) in field_cases().into_iter().enumerate() {
        let id = format!("f{i}");
        let mut line = case.line.clone();
        line["id"] = json!(id);
        let ans = answer_of(&mut rpc, &line);
        n += 1;
        let rejected = ans["type"] == "error" && ans["code"] == "invalid_params" && ans["id"] == id;
        let accepted = case.maybe_valid && ans["id"] == id && ans["code"] != "invalid_params";
        if !(rejected || accepted) {
            failures.push(format!(
                "{}.{}: sent {line}: got {ans}",
                case.command, case.field
            ));
        }
    }
    // `id` of a wrong type, on every command: invalid_request, id null.
    for command in ALL_COMMANDS {
        for v in [json!(true), json!(["i"]), json!({"i": 1})] {
            let line = json!({"type": command, "id": v});
            let ans = answer_of(&mut rpc, &line);
            n += 1;
            if !(ans["type"] == "error" && ans["code"] == "invalid_request" && ans["id"].is_null())
            {
                failures.push(format!("{command}.id = {v}: {ans}"));
            }
        }
    }
    // `type` of a wrong type: invalid_request with the id.
    for (i, v) in [
        Value::Null,
        json!(1),
        json!(true),
        json!(["prompt"]),
        json!({"prompt": 1}),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("t{i}");
        let line = json!({"type": v, "id": id, "message": "m"});
        let ans = answer_of(&mut rpc, &line);
        n += 1;
        if !(ans["type"] == "error" && ans["code"] == "invalid_request" && ans["id"] == id) {
            failures.push(format!("type = {v}: {ans}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {n} wrong-typed fields not rejected as they should be:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let after = get_state(&mut rpc, "after");
    for k in [
        "streaming",
        "model",
        "session_id",
        "message_count",
        "queued",
        "permission_mode",
    ] {
        assert_eq!(after[k], before[k], "{k} changed: {before} -> {after}");
    }
    eprintln!("{n} wrong-typed fields rejected");
    finish(rpc);
}

/// The same table, for what the rejection says: SPEC §3 — the `message`
/// names the field, and `command` is present since the type was recognised.
#[test]
fn invalid_params_errors_name_the_field_and_the_command() {
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    rpc.ready();
    let mut no_field = BTreeSet::new();
    let mut no_command = BTreeSet::new();
    let mut examples = Vec::new();
    let mut n = 0;
    for (i, case) in field_cases().into_iter().enumerate() {
        if case.maybe_valid {
            continue;
        }
        let id = format!("f{i}");
        let mut line = case.line.clone();
        line["id"] = json!(id);
        let ans = answer_of(&mut rpc, &line);
        assert_eq!(
            ans["code"], "invalid_params",
            "{}.{}: {ans}",
            case.command, case.field
        );
        n += 1;
        let msg = ans["message"].as_str().unwrap_or("");
        // The innermost name: `attachments[0].text` -> `text`.
        let leaf = case
            .field
            .rsplit(['.', '['])
            .next()
            .unwrap()
            .trim_end_matches(']');
        let leaf = if leaf.chars().all(|c| c.is_ascii_digit()) {
            "attachments"
        } else {
            leaf
        };
        let key = format!("{}.{}", case.command, case.field);
        // Not fooled by the command's own name ("set_model" holds "model").
        if !msg.replace(case.command, "").contains(leaf)
            && no_field.insert(key.clone())
            && examples.len() < 6
        {
            examples.push(format!("{key}: {msg}"));
        }
        if ans["command"] != case.command {
            no_command.insert(key);
        }
    }
    assert!(
        no_field.is_empty() && no_command.is_empty(),
        "of {n} invalid_params errors:\n\
         - {} do not name the field ({:?});\n\
         - {} lack `command` ({:?});\n\
         e.g.:\n{}",
        no_field.len(),
        no_field,
        no_command.len(),
        no_command,
        examples.join("\n")
    );
    finish(rpc);
}

/// 10,000 garbage lines of 100 KiB each (1 GB): every one answered, and the
/// host's peak RSS stays flat (< 40 MiB).
#[test]
fn ten_thousand_garbage_lines_of_100_kib_keep_memory_flat() {
    const N: usize = 10_000;
    const LINE: usize = 100 * 1024;
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    rpc.ready();
    assert_eq!(ok_prompt(&mut rpc, "prime", "hello"), "hello");
    let before = get_state(&mut rpc, "before");
    let rss_start = vm_hwm_kib(rpc.pid()).unwrap_or(0);
    let t0 = Instant::now();
    let mut buf = Vec::with_capacity(LINE + 1);
    let mut expected = Vec::with_capacity(N);
    for i in 0..N {
        buf.clear();
        let (code, id) = match i % 4 {
            // An unterminated 100 KiB JSON string: parsed to the end.
            0 => {
                buf.extend_from_slice(
                    format!(r#"{{"type":"get_state","id":{i},"pad":""#).as_bytes(),
                );
                ("parse_error", Value::Null)
            }
            // Not JSON at all.
            1 => {
                buf.extend_from_slice(b"garbage ");
                ("parse_error", Value::Null)
            }
            // Invalid UTF-8 at the very end.
            2 => {
                buf.extend_from_slice(b"\"");
                ("parse_error", Value::Null)
            }
            // Valid JSON, 100 KiB of it kept as a string, unknown command.
            _ => {
                buf.extend_from_slice(format!(r#"{{"type":"nope","id":{i},"pad":""#).as_bytes());
                ("unknown_command", json!(i))
            }
        };
        let fill = LINE - buf.len() - if i % 4 == 3 { 2 } else { 1 };
        buf.resize(buf.len() + fill, b'a');
        match i % 4 {
            2 => buf.push(0xff),
            3 => buf.extend_from_slice(b"\"}"),
            _ => buf.push(b'a'),
        }
        assert_eq!(buf.len(), LINE);
        buf.push(b'\n');
        rpc.send_raw(&buf);
        expected.push((code, id));
    }
    let sent = t0.elapsed();
    for (i, (code, id)) in expected.iter().enumerate() {
        let f = rpc.recv();
        assert_eq!(f["type"], "error", "line {i}: {f}");
        assert_eq!(f["code"], *code, "line {i}: {f}");
        assert_eq!(f["id"], *id, "line {i}: {f}");
        assert!(
            f.to_string().len() < 4096,
            "line {i}: the error does not echo the 100 KiB line: {} B",
            f.to_string().len()
        );
    }
    let took = t0.elapsed();
    let after = get_state(&mut rpc, "after");
    for k in [
        "streaming",
        "model",
        "session_id",
        "message_count",
        "queued",
    ] {
        assert_eq!(after[k], before[k], "{k} changed: {before} -> {after}");
    }
    let peak = vm_hwm_kib(rpc.pid()).expect("VmHWM");
    eprintln!(
        "{N} garbage lines of {LINE} B: written in {sent:?}, all answered in {took:?}; \
         host peak RSS {rss_start} KiB before, {peak} KiB after"
    );
    assert!(peak < 40 * 1024, "host peak RSS {peak} KiB >= 40 MiB");
    assert_eq!(ok_prompt(&mut rpc, "again", "still fine"), "still fine");
    finish(rpc);
}
