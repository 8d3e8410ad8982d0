//! The model is known before the first prompt: `ready.model` names it when
//! it needs no waiting, and `model_changed` announces it once extensions
//! reported and on every later change.

use super::*;

/// A host with only the Anthropic key set and no `--model`.
fn keyed_without_model(srv: &FakeServer) -> Spawn {
    Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env("ANTHROPIC_BASE_URL", &Api::Anthropic.base_url(srv.port))
        .env("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        .env("OPENAI_API_KEY", "")
}

#[test]
fn ready_names_the_model_when_one_endpoint_is_keyed() {
    let srv = FakeServer::start();
    let mut rpc = keyed_without_model(&srv).start();
    let ready = rpc.ready();
    assert_eq!(ready["model"], "anthropic/claude-sonnet-5-5", "{ready}");
    assert_eq!(get_state(&mut rpc, "s")["model"], ready["model"]);
    let (_, resp) = run(&mut rpc, "1", "hi [[id=first]]");
    assert_ok(&resp, &rpc);
    let reqs = srv.requests_with("id=first");
    assert_eq!(reqs[0]["body"]["model"], "claude-sonnet-5-5", "{reqs:?}");
    // Nothing announced a change: the model is the one ready named.
    let frames = rpc.drain(Duration::from_millis(200));
    assert!(
        frames.iter().all(|f| f["type"] != "model_changed"),
        "{frames:?}"
    );
    finish(rpc);

    // With no key at all there is nothing to name.
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env("ANTHROPIC_API_KEY", "")
        .env("OPENAI_API_KEY", "")
        .start();
    assert_eq!(rpc.ready()["model"], Value::Null);
    finish(rpc);
}

#[test]
fn model_changed_follows_set_model() {
    let srv = FakeServer::start();
    let mut rpc = keyed_without_model(&srv).start();
    rpc.ready();
    rpc.send(json!({"type": "set_model", "id": "m", "model": "anthropic/claude-opus-5-5"}));
    let mut seen = Vec::new();
    loop {
        let f = rpc.recv();
        if is_answer_to(&f, "m") {
            assert_eq!(f["ok"], true, "{f}");
            break;
        }
        seen.push(f);
    }
    assert_eq!(
        seen,
        [json!({"type": "model_changed", "model": "anthropic/claude-opus-5-5"})]
    );
    assert_eq!(
        get_state(&mut rpc, "s")["model"],
        "anthropic/claude-opus-5-5"
    );
    finish(rpc);
}

#[test]
fn model_changed_follows_extension_start_up() {
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env("ANTHROPIC_API_KEY", "")
        .env("OPENAI_API_KEY", "")
        .ext("echo")
        .start();
    let ready = rpc.ready();
    assert_eq!(ready["model"], Value::Null, "{ready}");
    let changed = rpc.recv();
    assert_eq!(
        changed,
        json!({"type": "model_changed", "model": "echo:echo:echo-1"})
    );
    assert_eq!(get_state(&mut rpc, "s")["model"], "echo:echo:echo-1");
    // The first prompt runs on it, without announcing it again.
    let (frames, resp) = prompt(&mut rpc, "p", "hello");
    assert_ok(&resp, &rpc);
    assert!(
        frames.iter().all(|f| f["type"] != "model_changed"),
        "{frames:?}"
    );
    finish(rpc);
}
