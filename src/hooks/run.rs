//! Running one hook command: `sh -c <command>` through the host's one
//! child-process builder (its own process group, the secret-scrubbed
//! environment, the session's sandbox when enforced), the event as JSON on
//! stdin, stdout and stderr collected, and the whole group killed at the
//! timeout.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::process::{ChildBuilder, Sandbox};

/// What is kept of a hook's stdout or stderr: enough for any decision or
/// context, and a runaway hook cannot fill the host's memory.
const OUTPUT_CAP: usize = 256 * 1024;

/// How one run ended.
#[derive(Debug)]
pub(crate) struct Ran {
    /// `None` when it did not exit on its own (killed at the timeout, by a
    /// signal, or never started).
    pub exit_code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub duration: Duration,
    /// Why it counts as a failure of the hook itself (could not start,
    /// timed out, killed by a signal); a warning, never a block.
    pub failure: Option<String>,
}

/// Where and how a command runs.
pub(crate) struct Place<'a> {
    pub cwd: &'a Path,
    pub env_remove: &'a [String],
    pub sandbox: Option<Arc<dyn Sandbox>>,
}

pub(crate) async fn run(command: &str, timeout: Duration, input: &[u8], place: &Place<'_>) -> Ran {
    let started = Instant::now();
    let spawned = ChildBuilder::new("sh")
        .args(["-c", command])
        .current_dir(place.cwd)
        .env_remove(place.env_remove)
        // Claude Code's hooks find the project through it
        // (`"$CLAUDE_PROJECT_DIR"/.claude/hooks/check.sh`).
        .envs([("CLAUDE_PROJECT_DIR", place.cwd)])
        .own_group()
        .stdio(Stdio::piped(), Stdio::piped(), Stdio::piped())
        .sandbox(place.sandbox.clone())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                exit_code: None,
                stdout: String::new(),
                stderr: String::new(),
                duration: started.elapsed(),
                failure: Some(format!("could not start: {e}")),
            }
        }
    };
    // Killed whole if this run is dropped (the turn was aborted) or
    // times out; disarmed once the hook exited on its own.
    let mut group = GroupGuard(child.id());
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let feed = async move {
        if let Some(mut stdin) = stdin {
            // A hook that does not read its input closes the pipe: not an
            // error of ours.
            let _ = stdin.write_all(input).await;
        }
    };
    let all = async {
        let (_, out, err, status) =
            tokio::join!(feed, read_capped(stdout), read_capped(stderr), child.wait());
        (out, err, status)
    };
    match tokio::time::timeout(timeout, all).await {
        Ok((stdout, stderr, status)) => {
            group.0 = None;
            let (exit_code, failure) = match status {
                Ok(s) => match s.code() {
                    Some(code) => (Some(code), None),
                    None => (None, Some(format!("ended by a signal ({s})"))),
                },
                Err(e) => (None, Some(format!("could not be waited for: {e}"))),
            };
            Ran {
                exit_code,
                stdout,
                stderr,
                duration: started.elapsed(),
                failure,
            }
        }
        Err(_) => {
            drop(group);
            Ran {
                exit_code: None,
                stdout: String::new(),
                stderr: String::new(),
                duration: started.elapsed(),
                failure: Some(format!(
                    "timed out after {} s and was killed",
                    timeout.as_secs_f64()
                )),
            }
        }
    }
}

/// A hook's process group, killed when dropped unless disarmed.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        crate::process::kill_group(self.0.take());
    }
}

/// Reads a pipe to its end, keeping the first [`OUTPUT_CAP`] bytes.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> String {
    let Some(mut pipe) = pipe else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}
