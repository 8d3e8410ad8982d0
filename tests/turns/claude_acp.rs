//! The real Claude Code as a subagent: `@zed-industries/claude-code-acp`
//! (pinned in `tests/subagents/node/package.json` and its lockfile,
//! installed on first use; needs Node >= 20 and npm) configured as
//! `[agents.claude]` and pointed at the fake Anthropic server
//! (`fixtures/http/fake_llm.py`), so Claude Code's own requests carry the
//! fake's directives: its answer streams nested into the parent's turn, its
//! permission question is answered by the parent's client, and the
//! parent's `abort` cancels it.
//!
//! Claude Code runs offline with an empty `HOME` (no user config is read),
//! its non-essential traffic off, and `IS_SANDBOX=1` (as root it otherwise
//! refuses the bypass mode it probes at start-up and `session/new` fails).
//! A new Claude Code session takes seconds (the first task call 2.9 s
//! measured alone, a new session on the running agent 2.0 s, a continued
//! one 0.09 s; more under a parallel `cargo test`), so the reads up to its
//! answers wait longer than the harness's default.

use std::path::{Path, PathBuf};

use super::*;
use common::fake_http::FakeServer;
use common::node::{ensure_node_modules, Install};

/// Longest wait for the first nested frame: Claude Code's cold start.
const COLD: Duration = Duration::from_secs(120);

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/subagents/node")
}

/// A parent host (the echo model, `mode` permission mode, `dir` its cwd)
/// whose `[agents.claude]` is Claude Code against `srv`, with `home` as
/// its `HOME`.
fn parent(srv: &FakeServer, dir: &Path, home: &Path, mode: &str) -> Rpc {
    let pkg = package_dir();
    ensure_node_modules(&pkg, "subagents-npm.lock", Install::Ci);
    let agent = pkg.join("node_modules/@zed-industries/claude-code-acp/dist/index.js");
    assert!(agent.is_file(), "{} is missing", agent.display());
    let body = format!(
        "[agents.claude]\ncommand = \"node\"\nargs = [{agent:?}]\n\
         description = \"Claude Code\"\ntimeout = 120\n\
         [agents.claude.env]\nANTHROPIC_BASE_URL = \"http://127.0.0.1:{port}\"\n\
         ANTHROPIC_API_KEY = \"test\"\nDISABLE_TELEMETRY = \"1\"\nDISABLE_AUTOUPDATER = \"1\"\n\
         CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = \"1\"\nIS_SANDBOX = \"1\"\nHOME = {home:?}\n",
        agent = agent.display().to_string(),
        port = srv.port,
        home = home.display().to_string(),
    );
    let config = home.join("rpc-config.toml");
    std::fs::write(&config, body).expect("config");
    let mut rpc = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .arg("--permission-mode")
        .arg(mode)
        .arg("--config")
        .arg(&config.to_string_lossy())
        .current_dir(dir)
        .start();
    rpc.ready();
    rpc
}

/// A parent message whose first round calls `task` on Claude Code.
fn delegate(prompt: &str) -> String {
    let input = json!({"description": "ask claude", "prompt": prompt, "agent": "claude"});
    format!("go [[tool=task input={input}]]")
}

/// Reads until a frame matches, for at most `timeout`.
fn until_within(
    rpc: &mut Rpc,
    srv: &FakeServer,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> (Vec<Value>, Value) {
    let deadline = Instant::now() + timeout;
    let mut before = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(v) = rpc.recv_within(left) else {
            panic!(
                "waiting for {what}: nothing matched within {timeout:?}; last frames: {:?}\n\
                 requests to the fake: {:?}\nstderr:\n{}",
                before.iter().rev().take(5).collect::<Vec<_>>(),
                srv.requests(),
                rpc.stderr()
            );
        };
        if pred(&v) {
            return (before, v);
        }
        before.push(v);
    }
}

/// The child's session id a task result names.
fn session_of(result: &str) -> String {
    let at = result.find("session_id ").expect("the result names it") + 11;
    result[at..]
        .split_whitespace()
        .next()
        .expect("id")
        .to_owned()
}

/// The parent's own `tool_execution_end`s (not its child's).
fn task_ends(frames: &[Value]) -> Vec<&Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "tool_execution_end" && f.get("parent_tool_call_id").is_none())
        .collect()
}

/// The child's text deltas for the parent's call `call`.
fn nested_text(frames: &[Value], call: &str) -> String {
    frames
        .iter()
        .filter(|f| f["type"] == "message_update" && f["parent_tool_call_id"] == call)
        .filter_map(|f| f["event"]["delta"].as_str())
        .collect()
}

