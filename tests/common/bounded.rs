//! Running a helper program (pip, npm, a validator, `rpc schema`) with a
//! bound on its run time: its output is read on threads while it runs, so
//! neither a full pipe nor a hung network can stall a test.

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

use super::wait_timeout;

/// Runs `cmd` with `input` on its stdin, killing it once `limit` has
/// passed. Returns its status (None: killed on the timeout), stdout and
/// stderr.
pub fn run_bounded(
    cmd: &mut Command,
    input: &[u8],
    limit: Duration,
) -> (Option<ExitStatus>, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written on a thread and then closed: a child that stops reading
    // cannot block the test, and one that reads to EOF gets it.
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let status = wait_timeout(&mut child, limit);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = writer.join();
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    (status, stdout, stderr)
}
