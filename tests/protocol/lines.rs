//! How lines are cut and bounded (the frame cap, CR, blank lines, a last line
//! without a newline, logs kept off stdout) and hostile input (deep nesting,
//! NUL bytes, bursts of garbage and of commands).

use super::*;

// ---- 3. frame cap and line handling ---------------------------------------

#[test]
fn line_over_max_frame_bytes_is_frame_too_large_then_next_command_works() {
    let mut rpc = Spawn::new().arg("--max-frame-bytes").arg("200").start();
    rpc.ready();
    let before = get_state(&mut rpc, &fresh_id("state"));
    // A well-formed command with an id: the id is not read from an oversized
    // line (it was never buffered), so the error carries id null.
    let big = format!(
        r#"{{"type":"get_state","id":"big","pad":"{}"}}"#,
        "x".repeat(1000)
    );
    expect_error(&mut rpc, big.as_bytes(), "frame_too_large", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "oversized line");
    // Several in a row, then a good one.
    expect_error(&mut rpc, &[b'y'; 5000], "frame_too_large", Value::Null);
    expect_error(&mut rpc, &[b'z'; 201], "frame_too_large", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "oversized lines");
}

/// A `get_state` padded to exactly `len` bytes (newline excluded).
fn padded_get_state(id: &str, len: usize) -> Vec<u8> {
    let bare = format!(r#"{{"type":"get_state","id":"{id}","pad":""}}"#);
    assert!(bare.len() <= len);
    let line = format!(
        r#"{{"type":"get_state","id":"{id}","pad":"{}"}}"#,
        "p".repeat(len - bare.len())
    );
    assert_eq!(line.len(), len);
    line.into_bytes()
}

#[test]
fn line_of_exactly_the_cap_is_accepted_and_one_more_byte_is_not() {
    let mut rpc = Spawn::new().arg("--max-frame-bytes").arg("200").start();
    rpc.ready();
    let mut exact = padded_get_state("exact", 200);
    exact.push(b'\n');
    rpc.send_raw(&exact);
    let r = rpc.recv();
    assert_eq!(
        r["type"], "response",
        "a 200-byte line is within a 200-byte cap: {r}"
    );
    assert_eq!(r["id"], "exact");

    // `\r\n` ending: the `\r` belongs to the line ending, not the frame.
    let mut crlf = padded_get_state("crlf", 200);
    crlf.extend_from_slice(b"\r\n");
    rpc.send_raw(&crlf);
    let r = rpc.recv();
    assert_eq!(
        r["type"], "response",
        "200 bytes + CRLF is within the cap: {r}"
    );
    assert_eq!(r["id"], "crlf");

    expect_error(
        &mut rpc,
        &padded_get_state("over", 201),
        "frame_too_large",
        Value::Null,
    );
    let r = rpc.call(json!({"type": "get_state"}), "after");
    assert_eq!(r["type"], "response", "{r}");
}

#[test]
fn endless_line_is_discarded_without_growing_memory() {
    const TOTAL: usize = 64 * 1024 * 1024;
    const CHUNK: usize = 64 * 1024;
    let mut host = RawChild::spawn(&[]);
    let frames = host.frames();
    let ready = recv_raw(&frames, "ready", &host);
    assert_eq!(ready["type"], "ready", "{ready}");
    let pid = host.child.id();

    // The writer thread owns stdin so that a host that stopped reading fails
    // the test by timeout (below) instead of blocking it forever.
    let mut stdin: ChildStdin = host.child.stdin.take().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let chunk = vec![b'x'; CHUNK];
        let mut result = Ok(());
        for _ in 0..TOTAL / CHUNK {
            result = stdin.write_all(&chunk);
            if result.is_err() {
                break;
            }
        }
        let _ = done_tx.send((result, stdin));
    });
    let (result, mut stdin) = done_rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            panic!(
                "64 MiB were not consumed within 30 s; stderr:\n{}",
                host.stderr()
            )
        });
    result.expect("writing the long line");

    // All 64 MiB went in and no newline yet: the host holds at most the cap.
    let peak = vm_hwm_kib(pid).expect("VmHWM readable");
    assert!(
        peak < 40 * 1024,
        "peak RSS {peak} KiB after a 64 MiB line (cap 1 MiB)"
    );

    stdin
        .write_all(b"\n{\"type\":\"get_state\",\"id\":\"after\"}\n")
        .unwrap();
    stdin.flush().unwrap();
    let err = recv_raw(&frames, "frame_too_large", &host);
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], "frame_too_large", "{err}");
    assert_eq!(err["id"], Value::Null, "{err}");
    let r = recv_raw(&frames, "get_state after the long line", &host);
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], "after", "{r}");
    let peak = vm_hwm_kib(pid).expect("VmHWM readable");
    assert!(
        peak < 40 * 1024,
        "peak RSS {peak} KiB after a 64 MiB line (cap 1 MiB)"
    );
    drop(stdin);
    let status = host.wait(Duration::from_secs(5)).expect("exits at EOF");
    assert!(status.success(), "{status:?}");
}

#[test]
fn trailing_carriage_return_is_tolerated() {
    let (mut rpc, _) = echo_host();
    rpc.send_raw(b"{\"type\":\"get_state\",\"id\":\"cr\"}\r\n");
    let r = rpc.recv();
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], "cr");
    // The prompt text does not pick up the `\r` either.
    rpc.send_raw(b"{\"type\":\"prompt\",\"id\":\"p\",\"message\":\"windows line\"}\r\n");
    let (frames, resp) = rpc.until("prompt answer", |v| {
        v["id"] == "p" && v["type"] == "response"
    });
    assert_eq!(resp["ok"], true, "{resp}");
    assert_eq!(text_of(&frames), "windows line");
}

