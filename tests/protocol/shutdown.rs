//! `shutdown` and the signals that act like it: pending commands answered,
//! a running prompt cancelled and persisted, exit 0, and promptly even when a
//! provider ignores cancel.

use super::*;

// ---- 7. shutdown ----------------------------------------------------------

#[test]
fn shutdown_when_idle_answers_ok_and_exits_zero() {
    let (mut rpc, _) = echo_host();
    rpc.send(json!({"type": "shutdown", "id": "bye"}));
    let r = rpc.recv();
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], "bye");
    assert_eq!(r["ok"], true);
    let t = Instant::now();
    // Contract: exits within 1 s; bounded generously for a loaded machine.
    let code = exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown");
    assert_eq!(code, 0, "took {:?}", t.elapsed());
    assert!(
        rpc.drain(Duration::from_secs(1)).is_empty(),
        "nothing after the shutdown response"
    );
}

#[test]
fn commands_sent_before_shutdown_are_still_answered() {
    // set_model is answered after the extension confirms the model; a
    // shutdown right behind it must not swallow that answer.
    let (mut rpc, _) = echo_host();
    rpc.send_raw(
        concat!(
            r#"{"type":"set_model","id":"m","model":"echo:echo:echo-complete"}"#,
            "\n",
            r#"{"type":"shutdown","id":"bye"}"#,
            "\n",
        )
        .as_bytes(),
    );
    rpc.drain(Duration::from_secs(5));
    assert_eq!(
        exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown"),
        0
    );
    for id in ["m", "bye"] {
        let n = answers_of(&rpc.seen, &json!(id)).len();
        assert_eq!(n, 1, "command {id} answered {n} times: {:?}", rpc.seen);
    }
}

#[test]
fn shutdown_mid_stream_cancels_the_prompt_persists_and_exits_zero() {
    let mut rpc = Spawn::new().ext("slow").model(SLOW).start();
    let sid = rpc.ready()["session_id"].as_str().unwrap().to_owned();
    let text = "long answer [[n=200 delay_ms=50]]";
    rpc.send(json!({"type": "prompt", "id": "p", "message": text}));
    wait_for_deltas(&mut rpc, 3);
    rpc.send(json!({"type": "shutdown", "id": "bye"}));
    let t = Instant::now();
    let rest = rpc.drain(Duration::from_secs(5));
    let code = exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown");
    assert_eq!(code, 0);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        t.elapsed()
    );

    // Both commands answered exactly once; the prompt as cancelled, after its
    // agent_end.
    let bye = answers_of(&rest, &json!("bye"));
    assert_eq!(bye.len(), 1, "{rest:?}");
    assert_eq!(bye[0]["ok"], true);
    let p = answers_of(&rpc.seen, &json!("p"));
    assert_eq!(p.len(), 1, "the prompt must get its one answer: {rest:?}");
    assert_eq!(p[0]["type"], "response", "{}", p[0]);
    assert_eq!(p[0]["cancelled"], true, "{}", p[0]);
    let end = rest
        .iter()
        .position(|f| f["type"] == "agent_end")
        .expect("agent_end");
    let resp = rest.iter().position(|f| f["id"] == "p").unwrap();
    assert!(end < resp, "agent_end before the prompt's response");
    assert_eq!(rest[end]["stop_reason"], "aborted");

    assert_partial_persisted(&rpc.data, &sid, text, "shutdown");
}

#[test]
fn shutdown_mid_stream_with_a_provider_that_ignores_cancel_still_exits_promptly() {
    // The `hang` fixture ignores $/cancel_request, SIGTERM and SIGINT: only a
    // kill ends it, and the host must not wait on it.
    let mut rpc = Spawn::new().ext("hang").model("hang:hang:hang-1").start();
    rpc.ready();
    rpc.send(json!({"type": "prompt", "id": "p", "message": "never ends"}));
    wait_for_deltas(&mut rpc, 1);
    let kids = descendants(rpc.pid());
    rpc.send(json!({"type": "shutdown", "id": "bye"}));
    let t = Instant::now();
    rpc.drain(Duration::from_secs(5));
    let code = exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown");
    assert_eq!(code, 0);
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        t.elapsed()
    );
    let p = answers_of(&rpc.seen, &json!("p"));
    assert_eq!(
        p.len(),
        1,
        "the prompt must get its one answer: {:?}",
        rpc.seen
    );
    assert_eq!(p[0]["cancelled"], true, "{}", p[0]);
    // The provider process does not outlive the host.
    let deadline = Instant::now() + Duration::from_secs(2);
    while kids.iter().any(|&k| alive(k)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let left: Vec<u32> = kids.into_iter().filter(|&k| alive(k)).collect();
    for &k in &left {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(k.to_string())
            .status();
    }
    assert!(left.is_empty(), "provider processes left running: {left:?}");
}

