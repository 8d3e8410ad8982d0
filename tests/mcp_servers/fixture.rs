//! Against the Python SDK fixture server (`fixtures/mcp/server.py`):
//! listing, round trips, permissions per mode, faults, the environment
//! filter, the HTTP transport, list_changed.

use super::*;

/// The first prompt, sent before the server is ready, waits for it; its
/// tools are offered as `mcp__fx__<tool>` with the schema unchanged, and a
/// call round-trips through tool_execution_start/_end and the model.
#[test]
fn tools_are_listed_and_a_call_round_trips() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let mut rpc = fixture_host(&srv, &d);

    // Sent at once: the first round waits for the server to start.
    let frames = run_ok(
        &mut rpc,
        "1",
        &call("mcp__fx__echo", &json!({"text": "hello mcp"})),
    );
    let ready = of_type(&frames, "mcp_server_status");
    assert!(
        ready.iter().any(|f| f["status"] == "ready"
            && f["tools"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("mcp__fx__echo")))),
        "{frames:#?}"
    );
    let start = of_type(&frames, "tool_execution_start");
    assert_eq!(start[0]["name"], "mcp__fx__echo");
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    assert_eq!(end["result"], "hello mcp");
    assert!(text_of(&frames).contains("tool result: hello mcp"));

    let requests = srv.api_requests();
    let tools = requests[0]["body"]["tools"]
        .as_array()
        .expect("tools")
        .clone();
    let echo = tools
        .iter()
        .find(|t| t["name"] == "mcp__fx__echo")
        .expect("echo offered");
    assert_eq!(
        echo["description"],
        "Echo the text back. Used for round trips."
    );
    assert_eq!(echo["input_schema"]["properties"]["text"]["type"], "string");
    assert_eq!(echo["input_schema"]["required"], json!(["text"]));
    assert!(tools.iter().any(|t| t["name"] == "read"), "built-ins stay");

    let state = server_state(&mut rpc, "fx");
    assert_eq!(state["status"], "ready");
    assert!(state["tools"]
        .as_array()
        .unwrap()
        .contains(&json!("mcp__fx__add")));
    assert!(state.get("error").is_none(), "{state}");

    // A tool error is an error result; the turn goes on.
    let frames = run_ok(&mut rpc, "2", &call("mcp__fx__fail", &json!({})));
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true, "{end}");
    // The SDK reports the exception without its text.
    assert!(end["result"].as_str().unwrap().contains("fail"), "{end}");
    shutdown(rpc);
}

/// ask and accept-edits ask for every MCP call; deny is an error result,
/// allow_always covers that one tool; read-only offers only tools hinted
/// read-only, which still ask, and refuses the others.
#[test]
fn permissions_per_mode() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let cfg = d.mcp_json(json!({"fx": fixture_entry(&d.log("fx"), &[])}));
    let flags = ["--mcp-config", cfg.to_str().unwrap()];

    let mut rpc = host(&srv, &d, "ask", &flags);
    let echo = call("mcp__fx__echo", &json!({"text": "x"}));
    let req = until_permission(&mut rpc, "1", &echo);
    assert_eq!(req["tool"], "mcp__fx__echo");
    assert_eq!(req["input"], json!({"text": "x"}));
    let (frames, resp) = decide(&mut rpc, &req, "deny", "1");
    assert_ok(&resp, &rpc);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true);
    assert!(end["result"].as_str().unwrap().contains("denied"), "{end}");

    let req = until_permission(&mut rpc, "2", &echo);
    let (frames, _) = decide(&mut rpc, &req, "allow_always", "2");
    assert_eq!(the_tool_end(&frames)["result"], "x");
    let frames = run_ok(&mut rpc, "3", &echo);
    assert!(
        of_type(&frames, "permission_request").is_empty(),
        "allowed always"
    );
    // ...for that tool only.
    let req = until_permission(
        &mut rpc,
        "4",
        &call("mcp__fx__add", &json!({"a": 1, "b": 2})),
    );
    let (frames, _) = decide(&mut rpc, &req, "allow_once", "4");
    assert_eq!(the_tool_end(&frames)["result"], "3");
    shutdown(rpc);

    let mut rpc = host(&srv, &d, "accept-edits", &flags);
    let req = until_permission(&mut rpc, "1", &echo);
    assert_eq!(req["tool"], "mcp__fx__echo");
    let (frames, _) = decide(&mut rpc, &req, "allow_once", "1");
    assert_eq!(the_tool_end(&frames)["result"], "x");
    shutdown(rpc);

    let mut rpc = host(&srv, &d, "read-only", &flags);
    let req = until_permission(&mut rpc, "1", &echo);
    let names = offered(&srv);
    assert!(names.contains(&"mcp__fx__echo".to_owned()), "{names:?}");
    assert!(names.contains(&"mcp__fx__get_env".to_owned()), "{names:?}");
    assert!(!names.contains(&"mcp__fx__add".to_owned()), "{names:?}");
    assert!(!names.contains(&"bash".to_owned()), "{names:?}");
    let (frames, _) = decide(&mut rpc, &req, "allow_once", "1");
    assert_eq!(the_tool_end(&frames)["result"], "x");
    let frames = run_ok(
        &mut rpc,
        "2",
        &call("mcp__fx__add", &json!({"a": 1, "b": 2})),
    );
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true);
    assert!(
        end["result"].as_str().unwrap().contains("read-only"),
        "{end}"
    );
    shutdown(rpc);
}

