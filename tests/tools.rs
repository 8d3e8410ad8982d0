//! Tool execution behind the permission gate, against the real `rpc` binary,
//! the echo provider extension and (for the wire shapes) the fake HTTP
//! server `fixtures/http/fake_llm.py`.
//!
//! The echo fixture calls a tool when the prompt says
//! `[[tool=NAME input=JSON]]` (ids `call_1`, `call_2`, ...) and, once the
//! results come back, replies `tool result: <content>`. Every host gets its
//! own session cwd (`<tempdir>/work`, so `..` is a tempdir too) and its own
//! data dir.
//!
//! Every read is bounded by the harness timeout. The only timing assertions
//! are the contract's, asserted loosely: abort reaches `agent_end` within
//! 1 s, a 300 ms bash timeout reports within ~3 s.

mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::fake_http::{Api, FakeServer};
use common::procfs::{alive, cmdline, descendants};
use common::*;
use serde_json::{json, Value};
use tempfile::TempDir;

/// `XDG_CONFIG_HOME` for every host, so no developer config leaks in.
const NO_CONFIG_HOME: &str = "/nonexistent/agent-rpc-tools-tests";

// ---------------------------------------------------------------- helpers

/// A session working directory `root/work`; `root` is "outside".
struct Dirs {
    root: TempDir,
    cwd: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let cwd = root.path().join("work");
        std::fs::create_dir(&cwd).expect("mkdir work");
        let cwd = cwd.canonicalize().expect("canonical cwd");
        Dirs { root, cwd }
    }

    /// The directory above the cwd (canonical).
    fn outside(&self) -> PathBuf {
        self.root.path().canonicalize().expect("canonical root")
    }

    fn put(&self, rel: &str, text: &str) {
        std::fs::write(self.cwd.join(rel), text).expect("write fixture file");
    }

    fn get(&self, rel: &str) -> Option<String> {
        std::fs::read_to_string(self.cwd.join(rel)).ok()
    }
}

/// An echo host in `cwd` with the given permission mode.
fn echo_spawn(cwd: &Path, mode: &str) -> Spawn {
    Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .ext("echo")
        .model(ECHO)
        .arg("--cwd")
        .arg(cwd.to_str().expect("utf-8 cwd"))
        .arg("--permission-mode")
        .arg(mode)
}

fn start(cwd: &Path, mode: &str) -> Rpc {
    let mut rpc = echo_spawn(cwd, mode).start();
    rpc.ready();
    rpc
}

/// The directive that makes the echo model call `tools` with `input`.
fn call(tools: &str, input: &Value) -> String {
    format!("[[tool={tools} input={input}]]")
}

fn is_event(f: &Value, kind: &str) -> bool {
    f["type"] == "message_update" && f["event"]["type"] == kind
}

fn of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}

fn index_of(frames: &[Value], what: &str, pred: impl Fn(&Value) -> bool) -> usize {
    frames
        .iter()
        .position(pred)
        .unwrap_or_else(|| panic!("no {what} among {frames:#?}"))
}

/// The one `tool_execution_end` among `frames`.
fn the_tool_end(frames: &[Value]) -> Value {
    let ends = of_type(frames, "tool_execution_end");
    assert_eq!(ends.len(), 1, "exactly one tool_execution_end: {frames:#?}");
    ends[0].clone()
}

/// Text streamed after the (last) `tool_execution_end`: the second round.
fn reply_after_tools(frames: &[Value]) -> String {
    let at = frames
        .iter()
        .rposition(|f| f["type"] == "tool_execution_end")
        .unwrap_or_else(|| panic!("no tool_execution_end among {frames:#?}"));
    text_of(&frames[at + 1..])
}

fn no_permission_request(frames: &[Value]) {
    assert!(
        of_type(frames, "permission_request").is_empty(),
        "no permission_request expected: {frames:#?}"
    );
}

/// Runs a prompt that needs no permission to its answer; it must succeed.
fn run_ok(rpc: &mut Rpc, id: &str, message: &str) -> Vec<Value> {
    let (frames, resp) = prompt(rpc, id, message);
    assert_ok(&resp, rpc);
    frames
}

/// Sends a prompt and reads up to its `permission_request` (failing if the
/// prompt is answered first). Returns (frames before, the request).
fn until_permission(rpc: &mut Rpc, id: &str, message: &str) -> (Vec<Value>, Value) {
    rpc.send(json!({"type": "prompt", "id": id, "message": message}));
    let pid = id.to_owned();
    let (before, f) = rpc.until("permission_request", move |f| {
        f["type"] == "permission_request" || is_answer_to(f, &pid)
    });
    assert_eq!(
        f["type"], "permission_request",
        "the prompt ended without asking: {f}\nframes: {before:#?}"
    );
    (before, f)
}

