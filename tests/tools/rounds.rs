//! Tool rounds inside a turn: resume after a tool turn, parallel calls, steer
//! during a round, and the tool-call wire shapes over both HTTP APIs.

use super::*;

// ---- 12. resume after tools -----------------------------------------------

#[test]
fn continue_after_tool_turn_keeps_a_valid_history() {
    let d = Dirs::new();
    d.put("a.txt", "resumable\n");
    let data = tempfile::tempdir().unwrap();
    let mut rpc = echo_spawn(&d.cwd, "ask").data(data.path()).start();
    let id = rpc.ready()["session_id"].as_str().unwrap().to_owned();
    let input = json!({"path": "a.txt"});
    run_ok(&mut rpc, "1", &format!("look {}", call("read", &input)));
    shutdown(rpc);

    let mut rpc = echo_spawn(&d.cwd, "ask")
        .data(data.path())
        .arg("--continue")
        .arg(&id)
        .start();
    rpc.ready();
    let msgs = messages(&mut rpc, "m");
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(msgs[1]["role"], "assistant");
    let uses = blocks(&msgs[1]);
    let tool_use = uses
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use block: {}", msgs[1]));
    assert_eq!(tool_use["id"], "call_1");
    assert_eq!(tool_use["name"], "read");
    assert_eq!(tool_use["input"], input);
    assert_eq!(msgs[2]["role"], "user");
    let results = blocks(&msgs[2]);
    let result = results
        .iter()
        .find(|b| b["type"] == "tool_result")
        .unwrap_or_else(|| panic!("no tool_result block: {}", msgs[2]));
    assert_eq!(result["tool_use_id"], "call_1");
    assert!(
        result["content"].to_string().contains("resumable"),
        "{result}"
    );
    assert_eq!(msgs[3]["role"], "assistant");
    let text: String = match &msgs[3]["content"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert!(text.contains("tool result:"), "{}", msgs[3]);

    // The next request carries the tool_use / tool_result pair.
    let frames = run_ok(&mut rpc, "2", "what now [[show=messages]]");
    let sent: Value = serde_json::from_str(&text_of(&frames))
        .unwrap_or_else(|e| panic!("show=messages is not JSON ({e}): {frames:#?}"));
    let sent = sent.as_array().expect("messages array");
    assert_eq!(sent.len(), 5, "{sent:#?}");
    assert!(
        blocks(&sent[1])
            .iter()
            .any(|b| b["type"] == "tool_use" && b["id"] == "call_1"),
        "{:#}",
        sent[1]
    );
    assert!(
        blocks(&sent[2])
            .iter()
            .any(|b| b["type"] == "tool_result" && b["tool_use_id"] == "call_1"),
        "{:#}",
        sent[2]
    );
    assert_eq!(sent[4]["role"], "user");
}

// ---- 14. parallel calls ---------------------------------------------------

/// Two calls in one round run one after the other, in order, and both
/// results go back in one message.
#[test]
fn parallel_calls_run_in_order_and_both_results_return() {
    let d = Dirs::new();
    d.put("a.txt", "hello parallel\n");
    let mut rpc = start(&d.cwd, "ask");
    let input = json!({"path": "a.txt", "pattern": "hello"});
    let frames = run_ok(&mut rpc, "1", &call("read,grep", &input));
    no_permission_request(&frames);
    let seq: Vec<(String, String)> = frames
        .iter()
        .filter(|f| f["type"] == "tool_execution_start" || f["type"] == "tool_execution_end")
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_owned(),
                f["tool_call_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("tool_execution_start", "call_1"),
        ("tool_execution_end", "call_1"),
        ("tool_execution_start", "call_2"),
        ("tool_execution_end", "call_2"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seq, expect);
    let names: Vec<&Value> = of_type(&frames, "tool_execution_start")
        .iter()
        .map(|f| &f["name"])
        .collect();
    assert_eq!(names, [&json!("read"), &json!("grep")]);
    for e in of_type(&frames, "tool_execution_end") {
        assert_eq!(e["is_error"], false, "{e}");
    }
    let reply = reply_after_tools(&frames);
    assert_eq!(reply.matches("tool result:").count(), 2, "{reply:?}");

    let msgs = messages(&mut rpc, "m");
    let ids: Vec<&Value> = msgs[2]["content"]
        .as_array()
        .expect("blocks")
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| &b["tool_use_id"])
        .collect();
    assert_eq!(ids, [&json!("call_1"), &json!("call_2")], "{:#}", msgs[2]);
}

// ---- 15. steer ------------------------------------------------------------

/// A steer sent while a tool runs reaches the model with the results.
#[test]
fn steer_during_tool_round_reaches_the_next_request() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "allow-all");
    rpc.send(json!({"type": "prompt", "id": "1", "message": bash("sleep 1")}));
    rpc.until("tool_execution_start", |f| {
        f["type"] == "tool_execution_start"
    });
    let steer = "also this [[show=messages]]";
    rpc.send(json!({"type": "steer", "id": "s", "message": steer}));
    let (frames, resp) = rpc.until("prompt answer", |f| is_answer_to(f, "1"));
    assert_ok(&resp, &rpc);
    let ans = frames
        .iter()
        .find(|f| is_answer_to(f, "s"))
        .unwrap_or_else(|| panic!("steer unanswered: {frames:#?}"));
    assert_eq!(ans["ok"], true, "{ans}");
    let steer_at = frames.iter().position(|f| is_answer_to(f, "s")).unwrap();
    let end_at = index_of(&frames, "tool_execution_end", |f| {
        f["type"] == "tool_execution_end"
    });
    assert!(steer_at < end_at, "the steer was sent while the tool ran");

    let sent: Value = serde_json::from_str(&reply_after_tools(&frames))
        .unwrap_or_else(|e| panic!("show=messages is not JSON ({e}): {frames:#?}"));
    let sent = sent.as_array().expect("messages");
    let last = sent.last().unwrap();
    assert_eq!(last["role"], "user", "{last}");
    let b = blocks(last);
    assert!(
        b.iter()
            .any(|b| b["type"] == "tool_result" && b["tool_use_id"] == "call_1"),
        "{last:#}"
    );
    assert!(
        b.iter().any(|b| b["type"] == "text" && b["text"] == steer),
        "the steer text rides with the results: {last:#}"
    );
}

