//! Failures whose cause is usually a setting: a local server that is not
//! running (connection refused on this machine: not retried, the URL said
//! once, a hint saying what to start or set), `OLLAMA_HOST`, and a 404 from
//! a base URL with `/v1` where none belongs (or without it).

use super::*;

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

#[test]
fn refused_local_server_is_not_retried_and_says_what_to_start() {
    let port = closed_port();
    let (_dir, cfg) = config_file(RETRY_CONFIG);
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env("OLLAMA_HOST", &format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(&cfg)
        .model("ollama/qwen2.5:7b")
        .start();
    rpc.ready();
    let (frames, resp) = run(&mut rpc, "1", "hello");
    let err = failure(&resp);
    assert!(
        retries(&frames).is_empty(),
        "connection refused on this machine is not retried: {frames:?}"
    );
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    assert_eq!(err.matches(&url).count(), 1, "the URL once: {err}");
    assert!(
        err.starts_with(&format!("ollama: cannot reach {url}: connection refused; ")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "is Ollama running at http://127.0.0.1:{port}? start it (`ollama serve`), or correct OLLAMA_HOST"
        )),
        "the hint: {err}"
    );
    assert!(err.contains("[providers.ollama] base_url"), "{err}");
    assert!(!err.contains("gave up"), "{err}");

    // A configured endpoint of another name gets the generic hint.
    let (_dir2, cfg) = config_file(&format!(
        "{RETRY_CONFIG}[providers.box]\nkind = \"openai\"\nbase_url = \"http://localhost:{port}/v1\"\n"
    ));
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .arg("--config")
        .arg(&cfg)
        .model("box/m")
        .start();
    rpc.ready();
    let (frames, resp) = run(&mut rpc, "1", "hello");
    let err = failure(&resp);
    assert!(retries(&frames).is_empty(), "{frames:?}");
    assert!(
        err.contains(&format!(
            "is the server for \"box\" running at http://localhost:{port}/v1? the base URL is from [providers.box] base_url in {cfg}"
        )),
        "{err}"
    );
}

#[test]
fn ollama_host_points_the_ollama_preset() {
    let srv = FakeServer::with_args(&["--no-auth"]);
    for value in [
        format!("127.0.0.1:{}", srv.port),
        format!("http://127.0.0.1:{}", srv.port),
    ] {
        let mut rpc = Spawn::new()
            .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
            .env("OLLAMA_HOST", &value)
            .model("ollama/qwen2.5:7b")
            .start();
        rpc.ready();
        let (frames, resp) = run(&mut rpc, "1", "hello from ollama");
        assert_eq!(resp["ok"], true, "OLLAMA_HOST={value}: {resp}");
        assert_eq!(text_of(&frames), "hello from ollama");
    }
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    for r in reqs {
        assert_eq!(r["path"], "/v1/chat/completions", "{r}");
        assert_eq!(r["body"]["model"], "qwen2.5:7b", "{r}");
    }
}

both!(not_found_from_a_wrong_base_url_names_the_variable);

fn not_found_from_a_wrong_base_url_names_the_variable(api: Api) {
    let srv = FakeServer::start();
    let root = format!("http://127.0.0.1:{}", srv.port);
    // The classic guesses: OpenAI's base without /v1, Anthropic's with it.
    let (base, url, convention, suggestion) = match api {
        Api::OpenAi => (
            root.clone(),
            format!("{root}/chat/completions"),
            "OPENAI_BASE_URL conventionally ends in /v1 (rpc appends /chat/completions)",
            format!("{root}/v1"),
        ),
        Api::Anthropic => (
            format!("{root}/v1"),
            format!("{root}/v1/v1/messages"),
            "ANTHROPIC_BASE_URL does not end in /v1 (rpc appends /v1/messages)",
            root.clone(),
        ),
    };
    let mut rpc = spawn(api, &srv).env(api.base_var(), &base).start();
    rpc.ready();
    let (frames, resp) = run(&mut rpc, "1", "hello");
    let err = failure(&resp);
    assert!(
        retries(&frames).is_empty(),
        "a 404 is not retried: {frames:?}"
    );
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(
        err.contains(&format!(" from {url}: ")),
        "names the URL: {err}"
    );
    assert!(
        err.contains(&format!(
            "the base URL {base} (from {}) may be wrong: {convention}; try {suggestion}",
            api.base_var()
        )),
        "names the base URL, its variable and the convention: {err}"
    );
    // The server saw the path the hint explains.
    let paths: Vec<Value> = srv.requests().iter().map(|r| r["path"].clone()).collect();
    let wrong_path = url.strip_prefix(&root).unwrap_or(&url);
    assert!(paths.iter().any(|p| p == wrong_path), "{paths:?}");
}

#[test]
fn a_404_about_the_model_gets_no_base_url_hint() {
    // OpenAI answers an unknown model with 404 model_not_found: the base URL
    // is fine and the message must not send the user after it.
    let srv = FakeServer::start();
    let mut rpc = start(Api::OpenAi, &srv);
    let (_, resp) = run(&mut rpc, "1", "[[fail=404 id=nomodel]]");
    let err = failure(&resp);
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(err.contains("model does not exist"), "{err}");
    assert!(!err.contains("base URL"), "{err}");
}
