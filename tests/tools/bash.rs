//! The bash tool: output, stderr and exit status, streamed updates, the
//! timeout, no API keys in its environment, abort killing it (and its
//! background children), and the shell dying with a host killed outright.

use super::*;

// ---- 5. bash --------------------------------------------------------------

#[test]
fn bash_reports_output_stderr_and_exit_status() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "allow-all");
    let frames = run_ok(&mut rpc, "1", &bash("echo out; echo err >&2; exit 3"));
    no_permission_request(&frames);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true, "{end}");
    let result = end["result"].as_str().unwrap();
    assert!(result.contains("out"), "{result:?}");
    assert!(result.contains("err"), "{result:?}");
    assert!(result.contains("exit code 3"), "{result:?}");
}

/// Each output line goes out as a tool_execution_update while the command
/// still runs.
#[test]
fn bash_streams_lines_as_updates() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "allow-all");
    rpc.send(json!({"type": "prompt", "id": "1",
        "message": bash("for i in 1 2 3; do echo line$i; sleep 0.1; done")}));
    let mut updates: Vec<(Instant, Value)> = Vec::new();
    let ended;
    loop {
        let f = rpc.recv();
        let now = Instant::now();
        match f["type"].as_str() {
            Some("tool_execution_update") => updates.push((now, f)),
            Some("tool_execution_end") => {
                ended = now;
                assert_eq!(f["is_error"], false, "{f}");
                assert!(f["result"].as_str().unwrap().contains("line3"), "{f}");
                break;
            }
            _ if is_answer_to(&f, "1") => panic!("answered before the tool ended: {f}"),
            _ => {}
        }
    }
    let lines: Vec<&str> = updates
        .iter()
        .map(|(_, f)| f["output"].as_str().expect("output"))
        .collect();
    assert_eq!(lines, ["line1", "line2", "line3"], "{updates:?}");
    for (_, u) in &updates {
        assert_eq!(u["tool_call_id"], "call_1", "{u}");
        assert!(u["prompt_id"].is_string(), "{u}");
    }
    // line1 is printed ~200 ms before the command ends: it must not wait
    // for the end (asserted loosely).
    let lead = ended.duration_since(updates[0].0);
    assert!(
        lead >= Duration::from_millis(50),
        "line1 arrived only {lead:?} before the end: not streamed"
    );
    let (_, resp) = rpc.until("prompt answer", |f| is_answer_to(f, "1"));
    assert_ok(&resp, &rpc);
}

#[test]
fn bash_timeout_kills_the_command() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "allow-all");
    let msg = call("bash", &json!({"command": "sleep 5", "timeout_ms": 300}));
    rpc.send(json!({"type": "prompt", "id": "1", "message": msg}));
    rpc.until("tool_execution_start", |f| {
        f["type"] == "tool_execution_start"
    });
    let t0 = Instant::now();
    let (_, end) = rpc.until("tool_execution_end", |f| f["type"] == "tool_execution_end");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "timeout of 300 ms took {took:?}"
    );
    assert_eq!(end["is_error"], true, "{end}");
    assert!(
        end["result"].as_str().unwrap().contains("timed out"),
        "{end}"
    );
    let (_, resp) = rpc.until("prompt answer", |f| is_answer_to(f, "1"));
    assert_ok(&resp, &rpc);
}

/// bash children do not inherit provider keys.
#[test]
fn bash_does_not_see_api_keys() {
    let d = Dirs::new();
    let mut rpc = echo_spawn(&d.cwd, "allow-all")
        .env("ANTHROPIC_API_KEY", "sk-secret-xyz")
        .env("FOO_API_KEY", "abc")
        .env("TOOLS_TEST_MARKER", "visible-marker")
        .start();
    rpc.ready();
    let frames = run_ok(&mut rpc, "1", &bash("env"));
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    let result = end["result"].as_str().unwrap();
    assert!(
        result.contains("TOOLS_TEST_MARKER=visible-marker"),
        "env ran and shows ordinary variables: {result}"
    );
    assert!(!result.contains("sk-secret-xyz"), "key leaked: {result}");
    assert!(!result.contains("ANTHROPIC_API_KEY"), "{result}");
    assert!(!result.contains("FOO_API_KEY"), "{result}");
}

