//! OpenAI's Responses API against the fake's Responses mode
//! (`fixtures/http/responses_api.py`): which models use it, the request
//! body, the stream (reasoning summaries, function calls in pieces,
//! usage), reasoning items kept and sent back, failures, and the official
//! `openai` npm package's stream parser reading the fake's stream.

use super::*;
use common::node;

/// A host on the `openai` endpoint pointed at `srv`, with `model`.
fn host(srv: &FakeServer, model: &str) -> Spawn {
    Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env("OPENAI_BASE_URL", &Api::OpenAi.base_url(srv.port))
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .model(model)
}

/// The `type`s of a request's input items.
fn item_types(body: &Value) -> Vec<String> {
    body["input"]
        .as_array()
        .expect("input is a list")
        .iter()
        .map(|i| i["type"].as_str().unwrap_or("?").to_owned())
        .collect()
}

#[test]
fn a_reasoning_model_runs_a_tool_loop_keeping_its_reasoning() {
    let srv = FakeServer::start();
    let work = workspace();
    let mut rpc = start_in(host(&srv, "openai/o3"), &work, "high");
    let session = get_state(&mut rpc, "s")["session_id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let (frames, resp) = run(
        &mut rpc,
        "1",
        r#"look [[tool=read input={"path":"a.txt"} tool_rounds=2 thinking=4 id=loop]]"#,
    );
    assert_ok(&resp, &rpc);

    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 3, "two tool rounds and the answer");
    for (n, r) in reqs.iter().enumerate() {
        assert_eq!(r["path"], "/v1/responses", "{r}");
        assert_eq!(r["status"], 200, "{r}");
        let b = &r["body"];
        assert_eq!(b["stream"], true);
        assert_eq!(b["store"], false);
        assert_eq!(b["include"], json!(["reasoning.encrypted_content"]));
        assert_eq!(b["reasoning"], json!({"effort": "high", "summary": "auto"}));
        assert_eq!(b["prompt_cache_key"], session.as_str());
        assert!(b["instructions"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(b.get("messages").is_none());
        let read = b["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .find(|t| t["name"] == "read")
            .expect("the read tool");
        assert_eq!(read["type"], "function");
        assert_eq!(read["strict"], false);
        assert!(read["parameters"].is_object());
        // Every earlier round's reasoning item is carried back, before the
        // call it led to, and no item id is sent (nothing is stored).
        let types = item_types(b);
        assert_eq!(
            types.iter().filter(|t| *t == "reasoning").count(),
            n,
            "request {n}: {types:?}"
        );
        assert_eq!(r["reasoning_carried"], n);
        assert_eq!(r["reasoning_missing"], json!([]), "{r}");
        for item in b["input"].as_array().unwrap() {
            assert!(item.get("id").is_none(), "{item}");
        }
    }
    let last = &reqs[2]["body"];
    assert_eq!(
        item_types(last),
        [
            "message",
            "reasoning",
            "message",
            "function_call",
            "function_call_output",
            "reasoning",
            "message",
            "function_call",
            "function_call_output",
        ]
    );
    assert_eq!(last["input"][4]["output"], "     1\talpha\n");

    // The summary streams as thinking, two parts a blank line apart; the
    // call's arguments arrive in several pieces.
    assert!(thinking_of(&frames).contains("hmm hmm \n\nhmm hmm "));
    let deltas = events(&frames, "toolcall_delta");
    assert!(deltas.len() >= 3 * 2, "{deltas:?}");
    let ends = events(&frames, "toolcall_end");
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0]["input"], json!({"path": "a.txt"}));
    assert_eq!(ends[0]["tool_call_id"], "call_1");

    // Usage: the fake bills input, cached input and output with reasoning.
    let end = agent_end(&frames);
    let (input, output, cached, written) = usage_tuple(&end["usage"]);
    let billed: u64 = reqs
        .iter()
        .map(|r| r["input_tokens"].as_u64().unwrap())
        .sum();
    let read: u64 = reqs
        .iter()
        .map(|r| r["cached_tokens"].as_u64().unwrap())
        .sum();
    assert_eq!((input + cached, cached, written), (billed, read, 0));
    assert!(
        output >= 3 * 64,
        "reasoning tokens count as output: {output}"
    );

    // The items are stored with the assistant messages, for later turns.
    let stored = messages(&mut rpc, "m");
    let items: Vec<&Value> = stored
        .iter()
        .filter(|m| m["role"] == "assistant")
        .flat_map(|m| m["content"].as_array().into_iter().flatten())
        .filter_map(|b| b.get("reasoning"))
        .collect();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|i| i["model"] == "openai/o3"));

    // A later turn sends all three back, in order.
    srv.get("/_requests");
    let (_, resp) = run(&mut rpc, "2", "thanks [[id=later]]");
    assert_ok(&resp, &rpc);
    let later = srv.requests_with("id=later");
    let sent: Vec<&Value> = later[0]["body"]["input"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "reasoning")
        .map(|i| &i["encrypted_content"])
        .collect();
    let kept: Vec<&Value> = items.iter().map(|i| &i["encrypted_content"]).collect();
    assert_eq!(sent, kept);
}