// ---- 13/14. HTTP fakes ----------------------------------------------------

fn http_host(api: Api, srv: &FakeServer, cwd: &Path) -> Rpc {
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env(api.base_var(), &api.base_url(srv.port))
        .env(api.key_var(), "sk-test-tools")
        .model(api.model())
        .arg("--cwd")
        .arg(cwd.to_str().unwrap())
        .start();
    rpc.ready();
    rpc
}

/// The tool results a request body sends back, as (call id, content text),
/// in order.
fn results_sent(api: Api, body: &Value) -> Vec<(String, String)> {
    let msgs = body["messages"].as_array().expect("messages");
    let text = |c: &Value| match c {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match api {
        Api::Anthropic => msgs
            .iter()
            .filter(|m| m["role"] == "user")
            .flat_map(blocks)
            .filter(|b| b["type"] == "tool_result")
            .map(|b| {
                (
                    b["tool_use_id"].as_str().unwrap_or("").to_owned(),
                    text(&b["content"]),
                )
            })
            .collect(),
        Api::OpenAi => msgs
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| {
                (
                    m["tool_call_id"].as_str().unwrap_or("").to_owned(),
                    text(&m["content"]),
                )
            })
            .collect(),
    }
}

fn http_tool_round_trip(api: Api) {
    let d = Dirs::new();
    d.put("a.txt", "from the http fake\n");
    let srv = FakeServer::start();
    let mut rpc = http_host(api, &srv, &d.cwd);
    let (frames, resp) = prompt(
        &mut rpc,
        "1",
        r#"read it [[tool=read input={"path":"a.txt"}]]"#,
    );
    assert_ok(&resp, &rpc);
    no_permission_request(&frames);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    assert_eq!(end["tool_call_id"], api.call_id(1).as_str(), "{end}");
    let reply = reply_after_tools(&frames);
    assert!(
        reply.starts_with("tool result:") && reply.contains("from the http fake"),
        "{reply:?}"
    );
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 2, "two rounds: {reqs:#?}");
    let sent = results_sent(api, &reqs[1]["body"]);
    assert_eq!(sent.len(), 1, "{:#}", reqs[1]["body"]);
    assert_eq!(sent[0].0, api.call_id(1));
    assert!(sent[0].1.contains("from the http fake"), "{sent:?}");
    assert!(results_sent(api, &reqs[0]["body"]).is_empty());
}

#[test]
fn http_anthropic_tool_round_trip() {
    http_tool_round_trip(Api::Anthropic);
}

#[test]
fn http_openai_tool_round_trip() {
    http_tool_round_trip(Api::OpenAi);
}

fn http_parallel_calls(api: Api) {
    let d = Dirs::new();
    d.put("a.txt", "twice\n");
    let srv = FakeServer::start();
    let mut rpc = http_host(api, &srv, &d.cwd);
    let (frames, resp) = prompt(
        &mut rpc,
        "1",
        r#"both [[tool=read tools=2 input={"path":"a.txt"}]]"#,
    );
    assert_ok(&resp, &rpc);
    let ends: Vec<String> = of_type(&frames, "tool_execution_end")
        .iter()
        .map(|f| {
            assert_eq!(f["is_error"], false, "{f}");
            f["tool_call_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ends, [api.call_id(1), api.call_id(2)]);
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    let sent = results_sent(api, &reqs[1]["body"]);
    let ids: Vec<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [api.call_id(1), api.call_id(2)],
        "{:#}",
        reqs[1]["body"]
    );
    assert!(sent.iter().all(|(_, c)| c.contains("twice")), "{sent:?}");
    assert_eq!(
        reply_after_tools(&frames).matches("tool result:").count(),
        2
    );
}

#[test]
fn http_anthropic_parallel_calls() {
    http_parallel_calls(Api::Anthropic);
}

#[test]
fn http_openai_parallel_calls() {
    http_parallel_calls(Api::OpenAi);
}

/// Regression (code review): `--permission-mode` given to a new session was
/// not recorded, so `--continue` of that session fell back to `ask`.
#[test]
fn a_mode_given_at_start_survives_continue() {
    let d = Dirs::new();
    let data = tempfile::tempdir().unwrap();
    let mut rpc = echo_spawn(&d.cwd, "accept-edits").data(data.path()).start();
    let id = rpc.ready()["session_id"].as_str().unwrap().to_owned();
    run_ok(&mut rpc, "1", "hello");
    shutdown(rpc);

    let mut again = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .ext("echo")
        .data(data.path())
        .arg("--cwd")
        .arg(d.cwd.to_str().unwrap())
        .arg("--continue")
        .arg(&id)
        .start();
    again.ready();
    let st = again.call(json!({"type": "get_state"}), "s");
    assert_eq!(st["permission_mode"], "accept-edits", "{st}");
    shutdown(again);
}