/// A crash during a call is that call's error; the next call restarts the
/// server; after three restarts within a minute it is `failed`.
#[test]
fn a_crash_fails_the_call_and_the_next_call_restarts() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let mut rpc = fixture_host(&srv, &d);
    until_status(&mut rpc, "fx", "ready");
    let crash = call("mcp__fx__crash", &json!({}));

    let frames = run_ok(&mut rpc, "1", &crash);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true, "{end}");
    assert!(end["result"].as_str().unwrap().contains("stopped"), "{end}");
    assert!(text_of(&frames).contains("tool error:"), "the turn went on");
    assert_eq!(server_state(&mut rpc, "fx")["status"], "failed");

    let frames = run_ok(
        &mut rpc,
        "2",
        &call("mcp__fx__echo", &json!({"text": "back"})),
    );
    assert_eq!(the_tool_end(&frames)["result"], "back");
    assert_eq!(server_state(&mut rpc, "fx")["status"], "ready");
    let starts = d
        .log_lines("fx")
        .iter()
        .filter(|l| l.starts_with("start"))
        .count();
    assert_eq!(starts, 2, "{:?}", d.log_lines("fx"));

    // Restart 1 was the echo above; crash it three more times (restarts 2
    // and 3 in between), then the next call finds it given up.
    for i in 3..=5 {
        run_ok(&mut rpc, &i.to_string(), &crash);
    }
    let frames = run_ok(
        &mut rpc,
        "6",
        &call("mcp__fx__echo", &json!({"text": "again"})),
    );
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true, "{end}");
    assert!(
        end["result"].as_str().unwrap().contains("restarted"),
        "{end}"
    );
    let state = server_state(&mut rpc, "fx");
    assert_eq!(state["status"], "failed");
    assert!(
        state["error"]
            .as_str()
            .unwrap()
            .contains("restarted 3 times"),
        "{state}"
    );
    // Its tools are no longer offered.
    run_ok(&mut rpc, "7", "hello");
    assert!(!offered(&srv).iter().any(|n| n.starts_with("mcp__fx__")));
    shutdown(rpc);
}

