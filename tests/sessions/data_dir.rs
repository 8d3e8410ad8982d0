//! Where the data directory comes from: `AGENT_RPC_HOME`, then
//! `XDG_DATA_HOME`, then `HOME`.

use super::*;

/// Runs `rpc` with a fully controlled environment (no `--data-dir`), pipes in
/// `input`, and returns its frames and exit status (killed after 15 s).
fn run_with_env(env: &[(&str, &Path)], input: &str) -> (Vec<Value>, ExitStatus, String) {
    let mut cmd = Command::new(common::bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("--extension")
        .arg(common::fixture("echo"))
        .arg("--model")
        .arg(ECHO)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn rpc");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let Some(status) = common::wait_timeout(&mut child, Duration::from_secs(15)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("rpc did not exit within 15 s");
    };
    let frames = out
        .join()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout line is JSON"))
        .collect();
    (frames, status, err.join().unwrap())
}

/// Runs one prompt with that environment; returns the session id.
fn prompt_with_env(env: &[(&str, &Path)]) -> String {
    let input = "{\"type\":\"prompt\",\"id\":1,\"message\":\"where am i\"}\n";
    let (frames, status, stderr) = run_with_env(env, input);
    assert!(status.success(), "{status:?}; stderr:\n{stderr}");
    assert_eq!(frames[0]["type"], "ready", "{frames:?}");
    let last = frames.last().unwrap();
    assert_eq!(last["ok"], true, "{last}; stderr:\n{stderr}");
    frames[0]["session_id"].as_str().unwrap().to_owned()
}

#[test]
fn data_dir_comes_from_agent_rpc_home_then_xdg_data_home_then_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let rpc_home = tmp.path().join("rpc-home");
    let xdg = tmp.path().join("xdg");
    std::fs::create_dir_all(&home).unwrap();

    // AGENT_RPC_HOME wins over XDG_DATA_HOME.
    let id = prompt_with_env(&[
        ("HOME", &home),
        ("AGENT_RPC_HOME", &rpc_home),
        ("XDG_DATA_HOME", &xdg),
    ]);
    assert!(
        session_file(&rpc_home, &id).is_file(),
        "session under AGENT_RPC_HOME"
    );
    assert!(
        !xdg.exists(),
        "XDG_DATA_HOME must be unused when AGENT_RPC_HOME is set"
    );
    assert_eq!(mode_of(&rpc_home), 0o700);

    // Without AGENT_RPC_HOME: $XDG_DATA_HOME/agent-rpc.
    let id = prompt_with_env(&[("HOME", &home), ("XDG_DATA_HOME", &xdg)]);
    assert!(
        session_file(&xdg.join("agent-rpc"), &id).is_file(),
        "session under XDG_DATA_HOME/agent-rpc"
    );

    // Neither: ~/.local/share/agent-rpc.
    let id = prompt_with_env(&[("HOME", &home)]);
    assert!(session_file(&home.join(".local/share/agent-rpc"), &id).is_file());

    // --data-dir beats them all.
    let flag_dir = tmp.path().join("flag");
    let mut h = echo_spawn_in(&flag_dir)
        .model(ECHO)
        .env("AGENT_RPC_HOME", rpc_home.to_str().unwrap())
        .start();
    let id = h.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut h, "1", "flagged");
    finish(h);
    assert!(session_file(&flag_dir, &id).is_file());
    assert_eq!(sessions_in(&rpc_home).len(), 1, "AGENT_RPC_HOME untouched");
}
