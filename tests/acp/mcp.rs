//! MCP servers an ACP client passes in `session/new`: connected for that
//! session only, their tools offered as `mcp__<server>__<tool>` and run
//! behind the client's permission prompt, stopped by `session/close`. The
//! server is the Python SDK fixture (`fixtures/mcp/server.py`, `mcp`
//! pinned in tests/requirements.txt).

use std::path::Path;

use serde_json::{json, Value};

use super::{chunk_text, of_kind, Acp};

fn fixture_server(name: &str, env: Value) -> Value {
    let python = crate::common::python_env::python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mcp/server.py");
    json!({
        "name": name,
        "command": python.to_string_lossy(),
        "args": [script.to_string_lossy()],
        "env": env,
    })
}

fn session_with(acp: &mut Acp, cwd: &Path, servers: Value) -> String {
    acp.call(
        "session/new",
        json!({"cwd": cwd.to_string_lossy(), "mcpServers": servers}),
    )["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_owned()
}

#[test]
fn mcp_servers_from_session_new_are_connected_for_that_session() {
    let dir = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(None, &[]);
    acp.initialize();
    let env = json!([{"name": "FIXTURE_FROM_CLIENT", "value": "set by the editor"}]);
    let with_mcp = session_with(&mut acp, dir.path(), json!([fixture_server("fx", env)]));

    // The first round waits for the server, so its tool is there at once.
    let input = r#"[[tool=mcp__fx__get_env input={"name": "FIXTURE_FROM_CLIENT"}]]"#;
    let (updates, answer) = acp.prompt(&with_mcp, input);
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let calls = of_kind(&updates, "tool_call");
    assert_eq!(calls.len(), 1, "{updates:?}");
    assert_eq!(calls[0]["title"], "mcp__fx__get_env");
    assert_eq!(calls[0]["rawInput"]["name"], "FIXTURE_FROM_CLIENT");
    // An MCP call always asks in the default mode.
    assert_eq!(acp.asked.len(), 1, "{:?}", acp.asked);
    assert_eq!(
        acp.asked[0]["params"]["toolCall"]["toolCallId"],
        calls[0]["toolCallId"]
    );
    let done = of_kind(&updates, "tool_call_update")
        .into_iter()
        .find(|u| u["status"] == "completed")
        .unwrap_or_else(|| panic!("no completed update: {updates:?}"));
    assert_eq!(
        done["content"][0]["content"]["text"], "set by the editor",
        "{done}"
    );
    assert!(chunk_text(&updates, "agent_message_chunk").contains("set by the editor"));

    // A second session on the same connection has no such server: the
    // call fails as an unknown tool, and the turn still ends normally.
    let plain = session_with(&mut acp, dir.path(), json!([]));
    let (updates, answer) = acp.prompt(&plain, input);
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let failed = of_kind(&updates, "tool_call_update")
        .into_iter()
        .find(|u| u["status"] == "failed");
    assert!(failed.is_some(), "{updates:?}");
    acp.finish();
}

#[test]
fn bad_mcp_server_entries_are_invalid_params() {
    let dir = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(None, &[]);
    acp.initialize();
    for servers in [
        json!([{"name": "a__b", "command": "x", "args": [], "env": []}]),
        json!([{"type": "http", "name": "web", "url": "ftp://x", "headers": []}]),
        json!([{"command": "x", "args": [], "env": []}]),
    ] {
        let id = acp.request(
            "session/new",
            json!({"cwd": dir.path().to_string_lossy(), "mcpServers": servers}),
        );
        let (_, answer) = acp.until_answer(id);
        assert_eq!(answer["error"]["code"], -32602, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("mcpServers")),
            "{answer}"
        );
    }
    acp.finish();
}

#[test]
fn session_close_stops_the_sessions_mcp_servers() {
    use std::time::{Duration, Instant};

    use crate::common::procfs;

    let dir = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(None, &[]);
    acp.initialize();
    let session = session_with(
        &mut acp,
        dir.path(),
        json!([fixture_server("fx", json!([]))]),
    );
    // The first round waits for the server: it runs once the turn ends.
    let input = r#"[[tool=mcp__fx__get_env input={"name": "HOME"}]]"#;
    let (_, answer) = acp.prompt(&session, input);
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let pid = acp.rpc.pid();
    let servers = || -> Vec<u32> {
        procfs::descendants(pid)
            .into_iter()
            .filter(|p| procfs::cmdline(*p).is_some_and(|c| c.contains("server.py")))
            .collect()
    };
    assert!(!servers().is_empty(), "the server is not running");
    assert_eq!(
        acp.call("session/close", json!({"sessionId": session})),
        json!({})
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !servers().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the MCP server outlived session/close"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    acp.finish();
}