/// Answers a permission request (command id `rid`) and reads to the answer
/// of prompt `prompt`. Returns (frames in between, the prompt's answer); the
/// permission_response's own answer must be a success among the frames.
fn decide(
    rpc: &mut Rpc,
    req: &Value,
    decision: &str,
    message: Option<&str>,
    rid: &str,
    prompt: &str,
) -> (Vec<Value>, Value) {
    let mut cmd = json!({"type": "permission_response", "id": rid,
        "request_id": req["request_id"], "decision": decision});
    if let Some(m) = message {
        cmd["message"] = json!(m);
    }
    rpc.send(cmd);
    let p = prompt.to_owned();
    let (frames, resp) = rpc.until("prompt answer", move |f| is_answer_to(f, &p));
    let ans = frames
        .iter()
        .find(|f| is_answer_to(f, rid))
        .unwrap_or_else(|| panic!("permission_response {rid} unanswered: {frames:#?}"));
    assert_eq!(ans["type"], "response", "{ans}");
    assert_eq!(ans["ok"], true, "{ans}");
    assert_eq!(ans["command"], "permission_response", "{ans}");
    (frames, resp)
}

fn blocks(m: &Value) -> Vec<Value> {
    m["content"].as_array().cloned().unwrap_or_default()
}

/// `shutdown`, then a clean exit.
fn shutdown(mut rpc: Rpc) {
    let r = rpc.call(json!({"type": "shutdown"}), "bye");
    assert_eq!(r["ok"], true, "{r}");
    let status = rpc
        .wait(Duration::from_secs(10))
        .expect("exit after shutdown");
    assert!(status.success(), "{status:?}\nstderr:\n{}", rpc.stderr());
}

// ---------------------------------------------------------------- 1. read

/// read runs without asking in ask mode; the frames come in order and the
/// model gets the numbered lines back.
#[test]
fn read_runs_without_asking_and_events_come_in_order() {
    let d = Dirs::new();
    d.put("a.txt", "hello\nworld\n");
    let mut rpc = start(&d.cwd, "ask");
    let input = json!({"path": "a.txt"});
    let frames = run_ok(&mut rpc, "1", &format!("read it {}", call("read", &input)));
    no_permission_request(&frames);
    let prompt_id = frames[0]["prompt_id"]
        .as_str()
        .expect("prompt_id")
        .to_owned();

    let tcs = index_of(&frames, "toolcall_start", |f| is_event(f, "toolcall_start"));
    let tce = index_of(&frames, "toolcall_end", |f| is_event(f, "toolcall_end"));
    let tes = index_of(&frames, "tool_execution_start", |f| {
        f["type"] == "tool_execution_start"
    });
    let tee = index_of(&frames, "tool_execution_end", |f| {
        f["type"] == "tool_execution_end"
    });
    let text2 = tee
        + 1
        + index_of(&frames[tee + 1..], "second-round text", |f| {
            is_event(f, "text_delta")
        });
    let end = index_of(&frames, "agent_end", |f| f["type"] == "agent_end");
    assert!(
        tcs < tce && tce < tes && tes < tee && tee < text2 && text2 < end,
        "order toolcall_start {tcs} < toolcall_end {tce} < tool_execution_start {tes} \
         < tool_execution_end {tee} < text {text2} < agent_end {end}: {frames:#?}"
    );
    assert_eq!(
        end,
        frames.len() - 1,
        "agent_end is last before the response"
    );

    let start = &frames[tes];
    assert_eq!(start["prompt_id"], prompt_id.as_str());
    assert_eq!(start["tool_call_id"], "call_1");
    assert_eq!(start["name"], "read");
    assert_eq!(start["input"], input);
    assert_eq!(frames[tce]["event"]["input"], input);

    let done = &frames[tee];
    assert_eq!(done["tool_call_id"], "call_1");
    assert_eq!(done["is_error"], false, "{done}");
    let result = done["result"].as_str().expect("result string");
    assert!(
        result.contains("1\thello") && result.contains("2\tworld"),
        "line-numbered result: {result:?}"
    );
    let reply = reply_after_tools(&frames);
    assert!(reply.starts_with("tool result:"), "{reply:?}");
    assert!(reply.contains("1\thello"), "{reply:?}");
    assert_eq!(frames[end]["stop_reason"], "end_turn");
}

// ---------------------------------------------------------------- 2. write

