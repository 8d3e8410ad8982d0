//! Retries and timeouts: 429/503/529 retried with backoff, a persistent 500
//! given up on, 400/401 not retried, and the idle timeout.

use super::*;

// ---- 4. retries -----------------------------------------------------------

both!(retry_429_then_success, retry_503_uses_backoff);

fn retry_429_then_success(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    let (frames, resp) = run(
        &mut rpc,
        "1",
        "after the storm [[fail=429 fail_times=2 retry_after=0.1 id=r429]]",
    );
    assert_ok(&resp, &rpc);
    let start = frames.iter().find(|f| f["type"] == "agent_start").unwrap();
    let r = retries(&frames);
    assert_eq!(r.len(), 2, "two auto_retry frames: {frames:?}");
    for (i, f) in r.iter().enumerate() {
        assert_eq!(f["attempt"], i as u64 + 1, "{f}");
        assert_eq!(f["prompt_id"], start["prompt_id"], "{f}");
        let d = f["delay_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("delay_ms: {f}"));
        assert!((90..=110).contains(&d), "retry-after 0.1 s honoured: {f}");
        let reason = f["reason"].as_str().unwrap_or("");
        assert!(reason.contains("429"), "reason names the status: {f}");
    }
    // The retries come before any delta.
    let first_retry = frames
        .iter()
        .position(|f| f["type"] == "auto_retry")
        .unwrap();
    let first_update = frames
        .iter()
        .position(|f| f["type"] == "message_update")
        .expect("deltas");
    assert!(first_retry < first_update);
    assert_eq!(text_of(&frames), "after the storm");
    let reqs = srv.requests_with("id=r429");
    let statuses: Vec<&Value> = reqs.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [&json!(429), &json!(429), &json!(200)],
        "{reqs:?}"
    );
}

fn retry_503_uses_backoff(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    let (frames, resp) = run(
        &mut rpc,
        "1",
        "back soon [[fail=503 retry_after=none id=r503]]",
    );
    assert_ok(&resp, &rpc);
    let r = retries(&frames);
    assert_eq!(r.len(), 1, "{frames:?}");
    assert_eq!(r[0]["attempt"], 1);
    let d = r[0]["delay_ms"].as_u64().expect("delay_ms");
    // Backoff: retry_base_delay_ms = 50 is the first delay (with jitter).
    assert!(d > 0 && d <= 50, "backoff delay: {}", r[0]);
    assert!(
        r[0]["reason"].as_str().unwrap_or("").contains("503"),
        "{}",
        r[0]
    );
    assert_eq!(text_of(&frames), "back soon");
    assert_eq!(srv.requests_with("id=r503").len(), 2);
}

#[test]
fn retry_anthropic_529_overloaded() {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(Api::Anthropic, &srv);
    let (frames, resp) = run(&mut rpc, "1", "busy day [[fail=529 id=r529]]");
    assert_ok(&resp, &rpc);
    let r = retries(&frames);
    assert_eq!(r.len(), 1, "{frames:?}");
    let reason = r[0]["reason"].as_str().unwrap_or("");
    assert!(reason.contains("529"), "{}", r[0]);
    assert!(reason.contains("overloaded_error"), "{}", r[0]);
    assert!(r[0]["delay_ms"].as_u64().is_some_and(|d| d > 0), "{}", r[0]);
    assert_eq!(text_of(&frames), "busy day");
}

// ---- 5. persistent 500 ----------------------------------------------------

both!(persistent_500_gives_up);

fn persistent_500_gives_up(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    let t0 = Instant::now();
    let (frames, resp) = run(&mut rpc, "1", "doomed [[fail=500 fail_times=999 id=p500]]");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "gave up only after {took:?}"
    );
    let err = failure(&resp);
    assert!(err.contains("HTTP 500"), "{err}");
    let provider_message = match api {
        Api::Anthropic => "Internal server error",
        Api::OpenAi => "The server had an error while processing your request.",
    };
    assert!(err.contains(provider_message), "{err}");
    // max_retries = 3: four attempts in all.
    assert!(err.contains("gave up after 4 attempts"), "{err}");
    let r = retries(&frames);
    let attempts: Vec<u64> = r.iter().map(|f| f["attempt"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 3], "{frames:?}");
    assert_eq!(agent_end(&frames)["stop_reason"], "error");
    assert_eq!(srv.requests_with("id=p500").len(), 4);
    // The host keeps working. (A fresh session: on Anthropic the failed user
    // message would be merged with the next one, directives included.)
    let ns = rpc.call(json!({"type": "new_session"}), "ns");
    assert_eq!(ns["ok"], true, "{ns}");
    let (frames, resp) = run(&mut rpc, "2", "still here");
    assert_ok(&resp, &rpc);
    assert_eq!(text_of(&frames), "still here");
}

