//! The prompt lifecycle against the real `rpc` binary and the fake provider
//! extensions: event order, usage, busy, reads during a stream, abort (also
//! against a provider that ignores it), steer, follow_up, set_model, stray
//! events after an abort, and a large reply.
//!
//! The only timing assertions are the contract's own bounds, asserted
//! generously (abort "within 200 ms" is checked as < 1 s).

mod common;

use std::time::{Duration, Instant};

use common::procfs::{self, alive, descendants, vm_hwm_kib};
use common::*;
use serde_json::{json, Value};

/// Starts a host with the given fixtures and model; returns it and `ready`.
fn host(exts: &[&str], model: &str) -> (Rpc, Value) {
    let mut s = Spawn::new();
    for e in exts {
        s = s.ext(e);
    }
    let mut rpc = s.model(model).start();
    let ready = rpc.ready();
    (rpc, ready)
}

fn is_update(f: &Value) -> bool {
    f["type"] == "message_update"
}

/// Sends a prompt and reads up to its `agent_start`; returns the prompt id.
fn start_prompt(rpc: &mut Rpc, id: &str, message: &str) -> String {
    rpc.send(json!({"type": "prompt", "id": id, "message": message}));
    let (before, start) = rpc.until("agent_start", |f| f["type"] == "agent_start");
    assert!(before.is_empty(), "frames before agent_start: {before:?}");
    assert_eq!(
        start["id"], id,
        "agent_start carries the command id: {start}"
    );
    start["prompt_id"].as_str().expect("prompt_id").to_owned()
}

/// Reads until the first `message_update` (the stream is really running).
fn first_delta(rpc: &mut Rpc) -> Value {
    rpc.until("first delta", is_update).1
}

/// Live descendants of the host whose command line names the given mode.
fn fixture_pids(rpc: &Rpc, mode: &str) -> Vec<u32> {
    descendants(rpc.pid())
        .into_iter()
        .filter(|&p| {
            procfs::cmdline_args(p).is_some_and(|args| {
                args.iter()
                    .any(|a| a == b"fakeprov.py" || a.ends_with(b"/fakeprov.py"))
                    && args.iter().any(|a| a == mode.as_bytes())
            })
        })
        .collect()
}

// ---------------------------------------------------------------- lifecycle

/// agent_start → text deltas only → agent_end → response, all under one id.
#[test]
fn prompt_lifecycle_is_start_deltas_end_response() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    let (frames, resp) = prompt(&mut rpc, "1", "hello there friend");
    let start = &frames[0];
    assert_eq!(start["type"], "agent_start", "{frames:?}");
    assert_eq!(start["id"], "1");
    let pid = start["prompt_id"].as_str().expect("prompt_id is a string");
    let end = frames.last().unwrap();
    assert_eq!(
        end["type"], "agent_end",
        "agent_end comes right before the response"
    );
    assert_eq!(end["prompt_id"], pid);
    assert_eq!(end["stop_reason"], "end_turn");
    for k in [
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    ] {
        assert!(end["usage"][k].is_u64(), "usage.{k} missing: {end}");
    }
    let middle = &frames[1..frames.len() - 1];
    assert!(!middle.is_empty());
    for f in middle {
        assert!(
            is_update(f),
            "only message_update between start and end: {f}"
        );
        assert_eq!(f["prompt_id"], pid);
        // Deltas only: an event is exactly {type, delta}, never a whole message.
        let ev = f["event"].as_object().unwrap();
        assert_eq!(ev["type"], "text_delta", "{f}");
        assert_eq!(
            ev.len(),
            2,
            "a delta event carries only type and delta: {f}"
        );
    }
    // The echo fixture sends one word per delta; each arrives on its own.
    let deltas: Vec<&str> = middle
        .iter()
        .map(|f| f["event"]["delta"].as_str().unwrap())
        .collect();
    assert_eq!(deltas, ["hello", " there", " friend"]);
    assert_eq!(resp["type"], "response");
    assert_eq!(resp["id"], "1");
    assert_eq!(resp["command"], "prompt");
    assert_eq!(resp["ok"], true);
    assert!(
        resp.get("cancelled").is_none() || resp["cancelled"] == false,
        "{resp}"
    );
}

