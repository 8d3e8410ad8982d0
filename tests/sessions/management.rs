//! Finding and managing stored sessions: `--continue` without an id picks
//! the latest session *of the working directory*, a resumed session keeps
//! its own working directory, `rpc sessions [--all] [--json]` lists,
//! `rpc sessions rm` and the `delete_session` command delete, and
//! `rpc --help` explains the protocol.

use std::path::Path;
use std::time::Duration;

use crate::common::*;
use serde_json::{json, Value};

/// A finished session with one prompt, started in `cwd`; returns its id.
fn session_in(data: &Path, cwd: &Path, text: &str) -> String {
    let mut h = Spawn::new()
        .data(data)
        .ext("echo")
        .model(ECHO)
        .arg("--cwd")
        .arg(cwd.to_str().expect("utf-8 dir"))
        .start();
    let id = h.ready()["session_id"].as_str().expect("id").to_owned();
    ok_prompt(&mut h, "1", text);
    finish(h);
    // Keep modification times apart even on coarse clocks.
    std::thread::sleep(Duration::from_millis(30));
    id
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn continue_without_an_id_resumes_the_latest_session_of_the_working_directory() {
    let data = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let older_in_a = session_in(data.path(), a.path(), "first in a");
    let newer_in_a = session_in(data.path(), a.path(), "second in a");
    let newest_anywhere = session_in(data.path(), b.path(), "only in b");

    let mut h = Spawn::new()
        .data(data.path())
        .ext("echo")
        .arg("--continue")
        .arg("--cwd")
        .arg(a.path().to_str().unwrap())
        .start();
    let ready = h.ready();
    assert_eq!(ready["session_id"], newer_in_a.as_str(), "{ready}");
    assert_ne!(ready["session_id"], older_in_a.as_str());
    assert_ne!(ready["session_id"], newest_anywhere.as_str());
    finish(h);

    // No session in c: a clear error that says how to find the others.
    let mut h = Spawn::new()
        .data(data.path())
        .arg("--continue")
        .arg("--cwd")
        .arg(c.path().to_str().unwrap())
        .start();
    let err = h.recv();
    assert_eq!(err["code"], "not_found", "{err}");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("rpc sessions --all") && message.contains(&canonical(c.path())),
        "{message}"
    );
    assert_eq!(
        h.wait(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(2)
    );
}

#[test]
fn a_resumed_session_keeps_its_own_working_directory() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let id = session_in(data.path(), home.path(), "where was I");

    // Resumed from another directory (the test's own), without --cwd.
    let mut h = Spawn::new()
        .data(data.path())
        .ext("echo")
        .arg("--continue")
        .arg(&id)
        .start();
    assert_eq!(h.ready()["cwd"], canonical(home.path()).as_str());
    let state = get_state(&mut h, "s");
    assert_eq!(state["cwd"], canonical(home.path()).as_str());
    finish(h);

    // --cwd wins.
    let mut h = Spawn::new()
        .data(data.path())
        .ext("echo")
        .arg("--continue")
        .arg(&id)
        .arg("--cwd")
        .arg(elsewhere.path().to_str().unwrap())
        .start();
    assert_eq!(h.ready()["cwd"], canonical(elsewhere.path()).as_str());
    finish(h);

    // Its directory gone: the current one, and stderr says so.
    let gone = canonical(home.path());
    drop(home);
    let mut h = Spawn::new()
        .data(data.path())
        .ext("echo")
        .arg("--continue")
        .arg(&id)
        .start();
    let ready = h.ready();
    let here = canonical(&std::env::current_dir().unwrap());
    assert_eq!(ready["cwd"], here.as_str(), "{ready}");
    h.close_stdin();
    assert!(h.wait(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let stderr = h.stderr();
    assert!(
        stderr.contains(&gone) && stderr.contains("no longer"),
        "{stderr}"
    );
}

#[test]
fn rpc_sessions_lists_the_working_directory_or_all_as_a_table_or_json() {
    let data = tempfile::tempdir().unwrap();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let in_a = session_in(data.path(), a.path(), "alpha task\nsecond line");
    let in_b = session_in(data.path(), b.path(), "beta task");

    let out = rpc_cli(
        data.path(),
        &["sessions", "--cwd", a.path().to_str().unwrap()],
    );
    assert!(out.status.success());
    let table = text(&out.stdout);
    assert!(table.starts_with("ID"), "{table}");
    assert!(
        table.contains(&in_a) && table.contains("alpha task"),
        "{table}"
    );
    assert!(table.contains(ECHO) && !table.contains(&in_b), "{table}");
    assert!(
        !table.contains("second line"),
        "the title is the first line: {table}"
    );

    let out = rpc_cli(data.path(), &["sessions", "--all"]);
    let table = text(&out.stdout);
    assert!(table.contains(&in_a) && table.contains(&in_b), "{table}");
    assert!(
        table.contains(&canonical(b.path())),
        "--all shows the cwd: {table}"
    );
    // Newest first.
    assert!(table.find(&in_b) < table.find(&in_a), "{table}");

    let out = rpc_cli(data.path(), &["sessions", "--all", "--json"]);
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("--json is JSON");
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["session_id"], in_b.as_str());
    assert_eq!(listed[0]["message_count"], 2);
    assert_eq!(listed[0]["cwd"], canonical(b.path()).as_str());

    let empty = tempfile::tempdir().unwrap();
    let out = rpc_cli(
        data.path(),
        &["sessions", "--cwd", empty.path().to_str().unwrap()],
    );
    assert!(
        text(&out.stdout).contains("No sessions in"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn rpc_sessions_rm_deletes_but_never_a_session_in_use() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let free = session_in(data.path(), cwd.path(), "done with this");
    let file = data.path().join("sessions").join(format!("{free}.jsonl"));
    assert!(file.exists());

    // One in use by a running host.
    let mut busy = Spawn::new()
        .data(data.path())
        .ext("echo")
        .model(ECHO)
        .start();
    let busy_id = busy.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut busy, "1", "still working");

    let out = rpc_cli(
        data.path(),
        &["sessions", "rm", &free, &busy_id, "not-a-session"],
    );
    assert_eq!(out.status.code(), Some(1), "a failure exits 1");
    assert_eq!(text(&out.stdout).trim(), format!("deleted {free}"));
    let err = text(&out.stderr);
    assert!(err.contains(&busy_id) && err.contains("in use"), "{err}");
    assert!(err.contains("not-a-session"), "{err}");
    assert!(!file.exists(), "the free session is gone");
    assert!(data
        .path()
        .join("sessions")
        .join(format!("{busy_id}.jsonl"))
        .exists());
    finish(busy);
}

#[test]
fn delete_session_deletes_another_session_and_refuses_the_rest() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let old = session_in(data.path(), cwd.path(), "old work");

    let mut other = Spawn::new()
        .data(data.path())
        .ext("echo")
        .model(ECHO)
        .start();
    let held = other.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut other, "1", "held by another process");

    let mut h = Spawn::new()
        .data(data.path())
        .ext("echo")
        .model(ECHO)
        .start();
    let mine = h.ready()["session_id"].as_str().unwrap().to_owned();
    let cases = [
        (mine.as_str(), "busy"),
        ("no-such-session", "not_found"),
        ("../escape", "invalid_params"),
        (held.as_str(), "session_locked"),
    ];
    for (n, (id, code)) in cases.iter().enumerate() {
        let e = h.call(
            json!({"type": "delete_session", "session_id": id}),
            &format!("d{n}"),
        );
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some(*code)),
            "{e}"
        );
        assert_eq!(e["command"], "delete_session");
    }
    let r = call_ok(
        &mut h,
        json!({"type": "delete_session", "session_id": old}),
        "ok",
    );
    assert_eq!(r["session_id"], old.as_str());
    let listed = call_ok(&mut h, json!({"type": "list_sessions"}), "l");
    let ids: Vec<&str> = listed["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["session_id"].as_str())
        .collect();
    assert!(
        !ids.contains(&old.as_str()) && ids.contains(&held.as_str()),
        "{listed}"
    );
    finish(h);
    finish(other);
}