/// Processes still running with `HOME=<home>` in their environment: what
/// of Claude Code outlived the host.
fn left_running(home: &Path) -> Vec<u32> {
    let needle = format!("HOME={}", home.display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == needle.as_bytes()))
                && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                    s.rsplit(')')
                        .next()
                        .is_some_and(|r| r.trim_start().starts_with('Z'))
                })
        })
        .collect()
}

/// Shuts the host down and checks Claude Code went with it.
fn finish_without_leftovers(rpc: Rpc, home: &Path) {
    finish(rpc);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = left_running(home);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "Claude Code outlived the host: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn claude_code_answers_a_task_streaming_nested_frames() {
    let srv = FakeServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let home = tempfile::tempdir().expect("home");
    let mut rpc = parent(&srv, dir.path(), home.path(), "ask");

    // A new session on a new process, a new session on the running one,
    // then the first session continued.
    let mut first_session = None::<String>;
    for (id, round) in [("1", "cold"), ("2", "new session"), ("3", "continued")] {
        let mut input = json!({"description": "ask claude", "prompt": "say it [[n=3]]",
            "agent": "claude"});
        if id == "3" {
            input["session_id"] = json!(first_session.clone().expect("the first session"));
        }
        let sent = Instant::now();
        let message = format!("go [[tool=task input={input}]]");
        rpc.send(json!({"type": "prompt", "id": id, "message": message}));
        let (_, first) = until_within(&mut rpc, &srv, COLD, "a nested delta", |f| {
            f["type"] == "message_update" && f.get("parent_tool_call_id").is_some()
        });
        let first_after = sent.elapsed();
        let (frames, done) = until_within(&mut rpc, &srv, COLD, "the response", |f| {
            f["type"] == "response" && f["id"] == id
        });
        eprintln!(
            "{round} task call: first nested delta after {first_after:?}, whole turn {:?}",
            sent.elapsed()
        );
        assert_eq!(done["ok"], true, "{done}");
        assert_eq!(first["parent_tool_call_id"], "call_1", "{first}");
        let mut all = vec![first];
        all.extend(frames);
        assert_eq!(nested_text(&all, "call_1"), "tok tok tok ");
        let ends = task_ends(&all);
        assert_eq!(ends.len(), 1, "{all:?}");
        assert_eq!(ends[0]["is_error"], false, "{}", ends[0]);
        let result = ends[0]["result"].as_str().expect("result");
        assert!(
            result.starts_with("tok tok tok") && result.contains("subagent claude"),
            "{result}"
        );
        let session = session_of(result);
        match &first_session {
            None => first_session = Some(session),
            Some(first) if id == "3" => assert_eq!(&session, first, "{result}"),
            Some(first) => assert_ne!(&session, first, "{result}"),
        }
    }
    // The continued session carried its history to the model.
    let last = srv.api_requests().pop().expect("a request");
    let turns = last["body"]["messages"].as_array().expect("messages").len();
    assert!(turns >= 3, "{last}");
    // Claude Code's requests reached the fake and passed its checks.
    let asked: Vec<Value> = srv
        .api_requests()
        .into_iter()
        .filter(|r| r["scenario"].as_str().is_some_and(|s| s.contains("n=3")))
        .collect();
    assert!(!asked.is_empty(), "{:?}", srv.requests());
    assert!(asked.iter().all(|r| r["status"] == 200), "{asked:?}");
    finish_without_leftovers(rpc, home.path());
}

