//! Sessions on disk: resume (`--continue`), the JSONL file format and its
//! permissions, crash safety (SIGKILL at random moments, torn last lines),
//! id validation and locking, `new_session` / `list_sessions`, and where the
//! data directory comes from. Every process is the real `rpc` binary.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{
    call_ok, finish, message_text, messages, ok_prompt, read_jsonl, session_file, Rpc, Spawn, ECHO,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------- helpers

/// A host on `data` with the echo extension (and model, unless resuming).
fn echo_spawn_in(data: &Path) -> Spawn {
    Spawn::new().data(data).ext("echo")
}

/// A start-up that must fail: one `error {id: null, code}` frame, no
/// `ready`, exit status 2, the message repeated on stderr.
fn expect_startup_error(mut rpc: Rpc, code: &str) -> Value {
    let frame = rpc.recv();
    assert_eq!(
        frame["type"], "error",
        "expected a start-up error, got {frame}"
    );
    assert_eq!(frame["id"], Value::Null, "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    let message = frame["message"].as_str().unwrap_or("").to_owned();
    assert!(!message.is_empty(), "the error needs a message: {frame}");
    let status = rpc
        .wait(Duration::from_secs(5))
        .expect("exits after a start-up error");
    assert_eq!(status.code(), Some(2), "start-up failure must exit 2");
    assert!(
        rpc.drain(Duration::from_millis(200)).is_empty(),
        "nothing may follow the start-up error"
    );
    assert!(
        rpc.stderr().contains(&message),
        "the message must be repeated on stderr; stderr:\n{}",
        rpc.stderr()
    );
    frame
}

fn sessions_in(data: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data.join("sessions")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".jsonl"))
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

// ---------------------------------------------------------- round trip

#[test]
fn continue_restores_id_model_history_and_usage_and_appends() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();

    let mut a = echo_spawn_in(data).model(ECHO).start();
    let ready = a.ready();
    let id = ready["session_id"].as_str().unwrap().to_owned();
    assert_eq!(
        ok_prompt(&mut a, "1", "remember this sentence"),
        "remember this sentence"
    );
    let history = messages(&mut a, "msgs");
    let stats = call_ok(&mut a, json!({"type": "get_session_stats"}), "s");
    assert_eq!(stats["turns"], 1);
    assert_eq!(stats["message_count"], 2);
    assert!(stats["input_tokens"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["output_tokens"].as_u64().unwrap() > 0, "{stats}");
    finish(a);

    // No --model: the stored one comes back.
    let mut b = echo_spawn_in(data).arg("--continue").arg(&id).start();
    let ready = b.ready();
    assert_eq!(ready["session_id"], id.as_str());
    assert_eq!(ready["model"], ECHO);
    assert_eq!(ready["message_count"], 2);
    assert_eq!(
        ready["usage"]["input_tokens"], stats["input_tokens"],
        "{ready}"
    );
    assert_eq!(
        ready["usage"]["output_tokens"], stats["output_tokens"],
        "{ready}"
    );
    assert_eq!(
        messages(&mut b, "msgs"),
        history,
        "history must survive a restart unchanged"
    );
    let stats2 = call_ok(&mut b, json!({"type": "get_session_stats"}), "s");
    for k in [
        "session_id",
        "model",
        "message_count",
        "turns",
        "input_tokens",
        "output_tokens",
    ] {
        assert_eq!(stats2[k], stats[k], "get_session_stats.{k} after resume");
    }

    // A further prompt appends to the same session (and to its file).
    assert_eq!(ok_prompt(&mut b, "2", "and this one"), "and this one");
    let after = messages(&mut b, "msgs");
    assert_eq!(after.len(), 4);
    assert_eq!(&after[..2], &history[..]);
    assert_eq!(after[2]["content"], "and this one");
    let stats3 = call_ok(&mut b, json!({"type": "get_session_stats"}), "s");
    assert_eq!(stats3["turns"], 2);
    assert!(stats3["input_tokens"].as_u64() > stats["input_tokens"].as_u64());
    finish(b);

    let mut c = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(c.ready()["message_count"], 4);
    assert_eq!(
        sessions_in(data).len(),
        1,
        "resuming must not create another file"
    );
    finish(c);
}

