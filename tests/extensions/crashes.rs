//! An extension that crashes mid-stream or before `initialize` ends the turn
//! (or refuses the prompt) with its stderr tail; the host stays up.

use super::*;

#[test]
fn crash_mid_stream_fails_the_turn_with_the_stderr_tail_and_keeps_partial_text() {
    let mut rpc = Host::start(
        Spawn::new()
            .ext("crash")
            .ext("echo")
            .model("crash:crash:crash-1"),
    );
    rpc.ready();
    let (text, error) = run_failing(&mut rpc, "1", "go");
    assert_eq!(
        text, "tok tok tok ",
        "the three deltas before the crash are streamed"
    );
    assert!(error.contains("\"crash\""), "names the extension: {error}");
    assert!(error.contains("exit"), "says it exited: {error}");
    assert!(
        error.contains("crashing on purpose"),
        "carries the stderr tail: {error}"
    );

    // The partial answer stays in history, marked with the failure.
    let last = last_message(&mut rpc);
    assert_eq!(last["role"], "assistant", "{last}");
    assert_eq!(message_text(&last), "tok tok tok ");
    assert!(
        last["error"].as_str().is_some_and(|e| !e.is_empty()),
        "error marker: {last}"
    );

    // The extension is respawned for the next prompt (it crashes again, the
    // same way, rather than being reported as permanently dead)...
    let (text, error) = run_failing(&mut rpc, "2", "again");
    assert_eq!(text, "tok tok tok ");
    assert!(error.contains("crashing on purpose"), "{error}");
    // ...and another provider works in the same session.
    set_model(&mut rpc, ECHO);
    assert_eq!(run_ok(&mut rpc, "3", "still alive"), "still alive");
    finish(rpc);
}

/// A prompt refused before it started: an `error` frame with `code`, no
/// turn, nothing stored.
fn refused(rpc: &mut Rpc, id: &str, message: &str, code: &str) -> String {
    let (frames, err) = prompt(rpc, id, message);
    assert_eq!(err["type"], "error", "prompt {id} is refused: {err}");
    assert_eq!(err["code"], code, "{err}");
    assert_eq!(err["command"], "prompt", "{err}");
    assert!(
        !frames.iter().any(|f| f["type"] == "agent_start"),
        "a refused prompt starts no turn: {frames:?}"
    );
    err["message"].as_str().expect("message").to_owned()
}

#[test]
fn crash_before_initialize_refuses_the_prompt_with_the_stderr_and_host_stays_up() {
    let mut rpc = Host::start(
        Spawn::new()
            .ext("crash-init")
            .model("crash-init:crash:crash-1"),
    );
    rpc.ready();
    // The model cannot be reached: the prompt is refused before anything
    // of it is stored, like one for a missing key.
    let error = refused(&mut rpc, "1", "hello", "provider_error");
    assert!(error.contains("crash-init"), "{error}");
    assert!(
        error.contains("crashing on purpose during initialize"),
        "stderr in the message: {error}"
    );
    let state = call_ok(&mut rpc, json!({"type": "get_state"}), "st");
    assert_eq!(state["streaming"], false);
    assert_eq!(state["message_count"], 0, "nothing stored: {state}");
    // And again: each attempt starts it anew and reports the same way.
    let error = refused(&mut rpc, "2", "hello", "provider_error");
    assert!(error.contains("crashing on purpose"), "{error}");
    finish(rpc);
}
