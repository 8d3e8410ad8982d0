//! Google's Gemini API against the fake's Gemini mode
//! (`fixtures/http/gemini_api.py`): the request (path, key header, system
//! instruction, contents, function declarations, thinking config), the
//! stream (thoughts, text, function calls, usage), thought signatures
//! carried back, failures, and the official `@google/genai` package's
//! parser reading the fake's stream.

use super::*;
use common::node;

const GEMINI_KEY: &str = "AIza-test-SECRET789";

/// A host on the built-in `google` endpoint pointed at `srv`, with `model`.
fn host(srv: &FakeServer, model: &str) -> Spawn {
    Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env("GOOGLE_GEMINI_BASE_URL", &gemini_base(srv))
        .env("GEMINI_API_KEY", GEMINI_KEY)
        .model(model)
}

fn gemini_base(srv: &FakeServer) -> String {
    format!("http://127.0.0.1:{}", srv.port)
}

#[test]
fn a_tool_loop_streams_thoughts_and_carries_its_signatures_back() {
    let srv = FakeServer::start();
    let work = workspace();
    let mut rpc = start_in(host(&srv, "google/gemini-2.5-pro"), &work, "medium");
    let (frames, resp) = run(
        &mut rpc,
        "1",
        r#"look [[tool=read input={"path":"a.txt"} tool_rounds=2 thinking=2 id=loop]]"#,
    );
    assert_ok(&resp, &rpc);

    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 3, "two tool rounds and the answer");
    for (n, r) in reqs.iter().enumerate() {
        assert_eq!(
            r["path"], "/v1beta/models/gemini-2.5-pro:streamGenerateContent",
            "{r}"
        );
        assert_eq!(r["query"], "alt=sse", "the key never goes in the URL");
        assert_eq!(r["headers"]["x-goog-api-key"], GEMINI_KEY);
        assert_eq!(r["status"], 200, "{r}");
        let b = &r["body"];
        assert!(b["systemInstruction"]["parts"][0]["text"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
        assert_eq!(
            b["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 10_000, "includeThoughts": true})
        );
        let read = b["tools"][0]["functionDeclarations"]
            .as_array()
            .expect("declarations")
            .iter()
            .find(|t| t["name"] == "read")
            .expect("the read tool");
        assert!(
            !read["parameters"]
                .to_string()
                .contains("additionalProperties"),
            "{read}"
        );
        // Every earlier step's signature came back.
        assert_eq!(r["signatures_carried"], n, "{r}");
    }
    let last = &reqs[2]["body"]["contents"];
    let roles: Vec<&str> = last
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "model", "user", "model", "user"]);
    let call = &last[1]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p.get("functionCall").is_some())
        .expect("the call")
        .clone();
    assert_eq!(
        call["functionCall"],
        json!({"name": "read", "args": {"path": "a.txt"}})
    );
    assert!(call["thoughtSignature"].is_string(), "{call}");
    assert_eq!(
        last[2]["parts"][0]["functionResponse"],
        json!({"name": "read", "response": {"output": "     1\talpha\n"}})
    );

    // Thought parts stream as thinking; the call ids are made up, one per call.
    assert!(thinking_of(&frames).contains("hmm hmm "));
    let ends = events(&frames, "toolcall_end");
    assert_eq!(ends.len(), 2);
    assert_eq!(ends[0]["input"], json!({"path": "a.txt"}));
    assert_ne!(ends[0]["tool_call_id"], ends[1]["tool_call_id"]);

    // Usage: the prompt, thoughts billed as output.
    let end = agent_end(&frames);
    let (input, output, _, _) = usage_tuple(&end["usage"]);
    assert!(input > 0);
    assert!(output >= 3 * 16, "thought tokens count as output: {output}");

    // A later turn still sends the signatures back (only the current turn's
    // are required, but all are kept).
    let (_, resp) = run(&mut rpc, "2", "thanks [[id=later]]");
    assert_ok(&resp, &rpc);
    let later = &srv.requests_with("id=later")[0];
    assert_eq!(later["signatures_carried"], 3, "{later}");
}

#[test]
fn ids_gemini_3_sends_are_kept_and_thinking_is_a_level() {
    let srv = FakeServer::start();
    let work = workspace();
    let mut rpc = start_in(host(&srv, "google/gemini-3-pro-preview"), &work, "low");
    let (frames, resp) = run(
        &mut rpc,
        "1",
        r#"look [[tool=read input={"path":"a.txt"} call_ids=1 id=ids]]"#,
    );
    assert_ok(&resp, &rpc);
    let reqs = srv.requests_with("id=ids");
    assert_eq!(
        reqs[0]["body"]["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel": "low", "includeThoughts": true})
    );
    let ends = events(&frames, "toolcall_end");
    let id = ends[0]["tool_call_id"].as_str().unwrap();
    assert!(id.starts_with("fc-"), "{id}");
    let contents = &reqs[1]["body"]["contents"];
    let call = contents[1]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|p| p.get("functionCall"))
        .expect("the call");
    assert_eq!(call["id"], id);
    assert_eq!(contents[2]["parts"][0]["functionResponse"]["id"], id);
}