/// A denied write leaves no file and tells the model why; a later allowed
/// one writes exactly the content. The request carries everything a client
/// needs to ask, including a unified diff.
#[test]
fn write_denied_then_allowed() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "ask");
    let input = json!({"path": "new.txt", "content": "hello\nthere\n"});
    let msg = format!("make it {}", call("write", &input));

    let (before, req) = until_permission(&mut rpc, "1", &msg);
    let prompt_id = before[0]["prompt_id"].clone();
    assert!(
        req["request_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{req}"
    );
    assert_eq!(req["prompt_id"], prompt_id, "{req}");
    assert_eq!(req["tool_call_id"], "call_1", "{req}");
    assert_eq!(req["tool"], "write", "{req}");
    assert_eq!(req["input"], input, "{req}");
    assert!(
        req["title"].as_str().is_some_and(|t| t.contains("new.txt")),
        "{req}"
    );
    assert_eq!(req["outside_cwd"], false, "{req}");
    let diff = req["diff"].as_str().expect("diff");
    assert!(diff.contains("+++ ") && diff.contains("new.txt"), "{diff}");
    assert!(diff.contains("--- "), "{diff}");
    assert!(diff.contains("@@"), "{diff}");
    assert!(
        diff.contains("+hello\n") && diff.contains("+there\n"),
        "{diff}"
    );
    assert!(
        of_type(&before, "tool_execution_start").len() == 1,
        "tool_execution_start precedes the request: {before:#?}"
    );

    let (frames, resp) = decide(&mut rpc, &req, "deny", Some("no thanks"), "r1", "1");
    assert_ok(&resp, &rpc);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true, "{end}");
    assert!(
        end["result"].as_str().unwrap().contains("no thanks"),
        "{end}"
    );
    assert!(
        reply_after_tools(&frames).contains("no thanks"),
        "the model's reply carries the denial: {frames:#?}"
    );
    assert!(d.get("new.txt").is_none(), "denied write created the file");

    let (_, req) = until_permission(&mut rpc, "2", &format!("again {}", call("write", &input)));
    let (frames, resp) = decide(&mut rpc, &req, "allow_once", None, "r2", "2");
    assert_ok(&resp, &rpc);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    assert_eq!(d.get("new.txt").as_deref(), Some("hello\nthere\n"));
}

// ---------------------------------------------------------------- 3. edit

/// The prompt shows the edit as -old/+new lines; after allow the file is
/// changed and the result includes the diff.
#[test]
fn edit_shows_diff_then_applies() {
    let d = Dirs::new();
    d.put("f.txt", "alpha\nbeta\ngamma\n");
    let mut rpc = start(&d.cwd, "ask");
    let input = json!({"path": "f.txt", "old_string": "beta", "new_string": "BETA"});
    let (_, req) = until_permission(&mut rpc, "1", &call("edit", &input));
    assert_eq!(req["tool"], "edit");
    let diff = req["diff"].as_str().expect("diff");
    assert!(
        diff.contains("-beta\n") && diff.contains("+BETA\n"),
        "{diff}"
    );
    assert_eq!(
        d.get("f.txt").as_deref(),
        Some("alpha\nbeta\ngamma\n"),
        "nothing changes before the answer"
    );
    let (frames, resp) = decide(&mut rpc, &req, "allow_once", None, "r1", "1");
    assert_ok(&resp, &rpc);
    assert_eq!(d.get("f.txt").as_deref(), Some("alpha\nBETA\ngamma\n"));
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    let result = end["result"].as_str().unwrap();
    assert!(
        result.contains("-beta") && result.contains("+BETA"),
        "{result}"
    );
}

/// An edit that cannot apply (old_string not unique) fails without asking.
#[test]
fn ambiguous_edit_fails_without_asking() {
    let d = Dirs::new();
    d.put("f.txt", "x = 1\nx = 1\n");
    let mut rpc = start(&d.cwd, "ask");
    let input = json!({"path": "f.txt", "old_string": "x = 1", "new_string": "y"});
    let frames = run_ok(&mut rpc, "1", &call("edit", &input));
    no_permission_request(&frames);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true, "{end}");
    assert!(
        end["result"].as_str().unwrap().contains("old_string"),
        "{end}"
    );
    assert_eq!(d.get("f.txt").as_deref(), Some("x = 1\nx = 1\n"));
}

// ---------------------------------------------------------------- 4. allow_always

