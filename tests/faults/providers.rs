//! Providers failing: crashing between rounds, sending a frame over the cap,
//! streaming on after an abort, closing their stdout early, and crashing
//! after a stderr flood.

use super::*;

// ---- 4. providers failing -------------------------------------------------

/// The extension does a tool round, then dies when asked for round 2.
#[test]
fn provider_crash_between_rounds_fails_the_turn_and_keeps_the_tool_round() {
    let cwd = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(cwd.path().join("a.txt"), "A\n").unwrap();
    let mut rpc = Spawn::new()
        .data(data.path())
        .ext("echo")
        .model(ECHO)
        .arg("--cwd")
        .arg(cwd.path().to_str().unwrap())
        .start();
    rpc.ready();
    let (frames, resp, took) =
        failing_prompt(&mut rpc, "1", "list it [[tool=ls crash_on_round=2]]");
    let error = resp["error"].as_str().unwrap();
    assert!(error.contains("\"echo\""), "names the extension: {error}");
    assert!(error.contains("exit"), "says it exited: {error}");
    assert!(
        error.contains("crashing on purpose at round 2"),
        "carries the stderr tail: {error}"
    );
    assert!(took < Duration::from_secs(5), "ended in {took:?}");
    // Round 1 happened in full: the call ran and its result was recorded.
    let ends: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "tool_execution_end")
        .collect();
    assert_eq!(ends.len(), 1, "{frames:?}");
    assert!(
        ends[0]["result"].as_str().unwrap_or("").contains("a.txt"),
        "{}",
        ends[0]
    );
    assert_eq!(text_of(&frames), "list it");

    let msgs = rpc.call(json!({"type": "get_messages"}), "m")["messages"].clone();
    let msgs = msgs.as_array().unwrap();
    assert!(msgs.len() >= 3, "{msgs:?}");
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(msgs[1]["role"], "assistant");
    assert!(
        msgs[1]["content"].to_string().contains("tool_use"),
        "{}",
        msgs[1]
    );
    assert!(
        msgs[2]["content"].to_string().contains("tool_result"),
        "the tool result is kept: {}",
        msgs[2]
    );
    // Healthy: the next prompt restarts the extension and works.
    get_state(&mut rpc, "s");
    assert_eq!(ok_prompt(&mut rpc, "2", "still alive"), "still alive");
    finish(rpc);
    let files = session_files(data.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let lines = jsonl(&files[0]).unwrap();
    assert!(
        lines.iter().any(|l| l.to_string().contains("tool_result")),
        "the tool round is on disk"
    );
}

/// One 20 MiB frame (a real body over the 16 MiB cap): refused as over the
/// cap, without buffering it (peak RSS < 64 MiB), and the next prompt works.
#[test]
fn provider_frame_over_the_cap_is_refused_with_bounded_memory() {
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    rpc.ready();
    let (frames, resp, took) = failing_prompt(&mut rpc, "1", "[[n=2 big_frame=20971520]]");
    let error = resp["error"].as_str().unwrap();
    assert!(error.contains("\"echo\""), "names the extension: {error}");
    assert!(
        error.contains("MiB") || error.contains("16777216"),
        "says what the cap is: {error}"
    );
    assert!(
        ["exceed", "too large", "cap", "limit"]
            .iter()
            .any(|w| error.contains(w)),
        "says the frame is over the cap: {error}"
    );
    assert!(
        error.len() < 16 * 1024,
        "bounded message: {} B",
        error.len()
    );
    assert_eq!(text_of(&frames), "tok tok ", "deltas before the big frame");
    let peak = vm_hwm_kib(rpc.pid()).expect("VmHWM");
    eprintln!("20 MiB frame refused in {took:?}; host peak RSS {peak} KiB; error: {error}");
    assert!(peak < 64 * 1024, "host peak RSS {peak} KiB >= 64 MiB");
    assert!(took < Duration::from_secs(10), "{took:?}");
    get_state(&mut rpc, "s");
    assert_eq!(ok_prompt(&mut rpc, "2", "next one"), "next one");
    finish(rpc);
}

