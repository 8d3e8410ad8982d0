//! What a healthy stream delivers: text, thinking (with the Anthropic
//! signature kept and sent back), tool-call deltas, and exact text however
//! the SSE is chunked.

use super::*;

// ---- 1. happy path --------------------------------------------------------

both!(happy_path, keyless_configured_endpoint);

/// Text deltas make the echoed text; usage (converted for OpenAI) reaches
/// `agent_end`, the response and the session stats; a catalogue model is
/// priced.
fn happy_path(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    let (frames, resp) = run(
        &mut rpc,
        "1",
        "hello there friend [[usage_in=120 usage_out=7 cache_read=30 cache_write=11]]",
    );
    assert_ok(&resp, &rpc);
    assert_eq!(text_of(&frames), "hello there friend");
    assert!(
        events(&frames, "text_delta").len() >= 3,
        "word-by-word deltas: {frames:?}"
    );
    let expected = match api {
        // All four as sent.
        Api::Anthropic => (120, 7, 30, 11),
        // input = prompt_tokens - cached_tokens; cache_read = cached_tokens.
        Api::OpenAi => (90, 7, 30, 0),
    };
    let end = agent_end(&frames);
    assert_eq!(end["stop_reason"], "end_turn", "{end}");
    assert_eq!(usage_tuple(&end["usage"]), expected, "agent_end: {end}");
    assert_eq!(usage_tuple(&resp["usage"]), expected, "response: {resp}");

    let stats = rpc.call(json!({"type": "get_session_stats"}), "s");
    assert_eq!(stats["ok"], true, "{stats}");
    assert_eq!(stats["input_tokens"], expected.0, "{stats}");
    assert_eq!(stats["output_tokens"], expected.1, "{stats}");
    assert_eq!(stats["cache_read_input_tokens"], expected.2, "{stats}");
    assert_eq!(stats["cache_creation_input_tokens"], expected.3, "{stats}");
    let cost = stats["cost_usd"]
        .as_f64()
        .unwrap_or_else(|| panic!("cost_usd is a number for a catalogue model: {stats}"));
    assert!(cost > 0.0, "{stats}");
    // Catalogue prices (USD per million): sonnet-5-5 2/10/0.1/2.5,
    // gpt-4o-mini 0.15/0.6/0.075/0.15.
    let want = match api {
        Api::Anthropic => (120.0 * 2.0 + 7.0 * 10.0 + 30.0 * 0.1 + 11.0 * 2.5) / 1e6,
        Api::OpenAi => (90.0 * 0.15 + 7.0 * 0.6 + 30.0 * 0.075) / 1e6,
    };
    assert!(
        (cost - want).abs() <= want * 1e-6,
        "cost_usd {cost} != {want}: {stats}"
    );

    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0]["path"], api.path());
    assert_eq!(reqs[0]["outcome"], "complete", "{:?}", reqs[0]);
}

/// A configured keyless endpoint with a model outside the catalogue: works,
/// sends no credentials, and has no price.
fn keyless_configured_endpoint(api: Api) {
    let srv = FakeServer::with_args(&["--no-auth"]);
    let (_dir, path) = config_file(&format!(
        "[providers.local]\nkind = \"{}\"\nbase_url = \"{}\"\n",
        api.kind(),
        api.base_url(srv.port)
    ));
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .arg("--config")
        .arg(&path)
        .model("local/some-model")
        .start();
    rpc.ready();
    let (frames, resp) = run(&mut rpc, "1", "local models are nice");
    assert_ok(&resp, &rpc);
    assert_eq!(text_of(&frames), "local models are nice");
    let stats = rpc.call(json!({"type": "get_session_stats"}), "s");
    assert_eq!(stats["ok"], true, "{stats}");
    assert!(
        stats["cost_usd"].is_null(),
        "an unknown model has no price: {stats}"
    );
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let h = &reqs[0]["headers"];
    assert!(
        h.get("authorization").is_none(),
        "keyless endpoint sent authorization: {h}"
    );
    assert!(
        h.get("x-api-key").is_none(),
        "keyless endpoint sent x-api-key: {h}"
    );
    assert_eq!(
        reqs[0]["body"]["model"], "some-model",
        "{}",
        reqs[0]["body"]
    );
    assert_eq!(reqs[0]["path"], api.path());
}

// ---- 2. thinking ----------------------------------------------------------

