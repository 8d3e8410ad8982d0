//! Policy hooks (`--hooks`, SPEC §9.6) in Claude Code's shape, against the
//! real binary: a Python `PreToolUse` hook that blocks `rm -rf`, one that
//! allows through JSON (never wider than read-only mode), `UserPromptSubmit`
//! adding context and refusing a prompt, a `Stop` hook sending the model
//! back once (and at most three times), a hanging hook killed at its
//! timeout with its whole group, the project's `.claude/settings.json`
//! ignored unless trusted, a bad file stopping start-up, `SessionStart`,
//! `PreCompact` and `SubagentStop` (fired in the parent, no `Stop` in the
//! child), and the time a trivial hook run takes.

use super::*;
use common::procfs::wait_gone;

/// Writes `files` (name, text) into `root` and a hooks file naming them;
/// `{root}` in the hooks JSON is replaced by `root`'s path.
fn hooks_file(root: &Path, hooks: &str, files: &[(&str, &str)]) -> PathBuf {
    for (name, text) in files {
        std::fs::write(root.join(name), text).expect("write hook script");
    }
    let path = root.join("hooks.json");
    let root = root.to_str().expect("utf-8 root");
    std::fs::write(&path, hooks.replace("{root}", root)).expect("write hooks file");
    path
}

/// An echo host in `dirs.cwd` with `--hooks hooks`, not yet started.
fn hooked_spawn(dirs: &Dirs, mode: &str, hooks: &Path) -> Spawn {
    echo_spawn(&dirs.cwd, mode)
        .arg("--hooks")
        .arg(hooks.to_str().expect("utf-8"))
}

fn start_hooked(dirs: &Dirs, mode: &str, hooks: &Path) -> Rpc {
    let mut rpc = hooked_spawn(dirs, mode, hooks).start();
    rpc.ready();
    rpc
}

/// Fresh `Dirs` and a ready host in `mode` running the hooks file
/// `hooks` (with `files` beside it, as `hooks_file` writes them).
fn hooked(mode: &str, hooks: &str, files: &[(&str, &str)]) -> (Dirs, Rpc) {
    let dirs = Dirs::new();
    let path = hooks_file(dirs.root.path(), hooks, files);
    let rpc = start_hooked(&dirs, mode, &path);
    (dirs, rpc)
}

/// The process ids a hook wrote, one a line, into `name` in the cwd.
fn pids_in(dirs: &Dirs, name: &str) -> Vec<u32> {
    dirs.get(name)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn hook_frames<'a>(frames: &'a [Value], event: &str) -> Vec<&'a Value> {
    frames
        .iter()
        .filter(|f| f["type"] == "hook" && f["event"] == event)
        .collect()
}

const BLOCK_RM: &str = r#"import json, sys
event = json.load(sys.stdin)
assert event["hook_event_name"] == "PreToolUse", event
if "rm -rf" in event["tool_input"].get("command", ""):
    print("rm -rf is not allowed here", file=sys.stderr)
    sys.exit(2)
"#;

#[test]
fn a_python_pre_tool_use_hook_blocks_rm_rf_and_the_turn_goes_on() {
    let (dirs, mut rpc) = hooked(
        "allow-all",
        r#"{"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [
            {"type": "command", "command": "python3 {root}/block_rm.py"}]}]}}"#,
        &[("block_rm.py", BLOCK_RM)],
    );
    std::fs::create_dir(dirs.cwd.join("precious")).expect("mkdir");
    let frames = run_ok(&mut rpc, "p1", &bash("rm -rf precious"));
    the_tool_failed_with(&frames, "rm -rf is not allowed here");
    assert!(dirs.cwd.join("precious").is_dir(), "the call must not run");
    let hook = hook_frames(&frames, "PreToolUse");
    assert_eq!(hook.len(), 1, "{frames:#?}");
    assert_eq!(hook[0]["exit_code"], 2, "{}", hook[0]);
    assert_eq!(hook[0]["decision"], "block", "{}", hook[0]);
    assert_eq!(hook[0]["prompt_id"], "p1", "{}", hook[0]);
    // The turn went on: the model saw the refusal and answered.
    assert!(reply_after_tools(&frames).contains("tool result:"));
    // Another command passes the same hook.
    let frames = run_ok(&mut rpc, "p2", &bash("echo fine"));
    assert_eq!(the_tool_end(&frames)["is_error"], false);
    shutdown(rpc);
}

