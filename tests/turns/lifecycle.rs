//! A prompt's life: `agent_start`, deltas (text and thinking), `agent_end`,
//! the response, usage; a non-streaming model; a second prompt is `busy`.

use super::*;

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