#[test]
fn thinking_anthropic_signature_is_kept_and_sent_back() {
    let srv = FakeServer::start();
    let mut rpc = start(Api::Anthropic, &srv);
    let (frames, resp) = run(&mut rpc, "1", "ponder this [[thinking=2]]");
    assert_ok(&resp, &rpc);
    assert_eq!(thinking_of(&frames), "hmm hmm ", "{frames:?}");
    assert_eq!(events(&frames, "thinking_delta").len(), 2);
    assert_eq!(text_of(&frames), "ponder this");
    // Thinking comes before the text.
    let first_thinking = frames
        .iter()
        .position(|f| f["event"]["type"] == "thinking_delta")
        .unwrap();
    let first_text = frames
        .iter()
        .position(|f| f["event"]["type"] == "text_delta")
        .unwrap();
    assert!(first_thinking < first_text);

    let msgs = messages(&mut rpc, "m");
    let assistant = msgs
        .iter()
        .find(|m| m["role"] == "assistant")
        .expect("assistant message");
    let thinking = assistant["content"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "thinking"))
        .unwrap_or_else(|| panic!("no thinking block: {assistant}"));
    assert_eq!(thinking["thinking"], "hmm hmm ", "{assistant}");
    assert_eq!(thinking["signature"], "sig-abc", "{assistant}");

    // The next request carries the signed thinking block back.
    let (_, resp) = run(&mut rpc, "2", "and now?");
    assert_ok(&resp, &rpc);
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    let body = &reqs[1]["body"];
    let sent = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["role"] == "assistant")
        .unwrap_or_else(|| panic!("no assistant message sent back: {body}"));
    let block = sent["content"]
        .as_array()
        .and_then(|b| b.iter().find(|b| b["type"] == "thinking"))
        .unwrap_or_else(|| panic!("thinking block not sent back: {sent}"));
    assert_eq!(block["signature"], "sig-abc", "{sent}");
    assert_eq!(block["thinking"], "hmm hmm ", "{sent}");
}

#[test]
fn thinking_openai_reasoning_content_and_reasoning_field() {
    let srv = FakeServer::start();
    let mut rpc = start(Api::OpenAi, &srv);
    let (frames, resp) = run(&mut rpc, "1", "ponder this [[thinking=2]]");
    assert_ok(&resp, &rpc);
    assert_eq!(
        thinking_of(&frames),
        "hmm hmm ",
        "reasoning_content: {frames:?}"
    );
    assert_eq!(text_of(&frames), "ponder this");

    let (frames, resp) = run(
        &mut rpc,
        "2",
        "ponder that [[thinking=2 reasoning_field=reasoning]]",
    );
    assert_ok(&resp, &rpc);
    assert_eq!(thinking_of(&frames), "hmm hmm ", "reasoning: {frames:?}");
    assert_eq!(text_of(&frames), "ponder that");

    let msgs = messages(&mut rpc, "m");
    let assistant = msgs
        .iter()
        .find(|m| m["role"] == "assistant")
        .expect("assistant message");
    assert!(
        assistant["content"].as_array().is_some_and(|b| b
            .iter()
            .any(|b| b["type"] == "thinking" && b["thinking"] == "hmm hmm ")),
        "stored thinking: {assistant}"
    );
    // Reasoning is not sent back to a Chat Completions server.
    let reqs = srv.api_requests();
    let sent = reqs[1]["body"]["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["role"] == "assistant")
        .cloned()
        .expect("assistant message sent back");
    assert_eq!(sent["content"], "ponder this", "{sent}");
}

// ---- 3. tool calls --------------------------------------------------------

both!(tool_call_deltas);

/// Checks one streamed tool call: start, ≥2 deltas that concatenate to the
/// input, end with the parsed input, in that order. Returns its id.
fn check_call(frames: &[Value], id: &str, name: &str, input: &Value) {
    let pos = |kind: &str| -> Vec<usize> {
        frames
            .iter()
            .enumerate()
            .filter(|(_, f)| {
                f["type"] == "message_update"
                    && f["event"]["type"] == kind
                    && f["event"]["tool_call_id"] == id
            })
            .map(|(i, _)| i)
            .collect()
    };
    let starts = pos("toolcall_start");
    let deltas = pos("toolcall_delta");
    let ends = pos("toolcall_end");
    assert_eq!(starts.len(), 1, "one toolcall_start for {id}: {frames:?}");
    assert_eq!(ends.len(), 1, "one toolcall_end for {id}: {frames:?}");
    assert_eq!(frames[starts[0]]["event"]["name"], name);
    assert!(
        deltas.len() >= 2,
        "several toolcall_deltas for {id}: {frames:?}"
    );
    assert!(
        starts[0] < deltas[0] && *deltas.last().unwrap() < ends[0],
        "start < deltas < end for {id}"
    );
    let joined: String = deltas
        .iter()
        .map(|&i| frames[i]["event"]["delta"].as_str().unwrap_or(""))
        .collect();
    let parsed: Value = serde_json::from_str(&joined)
        .unwrap_or_else(|e| panic!("deltas of {id} do not parse ({e}): {joined:?}"));
    assert_eq!(&parsed, input, "deltas of {id}");
    let end = &frames[ends[0]]["event"];
    assert_eq!(end["name"], name, "{end}");
    assert_eq!(&end["input"], input, "{end}");
}

fn tool_call_deltas(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    let input = json!({"path": "a.txt"});
    let (frames, resp) = run(
        &mut rpc,
        "1",
        r#"read it [[tool=read input={"path":"a.txt"}]]"#,
    );
    assert_eq!(resp["ok"], true, "{resp}\nstderr:\n{}", rpc.stderr());
    // The host runs the tool and goes round again; the first round's text
    // is what precedes the tool's execution.
    let first_round: Vec<Value> = frames
        .iter()
        .take_while(|f| f["type"] != "tool_execution_start")
        .cloned()
        .collect();
    assert_eq!(text_of(&first_round), "read it");
    let starts = events(&frames, "toolcall_start");
    assert_eq!(starts.len(), 1, "{frames:?}");
    let id = starts[0]["tool_call_id"]
        .as_str()
        .expect("tool_call_id")
        .to_owned();
    assert!(!id.is_empty());
    check_call(&frames, &id, "read", &input);
    // The read runs (read-only tools need no permission) and its result
    // goes back to the model in the next request.
    let ends = frames
        .iter()
        .filter(|f| f["type"] == "tool_execution_end")
        .count();
    assert_eq!(ends, 1, "the tool ran: {frames:?}");
    let requests = srv.api_requests();
    let last = requests.last().expect("a second request");
    assert!(
        last["body"].to_string().contains(&id),
        "the next request carries the result for {id}: {last}"
    );

    // Two parallel calls (interleaved on OpenAI), in a fresh session.
    let ns = rpc.call(json!({"type": "new_session"}), "ns");
    assert_eq!(ns["ok"], true, "{ns}");
    let (frames, resp) = run(
        &mut rpc,
        "2",
        r#"both [[tool=read,ls tools=2 input={"path":"a.txt"}]]"#,
    );
    assert_eq!(resp["ok"], true, "{resp}\nstderr:\n{}", rpc.stderr());
    let starts = events(&frames, "toolcall_start");
    assert_eq!(starts.len(), 2, "{frames:?}");
    let ids: Vec<String> = starts
        .iter()
        .map(|s| s["tool_call_id"].as_str().unwrap().to_owned())
        .collect();
    assert_ne!(ids[0], ids[1], "distinct ids");
    let names: Vec<String> = starts
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["read", "ls"]);
    for (id, name) in ids.iter().zip(&names) {
        check_call(&frames, id, name, &input);
    }
    assert_eq!(events(&frames, "toolcall_end").len(), 2);
}