#[test]
fn continue_without_id_resumes_the_most_recently_updated_session() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut ids = Vec::new();
    for text in ["older session", "newer session"] {
        let mut h = echo_spawn_in(data).model(ECHO).start();
        ids.push(h.ready()["session_id"].as_str().unwrap().to_owned());
        ok_prompt(&mut h, "1", text);
        finish(h);
        // Keep modification times apart even on coarse clocks.
        std::thread::sleep(Duration::from_millis(30));
    }
    let (older, newer) = (&ids[0], &ids[1]);

    let mut h = echo_spawn_in(data).arg("--continue").start();
    assert_eq!(h.ready()["session_id"], newer.as_str());
    finish(h);

    // Touch the older one by continuing it with a prompt.
    let mut h = echo_spawn_in(data).arg("--continue").arg(older).start();
    h.ready();
    ok_prompt(&mut h, "1", "touching the older one");
    finish(h);

    let mut h = echo_spawn_in(data).arg("--continue").start();
    let ready = h.ready();
    assert_eq!(ready["session_id"], older.as_str());
    assert_eq!(ready["message_count"], 4);
    finish(h);
}

#[test]
fn continue_with_model_overrides_and_persists_the_stored_model() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut h = echo_spawn_in(data).model(ECHO).start();
    let id = h.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut h, "1", "hi");
    finish(h);

    let other = "echo:echo:echo-complete";
    let mut h = echo_spawn_in(data)
        .model(other)
        .arg("--continue")
        .arg(&id)
        .start();
    let ready = h.ready();
    assert_eq!(ready["session_id"], id.as_str());
    assert_eq!(ready["model"], other);
    let state = call_ok(&mut h, json!({"type": "get_state"}), "st");
    assert_eq!(state["model"], other);
    // The overriding model is the one actually used.
    assert_eq!(
        ok_prompt(&mut h, "2", "non streaming now"),
        "non streaming now"
    );
    finish(h);

    // The override was recorded in the session.
    let mut h = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(h.ready()["model"], other);
    finish(h);
}

// ---------------------------------------------------------- the file

#[test]
fn session_file_has_header_then_entries_and_private_permissions() {
    let tmp = tempfile::tempdir().unwrap();
    // A data dir that does not exist yet, so the host creates it (and its mode
    // is the host's doing, not tempfile's).
    let data = tmp.path().join("data");
    let mut h = Spawn::new()
        .data(&data)
        .ext("slow")
        .model("slow:slow:slow-1")
        .start();
    let ready = h.ready();
    let id = ready["session_id"].as_str().unwrap().to_owned();
    let path = session_file(&data, &id);

    h.send(json!({"type": "prompt", "id": "1", "message": "persist me first [[n=10]]"}));
    h.until("agent_start", |v| v["type"] == "agent_start");
    // The provider is still streaming (10 × 50 ms): the user message must
    // already be on disk.
    let early = read_jsonl(&path);
    let users: Vec<&Value> = early
        .iter()
        .filter(|e| e["type"] == "message" && e["message"]["role"] == "user")
        .collect();
    assert_eq!(
        users.len(),
        1,
        "user message on disk before the answer: {early:?}"
    );
    assert_eq!(users[0]["message"]["content"], "persist me first [[n=10]]");
    assert!(
        !early.iter().any(|e| e["message"]["role"] == "assistant"),
        "the answer cannot be on disk yet: {early:?}"
    );
    let (_, resp) = h.until("response", |v| v["type"] == "response" && v["id"] == "1");
    assert_eq!(resp["ok"], true, "{resp}");

    let lines = read_jsonl(&path);
    let header = &lines[0];
    assert_eq!(header["type"], "session", "{header}");
    assert_eq!(header["version"], 1, "{header}");
    assert_eq!(header["id"], id.as_str());
    assert_eq!(header["cwd"], ready["cwd"]);
    assert_eq!(header["model"], "slow:slow:slow-1");
    let created = header["created_at"].as_str().expect("created_at string");
    assert!(
        created.contains('T') && created.len() >= 20,
        "RFC 3339 time: {created}"
    );
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "session").count(),
        1,
        "exactly one header"
    );
    let kinds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"message"));
    let assistant = lines
        .iter()
        .find(|l| l["type"] == "message" && l["message"]["role"] == "assistant")
        .expect("assistant message on disk after the turn");
    assert_eq!(message_text(&assistant["message"]), "tok ".repeat(10));
    let turn_end = lines
        .iter()
        .find(|l| l["type"] == "turn_end")
        .expect("usage entry");
    assert!(
        turn_end["usage"]["output_tokens"].as_u64().unwrap() > 0,
        "{turn_end}"
    );

    assert_eq!(mode_of(&path), 0o600, "session file mode");
    assert_eq!(mode_of(&data.join("sessions")), 0o700, "sessions dir mode");
    assert_eq!(mode_of(&data), 0o700, "data dir mode");
    finish(h);
}