// ---- 6. abort kills -------------------------------------------------------

/// Live descendants of the host that belong to the `sleep 30` command.
fn sleepers(host: u32) -> Vec<(u32, String)> {
    descendants(host)
        .into_iter()
        .filter_map(|p| cmdline(p).map(|c| (p, c)))
        .filter(|(_, c)| c.contains("sleep 30"))
        .collect()
}

fn abort_kills(command: &str, sleeps: usize) {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "allow-all");
    rpc.send(json!({"type": "prompt", "id": "1", "message": bash(command)}));
    rpc.until("tool_execution_start", |f| {
        f["type"] == "tool_execution_start"
    });
    // Record the command's processes while they run.
    let deadline = Instant::now() + Duration::from_secs(10);
    let running = loop {
        let s = sleepers(rpc.pid());
        let n = s.iter().filter(|(_, c)| c.starts_with("sleep ")).count();
        if n >= sleeps {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the sleep processes never showed up: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };

    let t0 = Instant::now();
    rpc.send(json!({"type": "abort", "id": "a"}));
    let (before, end) = rpc.until("agent_end", |f| f["type"] == "agent_end");
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "abort took {took:?} to reach agent_end"
    );
    assert_eq!(end["stop_reason"], "aborted", "{end}");
    let tool_end = the_tool_end(&before);
    assert_eq!(tool_end["is_error"], true, "{tool_end}");
    let (_, resp) = rpc.until("prompt answer", |f| is_answer_to(f, "1"));
    assert_eq!(resp["cancelled"], true, "{resp}");
    rpc.until("abort answer", |f| is_answer_to(f, "a"));

    // Gone within a second of the abort's answer (polled: the same pid
    // with the same command line still running counts as alive).
    let gone_by = Instant::now() + Duration::from_secs(1);
    let left = loop {
        let left: Vec<&(u32, String)> = running
            .iter()
            .filter(|(p, c)| alive(*p) && cmdline(*p).as_deref() == Some(c.as_str()))
            .collect();
        if left.is_empty() || Instant::now() > gone_by {
            break left;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        left.is_empty(),
        "still running a second after abort: {left:?}"
    );
    assert!(sleepers(rpc.pid()).is_empty(), "{:?}", sleepers(rpc.pid()));
}

#[test]
fn abort_kills_a_running_bash() {
    abort_kills("sleep 30", 1);
}

#[test]
fn abort_kills_bash_background_children_too() {
    abort_kills("sleep 30 & sleep 30", 2);
}

/// A host killed with SIGKILL cannot kill its bash itself; the shell has
/// `PR_SET_PDEATHSIG` and goes with it. (bash had no parent-death signal
/// until the one child-process builder, issue 19.)
#[test]
fn a_host_killed_with_sigkill_takes_its_bash_along() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "allow-all");
    // Two commands, so the shell stays the parent of `sleep` instead of
    // exec'ing it.
    rpc.send(json!({"type": "prompt", "id": "1", "message": bash("echo $$; sleep 30")}));
    let (_, update) = rpc.until("the shell's pid", |f| f["type"] == "tool_execution_update");
    let shell: u32 = update["output"]
        .as_str()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("a pid: {update}"));
    assert!(alive(shell), "the shell {shell} is not running");

    rpc.signal("KILL");
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(shell) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let survived = alive(shell);
    // The orphaned `sleep` has no parent-death signal of its own; its group
    // (led by the shell) is cleaned up here either way.
    let _ = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{shell}")])
        .status();
    assert!(
        !survived,
        "bash {shell} outlived the host killed with SIGKILL"
    );
}
