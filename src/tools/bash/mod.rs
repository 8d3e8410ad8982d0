//! `bash {command, timeout_ms?}`: one shell command in the session's
//! working directory.
//!
//! The command is started by the session's process backend (`ctx.env`;
//! locally `bash -c`, or `sh -c` where bash is missing, in a process group
//! of its own, see `tools/local.rs`; in an editor that offers one, its
//! terminal, see `acp/terminal.rs`, announced as a `ToolUpdate::Terminal`). Everything it starts is killed: on
//! timeout, on abort, when the command ends, and when this future is
//! dropped (dropping the backend's `ShellProcess` kills). stdout and stderr
//! come as one stream, in the order they were written; each line also goes
//! to `ctx.env.updates` as it arrives. Only the tail of a long output is
//! kept, since the end of a build or test log is what matters.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt};

pub(crate) mod output;

use super::args::Args;
use super::tool::Builtin;
use super::{Access, FileSystem, Preview, Shell, ToolCtx, ToolOutput, ToolUpdate};
use output::Collector;

const DEFAULT_TIMEOUT_MS: u64 = 120_000;
const MAX_TIMEOUT_MS: u64 = 600_000;
/// Bytes read from the pipe at a time.
const READ_CHUNK_BYTES: usize = 8 * 1024;
/// After the shell exits, how long processes it left in the background may
/// keep the output open before the group is killed.
const EXIT_GRACE: Duration = Duration::from_millis(200);
/// After a kill, how long to wait for the last output and the exit. Keeps
/// an abort well inside the 200 ms the host promises.
const KILL_DRAIN: Duration = Duration::from_millis(100);
/// How much of the command a preview title shows.
const TITLE_CHARS: usize = 120;

/// A call's input, checked.
pub(crate) struct Input {
    command: String,
    timeout_ms: u64,
    /// False: run outside the session's sandbox (always asks the user,
    /// unless the permission mode is allow-all).
    sandboxed: bool,
}

/// `bash` as the tool table holds it.
pub(crate) struct BashTool;

impl Builtin for BashTool {
    type Input = Input;
    const NAME: &'static str = "bash";
    const ACCESS: Access = Access::Unrestricted;
    const SUMMARY: &'static str =
        "Run a shell command (`bash -c`) in the working directory: builds, tests, git, anything the other tools do not cover.";

