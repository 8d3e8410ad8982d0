//! A 1,000,000-delta stream under stress: a 2,000-command burst in the
//! middle of it, and a client that stops reading stdout for a while. Nothing
//! is lost and the host stays small.

use super::*;

// ---- 2. command burst mid-flood -------------------------------------------

/// 2,000 `get_state` in one write while a 1,000,000-delta stream runs: every
/// one answered, once, in order, while the stream still runs; the stream's
/// text is still complete.
#[test]
fn burst_of_2000_commands_during_a_million_delta_stream() {
    const N: usize = 2_000;
    const DELTAS: usize = 1_000_000;
    let mut raw = Raw::spawn(&ext_args("flood", FLOOD), None, None);
    assert_eq!(raw.recv(READ_TIMEOUT, "ready")["type"], "ready");
    raw.send(json!({"type": "prompt", "id": "flood", "message": format!("[[n={DELTAS}]]")}));
    let start = raw.recv(READ_TIMEOUT, "agent_start");
    assert_eq!(start["type"], "agent_start", "{start}");
    let pid = start["prompt_id"].as_str().unwrap().to_owned();
    let t_wait = Instant::now();
    while raw.text_len(&pid) < 4 * 1000 {
        assert!(t_wait.elapsed() < READ_TIMEOUT, "the flood never started");
        std::thread::sleep(Duration::from_millis(5));
    }

    let mut burst = Vec::with_capacity(N * 40);
    for i in 0..N {
        burst.extend_from_slice(format!(r#"{{"type":"get_state","id":{i}}}"#).as_bytes());
        burst.push(b'\n');
    }
    let t0 = Instant::now();
    let text_at_burst = raw.text_len(&pid);
    raw.send_raw(&burst);
    let mut next = 0usize;
    let mut streaming = 0usize;
    let mut last_answer = Duration::ZERO;
    let mut text_at_last = 0;
    let mut resp = None;
    let mut agent_end_at = None;
    while resp.is_none() {
        let f = raw.recv(Duration::from_secs(60), "burst answers and the flood's end");
        match f["type"].as_str() {
            Some("response") if f["command"] == "get_state" => {
                assert_eq!(f["id"], json!(next), "answers come in command order: {f}");
                assert_eq!(f["ok"], true, "{f}");
                if f["streaming"] == true {
                    streaming += 1;
                }
                next += 1;
                last_answer = t0.elapsed();
                text_at_last = raw.text_len(&pid);
            }
            Some("agent_end") => agent_end_at = Some(next),
            Some("response") if f["id"] == "flood" => resp = Some(f),
            _ => panic!("unexpected frame: {f}"),
        }
    }
    let resp = resp.unwrap();
    let total = t0.elapsed();
    assert_eq!(resp["ok"], true, "{resp}\nstderr:\n{}", raw.stderr());
    assert_eq!(next, N, "every get_state answered before the turn ended");
    assert_eq!(
        agent_end_at,
        Some(N),
        "all {N} answers arrived while the stream was still running"
    );
    assert_eq!(streaming, N, "each answer saw the turn running");
    // None dropped, none doubled.
    raw.send(json!({"type": "get_state", "id": "after"}));
    let (extra, after) = raw.answer(&json!("after"), READ_TIMEOUT);
    assert!(extra.is_empty(), "frames after the turn: {extra:?}");
    assert_eq!(after["streaming"], false, "{after}");
    let (text, frames) = raw.text(&pid);
    assert_eq!(
        text.len(),
        4 * DELTAS,
        "text length ({frames} delta frames)"
    );
    assert!(text == "tok ".repeat(DELTAS), "the flood's text differs");
    eprintln!(
        "burst of {N} get_state mid-flood: all answered {last_answer:?} after the write \
         (text grew {} -> {} B meanwhile); the {DELTAS}-delta turn ended {total:?} after the burst; \
         host peak RSS {} KiB",
        text_at_burst,
        text_at_last,
        vm_hwm_kib(raw.pid()).unwrap_or(0)
    );
    raw.close_stdin();
    let st = raw.wait(Duration::from_secs(5));
    assert!(st.is_some_and(|s| s.success()), "exit {st:?}");
}

// ---- 3. stalled reader ----------------------------------------------------

/// The client stops reading stdout for 3 s during a 1,000,000-delta reply,
/// then reads everything: the text is exactly "tok " × 1,000,000 and the
/// host's peak RSS stays under 32 MiB (back-pressure, not buffering).
#[test]
fn stalled_reader_during_a_million_delta_reply_loses_nothing_and_stays_small() {
    const DELTAS: usize = 1_000_000;
    let mut raw = Raw::spawn(&ext_args("flood", FLOOD), None, None);
    assert_eq!(raw.recv(READ_TIMEOUT, "ready")["type"], "ready");
    raw.send(json!({"type": "prompt", "id": "1", "message": format!("[[n={DELTAS}]]")}));
    let start = raw.recv(READ_TIMEOUT, "agent_start");
    let pid = start["prompt_id"].as_str().unwrap().to_owned();
    let t_wait = Instant::now();
    while raw.text_len(&pid) < 4 * 5_000 {
        assert!(t_wait.elapsed() < READ_TIMEOUT, "the flood never started");
        std::thread::sleep(Duration::from_millis(5));
    }

    // Stall: the reader thread blocks before its next read.
    let gate = raw.gate.clone();
    let paused = gate.lock().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let at_stall = raw.text_len(&pid);
    let rss_before = vm_hwm_kib(raw.pid()).unwrap_or(0);
    std::thread::sleep(Duration::from_secs(3));
    let during = raw.text_len(&pid);
    let rss_stalled = vm_hwm_kib(raw.pid()).unwrap_or(0);
    let alive_during = alive(raw.pid());
    drop(paused);
    assert_eq!(at_stall, during, "the reader really was stalled");
    assert!(alive_during, "host died while stdout was stalled");

    // Read to the end, sampling the host's peak RSS as the text grows, so a
    // failure can tell streaming from the end of the turn.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut hwm_streaming = 0;
    let resp = loop {
        match raw.recv_within(Duration::from_millis(20)) {
            Some(f) if f["type"] == "response" && f["id"] == "1" => break f,
            Some(_) => {}
            None => {
                assert!(Instant::now() < deadline, "no response within 60 s");
                if raw.text_len(&pid) < 4 * DELTAS {
                    hwm_streaming = vm_hwm_kib(raw.pid()).unwrap_or(0);
                }
            }
        }
    };
    assert_eq!(resp["ok"], true, "{resp}\nstderr:\n{}", raw.stderr());
    let (text, frames) = raw.text(&pid);
    assert_eq!(
        text.len(),
        4 * DELTAS,
        "text length after the stall ({frames} delta frames)"
    );
    assert!(text == "tok ".repeat(DELTAS), "the text differs");
    let peak = vm_hwm_kib(raw.pid()).expect("VmHWM");
    // The executable's own resident pages are not buffering: a debug build
    // maps ~200 MB of it, and how much of that is resident grows with the
    // code linked in (the release build is what the bench's 32 MB is for).
    let binary = rss_file_kib(raw.pid()).expect("RssFile");
    let figures = format!(
        "{at_stall} B of text before a 3 s stall; host peak RSS {rss_before} KiB before the stall, \
         {rss_stalled} KiB after it, {hwm_streaming} KiB while the last deltas streamed, \
         {peak} KiB after the turn ended, {binary} KiB of it file-backed; {frames} delta frames"
    );
    eprintln!("stalled reader: {figures}");
    assert!(
        peak.saturating_sub(binary) < 32 * 1024,
        "host peak RSS less file-backed pages {} KiB >= 32 MiB ({figures})",
        peak.saturating_sub(binary)
    );
    raw.close_stdin();
    let st = raw.wait(Duration::from_secs(5));
    assert!(st.is_some_and(|s| s.success()), "exit {st:?}");
}