/// Thinking streams as `thinking_delta`, before the text.
#[test]
fn thinking_streams_as_thinking_delta() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    let (frames, resp) = prompt(&mut rpc, "1", "hi [[thinking=2]]");
    assert_eq!(resp["ok"], true, "{resp}");
    let events: Vec<(String, String)> = frames
        .iter()
        .filter(|f| is_update(f))
        .map(|f| {
            (
                f["event"]["type"].as_str().unwrap().to_owned(),
                f["event"]["delta"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expect: Vec<(String, String)> = [
        ("thinking_delta", "hmm "),
        ("thinking_delta", "hmm "),
        ("text_delta", "hi"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(events, expect);
}

/// The provider's usage numbers reach agent_end and accumulate in the stats.
#[test]
fn usage_reaches_agent_end_and_accumulates_in_session_stats() {
    let (mut rpc, ready) = host(&["echo"], ECHO);
    let (frames, _) = prompt(
        &mut rpc,
        "1",
        "a [[usage_in=7 usage_out=5 cache_read=3 cache_write=2]]",
    );
    let end = frames.iter().find(|f| f["type"] == "agent_end").unwrap();
    assert_eq!(
        end["usage"],
        json!({"input_tokens": 7, "output_tokens": 5,
               "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2})
    );
    let (frames, _) = prompt(
        &mut rpc,
        "2",
        "b [[usage_in=11 usage_out=13 cache_read=17 cache_write=19]]",
    );
    let end = frames.iter().find(|f| f["type"] == "agent_end").unwrap();
    assert_eq!(
        end["usage"]["input_tokens"], 11,
        "agent_end is per turn: {end}"
    );
    let stats = rpc.call(json!({"type": "get_session_stats"}), "s");
    assert_eq!(stats["ok"], true, "{stats}");
    assert_eq!(stats["session_id"], ready["session_id"]);
    assert_eq!(stats["model"], ECHO);
    assert_eq!(stats["turns"], 2);
    assert_eq!(stats["message_count"], 4);
    assert_eq!(stats["input_tokens"], 18);
    assert_eq!(stats["output_tokens"], 18);
    assert_eq!(stats["cache_read_input_tokens"], 20);
    assert_eq!(stats["cache_creation_input_tokens"], 21);
    assert!(
        stats.get("cost_usd").is_some(),
        "cost_usd present (null when unknown)"
    );
}

/// A model without streaming answers via provider.complete; the client still
/// gets the text and an ordinary successful turn.
#[test]
fn non_streaming_model_delivers_whole_answer() {
    let (mut rpc, _) = host(&["echo"], "echo:echo:echo-complete");
    let (frames, resp) = prompt(&mut rpc, "1", "all at once please");
    assert_eq!(resp["ok"], true, "{resp}\nstderr:\n{}", rpc.stderr());
    assert_eq!(text_of(&frames), "all at once please");
    let end = frames.iter().find(|f| f["type"] == "agent_end").unwrap();
    assert_eq!(end["stop_reason"], "end_turn");
    let msgs = messages(&mut rpc, "m");
    assert_eq!(message_text(&msgs[1]), "all at once please");
}

// ---------------------------------------------------------------- busy

/// A second prompt while one runs is refused with the exact busy message and
/// does not disturb the first, which streams every delta.
#[test]
fn second_prompt_while_running_is_busy_and_first_completes() {
    let (mut rpc, _) = host(&["slow"], SLOW);
    let pid = start_prompt(&mut rpc, "1", "[[n=20 delay_ms=40]]");
    first_delta(&mut rpc);
    rpc.send(json!({"type": "prompt", "id": "2", "message": "me too"}));
    let err = rpc.answer(&json!("2"));
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["id"], "2");
    assert_eq!(err["code"], "busy");
    assert_eq!(err["message"], "another prompt is in flight; abort first");
    // new_session is refused the same way.
    let err = rpc.call(json!({"type": "new_session"}), "3");
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], "busy");
    // The first prompt carries on to a normal end with all 20 deltas.
    let (_, resp) = rpc.until("prompt 1 response", |f| is_answer_to(f, "1"));
    assert_eq!(resp["ok"], true, "{resp}");
    assert!(resp.get("cancelled").is_none() || resp["cancelled"] == false);
    let turn: Vec<Value> = rpc
        .seen
        .iter()
        .filter(|f| f["prompt_id"] == pid.as_str())
        .cloned()
        .collect();
    assert_eq!(text_of(&turn), "tok ".repeat(20));
    assert_eq!(turn.iter().filter(|f| is_update(f)).count(), 20);
    let starts = rpc
        .seen
        .iter()
        .filter(|f| f["type"] == "agent_start")
        .count();
    assert_eq!(starts, 1, "the busy prompt never started");
}

// ---------------------------------------------------------------- reads

/// Every read command answers in the middle of a long stream, before its
/// agent_end, and sees the running turn.
#[test]
fn reads_answer_mid_stream_before_agent_end() {
    let (mut rpc, ready) = host(&["slow"], SLOW);
    let message = "long one [[n=200 delay_ms=20]]";
    start_prompt(&mut rpc, "1", message);
    first_delta(&mut rpc);
    let sent = Instant::now();
    for (id, ty) in [
        ("st", "get_state"),
        ("ss", "get_session_stats"),
        ("gm", "get_messages"),
        ("am", "get_available_models"),
        ("ls", "list_sessions"),
    ] {
        rpc.send(json!({"type": ty, "id": id}));
    }
    let mut answers = std::collections::HashMap::new();
    while answers.len() < 5 {
        let f = rpc.recv();
        assert_ne!(
            f["type"], "agent_end",
            "a read was not answered before agent_end"
        );
        if f["type"] == "response" || f["type"] == "error" {
            answers.insert(f["id"].as_str().unwrap().to_owned(), f);
        }
    }
    // The stream lasts ~4 s; answering all five must not wait for it.
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "reads took {:?}",
        sent.elapsed()
    );

    let st = &answers["st"];
    assert_eq!(st["ok"], true, "{st}");
    assert_eq!(st["streaming"], true);
    assert_eq!(st["model"], SLOW);
    assert_eq!(st["session_id"], ready["session_id"]);
    assert_eq!(
        st["message_count"], 1,
        "the user message is already in history"
    );
    assert_eq!(st["queued"], 0);
    assert!(st["cwd"].is_string());

    let ss = &answers["ss"];
    assert_eq!(ss["ok"], true, "{ss}");
    assert_eq!(ss["message_count"], 1);

    let gm = &answers["gm"];
    assert_eq!(gm["messages"][0]["role"], "user");
    assert_eq!(gm["messages"][0]["content"], message);

    let am = &answers["am"];
    let models = am["models"].as_array().expect("models");
    let slow = models
        .iter()
        .find(|m| m["id"] == SLOW)
        .expect("slow model listed");
    assert_eq!(slow["available"], true);
    for k in ["provider", "name", "context_window"] {
        assert!(slow.get(k).is_some(), "model entry lacks {k}: {slow}");
    }

    let ls = &answers["ls"];
    let sessions = ls["sessions"].as_array().expect("sessions");
    assert!(
        sessions
            .iter()
            .any(|s| s["session_id"] == ready["session_id"]),
        "current session listed: {ls}"
    );

    rpc.send(json!({"type": "abort", "id": "a"}));
    rpc.answer(&json!("a"));
}

/// Reads are answered promptly even while the host forwards a flood.
#[test]
fn reads_answer_during_a_flood() {
    let (mut rpc, _) = host(&["flood"], FLOOD);
    start_prompt(&mut rpc, "1", "[[n=1000000]]");
    first_delta(&mut rpc);
    rpc.send(json!({"type": "get_state", "id": "st"}));
    rpc.send(json!({"type": "get_messages", "id": "gm"}));
    let (before, st) = rpc.until("get_state", |f| is_answer_to(f, "st"));
    assert!(before.iter().all(|f| f["type"] != "agent_end"));
    assert_eq!(st["streaming"], true, "{st}");
    assert_eq!(st["message_count"], 1);
    let (before, gm) = rpc.until("get_messages", |f| is_answer_to(f, "gm"));
    assert!(before.iter().all(|f| f["type"] != "agent_end"));
    assert_eq!(gm["messages"].as_array().unwrap().len(), 1, "{gm}");
    rpc.send(json!({"type": "abort", "id": "a"}));
    let a = rpc.answer(&json!("a"));
    assert_eq!(a["ok"], true);
}

// ---------------------------------------------------------------- abort

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
    std::thread::sleep(left);
    let alive_now: Vec<u32> = first_procs.into_iter().filter(|p| alive(*p)).collect();
    assert!(
        alive_now.is_empty(),
        "hang fixture still alive: {alive_now:?}"
    );
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

// ---------------------------------------------------------------- follow_up

/// Idle follow_up runs at once with its own lifecycle.
#[test]
fn follow_up_when_idle_runs_at_once() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    rpc.send(json!({"type": "follow_up", "id": "f", "message": "right now"}));
    let (frames, resp) = rpc.until("follow_up response", |f| is_answer_to(f, "f"));
    assert_eq!(frames[0]["type"], "agent_start", "{frames:?}");
    assert_eq!(frames[0]["id"], "f");
    assert_eq!(frames.last().unwrap()["type"], "agent_end");
    assert_eq!(text_of(&frames), "right now");
    assert_eq!(resp["type"], "response");
    assert_eq!(resp["command"], "follow_up");
    assert_eq!(resp["ok"], true);
}

/// Follow-ups queued behind a prompt run after it, in order, each a full turn.
#[test]
fn queued_follow_ups_run_in_order_after_the_prompt() {
    let (mut rpc, _) = host(&["slow"], SLOW);
    start_prompt(&mut rpc, "1", "[[n=20 delay_ms=30]]");
    first_delta(&mut rpc);
    rpc.send(
        json!({"type": "follow_up", "id": "f1", "message": "[[n=2 delay_ms=0 delta=\"a \"]]"}),
    );
    rpc.send(
        json!({"type": "follow_up", "id": "f2", "message": "[[n=2 delay_ms=0 delta=\"b \"]]"}),
    );
    let st = rpc.call(json!({"type": "get_state"}), "st");
    assert_eq!(st["queued"], 2, "{st}");
    rpc.until("f2 response", |f| is_answer_to(f, "f2"));
    // Reduce the whole conversation to its lifecycle frames, in order.
    let shape: Vec<String> = rpc
        .seen
        .iter()
        .filter_map(|f| match f["type"].as_str().unwrap() {
            "agent_start" => Some(format!("start {}", f["id"].as_str().unwrap())),
            "agent_end" => Some(format!("end {}", f["stop_reason"].as_str().unwrap())),
            "response" if f["id"] != "st" => Some(format!(
                "resp {} {} {}",
                f["id"].as_str().unwrap(),
                f["command"].as_str().unwrap(),
                f["ok"]
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        shape,
        [
            "start 1",
            "end end_turn",
            "resp 1 prompt true",
            "start f1",
            "end end_turn",
            "resp f1 follow_up true",
            "start f2",
            "end end_turn",
            "resp f2 follow_up true",
        ]
    );
    // Each follow-up's text belongs to its own turn.
    let by_id = |id: &str| -> String {
        let start = rpc
            .seen
            .iter()
            .find(|f| f["type"] == "agent_start" && f["id"] == id)
            .unwrap();
        let pid = start["prompt_id"].clone();
        let frames: Vec<Value> = rpc
            .seen
            .iter()
            .filter(|f| f["prompt_id"] == pid)
            .cloned()
            .collect();
        text_of(&frames)
    };
    assert_eq!(by_id("1"), "tok ".repeat(20));
    assert_eq!(by_id("f1"), "a a ");
    assert_eq!(by_id("f2"), "b b ");
}

// ---------------------------------------------------------------- steer

/// A steer is queued, then delivered as a user message in a second provider
/// round of the same turn; usage sums both rounds.
#[test]
fn steer_reaches_the_model_in_a_second_round() {
    let (mut rpc, _) = host(&["slow"], SLOW);
    let prompt_text = "start [[n=20 delay_ms=40 usage_in=1 usage_out=2]]";
    let steer_text = "also this [[show=messages delay_ms=0 usage_in=10 usage_out=20]]";
    let pid = start_prompt(&mut rpc, "1", prompt_text);
    first_delta(&mut rpc);
    let r = rpc.call(json!({"type": "steer", "message": steer_text}), "s");
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true);
    assert_eq!(r["queued"], true);
    let (frames, resp) = rpc.until("prompt response", |f| is_answer_to(f, "1"));
    assert_eq!(resp["ok"], true, "{resp}");
    assert!(
        frames.iter().all(|f| f["type"] != "agent_start"),
        "one turn, not two"
    );
    let end = frames.iter().find(|f| f["type"] == "agent_end").unwrap();
    assert_eq!(end["prompt_id"], pid.as_str());
    assert_eq!(end["stop_reason"], "end_turn");
    assert_eq!(
        end["usage"]["input_tokens"], 11,
        "usage summed over both rounds: {end}"
    );
    assert_eq!(end["usage"]["output_tokens"], 22, "{end}");

    let msgs = messages(&mut rpc, "m");
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["user", "assistant", "user", "assistant"],
        "{msgs:?}"
    );
    assert_eq!(msgs[0]["content"], prompt_text);
    assert_eq!(message_text(&msgs[1]), "tok ".repeat(20));
    assert_eq!(
        msgs[2]["content"], steer_text,
        "steer stored as a plain user message"
    );
    // The second round's reply is the JSON of the messages the model received.
    let sent: Value = serde_json::from_str(&message_text(&msgs[3]))
        .unwrap_or_else(|e| panic!("show=messages reply is JSON ({e}): {}", msgs[3]));
    let sent = sent.as_array().expect("messages array");
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(sent[2], json!({"role": "user", "content": steer_text}));
}

/// Steering with nothing running is refused.
#[test]
fn steer_when_idle_is_not_streaming() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    let r = rpc.call(json!({"type": "steer", "message": "hey"}), "s");
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["id"], "s");
    assert_eq!(r["code"], "not_streaming");
}

// ---------------------------------------------------------------- set_model

/// set_model mid-turn answers at once and applies to the next provider
/// request (here the steer's round), is recorded on disk, and survives a
/// restart with --continue.
#[test]
fn set_model_mid_turn_applies_to_next_request_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let mut rpc = Spawn::new()
        .ext("slow")
        .ext("echo")
        .model(SLOW)
        .data(dir.path())
        .start();
    let ready = rpc.ready();
    let sid = ready["session_id"].as_str().unwrap().to_owned();
    start_prompt(&mut rpc, "1", "[[n=40 delay_ms=40]]");
    first_delta(&mut rpc);
    let r = rpc.call(json!({"type": "set_model", "model": ECHO}), "sm");
    assert_eq!(r["type"], "response", "{r}");
    assert_eq!(r["ok"], true);
    assert_eq!(r["model"], ECHO);
    assert!(
        !rpc.seen.iter().any(|f| f["type"] == "agent_end"),
        "set_model answered mid-turn, not after it"
    );
    let st = rpc.call(json!({"type": "get_state"}), "st");
    assert_eq!(st["model"], ECHO, "{st}");
    // The steer forces a second request; it must go to echo, which echoes.
    let r = rpc.call(json!({"type": "steer", "message": "echo says hi"}), "s");
    assert_eq!(r["queued"], true, "{r}");
    let (frames, resp) = rpc.until("prompt response", |f| is_answer_to(f, "1"));
    assert_eq!(resp["ok"], true, "{resp}");
    assert!(
        text_of(&frames).ends_with("tok echo says hi"),
        "{}",
        text_of(&frames)
    );

    let file = dir.path().join("sessions").join(format!("{sid}.jsonl"));
    let disk = std::fs::read_to_string(&file).expect("session file");
    let changes: Vec<Value> = disk
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "model_change")
        .collect();
    assert!(
        changes.iter().any(|c| c["model"] == ECHO),
        "model_change line for {ECHO}:\n{disk}"
    );

    let r = rpc.call(json!({"type": "shutdown"}), "bye");
    assert_eq!(r["ok"], true);
    let status = rpc
        .wait(Duration::from_secs(5))
        .expect("exits after shutdown");
    assert!(status.success(), "{status:?}");
    drop(rpc);

    let mut again = Spawn::new()
        .ext("slow")
        .ext("echo")
        .arg("--continue")
        .arg(&sid)
        .data(dir.path())
        .start();
    let ready = again.ready();
    assert_eq!(ready["session_id"], sid.as_str());
    assert_eq!(ready["model"], ECHO, "{ready}");
}