// ---- 6. 400/401 not retried -----------------------------------------------

both!(client_errors_are_not_retried);

fn client_errors_are_not_retried(api: Api) {
    let srv = FakeServer::start();
    let (mut rpc, _cfg) = start_with_retries(api, &srv);
    let cases: &[(u16, &str, &str)] = match api {
        Api::Anthropic => &[
            (
                400,
                "invalid_request_error",
                "fake_llm: invalid request (fail=400)",
            ),
            (401, "authentication_error", "invalid x-api-key"),
        ],
        Api::OpenAi => &[
            (
                400,
                "invalid_request_error",
                "fake_llm: invalid request (fail=400)",
            ),
            (401, "invalid_request_error", "Incorrect API key provided."),
        ],
    };
    for &(status, kind, message) in cases {
        // A fresh session each time, so directives of the failed prompt are
        // not merged into the next (Anthropic joins adjacent user messages).
        let ns = rpc.call(json!({"type": "new_session"}), &format!("ns{status}"));
        assert_eq!(ns["ok"], true, "{ns}");
        let tag = format!("id=c{status}");
        let (frames, resp) = run(
            &mut rpc,
            &format!("p{status}"),
            &format!("no [[fail={status} fail_times=999 {tag}]]"),
        );
        assert!(retries(&frames).is_empty(), "{status} retried: {frames:?}");
        let err = failure(&resp);
        assert!(err.contains(&format!("HTTP {status}")), "{err}");
        assert!(
            err.contains(kind),
            "{status} error names its type {kind}: {err}"
        );
        assert!(
            err.contains(message),
            "{status} error has the provider's message: {err}"
        );
        assert_eq!(srv.requests_with(&tag).len(), 1, "{status} sent once");
    }
}

// ---- 13. idle timeout -----------------------------------------------------

both!(idle_timeout_fails_without_retry);

fn idle_timeout_fails_without_retry(api: Api) {
    let srv = FakeServer::start();
    let (_cfg, path) = config_file(RETRY_CONFIG);
    let mut rpc = spawn(api, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--provider-idle-timeout")
        .arg("1")
        .start();
    rpc.ready();
    let t0 = Instant::now();
    let (frames, resp) = run(&mut rpc, "1", "[[n=3 stall_ms=5000 id=idle]]");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "idle timeout of 1 s took {took:?}"
    );
    let err = failure(&resp);
    let lower = err.to_lowercase();
    assert!(
        lower.contains("silent") || lower.contains("idle"),
        "mentions the silence/idle timeout: {err}"
    );
    assert!(
        !lower.contains("extension"),
        "an HTTP provider is not an extension: {err}"
    );
    assert_eq!(events(&frames, "text_delta").len(), 1, "{frames:?}");
    assert!(
        retries(&frames).is_empty(),
        "not retried after a delta: {frames:?}"
    );
    assert_eq!(srv.requests_with("id=idle").len(), 1);
}

/// A retry the host announced (`auto_retry` with a delay longer than
/// `--provider-idle-timeout`) is a wait, not a silent provider: the turn
/// must not be failed by the idle timer meanwhile.
fn announced_retry_outlives_idle_timeout(api: Api) {
    let srv = FakeServer::start();
    let (_cfg, path) = config_file(RETRY_CONFIG);
    let mut rpc = spawn(api, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--provider-idle-timeout")
        .arg("1")
        .start();
    rpc.ready();
    let (frames, resp) = run(
        &mut rpc,
        "1",
        "patience [[fail=429 retry_after=1.5 id=slowretry]]",
    );
    let r = retries(&frames);
    assert_eq!(r.len(), 1, "{frames:?}");
    assert_eq!(r[0]["delay_ms"], 1500, "{}", r[0]);
    assert_eq!(
        resp["ok"], true,
        "the host announced a retry in 1500 ms, then failed the turn: {resp}"
    );
    assert_eq!(text_of(&frames), "patience");
}

/// A server slow to send its response head: whatever the host decides,
/// the message must describe an HTTP provider, not an extension.
fn slow_response_head_error_names_http(api: Api) {
    let srv = FakeServer::start();
    let (_cfg, path) = config_file(RETRY_CONFIG);
    let mut rpc = spawn(api, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--provider-idle-timeout")
        .arg("1")
        .start();
    rpc.ready();
    let t0 = Instant::now();
    let (_, resp) = run(&mut rpc, "1", "[[head_ms=3000 id=slowhead]]");
    assert!(t0.elapsed() < Duration::from_secs(12));
    let err = failure(&resp);
    assert!(err.contains("1 s"), "names the timeout: {err}");
    assert!(
        !err.to_lowercase().contains("extension"),
        "an HTTP provider is not an extension: {err}"
    );
}

both!(
    announced_retry_outlives_idle_timeout,
    slow_response_head_error_names_http
);