#[test]
fn host_closed_without_a_prompt_leaves_no_session_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut h = echo_spawn_in(tmp.path()).model(ECHO).start();
    h.ready();
    call_ok(&mut h, json!({"type": "get_state"}), "st");
    finish(h);
    assert!(
        sessions_in(tmp.path()).is_empty(),
        "{:?}",
        sessions_in(tmp.path())
    );
}

// ---------------------------------------------------------- crash safety

/// Tiny deterministic generator (Knuth's MMIX LCG): reproducible delays
/// without a dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn sigkill_at_random_moments_never_breaks_resume_or_history() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    // Only the extension in use is loaded: fewer Python start-ups competing
    // for the CPU means more kills land mid-stream rather than before it.
    let host = |ext: &str, extra: &[&str]| {
        let mut s = Spawn::new().data(data).ext(ext);
        for a in extra {
            s = s.arg(a);
        }
        s.start()
    };

    // A completed first turn, so the session file exists whatever happens next.
    let mut h = host("flood", &["--model", "flood:flood:flood-1"]);
    let id = h.ready()["session_id"].as_str().unwrap().to_owned();
    assert_eq!(ok_prompt(&mut h, "0", "setup [[n=2]]"), "tok tok ");
    finish(h);

    // (user text, expected full reply) of every prompt known to be in history.
    let mut committed: Vec<(String, String)> = vec![("setup [[n=2]]".into(), "tok tok ".into())];
    // The prompt sent to the last killed process, and whether its agent_start
    // was seen (then its user message must be on disk).
    let mut pending: Option<(String, String, bool)> = None;
    let mut before_start = 0;

    for i in 0..21u64 {
        // Alternate a slow stream (deltas 50 ms apart) and a flood (thousands
        // of deltas at once), so kills land before, during and after writes.
        let (ext, text, reply) = if i % 2 == 0 {
            ("slow", format!("slow {i} [[n=2]]"), "tok ".repeat(2))
        } else {
            (
                "flood",
                format!("flood {i} [[n=1500]]"),
                "tok ".repeat(1500),
            )
        };
        let model = format!("{ext}:{ext}:{ext}-1");
        let mut h = host(ext, &["--model", &model, "--continue", &id]);
        let ready = h.ready();
        assert_eq!(ready["session_id"], id.as_str(), "iteration {i}");

        // Check the history left by the previous kill.
        let history = messages(&mut h, "msgs");
        assert_eq!(ready["message_count"], history.len(), "iteration {i}");
        let users: Vec<String> = history
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| {
                m["content"]
                    .as_str()
                    .expect("string user content")
                    .to_owned()
            })
            .collect();
        let mut expected: Vec<String> = committed.iter().map(|(u, _)| u.clone()).collect();
        if let Some((u, r, seen_start)) = pending.take() {
            if users.len() == expected.len() + 1 {
                expected.push(u.clone());
                committed.push((u, r));
            } else {
                assert!(
                    !seen_start,
                    "iteration {i}: agent_start was sent for {u:?} but it is not on disk"
                );
            }
        }
        assert_eq!(
            users, expected,
            "iteration {i}: user messages must be exactly those sent"
        );
        let mut last_user: Option<&str> = None;
        for m in &history {
            match m["role"].as_str() {
                Some("user") => last_user = m["content"].as_str(),
                Some("assistant") => {
                    let u = last_user.expect("an assistant message follows a user message");
                    let full = &committed.iter().find(|(t, _)| t == u).unwrap().1;
                    let got = message_text(m);
                    assert!(
                        full.starts_with(&got),
                        "iteration {i}: assistant text for {u:?} is not a prefix of the reply ({} chars)",
                        got.len()
                    );
                }
                other => panic!("unexpected role {other:?}"),
            }
        }

        // Prompt, then SIGKILL after 0-300 ms; one in four at once, to land
        // kills before the prompt is even read.
        let mut rng = Lcg(i + 1);
        let (at_once, r) = (rng.next().is_multiple_of(4), rng.next());
        let delay = if at_once { 0 } else { r % 301 };
        h.send(json!({"type": "prompt", "id": format!("p{i}"), "message": text}));
        std::thread::sleep(Duration::from_millis(delay));
        h.signal("KILL");
        let frames = h.drain(Duration::from_secs(5));
        h.wait(Duration::from_secs(5)).expect("killed host is gone");
        let seen_start = frames.iter().any(|f| f["type"] == "agent_start");
        before_start += usize::from(!seen_start);
        pending = Some((text, reply, seen_start));
    }

    // The last kill must be recoverable too, and the file is clean JSONL.
    let mut h = host(
        "flood",
        &["--model", "flood:flood:flood-1", "--continue", &id],
    );
    assert_eq!(h.ready()["session_id"], id.as_str());
    let history = messages(&mut h, "msgs");
    let (u, _, seen_start) = pending.unwrap();
    let present = history.iter().any(|m| m["content"] == u.as_str());
    assert!(present || !seen_start, "last prompt lost after agent_start");
    // How the kills landed, to show the delays cover the interesting range.
    let answered = history.iter().filter(|m| m["role"] == "assistant").count();
    let asked = history.iter().filter(|m| m["role"] == "user").count();
    ok_prompt(&mut h, "final", "after the storm [[n=1]]");
    finish(h);
    let path = session_file(data, &id);
    let lines = read_jsonl(&path);
    assert_eq!(lines[0]["type"], "session");
    eprintln!(
        "sigkill test: {asked} prompts kept, {answered} answered, {before_start} kills before agent_start; {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "keep this test fast"
    );
}