#[test]
fn another_model_is_not_sent_the_reasoning_items() {
    let srv = FakeServer::start();
    let mut rpc = host(&srv, "openai/o3").start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "1", "first [[id=first]]");
    assert_ok(&resp, &rpc);
    let first = srv.requests_with("id=first");
    assert!(first[0]["body"].get("reasoning").is_none(), "thinking off");
    call_ok(
        &mut rpc,
        json!({"type": "set_model", "model": "openai/gpt-5.5"}),
        "m",
    );
    let (_, resp) = run(&mut rpc, "2", "second [[id=second]]");
    assert_ok(&resp, &rpc);
    let second = &srv.requests_with("id=second")[0]["body"];
    assert_eq!(item_types(second), ["message", "message", "message"]);
    // Back on o3, its own item goes with the history again.
    call_ok(
        &mut rpc,
        json!({"type": "set_model", "model": "openai/o3"}),
        "m2",
    );
    let (_, resp) = run(&mut rpc, "3", "third [[id=third]]");
    assert_ok(&resp, &rpc);
    let third = &srv.requests_with("id=third")[0]["body"];
    // gpt-5.5's item stays out: it cannot be read by o3.
    assert_eq!(
        item_types(third),
        [
            "message",
            "reasoning",
            "message",
            "message",
            "message",
            "message"
        ]
    );
}

#[test]
fn a_resumed_session_still_sends_its_reasoning_items() {
    let srv = FakeServer::start();
    let data = tempfile::tempdir().expect("tempdir");
    let mut rpc = host(&srv, "openai/o3").data(data.path()).start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "1", "first [[id=before]]");
    assert_ok(&resp, &rpc);
    let issued = srv.requests_with("id=before")[0]["body"]["model"].clone();
    assert_eq!(issued, "o3");
    drop(rpc);
    let mut rpc = host(&srv, "openai/o3")
        .data(data.path())
        .arg("--continue")
        .start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "2", "second [[id=after]]");
    assert_ok(&resp, &rpc);
    let after = &srv.requests_with("id=after")[0];
    assert_eq!(after["reasoning_carried"], 1, "{after}");
    assert_eq!(
        item_types(&after["body"]),
        ["message", "reasoning", "message", "message"]
    );
}