/// allow_always covers later calls of the tool in the session, not in a
/// new one.
#[test]
fn allow_always_sticks_until_new_session() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "ask");
    let w = |p: &str| call("write", &json!({"path": p, "content": p}));

    let (_, req) = until_permission(&mut rpc, "1", &w("a.txt"));
    let (_, resp) = decide(&mut rpc, &req, "allow_always", None, "r1", "1");
    assert_ok(&resp, &rpc);
    assert_eq!(d.get("a.txt").as_deref(), Some("a.txt"));

    let frames = run_ok(&mut rpc, "2", &w("b.txt"));
    no_permission_request(&frames);
    assert_eq!(the_tool_end(&frames)["is_error"], false);
    assert_eq!(d.get("b.txt").as_deref(), Some("b.txt"));

    let ns = rpc.call(json!({"type": "new_session"}), "ns");
    assert_eq!(ns["ok"], true, "{ns}");
    let (_, req) = until_permission(&mut rpc, "3", &w("c.txt"));
    assert_eq!(req["tool"], "write");
    let (_, resp) = decide(&mut rpc, &req, "deny", None, "r3", "3");
    assert_ok(&resp, &rpc);
    assert!(d.get("c.txt").is_none());
}

// ---------------------------------------------------------------- 5. bash

fn bash(command: &str) -> String {
    call("bash", &json!({ "command": command }))
}

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

// ---------------------------------------------------------------- 6. abort kills

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

    std::thread::sleep(Duration::from_secs(1));
    let left: Vec<&(u32, String)> = running
        .iter()
        .filter(|(p, c)| alive(*p) && cmdline(*p).as_deref() == Some(c.as_str()))
        .collect();
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

// ---------------------------------------------------------------- 7. abort vs permission

/// Abort while the host waits for an answer: the question is withdrawn
/// (`permission_cancelled`), the turn ends aborted, and a late answer finds
/// nothing.
#[test]
fn abort_while_permission_pending_cancels_the_request() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "ask");
    let input = json!({"path": "x.txt", "content": "x"});
    let (_, req) = until_permission(&mut rpc, "1", &call("write", &input));
    let request_id = req["request_id"].as_str().unwrap().to_owned();

    let t0 = Instant::now();
    rpc.send(json!({"type": "abort", "id": "a"}));
    let (frames, ab) = rpc.until("abort answer", |f| is_answer_to(f, "a"));
    assert_eq!(ab["ok"], true, "{ab}");
    let cancelled = index_of(&frames, "permission_cancelled", |f| {
        f["type"] == "permission_cancelled"
    });
    assert_eq!(frames[cancelled]["request_id"], request_id.as_str());
    let end = index_of(&frames, "agent_end", |f| f["type"] == "agent_end");
    assert!(cancelled < end, "{frames:#?}");
    assert_eq!(frames[end]["stop_reason"], "aborted");
    let resp = frames
        .iter()
        .find(|f| is_answer_to(f, "1"))
        .unwrap_or_else(|| panic!("prompt unanswered: {frames:#?}"));
    assert_eq!(resp["cancelled"], true, "{resp}");
    assert!(t0.elapsed() < Duration::from_secs(5));

    let late = rpc.call(
        json!({"type": "permission_response", "request_id": request_id,
            "decision": "allow_once"}),
        "late",
    );
    assert_eq!(late["type"], "error", "{late}");
    assert_eq!(late["code"], "not_found", "{late}");
    assert_eq!(late["command"], "permission_response", "{late}");
    // Nothing was written, late answer or not.
    std::thread::sleep(Duration::from_millis(200));
    assert!(d.get("x.txt").is_none());
}

#[test]
fn permission_response_for_unknown_request_is_not_found() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "ask");
    let r = rpc.call(
        json!({"type": "permission_response", "request_id": "perm-does-not-exist",
            "decision": "deny"}),
        "x",
    );
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "not_found", "{r}");
    let r = rpc.call(
        json!({"type": "permission_response", "request_id": "perm-1", "decision": "maybe"}),
        "y",
    );
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "invalid_params", "{r}");
}

// ---------------------------------------------------------------- 8. EOF

/// A piped prompt whose tool needs permission cannot hang: with stdin
/// closed the call is denied, saying why, and the host exits cleanly.
#[test]
fn stdin_eof_denies_permission_and_exits() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "ask");
    let input = json!({"path": "piped.txt", "content": "x"});
    rpc.send(json!({"type": "prompt", "id": "1", "message": call("write", &input)}));
    rpc.close_stdin();
    let frames = rpc.drain(Duration::from_secs(15));
    let status = rpc.wait(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}; frames {frames:#?}\nstderr:\n{}",
        rpc.stderr()
    );
    let resp = frames
        .iter()
        .find(|f| is_answer_to(f, "1"))
        .unwrap_or_else(|| panic!("prompt unanswered: {frames:#?}"));
    assert_eq!(resp["ok"], true, "{resp}");
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true, "{end}");
    let result = end["result"].as_str().unwrap();
    assert!(
        result.contains("stdin")
            && result.contains("denied")
            // Regression (docs audit): it read "the user denied …".
            && !result.contains("the user"),
        "says nobody can answer: {result}"
    );
    assert!(d.get("piped.txt").is_none());
}