/// A missing command and a server that exits at start fail with an error
/// that says why; the good server beside them works.
#[test]
fn a_broken_server_affects_nothing_else() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let cfg = d.mcp_json(json!({
        "good": fixture_entry(&d.log("good"), &[]),
        "missing": {"command": "/nonexistent/mcp-server-binary"},
        "dies": fixture_entry(&d.log("dies"), &["--crash-at-start"]),
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
        &call("mcp__good__echo", &json!({"text": "fine"})),
    );
    assert_eq!(the_tool_end(&frames)["result"], "fine");

    let missing = server_state(&mut rpc, "missing");
    assert_eq!(missing["status"], "failed");
    let e = missing["error"].as_str().unwrap();
    assert!(
        e.contains("/nonexistent/mcp-server-binary") && e.contains("No such file"),
        "{e}"
    );
    let dies = server_state(&mut rpc, "dies");
    assert_eq!(dies["status"], "failed");
    assert!(
        dies["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{dies}"
    );
    let names = offered(&srv);
    assert!(names.iter().any(|n| n == "mcp__good__echo"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("mcp__dies")),
        "{names:?}"
    );
    shutdown(rpc);
}

/// `abort` during a long call ends the turn and the server is told
/// (`notifications/cancelled`: the fixture logs the cancellation); progress
/// notifications arrive as tool_execution_update.
#[test]
fn abort_cancels_a_running_call() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let mut rpc = fixture_host(&srv, &d);
    rpc.send(json!({"type": "prompt", "id": "1",
        "message": call("mcp__fx__slow", &json!({"seconds": 30}))}));
    let (_, update) = rpc.until("progress", |f| f["type"] == "tool_execution_update");
    assert!(
        update["output"].as_str().unwrap().contains("step"),
        "{update}"
    );
    rpc.send(json!({"type": "abort", "id": "a"}));
    let (frames, end) = rpc.until("agent_end", |f| f["type"] == "agent_end");
    assert_eq!(end["stop_reason"], "aborted", "{end}");
    let tool_end = the_tool_end(&frames);
    assert_eq!(tool_end["is_error"], true);
    eventually("the server seeing the cancellation", || {
        d.log_lines("fx").iter().any(|l| l == "cancelled slow")
    });
    assert!(!d.log_lines("fx").iter().any(|l| l == "done slow"));
    shutdown(rpc);
}

/// `tool_timeout_secs` (config.toml, Codex's shape) cancels a call that
/// runs over it.
#[test]
fn a_call_over_its_timeout_is_cancelled() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let (python, script) = python_fixture();
    let config = d.files.join("config.toml");
    let toml = format!(
        "[mcp_servers.fx]\ncommand = {:?}\nargs = [{:?}]\nenv = {{ MCP_FIXTURE_LOG = {:?} }}\ntool_timeout_secs = 1\n",
        python.to_str().unwrap(),
        script.to_str().unwrap(),
        d.log("fx").to_str().unwrap()
    );
    fs::write(&config, toml).unwrap();
    let mut rpc = host(
        &srv,
        &d,
        "allow-all",
        &["--config", config.to_str().unwrap()],
    );
    let frames = run_ok(
        &mut rpc,
        "1",
        &call("mcp__fx__slow", &json!({"seconds": 20})),
    );
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true);
    assert!(
        end["result"]
            .as_str()
            .unwrap()
            .contains("timed out after 1 s"),
        "{end}"
    );
    eventually("the server seeing the cancellation", || {
        d.log_lines("fx").iter().any(|l| l == "cancelled slow")
    });
    shutdown(rpc);
}

/// A stdio server gets the host's environment less provider keys and
/// `*_API_KEY` variables, plus its configured `env`.
#[test]
fn the_environment_is_filtered() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let mut entry = fixture_entry(&d.log("fx"), &[]);
    entry["env"]["FROM_CONFIG"] = json!("configured");
    let cfg = d.mcp_json(json!({"fx": entry}));
    let mut rpc = host_with_env(
        &srv,
        &d,
        "allow-all",
        &["--mcp-config", cfg.to_str().unwrap()],
        &[("SOME_SERVICE_API_KEY", "secret-1"), ("PLAIN_VAR", "plain")],
    );
    let mut env = |id: &str, name: &str| {
        let frames = run_ok(
            &mut rpc,
            id,
            &call("mcp__fx__get_env", &json!({"name": name})),
        );
        the_tool_end(&frames)["result"].as_str().unwrap().to_owned()
    };
    assert_eq!(env("1", "SOME_SERVICE_API_KEY"), "<unset>");
    assert_eq!(env("2", API.key_var()), "<unset>");
    assert_eq!(env("3", "FROM_CONFIG"), "configured");
    assert_eq!(env("4", "PLAIN_VAR"), "plain");
    shutdown(rpc);
}

