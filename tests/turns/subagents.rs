//! Subagents (`task`): children streaming inside the parent's turn, tagged
//! with the parent's call; their sessions stored under the parent and
//! continued by id; abort reaching every child; the caps and idle close
//! of `[subagents]`; agent definitions' tools and budgets.

use super::*;
use common::bounded::run_bounded;

/// A `task` call's input, as JSON for a `[[tool=task input=…]]` directive.
fn task(description: &str, prompt: &str) -> Value {
    json!({"description": description, "prompt": prompt})
}

/// A parent prompt whose first round calls `task` once per input (one
/// input as an object, which the HTTP fake takes too).
fn delegate(inputs: &[Value]) -> String {
    let tools = vec!["task"; inputs.len()].join(",");
    let input = match inputs {
        [one] => one.clone(),
        all => Value::from(all.to_vec()),
    };
    format!("go [[tool={tools} input={input}]]")
}

fn host_with(args: &[&str], dir: Option<&std::path::Path>) -> (Rpc, Value) {
    let mut s = Spawn::new().ext("echo").model(ECHO);
    for a in args {
        s = s.arg(a);
    }
    if let Some(d) = dir {
        s = s.current_dir(d);
    }
    let mut rpc = s.start();
    let ready = rpc.ready();
    (rpc, ready)
}

/// The session id a task result names.
fn child_id(result: &str) -> String {
    let at = result
        .find("session_id ")
        .expect("the result names the session")
        + 11;
    result[at..]
        .split_whitespace()
        .next()
        .expect("id")
        .to_owned()
}

/// A host on the HTTP fake `srv` (Anthropic's API) that may run any tool;
/// not yet started.
fn http_host(srv: &common::fake_http::FakeServer) -> Spawn {
    let api = common::fake_http::Api::Anthropic;
    Spawn::new()
        .env("XDG_CONFIG_HOME", "/nonexistent/agent-rpc-subagent-tests")
        .env(api.base_var(), &api.base_url(srv.port))
        .env(api.key_var(), "sk-ant-test-subagents")
        .model(api.model())
        .arg("--permission-mode")
        .arg("allow-all")
}

fn ends_of(frames: &[Value]) -> Vec<&Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "tool_execution_end" && f.get("parent_tool_call_id").is_none())
        .collect()
}