#[test]
fn torn_last_line_is_ignored_and_the_file_stays_valid_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut h = echo_spawn_in(data).model(ECHO).start();
    let id = h.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut h, "1", "before the tear");
    let before = messages(&mut h, "msgs");
    finish(h);

    // What a crash in the middle of a write leaves behind.
    let path = session_file(data, &id);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"type":"message","ts":"2024-01-01T00:00:00Z","message":{"role":"user","cont"#)
        .unwrap();
    drop(f);

    let mut h = echo_spawn_in(data).arg("--continue").arg(&id).start();
    let ready = h.ready();
    assert_eq!(
        ready["message_count"],
        2,
        "{ready}; stderr:\n{}",
        h.stderr()
    );
    assert_eq!(messages(&mut h, "msgs"), before);
    ok_prompt(&mut h, "2", "after the tear");
    finish(h);

    // Every line parses: the new entries were not glued onto the torn one.
    let lines = read_jsonl(&path);
    let users: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "message" && l["message"]["role"] == "user")
        .map(|l| &l["message"]["content"])
        .collect();
    assert_eq!(users, [&json!("before the tear"), &json!("after the tear")]);

    let mut h = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(h.ready()["message_count"], 4);
    finish(h);
}

// ---------------------------------------------------------- ids and locks