#[test]
fn the_api_setting_chooses_between_openais_apis() {
    let srv = FakeServer::start();
    let url = Api::OpenAi.base_url(srv.port);
    let (_dir, path) = config_file(&format!(
        "[providers.openai]\napi = \"chat_completions\"\n\
         [providers.work]\nkind = \"openai\"\napi = \"responses\"\nbase_url = \"{url}\"\n\
         api_key_env = \"OPENAI_API_KEY\"\n[[providers.work.models]]\nid = \"plain\"\nmax_tokens = 500\n"
    ));
    let mut rpc = host(&srv, "openai/o3")
        .arg("--config")
        .arg(&path)
        .arg("--thinking")
        .arg("low")
        .start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "1", "chat [[id=chat]]");
    assert_ok(&resp, &rpc);
    let chat = &srv.requests_with("id=chat")[0];
    assert_eq!(chat["path"], "/v1/chat/completions");
    assert_eq!(chat["body"]["reasoning_effort"], "low");
    call_ok(
        &mut rpc,
        json!({"type": "set_model", "model": "work/plain"}),
        "m",
    );
    let (_, resp) = run(&mut rpc, "2", "plain [[id=plain]]");
    assert_ok(&resp, &rpc);
    let plain = &srv.requests_with("id=plain")[0];
    assert_eq!(plain["path"], "/v1/responses");
    // Not a reasoning model: neither reasoning nor its items are asked for.
    assert!(plain["body"].get("include").is_none(), "{plain}");
    assert!(plain["body"].get("reasoning").is_none(), "{plain}");
    assert_eq!(plain["body"]["max_output_tokens"], 500);

    // Without a config, a model that is no reasoning model stays on Chat
    // Completions.
    let mut rpc = host(&srv, "openai/gpt-4o-mini").start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "1", "mini [[id=mini]]");
    assert_ok(&resp, &rpc);
    assert_eq!(
        srv.requests_with("id=mini")[0]["path"],
        "/v1/chat/completions"
    );

    // `api` is only for OpenAI's kind.
    let (_dir, bad) = config_file("[providers.anthropic]\napi = \"responses\"\n");
    let mut rpc = host(&srv, "openai/o3").arg("--config").arg(&bad).start();
    assert!(rpc.wait(READ_TIMEOUT).is_some_and(|s| s.code() == Some(2)));
}

#[test]
fn an_image_reaches_the_model_as_input_image() {
    let srv = FakeServer::start();
    let mut rpc = host(&srv, "openai/o3").start();
    rpc.ready();
    rpc.send(
        json!({"type": "prompt", "id": "1", "message": "what is this [[id=img]]",
        "attachments": [{"type": "image", "media_type": "image/png", "data": "iVBORw0KGgo="}]}),
    );
    let (_, resp) = rpc.until("answer", |f| is_answer_to(f, "1"));
    assert_ok(&resp, &rpc);
    let body = &srv.requests_with("id=img")[0]["body"];
    assert_eq!(
        body["input"][0]["content"][1],
        json!({"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"})
    );
}

#[test]
fn incomplete_and_error_events_end_the_turn_as_the_api_says() {
    let srv = FakeServer::start();
    let (mut rpc, _dir) = start_with_config(host(&srv, "openai/o3"), RETRY_CONFIG);

    // max_output_tokens reached: the answer so far, stop reason max_tokens.
    stops_at_max_tokens(&mut rpc, "1", "long [[n=3 stop=length]]");
    // An error event after a delta: the API's message, not retried.
    an_error_after_a_delta_is_not_retried(
        &mut rpc,
        &srv,
        "2",
        "server_error: The server had an error",
    );
    // A 429 with retry-after is waited for, then retried.
    a_429_is_waited_for_and_retried(&mut rpc, &srv, "3", "429");
    // A stream cut before its terminal event is retried while nothing
    // was shown (its reasoning item was not shown, nor kept).
    a_cut_before_any_event_is_retried(&mut rpc, &srv, "4", "response.completed (cut off)");
    let stored = messages(&mut rpc, "m2");
    assert!(
        !stored.last().unwrap()["content"]
            .to_string()
            .contains("reasoning"),
        "{stored:?}"
    );
}

