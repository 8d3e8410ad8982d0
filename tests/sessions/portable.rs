//! Portable sessions: `rpc sessions export` / `import` and the
//! `export_session` / `import_session` commands, between data dirs standing
//! in for two machines. A refused import must store nothing at all: no
//! session file, no temporary file, nothing outside the sessions dir.

use super::*;
use common::{bounded::run_bounded, rpc_command, READ_TIMEOUT};

/// `rpc --data-dir <data> <args>` with `input` on stdin, bounded in time:
/// (exit code, stdout, stderr).
fn cli(data: &Path, args: &[&str], input: &[u8]) -> (i32, String, String) {
    let (status, out, err) = run_bounded(rpc_command(data, None).args(args), input, READ_TIMEOUT);
    let status = status.unwrap_or_else(|| panic!("rpc {args:?} did not finish"));
    (status.code().unwrap_or(-1), out, err)
}

/// A session made by one real echo turn in `data`; returns its id.
fn session_with_a_turn(data: &Path, prompt: &str) -> String {
    let mut host = echo_spawn_in(data).model(ECHO).start();
    let id = host.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut host, "1", prompt);
    finish(host);
    id
}

/// The export stream of session `id` in `data`, through the CLI.
fn export(data: &Path, id: &str) -> String {
    let (code, out, err) = cli(data, &["sessions", "export", id], b"");
    assert_eq!(code, 0, "export failed: {err}");
    out
}

/// Every name in `data`'s sessions dir, temporary files included.
fn everything_stored(data: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data.join("sessions")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// An import that must be refused with exit 1, naming `needle`, leaving
/// `data`'s sessions dir as it was.
fn refused(data: &Path, args: &[&str], input: &[u8], needle: &str) -> String {
    let before = everything_stored(data);
    let mut all = vec!["sessions", "import"];
    all.extend_from_slice(args);
    let (code, out, err) = cli(data, &all, input);
    assert_eq!(
        code, 1,
        "import {args:?} must be refused; stdout {out:?} stderr {err}"
    );
    assert!(out.is_empty(), "a refused import prints no id: {out:?}");
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    assert_eq!(
        everything_stored(data),
        before,
        "a refused import stored something"
    );
    err
}

#[test]
fn a_session_exported_from_one_data_dir_continues_in_another() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = session_with_a_turn(a.path(), "remember the walrus");
    let stream = export(a.path(), &id);
    let header: Value = serde_json::from_str(stream.lines().next().unwrap()).unwrap();
    assert_eq!(header["type"], "agent_rpc_export", "{header}");
    assert_eq!(header["format"], 1);
    assert_eq!(header["session_id"], id.as_str());
    assert_eq!(header["host_version"], env!("CARGO_PKG_VERSION"));
    let stored = std::fs::read_to_string(session_file(a.path(), &id)).unwrap();
    assert_eq!(header["entries"], stored.lines().count());
    assert!(stream.ends_with(&stored), "the lines are copied as stored");

    let file = a.path().join("s.jsonl");
    std::fs::write(&file, &stream).unwrap();
    let (code, out, err) = cli(
        b.path(),
        &["sessions", "import", file.to_str().unwrap()],
        b"",
    );
    assert_eq!((code, out.trim()), (0, id.as_str()), "{err}");

    let mut host = echo_spawn_in(b.path()).arg("--continue").arg(&id).start();
    assert_eq!(host.ready()["message_count"], 2);
    let history = messages(&mut host, "m");
    assert_eq!(message_text(&history[0]), "remember the walrus");
    let seen = ok_prompt(&mut host, "2", "what came before? [[show=messages]]");
    assert!(
        seen.contains("remember the walrus"),
        "the provider saw: {seen}"
    );
    assert_eq!(messages(&mut host, "m2").len(), 4);
    finish(host);
}