    fn definition() -> Value {
        json!({
            "name": Self::NAME,
            "description": "Run a shell command with `bash -c` in the working directory. stdout and \
                stderr are returned together, followed by the exit status. Output over 50 KB keeps \
                only the end. The default timeout is 120000 ms (at most 600000). stdin is empty, so \
                interactive commands cannot prompt. Processes the command leaves running in the \
                background are stopped when it finishes.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The command line to run."},
                    "timeout_ms": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_MS,
                        "description": "Kill the command after this many milliseconds (default 120000)."},
                    "sandbox": {"type": "boolean",
                        "description": "false: run outside the sandbox, only after the sandbox blocked the command and it must do what the sandbox forbids; the user is asked first."}
                },
                "required": ["command"]
            }
        })
    }

    fn parse(input: &Value, _cwd: &Path) -> Result<Self::Input> {
        let args = Args::new(Self::NAME, input)?;
        let command = args.string("command")?;
        if command.trim().is_empty() {
            bail!("bash: `command` is empty");
        }
        let timeout_ms = args.opt_u64("timeout_ms")?.unwrap_or(DEFAULT_TIMEOUT_MS);
        if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
            bail!(
                "bash: `timeout_ms` must be between 1 and {MAX_TIMEOUT_MS} (10 minutes), got {timeout_ms}"
            );
        }
        let sandboxed = args.opt_bool("sandbox")?.unwrap_or(true);
        Ok(Input {
            command: command.to_owned(),
            timeout_ms,
            sandboxed,
        })
    }

    fn leaves_sandbox(input: &Value) -> bool {
        input.get("sandbox") == Some(&Value::Bool(false))
    }

    fn preview(i: Self::Input, cwd: &Path, _fs: &dyn FileSystem) -> Result<Preview> {
        let first = i.command.lines().next().unwrap_or_default();
        let mut title: String = first.chars().take(TITLE_CHARS).collect();
        if title.len() < i.command.trim_end().len() {
            title.push('…');
        }
        let outside = if i.sandboxed {
            ""
        } else {
            " outside the sandbox"
        };
        Ok(Preview {
            title: format!("Run `{title}`{outside}"),
            diff: None,
            paths: vec![cwd.to_path_buf()],
        })
    }

    async fn run(i: Self::Input, ctx: &ToolCtx) -> ToolOutput {
        let Shell {
            output: mut out_pipe,
            mut process,
            terminal,
        } = match start(&i.command, i.sandboxed, ctx).await {
            Ok(c) => c,
            Err(e) => return ToolOutput::error(e),
        };
        if let Some(id) = terminal {
            // Once, and not skippable like output: it is how the editor
            // knows which terminal to show.
            let _ = ctx.env.updates.send(ToolUpdate::Terminal(id)).await;
        }

        let mut output = Collector::new(&ctx.env.updates);
        let mut buf = vec![0u8; READ_CHUNK_BYTES];
        let deadline = tokio::time::sleep(Duration::from_millis(i.timeout_ms));
        tokio::pin!(deadline);
        let mut open = true;
        let end = loop {
            tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => break End::Aborted,
                _ = &mut deadline => break End::TimedOut,
                read = out_pipe.read(&mut buf), if open => match read {
                    Ok(n) if n > 0 => output.push(&buf[..n]),
                    // End of file: every writer has closed the pipe.
                    _ => open = false,
                },
                status = process.wait() => break End::Exited(status),
            }
        };

        let mut lingered = false;
        match end {
            End::Exited(_) => {
                if open {
                    let drained = drain(&mut out_pipe, &mut buf, &mut output);
                    lingered = tokio::time::timeout(EXIT_GRACE, drained).await.is_err();
                }
                process.kill();
                if lingered {
                    let drained = drain(&mut out_pipe, &mut buf, &mut output);
                    let _ = tokio::time::timeout(KILL_DRAIN, drained).await;
                }
            }
            End::TimedOut | End::Aborted => {
                // An abort keeps its 200 ms promise; a timeout's output is
                // what the model needs, so it waits as long as the backend
                // takes to hand it over.
                let grace = match end {
                    End::TimedOut => process.output_after_kill().unwrap_or(KILL_DRAIN),
                    _ => KILL_DRAIN,
                };
                process.kill();
                let last = async {
                    let _ = process.wait().await;
                    drain(&mut out_pipe, &mut buf, &mut output).await;
                };
                let _ = tokio::time::timeout(grace, last).await;
            }
        }

        let sandbox = ctx.env.processes.sandbox().filter(|_| i.sandboxed);
        let mut out = result(end, i.timeout_ms, output.finish(), lingered);
        if let Some(note) =
            sandbox.and_then(|mode| crate::sandbox::blocked::note(mode, out.is_error, &out.content))
        {
            out.content.push('\n');
            out.content.push_str(&note);
        }
        out
    }
}

/// Starts the command; an abort while the backend is still starting it
/// (an editor may ask its user before it opens a terminal) ends the call.
async fn start(command: &str, sandboxed: bool, ctx: &ToolCtx) -> Result<Shell, String> {
    tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => Err("aborted before the command started".to_owned()),
        shell = ctx.env.processes.shell(command, &ctx.cwd, sandboxed) => {
            shell.map_err(|e| format!("bash: cannot start the shell: {e}"))
        }
    }
}

/// The result the model reads: the output, a blank line, how it ended.
fn result(end: End, timeout_ms: u64, mut content: String, lingered: bool) -> ToolOutput {
    let (status, is_error) = match end {
        End::Exited(Ok(st)) => (describe(st), !st.success()),
        End::Exited(Err(e)) => (format!("the shell's exit status is unknown: {e}"), true),
        End::TimedOut => (format!("timed out after {timeout_ms} ms"), true),
        End::Aborted => ("aborted".to_owned(), true),
    };
    tracing::debug!(%status, "bash finished");
    if content.is_empty() {
        content.push_str("(no output)\n");
    } else if !content.ends_with('\n') {
        content.push('\n');
    }
    content.push('\n');
    content.push_str(&status);
    if lingered {
        content.push_str("\n(processes it left running in the background were killed)");
    }
    ToolOutput {
        content,
        is_error,
        images: Vec::new(),
        cost_usd: 0.0,
    }
}