/// Unknown plugins and unknown providers of a known plugin are not_found.
#[test]
fn set_model_unknown_provider_is_not_found() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    for (id, model) in [("a", "nope:nope:nope-1"), ("b", "echo:nope:echo-1")] {
        let r = rpc.call(json!({"type": "set_model", "model": model}), id);
        assert_eq!(r["type"], "error", "{r}");
        assert_eq!(r["id"], id);
        assert_eq!(r["code"], "not_found", "{r}");
    }
    let st = rpc.call(json!({"type": "get_state"}), "st");
    assert_eq!(st["model"], ECHO, "a refused set_model changes nothing");
}

// ---------------------------------------------------------------- streams

/// Events the old request still produces after an abort never leak into the
/// next turn on the same extension.
#[test]
fn no_stray_events_after_aborting_a_flood() {
    let (mut rpc, _) = host(&["flood"], FLOOD);
    let old = start_prompt(&mut rpc, "1", "[[n=1000000]]");
    first_delta(&mut rpc);
    let ab = rpc.call(json!({"type": "abort"}), "a");
    assert_eq!(ab["ok"], true, "{ab}");
    let new = start_prompt(&mut rpc, "2", "[[n=3]]");
    assert_ne!(old, new);
    let (frames, resp) = rpc.until("prompt 2 response", |f| is_answer_to(f, "2"));
    assert_eq!(resp["ok"], true, "{resp}");
    for f in &frames {
        assert_ne!(
            f["prompt_id"],
            old.as_str(),
            "frame of the aborted turn after its end: {f}"
        );
    }
    assert_eq!(text_of(&frames), "tok tok tok ");
    assert_eq!(frames.iter().filter(|f| is_update(f)).count(), 3);
}