#[test]
fn a_torn_or_foreign_stream_is_refused_with_its_line_and_stores_nothing() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = session_with_a_turn(a.path(), "one");
    let stream = export(a.path(), &id).into_bytes();
    let ends: Vec<usize> = stream
        .iter()
        .enumerate()
        .filter(|(_, &c)| c == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    let last_entry_dropped = &stream[..ends[ends.len() - 2]];
    let cuts: [(&[u8], &str); 4] = [
        (&stream[..ends[1] + 10], "line 3"),
        (last_entry_dropped, "line"),
        (&stream[..ends[0]], "line 1"),
        (&stream[..stream.len() - 1], "no final newline"),
    ];
    for (cut, needle) in cuts {
        refused(b.path(), &[], cut, needle);
    }
    let mut joined = stream.clone();
    joined.extend_from_slice(&stream[ends[0]..ends[1]]);
    refused(b.path(), &["-"], &joined, "line");
    let foreign: [&[u8]; 4] = [
        b"",
        b"{\"type\":\"something_else\"}\n",
        b"not json at all\n",
        // A bare session file is not an export: its header line is missing.
        &stream[ends[0]..],
    ];
    for input in foreign {
        refused(b.path(), &[], input, "line 1");
    }
    let newer =
        String::from_utf8(stream.clone())
            .unwrap()
            .replacen("\"format\":1", "\"format\":99", 1);
    refused(b.path(), &[], newer.as_bytes(), "newer");
    assert!(everything_stored(b.path()).is_empty());
}

#[test]
fn an_existing_id_is_refused_unless_replaced_and_new_id_makes_a_copy() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = session_with_a_turn(a.path(), "one");
    let stream = export(a.path(), &id);
    let (code, _, err) = cli(b.path(), &["sessions", "import"], stream.as_bytes());
    assert_eq!(code, 0, "{err}");
    let err = refused(b.path(), &[], stream.as_bytes(), "--replace");
    assert!(err.contains("--new-id"), "{err}");
    let (code, out, err) = cli(
        b.path(),
        &["sessions", "import", "--replace"],
        stream.as_bytes(),
    );
    assert_eq!((code, out.trim()), (0, id.as_str()), "{err}");

    let (code, out, err) = cli(
        b.path(),
        &["sessions", "import", "--new-id", "-"],
        stream.as_bytes(),
    );
    assert_eq!(code, 0, "{err}");
    let copy = out.trim();
    assert_ne!(copy, id);
    let lines = read_jsonl(&session_file(b.path(), copy));
    assert_eq!(lines[0]["id"], copy);
    assert_eq!(lines[0]["forked_from"], id.as_str());
    assert_eq!(lines.len(), stream.lines().count() - 1);

    // Held by a running host: --replace is refused, the file left alone.
    let before = std::fs::read(session_file(b.path(), &id)).unwrap();
    let mut holder = echo_spawn_in(b.path()).arg("--continue").arg(&id).start();
    holder.ready();
    refused(b.path(), &["--replace"], stream.as_bytes(), "in use");
    assert_eq!(std::fs::read(session_file(b.path(), &id)).unwrap(), before);
    finish(holder);
}

#[test]
fn an_export_of_a_session_in_use_is_a_snapshot_that_imports() {
    let data = tempfile::tempdir().unwrap();
    let mut host = echo_spawn_in(data.path()).model(ECHO).start();
    let id = host.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut host, "1", "first");
    // A turn streaming while the exports run: the file grows under them.
    host.send(json!({"type": "prompt", "id": "2", "message": "[[n=40 delay_ms=10]]"}));
    for round in 0..4 {
        let stream = export(data.path(), &id);
        let target = tempfile::tempdir().unwrap();
        let (code, out, err) = cli(target.path(), &["sessions", "import"], stream.as_bytes());
        assert_eq!((code, out.trim()), (0, id.as_str()), "round {round}: {err}");
        assert!(read_jsonl(&session_file(target.path(), &id)).len() >= 4);
        std::thread::sleep(Duration::from_millis(60));
    }
    host.answer(&json!("2"));
    finish(host);
}

