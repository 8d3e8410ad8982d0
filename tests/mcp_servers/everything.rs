//! Against the official reference server,
//! `@modelcontextprotocol/server-everything` (npm, pinned), over stdio and
//! Streamable HTTP.

use super::*;

/// stdio: listed, a round trip with its `echo` and `get-sum`, and the
/// environment filter seen through its `get-env`.
#[test]
fn everything_over_stdio() {
    let js = everything_js();
    let srv = FakeServer::start();
    let d = Dirs::new();
    let cfg = d.mcp_json(json!({"everything": {
        "command": "node", "args": [js, "stdio"], "env": {"FROM_CONFIG": "yes"}
    }}));
    let mut rpc = host_with_env(
        &srv,
        &d,
        "allow-all",
        &["--mcp-config", cfg.to_str().unwrap()],
        &[("OTHER_API_KEY", "secret-2")],
    );
    let ready = until_status(&mut rpc, "everything", "ready");
    let tools = ready["tools"].as_array().expect("tools").clone();
    assert!(tools.contains(&json!("mcp__everything__echo")), "{ready}");
    assert!(
        tools.contains(&json!("mcp__everything__get-sum")),
        "{ready}"
    );

    let frames = run_ok(
        &mut rpc,
        "1",
        &call("mcp__everything__echo", &json!({"message": "hi there"})),
    );
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    assert!(
        end["result"].as_str().unwrap().contains("hi there"),
        "{end}"
    );

    let frames = run_ok(
        &mut rpc,
        "2",
        &call("mcp__everything__get-sum", &json!({"a": 2, "b": 40})),
    );
    assert!(the_tool_end(&frames)["result"]
        .as_str()
        .unwrap()
        .contains("42"));

    let frames = run_ok(&mut rpc, "3", &call("mcp__everything__get-env", &json!({})));
    let env = the_tool_end(&frames)["result"].as_str().unwrap().to_owned();
    assert!(env.contains("FROM_CONFIG"), "configured env passed");
    assert!(!env.contains("secret-2"), "*_API_KEY removed");
    assert!(!env.contains("sk-test-mcp"), "provider key removed");

    // The reference server's image result reaches the model as an image,
    // between its two text blocks.
    let frames = run_ok(
        &mut rpc,
        "4",
        &call("mcp__everything__get-tiny-image", &json!({})),
    );
    let end = the_tool_end(&frames);
    assert_eq!(
        end["result"],
        "Here's the image you requested:\n[image: image/png]\nThe image above is the MCP logo.",
        "{end}"
    );
    let requests = srv.api_requests();
    let last = &requests.last().expect("a request after the tool")["body"]["messages"];
    let result = &last
        .as_array()
        .expect("messages")
        .last()
        .expect("a message")["content"][0];
    assert_eq!(result["type"], "tool_result", "{result}");
    let image = &result["content"][1];
    assert_eq!(image["type"], "image", "{result}");
    assert_eq!(image["source"]["media_type"], "image/png");
    assert!(image["source"]["data"]
        .as_str()
        .is_some_and(|d| d.starts_with("iVBORw0KGgo")));
    shutdown(rpc);
}

/// Streamable HTTP (`streamableHttp` mode).
#[test]
fn everything_over_streamable_http() {
    let js = everything_js();
    let srv = FakeServer::start();
    let d = Dirs::new();
    let port = free_port();
    let _server = Child(
        Command::new("node")
            .arg(js)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start server-everything over HTTP"),
    );
    wait_listening(port);
    let cfg = d.mcp_json(json!({"remote": {
        "type": "http", "url": format!("http://127.0.0.1:{port}/mcp")
    }}));
    let mut rpc = host(
        &srv,
        &d,
        "allow-all",
        &["--mcp-config", cfg.to_str().unwrap()],
    );
    let frames = run_ok(
        &mut rpc,
        "1",
        &call("mcp__remote__echo", &json!({"message": "via http"})),
    );
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    assert!(
        end["result"].as_str().unwrap().contains("via http"),
        "{end}"
    );
    assert_eq!(server_state(&mut rpc, "remote")["status"], "ready");
    shutdown(rpc);
}

/// A URL nothing listens on fails with what happened, in words: the
/// server's URL and the cause, announced `starting` then `failed` (once
/// each), and nothing of the SDK's internals on the wire or on stderr.
#[test]
fn an_unreachable_url_fails_that_server_only() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let port = free_port();
    let cfg = d.mcp_json(json!({
        "down": {"type": "http", "url": format!("http://127.0.0.1:{port}/mcp")},
        "fx": fixture_entry(&d.log("fx"), &[]),
    }));
    let mut rpc = host(
        &srv,
        &d,
        "allow-all",
        &["--mcp-config", cfg.to_str().unwrap()],
    );
    let frames = run_ok(
        &mut rpc,
        "1",
        &call("mcp__fx__echo", &json!({"text": "ok"})),
    );
    assert_eq!(the_tool_end(&frames)["result"], "ok");
    let down = server_state(&mut rpc, "down");
    assert_eq!(down["status"], "failed", "{down}");
    assert_eq!(
        down["error"],
        format!(
            "http://127.0.0.1:{port}/mcp: cannot reach the MCP server: connection refused \
             (is the server running, and on that port?)"
        ),
        "{down}"
    );
    let events: Vec<&Value> = rpc
        .seen
        .iter()
        .filter(|f| f["type"] == "mcp_server_status" && f["name"] == "down")
        .collect();
    let statuses: Vec<&Value> = events.iter().map(|f| &f["status"]).collect();
    assert_eq!(statuses, ["starting", "failed"], "{events:#?}");
    let fx: Vec<&Value> = rpc
        .seen
        .iter()
        .filter(|f| f["type"] == "mcp_server_status" && f["name"] == "fx")
        .map(|f| &f["status"])
        .collect();
    assert_eq!(fx, ["starting", "ready"], "ready once");
    shutdown_keeping_stderr(rpc, |stderr| {
        assert!(!stderr.contains("rmcp"), "the SDK's own lines: {stderr}");
        assert!(stderr.contains("cannot reach the MCP server"), "{stderr}");
    });
}

/// A server that answers, but not as MCP, is named with its HTTP status;
/// the URL's query (a token) never shows.
#[test]
fn a_url_that_is_not_an_mcp_server_says_its_status_and_hides_the_token() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let cfg = d.mcp_json(json!({
        "wrong": {"type": "http", "url": format!("http://127.0.0.1:{}/mcp?token=SECRET789", srv.port)},
    }));
    let mut rpc = host(
        &srv,
        &d,
        "allow-all",
        &["--mcp-config", cfg.to_str().unwrap()],
    );
    let failed = until_status(&mut rpc, "wrong", "failed");
    let error = failed["error"].as_str().expect("error");
    assert!(
        error.starts_with(&format!(
            "http://127.0.0.1:{}/mcp?…: the server answered HTTP status ",
            srv.port
        )),
        "{error}"
    );
    assert!(
        !error.contains("SECRET789") && !error.contains("rmcp"),
        "{error}"
    );
    shutdown_keeping_stderr(rpc, |stderr| {
        assert!(!stderr.contains("SECRET789"), "{stderr}");
    });
}