const ALLOW: &str = r#"import json, sys
json.load(sys.stdin)
print(json.dumps({"hookSpecificOutput": {"hookEventName": "PreToolUse",
    "permissionDecision": "allow", "permissionDecisionReason": "trusted"}}))
"#;

#[test]
fn a_hook_allowing_through_json_skips_the_question_but_not_read_only() {
    let dirs = Dirs::new();
    let hooks = hooks_file(
        dirs.root.path(),
        r#"{"hooks": {"PreToolUse": [{"hooks": [
            {"type": "command", "command": "python3 {root}/allow.py"}]}]}}"#,
        &[("allow.py", ALLOW)],
    );
    let mut rpc = start_hooked(&dirs, "ask", &hooks);
    let frames = run_ok(&mut rpc, "p1", &bash("echo allowed-by-hook"));
    no_permission_request(&frames);
    let end = the_tool_end(&frames);
    assert!(result_of(&end).contains("allowed-by-hook"), "{end}");
    assert_eq!(hook_frames(&frames, "PreToolUse")[0]["decision"], "allow");
    shutdown(rpc);

    // In read-only mode a write stays refused whatever the hook says.
    let mut rpc = start_hooked(&dirs, "read-only", &hooks);
    let write = call("write", &json!({"path": "x.txt", "content": "no"}));
    let frames = run_ok(&mut rpc, "p1", &write);
    no_permission_request(&frames);
    the_tool_failed_with(&frames, "read-only");
    assert_eq!(dirs.get("x.txt"), None);
    shutdown(rpc);
}

const PROMPT_HOOK: &str = r#"import json, sys
event = json.load(sys.stdin)
if "forbidden" in event["prompt"]:
    print("that word is not allowed", file=sys.stderr)
    sys.exit(2)
print("EXTRA-CONTEXT-42 for " + event["session_id"][:4])
"#;

#[test]
fn user_prompt_submit_adds_context_or_refuses_the_prompt() {
    let (_dirs, mut rpc) = hooked(
        "ask",
        r#"{"hooks": {"UserPromptSubmit": [{"hooks": [
            {"type": "command", "command": "python3 {root}/prompt.py"}]}]}}"#,
        &[("prompt.py", PROMPT_HOOK)],
    );
    // The request the provider got carries the hook's text.
    let frames = run_ok(&mut rpc, "p1", "hello [[show=messages]]");
    assert!(
        text_of(&frames).contains("EXTRA-CONTEXT-42"),
        "{}",
        text_of(&frames)
    );
    let hook = hook_frames(&frames, "UserPromptSubmit");
    assert_eq!(hook.len(), 1, "{frames:#?}");
    assert_eq!(hook[0]["exit_code"], 0);
    assert!(hook[0]["duration_ms"].is_u64());
    // A refused prompt is an error naming the hook, and nothing is stored.
    let (_, resp) = prompt(&mut rpc, "p2", "something forbidden");
    assert_eq!(resp["type"], "error", "{resp}");
    assert_eq!(resp["code"], "hook_blocked", "{resp}");
    let message = resp["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("prompt.py") && message.contains("that word is not allowed"),
        "{resp}"
    );
    let stored = messages(&mut rpc, "m");
    assert_eq!(
        stored.len(),
        2,
        "only the first prompt and its answer: {stored:#?}"
    );
    shutdown(rpc);
}

const STOP_ONCE: &str = r#"import json, sys
event = json.load(sys.stdin)
if not event["stop_hook_active"]:
    print("KEEP-GOING please", file=sys.stderr)
    sys.exit(2)
"#;

