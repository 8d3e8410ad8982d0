//! Thinking levels (`set_thinking_level`, `--thinking`) as each API is sent
//! them, their persistence, and the models' `reasoning` flags.

use super::*;

const LEVELS: [(&str, Option<u64>, Option<&str>); 6] = [
    ("off", None, None),
    ("minimal", Some(1024), Some("minimal")),
    ("low", Some(4096), Some("low")),
    ("medium", Some(10_000), Some("medium")),
    ("high", Some(24_000), Some("high")),
    ("xhigh", Some(32_000), Some("high")),
];

fn set_level(rpc: &mut Rpc, level: &str) {
    let r = call_ok(
        rpc,
        json!({"type": "set_thinking_level", "level": level}),
        &format!("set-{level}"),
    );
    assert_eq!(r["level"], level, "{r}");
}

/// The body of the request one prompt made.
fn body_of(rpc: &mut Rpc, srv: &FakeServer, tag: &str) -> Value {
    let (_, resp) = run(rpc, tag, &format!("hi [[id={tag}]]"));
    assert_ok(&resp, rpc);
    let reqs = srv.requests_with(&format!("id={tag}"));
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    reqs[0]["body"].clone()
}

#[test]
fn anthropic_gets_a_budget_per_level_and_max_tokens_above_it() {
    let srv = FakeServer::start();
    let mut rpc = start(Api::Anthropic, &srv);
    for (level, budget, _) in LEVELS {
        set_level(&mut rpc, level);
        let b = body_of(&mut rpc, &srv, &format!("a-{level}"));
        assert!(b.get("temperature").is_none(), "{b}");
        match budget {
            None => assert!(b.get("thinking").is_none(), "{level}: {b}"),
            Some(n) => {
                assert_eq!(
                    b["thinking"],
                    json!({"type": "enabled", "budget_tokens": n}),
                    "{level}"
                );
                assert!(b["max_tokens"].as_u64().unwrap() > n, "{b}");
            }
        }
    }
}