/// How the command ended.
enum End {
    Exited(io::Result<ExitStatus>),
    TimedOut,
    Aborted,
}

/// Reads until every writer has closed the pipe.
async fn drain<R: AsyncRead + Unpin + ?Sized>(
    pipe: &mut R,
    buf: &mut [u8],
    output: &mut Collector<'_>,
) {
    while let Ok(n) = pipe.read(buf).await {
        if n == 0 {
            break;
        }
        output.push(&buf[..n]);
    }
}

fn describe(st: ExitStatus) -> String {
    if let Some(code) = st.code() {
        return format!("exit code {code}");
    }
    match st.signal() {
        Some(sig) => {
            let name = match sig {
                libc::SIGHUP => " (SIGHUP)",
                libc::SIGINT => " (SIGINT)",
                libc::SIGABRT => " (SIGABRT)",
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGPIPE => " (SIGPIPE)",
                libc::SIGTERM => " (SIGTERM)",
                _ => "",
            };
            format!("killed by signal {sig}{name}")
        }
        None => format!("ended: {st}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_util::ctx;
    use crate::tools::Tool;
    use std::time::Instant;

    /// Through the table's interface, as the turn runs it.
    async fn run(input: &Value, c: &ToolCtx) -> ToolOutput {
        BashTool.run(input, c).await
    }

    fn preview(input: &Value, cwd: &Path) -> Result<Preview> {
        BashTool.preview(input, cwd, &crate::tools::local::LocalFs)
    }

    async fn bash(c: &ToolCtx, command: &str) -> ToolOutput {
        run(&json!({"command": command}), c).await
    }

    #[tokio::test]
    async fn a_working_directory_that_is_gone_is_said_so() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, _rx) = ctx(dir.path());
        c.cwd = dir.path().join("gone");
        let out = bash(&c, "true").await;
        assert!(out.is_error, "{out:?}");
        assert!(
            out.content.contains("the working directory") && out.content.contains("gone"),
            "{out:?}"
        );
    }

    #[tokio::test]
    async fn output_status_and_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let (c, mut rx) = ctx(dir.path());
        let out = bash(&c, "echo hello; echo oops >&2; pwd").await;
        let cwd = c.cwd.display().to_string();
        assert_eq!(
            out,
            ToolOutput::ok(format!("hello\noops\n{cwd}\n\nexit code 0"))
        );
        let updates = crate::tools::test_util::lines(&mut rx);
        assert_eq!(updates, vec!["hello".to_owned(), "oops".to_owned(), cwd]);

        let out = bash(&c, "printf 'no newline'; exit 3").await;
        assert_eq!(out, ToolOutput::error("no newline\n\nexit code 3"));
        let out = bash(&c, "true").await;
        assert_eq!(out, ToolOutput::ok("(no output)\n\nexit code 0"));
        let out = bash(&c, "kill -TERM $$").await;
        assert_eq!(
            out,
            ToolOutput::error("(no output)\n\nkilled by signal 15 (SIGTERM)")
        );
    }

    #[tokio::test]
    async fn long_output_keeps_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let out = bash(&c, "seq 1 30000").await;
        assert!(!out.is_error);
        assert!(out.content.starts_with('['), "{}", &out.content[..100]);
        let first = out.content.lines().next().unwrap();
        assert!(first.contains("bytes of earlier output dropped"), "{first}");
        assert!(out.content.ends_with("30000\n\nexit code 0"));
        assert!(out.content.len() <= output::MAX_OUTPUT_BYTES + 200);
        // The kept part starts on a whole line.
        let second = out.content.lines().nth(1).unwrap();
        let n: u32 = second.parse().unwrap();
        assert!(out.content.contains(&format!("\n{}\n", n + 1)));
    }

    fn gone(pid: &str) -> bool {
        // A killed child may linger as a zombie until init reaps it; that
        // is dead for our purposes.
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z')),
        }
    }

    async fn wait_gone(pid: &str) -> bool {
        for _ in 0..50 {
            if gone(pid) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let started = Instant::now();
        let out = run(
            &json!({"command": "sleep 30 & echo $!; wait", "timeout_ms": 300}),
            &c,
        )
        .await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(out.is_error);
        assert!(
            out.content.ends_with("\n\ntimed out after 300 ms"),
            "{}",
            out.content
        );
        let pid = out.content.lines().next().unwrap().trim().to_owned();
        assert!(pid.parse::<u32>().is_ok(), "{pid}");
        assert!(wait_gone(&pid).await, "background sleep {pid} survived");
    }

    #[tokio::test]
    async fn background_children_do_not_outlive_the_command() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let started = Instant::now();
        // The background sleep holds stdout open after the shell exits.
        let out = bash(&c, "sleep 30 & echo $!").await;
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(!out.is_error, "{}", out.content);
        assert!(out.content.contains("exit code 0"));
        let pid = out.content.lines().next().unwrap().trim().to_owned();
        assert!(wait_gone(&pid).await, "background sleep {pid} survived");
    }

    #[tokio::test]
    async fn cancel_returns_promptly() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let cancel = c.cancel.clone();
        let cancelled_at = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            cancel.cancel();
            Instant::now()
        });
        let out = bash(&c, "sleep 30 & echo $!; wait").await;
        let returned = Instant::now();
        let cancelled_at = cancelled_at.await.unwrap();
        assert!(returned.duration_since(cancelled_at) < Duration::from_secs(1));
        assert!(out.is_error);
        assert!(out.content.ends_with("\n\naborted"), "{}", out.content);
        let pid = out.content.lines().next().unwrap().trim().to_owned();
        assert!(wait_gone(&pid).await, "background sleep {pid} survived");
    }

    #[tokio::test]
    async fn dropping_the_future_kills_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let pidfile = c.cwd.join("pid");
        let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let fut = bash(&c, &cmd);
        let _ = tokio::time::timeout(Duration::from_millis(300), fut).await;
        let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_owned();
        assert!(wait_gone(&pid).await, "background sleep {pid} survived");
    }

    #[tokio::test]
    async fn env_remove_hides_variables() {
        // A name no other test uses, so setting it cannot disturb them.
        std::env::set_var("AGENT_RPC_TOOLS_TEST_SECRET", "s3cret");
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let cmd = "echo \"k=${AGENT_RPC_TOOLS_TEST_SECRET-unset}\"";
        assert!(bash(&c, cmd).await.content.starts_with("k=s3cret\n"));
        let secret = std::sync::Arc::new(vec!["AGENT_RPC_TOOLS_TEST_SECRET".to_owned()]);
        let (c, _rx) = crate::tools::test_util::ctx_with(dir.path(), secret);
        assert!(bash(&c, cmd).await.content.starts_with("k=unset\n"));
    }

    #[tokio::test]
    async fn the_shell_dies_with_the_host() {
        // bash execs its last command, so python reads the shell's own
        // parent-death signal.
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let probe = "python3 -c 'import ctypes; s = ctypes.c_int(0); \
            ctypes.CDLL(None).prctl(2, ctypes.byref(s)); print(s.value)'";
        let out = bash(&c, probe).await;
        assert_eq!(
            out,
            ToolOutput::ok(format!("{}\n\nexit code 0", libc::SIGKILL))
        );
    }

    #[test]
    fn input_checks_and_preview() {
        let cwd = Path::new("/p");
        let e = BashTool::parse(&json!({"command": "ls", "timeout_ms": 700000}), cwd)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`timeout_ms`"), "{e}");
        assert!(BashTool::parse(&json!({"command": " "}), cwd).is_err());
        let p = preview(
            &json!({"command": "cargo test\necho done"}),
            Path::new("/p"),
        )
        .unwrap();
        assert_eq!(p.title, "Run `cargo test…`");
        assert_eq!(p.paths, vec![Path::new("/p").to_path_buf()]);
    }
}
