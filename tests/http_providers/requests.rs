//! What the host sends: headers and body per API, and that keys never leak
//! into frames, logs or files.

use super::*;

// ---- 11. headers ----------------------------------------------------------

both!(request_headers_and_body);

fn request_headers_and_body(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = spawn(api, &srv)
        .arg("--system-prompt")
        .arg("You are terse.")
        .start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "1", "hi");
    assert_ok(&resp, &rpc);
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r["method"], "POST");
    assert_eq!(r["path"], api.path());
    let h = &r["headers"];
    let b = &r["body"];
    assert_eq!(b["stream"], true, "{b}");
    assert!(
        h["content-type"]
            .as_str()
            .unwrap_or("")
            .starts_with("application/json"),
        "{h}"
    );
    match api {
        Api::Anthropic => {
            assert_eq!(h["x-api-key"], ANTHROPIC_KEY, "{h}");
            assert_eq!(h["anthropic-version"], "2023-06-01", "{h}");
            assert!(h.get("authorization").is_none(), "{h}");
            assert!(b["max_tokens"].as_u64().is_some_and(|n| n > 0), "{b}");
            // A block list, to carry the prompt-caching breakpoint.
            assert_eq!(
                b["system"],
                json!([{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]),
                "{b}"
            );
            assert_eq!(b["model"], "claude-sonnet-5-5", "{b}");
            assert_eq!(b["messages"][0]["role"], "user", "{b}");
        }
        Api::OpenAi => {
            assert_eq!(h["authorization"], format!("Bearer {OPENAI_KEY}"), "{h}");
            assert!(h.get("x-api-key").is_none(), "{h}");
            assert_eq!(b["stream_options"]["include_usage"], true, "{b}");
            assert_eq!(
                b["messages"][0],
                json!({"role": "system", "content": "You are terse."}),
                "{b}"
            );
            assert_eq!(b["messages"][1]["role"], "user", "{b}");
            assert_eq!(b["model"], "gpt-4o-mini", "{b}");
        }
    }
}

// ---- 12. no leaks ---------------------------------------------------------

both!(keys_never_leak);

fn keys_never_leak(api: Api) {
    let srv = FakeServer::start();
    let (_cfg, path) = config_file(RETRY_CONFIG);
    let mut rpc = spawn(api, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--log-level")
        .arg("trace")
        .start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "1", "hello secret world");
    assert_ok(&resp, &rpc);
    let (_, resp) = run(&mut rpc, "2", "[[fail=401 id=leak401]]");
    failure(&resp);
    let (_, resp) = run(
        &mut rpc,
        "3",
        "again [[fail=429 retry_after=0.05 id=leak429]]",
    );
    assert_ok(&resp, &rpc);
    let (_, resp) = run(&mut rpc, "4", "[[n=5 cut=2 id=leakcut]]");
    failure(&resp);
    for cmd in [
        "get_state",
        "get_session_stats",
        "get_messages",
        "get_available_models",
        "list_sessions",
    ] {
        let r = rpc.call(json!({"type": cmd}), cmd);
        assert_eq!(r["ok"], true, "{r}");
    }
    let bye = rpc.call(json!({"type": "shutdown"}), "bye");
    assert_eq!(bye["ok"], true, "{bye}");
    rpc.drain(Duration::from_secs(5));
    let status = rpc.wait(Duration::from_secs(5));
    assert!(status.is_some(), "host did not exit after shutdown");

    let secret = api.secret();
    for f in &rpc.seen {
        assert!(!f.to_string().contains(secret), "key leaked on stdout: {f}");
    }
    let stderr = rpc.stderr();
    assert!(
        !stderr.is_empty(),
        "--log-level trace should log something (else this test proves little)"
    );
    if let Some(pos) = stderr.find(secret) {
        let from = stderr[..pos]
            .char_indices()
            .rev()
            .nth(200)
            .map_or(0, |(i, _)| i);
        let to = (pos + 200).min(stderr.len());
        panic!(
            "key leaked on stderr: …{}…",
            stderr.get(from..to).unwrap_or(&stderr[from..])
        );
    }
    let files = files_under(&rpc.data);
    assert!(!files.is_empty(), "the session was written to the data dir");
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "key leaked into {}",
            file.display()
        );
    }
}

// ---- text attachments -----------------------------------------------------

both!(text_attachments_are_a_paragraph_of_their_own);

/// SPEC §2: a text attachment reaches the model after the message text and
/// a blank line, not glued to its last word.
fn text_attachments_are_a_paragraph_of_their_own(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = spawn(api, &srv).start();
    rpc.ready();
    rpc.send(
        json!({"type": "prompt", "id": "1", "message": "summarise this",
        "attachments": [{"type": "text", "text": "The quick brown fox"}]}),
    );
    let (_, resp) = rpc.until("prompt response", |f| {
        f["id"] == "1" && (f["type"] == "response" || f["type"] == "error")
    });
    assert_ok(&resp, &rpc);
    let reqs = srv.api_requests();
    let b = &reqs[0]["body"];
    // The last message is the prompt (OpenAI's first is the system prompt).
    let last = b["messages"].as_array().and_then(|m| m.last());
    let text = match &last.expect("messages")["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect::<Vec<_>>()
            .join("|"),
        other => panic!("user content {other}"),
    };
    assert_eq!(text, "summarise this\n\nThe quick brown fox", "{b}");
}