#[test]
fn continue_with_an_unsafe_id_is_invalid_params_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["../etc", "a/b", "x y", "..", "/etc/passwd"] {
        let rpc = Spawn::new()
            .data(tmp.path())
            .arg("--continue")
            .arg(bad)
            .start();
        let frame = expect_startup_error(rpc, "invalid_params");
        eprintln!("{bad:?} -> {}", frame["message"]);
    }
}

#[test]
fn continue_with_an_unknown_id_is_not_found_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let rpc = Spawn::new()
        .data(tmp.path())
        .arg("--continue")
        .arg("no-such-session")
        .start();
    expect_startup_error(rpc, "not_found");
    // Nothing to continue at all: also not_found, not a fresh session.
    let rpc = Spawn::new().data(tmp.path()).arg("--continue").start();
    expect_startup_error(rpc, "not_found");
}

#[test]
fn a_session_in_use_is_locked_until_its_process_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();

    // The creator holds the session it created with a prompt.
    let mut first = echo_spawn_in(data).model(ECHO).start();
    let id = first.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut first, "1", "mine");
    let second = echo_spawn_in(data).arg("--continue").arg(&id).start();
    let err = expect_startup_error(second, "session_locked");
    assert!(err["message"].as_str().unwrap().contains(&id), "{err}");
    let second = echo_spawn_in(data).arg("--continue").start();
    expect_startup_error(second, "session_locked");
    finish(first);

    // A process that merely continues it (no prompt yet) holds it as well.
    let mut resumed = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(resumed.ready()["session_id"], id.as_str());
    let third = echo_spawn_in(data).arg("--continue").arg(&id).start();
    expect_startup_error(third, "session_locked");
    finish(resumed);

    let mut last = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(last.ready()["message_count"], 2);
    finish(last);
}

// ---------------------------------------------------------- new / list

#[test]
fn new_session_keeps_the_old_one_and_list_sessions_shows_both_newest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut h = echo_spawn_in(data).model(ECHO).start();
    let ready = h.ready();
    let old = ready["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut h, "1", "first session title\nsecond line");

    let resp = call_ok(&mut h, json!({"type": "new_session"}), "new");
    let new = resp["session_id"].as_str().expect("new id").to_owned();
    assert_ne!(new, old);
    let state = call_ok(&mut h, json!({"type": "get_state"}), "st");
    assert_eq!(state["session_id"], new.as_str());
    assert_eq!(state["message_count"], 0);
    assert_eq!(
        state["model"], ECHO,
        "the model carries over to the new session"
    );
    assert!(
        session_file(data, &old).exists(),
        "the old session stays on disk"
    );

    // The old session is no longer in use by this process: another may take it.
    let mut other = echo_spawn_in(data).arg("--continue").arg(&old).start();
    assert_eq!(other.ready()["message_count"], 2);
    finish(other);

    std::thread::sleep(Duration::from_millis(30));
    ok_prompt(&mut h, "2", "second session title");
    let list = call_ok(&mut h, json!({"type": "list_sessions"}), "ls");
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{list}");
    assert_eq!(
        sessions[0]["session_id"],
        new.as_str(),
        "newest first: {list}"
    );
    assert_eq!(sessions[1]["session_id"], old.as_str());
    for (s, title) in sessions
        .iter()
        .zip(["second session title", "first session title"])
    {
        for k in [
            "session_id",
            "created_at",
            "updated_at",
            "message_count",
            "model",
            "title",
            "cwd",
        ] {
            assert!(s.get(k).is_some(), "list_sessions entry lacks {k}: {s}");
        }
        assert_eq!(s["title"], title, "{s}");
        assert_eq!(s["message_count"], 2, "{s}");
        assert_eq!(s["model"], ECHO);
        assert_eq!(s["cwd"], ready["cwd"]);
        assert!(s["created_at"].as_str().unwrap().contains('T'), "{s}");
        assert!(s["updated_at"].as_str().unwrap().contains('T'), "{s}");
    }
    finish(h);
    assert_eq!(sessions_in(data).len(), 2);
}