#[test]
fn openai_gets_reasoning_effort_only_for_reasoning_models() {
    let srv = FakeServer::start();
    // Chat Completions for every model: `reasoning_effort` is its field
    // (the Responses API's `reasoning` is tested in responses.rs).
    let (_dir, path) = config_file(
        "[providers.openai]\napi = \"chat_completions\"\n\
         [[providers.openai.models]]\nid = \"house-reasoner\"\nreasoning = true\n\
         [[providers.openai.models]]\nid = \"gpt-5.4\"\nreasoning = false\n",
    );
    let mut rpc = spawn(Api::OpenAi, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--thinking")
        .arg("high")
        .start();
    assert_eq!(rpc.ready()["thinking_level"], "high");
    // gpt-4o-mini is no reasoning model: it would reject the field.
    let b = body_of(&mut rpc, &srv, "o-plain");
    assert!(b.get("reasoning_effort").is_none(), "{b}");
    for (model, reasoning) in [
        ("openai/o3", true),
        ("openai/house-reasoner", true),
        ("openai/gpt-5.4", false),
    ] {
        call_ok(
            &mut rpc,
            json!({"type": "set_model", "model": model}),
            model,
        );
        for (level, _, effort) in LEVELS {
            set_level(&mut rpc, level);
            let b = body_of(&mut rpc, &srv, &format!("{}-{level}", &model[7..]));
            let expected = effort.filter(|_| reasoning);
            assert_eq!(
                b.get("reasoning_effort").and_then(Value::as_str),
                expected,
                "{model} {level}: {b}"
            );
        }
    }
}

#[test]
fn a_bad_level_is_invalid_params() {
    let srv = FakeServer::start();
    let mut rpc = start(Api::Anthropic, &srv);
    for bad in [json!("maximum"), json!(3), Value::Null] {
        let r = rpc.call(json!({"type": "set_thinking_level", "level": bad}), "bad");
        assert_eq!(r["type"], "error", "{r}");
        assert_eq!(r["code"], "invalid_params", "{r}");
    }
    assert_eq!(get_state(&mut rpc, "s")["thinking_level"], "off");
    let mut bad_flag = spawn(Api::Anthropic, &srv)
        .arg("--thinking")
        .arg("huge")
        .start();
    assert!(bad_flag.wait(READ_TIMEOUT).is_some_and(|s| !s.success()));
}

#[test]
fn the_level_is_kept_by_the_session_and_overridden_by_the_flag() {
    let srv = FakeServer::start();
    let data = tempfile::tempdir().expect("tempdir");
    let resume = |extra: &[&str]| {
        let mut s = spawn(Api::Anthropic, &srv)
            .data(data.path())
            .arg("--continue");
        for a in extra {
            s = s.arg(a);
        }
        let mut rpc = s.start();
        let ready = rpc.ready();
        (rpc, ready)
    };

    // Set by the flag at start: kept in the header.
    let mut rpc = spawn(Api::Anthropic, &srv)
        .data(data.path())
        .arg("--thinking")
        .arg("low")
        .start();
    assert_eq!(rpc.ready()["thinking_level"], "low");
    let (_, resp) = run(&mut rpc, "1", "hi");
    assert_ok(&resp, &rpc);
    finish(rpc);
    let (mut rpc, ready) = resume(&[]);
    assert_eq!(ready["thinking_level"], "low", "{ready}");
    // Set by the command: an entry, kept across the next resume.
    set_level(&mut rpc, "medium");
    assert_eq!(get_state(&mut rpc, "s")["thinking_level"], "medium");
    finish(rpc);
    let (rpc, ready) = resume(&[]);
    assert_eq!(ready["thinking_level"], "medium", "{ready}");
    finish(rpc);
    // The flag overrides a resumed session's level, and is recorded.
    let (rpc, ready) = resume(&["--thinking", "xhigh"]);
    assert_eq!(ready["thinking_level"], "xhigh", "{ready}");
    finish(rpc);
    let (mut rpc, ready) = resume(&[]);
    assert_eq!(ready["thinking_level"], "xhigh", "{ready}");
    let b = body_of(&mut rpc, &srv, "resumed");
    assert_eq!(b["thinking"]["budget_tokens"], 32_000, "{b}");
    // A new session in the same process keeps the level in effect.
    call_ok(&mut rpc, json!({"type": "new_session"}), "n");
    assert_eq!(get_state(&mut rpc, "s2")["thinking_level"], "xhigh");
    finish(rpc);
}

#[test]
fn available_models_say_which_take_a_thinking_level() {
    let srv = FakeServer::start();
    let (_dir, path) =
        config_file("[[providers.openai.models]]\nid = \"house-reasoner\"\nreasoning = true\n");
    let mut rpc = spawn(Api::Anthropic, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--extension")
        .arg(&fixture("echo").to_string_lossy())
        .start();
    rpc.ready();
    // The echo extension's models are listed once it has answered
    // `initialize` (it starts in the background after `ready`): asked
    // until then, within the read timeout.
    let deadline = Instant::now() + READ_TIMEOUT;
    let r = loop {
        let r = call_ok(&mut rpc, json!({"type": "get_available_models"}), "m");
        let starting = r["models"].as_array().is_some_and(|models| {
            models.iter().any(|m| {
                m["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("still starting"))
            })
        });
        if !starting || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let models = r["models"].as_array().expect("models");
    assert!(models.iter().all(|m| m["reasoning"].is_boolean()), "{r}");
    let reasoning = |id: &str| {
        models
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {r}"))["reasoning"]
            .clone()
    };
    assert_eq!(reasoning("anthropic/claude-sonnet-4-5"), true);
    assert_eq!(reasoning("openai/o3"), true);
    assert_eq!(reasoning("openai/gpt-5.4"), true);
    assert_eq!(reasoning("openai/gpt-4o-mini"), false);
    assert_eq!(reasoning("openai/house-reasoner"), true);
    assert_eq!(reasoning("echo:echo:echo-1"), true);
    assert_eq!(reasoning("echo:echo:echo-complete"), false);
}

#[test]
fn extension_params_carry_the_level() {
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .ext("echo")
        .model("echo:echo:echo-1")
        .arg("--thinking")
        .arg("medium")
        .start();
    rpc.ready();
    let params = |rpc: &mut Rpc, id: &str| -> Value {
        let (frames, resp) = prompt(rpc, id, "[[show=params]]");
        assert_ok(&resp, rpc);
        serde_json::from_str(&text_of(&frames)).expect("params JSON")
    };
    assert_eq!(params(&mut rpc, "p1")["thinking_level"], "medium");
    set_level(&mut rpc, "off");
    assert_eq!(params(&mut rpc, "p2")["thinking_level"], "off");
    finish(rpc);
}