#[test]
fn an_overflow_compacts_and_sends_again() {
    // The third turn comes to about 2700 tokens, the fourth to 3300.
    let srv = FakeServer::with_args(&["--context-limit", "3000"]);
    let url = Api::OpenAi.base_url(srv.port);
    let config = format!(
        "[providers.fake]\nkind = \"openai\"\napi = \"responses\"\nbase_url = \"{url}\"\n\
         api_key_env = \"OPENAI_API_KEY\"\n[[providers.fake.models]]\nid = \"m\"\n\
         context_window = 100000\nreasoning = true\n\
         [compaction]\nkeep_tokens = 300\nreserve_tokens = 1000\n"
    );
    let (mut rpc, _dir) = start_with_config(host(&srv, "fake/m"), &config);
    let reqs = an_overflow_compacts_and_is_sent_again(&mut rpc, &srv);
    let rejected = reqs
        .iter()
        .find(|r| r["status"] == 400)
        .expect("a rejected request");
    assert!(rejected["body"].to_string().contains("NEWEST"));
}

/// The fake's stream, read by the `openai` npm package's own Responses
/// stream parser (`client.responses.stream`, pinned in
/// tests/http_providers/openai_sdk/package-lock.json): it rebuilds the response
/// from the events and throws on any it cannot place.
#[test]
fn the_official_sdk_reads_the_fakes_stream() {
    let srv = FakeServer::start();
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http_providers/openai_sdk");
    node::ensure_node_modules(&pkg, "openai-sdk-npm.lock", node::Install::Ci);
    let (status, stdout, stderr) = common::bounded::run_bounded(
        std::process::Command::new("node")
            .arg(pkg.join("replay.mjs"))
            .env("FAKE_URL", Api::OpenAi.base_url(srv.port))
            .current_dir(&pkg),
        b"",
        Duration::from_secs(60),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "replay.mjs failed:\n{stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("replay.mjs prints JSON");
    assert_eq!(summary["status"], "completed", "{summary}");
    assert_eq!(
        summary["output_types"],
        json!(["reasoning", "message", "function_call"])
    );
    assert_eq!(summary["text"], "hello there");
    assert_eq!(summary["arguments"], r#"{"path": "a.txt"}"#);
    assert_eq!(
        summary["deltas"]["response.function_call_arguments.delta"],
        3
    );
    assert!(summary["encrypted"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(summary["incomplete"], "max_output_tokens");
}

/// The input a 10-round tool loop is billed for, from the fake's
/// accounting: with the reasoning items sent back (what rpc does) and, for
/// the same requests, without them. Printed for the record (`--nocapture`).
#[test]
fn a_ten_round_tool_loop_bills_its_reasoning_items_as_input() {
    let srv = FakeServer::start();
    let work = workspace();
    let mut rpc = start_in(host(&srv, "openai/o3"), &work, "medium");
    let (_, resp) = run(
        &mut rpc,
        "1",
        "list [[tool=ls tool_rounds=10 reasoning_tokens=500 id=ten]]",
    );
    assert_ok(&resp, &rpc);
    let reqs = srv.requests_with("id=ten");
    assert_eq!(reqs.len(), 11);
    let sum = |k: &str| -> u64 { reqs.iter().map(|r| r[k].as_u64().unwrap()).sum() };
    let (with, cached, without, without_cached) = (
        sum("input_tokens"),
        sum("cached_tokens"),
        sum("input_tokens_without_reasoning"),
        sum("cached_tokens_without_reasoning"),
    );
    for (n, r) in reqs.iter().enumerate() {
        assert_eq!(r["reasoning_carried"], n, "{r}");
        assert_eq!(r["reasoning_missing"], json!([]), "{r}");
    }
    // Round n carries n items of 500 reasoning tokens (plus summaries).
    assert!(
        with - without >= 500 * (0..11).sum::<u64>(),
        "{with} {without}"
    );
    eprintln!(
        "10-round loop: input with reasoning items {with} ({cached} cached, {} not), \
         the same requests without them {without} ({without_cached} cached, {} not)",
        with - cached,
        without - without_cached
    );
}
