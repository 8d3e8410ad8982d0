//! An extension that hangs in `initialize` or mid-stream: the prompt is
//! refused after the init timeout, or the turn fails after the idle timeout
//! keeping the partial text; no process is left.

use super::*;

#[test]
fn hang_in_initialize_refuses_the_prompt_after_init_timeout_and_leaves_no_process() {
    let mut rpc = Host::start(
        Spawn::new()
            .ext("hang-init")
            .model("hang-init:hang:hang-1")
            .arg("--init-timeout")
            .arg("1"),
    );
    rpc.ready();
    rpc.send(json!({"type": "prompt", "id": "1", "message": "hello"}));
    let (frames, err, seen, took) = answer_watching(&mut rpc, "1", "hang", Duration::from_secs(6));
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["code"], "provider_error", "{err}");
    let error = err["message"].as_str().unwrap();
    assert!(error.contains("hang-init"), "{error}");
    assert!(error.contains("did not answer initialize"), "{error}");
    assert!(
        !frames.iter().any(|f| f["type"] == "agent_start"),
        "no turn: {frames:?}"
    );
    assert!(!seen.is_empty(), "the extension was started");
    // It ignores SIGTERM: only a kill gets rid of it, and the host must do it.
    assert_all_gone(&seen, Duration::from_secs(1), "hung initialize");
    let state = call_ok(&mut rpc, json!({"type": "get_state"}), "st");
    assert_eq!(state["streaming"], false);
    finish(rpc);
}

#[test]
fn hang_mid_stream_fails_after_idle_timeout_keeps_partial_and_kills_the_process() {
    let mut rpc = Host::start(
        Spawn::new()
            .ext("hang")
            .ext("echo")
            .model("hang:hang:hang-1")
            .arg("--provider-idle-timeout")
            .arg("1"),
    );
    rpc.ready();
    rpc.send(json!({"type": "prompt", "id": "1", "message": "hello"}));
    let (frames, resp, seen, took) = answer_watching(&mut rpc, "1", "hang", Duration::from_secs(8));
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(resp["ok"], false, "{resp}");
    assert_eq!(resp["code"], "provider_error");
    let error = resp["error"].as_str().unwrap();
    assert!(
        error.contains("idle") || error.contains("sent nothing"),
        "names the idle timeout: {error}"
    );
    // Regression (docs audit): the message named neither the extension nor
    // its stderr, unlike every other extension failure.
    assert!(
        error.contains("extension \"hang\""),
        "names the extension: {error}"
    );
    assert_eq!(text_of(&frames), "partial ");
    assert_eq!(frames.last().unwrap()["type"], "agent_end");
    let last = last_message(&mut rpc);
    assert_eq!(message_text(&last), "partial ");
    assert!(last["error"].is_string(), "{last}");
    assert!(!seen.is_empty());
    assert_all_gone(&seen, Duration::from_secs(1), "hung stream");

    // The next prompt: the hang extension is started afresh (it streams its
    // delta again), and another model works.
    rpc.send(json!({"type": "prompt", "id": "2", "message": "again"}));
    let (frames, resp, seen2, _) = answer_watching(&mut rpc, "2", "hang", Duration::from_secs(8));
    assert_eq!(text_of(&frames), "partial ");
    assert_eq!(resp["ok"], false);
    assert!(
        seen2.is_disjoint(&seen),
        "a new process: {seen:?} vs {seen2:?}"
    );
    set_model(&mut rpc, ECHO);
    assert_eq!(run_ok(&mut rpc, "3", "fine now"), "fine now");
    assert_all_gone(&seen2, Duration::from_secs(1), "second hung stream");
    finish(rpc);
}
