//! `ready`: the first line, what it describes, and that it never waits for
//! provider processes.

use super::*;

#[test]
fn ready_is_the_first_line_and_describes_the_session() {
    let cwd = tempfile::tempdir().unwrap();
    let mut rpc = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .arg("--cwd")
        .arg(cwd.path().to_str().unwrap())
        .start();
    // `ready()` asserts it is the very first frame.
    let ready = rpc.ready();
    assert_eq!(ready["protocol_version"], 1, "{ready}");
    assert!(
        ready["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{ready}"
    );
    let sid = ready["session_id"]
        .as_str()
        .expect("session_id is a string");
    assert!(!sid.is_empty());
    assert_eq!(ready["model"], ECHO, "{ready}");
    let canonical = cwd.path().canonicalize().unwrap();
    assert_eq!(ready["cwd"], canonical.to_str().unwrap(), "{ready}");
    // The session it announces is the one commands act on.
    let state = get_state(&mut rpc, &fresh_id("state"));
    assert_eq!(state["session_id"], sid);
}

#[test]
fn ready_does_not_wait_for_provider_processes() {
    // `hang-init` never answers `initialize` (the init timeout is 10 s): ready
    // must come long before that.
    let mut rpc = Spawn::new().ext("hang-init").start();
    let t = Instant::now();
    let ready = rpc
        .recv_within(Duration::from_secs(3))
        .unwrap_or_else(|| panic!("no ready within 3 s; stderr:\n{}", rpc.stderr()));
    assert_eq!(ready["type"], "ready", "{ready}");
    assert!(t.elapsed() < Duration::from_secs(3));
    // Read-only commands are not held up by the stuck extension either.
    let r = rpc.call(json!({"type": "get_state"}), "s");
    assert_eq!(r["ok"], true, "{r}");
    // Nor is shutdown.
    rpc.call(json!({"type": "shutdown"}), "bye");
    assert_eq!(
        exit_code(rpc.wait(Duration::from_secs(3)), &rpc, "3 s after shutdown"),
        0
    );
}
