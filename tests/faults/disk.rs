//! Disk trouble: no sessions directory possible, an unwritable one, and a
//! write that fails mid-turn (`RLIMIT_FSIZE`): the prompt is refused or the
//! failure reported, naming the path, and the session file stays valid.

use super::*;

// ---- 1. disk trouble ------------------------------------------------------

/// 1a. A file where `<data>/sessions` should be: the sessions directory can
/// never be created. The first prompt is rejected with `internal` naming the
/// path, the host keeps serving, and once the obstacle is gone a prompt works.
#[test]
fn disk_sessions_path_is_a_file_rejects_the_prompt_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let blocker = data.path().join("sessions");
    std::fs::write(&blocker, b"not a directory\n").unwrap();
    let mut rpc = Spawn::new()
        .data(data.path())
        .ext("echo")
        .model(ECHO)
        .start();
    let ready = rpc.ready();

    for id in ["p1", "p2"] {
        let (frames, err) = prompt(&mut rpc, id, "hello there");
        assert_rejected_naming(&frames, &err, id, &blocker);
    }
    let st = get_state(&mut rpc, "s1");
    assert_eq!(st["streaming"], false, "{st}");
    assert_eq!(st["message_count"], 0, "nothing was run: {st}");
    assert_eq!(st["session_id"], ready["session_id"], "{st}");
    // The file is untouched.
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a directory\n");

    // Once the disk allows, the same host works.
    std::fs::remove_file(&blocker).unwrap();
    assert_eq!(ok_prompt(&mut rpc, "p3", "works now"), "works now");
    let st = get_state(&mut rpc, "s2");
    assert_eq!(st["message_count"], 2, "{st}");
    finish(rpc);
    assert_eq!(assert_sessions_parse(data.path()), 1);
}

/// A prompt the disk refused: an `internal` error under its id and command,
/// naming `path`, and no turn started.
fn assert_rejected_naming(frames: &[Value], err: &Value, id: &str, path: &Path) {
    assert_eq!(err["type"], "error", "the prompt must be rejected: {err}");
    assert_eq!(err["code"], "internal", "{err}");
    assert_eq!(err["id"], id, "{err}");
    assert_eq!(err["command"], "prompt", "{err}");
    let msg = err["message"].as_str().unwrap_or("");
    assert!(
        msg.contains(&path.display().to_string()),
        "the message names the path {}: {msg}",
        path.display()
    );
    assert!(
        frames.iter().all(|f| f["type"] != "agent_start"),
        "a rejected prompt never starts a turn: {frames:?}"
    );
}

/// 1b. The sessions directory, there when the host started, stops taking
/// writes before the first prompt of a new session: the prompt is rejected
/// naming it, nothing is stored, and once it is writable again a prompt
/// works. Made so in a way that holds for root too (root ignores permission
/// bits): the directory is replaced by a regular file; and, when not root,
/// also by `chmod 0500`.
#[test]
fn disk_unwritable_sessions_dir_rejects_the_prompt_naming_it() {
    unwritable_sessions_dir(
        |dir| {
            std::fs::remove_dir(dir).unwrap();
            std::fs::write(dir, b"not a directory\n").unwrap();
        },
        |dir| {
            std::fs::remove_file(dir).unwrap();
            std::fs::create_dir(dir).unwrap();
        },
    );
    if is_root() {
        eprintln!(
            "NOTE: the chmod 0500 case runs only when not root (root ignores permission bits)"
        );
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    unwritable_sessions_dir(
        |dir| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o500)).unwrap(),
        |dir| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap(),
    );
}

/// 1b with `block` making `<data>/sessions` unwritable after `ready` and
/// `unblock` undoing it.
fn unwritable_sessions_dir(block: impl Fn(&Path), unblock: impl Fn(&Path)) {
    let data = tempfile::tempdir().unwrap();
    let sessions = data.path().join("sessions");
    std::fs::create_dir(&sessions).unwrap();
    let mut rpc = Spawn::new()
        .data(data.path())
        .ext("echo")
        .model(ECHO)
        .start();
    rpc.ready();
    block(&sessions);

    let (frames, err) = prompt(&mut rpc, "p1", "hello there");
    // Restore first, so a failure below does not leave an undeletable dir.
    unblock(&sessions);
    assert_rejected_naming(&frames, &err, "p1", &sessions);
    let st = get_state(&mut rpc, "s1");
    assert_eq!(st["message_count"], 0, "{st}");
    assert_eq!(ok_prompt(&mut rpc, "p2", "works now"), "works now");
    finish(rpc);
    assert_eq!(assert_sessions_parse(data.path()), 1);
}