both!(prompt_after_tool_call_turn_succeeds);

/// A turn that ended with tool calls must leave a history the API accepts:
/// the next prompt in the same session succeeds (both real APIs reject a
/// tool call without its result in the next message; so does the fake).
fn prompt_after_tool_call_turn_succeeds(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    let (_, resp) = run(
        &mut rpc,
        "1",
        r#"read it [[tool=read input={"path":"a.txt"}]]"#,
    );
    assert_eq!(resp["ok"], true, "{resp}");
    let (frames, resp) = run(&mut rpc, "2", "thanks, now just talk");
    assert_eq!(
        resp["ok"],
        true,
        "the prompt after a tool-call turn failed: {resp}\nlast request body: {}",
        srv.api_requests()
            .last()
            .map(|r| r["body"].to_string())
            .unwrap_or_default()
    );
    assert_eq!(text_of(&frames), "thanks, now just talk");
}

// ---- 16. chunked SSE ------------------------------------------------------

both!(chunked_stream_yields_exact_text);

fn chunked_stream_yields_exact_text(api: Api) {
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    let text = "Grüße, 世界! the quick brown fox — naïve café ☕ jumps";
    let (frames, resp) = run(
        &mut rpc,
        "1",
        &format!("{text} [[chunked=1 thinking=2 usage_in=40 usage_out=9]]"),
    );
    assert_ok(&resp, &rpc);
    assert_eq!(text_of(&frames), text);
    assert_eq!(thinking_of(&frames), "hmm hmm ");
    let u = usage_tuple(&agent_end(&frames)["usage"]);
    assert_eq!((u.0, u.1), (40, 9), "{u:?}");
    // And a chunked tool call.
    let (frames, resp) = run(
        &mut rpc,
        "2",
        r#"[[chunked=1 seed=7 tool=read input={"path":"ü/世界.txt"}]]"#,
    );
    assert_ok(&resp, &rpc);
    let ends = events(&frames, "toolcall_end");
    assert_eq!(ends.len(), 1, "{frames:?}");
    assert_eq!(ends[0]["input"], json!({"path": "ü/世界.txt"}));
}
