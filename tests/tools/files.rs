//! The file tools: read runs without asking, write and edit ask (with a diff),
//! and anything outside the session cwd asks even where edits are allowed.

use super::*;

// ---- 1. read --------------------------------------------------------------

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

// ---- 2. write -------------------------------------------------------------

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

// ---- 3. edit --------------------------------------------------------------

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

// ---- 9. confinement -------------------------------------------------------

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