#[test]
fn native_export_and_import_move_a_session_and_every_error_keeps_its_id() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut source = echo_spawn_in(a.path()).model(ECHO).start();
    let id = source.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut source, "1", "remember the walrus");
    // The session in use exports too, mid-turn, without waiting for it.
    let slow = json!({"type": "prompt", "id": "slow", "message": "[[n=30 delay_ms=20]]"});
    source.send(slow);
    let export = json!({"type": "export_session", "session_id": id});
    let exported = call_ok(&mut source, export, "e");
    let waited = source.seen.iter().any(|f| is_answer_to(f, "slow"));
    assert!(!waited, "export_session waited for the turn");
    source.answer(&json!("slow"));
    assert_eq!(exported["session_id"], id.as_str());
    let data = exported["data"].as_str().unwrap().to_owned();

    let mut target = echo_spawn_in(b.path()).model(ECHO).start();
    target.ready();
    let imported = call_ok(
        &mut target,
        json!({"type": "import_session", "data": data}),
        "i",
    );
    assert_eq!(imported["session_id"], id.as_str());
    let cut = &data[..data.len() - 3];
    let failures = [
        (
            json!({"type": "import_session", "data": data}),
            "session_exists",
        ),
        (
            json!({"type": "import_session", "data": cut}),
            "invalid_params",
        ),
        (
            json!({"type": "import_session", "data": "{}\n"}),
            "invalid_params",
        ),
        (
            json!({"type": "import_session", "data": ""}),
            "invalid_params",
        ),
        (json!({"type": "import_session"}), "invalid_params"),
        (
            json!({"type": "export_session", "session_id": "nope"}),
            "not_found",
        ),
        (
            json!({"type": "export_session", "session_id": "../x"}),
            "invalid_params",
        ),
    ];
    for (n, (command, code)) in failures.into_iter().enumerate() {
        let request = format!("bad{n}");
        let answer = target.call(command.clone(), &request);
        assert_eq!(answer["type"], "error", "{command}: {answer}");
        assert_eq!(answer["id"], request.as_str(), "{answer}");
        assert_eq!(answer["code"], code, "{command}: {answer}");
    }
    let torn = target.call(json!({"type": "import_session", "data": cut}), "torn");
    assert!(
        torn["message"].as_str().unwrap().contains("line "),
        "{torn}"
    );

    // Replacing works, then continuing it sees the history.
    let replace = json!({"type": "import_session", "data": data, "replace": true});
    call_ok(&mut target, replace.clone(), "r");
    call_ok(
        &mut target,
        json!({"type": "switch_session", "session_id": id}),
        "s",
    );
    let seen = ok_prompt(&mut target, "2", "[[show=messages]]");
    assert!(seen.contains("remember the walrus"), "{seen}");
    // … but not over the session this process is using.
    let busy = target.call(replace.clone(), "over-mine");
    assert_eq!(
        (busy["code"].as_str(), busy["id"].as_str()),
        (Some("busy"), Some("over-mine"))
    );
    // Nor over one another process holds (the source, in its data dir).
    let mut other = echo_spawn_in(a.path()).model(ECHO).start();
    other.ready();
    let locked = other.call(replace, "held");
    assert_eq!(locked["code"], "session_locked", "{locked}");
    let copy = call_ok(
        &mut other,
        json!({"type": "import_session", "data": data, "new_id": true}),
        "copy",
    );
    assert_ne!(copy["session_id"], id.as_str());
    assert_eq!(get_state_of(&mut target)["session_id"], id.as_str());
    finish(other);
    finish(target);
    finish(source);
}

fn get_state_of(rpc: &mut Rpc) -> Value {
    call_ok(rpc, json!({"type": "get_state"}), "state")
}