/// The extension ignores `$/cancel_request` and streams forever: abort ends
/// the turn within 1 s, the process is killed, and nothing of it reaches the
/// next turn.
#[test]
fn abort_ends_an_endless_stream_that_ignores_cancel() {
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    rpc.ready();
    rpc.send(json!({"type": "prompt", "id": "1", "message": "[[endless=1 delay_ms=1]]"}));
    let (_, start) = rpc.until("agent_start", |f| f["type"] == "agent_start");
    let old = start["prompt_id"].as_str().unwrap().to_owned();
    let mut deltas = 0;
    while deltas < 20 {
        let f = rpc.recv();
        assert!(f["type"] != "response" && f["type"] != "error", "{f}");
        if f["type"] == "message_update" {
            deltas += 1;
        }
    }
    let exts = fakeprovs(rpc.pid());
    assert_eq!(exts.len(), 1, "one echo process: {exts:?}");

    let t0 = Instant::now();
    rpc.send(json!({"type": "abort", "id": "a"}));
    let (before, ab) = rpc.until("abort answer", |f| f["id"] == "a");
    let took = t0.elapsed();
    assert_eq!(ab["type"], "response", "{ab}");
    assert_eq!(ab["ok"], true, "{ab}");
    let turn = before
        .iter()
        .find(|f| f["type"] == "response" && f["id"] == "1")
        .unwrap_or_else(|| panic!("the turn's response precedes the abort's: {before:?}"));
    assert_eq!(turn["cancelled"], true, "{turn}");
    assert_eq!(turn["stop_reason"], "aborted", "{turn}");
    eprintln!("abort of an endless stream ignoring cancel: turn ended in {took:?}");
    assert!(took < Duration::from_secs(1), "abort took {took:?}");
    let left = wait_gone(&exts, Duration::from_secs(1));
    assert!(
        left.is_empty(),
        "the process that ignored cancel is still alive: {left:?}"
    );

    // Nothing of the old stream after the abort's answer, then or later:
    // no frame at all in the next 300 ms (a read that must time out)...
    if let Some(stray) = rpc.recv_within(Duration::from_millis(300)) {
        panic!("a frame after the abort's answer: {stray}");
    }
    let (frames, resp) = prompt(&mut rpc, "2", "fresh start");
    assert_eq!(resp["ok"], true, "{resp}");
    for f in &frames {
        assert_ne!(
            f["prompt_id"],
            old.as_str(),
            "stray frame of the aborted turn: {f}"
        );
    }
    assert_eq!(text_of(&frames), "fresh start");
    let msgs = rpc.call(json!({"type": "get_messages"}), "m")["messages"].clone();
    let last = msgs.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last["content"].to_string(),
        json!([{"type": "text", "text": "fresh start"}]).to_string(),
        "{last}"
    );
    finish(rpc);
}

/// The extension closes its stdout but keeps running (and reading stdin).
#[test]
fn provider_closing_its_stdout_fails_the_turn_promptly() {
    const IDLE: u64 = 5;
    let mut rpc = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .arg("--provider-idle-timeout")
        .arg(&IDLE.to_string())
        .start();
    rpc.ready();
    // Make sure the process is up, to watch it.
    assert_eq!(ok_prompt(&mut rpc, "0", "warm"), "warm");
    let exts = fakeprovs(rpc.pid());
    assert_eq!(exts.len(), 1, "{exts:?}");
    let (frames, resp, took) = failing_prompt(&mut rpc, "1", "[[n=2 close_stdout=1]]");
    let error = resp["error"].as_str().unwrap();
    let how = if took < Duration::from_secs(1) {
        "promptly (EOF on its stdout detected)"
    } else if took >= Duration::from_secs(IDLE) {
        "only after the idle timeout"
    } else {
        "late, but before the idle timeout"
    };
    eprintln!("extension closed its stdout: turn failed in {took:?}, {how}: {error}");
    assert_eq!(text_of(&frames), "tok tok ");
    assert!(error.contains("\"echo\""), "names the extension: {error}");
    assert!(error.contains("stdout"), "says what happened: {error}");
    assert!(
        error.contains("closing stdout on purpose"),
        "carries the stderr tail: {error}"
    );
    assert!(
        took < Duration::from_secs(IDLE),
        "EOF on the extension's stdout is detectable: the turn must not wait for the \
         {IDLE} s idle timeout (took {took:?})"
    );
    // The half-dead process (it still reads stdin) is not left behind.
    let left = wait_gone(&exts, Duration::from_secs(2));
    assert!(
        left.is_empty(),
        "the extension with a closed stdout still runs: {left:?}"
    );
    get_state(&mut rpc, "s");
    assert_eq!(ok_prompt(&mut rpc, "2", "next one"), "next one");
    finish(rpc);
}

/// A crash right after 20,000 lines of stderr: the error carries a bounded
/// tail (< 8 KiB) ending with the crash message.
#[test]
fn stderr_flood_then_crash_keeps_the_error_bounded() {
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    rpc.ready();
    let (frames, resp, took) = failing_prompt(&mut rpc, "1", "[[n=5 crash_after=2 stderr=20000]]");
    let error = resp["error"].as_str().unwrap();
    assert_eq!(text_of(&frames), "tok tok ");
    assert!(error.contains("\"echo\""), "{error}");
    assert!(error.contains("exit"), "{error}");
    assert!(
        error.contains("crashing on purpose after 2 deltas"),
        "the tail ends with the crash: {error}"
    );
    assert!(
        error.contains("junk stderr line 20000 of 20000"),
        "the tail is the end of stderr"
    );
    assert!(!error.contains("junk stderr line 1 of"), "only the tail");
    eprintln!(
        "stderr flood + crash: error of {} B in {took:?}",
        error.len()
    );
    assert!(error.len() < 8 * 1024, "error of {} B", error.len());
    let peak = vm_hwm_kib(rpc.pid()).expect("VmHWM");
    assert!(peak < 64 * 1024, "host peak RSS {peak} KiB");
    // The same stored on the partial message, also bounded.
    let msgs = rpc.call(json!({"type": "get_messages"}), "m")["messages"].clone();
    let last = msgs.as_array().unwrap().last().unwrap().clone();
    assert!(
        last["error"].as_str().is_some_and(|e| e.len() < 8 * 1024),
        "{}",
        last.to_string().len()
    );
    get_state(&mut rpc, "s");
    assert_eq!(ok_prompt(&mut rpc, "2", "next one"), "next one");
    finish(rpc);
}