// ---------------------------------------------------------------- 9. confinement

#[test]
fn write_outside_cwd_asks_even_in_accept_edits() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "accept-edits");
    let input = json!({"path": "../outside.txt", "content": "nope"});
    let (_, req) = until_permission(&mut rpc, "1", &call("write", &input));
    assert_eq!(req["outside_cwd"], true, "{req}");
    assert_eq!(req["tool"], "write");
    let (_, resp) = decide(&mut rpc, &req, "deny", None, "r", "1");
    assert_ok(&resp, &rpc);
    assert!(!d.outside().join("outside.txt").exists());
}

#[test]
fn write_inside_cwd_runs_in_accept_edits() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "accept-edits");
    let input = json!({"path": "sub/inside.txt", "content": "yes\n"});
    let frames = run_ok(&mut rpc, "1", &call("write", &input));
    no_permission_request(&frames);
    assert_eq!(the_tool_end(&frames)["is_error"], false);
    assert_eq!(d.get("sub/inside.txt").as_deref(), Some("yes\n"));
    // Edits too.
    let input = json!({"path": "sub/inside.txt", "old_string": "yes", "new_string": "no"});
    let frames = run_ok(&mut rpc, "2", &call("edit", &input));
    no_permission_request(&frames);
    assert_eq!(d.get("sub/inside.txt").as_deref(), Some("no\n"));
}

#[test]
fn write_through_symlink_to_outside_asks() {
    let d = Dirs::new();
    let out = d.outside().join("elsewhere");
    std::fs::create_dir(&out).unwrap();
    symlink(&out, d.cwd.join("link")).unwrap();
    let mut rpc = start(&d.cwd, "accept-edits");
    let input = json!({"path": "link/x.txt", "content": "x"});
    let (_, req) = until_permission(&mut rpc, "1", &call("write", &input));
    assert_eq!(req["outside_cwd"], true, "{req}");
    let (_, resp) = decide(&mut rpc, &req, "deny", None, "r", "1");
    assert_ok(&resp, &rpc);
    assert!(!out.join("x.txt").exists());
}

#[test]
fn read_outside_cwd_asks_in_ask_mode() {
    let d = Dirs::new();
    std::fs::write(d.outside().join("secret.txt"), "top secret\n").unwrap();
    let mut rpc = start(&d.cwd, "ask");
    let (_, req) = until_permission(
        &mut rpc,
        "1",
        &call("read", &json!({"path": "../secret.txt"})),
    );
    assert_eq!(req["tool"], "read");
    assert_eq!(req["outside_cwd"], true, "{req}");
    let (frames, resp) = decide(&mut rpc, &req, "allow_once", None, "r", "1");
    assert_ok(&resp, &rpc);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    assert!(end["result"].as_str().unwrap().contains("top secret"));
}

// ---------------------------------------------------------------- 10. read-only

#[test]
fn read_only_mode_refuses_mutating_tools_without_asking() {
    let d = Dirs::new();
    d.put("f.txt", "keep\n");
    let mut rpc = start(&d.cwd, "read-only");
    let calls = [
        call("write", &json!({"path": "new.txt", "content": "x"})),
        call(
            "edit",
            &json!({"path": "f.txt", "old_string": "keep", "new_string": "lose"}),
        ),
        bash("touch touched.txt"),
    ];
    for (i, c) in calls.iter().enumerate() {
        let frames = run_ok(&mut rpc, &format!("p{i}"), c);
        no_permission_request(&frames);
        let end = the_tool_end(&frames);
        assert_eq!(end["is_error"], true, "{end}");
        assert!(
            end["result"].as_str().unwrap().contains("read-only"),
            "{end}"
        );
    }
    assert!(d.get("new.txt").is_none());
    assert!(d.get("touched.txt").is_none());
    assert_eq!(d.get("f.txt").as_deref(), Some("keep\n"));
    let frames = run_ok(&mut rpc, "r", &call("read", &json!({"path": "f.txt"})));
    no_permission_request(&frames);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    assert!(end["result"].as_str().unwrap().contains("keep"));
}

// ---------------------------------------------------------------- 11. set_permission_mode

