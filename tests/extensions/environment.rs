//! The environment an extension gets: cleared except the base variables,
//! plus its manifest's `env` and `pass_env`.

use super::*;

/// A PATH on which `python3` is the interpreter itself, not a wrapper: a
/// version-manager shim (pyenv's is a bash script) adds its own variables
/// (PYENV_*, PWD, SHLVL) to the extension's environment.
fn plain_python_path() -> String {
    let (status, exe, stderr) = crate::common::bounded::run_bounded(
        std::process::Command::new("python3").args(["-c", "import sys; print(sys.executable)"]),
        b"",
        std::time::Duration::from_secs(60),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "python3 runs: {stderr}"
    );
    let dir = Path::new(exe.trim())
        .parent()
        .expect("interpreter dir")
        .to_owned();
    format!("{}:/usr/bin:/bin", dir.display())
}

#[test]
fn extension_environment_is_cleared_except_the_base_variables() {
    let mut rpc = Host::start(
        Spawn::new()
            .ext("echo")
            .model(ECHO)
            .env("SECRET_TOKEN", "xyz")
            .env("ANTHROPIC_API_KEY", "sk-test")
            .env("PATH", &plain_python_path())
            // A UTF-8 locale, so Python does not add LC_CTYPE by locale coercion
            // (PEP 538): any extra key would then be the host's doing.
            .env("LANG", "C.UTF-8"),
    );
    rpc.ready();
    let text = run_ok(&mut rpc, "1", "[[show=env]]");
    let env: Value = serde_json::from_str(&text).expect("env JSON");
    let keys: BTreeSet<&str> = env
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let allowed = BTreeSet::from(["PATH", "HOME", "LANG", "TERM", "XDG_RUNTIME_DIR"]);
    assert!(keys.is_subset(&allowed), "extension saw {keys:?}");
    assert!(keys.contains("PATH"));
    assert_eq!(env["LANG"], "C.UTF-8");
    assert!(!text.contains("sk-test") && !text.contains("xyz"), "{text}");
    finish(rpc);
}

#[test]
fn manifest_env_and_pass_env_reach_the_extension() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = plugin_copy(tmp.path(), "envecho", "echo", |m| {
        m["extension"]["env"] = json!({"FIXED_SETTING": "fixed value"});
        m["extension"]["pass_env"] = json!(["MY_API_KEY", "NOT_SET_ANYWHERE"]);
    });
    let mut rpc = Host::start(
        with_plugin(Spawn::new(), &dir)
            .model("envecho:echo:echo-1")
            .env("MY_API_KEY", "passed-through")
            .env("OTHER_SECRET", "kept-back")
            .env("PATH", &plain_python_path())
            .env("LANG", "C.UTF-8"),
    );
    rpc.ready();
    let text = run_ok(&mut rpc, "1", "[[show=env]]");
    let env: Value = serde_json::from_str(&text).expect("env JSON");
    assert_eq!(env["FIXED_SETTING"], "fixed value", "{env}");
    assert_eq!(env["MY_API_KEY"], "passed-through", "{env}");
    assert!(env.get("OTHER_SECRET").is_none(), "{env}");
    assert!(
        env.get("NOT_SET_ANYWHERE").is_none(),
        "an unset pass_env name stays unset: {env}"
    );
    let keys: BTreeSet<&str> = env
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let allowed = BTreeSet::from([
        "PATH",
        "HOME",
        "LANG",
        "TERM",
        "XDG_RUNTIME_DIR",
        "FIXED_SETTING",
        "MY_API_KEY",
    ]);
    assert!(keys.is_subset(&allowed), "extension saw {keys:?}");
    finish(rpc);
}
