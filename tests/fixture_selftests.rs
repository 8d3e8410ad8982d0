//! The fake providers' own self-tests (`fixtures/providers/test_fakeprov.py`,
//! `fixtures/http/test_fake_llm.py`): the other tests trust these fakes, so
//! `cargo test` checks the fakes too.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::wait_timeout;

/// Runs a self-test script from its own folder, bounded in time, and fails
/// with its output unless it exits 0.
fn self_test(dir: &str, script: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let log = tempfile::NamedTempFile::new().expect("log file");
    let mut child = Command::new("python3")
        .arg(script)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("log for stdout"))
        .stderr(log.reopen().expect("log for stderr"))
        .spawn()
        .expect("spawn python3");
    let status = wait_timeout(&mut child, Duration::from_secs(180));
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let output = std::fs::read_to_string(log.path()).unwrap_or_default();
    assert!(
        status.is_some_and(|s| s.success()),
        "{script} failed ({status:?}):\n{output}"
    );
}

#[test]
fn the_fake_extension_provider_passes_its_self_test() {
    self_test("fixtures/providers", "test_fakeprov.py");
}

#[test]
fn the_fake_http_server_passes_its_self_test() {
    self_test("fixtures/http", "test_fake_llm.py");
}