#[test]
fn an_unknown_continue_id_points_to_rpc_sessions() {
    let data = tempfile::tempdir().unwrap();
    let mut h = Spawn::new()
        .data(data.path())
        .arg("--continue")
        .arg("nope")
        .start();
    let err = h.recv();
    assert_eq!(err["code"], "not_found");
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .contains("rpc sessions"),
        "{err}"
    );
}

#[test]
fn help_explains_the_protocol() {
    let data = tempfile::tempdir().unwrap();
    let out = rpc_cli(data.path(), &["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for needle in [
        "SPEC.md",
        "Commands: prompt",
        "delete_session",
        "permission_request",
        "agent_end",
        "rpc schema",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

/// Every provider key variable the host knows, set empty (= unset), so that
/// the machine running the tests cannot make a model available.
const KEY_VARS: &[&str] = &[
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
    "DEEPSEEK_API_KEY",
    "MISTRAL_API_KEY",
    "XAI_API_KEY",
];

fn without_keys(mut s: Spawn, config_home: &Path) -> Spawn {
    for var in KEY_VARS {
        s = s.env(var, "");
    }
    s.env("XDG_CONFIG_HOME", config_home.to_str().expect("utf-8 dir"))
}

/// The prompt's `error` frame (asserting no turn started).
fn refused_prompt(h: &mut Rpc, id: &str, code: &str) -> String {
    let (frames, err) = prompt(h, id, "hello");
    assert_eq!(err["type"], "error", "refused before it starts: {err}");
    assert_eq!(err["code"], code, "{err}");
    assert!(
        frames.iter().all(|f| f["type"] != "agent_start"),
        "{frames:?}"
    );
    err["message"].as_str().expect("message").to_owned()
}

fn session_files(h: &Rpc) -> Vec<String> {
    match std::fs::read_dir(h.sessions_dir()) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".jsonl"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn a_prompt_that_cannot_reach_a_model_is_refused_and_stores_nothing() {
    let config_home = tempfile::tempdir().unwrap();

    // No model at all: not_found, saying what to do.
    let mut h = without_keys(Spawn::new(), config_home.path()).start();
    h.ready();
    let msg = refused_prompt(&mut h, "1", "not_found");
    assert!(
        msg.starts_with("no model is available: set ANTHROPIC_API_KEY"),
        "{msg}"
    );
    assert!(msg.contains("set_model"), "{msg}");
    let state = get_state(&mut h, "st");
    assert_eq!(state["message_count"], 0, "{state}");
    finish(h);

    // A piped run: the process ends, and no session file is left.
    let data = tempfile::tempdir().unwrap();
    let mut h = without_keys(Spawn::new().data(data.path()), config_home.path()).start();
    h.ready();
    h.send(json!({"type": "prompt", "id": "p", "message": "hi"}));
    h.close_stdin();
    let frames = h.drain(READ_TIMEOUT);
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "error" && f["id"] == "p" && f["code"] == "not_found"),
        "{frames:?}"
    );
    assert!(h.wait(READ_TIMEOUT).is_some_and(|s| s.success()));
    assert!(session_files(&h).is_empty(), "{:?}", session_files(&h));

    // A missing key: provider_error naming the variable.
    let mut h = without_keys(Spawn::new().model("gpt-4o-mini"), config_home.path()).start();
    h.ready();
    let msg = refused_prompt(&mut h, "1", "provider_error");
    assert!(msg.contains("OPENAI_API_KEY is not set"), "{msg}");
    assert!(session_files(&h).is_empty(), "{:?}", session_files(&h));
    finish(h);

    // A model its extension does not offer: not_found, naming those it does.
    let mut h = without_keys(
        Spawn::new().ext("echo").model("echo:echo:nope"),
        config_home.path(),
    )
    .start();
    h.ready();
    let msg = refused_prompt(&mut h, "1", "not_found");
    assert!(msg.contains("has no model \"nope\""), "{msg}");
    assert!(
        msg.contains("it has: echo-1"),
        "names the models it offers: {msg}"
    );
    assert!(session_files(&h).is_empty(), "{:?}", session_files(&h));
    // Once a model that exists is picked, prompts run (and are stored).
    call_ok(&mut h, json!({"type": "set_model", "model": ECHO}), "m");
    assert_eq!(ok_prompt(&mut h, "2", "now it runs"), "now it runs");
    assert_eq!(session_files(&h).len(), 1);
    finish(h);
}