#[test]
fn two_tasks_in_a_round_stream_nested_come_back_and_persist_under_the_parent() {
    let (mut rpc, ready) = host_with(&["--permission-mode", "allow-all"], None);
    let parent = ready["session_id"].as_str().expect("id").to_owned();
    let message = delegate(&[
        task("count", "one two [[n=3 delay_ms=20]]"),
        task("look", r#"[[id_prefix=k_ tool=ls input={"path": "."}]]"#),
    ]);
    let (frames, done) = prompt(&mut rpc, "1", &message);
    assert_eq!(done["ok"], true, "{done}");
    let pid = done["prompt_id"].as_str().expect("prompt id");

    // Both calls start before either ends: they run side by side.
    let position = |pred: &dyn Fn(&Value) -> bool| frames.iter().position(pred).expect("frame");
    let start2 =
        position(&|f| f["type"] == "tool_execution_start" && f["tool_call_id"] == "call_2");
    let end1 = position(&|f| f["type"] == "tool_execution_end" && f["tool_call_id"] == "call_1");
    assert!(
        start2 < end1,
        "the second task started only after the first ended"
    );

    // The children's frames carry the parent's prompt id and call.
    let nested: Vec<&Value> = frames
        .iter()
        .filter(|f| f.get("parent_tool_call_id").is_some())
        .collect();
    assert!(nested.iter().all(|f| f["prompt_id"] == pid), "{nested:?}");
    let first_text: String = nested
        .iter()
        .filter(|f| f["parent_tool_call_id"] == "call_1" && f["type"] == "message_update")
        .filter_map(|f| f["event"]["delta"].as_str())
        .collect();
    assert_eq!(first_text, "tok tok tok ");
    let child_call = nested
        .iter()
        .find(|f| f["type"] == "tool_execution_start")
        .expect("the second child's tool call");
    assert_eq!(child_call["parent_tool_call_id"], "call_2");
    assert_eq!(child_call["tool_call_id"], "k_call_1");
    assert_eq!(child_call["name"], "ls");
    // No child's turn bookkeeping reaches the parent's client.
    assert_eq!(
        frames.iter().filter(|f| f["type"] == "agent_start").count(),
        1
    );

    // The results, in the model's order, name each child's session.
    let ends = ends_of(&frames);
    let results: Vec<&str> = ends
        .iter()
        .map(|e| e["result"].as_str().expect("result"))
        .collect();
    assert!(results[0].starts_with("tok tok tok"), "{}", results[0]);
    assert!(results[1].starts_with("tool result:"), "{}", results[1]);
    let first = child_id(results[0]);
    let second = child_id(results[1]);

    // Stored as sessions of their own, listed with their parent.
    let list = call_ok(&mut rpc, json!({"type": "list_sessions"}), "l");
    let sessions = list["sessions"].as_array().expect("sessions");
    for id in [&first, &second] {
        let s = sessions
            .iter()
            .find(|s| s["session_id"] == id.as_str())
            .expect("child listed");
        assert_eq!(s["parent_session_id"], parent.as_str(), "{s}");
    }
    let header = std::fs::read_to_string(rpc.sessions_dir().join(format!("{first}.jsonl")))
        .expect("child file");
    let header: Value = serde_json::from_str(header.lines().next().expect("line")).expect("json");
    assert_eq!(header["parent_tool_call_id"], "call_1", "{header}");
    assert_eq!(header["agent"], "general", "{header}");

    // Continued by its id, the first child still has its history.
    let again = json!({"description": "again", "prompt": "[[show=messages]]", "session_id": first});
    let (frames, done) = prompt(&mut rpc, "2", &delegate(&[again]));
    assert_eq!(done["ok"], true, "{done}");
    let result = ends_of(&frames)[0]["result"]
        .as_str()
        .expect("result")
        .to_owned();
    assert!(result.contains("one two"), "{result}");
    assert_eq!(child_id(&result), first);

    // `rpc sessions` lists each child under its parent.
    let mut list = std::process::Command::new(bin());
    list.args(["sessions", "--all", "--data-dir"])
        .arg(&rpc.data);
    let (status, table, err) = run_bounded(&mut list, b"", Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{err}");
    let lines: Vec<&str> = table.lines().collect();
    let row = |id: &str| lines.iter().position(|l| l.contains(id)).expect("listed");
    assert!(lines[row(&first)].starts_with("└ "), "{table}");
    assert!(
        row(&parent) < row(&first) && row(&parent) < row(&second),
        "{table}"
    );
}

#[test]
fn abort_stops_every_running_child() {
    let (mut rpc, _) = host_with(&["--permission-mode", "allow-all"], None);
    let slow = "[[n=200 delay_ms=20]]";
    let message = delegate(&[task("a", slow), task("b", slow)]);
    rpc.send(json!({"type": "prompt", "id": "1", "message": message}));
    rpc.until("a child's delta", |f| {
        f["type"] == "message_update" && f.get("parent_tool_call_id").is_some()
    });
    rpc.send(json!({"type": "abort", "id": "a"}));
    let sent = Instant::now();
    let (frames, end) = rpc.until("agent_end", |f| f["type"] == "agent_end");
    let took = sent.elapsed();
    assert_eq!(end["stop_reason"], "aborted");
    assert!(took < Duration::from_secs(1), "abort took {took:?}");
    let ends = ends_of(&frames);
    assert_eq!(ends.len(), 2, "both tasks answered: {frames:?}");
    for e in ends {
        assert_eq!(e["is_error"], true, "{e}");
    }
    let resp = rpc.answer(&json!("1"));
    assert_eq!(resp["cancelled"], true, "{resp}");
    // Nothing of the children follows the turn's end.
    let late = rpc.drain(Duration::from_millis(300));
    assert!(
        late.iter().all(|f| f.get("parent_tool_call_id").is_none()),
        "{late:?}"
    );
}

/// A config file with `[subagents]` and any other tables.
fn config(dir: &std::path::Path, body: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, body).expect("config");
    path.to_string_lossy().into_owned()
}

#[test]
fn max_sessions_refuses_a_child_only_when_every_one_is_running() {
    let dir = tempfile::tempdir().expect("dir");
    let config = config(
        dir.path(),
        "[subagents]\nmax_sessions = 1\nmax_parallel = 2\n",
    );
    let (mut rpc, _) = host_with(
        &["--permission-mode", "allow-all", "--config", &config],
        None,
    );
    let slow = "[[n=5 delay_ms=20]]";
    let (frames, _) = prompt(
        &mut rpc,
        "1",
        &delegate(&[task("a", slow), task("b", slow)]),
    );
    let ends = ends_of(&frames);
    let refused: Vec<_> = ends.iter().filter(|e| e["is_error"] == true).collect();
    assert_eq!(refused.len(), 1, "{ends:?}");
    let why = refused[0]["result"].as_str().expect("result");
    assert!(why.contains("max_sessions"), "{why}");
    let first = child_id(
        ends.iter()
            .find(|e| e["is_error"] == false)
            .expect("one ran")["result"]
            .as_str()
            .expect("r"),
    );

    // The open child is idle now: a new task closes it instead of failing,
    // and continuing the first reopens it from disk.
    let (frames, _) = prompt(&mut rpc, "2", &delegate(&[task("c", "hello")]));
    assert_eq!(ends_of(&frames)[0]["is_error"], false, "{frames:?}");
    let again = json!({"description": "again", "prompt": "[[show=messages]]", "session_id": first});
    let (frames, _) = prompt(&mut rpc, "3", &delegate(&[again]));
    let result = ends_of(&frames)[0]["result"]
        .as_str()
        .expect("result")
        .to_owned();
    assert!(result.contains("tok tok"), "{result}");
}

#[test]
fn idle_children_are_closed() {
    let dir = tempfile::tempdir().expect("dir");
    let config = config(dir.path(), "[subagents]\nidle_timeout = 2\n");
    let (mut rpc, _) = host_with(
        &["--permission-mode", "allow-all", "--config", &config],
        None,
    );
    let (frames, _) = prompt(&mut rpc, "1", &delegate(&[task("a", "[[n=3]]")]));
    let first = child_id(ends_of(&frames)[0]["result"].as_str().expect("result"));

    // Closed when idle: its file is no longer held, so another process can
    // delete it (an open session's file is locked).
    let rm = || {
        let mut rm = std::process::Command::new(bin());
        rm.args(["sessions", "rm", &first, "--data-dir"])
            .arg(&rpc.data);
        run_bounded(&mut rm, b"", Duration::from_secs(10))
    };
    let (held, _, why) = rm();
    assert!(
        held.is_some_and(|s| !s.success()) && why.contains("in use"),
        "deleted while its host had it open: {why}"
    );
    std::thread::sleep(Duration::from_millis(4000));
    let (status, _, err) = rm();
    assert!(status.is_some_and(|s| s.success()), "{err}");
}

#[test]
fn an_agent_definition_sets_the_childs_tools_prompt_and_budget() {
    let project = tempfile::tempdir().expect("project");
    let agents = project.path().join(".claude/agents");
    std::fs::create_dir_all(&agents).expect("agents dir");
    std::fs::write(
        agents.join("reader.md"),
        "---\nname: reader\ndescription: Reads files.\ntools: Read, Grep\nmax_turns: 1\n---\nYOU ONLY READ.\n",
    )
    .expect("definition");
    let (mut rpc, _) = host_with(&["--permission-mode", "allow-all"], Some(project.path()));
    let input = json!({"description": "x", "prompt": "[[show=params]]", "agent": "reader"});
    let (frames, _) = prompt(&mut rpc, "1", &delegate(&[input]));
    let result = ends_of(&frames)[0]["result"]
        .as_str()
        .expect("result")
        .to_owned();
    let params: Value = serde_json::from_str(result.split("\n\n---\n").next().expect("answer"))
        .expect("the child's request as JSON");
    let tools: Vec<&str> = params["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(tools, ["read", "grep"], "{params}");
    assert!(
        params.to_string().contains("YOU ONLY READ."),
        "the body is in the system prompt"
    );

    // Its budget stops the child before a second round.
    let input = json!({"description": "x", "prompt": r#"[[tool=read input={"path": "a"}]]"#, "agent": "reader"});
    let (frames, _) = prompt(&mut rpc, "3", &delegate(&[input]));
    let result = ends_of(&frames)[0]["result"]
        .as_str()
        .expect("result")
        .to_owned();
    assert!(result.contains("stop_reason budget_exceeded"), "{result}");
}

#[test]
fn a_bad_task_call_is_an_error_result_the_model_can_fix() {
    let (mut rpc, _) = host_with(&["--permission-mode", "allow-all"], None);
    let bad = [
        (json!({"description": "x"}), "`prompt` is required"),
        (
            json!({"description": "x", "prompt": "p", "agent": "nobody"}),
            "there is no agent \"nobody\"",
        ),
        (
            json!({"description": "x", "prompt": "p", "session_id": "../etc"}),
            "invalid session id",
        ),
        (
            json!({"description": "x", "prompt": "p", "session_id": "missing-session"}),
            "missing-session",
        ),
    ];
    for (i, (input, why)) in bad.into_iter().enumerate() {
        let (frames, done) = prompt(&mut rpc, &format!("b{i}"), &delegate(&[input]));
        assert_eq!(done["ok"], true, "{done}");
        let end = ends_of(&frames)[0];
        assert_eq!(end["is_error"], true, "{end}");
        assert!(
            end["result"].as_str().expect("result").contains(why),
            "{end}"
        );
    }
}

#[test]
fn what_a_child_spends_counts_towards_the_parents_budget() {
    let srv = common::fake_http::FakeServer::start();
    let mut rpc = http_host(&srv).arg("--max-budget-usd").arg("1").start();
    rpc.ready();
    // The child reports two million input tokens: dollars, where the
    // parent's own rounds cost a fraction of a cent.
    let input = task("spend", "expensive [[usage_in=2000000]]");
    let (frames, done) = prompt(&mut rpc, "1", &delegate(&[input]));
    let result = ends_of(&frames)[0]["result"]
        .as_str()
        .expect("result")
        .to_owned();
    let child_cost: f64 = result
        .rsplit(", $")
        .next()
        .and_then(|c| c.trim().parse().ok())
        .expect("the result names the child's cost");
    assert!(child_cost > 1.0, "{result}");
    // The check before the parent's next round counts the child's cost.
    assert_eq!(done["code"], "budget_exceeded", "{done}");
    let stats = call_ok(&mut rpc, json!({"type": "get_session_stats"}), "s");
    let cost = stats["cost_usd"].as_f64().expect("cost");
    assert!(
        cost >= child_cost,
        "the parent's cost includes its child's: {stats}"
    );
}

#[test]
fn a_childs_permission_question_is_answered_by_the_parents_client() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut rpc, _) = host_with(&["--permission-mode", "ask"], Some(dir.path()));
    let child = r#"[[id_prefix=k_ tool=write input={"path": "a.txt", "content": "hi\n"}]]"#;
    rpc.send(json!({"type": "prompt", "id": "1", "message": delegate(&[task("write", child)])}));
    let (_, asked) = rpc.until("permission_request", |f| f["type"] == "permission_request");
    assert_eq!(asked["parent_tool_call_id"], "call_1", "{asked}");
    assert_eq!(asked["tool_call_id"], "k_call_1", "{asked}");
    assert_eq!(asked["tool"], "write", "{asked}");
    let request = asked["request_id"].clone();
    let answer = call_ok(
        &mut rpc,
        json!({"type": "permission_response", "request_id": request, "decision": "allow_once"}),
        "p",
    );
    assert_eq!(answer["ok"], true, "{answer}");
    let (frames, _) = rpc.until("agent_end", |f| f["type"] == "agent_end");
    let end = ends_of(&frames)[0].clone();
    assert!(
        end["result"]
            .as_str()
            .expect("result")
            .starts_with("tool result: Created a.txt"),
        "{end}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).expect("written"),
        "hi\n"
    );
}

/// `rpc --acp` itself as an external agent (`[agents.self]`).
fn self_agent_config(dir: &std::path::Path) -> String {
    let data = dir.join("child-data");
    let body = format!(
        "[agents.self]\ncommand = {:?}\nargs = [\"--acp\", \"--extension\", {:?}, \"--model\", {ECHO:?}, \"--data-dir\", {:?}]\ndescription = \"agent-rpc over ACP\"\ntimeout = 30\n",
        bin().display().to_string(),
        fixture("echo").display().to_string(),
        data.display().to_string(),
    );
    config(dir, &body)
}

#[test]
fn rpc_acp_itself_runs_a_task_as_an_external_agent() {
    let dir = tempfile::tempdir().expect("dir");
    let config = self_agent_config(dir.path());
    let (mut rpc, _) = host_with(
        &["--permission-mode", "ask", "--config", &config],
        Some(dir.path()),
    );
    // The model is told of the agent.
    let (frames, _) = prompt(&mut rpc, "0", "[[show=params]]");
    assert!(
        text_of(&frames).contains("agent-rpc over ACP"),
        "the task tool lists it"
    );

    let input =
        json!({"description": "ext", "prompt": "hello from the parent [[n=3]]", "agent": "self"});
    let (frames, done) = prompt(&mut rpc, "1", &delegate(&[input]));
    assert_eq!(done["ok"], true, "{done}");
    let nested: String = frames
        .iter()
        .filter(|f| f["parent_tool_call_id"] == "call_1" && f["type"] == "message_update")
        .filter_map(|f| f["event"]["delta"].as_str())
        .collect();
    assert_eq!(nested, "tok tok tok ");
    let result = ends_of(&frames)[0]["result"]
        .as_str()
        .expect("result")
        .to_owned();
    assert!(result.starts_with("tok tok tok"), "{result}");
    let child = child_id(&result);

    // The child asks; the parent's client answers through the parent.
    let write = json!({"description": "w", "agent": "self", "session_id": child,
        "prompt": r#"[[id_prefix=x_ tool=write input={"path": "ext.txt", "content": "from the child\n"}]]"#});
    rpc.send(json!({"type": "prompt", "id": "2", "message": delegate(&[write])}));
    let (_, asked) = rpc.until("permission_request", |f| f["type"] == "permission_request");
    assert_eq!(asked["parent_tool_call_id"], "call_1", "{asked}");
    let request = asked["request_id"].clone();
    call_ok(
        &mut rpc,
        json!({"type": "permission_response", "request_id": request, "decision": "allow_once"}),
        "p",
    );
    let (frames, _) = rpc.until("agent_end", |f| f["type"] == "agent_end");
    let end = ends_of(&frames)[0].clone();
    assert_eq!(end["is_error"], false, "{end}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ext.txt")).expect("the child wrote"),
        "from the child\n"
    );
}

#[test]
fn an_external_agent_that_cannot_start_is_an_error_result_and_the_turn_goes_on() {
    let dir = tempfile::tempdir().expect("dir");
    let config = config(
        dir.path(),
        "[agents.ghost]\ncommand = \"/nonexistent/ghost-acp\"\ndescription = \"never there\"\n",
    );
    let (mut rpc, _) = host_with(
        &["--permission-mode", "allow-all", "--config", &config],
        None,
    );
    let input = json!({"description": "x", "prompt": "hi", "agent": "ghost"});
    let (frames, done) = prompt(&mut rpc, "1", &delegate(&[input]));
    assert_eq!(done["ok"], true, "{done}");
    let end = ends_of(&frames)[0];
    assert_eq!(end["is_error"], true, "{end}");
    let why = end["result"].as_str().expect("result");
    assert!(
        why.contains("/nonexistent/ghost-acp") && why.contains("[agents.ghost]"),
        "{why}"
    );
}

/// Whether two children's streams overlapped, with `max_parallel` as
/// given, on the HTTP fake (which serves requests side by side, unlike
/// the extension fixture).
fn children_overlap(max_parallel: usize) -> bool {
    let srv = common::fake_http::FakeServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let config = config(
        dir.path(),
        &format!("[subagents]\nmax_parallel = {max_parallel}\n"),
    );
    let mut rpc = http_host(&srv).arg("--config").arg(&config).start();
    rpc.ready();
    let slow = "[[n=8 delay_ms=40]]";
    let (frames, done) = prompt(
        &mut rpc,
        "1",
        &delegate(&[task("a", slow), task("b", slow)]),
    );
    assert_eq!(done["ok"], true, "{done}");
    let of = |call: &str| -> Vec<usize> {
        frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f["parent_tool_call_id"] == call && f["type"] == "message_update")
            .map(|(i, _)| i)
            .collect()
    };
    let (a, b) = (of("toolu_1"), of("toolu_2"));
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both children streamed: {frames:?}"
    );
    let (a_span, b_span) = ((a[0], a[a.len() - 1]), (b[0], b[b.len() - 1]));
    a_span.0 < b_span.1 && b_span.0 < a_span.1
}

#[test]
fn max_parallel_bounds_how_many_children_stream_at_once() {
    assert!(children_overlap(2), "two children did not run side by side");
    assert!(
        !children_overlap(1),
        "a child ran beside another with max_parallel = 1"
    );
}