#[test]
fn claude_codes_permission_question_is_answered_by_the_parents_client() {
    let srv = FakeServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let home = tempfile::tempdir().expect("home");
    let mut rpc = parent(&srv, dir.path(), home.path(), "ask");
    let file = PathBuf::from(canonical(dir.path())).join("from-claude.txt");
    let input = json!({"file_path": file, "content": "hi\n"});
    rpc.send(json!({"type": "prompt", "id": "1",
        "message": delegate(&format!("write it [[tool=Write input={input}]]"))}));
    let (before, asked) = until_within(&mut rpc, &srv, COLD, "permission_request", |f| {
        f["type"] == "permission_request"
    });
    assert_eq!(asked["parent_tool_call_id"], "call_1", "{asked}");
    assert_eq!(asked["tool"], "edit", "{asked}");
    assert!(!file.exists(), "written before the answer");
    // The child's tool call was shown before its question.
    assert!(
        before.iter().any(|f| f["type"] == "tool_execution_start"
            && f["parent_tool_call_id"] == "call_1"
            && f["name"] == "edit"),
        "{before:?}"
    );
    let request = asked["request_id"].clone();
    call_ok(
        &mut rpc,
        json!({"type": "permission_response", "request_id": request, "decision": "allow_once"}),
        "p",
    );
    let (frames, done) = until_within(&mut rpc, &srv, COLD, "the response", |f| {
        f["type"] == "response" && f["id"] == "1"
    });
    assert_eq!(done["ok"], true, "{done}");
    let ends = task_ends(&frames);
    assert_eq!(ends.len(), 1, "{frames:?}");
    assert_eq!(ends[0]["is_error"], false, "{}", ends[0]);
    // One start and one end for the child's call, though Claude Code
    // announces it twice (empty input first, then the whole input).
    let child = asked["tool_call_id"].clone();
    let all: Vec<&Value> = before.iter().chain(&frames).collect();
    let of_child = |kind: &str| {
        all.iter()
            .filter(|f| f["type"] == kind && f["tool_call_id"] == child)
            .count()
    };
    assert_eq!(of_child("tool_execution_start"), 1, "{all:?}");
    assert_eq!(of_child("tool_execution_end"), 1, "{all:?}");
    assert!(
        frames.iter().any(|f| f["type"] == "tool_execution_end"
            && f["parent_tool_call_id"] == "call_1"
            && f["tool_call_id"] == child
            && f["is_error"] == false),
        "the child's Write ended: {frames:?}"
    );
    assert_eq!(asked["input"]["file_path"], json!(file), "{asked}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("Claude Code wrote the file"),
        "hi\n"
    );
    finish_without_leftovers(rpc, home.path());
}

/// In `accept-edits` the parent's mode answers Claude Code's question for
/// a write inside the cwd, though its question names neither the kind nor
/// the path (they come from its earlier `tool_call`).
#[test]
fn accept_edits_lets_claude_code_write_inside_the_cwd_unasked() {
    let srv = FakeServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let home = tempfile::tempdir().expect("home");
    let mut rpc = parent(&srv, dir.path(), home.path(), "accept-edits");
    let file = PathBuf::from(canonical(dir.path())).join("unasked.txt");
    let input = json!({"file_path": file, "content": "hi\n"});
    rpc.send(json!({"type": "prompt", "id": "1",
        "message": delegate(&format!("write it [[tool=Write input={input}]]"))}));
    let (frames, done) = until_within(&mut rpc, &srv, COLD, "the response", |f| {
        f["type"] == "response" && f["id"] == "1"
    });
    assert_eq!(done["ok"], true, "{done}");
    assert!(
        frames.iter().all(|f| f["type"] != "permission_request"),
        "{frames:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("Claude Code wrote the file"),
        "hi\n"
    );
    finish_without_leftovers(rpc, home.path());
}

#[test]
fn the_parents_abort_cancels_claude_code() {
    let srv = FakeServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let home = tempfile::tempdir().expect("home");
    let mut rpc = parent(&srv, dir.path(), home.path(), "ask");
    rpc.send(json!({"type": "prompt", "id": "1",
        "message": delegate("go on [[n=2000 delay_ms=10 id=long]]")}));
    until_within(&mut rpc, &srv, COLD, "a nested delta", |f| {
        f["type"] == "message_update" && f.get("parent_tool_call_id").is_some()
    });
    rpc.send(json!({"type": "abort", "id": "a"}));
    let sent = Instant::now();
    let (frames, end) = rpc.until("agent_end", |f| f["type"] == "agent_end");
    let took = sent.elapsed();
    assert_eq!(end["stop_reason"], "aborted", "{end}");
    eprintln!("abort to agent_end: {took:?}");
    assert!(took < Duration::from_secs(1), "abort took {took:?}");
    let ends = task_ends(&frames);
    assert_eq!(ends.len(), 1, "{frames:?}");
    assert_eq!(ends[0]["is_error"], true, "{}", ends[0]);
    let resp = rpc.answer(&json!("1"));
    assert_eq!(resp["cancelled"], true, "{resp}");

    // The cancel reached Claude Code: it hung up on the long stream.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let long = srv.requests_with("id=long");
        if long.iter().any(|r| r["outcome"] == "client_gone") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Claude Code kept streaming after the cancel: {long:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Nothing of the cancelled child follows the turn's end ...
    let late = rpc.drain(Duration::from_millis(300));
    assert!(
        late.iter().all(|f| f.get("parent_tool_call_id").is_none()),
        "{late:?}"
    );
    // ... and the same Claude Code takes the next task.
    let (frames, done) = prompt(&mut rpc, "2", &delegate("again [[n=2]]"));
    assert_eq!(done["ok"], true, "{done}");
    assert_eq!(nested_text(&frames, "call_1"), "tok tok ");
    let ends = task_ends(&frames);
    assert_eq!(ends[0]["is_error"], false, "{}", ends[0]);
    finish_without_leftovers(rpc, home.path());
}