/// 1c. Appends fail partway through a later turn: the host runs under
/// `RLIMIT_FSIZE` (`ulimit -f 4`, 2048 bytes) and the second turn's reply
/// (~2.8 KB of text) cannot fit. The host must survive (SIGXFSZ must not kill
/// it), tell the client which file could not be written, leave only complete
/// lines on disk, and the session must resume (without the limit).
#[test]
fn disk_write_failing_mid_turn_is_reported_and_leaves_a_valid_file() {
    const BLOCKS: u64 = 4;
    let limit = BLOCKS * 512;
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut a = ext_args("echo", ECHO);
    a.extend(args(&["--cwd", cwd.path().to_str().unwrap()]));
    let mut raw = Raw::spawn(&a, Some(data.path()), Some(BLOCKS));
    let ready = raw.recv(READ_TIMEOUT, "ready");
    assert_eq!(ready["type"], "ready", "{ready}\nstderr:\n{}", raw.stderr());
    let sid = ready["session_id"].as_str().unwrap().to_owned();
    let file = data.path().join("sessions").join(format!("{sid}.jsonl"));

    // Turn 1 fits.
    raw.send(json!({"type": "prompt", "id": "1", "message": "hello"}));
    let (_, r1) = raw.answer(&json!("1"), READ_TIMEOUT);
    assert_eq!(r1["ok"], true, "{r1}\nstderr:\n{}", raw.stderr());
    let size1 = std::fs::metadata(&file).unwrap().len();
    assert!(
        size1 + 300 < limit,
        "calibration: the file after turn 1 ({size1} B) must leave room for turn 2's user message under {limit} B"
    );

    // Turn 2: the user message fits, the ~2.8 KB reply does not.
    let message = r#"go [[n=300 delta="abcdefgh "]]"#;
    raw.send(json!({"type": "prompt", "id": "2", "message": message}));
    let mut problems: Vec<String> = Vec::new();
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut answer = None;
    let mut died = None;
    while answer.is_none() && died.is_none() && Instant::now() < deadline {
        match raw.recv_within(Duration::from_millis(50)) {
            Some(v) if (v["type"] == "response" || v["type"] == "error") && v["id"] == "2" => {
                answer = Some(v)
            }
            Some(_) => {}
            None => {
                if let Some(st) = raw.child.try_wait().unwrap() {
                    died = Some(st);
                }
            }
        }
    }
    let path_text = file.display().to_string();
    let size2 = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    match (&answer, died) {
        (_, Some(st)) => problems.push(format!(
            "the host died during the turn whose append failed: {} \
             (expected it to survive with SIGXFSZ ignored and report the failed write)",
            describe_exit(st)
        )),
        (None, None) => problems.push("no answer to prompt 2 within 15 s".into()),
        (Some(ans), None) => {
            eprintln!("answer to the turn whose append failed: {ans}");
            let texts = [
                ans["message"].as_str(),
                ans["error"].as_str(),
                ans["persist_error"].as_str(),
            ];
            let names_path = texts.iter().flatten().any(|t| t.contains(&path_text));
            let failed =
                ans["type"] == "error" || ans["ok"] == false || ans.get("persist_error").is_some();
            if !(failed && names_path) {
                problems.push(format!(
                    "the answer to the turn whose assistant message could not be written does not \
                     report it (expected ok:false, an error, or persist_error naming {path_text}): {ans}"
                ));
            }
        }
    }
    if died.is_none() {
        // Still serving, and a small turn that fits under the limit works.
        raw.send(json!({"type": "prompt", "id": "2b", "message": "ok"}));
        let (_, r) = raw.answer(&json!("2b"), READ_TIMEOUT);
        if r["ok"] != true || r.get("persist_error").is_some() {
            problems.push(format!(
                "a small prompt after the failed write (room left under the limit): {r}"
            ));
        }
        raw.send(json!({"type": "get_state", "id": "s"}));
        let (_, st) = raw.answer(&json!("s"), READ_TIMEOUT);
        if st["ok"] != true {
            problems.push(format!("get_state after the failed write: {st}"));
        }
        raw.close_stdin();
        match raw.wait(Duration::from_secs(5)) {
            Some(s) if s.success() => {}
            other => problems.push(format!("exit after stdin EOF: {other:?}")),
        }
    }
    let size_after = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    if let Err(e) = jsonl(&file) {
        problems.push(format!("session file left corrupt ({size_after} B): {e}"));
    }
    let stderr = raw.stderr();
    drop(raw);

    // Resumes without the limit; a later prompt works.
    let mut rpc = Spawn::new()
        .data(data.path())
        .ext("echo")
        .arg("--cwd")
        .arg(cwd.path().to_str().unwrap())
        .arg("--continue")
        .arg(&sid)
        .start();
    let ready2 = rpc.recv();
    if ready2["type"] != "ready" {
        problems.push(format!("--continue {sid} after the failed write: {ready2}"));
    } else {
        assert_eq!(ready2["session_id"], sid.as_str());
        let count = ready2["message_count"].as_u64().unwrap_or(0);
        if count < 5 {
            problems.push(format!(
                "--continue restored {count} messages; turn 1 (2), turn 2's user message and \
                 the small turn (2) must survive: {ready2}"
            ));
        }
        assert_eq!(
            ok_prompt(&mut rpc, "3", "after the fault"),
            "after the fault"
        );
        finish(rpc);
        if let Err(e) = jsonl(&file) {
            problems.push(format!("session file corrupt after resuming: {e}"));
        }
    }
    eprintln!(
        "RLIMIT_FSIZE {limit} B: file after turn 1 {size1} B, after the failed turn 2 {size2} B, \
         after a small turn 3 {size_after} B"
    );
    assert!(
        problems.is_empty(),
        "write failing mid-turn ({limit} B file-size limit):\n- {}\nhost stderr:\n{}",
        problems.join("\n- "),
        stderr
            .chars()
            .rev()
            .take(2000)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    );
}
