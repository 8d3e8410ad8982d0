//! Slash commands on the native protocol: discovery (`get_commands`), the
//! expansion the model is sent (read back through the echo provider's
//! `[[show=messages]]`), the stored entry, and what is left alone.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::{json, Value};

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A repository holding a project command (and a namespaced one) in its
/// root and a nested working directory; a user command in the config
/// home. Returns (temp dir, working dir, config home).
fn project() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    fs::create_dir_all(repo.join(".git")).unwrap();
    write(
        &repo.join(".claude/commands/review.md"),
        "---\ndescription: Review a file\nargument-hint: <file> [focus]\n---\n\nReview $1, focusing on $2. Request: $ARGUMENTS\n",
    );
    write(
        &repo.join(".agents/commands/fe/build.md"),
        "Build the frontend.\n",
    );
    let cwd = repo.join("app");
    fs::create_dir_all(&cwd).unwrap();
    let config = dir.path().join("config");
    write(
        &config.join("agent-rpc/commands/mine.md"),
        "Mine: $ARGUMENTS",
    );
    (dir, cwd, config)
}

fn start(cwd: &Path, config: &Path) -> Rpc {
    let mut rpc = Spawn::new()
        .ext("echo")
        .model("echo:echo:echo-1")
        .arg("--cwd")
        .arg(cwd.to_str().unwrap())
        .env("XDG_CONFIG_HOME", config.to_str().unwrap())
        .start();
    rpc.ready();
    rpc
}

/// The messages the echo model was sent, from its `[[show=messages]]` reply.
fn sent(frames: &[Value]) -> Value {
    serde_json::from_str(&text_of(frames)).expect("the echo is JSON")
}

#[test]
fn get_commands_lists_project_user_and_builtin_commands() {
    let (_dir, cwd, config) = project();
    let mut rpc = start(&cwd, &config);
    let list = call_ok(&mut rpc, json!({"type": "get_commands"}), "c");
    assert_eq!(
        list["commands"],
        json!([
            {"name": "compact", "description": "Summarise the older conversation to free context", "argument_hint": "[instructions]", "source": "builtin"},
            {"name": "fe:build", "description": "Build the frontend.", "argument_hint": null, "source": "project"},
            {"name": "mine", "description": "Mine: $ARGUMENTS", "argument_hint": null, "source": "user"},
            {"name": "review", "description": "Review a file", "argument_hint": "<file> [focus]", "source": "project"},
            {"name": "skills", "description": "List the Agent Skills available in this session", "argument_hint": null, "source": "builtin"},
        ])
    );
    finish(rpc);
}

#[test]
fn a_command_with_arguments_reaches_the_model_expanded_and_is_stored_with_its_line() {
    let (dir, cwd, config) = project();
    let data = dir.path().join("data");
    let mut rpc = Spawn::new()
        .ext("echo")
        .model("echo:echo:echo-1")
        .arg("--cwd")
        .arg(cwd.to_str().unwrap())
        .env("XDG_CONFIG_HOME", config.to_str().unwrap())
        .data(&data)
        .start();
    let ready = rpc.ready();
    let typed = "/review src/a.rs \"error paths\" [[show=messages]]";
    let (frames, resp) = prompt(&mut rpc, "p", typed);
    assert_ok(&resp, &rpc);
    let expansion =
        "Review src/a.rs, focusing on error paths. Request: src/a.rs \"error paths\" [[show=messages]]";
    assert_eq!(
        sent(&frames),
        json!([{"role": "user", "content": expansion}])
    );
    // A follow-up expands the same way; an unknown /word goes as typed.
    rpc.send(json!({"type": "follow_up", "id": "f", "message": "/mine now [[show=messages]]"}));
    let (frames, _) = rpc.until("follow-up", |f| is_answer_to(f, "f"));
    assert_eq!(sent(&frames)[2]["content"], "Mine: now [[show=messages]]");
    let (frames, _) = prompt(&mut rpc, "u", "/nope keep [[show=messages]]");
    assert_eq!(sent(&frames)[4]["content"], "/nope keep [[show=messages]]");

    let id = ready["session_id"].as_str().unwrap();
    let entries = read_jsonl(&session_file(&data, id));
    let users: Vec<&Value> = entries
        .iter()
        .filter(|e| e["type"] == "message" && e["message"]["role"] == "user")
        .collect();
    assert_eq!(users[0]["message"]["content"], expansion);
    assert_eq!(
        users[0]["command"],
        json!({"name": "review", "arguments": "src/a.rs \"error paths\" [[show=messages]]", "text": typed})
    );
    assert_eq!(users[1]["command"]["name"], "mine");
    assert!(users[2].get("command").is_none(), "{}", users[2]);
    // The session's title is what was typed, not the expansion.
    let sessions = call_ok(&mut rpc, json!({"type": "list_sessions"}), "l");
    assert_eq!(sessions["sessions"][0]["title"], typed);
    finish(rpc);
}

#[test]
fn skills_asks_the_model_and_a_broken_command_file_is_skipped() {
    let (_dir, cwd, config) = project();
    let bad = cwd.join(".claude/commands/huge.md");
    write(&bad, &"x".repeat(300 * 1024));
    let mut rpc = start(&cwd, &config);
    let (frames, resp) = prompt(&mut rpc, "s", "/skills [[show=messages]]");
    assert_ok(&resp, &rpc);
    let text = sent(&frames)[0]["content"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with("List the Agent Skills available to you"),
        "{text}"
    );
    let list = call_ok(&mut rpc, json!({"type": "get_commands"}), "c");
    assert!(!list.to_string().contains("\"huge\""), "{list}");
    assert!(rpc.stderr().contains("huge.md"), "{}", rpc.stderr());
    finish(rpc);
}
