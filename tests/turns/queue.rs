//! `follow_up` and `steer`: a follow-up runs at once when idle or in order
//! after the prompt; a steer reaches the model in the next round.

use super::*;

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