#[test]
fn set_permission_mode_applies_at_once_and_persists() {
    let d = Dirs::new();
    let data = tempfile::tempdir().unwrap();
    let mut rpc = echo_spawn(&d.cwd, "ask").data(data.path()).start();
    let ready = rpc.ready();
    let id = ready["session_id"].as_str().unwrap().to_owned();

    let r = rpc.call(
        json!({"type": "set_permission_mode", "mode": "allow-all"}),
        "m",
    );
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["mode"], "allow-all", "{r}");
    let frames = run_ok(&mut rpc, "1", &bash("echo ran"));
    no_permission_request(&frames);
    assert!(the_tool_end(&frames)["result"]
        .as_str()
        .unwrap()
        .contains("ran"));

    let r = rpc.call(
        json!({"type": "set_permission_mode", "mode": "read-only"}),
        "m2",
    );
    assert_eq!(r["mode"], "read-only", "{r}");
    let frames = run_ok(&mut rpc, "2", &bash("echo ran"));
    no_permission_request(&frames);
    assert_eq!(the_tool_end(&frames)["is_error"], true);
    let st = rpc.call(json!({"type": "get_state"}), "s");
    assert_eq!(st["permission_mode"], "read-only", "{st}");

    let bad = rpc.call(
        json!({"type": "set_permission_mode", "mode": "yolo"}),
        "bad",
    );
    assert_eq!(bad["type"], "error", "{bad}");
    assert_eq!(bad["code"], "invalid_params", "{bad}");
    shutdown(rpc);

    // Resumed without the flag: the stored mode. (`--permission-mode` is
    // part of echo_spawn, so these hosts are built by hand.)
    let resume = |extra: &[&str]| {
        let mut s = Spawn::new()
            .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
            .ext("echo")
            .data(data.path())
            .arg("--cwd")
            .arg(d.cwd.to_str().unwrap())
            .arg("--continue")
            .arg(&id);
        for a in extra {
            s = s.arg(a);
        }
        let mut rpc = s.start();
        let ready = rpc.ready();
        assert_eq!(ready["session_id"], id.as_str());
        rpc
    };
    let mut rpc = resume(&[]);
    let st = rpc.call(json!({"type": "get_state"}), "s");
    assert_eq!(st["permission_mode"], "read-only", "{st}");
    shutdown(rpc);

    // The flag overrides the stored mode (and is kept).
    let mut rpc = resume(&["--permission-mode", "accept-edits"]);
    let st = rpc.call(json!({"type": "get_state"}), "s");
    assert_eq!(st["permission_mode"], "accept-edits", "{st}");
    shutdown(rpc);
    let mut rpc = resume(&[]);
    let st = rpc.call(json!({"type": "get_state"}), "s");
    assert_eq!(st["permission_mode"], "accept-edits", "{st}");
}

// ---------------------------------------------------------------- 12. resume after tools

