//! Extensions installed in the data dir are discovered; `get_available_models`
//! lists their models and marks broken ones unavailable.

use super::*;

/// `get_available_models` once no extension is still starting. A listing
/// waits at most 750 ms for extensions (tested on its own below); on a
/// loaded machine a Python extension can take longer than that to start,
/// and these tests are about what is listed, not how fast.
fn models_once_started(rpc: &mut Rpc) -> Value {
    let deadline = Instant::now() + READ_TIMEOUT;
    for n in 0.. {
        let resp = call_ok(
            rpc,
            json!({"type": "get_available_models"}),
            &format!("m{n}"),
        );
        let starting = resp["models"].as_array().is_some_and(|models| {
            models.iter().any(|m| {
                m["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("still starting"))
            })
        });
        if !starting || Instant::now() > deadline {
            return resp;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    unreachable!("the loop returns")
}

#[test]
fn installed_extensions_are_discovered_from_the_data_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    plugin_copy(&data.join("extensions"), "installed", "echo", |_| {});
    let mut rpc = Host::start(Spawn::new().data(data));
    rpc.ready();
    let models = models_once_started(&mut rpc);
    let ids: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"installed:echo:echo-1"), "{models}");
    set_model(&mut rpc, "installed:echo:echo-1");
    assert_eq!(
        run_ok(&mut rpc, "1", "from the data dir"),
        "from the data dir"
    );
    finish(rpc);
}

#[test]
fn available_models_lists_extension_models_and_marks_broken_ones_unavailable() {
    let mut rpc = Host::start(Spawn::new().ext("echo").ext("crash-init"));
    rpc.ready();
    let resp = models_once_started(&mut rpc);
    let models = resp["models"].as_array().unwrap();
    for id in ["echo:echo:echo-1", "echo:echo:echo-complete"] {
        let m = models
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("{id} missing: {resp}"));
        assert_eq!(m["context_window"], 200000, "{m}");
        assert_eq!(m["available"], true, "{m}");
        assert!(
            m["provider"].as_str().is_some_and(|p| p.contains("echo")),
            "{m}"
        );
        assert!(m["name"].is_string(), "{m}");
    }
    let broken: Vec<&Value> = models
        .iter()
        .filter(|m| m["id"].as_str().unwrap().starts_with("crash-init"))
        .collect();
    assert!(!broken.is_empty(), "the broken extension is listed: {resp}");
    for m in broken {
        assert_eq!(m["available"], false, "{m}");
        let error = m["error"].as_str().expect("an error saying why");
        assert!(error.contains("crashing on purpose"), "{m}");
    }
    finish(rpc);
}

/// The fixture copied alone into `extensions/` (its `../fakeprov.py` not
/// beside it) cannot start; with no other model, the prompt's error says
/// why the extension failed, not only that no model is available.
#[test]
fn a_prompt_with_no_model_says_why_the_extension_failed() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let copy = data.join("extensions").join("echo");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(
        common::fixture("echo").join("plugin.json"),
        copy.join("plugin.json"),
    )
    .unwrap();
    let mut rpc = Host::start(
        Spawn::new()
            .data(data)
            .env("ANTHROPIC_API_KEY", "")
            .env("OPENAI_API_KEY", ""),
    );
    rpc.ready();
    let answer = rpc.call(json!({"type": "prompt", "message": "hi"}), "1");
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "not_found", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.starts_with("no model is available (extension \"echo\""),
        "{message}"
    );
    assert!(message.contains("fakeprov.py"), "{message}");
    finish(rpc);
}
