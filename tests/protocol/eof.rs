//! How the process ends when a pipe closes: stdin EOF (running and queued
//! work still finishes and is answered) and a closed stdout.

use super::*;

// ---- 6. end of input ------------------------------------------------------

#[test]
fn eof_when_idle_exits_zero_without_output() {
    let (mut rpc, _) = echo_host();
    rpc.close_stdin();
    let rest = rpc.drain(Duration::from_secs(5));
    assert!(rest.is_empty(), "nothing after ready: {rest:?}");
    assert_eq!(exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s"), 0);
}

#[test]
fn eof_lets_the_running_prompt_and_queued_follow_ups_finish() {
    let (mut rpc, _) = echo_host();
    rpc.send(json!({"type": "prompt", "id": "p", "message": "slow one [[n=6 delay_ms=50]]"}));
    rpc.send(json!({"type": "follow_up", "id": "f1", "message": "second answer"}));
    rpc.send(json!({"type": "follow_up", "id": "f2", "message": "third answer"}));
    rpc.close_stdin();
    let frames = rpc.drain(Duration::from_secs(15));
    assert_eq!(
        exit_code(
            rpc.wait(Duration::from_secs(5)),
            &rpc,
            "5 s after the last answer"
        ),
        0
    );

    // Three full lifecycles, in order, none cancelled.
    let kinds: Vec<&str> = frames
        .iter()
        .filter(|f| f["type"] != "message_update")
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "agent_start",
            "agent_end",
            "response",
            "agent_start",
            "agent_end",
            "response",
            "agent_start",
            "agent_end",
            "response"
        ],
        "frames: {frames:?}"
    );
    let responses: Vec<&Value> = frames.iter().filter(|f| f["type"] == "response").collect();
    for (r, id) in responses.iter().zip(["p", "f1", "f2"]) {
        assert_eq!(r["id"], id, "{r}");
        assert_eq!(r["ok"], true, "{r}");
        assert!(r.get("cancelled").is_none(), "nothing was cancelled: {r}");
    }
    assert_eq!(
        text_of(&frames),
        format!("{}second answerthird answer", "tok ".repeat(6))
    );
}

#[test]
fn commands_pending_at_eof_are_still_answered() {
    // EOF means "no more commands", not "forget the last ones": set_model,
    // get_available_models and list_sessions answer from background work,
    // which must finish before the process exits.
    let (mut rpc, _) = echo_host();
    rpc.send_raw(
        concat!(
            r#"{"type":"set_model","id":"m","model":"echo:echo:echo-complete"}"#,
            "\n",
            r#"{"type":"get_available_models","id":"a"}"#,
            "\n",
            r#"{"type":"list_sessions","id":"l"}"#,
            "\n",
        )
        .as_bytes(),
    );
    rpc.close_stdin();
    rpc.drain(Duration::from_secs(10));
    assert_eq!(exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s"), 0);
    for id in ["m", "a", "l"] {
        let n = answers_of(&rpc.seen, &json!(id)).len();
        assert_eq!(
            n, 1,
            "command {id} answered {n} times before exit: {:?}",
            rpc.seen
        );
    }
}

#[test]
fn get_available_models_pending_at_eof_is_answered_even_if_an_extension_hangs() {
    let mut rpc = Spawn::new().ext("hang-init").start();
    rpc.ready();
    rpc.send(json!({"type": "get_available_models", "id": "a"}));
    rpc.close_stdin();
    rpc.drain(Duration::from_secs(15));
    let status = rpc.wait(Duration::from_secs(3)).expect("exits after EOF");
    assert_eq!(status.code(), Some(0), "{status:?}");
    let n = answers_of(&rpc.seen, &json!("a")).len();
    assert_eq!(
        n, 1,
        "get_available_models answered {n} times before exit: {:?}",
        rpc.seen
    );
}

// ---- 9. closed stdout -----------------------------------------------------

#[test]
fn closed_stdout_mid_flood_ends_the_host_quietly() {
    let flood = fixture("flood");
    let mut host = RawChild::spawn(&["--extension", flood.to_str().unwrap(), "--model", FLOOD]);
    let out = host.child.stdout.take().unwrap();
    let mut stdin = host.child.stdin.take().unwrap();
    // The reader thread reads `ready`, then some of the stream, then drops
    // the read end of the pipe: the host's next write gets EPIPE.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(out).lines();
        let ready = lines.next().and_then(|l| l.ok()).unwrap_or_default();
        let _ = tx.send(ready);
        let mut deltas = 0;
        for line in lines {
            let Ok(line) = line else { break };
            if line.contains("\"message_update\"") {
                deltas += 1;
                if deltas == 500 {
                    break;
                }
            }
        }
        let _ = tx.send(format!("{deltas}"));
        // `lines` (and with it stdout) is dropped here.
    });
    let ready = rx.recv_timeout(READ_TIMEOUT).expect("ready line");
    assert!(ready.contains("\"ready\""), "{ready}");
    let sid = serde_json::from_str::<Value>(&ready).unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let text = "flood me [[n=1000000]]";
    writeln!(
        stdin,
        "{}",
        json!({"type": "prompt", "id": "p", "message": text})
    )
    .unwrap();
    stdin.flush().unwrap();
    let deltas = rx
        .recv_timeout(READ_TIMEOUT)
        .unwrap_or_else(|_| panic!("stream did not start; stderr:\n{}", host.stderr()));
    assert_eq!(deltas, "500", "stream ended early");

    // stdin stays open: the exit must come from the closed stdout alone.
    let status = host.wait(Duration::from_secs(5)).unwrap_or_else(|| {
        panic!(
            "host still running 5 s after its stdout closed; stderr:\n{}",
            host.stderr()
        )
    });
    let stderr = host.stderr();
    assert!(!stderr.contains("panicked"), "no panic on EPIPE:\n{stderr}");
    assert!(
        status.code().is_some(),
        "killed by a signal: {status:?}\n{stderr}"
    );
    // "Exits quietly": the contract names no status; 101 would be a panic.
    assert_ne!(status.code(), Some(101), "exits quietly\n{stderr}");
    drop(stdin);
    // "aborts the turn, persists": the partial answer is on disk, aborted.
    assert_partial_persisted(&host.data, &sid, text, "closed stdout");
}
