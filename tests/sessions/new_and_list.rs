//! `new_session` keeps the old session; `list_sessions` shows both, newest
//! first.

use super::*;

#[test]
fn new_session_keeps_the_old_one_and_list_sessions_shows_both_newest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut h = echo_spawn_in(data).model(ECHO).start();
    let ready = h.ready();
    let old = ready["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut h, "1", "first session title\nsecond line");

    let resp = call_ok(&mut h, json!({"type": "new_session"}), "new");
    let new = resp["session_id"].as_str().expect("new id").to_owned();
    assert_ne!(new, old);
    let state = call_ok(&mut h, json!({"type": "get_state"}), "st");
    assert_eq!(state["session_id"], new.as_str());
    assert_eq!(state["message_count"], 0);
    assert_eq!(
        state["model"], ECHO,
        "the model carries over to the new session"
    );
    assert!(
        session_file(data, &old).exists(),
        "the old session stays on disk"
    );

    // The old session is no longer in use by this process: another may take it.
    let mut other = echo_spawn_in(data).arg("--continue").arg(&old).start();
    assert_eq!(other.ready()["message_count"], 2);
    finish(other);

    std::thread::sleep(Duration::from_millis(30));
    ok_prompt(&mut h, "2", "second session title");
    let list = call_ok(&mut h, json!({"type": "list_sessions"}), "ls");
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2, "{list}");
    assert_eq!(
        sessions[0]["session_id"],
        new.as_str(),
        "newest first: {list}"
    );
    assert_eq!(sessions[1]["session_id"], old.as_str());
    for (s, title) in sessions
        .iter()
        .zip(["second session title", "first session title"])
    {
        for k in [
            "session_id",
            "created_at",
            "updated_at",
            "message_count",
            "model",
            "title",
            "cwd",
        ] {
            assert!(s.get(k).is_some(), "list_sessions entry lacks {k}: {s}");
        }
        assert_eq!(s["title"], title, "{s}");
        assert_eq!(s["message_count"], 2, "{s}");
        assert_eq!(s["model"], ECHO);
        assert_eq!(s["cwd"], ready["cwd"]);
        assert!(s["created_at"].as_str().unwrap().contains('T'), "{s}");
        assert!(s["updated_at"].as_str().unwrap().contains('T'), "{s}");
    }
    finish(h);
    assert_eq!(sessions_in(data).len(), 2);
}
