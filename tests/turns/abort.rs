//! `abort`: the frame order, the partial text kept and marked, a provider
//! that ignores cancel killed, queued follow-ups dropped, abort when idle.

use super::*;

/// Abort: agent_end(aborted) → prompt response(cancelled) → abort response,
/// fast; the partial text is kept and marked; the next prompt works.
#[test]
fn abort_mid_stream_orders_frames_and_keeps_partial_text() {
    let (mut rpc, ready) = host(&["slow"], SLOW);
    let pid = start_prompt(&mut rpc, "1", "[[n=40 delay_ms=50]]");
    for _ in 0..3 {
        let f = rpc.recv();
        assert!(is_update(&f), "{f}");
    }
    rpc.send(json!({"type": "abort", "id": "a"}));
    let sent = Instant::now();
    let (before, end) = rpc.until("agent_end", |f| f["type"] == "agent_end");
    let took = sent.elapsed();
    assert!(
        before.iter().all(is_update),
        "only deltas before agent_end: {before:?}"
    );
    assert!(
        took < Duration::from_secs(1),
        "abort took {took:?} to reach agent_end"
    );
    assert_eq!(end["prompt_id"], pid.as_str());
    assert_eq!(end["stop_reason"], "aborted");
    let resp = rpc.recv();
    assert!(
        is_answer_to(&resp, "1"),
        "prompt response right after agent_end: {resp}"
    );
    assert_eq!(resp["type"], "response");
    assert_eq!(resp["ok"], true);
    assert_eq!(resp["cancelled"], true);
    let ab = rpc.recv();
    assert!(
        is_answer_to(&ab, "a"),
        "abort response after the prompt's: {ab}"
    );
    assert_eq!(ab["type"], "response");
    assert_eq!(ab["command"], "abort");
    assert_eq!(ab["ok"], true);

    let streamed = text_of(&rpc.seen);
    let full = "tok ".repeat(40);
    assert!(
        !streamed.is_empty() && streamed.len() < full.len(),
        "{streamed:?}"
    );
    assert!(full.starts_with(&streamed));
    let msgs = messages(&mut rpc, "m");
    assert_eq!(msgs.len(), 2, "{msgs:?}");
    assert_eq!(msgs[1]["role"], "assistant");
    assert_eq!(msgs[1]["aborted"], true, "{}", msgs[1]);
    assert_eq!(
        message_text(&msgs[1]),
        streamed,
        "history holds exactly what streamed"
    );
    // ...and so does the session file on disk.
    let file = rpc
        .sessions_dir()
        .join(format!("{}.jsonl", ready["session_id"].as_str().unwrap()));
    let disk = std::fs::read_to_string(&file).expect("session file");
    assert!(
        disk.lines().any(|l| l.contains("\"aborted\":true")),
        "aborted message persisted:\n{disk}"
    );

    let (frames, resp) = prompt(&mut rpc, "2", "[[n=3 delay_ms=0]]");
    assert_eq!(resp["ok"], true, "{resp}");
    assert!(resp.get("cancelled").is_none() || resp["cancelled"] == false);
    assert_eq!(text_of(&frames), "tok tok tok ");
}