#[test]
fn a_hostile_id_in_the_stream_is_refused_and_nothing_is_written_outside() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let id = session_with_a_turn(a.path(), "one");
    let stream = export(a.path(), &id);
    let outside = b.path().join("escaped");
    for hostile in ["../x", &outside.to_string_lossy()] {
        let forged = stream.replace(&id, hostile);
        let err = refused(b.path(), &[], forged.as_bytes(), "line 2");
        assert!(err.contains("invalid session id"), "{err}");
        refused(
            b.path(),
            &["--new-id"],
            forged.as_bytes(),
            "invalid session id",
        );

        let mut host = echo_spawn_in(b.path()).model(ECHO).start();
        host.ready();
        let answer = host.call(json!({"type": "import_session", "data": forged}), "h");
        assert_eq!(answer["code"], "invalid_params", "{answer}");
        finish(host);
    }
    assert!(!outside.exists() && !b.path().join("escaped.jsonl").exists());
    assert!(!a.path().join("x.jsonl").exists() && !b.path().join("x.jsonl").exists());
    assert!(everything_stored(b.path()).is_empty());
}

#[test]
fn export_refuses_unknown_ids_and_damaged_files_naming_the_line() {
    let data = tempfile::tempdir().unwrap();
    let (code, out, err) = cli(data.path(), &["sessions", "export", "nope"], b"");
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("rpc sessions --all"), "{err}");
    let (code, _, err) = cli(data.path(), &["sessions", "export", "../x"], b"");
    assert_eq!(code, 1);
    assert!(err.contains("invalid session id"), "{err}");

    let id = session_with_a_turn(data.path(), "one");
    let path = session_file(data.path(), &id);
    let mut bytes = std::fs::read(&path).unwrap();
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    bytes.extend_from_slice(b"{\"type\":\"no_such_entry\"}\n");
    std::fs::write(&path, &bytes).unwrap();
    let (code, out, err) = cli(data.path(), &["sessions", "export", &id], b"");
    assert_eq!(
        (code, out.as_str()),
        (1, ""),
        "a damaged file exports nothing"
    );
    let line = format!("line {}", lines + 1);
    assert!(
        err.contains(&line) && err.contains(&*path.to_string_lossy()),
        "{err}"
    );
}

/// An export of session `id` grown to about `bytes` by repeating its user
/// message: a stream whose import takes long enough to be killed midway.
fn big_stream(stream: &str, bytes: usize) -> String {
    let lines: Vec<&str> = stream.lines().collect();
    let user = lines[2];
    let copies = bytes / user.len();
    let mut header: Value = serde_json::from_str(lines[0]).unwrap();
    header["entries"] = json!(lines.len() - 1 + copies);
    let mut out = format!("{header}\n");
    for line in &lines[1..] {
        out.push_str(line);
        out.push('\n');
    }
    for _ in 0..copies {
        out.push_str(user);
        out.push('\n');
    }
    out
}

#[test]
fn an_import_killed_at_any_moment_leaves_the_whole_session_or_nothing() {
    let source = tempfile::tempdir().unwrap();
    let id = session_with_a_turn(source.path(), &"x".repeat(4000));
    let stream = big_stream(&export(source.path(), &id), 24 << 20);
    let reference = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (code, _, err) = cli(reference.path(), &["sessions", "import"], stream.as_bytes());
    assert_eq!(code, 0, "{err}");
    let took = started.elapsed();
    let whole = std::fs::read(session_file(reference.path(), &id)).unwrap();
    let (mut complete, mut nothing) = (0, 0);
    // Kill points spread over the whole run, a little past its end.
    for step in 0..16u32 {
        let delay = took * step / 12;
        let target = tempfile::tempdir().unwrap();
        let mut child = rpc_command(target.path(), None)
            .args(["sessions", "import"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rpc sessions import");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = stream.clone().into_bytes();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        let _ = writer.join();
        match std::fs::read(session_file(target.path(), &id)) {
            Ok(bytes) => {
                assert!(bytes == whole, "killed after {delay:?}: a partial session");
                complete += 1;
            }
            Err(_) => nothing += 1,
        }
    }
    eprintln!(
        "killed imports ({took:?} whole): {complete} complete, {nothing} with nothing stored"
    );
}