// ---------------------------------------------------------- data dir

/// Runs `rpc` with a fully controlled environment (no `--data-dir`), pipes in
/// `input`, and returns its frames and exit status (killed after 15 s).
fn run_with_env(env: &[(&str, &Path)], input: &str) -> (Vec<Value>, ExitStatus, String) {
    let mut cmd = Command::new(common::bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .arg("--extension")
        .arg(common::fixture("echo"))
        .arg("--model")
        .arg(ECHO)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn rpc");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let Some(status) = common::wait_timeout(&mut child, Duration::from_secs(15)) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("rpc did not exit within 15 s");
    };
    let frames = out
        .join()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout line is JSON"))
        .collect();
    (frames, status, err.join().unwrap())
}

/// Runs one prompt with that environment; returns the session id.
fn prompt_with_env(env: &[(&str, &Path)]) -> String {
    let input = "{\"type\":\"prompt\",\"id\":1,\"message\":\"where am i\"}\n";
    let (frames, status, stderr) = run_with_env(env, input);
    assert!(status.success(), "{status:?}; stderr:\n{stderr}");
    assert_eq!(frames[0]["type"], "ready", "{frames:?}");
    let last = frames.last().unwrap();
    assert_eq!(last["ok"], true, "{last}; stderr:\n{stderr}");
    frames[0]["session_id"].as_str().unwrap().to_owned()
}

#[test]
fn data_dir_comes_from_agent_rpc_home_then_xdg_data_home_then_home() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let rpc_home = tmp.path().join("rpc-home");
    let xdg = tmp.path().join("xdg");
    std::fs::create_dir_all(&home).unwrap();

    // AGENT_RPC_HOME wins over XDG_DATA_HOME.
    let id = prompt_with_env(&[
        ("HOME", &home),
        ("AGENT_RPC_HOME", &rpc_home),
        ("XDG_DATA_HOME", &xdg),
    ]);
    assert!(
        session_file(&rpc_home, &id).is_file(),
        "session under AGENT_RPC_HOME"
    );
    assert!(
        !xdg.exists(),
        "XDG_DATA_HOME must be unused when AGENT_RPC_HOME is set"
    );
    assert_eq!(mode_of(&rpc_home), 0o700);

    // Without AGENT_RPC_HOME: $XDG_DATA_HOME/agent-rpc.
    let id = prompt_with_env(&[("HOME", &home), ("XDG_DATA_HOME", &xdg)]);
    assert!(
        session_file(&xdg.join("agent-rpc"), &id).is_file(),
        "session under XDG_DATA_HOME/agent-rpc"
    );

    // Neither: ~/.local/share/agent-rpc.
    let id = prompt_with_env(&[("HOME", &home)]);
    assert!(session_file(&home.join(".local/share/agent-rpc"), &id).is_file());

    // --data-dir beats them all.
    let flag_dir = tmp.path().join("flag");
    let mut h = echo_spawn_in(&flag_dir)
        .model(ECHO)
        .env("AGENT_RPC_HOME", rpc_home.to_str().unwrap())
        .start();
    let id = h.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut h, "1", "flagged");
    finish(h);
    assert!(session_file(&flag_dir, &id).is_file());
    assert_eq!(sessions_in(&rpc_home).len(), 1, "AGENT_RPC_HOME untouched");
}