#[test]
fn a_stop_hook_sends_the_model_back_once_and_at_most_three_times() {
    let (dirs, mut rpc) = hooked(
        "ask",
        r#"{"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": "python3 {root}/stop.py"}]}]}}"#,
        &[("stop.py", STOP_ONCE)],
    );
    let frames = run_ok(&mut rpc, "p1", "first answer");
    // The echo model answers the hook's message in a second round.
    let text = text_of(&frames);
    assert!(
        text.starts_with("first answer") && text.contains("KEEP-GOING please"),
        "{text}"
    );
    let stops = hook_frames(&frames, "Stop");
    assert_eq!(stops.len(), 2, "{frames:#?}");
    assert_eq!(stops[0]["decision"], "block");
    assert!(stops[1].get("decision").is_none(), "{}", stops[1]);
    shutdown(rpc);

    // A hook that always blocks gets three continuations, then the turn ends.
    let always = hooks_file(
        dirs.root.path(),
        r#"{"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": "echo again >&2; exit 2"}]}]}}"#,
        &[],
    );
    let mut rpc = start_hooked(&dirs, "ask", &always);
    let frames = run_ok(&mut rpc, "p1", "go");
    assert_eq!(hook_frames(&frames, "Stop").len(), 3, "{frames:#?}");
    assert_eq!(text_of(&frames), "goagainagainagain");
    shutdown(rpc);
}

#[test]
fn a_hanging_hook_is_killed_with_its_group_at_its_timeout() {
    let (dirs, mut rpc) = hooked(
        "allow-all",
        r#"{"hooks": {"PreToolUse": [{"matcher": "bash", "hooks": [
            {"type": "command", "timeout": 1,
             "command": "echo $$ > hang.pids; sleep 60 & echo $! >> hang.pids; wait"}]}]}}"#,
        &[],
    );
    let started = Instant::now();
    let frames = run_ok(&mut rpc, "p1", &bash("echo after-the-hook"));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let hook = hook_frames(&frames, "PreToolUse");
    assert!(hook[0].get("exit_code").is_none(), "{}", hook[0]);
    assert!(
        hook[0]["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{}",
        hook[0]
    );
    // Non-blocking: the call ran.
    let end = the_tool_end(&frames);
    assert!(result_of(&end).contains("after-the-hook"), "{end}");
    let pids = pids_in(&dirs, "hang.pids");
    assert_eq!(pids.len(), 2, "{pids:?}");
    assert!(
        wait_gone(&pids, Duration::from_secs(3)).is_empty(),
        "{pids:?} survived"
    );
    shutdown(rpc);
}

#[test]
fn the_projects_own_hooks_run_only_when_trusted() {
    let dirs = Dirs::new();
    std::fs::create_dir(dirs.cwd.join(".claude")).expect("mkdir .claude");
    dirs.put(
        ".claude/settings.json",
        r#"{"permissions": {}, "hooks": {"UserPromptSubmit": [{"hooks": [
            {"type": "command", "command": "echo PROJECT-HOOK-RAN"}]}]}}"#,
    );
    let mut rpc = start(&dirs.cwd, "ask");
    let frames = run_ok(&mut rpc, "p1", "[[show=messages]]");
    assert!(!text_of(&frames).contains("PROJECT-HOOK-RAN"));
    assert!(hook_frames(&frames, "UserPromptSubmit").is_empty());
    shutdown(rpc);

    let mut rpc = echo_spawn(&dirs.cwd, "ask")
        .arg("--trust-project-hooks")
        .start();
    rpc.ready();
    let frames = run_ok(&mut rpc, "p1", "[[show=messages]]");
    assert!(
        text_of(&frames).contains("PROJECT-HOOK-RAN"),
        "{}",
        text_of(&frames)
    );
    shutdown(rpc);
}

#[test]
fn a_bad_hooks_file_stops_start_up_naming_the_file_and_the_path() {
    let dirs = Dirs::new();
    let hooks = hooks_file(
        dirs.root.path(),
        r#"{"hooks": {"PreToolUse": [{"matcher": "(", "hooks": []}]}}"#,
        &[],
    );
    let mut rpc = hooked_spawn(&dirs, "ask", &hooks).start();
    let status = rpc.wait(Duration::from_secs(10)).expect("exits");
    assert!(!status.success());
    let stderr = rpc.stderr();
    assert!(
        stderr.contains(hooks.to_str().expect("utf-8"))
            && stderr.contains("hooks.PreToolUse[0].matcher"),
        "{stderr}"
    );
}

