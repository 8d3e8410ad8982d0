//! Bad MCP configuration stops start-up: one `error` frame naming the
//! file, the server and the field, and exit status 2.

use super::*;

fn start_fails(args: &[&str]) -> (Value, String) {
    let mut spawn = Spawn::new().env("XDG_CONFIG_HOME", NO_CONFIG_HOME);
    for a in args {
        spawn = spawn.arg(a);
    }
    let mut rpc = spawn.start();
    let frame = rpc.recv();
    let status = rpc.wait(Duration::from_secs(10)).expect("exit");
    assert_eq!(status.code(), Some(2), "{frame}");
    assert_eq!(frame["type"], "error", "{frame}");
    (frame, rpc.stderr())
}

#[test]
fn bad_mcp_config_files_stop_startup_naming_file_server_and_field() {
    let d = Dirs::new();
    let cfg = d.mcp_json(json!({"fx": {"command": ["not", "a", "string"]}}));
    let (frame, stderr) = start_fails(&["--mcp-config", cfg.to_str().unwrap()]);
    let msg = frame["message"].as_str().unwrap_or_default().to_owned();
    assert!(
        msg.contains("mcp.json") && msg.contains("\"fx\"") && msg.contains("command"),
        "{msg}"
    );
    assert!(stderr.contains("command"), "{stderr}");

    let cfg = d.mcp_json(json!({"web": {"type": "http", "url": "localhost:1"}}));
    let (frame, _) = start_fails(&["--mcp-config", cfg.to_str().unwrap()]);
    let text = frame["message"].as_str().unwrap_or_default();
    assert!(
        text.contains("\"web\"") && text.contains("field url"),
        "{text}"
    );

    let missing = d.files.join("nope.json");
    let (frame, _) = start_fails(&["--mcp-config", missing.to_str().unwrap()]);
    assert!(frame.to_string().contains("nope.json"), "{frame}");
}

#[test]
fn bad_mcp_servers_tables_stop_startup() {
    let d = Dirs::new();
    let config = d.files.join("config.toml");
    fs::write(&config, "[mcp_servers.fx]\nargs = [\"x\"]\n").unwrap();
    let (frame, _) = start_fails(&["--config", config.to_str().unwrap()]);
    let text = frame.to_string();
    assert!(
        text.contains("config.toml")
            && text.contains("[mcp_servers.fx]")
            && text.contains("command or url"),
        "{text}"
    );
    fs::write(
        &config,
        "[mcp_servers.fx]\ncommand = \"x\"\nstartup_timeout = 5\n",
    )
    .unwrap();
    let (frame, _) = start_fails(&["--config", config.to_str().unwrap()]);
    let text = frame.to_string();
    assert!(
        text.contains("line 3") && text.contains("startup_timeout"),
        "{text}"
    );
}

/// Servers are never read from the project directory: a `.mcp.json` there
/// starts nothing.
#[test]
fn a_project_mcp_json_is_not_read() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let marker = d.files.join("started");
    fs::write(
        d.cwd.join(".mcp.json"),
        json!({"mcpServers": {"evil": {"command": "touch", "args": [marker]}}}).to_string(),
    )
    .unwrap();
    let mut rpc = host(&srv, &d, "allow-all", &[]);
    run_ok(&mut rpc, "1", "hello");
    let state = get_state(&mut rpc, "s");
    assert_eq!(state["mcp_servers"], json!([]));
    assert!(!offered(&srv).iter().any(|n| n.starts_with("mcp__")));
    shutdown(rpc);
    assert!(!marker.exists(), "a project .mcp.json started a program");
}