/// A provider that ignores cancel and SIGTERM is killed: the turn still ends
/// within the bound, its process is gone, and the next turn gets a fresh one.
#[test]
fn abort_kills_a_provider_that_ignores_cancel() {
    let (mut rpc, _) = host(&["hang", "echo"], HANG);
    start_prompt(&mut rpc, "1", "anything");
    let d = first_delta(&mut rpc);
    assert_eq!(d["event"]["delta"], "partial ");
    let first_procs = fixture_pids(&rpc, "hang");
    assert!(
        !first_procs.is_empty(),
        "hang fixture running under the host"
    );
    rpc.send(json!({"type": "abort", "id": "a"}));
    let sent = Instant::now();
    let (_, end) = rpc.until("agent_end", |f| f["type"] == "agent_end");
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "abort took {:?}",
        sent.elapsed()
    );
    let ended_at = Instant::now();
    assert_eq!(end["stop_reason"], "aborted");
    let resp = rpc.recv();
    assert!(
        is_answer_to(&resp, "1") && resp["cancelled"] == true,
        "{resp}"
    );
    let ab = rpc.recv();
    assert!(is_answer_to(&ab, "a") && ab["ok"] == true, "{ab}");

    // The same model again: the extension is respawned and streams.
    start_prompt(&mut rpc, "2", "again");
    let d = first_delta(&mut rpc);
    assert_eq!(d["event"]["delta"], "partial ", "{d}");
    let ab = rpc.call(json!({"type": "abort"}), "a2");
    assert_eq!(ab["ok"], true, "{ab}");
    assert!(rpc
        .seen
        .iter()
        .any(|f| is_answer_to(f, "2") && f["cancelled"] == true));

    // Another model works too.
    let sm = rpc.call(json!({"type": "set_model", "model": ECHO}), "sm");
    assert_eq!(sm["model"], ECHO, "{sm}");
    let (frames, resp) = prompt(&mut rpc, "3", "still healthy");
    assert_eq!(resp["ok"], true, "{resp}");
    assert_eq!(text_of(&frames), "still healthy");

    // A second after the first abort, nothing of the first hang process lives.
    let left = Duration::from_secs(1).saturating_sub(ended_at.elapsed());
    let alive_now = procfs::wait_gone(&first_procs, left);
    assert!(
        alive_now.is_empty(),
        "hang fixture still alive: {alive_now:?}"
    );
}

/// What the echo fixture's process has seen (`[[show=cancels]]`): its pid,
/// the ids of the provider requests it got (this one last), of the
/// `$/cancel_request`s, and of the requests it answered `cancelled`.
fn seen_by_extension(rpc: &mut Rpc, id: &str) -> Value {
    let text = ok_prompt(rpc, id, "[[show=cancels]]");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("show=cancels: {e}: {text:?}"))
}

/// A cooperative extension is sent `$/cancel_request` naming the request it
/// is streaming, answers it cancelled within the grace, and is therefore
/// not killed: the next turn is served by the same process. (A host that
/// only waited out the grace and killed it would pass every outcome check
/// above; this one fails on the pid and the missing cancel.)
#[test]
fn abort_asks_a_cooperative_extension_to_cancel_and_keeps_its_process() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    let before = seen_by_extension(&mut rpc, "0");
    // Deltas 5 ms apart: the fixture checks for the cancel before each, so
    // it answers well within the host's 100 ms grace even on a busy machine.
    start_prompt(&mut rpc, "1", "[[n=3000 delay_ms=5]]");
    first_delta(&mut rpc);
    let ab = rpc.call(json!({"type": "abort"}), "a");
    assert_eq!(ab["ok"], true, "{ab}");
    let after = seen_by_extension(&mut rpc, "2");
    assert_eq!(
        after["pid"],
        before["pid"],
        "the extension was replaced after the abort: {before} then {after}\nstderr:\n{}",
        rpc.stderr()
    );
    let requests = after["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 3, "{after}");
    let aborted = &requests[1];
    assert_eq!(after["cancels"], json!([aborted]), "{after}");
    assert_eq!(after["answered_cancelled"], json!([aborted]), "{after}");
    finish(rpc);
}

