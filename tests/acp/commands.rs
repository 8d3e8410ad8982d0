//! Slash commands over ACP: `available_commands_update` after the session
//! is answered (new and load), a `/name args` prompt expanded before the
//! model sees it (checked through the echo provider's `[[show=messages]]`),
//! its replay on `session/load` as typed, and `/compact`.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use super::{chunk_text, Acp};

fn project(dir: &Path) {
    let folder = dir.join(".agents/commands");
    fs::create_dir_all(&folder).unwrap();
    fs::write(
        folder.join("review.md"),
        "---\ndescription: Review a file\nargument-hint: <file>\n---\nReview $1 now. ($ARGUMENTS)\n",
    )
    .unwrap();
}

/// Reads until the session's `available_commands_update`.
fn commands_update(acp: &mut Acp) -> Value {
    let (_, m) =
        acp.until(|m| m["params"]["update"]["sessionUpdate"] == "available_commands_update");
    m["params"]["update"]["availableCommands"].clone()
}

#[test]
fn commands_are_announced_and_a_prompt_is_expanded_then_replayed_as_typed() {
    let data = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    project(cwd.path());
    let mut acp = Acp::start(Some(data.path()), &[]);
    acp.initialize();
    let new = acp.request(
        "session/new",
        json!({"cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (_, answer) = acp.until_answer(new);
    let id = answer["result"]["sessionId"].as_str().unwrap().to_owned();
    // After the answer, so the client knows the session it is about.
    let list = commands_update(&mut acp);
    let review = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "review");
    assert_eq!(
        review,
        Some(
            &json!({"name": "review", "description": "Review a file", "input": {"hint": "<file>"}})
        )
    );
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "compact"));

    let typed = "/review src/a.rs [[show=messages]]";
    let (updates, answer) = acp.prompt(&id, typed);
    assert_eq!(answer["result"]["stopReason"], "end_turn", "{answer}");
    let sent: Value = serde_json::from_str(&chunk_text(&updates, "agent_message_chunk")).unwrap();
    assert_eq!(
        sent[0]["content"],
        "Review src/a.rs now. (src/a.rs [[show=messages]])"
    );
    // `/compact` where the summary would not be smaller (the echo model
    // restates): the compaction's failure is the prompt's error.
    let (_, answer) = acp.prompt(&id, "/compact");
    let error = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(error.contains("the compaction failed"), "{answer}");
    acp.finish();

    let mut acp = Acp::start(Some(data.path()), &[]);
    acp.initialize();
    let load = acp.request(
        "session/load",
        json!({"sessionId": id, "cwd": cwd.path().to_string_lossy(), "mcpServers": []}),
    );
    let (replayed, answer) = acp.until_answer(load);
    assert!(answer.get("error").is_none(), "{answer}");
    assert_eq!(chunk_text(&replayed, "user_message_chunk"), typed);
    let list = commands_update(&mut acp);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "review"));
    acp.finish();
}

/// `/compact` with instructions on a history worth compacting: the
/// prompt ends `end_turn` after an agent message saying what was done.
/// (The instructions reach the summarisation request, where they tell the
/// echo model to answer with a short summary.)
#[test]
fn slash_compact_ends_the_turn_with_what_it_compacted() {
    let cwd = tempfile::tempdir().unwrap();
    let mut acp = Acp::start(None, &[]);
    acp.initialize();
    let id = acp.new_session(cwd.path())["sessionId"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 0..3 {
        acp.prompt(&id, &format!("turn {n} {}", "words ".repeat(200)));
    }
    let (updates, answer) = acp.prompt(&id, "/compact [[n=1 delta=\"Short summary.\"]]");
    assert_eq!(
        answer["result"]["stopReason"],
        "end_turn",
        "{answer}\n{}",
        acp.rpc.stderr()
    );
    let said = chunk_text(&updates, "agent_message_chunk");
    assert!(said.starts_with("Compacted the conversation: "), "{said}");
    acp.finish();
}