#[test]
fn blank_lines_are_ignored() {
    let (mut rpc, _) = echo_host();
    rpc.send_raw(b"\n\n\r\n   \n\t\n");
    rpc.send_raw(b"{\"type\":\"get_state\",\"id\":\"after-blanks\"}\n");
    // The very next frame is the answer: no error for the blank lines.
    let r = rpc.recv();
    assert_eq!(
        r["type"], "response",
        "blank lines must produce nothing: {r}"
    );
    assert_eq!(r["id"], "after-blanks");
    assert!(rpc.recv_within(Duration::from_millis(200)).is_none());
}

#[test]
fn last_line_without_a_newline_still_counts_at_eof() {
    // Not in the contract; a client writing `printf '{...}' | rpc` expects it.
    let (mut rpc, _) = echo_host();
    rpc.send_raw(br#"{"type":"get_state","id":"last"}"#);
    rpc.close_stdin();
    let rest = rpc.drain(Duration::from_secs(5));
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["id"], "last", "{}", rest[0]);
    assert_eq!(exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s"), 0);
}

#[test]
fn logs_go_to_stderr_never_to_stdout() {
    // With every log level on, stdout still carries only protocol frames
    // (the harness fails on any non-JSON line).
    let mut rpc = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .arg("--log-level")
        .arg("trace")
        .start();
    rpc.ready();
    let (_, r) = prompt(&mut rpc, "p", "some words");
    assert_eq!(r["ok"], true, "{r}");
    expect_error(&mut rpc, b"not json", "parse_error", Value::Null);
    rpc.call(json!({"type": "shutdown"}), "bye");
    rpc.drain(Duration::from_secs(5));
    assert_eq!(exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s"), 0);
    let known = [
        "ready",
        "response",
        "error",
        "agent_start",
        "agent_end",
        "message_update",
    ];
    for f in &rpc.seen {
        assert!(
            known.contains(&f["type"].as_str().unwrap_or("")),
            "unexpected frame on stdout: {f}"
        );
    }
}

// ---- 4. hostile input -----------------------------------------------------

#[test]
fn deeply_nested_json_is_parse_error_and_the_host_lives() {
    let (mut rpc, before) = primed_host();
    let open = "[".repeat(100_000);
    expect_error(&mut rpc, open.as_bytes(), "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "100k-deep '['");
    // Balanced nesting is valid JSON in principle but beyond any sane depth.
    let balanced = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    expect_error(&mut rpc, balanced.as_bytes(), "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "100k-deep balanced array");
    let objects = format!(
        r#"{{"type":"get_state","id":"d","x":{}}}"#,
        r#"{"a":"#.repeat(50_000)
    );
    expect_error(&mut rpc, objects.as_bytes(), "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "50k-deep objects");
}

#[test]
fn nul_bytes_in_a_line_are_rejected_or_carried_safely() {
    let (mut rpc, before) = primed_host();
    expect_error(&mut rpc, b"\0\0\0\0", "parse_error", Value::Null);
    assert_state_unchanged(&mut rpc, &before, "NUL bytes");
    // A raw NUL inside a JSON string is not valid JSON.
    expect_error(
        &mut rpc,
        b"{\"type\":\"get_state\",\"id\":\"a\0b\"}",
        "parse_error",
        Value::Null,
    );
    expect_error(
        &mut rpc,
        b"{\"type\":\"get_state\",\"id\":\"c\"}\0",
        "parse_error",
        Value::Null,
    );
    assert_state_unchanged(&mut rpc, &before, "NUL bytes");
    // An escaped NUL is valid and comes back verbatim.
    rpc.send_raw(b"{\"type\":\"get_state\",\"id\":\"n\\u0000ul\"}\n");
    let r = rpc.recv();
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["id"], "n\u{0}ul");
}

#[test]
fn burst_of_ten_thousand_garbage_lines_gets_ten_thousand_errors() {
    const N: usize = 10_000;
    let (mut rpc, before) = primed_host();
    let mut burst = Vec::new();
    let mut expected = Vec::new();
    for i in 0..N {
        let (line, code, id) = match i % 4 {
            0 => (format!("garbage line {i} ]]"), "parse_error", Value::Null),
            1 => (format!("[{i}]"), "invalid_request", Value::Null),
            2 => (format!(r#"{{"id":{i}}}"#), "invalid_request", json!(i)),
            _ => (
                format!(r#"{{"type":"nope","id":{i}}}"#),
                "unknown_command",
                json!(i),
            ),
        };
        burst.extend_from_slice(line.as_bytes());
        burst.push(b'\n');
        expected.push((code, id));
    }
    rpc.send_raw(&burst);
    for (i, (code, id)) in expected.iter().enumerate() {
        let f = rpc.recv();
        assert_eq!(f["type"], "error", "line {i}: {f}");
        assert_eq!(f["code"], *code, "line {i}: {f}");
        assert_eq!(f["id"], *id, "line {i}: {f}");
    }
    assert_state_unchanged(&mut rpc, &before, "10,000 garbage lines");
}

#[test]
fn burst_of_two_thousand_get_state_is_answered_in_order() {
    const N: usize = 2_000;
    let (mut rpc, _) = echo_host();
    let mut burst = Vec::new();
    for i in 0..N {
        burst.extend_from_slice(format!(r#"{{"type":"get_state","id":{i}}}"#).as_bytes());
        burst.push(b'\n');
    }
    rpc.send_raw(&burst);
    for i in 0..N {
        let r = rpc.recv();
        assert_eq!(r["type"], "response", "#{i}: {r}");
        assert_eq!(r["id"], json!(i), "answers come in command order");
        assert_eq!(r["command"], "get_state");
    }
    assert!(
        rpc.recv_within(Duration::from_millis(200)).is_none(),
        "one answer each"
    );
}
