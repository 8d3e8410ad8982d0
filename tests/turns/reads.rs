//! Reads (`get_state`, `get_messages`, …) are answered mid-stream, before
//! `agent_end`, even during a flood.

use super::*;

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