#[test]
fn continue_after_tool_turn_keeps_a_valid_history() {
    let d = Dirs::new();
    d.put("a.txt", "resumable\n");
    let data = tempfile::tempdir().unwrap();
    let mut rpc = echo_spawn(&d.cwd, "ask").data(data.path()).start();
    let id = rpc.ready()["session_id"].as_str().unwrap().to_owned();
    let input = json!({"path": "a.txt"});
    run_ok(&mut rpc, "1", &format!("look {}", call("read", &input)));
    shutdown(rpc);

    let mut rpc = echo_spawn(&d.cwd, "ask")
        .data(data.path())
        .arg("--continue")
        .arg(&id)
        .start();
    rpc.ready();
    let msgs = messages(&mut rpc, "m");
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(msgs[1]["role"], "assistant");
    let uses = blocks(&msgs[1]);
    let tool_use = uses
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use block: {}", msgs[1]));
    assert_eq!(tool_use["id"], "call_1");
    assert_eq!(tool_use["name"], "read");
    assert_eq!(tool_use["input"], input);
    assert_eq!(msgs[2]["role"], "user");
    let results = blocks(&msgs[2]);
    let result = results
        .iter()
        .find(|b| b["type"] == "tool_result")
        .unwrap_or_else(|| panic!("no tool_result block: {}", msgs[2]));
    assert_eq!(result["tool_use_id"], "call_1");
    assert!(
        result["content"].to_string().contains("resumable"),
        "{result}"
    );
    assert_eq!(msgs[3]["role"], "assistant");
    let text: String = match &msgs[3]["content"] {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    assert!(text.contains("tool result:"), "{}", msgs[3]);

    // The next request carries the tool_use / tool_result pair.
    let frames = run_ok(&mut rpc, "2", "what now [[show=messages]]");
    let sent: Value = serde_json::from_str(&text_of(&frames))
        .unwrap_or_else(|e| panic!("show=messages is not JSON ({e}): {frames:#?}"));
    let sent = sent.as_array().expect("messages array");
    assert_eq!(sent.len(), 5, "{sent:#?}");
    assert!(
        blocks(&sent[1])
            .iter()
            .any(|b| b["type"] == "tool_use" && b["id"] == "call_1"),
        "{:#}",
        sent[1]
    );
    assert!(
        blocks(&sent[2])
            .iter()
            .any(|b| b["type"] == "tool_result" && b["tool_use_id"] == "call_1"),
        "{:#}",
        sent[2]
    );
    assert_eq!(sent[4]["role"], "user");
}

// ---------------------------------------------------------------- 14. parallel calls

/// Two calls in one round run one after the other, in order, and both
/// results go back in one message.
#[test]
fn parallel_calls_run_in_order_and_both_results_return() {
    let d = Dirs::new();
    d.put("a.txt", "hello parallel\n");
    let mut rpc = start(&d.cwd, "ask");
    let input = json!({"path": "a.txt", "pattern": "hello"});
    let frames = run_ok(&mut rpc, "1", &call("read,grep", &input));
    no_permission_request(&frames);
    let seq: Vec<(String, String)> = frames
        .iter()
        .filter(|f| f["type"] == "tool_execution_start" || f["type"] == "tool_execution_end")
        .map(|f| {
            (
                f["type"].as_str().unwrap().to_owned(),
                f["tool_call_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("tool_execution_start", "call_1"),
        ("tool_execution_end", "call_1"),
        ("tool_execution_start", "call_2"),
        ("tool_execution_end", "call_2"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(seq, expect);
    let names: Vec<&Value> = of_type(&frames, "tool_execution_start")
        .iter()
        .map(|f| &f["name"])
        .collect();
    assert_eq!(names, [&json!("read"), &json!("grep")]);
    for e in of_type(&frames, "tool_execution_end") {
        assert_eq!(e["is_error"], false, "{e}");
    }
    let reply = reply_after_tools(&frames);
    assert_eq!(reply.matches("tool result:").count(), 2, "{reply:?}");

    let msgs = messages(&mut rpc, "m");
    let ids: Vec<&Value> = msgs[2]["content"]
        .as_array()
        .expect("blocks")
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| &b["tool_use_id"])
        .collect();
    assert_eq!(ids, [&json!("call_1"), &json!("call_2")], "{:#}", msgs[2]);
}

// ---------------------------------------------------------------- 15. steer

/// A steer sent while a tool runs reaches the model with the results.
#[test]
fn steer_during_tool_round_reaches_the_next_request() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "allow-all");
    rpc.send(json!({"type": "prompt", "id": "1", "message": bash("sleep 1")}));
    rpc.until("tool_execution_start", |f| {
        f["type"] == "tool_execution_start"
    });
    let steer = "also this [[show=messages]]";
    rpc.send(json!({"type": "steer", "id": "s", "message": steer}));
    let (frames, resp) = rpc.until("prompt answer", |f| is_answer_to(f, "1"));
    assert_ok(&resp, &rpc);
    let ans = frames
        .iter()
        .find(|f| is_answer_to(f, "s"))
        .unwrap_or_else(|| panic!("steer unanswered: {frames:#?}"));
    assert_eq!(ans["ok"], true, "{ans}");
    let steer_at = frames.iter().position(|f| is_answer_to(f, "s")).unwrap();
    let end_at = index_of(&frames, "tool_execution_end", |f| {
        f["type"] == "tool_execution_end"
    });
    assert!(steer_at < end_at, "the steer was sent while the tool ran");

    let sent: Value = serde_json::from_str(&reply_after_tools(&frames))
        .unwrap_or_else(|e| panic!("show=messages is not JSON ({e}): {frames:#?}"));
    let sent = sent.as_array().expect("messages");
    let last = sent.last().unwrap();
    assert_eq!(last["role"], "user", "{last}");
    let b = blocks(last);
    assert!(
        b.iter()
            .any(|b| b["type"] == "tool_result" && b["tool_use_id"] == "call_1"),
        "{last:#}"
    );
    assert!(
        b.iter().any(|b| b["type"] == "text" && b["text"] == steer),
        "the steer text rides with the results: {last:#}"
    );
}

// ---------------------------------------------------------------- 13/14. HTTP fakes

fn http_host(api: Api, srv: &FakeServer, cwd: &Path) -> Rpc {
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env(api.base_var(), &api.base_url(srv.port))
        .env(api.key_var(), "sk-test-tools")
        .model(api.model())
        .arg("--cwd")
        .arg(cwd.to_str().unwrap())
        .start();
    rpc.ready();
    rpc
}

/// The tool results a request body sends back, as (call id, content text),
/// in order.
fn results_sent(api: Api, body: &Value) -> Vec<(String, String)> {
    let msgs = body["messages"].as_array().expect("messages");
    let text = |c: &Value| match c {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match api {
        Api::Anthropic => msgs
            .iter()
            .filter(|m| m["role"] == "user")
            .flat_map(blocks)
            .filter(|b| b["type"] == "tool_result")
            .map(|b| {
                (
                    b["tool_use_id"].as_str().unwrap_or("").to_owned(),
                    text(&b["content"]),
                )
            })
            .collect(),
        Api::OpenAi => msgs
            .iter()
            .filter(|m| m["role"] == "tool")
            .map(|m| {
                (
                    m["tool_call_id"].as_str().unwrap_or("").to_owned(),
                    text(&m["content"]),
                )
            })
            .collect(),
    }
}

fn http_tool_round_trip(api: Api) {
    let d = Dirs::new();
    d.put("a.txt", "from the http fake\n");
    let srv = FakeServer::start();
    let mut rpc = http_host(api, &srv, &d.cwd);
    let (frames, resp) = prompt(
        &mut rpc,
        "1",
        r#"read it [[tool=read input={"path":"a.txt"}]]"#,
    );
    assert_ok(&resp, &rpc);
    no_permission_request(&frames);
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], false, "{end}");
    assert_eq!(end["tool_call_id"], api.call_id(1).as_str(), "{end}");
    let reply = reply_after_tools(&frames);
    assert!(
        reply.starts_with("tool result:") && reply.contains("from the http fake"),
        "{reply:?}"
    );
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 2, "two rounds: {reqs:#?}");
    let sent = results_sent(api, &reqs[1]["body"]);
    assert_eq!(sent.len(), 1, "{:#}", reqs[1]["body"]);
    assert_eq!(sent[0].0, api.call_id(1));
    assert!(sent[0].1.contains("from the http fake"), "{sent:?}");
    assert!(results_sent(api, &reqs[0]["body"]).is_empty());
}

#[test]
fn http_anthropic_tool_round_trip() {
    http_tool_round_trip(Api::Anthropic);
}

#[test]
fn http_openai_tool_round_trip() {
    http_tool_round_trip(Api::OpenAi);
}

fn http_parallel_calls(api: Api) {
    let d = Dirs::new();
    d.put("a.txt", "twice\n");
    let srv = FakeServer::start();
    let mut rpc = http_host(api, &srv, &d.cwd);
    let (frames, resp) = prompt(
        &mut rpc,
        "1",
        r#"both [[tool=read tools=2 input={"path":"a.txt"}]]"#,
    );
    assert_ok(&resp, &rpc);
    let ends: Vec<String> = of_type(&frames, "tool_execution_end")
        .iter()
        .map(|f| {
            assert_eq!(f["is_error"], false, "{f}");
            f["tool_call_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ends, [api.call_id(1), api.call_id(2)]);
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 2, "{reqs:#?}");
    let sent = results_sent(api, &reqs[1]["body"]);
    let ids: Vec<&str> = sent.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        ids,
        [api.call_id(1), api.call_id(2)],
        "{:#}",
        reqs[1]["body"]
    );
    assert!(sent.iter().all(|(_, c)| c.contains("twice")), "{sent:?}");
    assert_eq!(
        reply_after_tools(&frames).matches("tool result:").count(),
        2
    );
}

#[test]
fn http_anthropic_parallel_calls() {
    http_parallel_calls(Api::Anthropic);
}

#[test]
fn http_openai_parallel_calls() {
    http_parallel_calls(Api::OpenAi);
}

/// Regression (code review): `--permission-mode` given to a new session was
/// not recorded, so `--continue` of that session fell back to `ask`.
#[test]
fn a_mode_given_at_start_survives_continue() {
    let d = Dirs::new();
    let data = tempfile::tempdir().unwrap();
    let mut rpc = echo_spawn(&d.cwd, "accept-edits").data(data.path()).start();
    let id = rpc.ready()["session_id"].as_str().unwrap().to_owned();
    run_ok(&mut rpc, "1", "hello");
    shutdown(rpc);

    let mut again = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .ext("echo")
        .data(data.path())
        .arg("--cwd")
        .arg(d.cwd.to_str().unwrap())
        .arg("--continue")
        .arg(&id)
        .start();
    again.ready();
    let st = again.call(json!({"type": "get_state"}), "s");
    assert_eq!(st["permission_mode"], "accept-edits", "{st}");
    shutdown(again);
}
