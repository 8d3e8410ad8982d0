//! The editor's terminal as a session's [`Processes`]: when the client
//! advertises `terminal`, `bash` runs its command through `terminal/create`
//! (the editor embeds the live terminal in the tool call), waits with
//! `terminal/wait_for_exit`, takes the result from `terminal/output` and
//! always ends with `terminal/release`: after the exit, after
//! `terminal/kill` on a timeout or an abort, and when the call is dropped
//! before the terminal even answered.
//!
//! One task drives each terminal from `create` to `release`, so the
//! release does not depend on the tool still running. The tool sees an
//! ordinary [`Shell`]: its output stream is filled from `terminal/output`
//! once the command ended (the editor shows it live meanwhile), and only
//! then, after the release, does its wait end, so the result the model
//! reads and the terminal the user sees hold the same output.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::oneshot;

use super::rpc::{Connection, RpcResult};
use crate::tools::{BoxFuture, Processes, Shell, ShellProcess, BASH_OUTPUT_BYTES};

/// Room in bash's output cap for the note that the editor cut the output.
const NOTE_ROOM: usize = 256;
/// How long `terminal/create` may take (an editor may ask its user).
const CREATE_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest a command can run is bash's own limit (10 minutes); its
/// timeout kills it before this, which only guards against a client that
/// never answers.
const EXIT_TIMEOUT: Duration = Duration::from_secs(660);
/// After `terminal/kill`, how long the exit may take before the terminal
/// is released anyway (a release kills too).
const KILL_WAIT: Duration = Duration::from_secs(1);
/// `terminal/kill`, `output` and `release` answer at once in a working
/// client.
const QUICK_TIMEOUT: Duration = Duration::from_secs(5);

/// A session's shell commands, run in the editor's terminals.
pub(super) struct ClientTerminals {
    cx: Connection,
    session_id: String,
}

impl ClientTerminals {
    /// `None` when the client offers no terminal: local processes then.
    pub(super) fn new(cx: Connection, session_id: String) -> Option<Self> {
        cx.client()
            .terminal
            .then_some(ClientTerminals { cx, session_id })
    }
}

impl Processes for ClientTerminals {
    /// The editor's terminal has no sandbox of ours (`sandbox()` says so,
    /// and the gate asks accordingly), so `_sandboxed` changes nothing.
    fn shell<'a>(
        &'a self,
        command: &'a str,
        cwd: &'a Path,
        _sandboxed: bool,
    ) -> BoxFuture<'a, io::Result<Shell>> {
        Box::pin(async move {
            let (created_tx, created) = oneshot::channel();
            let (kill, killed) = oneshot::channel();
            let (exit_tx, exit) = oneshot::channel();
            let (output, writer) = tokio::io::duplex(BASH_OUTPUT_BYTES);
            let terminal = Terminal {
                cx: self.cx.clone(),
                session_id: self.session_id.clone(),
                id: String::new(),
            };
            let params = create_params(&self.session_id, command, cwd);
            tokio::spawn(terminal.drive(params, created_tx, killed, exit_tx, writer));
            let id = match created.await {
                Ok(created) => created?,
                Err(_) => return Err(io::Error::other("the terminal's task ended early")),
            };
            Ok(Shell {
                output: Box::new(output),
                process: Box::new(ClientShell {
                    kill: Some(kill),
                    exit,
                }),
                terminal: Some(id),
            })
        })
    }
}

/// `terminal/create`'s params: the same shell and output cap as local bash.
fn create_params(session_id: &str, command: &str, cwd: &Path) -> Value {
    json!({
        "sessionId": session_id,
        "command": "bash",
        "args": ["-c", command],
        "cwd": cwd,
        "env": [],
        "outputByteLimit": BASH_OUTPUT_BYTES - NOTE_ROOM,
    })
}

/// One terminal on the client, by the id it answered `create` with.
struct Terminal {
    cx: Connection,
    session_id: String,
    id: String,
}

impl Terminal {
    /// From `create` to `release`.
    async fn drive(
        mut self,
        params: Value,
        created: oneshot::Sender<io::Result<String>>,
        mut killed: oneshot::Receiver<()>,
        exit: oneshot::Sender<io::Result<ExitStatus>>,
        writer: DuplexStream,
    ) {
        let answer = self
            .cx
            .call("terminal/create", params, CREATE_TIMEOUT)
            .await;
        self.id = match terminal_id(answer) {
            Ok(id) => id,
            Err(e) => {
                let _ = created.send(Err(e));
                return;
            }
        };
        if created.send(Ok(self.id.clone())).is_err() {
            // The call was dropped while the terminal was being created.
            self.kill().await;
            self.release().await;
            return;
        }
        let status = self.wait(&mut killed).await;
        self.output(writer).await;
        self.release().await;
        let _ = exit.send(status);
    }

    /// The command's exit; a kill asked for (or the shell dropped) on the
    /// way sends `terminal/kill` and waits [`KILL_WAIT`] more at most.
    async fn wait(&self, killed: &mut oneshot::Receiver<()>) -> io::Result<ExitStatus> {
        let waiting = self.request("terminal/wait_for_exit", EXIT_TIMEOUT);
        tokio::pin!(waiting);
        tokio::select! {
            answer = &mut waiting => return exit_status(answer),
            // Sent, or the sender dropped with the call: kill either way.
            _ = &mut *killed => {}
        }
        self.kill().await;
        match tokio::time::timeout(KILL_WAIT, waiting).await {
            Ok(answer) => exit_status(answer),
            Err(_) => Err(io::Error::other(
                "the editor's terminal did not report the exit after terminal/kill",
            )),
        }
    }

