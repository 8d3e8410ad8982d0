//! The open-file limit: a host started under a low soft limit (256 on
//! macOS and some Linux desktops; 64 here) raises it to the hard limit at
//! start-up, so that an ACP client's many sessions do not run it out of
//! descriptors ("Too many open files" once each holds its session file;
//! without the raise this test fails at its 50th session).

use super::*;

/// (soft, hard) "Max open files" of a process, from /proc.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_owned(), fields[4].to_owned())
}

#[test]
fn many_sessions_under_a_low_soft_limit() {
    let data = tempfile::tempdir().expect("tempdir");
    let cwd = tempfile::tempdir().expect("tempdir");
    let spawn = Spawn::new()
        .ext("echo")
        .model(ECHO)
        .arg("--acp")
        .data(data.path())
        .ulimit("-Sn 64");
    let mut acp = Acp::from_rpc(spawn.start());
    acp.initialize();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..100 {
        let session = acp.new_session(cwd.path());
        let id = session["sessionId"].as_str().expect("sessionId").to_owned();
        // A prompt makes the session write (and lock) its file, which it
        // then holds open.
        let (_, answer) = acp.prompt(&id, "hi");
        assert!(
            answer.get("error").is_none(),
            "session {}: {answer}",
            ids.len()
        );
        ids.insert(id);
    }
    assert_eq!(ids.len(), 100);
    let (soft, hard) = open_file_limits(acp.rpc.pid());
    assert_eq!(soft, hard, "the soft limit was raised to the hard one");
    assert_ne!(soft, "64");
}
