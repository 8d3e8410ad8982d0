//! The permission gate: allow_always, abort and stdin EOF while a request is
//! pending, read-only mode, and `set_permission_mode`.

use super::*;

// ---- 4. allow_always ------------------------------------------------------

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

/// `fork` and `switch_session` start the next session without the grants
/// of the one before, like `new_session`.
#[test]
fn allow_always_does_not_follow_a_fork_or_a_switch() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "ask");
    let w = |p: &str| call("write", &json!({"path": p, "content": p}));
    let original = rpc.call(json!({"type": "get_state"}), "s")["session_id"].clone();

    let (_, req) = until_permission(&mut rpc, "1", &w("a.txt"));
    let (_, resp) = decide(&mut rpc, &req, "allow_always", None, "r1", "1");
    assert_ok(&resp, &rpc);
    no_permission_request(&run_ok(&mut rpc, "2", &w("b.txt")));

    let fork = rpc.call(json!({"type": "fork"}), "f");
    assert_eq!(fork["ok"], true, "{fork}");
    let (_, req) = until_permission(&mut rpc, "3", &w("c.txt"));
    let (_, resp) = decide(&mut rpc, &req, "deny", None, "r3", "3");
    assert_ok(&resp, &rpc);
    assert!(d.get("c.txt").is_none());

    let back = rpc.call(
        json!({"type": "switch_session", "session_id": original}),
        "w",
    );
    assert_eq!(back["ok"], true, "{back}");
    let (_, req) = until_permission(&mut rpc, "4", &w("d.txt"));
    assert_eq!(req["tool"], "write");
    let (_, resp) = decide(&mut rpc, &req, "deny", None, "r4", "4");
    assert_ok(&resp, &rpc);
    assert!(d.get("d.txt").is_none());
}

// ---- 7. abort vs permission -----------------------------------------------

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
    // Nothing was written, late answer or not: the host has handled both
    // (a read answered after them says so) and runs no turn.
    let st = rpc.call(json!({"type": "get_state"}), "st");
    assert_eq!(st["streaming"], false, "{st}");
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

// ---- 8. EOF ---------------------------------------------------------------

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

// ---- 10. read-only --------------------------------------------------------

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

// ---- 11. set_permission_mode ----------------------------------------------

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