#[test]
fn shutdown_answers_queued_follow_ups_as_cancelled() {
    // Every command gets exactly one answer, even ones that never ran.
    let mut rpc = Spawn::new().ext("slow").model(SLOW).start();
    rpc.ready();
    rpc.send(json!({"type": "prompt", "id": "p", "message": "[[n=200 delay_ms=50]]"}));
    rpc.send(json!({"type": "follow_up", "id": "f1", "message": "later"}));
    rpc.send(json!({"type": "follow_up", "id": 2, "message": "later still"}));
    wait_for_deltas(&mut rpc, 1);
    assert_eq!(get_state(&mut rpc, &fresh_id("state"))["queued"], 2);
    rpc.send(json!({"type": "shutdown", "id": "bye"}));
    rpc.drain(Duration::from_secs(5));
    assert_eq!(
        exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown"),
        0
    );
    for id in [json!("p"), json!("f1"), json!(2)] {
        let a = answers_of(&rpc.seen, &id);
        assert_eq!(
            a.len(),
            1,
            "{id} answered {} times: {:?}",
            a.len(),
            rpc.seen
        );
        assert_eq!(a[0]["type"], "response", "{}", a[0]);
        assert_eq!(a[0]["cancelled"], true, "{}", a[0]);
    }
    assert_eq!(answers_of(&rpc.seen, &json!("bye")).len(), 1);
    // Only the prompt ever started.
    let starts = rpc
        .seen
        .iter()
        .filter(|f| f["type"] == "agent_start")
        .count();
    assert_eq!(starts, 1);
}

// ---- 8. signals -----------------------------------------------------------

fn signal_mid_stream(sig: &str) {
    let mut rpc = Spawn::new().ext("slow").model(SLOW).start();
    let sid = rpc.ready()["session_id"].as_str().unwrap().to_owned();
    let text = format!("interrupt me {sig} [[n=200 delay_ms=50]]");
    rpc.send(json!({"type": "prompt", "id": "p", "message": text}));
    wait_for_deltas(&mut rpc, 3);
    rpc.signal(sig);
    let t = Instant::now();
    let rest = rpc.drain(Duration::from_secs(5));
    let code = exit_code(
        rpc.wait(Duration::from_secs(3)),
        &rpc,
        &format!("3 s after SIG{sig}"),
    );
    assert_eq!(code, 0, "SIG{sig} acts like shutdown: exit 0");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        t.elapsed()
    );
    // Like shutdown: the running prompt still gets its one (cancelled) answer.
    let p = answers_of(&rpc.seen, &json!("p"));
    assert_eq!(p.len(), 1, "prompt answered once: {rest:?}");
    assert_eq!(p[0]["cancelled"], true, "{}", p[0]);
    assert_partial_persisted(&rpc.data, &sid, &text, &format!("SIG{sig}"));
    assert!(!rpc.stderr().contains("panicked"), "{}", rpc.stderr());
}

#[test]
fn sigterm_when_idle_exits_zero_without_output() {
    let (mut rpc, _) = echo_host();
    get_state(&mut rpc, &fresh_id("state"));
    rpc.signal("TERM");
    let rest = rpc.drain(Duration::from_secs(5));
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(
        exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after SIGTERM"),
        0
    );
}

/// A shell that sends `sig` to `pid` as soon as it reads a line: already
/// running, so the signal follows the trigger by microseconds, not by the
/// time it takes to start a `kill` process.
fn armed_kill(sig: &str, pid: u32) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("read _ && kill -{sig} {pid}"))
        .stdin(Stdio::piped())
        .spawn()
        .expect("sh")
}

#[test]
fn signal_right_after_ready_still_acts_like_shutdown() {
    // `ready` tells the client the host is up; from then on SIGTERM/SIGINT
    // must mean "shut down cleanly" (exit 0), not the default kill. Sent the
    // moment `ready` is read, several times, since the window is short.
    for (n, sig) in ["TERM", "INT"].iter().cycle().take(40).enumerate() {
        let mut rpc = Spawn::new().start();
        let mut killer = armed_kill(sig, rpc.pid());
        rpc.ready();
        killer.stdin.take().unwrap().write_all(b"go\n").unwrap();
        common::wait_timeout(&mut killer, Duration::from_secs(5)).expect("kill ran");
        let status = rpc.wait(Duration::from_secs(3)).expect("exits");
        assert_eq!(
            status.code(),
            Some(0),
            "try {n}: SIG{sig} right after ready: {status:?} (killed by the signal's default action?)"
        );
    }
}

#[test]
fn sigterm_mid_stream_persists_the_partial_answer_and_exits_zero() {
    signal_mid_stream("TERM");
}

#[test]
fn sigint_mid_stream_persists_the_partial_answer_and_exits_zero() {
    signal_mid_stream("INT");
}
