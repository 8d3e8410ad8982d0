//! Configuration and model ids: config-file errors name file, line and
//! field; model-id rules through `set_model` and `--model`.

use super::*;

// ---- 14. config errors ----------------------------------------------------

#[test]
fn config_errors_name_file_line_and_field() {
    let cases = [
        (
            "unknown key",
            "[http]\nretry_base_delay_ms = 50\nmax_retriez = 3\n",
            "line 3",
            "max_retriez",
        ),
        (
            "bad type",
            "# retries\n[http]\nmax_retries = \"three\"\n",
            "line 3",
            "max_retries",
        ),
        (
            "bad type in a provider",
            "[providers.local]\nkind = \"openai\"\nbase_url = 42\n",
            "line 3",
            "base_url",
        ),
        (
            "unknown key in a provider",
            "default_model = \"gpt-4o-mini\"\n\n[providers.local]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\napi_key = \"x\"\n",
            "line 6",
            "api_key",
        ),
    ];
    for (label, text, line, field) in cases {
        let (_dir, path) = config_file(text);
        let mut rpc = Spawn::new()
            .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
            .arg("--config")
            .arg(&path)
            .start();
        let f = rpc.recv();
        assert_eq!(f["type"], "error", "{label}: start-up error frame, got {f}");
        assert!(f["id"].is_null(), "{label}: {f}");
        assert_eq!(f["code"], "invalid_params", "{label}: {f}");
        let msg = f["message"].as_str().unwrap_or("");
        assert!(msg.contains(&path), "{label}: names the file: {msg}");
        assert!(msg.contains(line), "{label}: names {line}: {msg}");
        assert!(
            msg.contains(field),
            "{label}: names the field {field}: {msg}"
        );
        let status = rpc.wait(Duration::from_secs(5)).expect("exits");
        assert_eq!(status.code(), Some(2), "{label}: exit status");
        assert!(rpc.recv_within(Duration::from_millis(200)).is_none());
    }
}

// ---- 15. model ids --------------------------------------------------------

#[test]
fn model_id_rules_through_set_model() {
    let mut rpc = Spawn::new().env("XDG_CONFIG_HOME", NO_CONFIG_HOME).start();
    rpc.ready();
    for model in [
        "openrouter/anthropic/claude-sonnet-4",
        "ollama/qwen2.5:7b",
        "claude-sonnet-5-5",
        "gpt-4o-mini",
    ] {
        let r = rpc.call(json!({"type": "set_model", "model": model}), model);
        assert_eq!(r["type"], "response", "{model}: {r}");
        assert_eq!(r["ok"], true, "{model}: {r}");
        assert_eq!(r["model"], model, "{model}: {r}");
    }
    let state = rpc.call(json!({"type": "get_state"}), "st");
    assert_eq!(state["model"], "gpt-4o-mini", "{state}");
    for model in ["nonsense-name", "unknownprov/x", "/x", "openai/"] {
        let r = rpc.call(json!({"type": "set_model", "model": model}), model);
        assert_eq!(r["type"], "error", "{model}: {r}");
        assert_eq!(r["code"], "not_found", "{model}: {r}");
        assert!(
            r["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{model}: {r}"
        );
    }
    let state = rpc.call(json!({"type": "get_state"}), "st2");
    assert_eq!(
        state["model"], "gpt-4o-mini",
        "rejected set_model changed nothing: {state}"
    );
}

#[test]
fn unknown_provider_in_model_flag_is_a_startup_error() {
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .model("unknownprov/x")
        .start();
    let f = rpc.recv();
    assert_eq!(f["type"], "error", "{f}");
    assert_eq!(f["code"], "not_found", "{f}");
    assert!(
        f["message"].as_str().unwrap_or("").contains("unknownprov"),
        "{f}"
    );
    let status = rpc.wait(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(2));
}

// ---- the config's default_model is checked at start-up like --model ----

#[test]
fn bad_default_model_in_the_config_is_a_startup_error_naming_file_and_key() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("agent-rpc");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let path = dir.join("config.toml");
    std::fs::write(&path, "default_model = \"nope\"\n").expect("write config");
    let path = path.to_string_lossy().into_owned();
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", &home.path().to_string_lossy())
        .start();
    let f = rpc.recv();
    assert_eq!(f["type"], "error", "a start-up error, not ready: {f}");
    assert!(f["id"].is_null(), "{f}");
    assert_eq!(f["code"], "not_found", "like --model nope: {f}");
    let msg = f["message"].as_str().unwrap_or("");
    assert!(
        msg.starts_with(&format!(
            "{path}: default_model: model id \"nope\" is not recognised"
        )),
        "names the file and the key: {msg}"
    );
    let status = rpc.wait(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(2));
    let stderr = rpc.stderr();
    assert!(
        stderr.contains(&format!("rpc: {msg} (not_found)")),
        "the same message on stderr: {stderr}"
    );
    assert!(rpc.recv_within(Duration::from_millis(200)).is_none());

    // An unknown provider in the file, even with a good --model given.
    std::fs::write(&path, "default_model = \"unknownprov/x\"\n").expect("write config");
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", &home.path().to_string_lossy())
        .model("gpt-4o-mini")
        .start();
    let f = rpc.recv();
    assert_eq!(f["code"], "not_found", "{f}");
    let msg = f["message"].as_str().unwrap_or("");
    assert!(
        msg.starts_with(&format!(
            "{path}: default_model: unknown provider \"unknownprov\""
        )),
        "{msg}"
    );
    assert_eq!(
        rpc.wait(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(2)
    );
}

/// A model id a slip away from a catalogue one (`claude-sonet-5-5`) is a
/// start-up error naming the model meant, in the config and in `--model`,
/// and `set_model` refuses it too; a name the catalogue does not know and
/// that is not a slip (a model newer than the catalogue) still passes.
#[test]
fn a_mistyped_catalogue_model_is_refused_with_the_one_meant() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("agent-rpc");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(
        dir.join("config.toml"),
        "default_model = \"claude-sonet-5-5\"\n",
    )
    .expect("write config");
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", &home.path().to_string_lossy())
        .start();
    let f = rpc.recv();
    assert_eq!(f["type"], "error", "{f}");
    let msg = f["message"].as_str().unwrap_or("");
    assert!(
        msg.ends_with("default_model: anthropic/claude-sonet-5-5 is not a model anthropic lists; did you mean claude-sonnet-5-5?"),
        "{msg}"
    );
    let status = rpc.wait(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(2), "a start-up error");

    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .model("openai/gpt-4o-minni")
        .start();
    let f = rpc.recv();
    assert_eq!(f["type"], "error", "{f}");
    assert!(
        f["message"]
            .as_str()
            .unwrap_or("")
            .contains("did you mean gpt-4o-mini?"),
        "{f}"
    );
    let status = rpc.wait(Duration::from_secs(5)).expect("exits");
    assert_eq!(status.code(), Some(2), "a start-up error");

    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .model("claude-sonnet-9-9")
        .start();
    rpc.ready();
    let r = rpc.call(json!({"type": "set_model", "model": "claude-opus-6"}), "m");
    assert_eq!(r["type"], "response", "a new name passes: {r}");
    assert_eq!(r["model"], "claude-opus-6", "{r}");
    let r = rpc.call(
        json!({"type": "set_model", "model": "anthropic/claude-opuss-5-5"}),
        "t",
    );
    assert_eq!(r["type"], "error", "{r}");
    assert!(
        r["message"]
            .as_str()
            .unwrap_or("")
            .contains("did you mean claude-opus-5-5?"),
        "{r}"
    );
    finish(rpc);
}