/// Streamable HTTP: the fixture served over HTTP, headers sent and never
/// logged; `notifications/tools/list_changed` refreshes the tool list.
#[test]
fn http_transport_and_list_changed() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let (python, script) = python_fixture();
    let port = free_port();
    let _server = Child(
        Command::new(python)
            .arg(script)
            .args(["--http", &port.to_string()])
            .env("MCP_FIXTURE_LOG", d.log("http"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start the fixture over HTTP"),
    );
    wait_listening(port);
    let cfg = d.mcp_json(json!({"web": {
        "type": "http",
        "url": format!("http://127.0.0.1:{port}/mcp"),
        "headers": {"X-Secret-Token": "hunter2-secret"},
    }}));
    let mut rpc = host_with_env(
        &srv,
        &d,
        "allow-all",
        &["--mcp-config", cfg.to_str().unwrap()],
        &[("RUST_LOG", "debug")],
    );
    let frames = run_ok(
        &mut rpc,
        "1",
        &call("mcp__web__echo", &json!({"text": "over http"})),
    );
    assert_eq!(the_tool_end(&frames)["result"], "over http");

    let frames = run_ok(&mut rpc, "2", &call("mcp__web__grow", &json!({})));
    assert_eq!(the_tool_end(&frames)["result"], "grown");
    // The refresh is reported, and the next round offers the new tool.
    let changed = |f: &Value| {
        f["type"] == "mcp_server_status"
            && f["tools"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("mcp__web__extra")))
    };
    if !frames.iter().any(changed) {
        rpc.until("the refreshed tool list", changed);
    }
    let frames = run_ok(&mut rpc, "3", &call("mcp__web__extra", &json!({})));
    assert_eq!(the_tool_end(&frames)["result"], "extra here");
    assert!(offered(&srv).contains(&"mcp__web__extra".to_owned()));
    let bye = rpc.call(json!({"type": "shutdown"}), "bye");
    assert_ok(&bye, &rpc);
    assert!(
        rpc.wait(Duration::from_secs(10)).is_some(),
        "host did not exit"
    );
    let log = rpc.stderr();
    assert!(
        log.contains("MCP server web is ready"),
        "debug log on: {log}"
    );
    assert!(!log.contains("hunter2-secret"), "a header value was logged");
}

/// A stdio server dies with the host: on shutdown, and when the host is
/// killed outright (SIGKILL: `PR_SET_PDEATHSIG`).
#[test]
fn stdio_servers_die_with_the_host() {
    let srv = FakeServer::start();
    for how in ["shutdown", "KILL"] {
        let d = Dirs::new();
        let mut rpc = fixture_host(&srv, &d);
        until_status(&mut rpc, "fx", "ready");
        let pid: u32 = d
            .log_lines("fx")
            .iter()
            .find_map(|l| l.strip_prefix("start ").and_then(|p| p.parse().ok()))
            .expect("the server logged its pid");
        assert!(common::procfs::alive(pid), "server {pid} runs");
        if how == "shutdown" {
            shutdown(rpc);
        } else {
            rpc.signal(how);
            assert!(rpc.wait(Duration::from_secs(10)).is_some());
        }
        eventually(&format!("server {pid} gone after {how}"), || {
            !common::procfs::alive(pid)
        });
    }
}

/// A server that never answers the handshake: the first round waits for it
/// up to its startup timeout, then goes on without it; it is `failed` with
/// the timeout as its error, and the good server beside it is used.
#[test]
fn the_first_round_waits_up_to_the_startup_timeout() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let (python, script) = python_fixture();
    let config = d.files.join("config.toml");
    let toml = format!(
        "[mcp_servers.mute]\ncommand = \"sleep\"\nargs = [\"30\"]\nstartup_timeout_secs = 1\n\
         [mcp_servers.fx]\ncommand = {:?}\nargs = [{:?}]\n",
        python.to_str().unwrap(),
        script.to_str().unwrap(),
    );
    fs::write(&config, toml).unwrap();
    let mut rpc = host(
        &srv,
        &d,
        "allow-all",
        &["--config", config.to_str().unwrap()],
    );
    let starting = server_state(&mut rpc, "mute");
    assert_eq!(
        starting["status"], "starting",
        "ready does not wait: {starting}"
    );
    let frames = run_ok(
        &mut rpc,
        "1",
        &call("mcp__fx__echo", &json!({"text": "on"})),
    );
    assert_eq!(the_tool_end(&frames)["result"], "on");
    let mute = server_state(&mut rpc, "mute");
    assert_eq!(mute["status"], "failed", "{mute}");
    assert!(
        mute["error"]
            .as_str()
            .unwrap()
            .contains("did not start within 1 s"),
        "{mute}"
    );
    assert!(
        of_type(&frames, "mcp_server_status")
            .iter()
            .any(|f| f["name"] == "mute" && f["status"] == "failed"),
        "the failure came before the first round went on: {frames:#?}"
    );
    shutdown(rpc);
}

