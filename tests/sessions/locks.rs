//! Session ids and locks: unsafe and unknown ids fail start-up with exit 2;
//! a session in use is locked until its process exits.

use super::*;

#[test]
fn continue_with_an_unsafe_id_is_invalid_params_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    for bad in ["../etc", "a/b", "x y", "..", "/etc/passwd"] {
        let rpc = Spawn::new()
            .data(tmp.path())
            .arg("--continue")
            .arg(bad)
            .start();
        let frame = expect_startup_error(rpc, "invalid_params");
        eprintln!("{bad:?} -> {}", frame["message"]);
    }
}

#[test]
fn continue_with_an_unknown_id_is_not_found_and_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let rpc = Spawn::new()
        .data(tmp.path())
        .arg("--continue")
        .arg("no-such-session")
        .start();
    expect_startup_error(rpc, "not_found");
    // Nothing to continue at all: also not_found, not a fresh session.
    let rpc = Spawn::new().data(tmp.path()).arg("--continue").start();
    expect_startup_error(rpc, "not_found");
}

#[test]
fn a_session_in_use_is_locked_until_its_process_exits() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();

    // The creator holds the session it created with a prompt.
    let mut first = echo_spawn_in(data).model(ECHO).start();
    let id = first.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut first, "1", "mine");
    let second = echo_spawn_in(data).arg("--continue").arg(&id).start();
    let err = expect_startup_error(second, "session_locked");
    assert!(err["message"].as_str().unwrap().contains(&id), "{err}");
    let second = echo_spawn_in(data).arg("--continue").start();
    expect_startup_error(second, "session_locked");
    finish(first);

    // A process that merely continues it (no prompt yet) holds it as well.
    let mut resumed = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(resumed.ready()["session_id"], id.as_str());
    let third = echo_spawn_in(data).arg("--continue").arg(&id).start();
    expect_startup_error(third, "session_locked");
    finish(resumed);

    let mut last = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(last.ready()["message_count"], 2);
    finish(last);
}