    /// Writes what the terminal holds into the shell's output, and closes
    /// it (dropping `writer`).
    async fn output(&self, mut writer: DuplexStream) {
        let answer = match self.request("terminal/output", QUICK_TIMEOUT).await {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(error = %e.describe(), "terminal/output failed");
                return;
            }
        };
        let text = answer.get("output").and_then(Value::as_str).unwrap_or("");
        if answer.get("truncated").and_then(Value::as_bool) == Some(true) {
            let note = format!(
                "[earlier output dropped by the editor's terminal; showing the last {} bytes]\n",
                text.len()
            );
            let _ = writer.write_all(note.as_bytes()).await;
        }
        let _ = writer.write_all(text.as_bytes()).await;
    }

    async fn kill(&self) {
        let _ = self.request("terminal/kill", QUICK_TIMEOUT).await;
    }

    async fn release(&self) {
        if let Err(e) = self.request("terminal/release", QUICK_TIMEOUT).await {
            tracing::debug!(error = %e.describe(), terminal = %self.id, "terminal/release failed");
        }
    }

    async fn request(&self, method: &str, timeout: Duration) -> RpcResult {
        let params = json!({"sessionId": self.session_id, "terminalId": self.id});
        self.cx.call(method, params, timeout).await
    }
}

fn terminal_id(answer: RpcResult) -> io::Result<String> {
    let answer = answer.map_err(|e| {
        io::Error::other(format!(
            "the editor answered terminal/create with an error: {}",
            e.describe()
        ))
    })?;
    match answer.get("terminalId").and_then(Value::as_str) {
        Some(id) => Ok(id.to_owned()),
        None => Err(io::Error::other(
            "the editor's answer to terminal/create has no terminalId",
        )),
    }
}

/// `terminal/wait_for_exit`'s `{exitCode, signal}` as the status bash
/// describes: a code, else a signal by its name.
fn exit_status(answer: RpcResult) -> io::Result<ExitStatus> {
    let answer = answer.map_err(|e| io::Error::other(e.describe()))?;
    if let Some(code) = answer.get("exitCode").and_then(Value::as_i64) {
        // A wait status holds the code's low byte, as the kernel reports it.
        return Ok(ExitStatus::from_raw(((code & 0xff) as i32) << 8));
    }
    let signal = answer.get("signal").and_then(Value::as_str).unwrap_or("");
    match signal_number(signal) {
        Some(number) => Ok(ExitStatus::from_raw(number)),
        None => Err(io::Error::other(format!(
            "the editor reported neither an exit code nor a known signal (signal: {signal:?})"
        ))),
    }
}

fn signal_number(name: &str) -> Option<i32> {
    let name = name.strip_prefix("SIG").unwrap_or(name);
    Some(match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ABRT" => libc::SIGABRT,
        "KILL" => libc::SIGKILL,
        "SEGV" => libc::SIGSEGV,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => return None,
    })
}

/// The process side the bash tool holds: a kill goes to the driving task,
/// and so does dropping it (the task then kills and releases).
struct ClientShell {
    kill: Option<oneshot::Sender<()>>,
    exit: oneshot::Receiver<io::Result<ExitStatus>>,
}

impl ShellProcess for ClientShell {
    fn wait(&mut self) -> BoxFuture<'_, io::Result<ExitStatus>> {
        Box::pin(async move {
            match (&mut self.exit).await {
                Ok(status) => status,
                Err(_) => Err(io::Error::other("the terminal's task ended early")),
            }
        })
    }

    fn kill(&mut self) {
        if let Some(kill) = self.kill.take() {
            let _ = kill.send(());
        }
    }

    /// `terminal/kill`, the exit (at most [`KILL_WAIT`]), then
    /// `terminal/output` and `terminal/release`, before the output is here.
    fn output_after_kill(&self) -> Option<Duration> {
        Some(KILL_WAIT + 2 * QUICK_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_signals_become_wait_statuses() {
        let st = exit_status(Ok(json!({"exitCode": 3, "signal": null}))).unwrap();
        assert_eq!(st.code(), Some(3));
        let st = exit_status(Ok(json!({"exitCode": null, "signal": "SIGKILL"}))).unwrap();
        assert_eq!(st.signal(), Some(libc::SIGKILL));
        let st = exit_status(Ok(json!({"signal": "TERM"}))).unwrap();
        assert_eq!(st.signal(), Some(libc::SIGTERM));
        assert!(exit_status(Ok(json!({}))).is_err());
    }

    #[test]
    fn the_command_runs_in_bash_with_bashs_output_cap() {
        let p = create_params("s1", "echo hi", Path::new("/w"));
        assert_eq!(p["command"], "bash");
        assert_eq!(p["args"], json!(["-c", "echo hi"]));
        assert_eq!(p["cwd"], "/w");
        assert!(p["outputByteLimit"].as_u64().unwrap() < BASH_OUTPUT_BYTES as u64);
    }
}