/// An image in a tool's result reaches the model as an image: an image
/// block inside the `tool_result` for the Anthropic API, an `image_url`
/// in a user message after the `tool` message for the OpenAI API.
#[test]
fn an_image_result_reaches_the_model_as_an_image() {
    for api in [Api::Anthropic, Api::OpenAi] {
        let srv = FakeServer::start();
        let d = Dirs::new();
        let cfg = d.mcp_json(json!({"fx": fixture_entry(&d.log("fx"), &[])}));
        let mut rpc = host_on(
            api,
            &srv,
            &d,
            "allow-all",
            &["--mcp-config", cfg.to_str().unwrap()],
            &[],
        );
        let frames = run_ok(&mut rpc, "1", &call("mcp__fx__picture", &json!({})));
        let end = the_tool_end(&frames);
        assert_eq!(end["is_error"], false, "{end}");
        assert_eq!(end["result"], "one red pixel\n[image: image/png]", "{end}");

        let requests = srv.api_requests();
        let second = &requests.last().expect("a request after the tool")["body"]["messages"];
        let messages = second.as_array().expect("messages");
        match api {
            Api::Anthropic => {
                let result = &messages.last().unwrap()["content"][0];
                assert_eq!(result["type"], "tool_result", "{result}");
                assert_eq!(
                    result["content"][0]["text"],
                    "one red pixel\n[image: image/png]"
                );
                let image = &result["content"][1];
                assert_eq!(image["type"], "image", "{result}");
                assert_eq!(image["source"]["media_type"], "image/png");
                assert!(image["source"]["data"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("iVBORw0KGgo")));
            }
            Api::OpenAi => {
                let n = messages.len();
                assert_eq!(messages[n - 2]["role"], "tool", "{second}");
                assert_eq!(
                    messages[n - 2]["content"],
                    "one red pixel\n[image: image/png]"
                );
                let images = &messages[n - 1];
                assert_eq!(images["role"], "user", "{second}");
                let url = images["content"][1]["image_url"]["url"]
                    .as_str()
                    .unwrap_or("");
                assert!(
                    url.starts_with("data:image/png;base64,iVBORw0KGgo"),
                    "{images}"
                );
            }
        }
        // The stored session keeps the image, so a resumed session sends it too.
        let stored = Value::Array(common::messages(&mut rpc, "m"));
        assert!(stored.to_string().contains("iVBORw0KGgo"), "{stored}");
        shutdown(rpc);
    }
}

/// A server that dies between calls is noticed at once: `failed` is
/// announced and shown by `get_state`; the next call restarts it
/// (`starting`, then `ready`) and succeeds.
#[test]
fn a_server_that_dies_between_calls_is_failed_at_once_and_the_next_call_restarts_it() {
    let srv = FakeServer::start();
    let d = Dirs::new();
    let mut rpc = fixture_host(&srv, &d);
    until_status(&mut rpc, "fx", "ready");
    let pid: i32 = d.log_lines("fx")[0]
        .strip_prefix("start ")
        .and_then(|p| p.parse().ok())
        .expect("the fixture logs `start <pid>`");
    // SAFETY: a plain kill(2) of the fixture's own process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let failed = until_status(&mut rpc, "fx", "failed");
    let why = failed["error"].as_str().unwrap_or_default();
    assert!(why.contains("the server exited"), "{failed}");
    assert_eq!(server_state(&mut rpc, "fx")["status"], "failed");

    let frames = run_ok(
        &mut rpc,
        "1",
        &call("mcp__fx__echo", &json!({"text": "back"})),
    );
    assert_eq!(the_tool_end(&frames)["result"], "back");
    let statuses: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "mcp_server_status")
        .map(|f| &f["status"])
        .collect();
    assert_eq!(statuses, ["starting", "ready"], "{frames:?}");
    assert_eq!(server_state(&mut rpc, "fx")["status"], "ready");
    // A new process answered, not the killed one.
    let starts: Vec<String> = d
        .log_lines("fx")
        .into_iter()
        .filter(|l| l.starts_with("start "))
        .collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_ne!(starts[0], starts[1], "{starts:?}");
    shutdown(rpc);
}
