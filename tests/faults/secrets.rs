//! API keys in the host's environment reach no extension, tool, log line,
//! frame or file.

use super::*;

// ---- 6. secrets -----------------------------------------------------------

/// Provider keys in the host's environment reach neither the extension nor
/// bash, and appear in no frame, log line (at trace level) or file.
#[test]
fn api_keys_reach_no_extension_tool_log_frame_or_file() {
    let cwd = tempfile::tempdir().unwrap();
    let mut rpc = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .arg("--log-level")
        .arg("trace")
        .arg("--permission-mode")
        .arg("allow-all")
        .arg("--cwd")
        .arg(cwd.path().to_str().unwrap())
        .env("ANTHROPIC_API_KEY", "sk-ant-FAULTSECRET")
        .env("OPENAI_API_KEY", "sk-oai-FAULTSECRET")
        // Not a provider's: removed by the name's suffix.
        .env("FAULT_DEPLOY_TOKEN", "tok-FAULTSECRET")
        .env("FAULT_DB_SECRET", "db-FAULTSECRET")
        .env("FAULT_CANARY", "canary-visible")
        .start();
    rpc.ready();

    // The extension's environment.
    // (stderr= makes the extension write to stderr, which the host logs.)
    let env_text = ok_prompt(&mut rpc, "1", "[[show=env stderr=3]]");
    let env: Value = serde_json::from_str(&env_text)
        .unwrap_or_else(|e| panic!("show=env is not JSON ({e}): {env_text}"));
    assert!(
        env.get("PATH").is_some(),
        "the extension's env was shown: {env}"
    );
    assert!(
        !env_text.contains(SECRET),
        "the extension sees a key: {env_text}"
    );

    // bash's environment.
    let (frames, resp) = prompt(
        &mut rpc,
        "2",
        r#"run it [[tool=bash input={"command": "env; echo done-env"}]]"#,
    );
    assert_eq!(resp["ok"], true, "{resp}");
    let end = frames
        .iter()
        .find(|f| f["type"] == "tool_execution_end")
        .unwrap_or_else(|| panic!("bash ran: {frames:?}"));
    let out = end["result"].as_str().unwrap_or("");
    assert!(out.contains("done-env"), "bash ran: {out}");
    assert!(
        out.contains("FAULT_CANARY=canary-visible"),
        "bash sees the host's ordinary environment: {out}"
    );
    assert!(!out.contains(SECRET), "bash sees a key: {out}");

    // A few more commands, so more gets logged.
    for (i, c) in [
        "get_available_models",
        "get_session_stats",
        "list_sessions",
        "get_messages",
    ]
    .iter()
    .enumerate()
    {
        let r = rpc.call(json!({"type": c}), &format!("c{i}"));
        assert_eq!(r["ok"], true, "{r}");
    }
    let data = rpc.data.clone();
    rpc.close_stdin();
    let status = rpc.wait(Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    rpc.drain(Duration::from_millis(200));
    let stderr = rpc.stderr();
    assert!(
        stderr.contains("DEBUG") || stderr.contains("TRACE"),
        "trace logging is on: {stderr}"
    );

    let mut leaks = Vec::new();
    for f in &rpc.seen {
        if f.to_string().contains(SECRET) {
            leaks.push(format!(
                "stdout frame: {}",
                &f.to_string()[..f.to_string().len().min(300)]
            ));
        }
    }
    for line in stderr.lines().filter(|l| l.contains(SECRET)) {
        leaks.push(format!("stderr: {}", &line[..line.len().min(300)]));
    }
    let mut files = 0;
    let mut stack = vec![data.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                let bytes = std::fs::read(&p).unwrap_or_default();
                if String::from_utf8_lossy(&bytes).contains(SECRET) {
                    leaks.push(format!("file {}", p.display()));
                }
            }
        }
    }
    assert!(files >= 1, "the session file was written");
    assert!(leaks.is_empty(), "the keys leaked:\n{}", leaks.join("\n"));
    eprintln!(
        "secrets: checked {} frames, {} stderr lines, {files} files",
        rpc.seen.len(),
        stderr.lines().count()
    );
}

/// `[shell] env_keep` (and its old spelling `[tools] keep_env`) lets a
/// named credential through to bash; the others stay out.
#[test]
fn env_keep_lets_a_named_credential_through() {
    let cwd = tempfile::tempdir().unwrap();
    let config = cwd.path().join("config.toml");
    std::fs::write(
        &config,
        "[shell]\nenv_keep = [\"FAULT_KEPT_TOKEN\"]\n[tools]\nkeep_env = [\"FAULT_OLD_API_KEY\"]\n",
    )
    .unwrap();
    let mut rpc = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .arg("--permission-mode")
        .arg("allow-all")
        .arg("--config")
        .arg(config.to_str().unwrap())
        .arg("--cwd")
        .arg(cwd.path().to_str().unwrap())
        .env("FAULT_KEPT_TOKEN", "kept-one")
        .env("FAULT_OLD_API_KEY", "kept-two")
        .env("FAULT_GONE_TOKEN", "gone-FAULTSECRET")
        .start();
    rpc.ready();
    let (frames, resp) = prompt(
        &mut rpc,
        "1",
        r#"run it [[tool=bash input={"command": "env | grep ^FAULT_ | sort"}]]"#,
    );
    assert_eq!(resp["ok"], true, "{resp}");
    let out = frames
        .iter()
        .find(|f| f["type"] == "tool_execution_end")
        .and_then(|f| f["result"].as_str())
        .unwrap_or_else(|| panic!("bash ran: {frames:?}"))
        .to_owned();
    assert!(out.contains("FAULT_KEPT_TOKEN=kept-one"), "{out}");
    assert!(out.contains("FAULT_OLD_API_KEY=kept-two"), "{out}");
    assert!(
        !out.contains(SECRET),
        "a credential not kept reached bash: {out}"
    );
}