/// A 20,000-delta reply arrives whole, with bounded host memory.
#[test]
fn flood_of_20000_deltas_arrives_whole_with_bounded_memory() {
    let (mut rpc, _) = host(&["flood"], FLOOD);
    let (frames, resp) = prompt(&mut rpc, "1", "go");
    assert_eq!(resp["ok"], true, "{resp}");
    assert_eq!(frames.iter().filter(|f| is_update(f)).count(), 20_000);
    assert!(
        text_of(&frames) == "tok ".repeat(20_000),
        "concatenated text differs"
    );
    let hwm = vm_hwm_kib(rpc.pid()).expect("VmHWM of the host");
    eprintln!("host VmHWM after 20000 deltas: {hwm} KiB");
    assert!(hwm < 64 * 1024, "host peak RSS {hwm} KiB >= 64 MiB");
}

/// Regression (found by the docs audit): set_models sent before the
/// extension had started were applied in the order their checks finished,
/// so the earlier one could win, and a prompt sent right after them ran on
/// whatever model was set at that moment.
#[test]
fn set_models_apply_in_order_and_a_prompt_waits_for_them() {
    let mut rpc = Spawn::new().ext("echo").start();
    rpc.ready();
    // One write, so all three arrive before the extension has answered
    // initialize.
    rpc.send_raw(
        concat!(
            r#"{"type":"set_model","id":"a","model":"echo:echo:echo-1"}"#,
            "\n",
            r#"{"type":"set_model","id":"b","model":"echo:echo:echo-complete"}"#,
            "\n",
            r#"{"type":"prompt","id":"p","message":"after both"}"#,
            "\n",
        )
        .as_bytes(),
    );
    let (before, resp) = rpc.until("prompt response", |v| {
        v["type"] == "response" && v["id"] == "p"
    });
    let order: Vec<String> = before
        .iter()
        .chain(std::iter::once(&resp))
        .filter(|f| f["type"] == "response" || f["type"] == "agent_start")
        .map(|f| format!("{}:{}", f["type"].as_str().unwrap_or(""), f["id"]))
        .collect();
    assert_eq!(
        order,
        [
            "response:\"a\"",
            "response:\"b\"",
            "agent_start:\"p\"",
            "response:\"p\""
        ]
    );
    assert_eq!(resp["ok"], true, "{resp}");
    // echo-complete does not stream: the whole answer comes as one delta.
    let deltas: Vec<&Value> = before
        .iter()
        .filter(|f| f["type"] == "message_update")
        .collect();
    assert_eq!(deltas.len(), 1, "{deltas:?}");
    assert_eq!(deltas[0]["event"]["delta"], "after both");
    let state = rpc.call(json!({"type": "get_state"}), "s");
    assert_eq!(state["model"], "echo:echo:echo-complete");
}

