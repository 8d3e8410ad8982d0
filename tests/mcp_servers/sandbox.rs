//! `[mcp_servers.x] sandbox = true`: a stdio server runs in the session's
//! kernel sandbox (SPEC §10.1). The fixture server appends to its log at
//! start, so where its log lives shows which rules it runs under: a log
//! outside the writable roots stops a sandboxed server from starting and
//! is written by an unsandboxed one.

use super::*;

/// A host whose config.toml runs the fixture as `fx`, sandboxed or not,
/// logging to `log`; `$TMPDIR` is the test's own, so only the cwd and it
/// are writable.
fn sandbox_host(srv: &FakeServer, d: &Dirs, sandboxed: bool, log: &Path) -> Rpc {
    let (python, script) = python_fixture();
    let config = d.files.join("config.toml");
    let toml = format!(
        "[mcp_servers.fx]\ncommand = {python:?}\nargs = [{script:?}]\nsandbox = {sandboxed}\n\
         env = {{ MCP_FIXTURE_LOG = {log:?} }}\n",
        python = python.to_string_lossy(),
        script = script.to_string_lossy(),
        log = log.to_string_lossy(),
    );
    fs::write(&config, toml).expect("config.toml");
    let tmp = d.cwd.join("tmp");
    fs::create_dir_all(&tmp).expect("tmp");
    host_with_env(
        srv,
        d,
        "allow-all",
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--sandbox",
            "workspace-write",
        ],
        &[
            ("TMPDIR", tmp.to_str().expect("utf-8")),
            ("FX_DEPLOY_TOKEN", "tok-secret"),
        ],
    )
}

#[test]
fn a_sandboxed_server_writes_only_inside_the_rules() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    // Inside the cwd: it starts, its tools work, and it gets no token.
    let inside = d.cwd.join("fx.log");
    let mut rpc = sandbox_host(&srv, &d, true, &inside);
    until_status(&mut rpc, "fx", "ready");
    let frames = run_ok(
        &mut rpc,
        "1",
        &call("mcp__fx__echo", &json!({"text": "hi"})),
    );
    assert_eq!(the_tool_end(&frames)["result"], "hi");
    let frames = run_ok(
        &mut rpc,
        "2",
        &call("mcp__fx__get_env", &json!({"name": "FX_DEPLOY_TOKEN"})),
    );
    assert_eq!(the_tool_end(&frames)["result"], "<unset>");
    assert!(fs::read_to_string(&inside)
        .unwrap_or_default()
        .contains("start"));
    shutdown(rpc);

    // Outside every writable root: the sandboxed server cannot even log.
    let outside = d.files.join("fx.log");
    let mut rpc = sandbox_host(&srv, &d, true, &outside);
    let failed = until_status(&mut rpc, "fx", "failed");
    assert!(!outside.exists(), "{failed}");
    shutdown(rpc);

    // Not sandboxed (the default): the same log is written.
    let mut rpc = sandbox_host(&srv, &d, false, &outside);
    until_status(&mut rpc, "fx", "ready");
    assert!(fs::read_to_string(&outside)
        .unwrap_or_default()
        .contains("start"));
    shutdown(rpc);
}
