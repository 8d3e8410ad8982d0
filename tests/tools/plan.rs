//! `todo_write`: the model's plan as `plan` frames, in every permission mode
//! without asking, kept in the session (`get_state.plan`, after
//! `--continue` too), and a malformed list as the call's error result with
//! the plan unchanged.

use super::*;

fn todo(entries: Value) -> String {
    call("todo_write", &json!({ "todos": entries }))
}

fn plan_frames(frames: &[Value]) -> Vec<Value> {
    of_type(frames, "plan").into_iter().cloned().collect()
}

#[test]
fn the_plan_is_shown_kept_and_resumed() {
    let d = Dirs::new();
    let data = tempfile::tempdir().expect("data dir");
    // Read-only: the strictest mode still offers the plan and never asks.
    let mut rpc = echo_spawn(&d.cwd, "read-only").data(data.path()).start();
    let id = rpc.ready()["session_id"].as_str().expect("id").to_owned();

    let first = json!([
        {"content": "read the code", "status": "in_progress", "priority": "high"},
        {"content": "fix the bug", "status": "pending"},
    ]);
    let frames = run_ok(&mut rpc, "1", &todo(first.clone()));
    no_permission_request(&frames);
    let plans = plan_frames(&frames);
    assert_eq!(plans.len(), 1, "{frames:#?}");
    assert_eq!(plans[0]["entries"], first);
    assert!(plans[0]["prompt_id"].is_string(), "{plans:?}");
    assert_eq!(plans[0]["prompt_id"], frames[0]["prompt_id"]);
    // Between the call's start and its end, in order with its frames.
    let at = index_of(&frames, "plan", |f| f["type"] == "plan");
    let start = index_of(&frames, "start", |f| f["type"] == "tool_execution_start");
    let end = index_of(&frames, "end", |f| f["type"] == "tool_execution_end");
    assert!(start < at && at < end, "{frames:#?}");
    assert_eq!(
        the_tool_end(&frames)["result"],
        "Plan updated: 2 steps (0 completed, 1 in progress, 1 pending). Now: read the code"
    );

    // Two calls in one turn: two plans, the last one kept.
    let second = json!([
        {"content": "read the code", "status": "completed", "priority": "high"},
        {"content": "fix the bug", "status": "in_progress"},
    ]);
    let frames = run_ok(
        &mut rpc,
        "2",
        &call("todo_write,todo_write", &json!({"todos": second})),
    );
    assert_eq!(plan_frames(&frames).len(), 2, "{frames:#?}");
    assert_eq!(get_state(&mut rpc, "s")["plan"], second);

    // A malformed list: the call's error, no plan frame, the plan as it was.
    let frames = run_ok(
        &mut rpc,
        "3",
        &todo(json!([{"content": "x", "status": "done"}])),
    );
    let end = the_tool_end(&frames);
    assert_eq!(end["is_error"], true, "{end}");
    assert!(
        end["result"]
            .as_str()
            .unwrap()
            .contains("todos[0]: `status`"),
        "{end}"
    );
    assert!(plan_frames(&frames).is_empty());
    assert_eq!(get_state(&mut rpc, "s2")["plan"], second);
    shutdown(rpc);

    let mut again = echo_spawn(&d.cwd, "ask")
        .data(data.path())
        .arg("--continue")
        .arg(&id)
        .start();
    again.ready();
    assert_eq!(get_state(&mut again, "s")["plan"], second);
    shutdown(again);
}

#[test]
fn a_new_session_starts_without_a_plan() {
    let d = Dirs::new();
    let mut rpc = start(&d.cwd, "ask");
    assert_eq!(get_state(&mut rpc, "s")["plan"], json!([]));
    run_ok(
        &mut rpc,
        "1",
        &todo(json!([{"content": "a", "status": "pending"}])),
    );
    let fresh = call_ok(&mut rpc, json!({"type": "new_session"}), "n");
    assert!(fresh["session_id"].is_string(), "{fresh}");
    assert_eq!(get_state(&mut rpc, "s2")["plan"], json!([]));
    shutdown(rpc);
}