/// Abort drops the queued follow-ups, each answered cancelled under its own
/// id and listed in the abort's `dropped`; a follow-up sent after runs.
#[test]
fn abort_drops_queued_follow_ups_and_lists_them() {
    let (mut rpc, _) = host(&["slow"], SLOW);
    start_prompt(&mut rpc, "1", "[[n=40 delay_ms=50]]");
    first_delta(&mut rpc);
    rpc.send(json!({"type": "follow_up", "id": "f1", "message": "first later"}));
    rpc.send(json!({"type": "follow_up", "id": "f2", "message": "second later"}));
    rpc.send(json!({"type": "abort", "id": "a"}));
    // Sent after the abort: not dropped, runs as the next turn.
    rpc.send(json!({"type": "follow_up", "id": "f3", "message": "after [[n=2 delay_ms=0]]"}));

    let (before, ab) = rpc.until("abort response", |f| is_answer_to(f, "a"));
    assert_eq!(ab["type"], "response");
    assert_eq!(ab["ok"], true);
    let end_at = before
        .iter()
        .position(|f| f["type"] == "agent_end")
        .expect("agent_end");
    assert_eq!(before[end_at]["stop_reason"], "aborted");
    let p1 = before
        .iter()
        .position(|f| is_answer_to(f, "1"))
        .expect("prompt answered");
    assert!(end_at < p1);
    assert_eq!(before[p1]["cancelled"], true);
    for id in ["f1", "f2"] {
        let r = before
            .iter()
            .find(|f| is_answer_to(f, id))
            .unwrap_or_else(|| panic!("{id} answered before the abort's response: {before:?}"));
        assert_eq!(r["type"], "response", "{r}");
        assert_eq!(r["command"], "follow_up");
        assert_eq!(r["ok"], true);
        assert_eq!(r["cancelled"], true);
    }
    let dropped = ab["dropped"].as_array().expect("dropped list");
    assert_eq!(dropped.len(), 2, "{ab}");
    for (d, id) in dropped.iter().zip(["f1", "f2"]) {
        assert_eq!(d["type"], "follow_up", "{d}");
        assert_eq!(d["id"], id);
    }

    let (frames, r3) = rpc.until("f3 response", |f| is_answer_to(f, "f3"));
    assert_eq!(r3["ok"], true, "{r3}");
    assert!(r3.get("cancelled").is_none() || r3["cancelled"] == false);
    assert_eq!(frames[0]["type"], "agent_start");
    assert_eq!(frames[0]["id"], "f3");
    assert_eq!(text_of(&frames), "tok tok ");
    let starts: Vec<&Value> = rpc
        .seen
        .iter()
        .filter(|f| f["type"] == "agent_start")
        .collect();
    assert_eq!(
        starts.len(),
        2,
        "dropped follow-ups never start: {starts:?}"
    );
}

/// Abort when idle is a plain success.
#[test]
fn abort_when_idle_is_ok() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    let r = rpc.call(json!({"type": "abort"}), "a");
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true);
}

/// A follow-up sent after an abort that kills an extension ignoring the
/// cancel was not aborted: it runs on the restarted extension.
#[test]
fn a_follow_up_after_an_abort_that_kills_the_extension_runs_normally() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    start_prompt(&mut rpc, "1", "[[n=3 hang_after=1]]");
    first_delta(&mut rpc);
    rpc.send(json!({"type": "abort", "id": "a"}));
    rpc.send(json!({"type": "follow_up", "id": "f", "message": "hello there"}));
    let (_, ab) = rpc.until("abort response", |f| is_answer_to(f, "a"));
    assert_eq!(ab["ok"], true, "{ab}");
    let (frames, r) = rpc.until("follow-up response", |f| is_answer_to(f, "f"));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["stop_reason"], "end_turn", "{r}");
    assert_eq!(text_of(&frames), "hello there");
}

/// An aborted `compact` stops its provider without waiting for it; a
/// prompt sent right after waits for the extension, which is then killed
/// for ignoring the cancel. The prompt was not aborted: it runs on the
/// restarted extension.
#[test]
fn a_prompt_after_an_aborted_compaction_that_kills_the_extension_runs() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    let (_, r) = prompt(&mut rpc, "1", "first words");
    assert_eq!(r["ok"], true, "{r}");
    rpc.send(json!({"type": "compact", "id": "c", "instructions": "[[n=3 hang_after=1]]"}));
    rpc.until("compaction_start", |f| f["type"] == "compaction_start");
    // Time for the summarisation request to reach the extension (nothing
    // on the wire says so; the abort must find the round running).
    std::thread::sleep(Duration::from_millis(500));
    rpc.send(json!({"type": "abort", "id": "a"}));
    let (_, c) = rpc.until("compact response", |f| is_answer_to(f, "c"));
    assert_eq!(c["cancelled"], true, "{c}");
    // The prompt goes once the host no longer counts the compaction as
    // running, well within the extension's 100 ms grace.
    for n in 0.. {
        let state = rpc.call(json!({"type": "get_state"}), &format!("s{n}"));
        if state["compacting"] == false {
            break;
        }
        assert!(n < 100, "still compacting: {state}");
    }
    rpc.send(json!({"type": "prompt", "id": "2", "message": "hello there"}));
    let (frames, r) = rpc.until("prompt response", |f| is_answer_to(f, "2"));
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(text_of(&frames), "hello there");
}