/// What one run of a trivial hook (`true`) costs, from its `hook` frame:
/// printed for the record (`cargo test hooks -- --nocapture`).
#[test]
fn the_time_a_trivial_hook_run_takes() {
    let (_dirs, mut rpc) = hooked(
        "allow-all",
        r#"{"hooks": {"PreToolUse": [{"hooks": [{"type": "command", "command": "true"}]}]}}"#,
        &[],
    );
    let n = 20;
    let names = vec!["bash"; n].join(",");
    let frames = run_ok(&mut rpc, "p1", &call(&names, &json!({"command": "true"})));
    let mut ms: Vec<u64> = hook_frames(&frames, "PreToolUse")
        .iter()
        .filter_map(|f| f["duration_ms"].as_u64())
        .collect();
    assert_eq!(ms.len(), n, "{frames:#?}");
    ms.sort_unstable();
    eprintln!(
        "trivial hook run: median {} ms, max {} ms over {n} runs",
        ms[n / 2],
        ms[n - 1]
    );
    assert!(ms[n / 2] < 1000, "{ms:?}");
    shutdown(rpc);
}

#[test]
fn session_start_context_reaches_the_first_prompt_only() {
    let (_dirs, mut rpc) = hooked(
        "ask",
        r#"{"hooks": {"SessionStart": [{"matcher": "startup", "hooks": [
            {"type": "command", "command": "echo SESSION-CONTEXT-7"}]}]}}"#,
        &[],
    );
    let frames = run_ok(&mut rpc, "p1", "one [[show=messages]]");
    assert!(
        text_of(&frames).contains("SESSION-CONTEXT-7"),
        "{}",
        text_of(&frames)
    );
    let frames = run_ok(&mut rpc, "p2", "two");
    assert_eq!(text_of(&frames), "two");
    let stored = messages(&mut rpc, "m");
    let first = message_text(&stored[0]);
    assert!(first.contains("SESSION-CONTEXT-7"), "{first}");
    assert!(!message_text(&stored[2]).contains("SESSION-CONTEXT-7"));
    shutdown(rpc);
}

#[test]
fn pre_compact_sees_a_manual_compaction() {
    let (dirs, mut rpc) = hooked(
        "ask",
        r#"{"hooks": {"PreCompact": [{"matcher": "manual", "hooks": [
            {"type": "command", "command": "cat > \"$CLAUDE_PROJECT_DIR/precompact.json\""}]}]}}"#,
        &[],
    );
    run_ok(&mut rpc, "p1", "something to summarise");
    let answer = rpc.call(
        json!({"type": "compact", "instructions": "keep names"}),
        "c1",
    );
    // The history is too short to shrink; the hook ran before that was
    // known, as it does before every compaction.
    assert!(
        answer["ok"] == true || answer["code"] == "not_compacted",
        "{answer}"
    );
    let input: Value =
        serde_json::from_str(&dirs.get("precompact.json").unwrap_or_default()).expect("the input");
    assert_eq!(input["hook_event_name"], "PreCompact", "{input}");
    assert_eq!(input["trigger"], "manual", "{input}");
    assert_eq!(input["custom_instructions"], "keep names", "{input}");
    assert_eq!(input["cwd"], dirs.cwd.to_str().expect("utf-8"), "{input}");
    shutdown(rpc);
}

