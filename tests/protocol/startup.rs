//! Start-up failures: one `error` frame with a null id, and a non-zero exit.

use super::*;

/// Starts a host expected to fail: exactly one `error {id: null, code}` on
/// stdout, no `ready`, the message repeated on stderr, exit status 2.
fn startup_fails(spawn: Spawn, code: &str) {
    let mut rpc = spawn.start();
    let frames = rpc.drain(Duration::from_secs(10));
    let status = exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s");
    assert_eq!(frames.len(), 1, "exactly one frame on stdout: {frames:?}");
    let f = &frames[0];
    assert_eq!(f["type"], "error", "no ready, one error: {f}");
    assert_eq!(f["id"], Value::Null, "{f}");
    assert_eq!(f["code"], code, "{f}\nstderr:\n{}", rpc.stderr());
    let message = f["message"].as_str().expect("message");
    assert!(!message.is_empty());
    // The harness collects stderr on its own thread, which may still be
    // catching up with a process that already exited.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !rpc.stderr().contains(message) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        rpc.stderr().contains(message),
        "message repeated on stderr; stderr:\n{}",
        rpc.stderr()
    );
    assert_eq!(status, 2, "start-up failure exits 2");
}

#[test]
fn continue_with_an_unknown_id_fails_startup_with_not_found() {
    startup_fails(Spawn::new().arg("--continue").arg("nope"), "not_found");
}

#[test]
fn continue_with_no_id_and_no_sessions_fails_startup_with_not_found() {
    startup_fails(Spawn::new().arg("--continue"), "not_found");
}

#[test]
fn continue_with_a_path_like_id_fails_startup_with_invalid_params() {
    for id in ["../x", "a/b", "..", "/etc/passwd"] {
        startup_fails(Spawn::new().arg("--continue").arg(id), "invalid_params");
    }
}

#[test]
fn missing_extension_fails_startup() {
    // The contract names no code for this; the host reports invalid_params.
    startup_fails(
        Spawn::new().arg("--extension").arg("/nonexistent"),
        "invalid_params",
    );
}

#[test]
fn bad_model_fails_startup_with_not_found() {
    startup_fails(Spawn::new().model("bad"), "not_found");
    startup_fails(
        Spawn::new().ext("echo").model("nope:echo:echo-1"),
        "not_found",
    );
}

#[test]
fn continue_of_a_session_in_use_fails_startup_with_session_locked() {
    let (mut first, ready) = echo_host();
    // The session file appears with its first entry.
    let (_, r) = prompt(&mut first, "p", "hello");
    assert_eq!(r["ok"], true, "{r}");
    let sid = ready["session_id"].as_str().unwrap();
    startup_fails(
        Spawn::new()
            .ext("echo")
            .data(&first.data)
            .arg("--continue")
            .arg(sid),
        "session_locked",
    );
    // The first process is unaffected.
    assert_eq!(
        get_state(&mut first, &fresh_id("state"))["message_count"],
        2
    );
}

#[test]
fn unusable_data_dir_fails_startup() {
    // A regular file where the data directory should be. The contract names
    // no code; the host reports internal.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    startup_fails(Spawn::new().data(&file), "internal");
}