#[test]
fn max_tokens_errors_and_a_429_end_or_retry_as_the_api_says() {
    let srv = FakeServer::start();
    let (mut rpc, _dir) = start_with_config(host(&srv, "google/gemini-2.5-flash"), RETRY_CONFIG);

    stops_at_max_tokens(&mut rpc, "1", "long [[n=3 stop=max_tokens]]");
    // An error chunk after a delta: the API's message, not retried.
    an_error_after_a_delta_is_not_retried(
        &mut rpc,
        &srv,
        "2",
        "UNAVAILABLE: The model is overloaded",
    );
    // A 429 with RetryInfo in its body (no header) is waited for, retried.
    a_429_is_waited_for_and_retried(&mut rpc, &srv, "3", "429 RESOURCE_EXHAUSTED");
    // A body that ends before any chunk is retried (nothing was shown);
    // one cut after a delta but before its finishReason is not.
    a_cut_before_any_event_is_retried(&mut rpc, &srv, "4", "without any stream event");
    let (_, resp) = run(&mut rpc, "5", "[[n=3 cut=2 cut_style=eof id=cut2]]");
    let err = failure(&resp);
    assert!(err.contains("before a finishReason (cut off)"), "{err}");
    assert_eq!(srv.requests_with("id=cut2").len(), 1);

    // The key is never echoed in a failure.
    assert!(!err.contains(GEMINI_KEY));
}

#[test]
fn an_overflow_compacts_and_sends_again() {
    let srv = FakeServer::with_args(&["--context-limit", "3000"]);
    let config = format!(
        "[providers.google]\nbase_url = \"{}\"\n[[providers.google.models]]\nid = \"gemini-2.5-flash\"\n\
         context_window = 100000\n[compaction]\nkeep_tokens = 300\nreserve_tokens = 1000\n",
        gemini_base(&srv)
    );
    let (mut rpc, _dir) = start_with_config(host(&srv, "google/gemini-2.5-flash"), &config);
    let reqs = an_overflow_compacts_and_is_sent_again(&mut rpc, &srv);
    assert!(reqs.iter().any(|r| r["status"] == 400));
}

#[test]
fn google_api_key_is_read_when_gemini_api_key_is_not_set() {
    let srv = FakeServer::start();
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env("GOOGLE_GEMINI_BASE_URL", &gemini_base(&srv))
        .env("GOOGLE_API_KEY", "AIza-other")
        .model("google/gemini-2.5-flash-lite")
        .start();
    rpc.ready();
    let (_, resp) = run(&mut rpc, "1", "hi [[id=gk]]");
    assert_ok(&resp, &rpc);
    let r = &srv.requests_with("id=gk")[0];
    assert_eq!(r["headers"]["x-goog-api-key"], "AIza-other");
    // No thinking level: no thinkingConfig.
    assert!(r["body"].get("generationConfig").is_none(), "{r}");
}

/// The fake's stream, read by the `@google/genai` package's own SSE and
/// response parsing (`ai.models.generateContentStream`, pinned in
/// tests/http_providers/genai_sdk/package-lock.json).
#[test]
fn the_official_sdk_reads_the_fakes_stream() {
    let srv = FakeServer::start();
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http_providers/genai_sdk");
    node::ensure_node_modules(&pkg, "genai-sdk-npm.lock", node::Install::Ci);
    let (status, stdout, stderr) = common::bounded::run_bounded(
        std::process::Command::new("node")
            .arg(pkg.join("replay.mjs"))
            .env("FAKE_URL", gemini_base(&srv))
            .current_dir(&pkg),
        b"",
        Duration::from_secs(60),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "replay.mjs failed:\n{stdout}\n{stderr}"
    );
    let summary: Value = serde_json::from_str(stdout.trim()).expect("replay.mjs prints JSON");
    assert_eq!(summary["text"], "hello there", "{summary}");
    assert_eq!(summary["thoughts"], "hmm hmm ");
    assert_eq!(
        summary["calls"],
        json!([{"name": "read", "args": {"path": "a.txt"}}])
    );
    assert!(summary["signature"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(summary["finish"], "STOP");
    assert_eq!(summary["cut_finish"], "MAX_TOKENS");
    assert!(summary["usage"]["thoughtsTokenCount"].as_u64().is_some());
    assert_eq!(summary["error_status"], 429);
}