#[test]
fn subagent_stop_fires_in_the_parent_and_the_child_fires_no_stop() {
    let (dirs, mut rpc) = hooked(
        "allow-all",
        r#"{"hooks": {
            "SubagentStop": [{"hooks": [{"type": "command", "command": "echo checked by hook >&2; exit 2"}]}],
            "Stop": [{"hooks": [{"type": "command", "command": "echo stop >> \"$CLAUDE_PROJECT_DIR/stops.log\""}]}]}}"#,
        &[],
    );
    let input = json!({"description": "child", "prompt": "hello from the child"});
    let frames = run_ok(&mut rpc, "p1", &call("task", &input));
    let end = frames
        .iter()
        .find(|f| f["type"] == "tool_execution_end" && f.get("parent_tool_call_id").is_none())
        .expect("the task call's end");
    assert!(
        result_of(end).contains("[SubagentStop hook] checked by hook"),
        "{end}"
    );
    assert_eq!(hook_frames(&frames, "SubagentStop").len(), 1, "{frames:#?}");
    assert_eq!(
        dirs.get("stops.log").as_deref(),
        Some("stop\n"),
        "only the parent's turn stops"
    );
    shutdown(rpc);
}

#[test]
fn a_slow_prompt_hook_holds_only_its_prompt_and_abort_kills_it() {
    let (dirs, mut rpc) = hooked(
        "allow-all",
        r#"{"hooks": {"UserPromptSubmit": [{"hooks": [
            {"type": "command", "timeout": 30,
             "command": "echo $$ > slow.pids; sleep 60 & echo $! >> slow.pids; wait"}]}]}}"#,
        &[],
    );
    rpc.send(json!({"type": "prompt", "id": "p1", "message": "hello"}));
    let deadline = Instant::now() + Duration::from_secs(10);
    let pids: Vec<u32> = loop {
        let pids = pids_in(&dirs, "slow.pids");
        if pids.len() == 2 {
            break pids;
        }
        assert!(Instant::now() < deadline, "the hook never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // The host still reads commands while the hook runs.
    let state = call_ok(&mut rpc, json!({"type": "get_state"}), "s");
    assert_eq!(state["queued"], 1, "{state}");
    let sent = Instant::now();
    let abort = call_ok(&mut rpc, json!({"type": "abort"}), "a");
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(abort["dropped"][0]["message"], "hello", "{abort}");
    // The dropped prompt was answered first.
    let answer = rpc
        .seen
        .iter()
        .find(|f| f["id"] == "p1" && f["type"] == "response")
        .expect("the prompt's answer");
    assert_eq!(answer["cancelled"], true, "{answer}");
    assert!(
        wait_gone(&pids, Duration::from_secs(3)).is_empty(),
        "{pids:?} survived"
    );
    // Nothing of the prompt was stored; the next one runs.
    let messages = call_ok(&mut rpc, json!({"type": "get_messages"}), "m");
    assert_eq!(
        messages["messages"].as_array().map(Vec::len),
        Some(0),
        "{messages}"
    );
    shutdown(rpc);
}

/// A guard written for Claude Code: it reads `tool_input.file_path` and
/// matches `Edit|Write`.
const GUARD_ENV: &str = r#"import json, os, sys
event = json.load(sys.stdin)
path = event["tool_input"]["file_path"]
assert os.path.isabs(path), path
if os.path.basename(path) == ".env":
    print("secrets stay out of .env", file=sys.stderr)
    sys.exit(2)
"#;

#[test]
fn a_claude_code_path_guard_works_unchanged() {
    let (dirs, mut rpc) = hooked(
        "allow-all",
        r#"{"hooks": {"PreToolUse": [{"matcher": "Edit|Write", "hooks": [
            {"type": "command", "command": "python3 {root}/guard.py"}]}]}}"#,
        &[("guard.py", GUARD_ENV)],
    );
    let write =
        |path: &str| format!(r#"go [[tool=write input={{"path": "{path}", "content": "x\n"}}]]"#);
    let frames = run_ok(&mut rpc, "p1", &write(".env"));
    the_tool_failed_with(&frames, "secrets stay out of .env");
    assert!(!dirs.cwd.join(".env").exists());
    let frames = run_ok(&mut rpc, "p2", &write("notes.txt"));
    assert_eq!(the_tool_end(&frames)["is_error"], false);
    assert!(dirs.cwd.join("notes.txt").exists());
    shutdown(rpc);
}
