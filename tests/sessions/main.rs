//! Sessions, one file per sub-area, every process the real `rpc` binary:
//! `resume` (`--continue`), `file` (the JSONL format and its permissions),
//! `crash` (SIGKILL at random moments, torn last lines), `locks` (id
//! validation and locking), `new_and_list` (`new_session` /
//! `list_sessions`), `data_dir` (where the data directory comes from),
//! `management` (finding, listing and deleting stored sessions; `rpc
//! sessions`), `fork_switch` (`fork`, `switch_session`, `--continue --fork`),
//! `portable` (`rpc sessions export`/`import`, `export_session`/`import_session`).
//! The helpers below are shared by the first six.

#[path = "../common/mod.rs"]
mod common;

mod crash;
mod data_dir;
mod file;
mod fork_switch;
mod locks;
mod management;
mod new_and_list;
mod portable;
mod resume;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use common::{
    call_ok, finish, is_answer_to, message_text, messages, ok_prompt, read_jsonl, session_file,
    Rpc, Spawn, ECHO,
};
use serde_json::{json, Value};

/// A host on `data` with the echo extension (and model, unless resuming).
fn echo_spawn_in(data: &Path) -> Spawn {
    Spawn::new().data(data).ext("echo")
}

/// A start-up that must fail: one `error {id: null, code}` frame, no
/// `ready`, exit status 2, the message repeated on stderr.
fn expect_startup_error(mut rpc: Rpc, code: &str) -> Value {
    let frame = rpc.recv();
    assert_eq!(
        frame["type"], "error",
        "expected a start-up error, got {frame}"
    );
    assert_eq!(frame["id"], Value::Null, "{frame}");
    assert_eq!(frame["code"], code, "{frame}");
    let message = frame["message"].as_str().unwrap_or("").to_owned();
    assert!(!message.is_empty(), "the error needs a message: {frame}");
    let status = rpc
        .wait(Duration::from_secs(5))
        .expect("exits after a start-up error");
    assert_eq!(status.code(), Some(2), "start-up failure must exit 2");
    assert!(
        rpc.drain(Duration::from_millis(200)).is_empty(),
        "nothing may follow the start-up error"
    );
    assert!(
        rpc.stderr().contains(&message),
        "the message must be repeated on stderr; stderr:\n{}",
        rpc.stderr()
    );
    frame
}

fn sessions_in(data: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(data.join("sessions")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.ends_with(".jsonl"))
        .collect()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}