/// SPEC §2: attachments follow the message text as blocks, in order, in the
/// history and in what the provider is sent; `mime_type` is accepted for
/// `media_type`.
#[test]
fn attachments_become_blocks_after_the_text() {
    let mut rpc = Spawn::new().ext("echo").model("echo:echo:echo-1").start();
    rpc.ready();
    rpc.send(
        json!({"type": "prompt", "id": "a", "message": "look [[show=messages]]",
        "attachments": [
            {"type": "text", "text": "notes"},
            {"type": "image", "mime_type": "image/png", "data": "iVBORw0KGgo="}
        ]}),
    );
    let (frames, resp) = rpc.until("prompt response", |v| {
        v["type"] == "response" && v["id"] == "a"
    });
    assert_eq!(resp["ok"], true, "{resp}");
    let want = json!([
        {"type": "text", "text": "look [[show=messages]]"},
        {"type": "text", "text": "notes"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    ]);
    let sent: Value = serde_json::from_str(&text_of(&frames)).expect("the echo is JSON");
    assert_eq!(sent[0]["content"], want, "what the provider got: {sent}");
    let msgs = rpc.call(json!({"type": "get_messages"}), "m");
    assert_eq!(msgs["messages"][0]["content"], want, "{msgs}");
}

/// An explicit `"id": null` is the same as no id: answered with `id: null`.
#[test]
fn an_explicit_null_id_is_answered_with_null() {
    let mut rpc = Spawn::new().start();
    rpc.ready();
    rpc.send_raw(b"{\"type\":\"get_state\",\"id\":null}\n");
    let v = rpc.recv();
    assert_eq!(v["type"], "response", "{v}");
    assert_eq!(v["command"], "get_state", "{v}");
    assert_eq!(v["id"], Value::Null, "{v}");
}

/// Prompts waiting for a `set_model` check (the extension has not answered
/// `initialize` yet) are the session's queue too: an abort drops them and
/// `new_session` is busy until they are gone (regression: an abort with no
/// turn running answered `dropped: []` and left them to run, and
/// `new_session` let them run in the new session).
#[test]
fn prompts_waiting_for_a_model_check_are_dropped_by_abort() {
    let mut rpc = Spawn::new()
        .ext("echo")
        .ext("hang-init")
        .model(ECHO)
        .arg("--init-timeout")
        .arg("3")
        .start();
    rpc.ready();
    rpc.send(json!({"type": "set_model", "id": "m", "model": "hang-init:hang:hang-1"}));
    rpc.send(json!({"type": "prompt", "id": "A", "message": "waiting"}));
    let busy = rpc.call(json!({"type": "new_session"}), "n");
    assert_eq!(busy["code"], "busy", "{busy}");
    let abort = rpc.call(json!({"type": "abort"}), "x");
    assert_eq!(
        abort["dropped"],
        json!([{"type": "prompt", "id": "A", "message": "waiting"}]),
        "{abort}"
    );
    let dropped = rpc
        .seen
        .iter()
        .find(|f| is_answer_to(f, "A"))
        .cloned()
        .expect("the dropped prompt was answered before the abort");
    assert_eq!(dropped["cancelled"], true, "{dropped}");
    // The check still ends (the extension never initialises), and nothing
    // of the dropped prompt ran.
    let checked = rpc.answer(&json!("m"));
    assert_eq!(checked["type"], "error", "{checked}");
    assert!(!rpc.seen.iter().any(|f| f["type"] == "agent_start"));
    assert_eq!(ok_prompt(&mut rpc, "B", "now it runs"), "now it runs");
    finish(rpc);
}
