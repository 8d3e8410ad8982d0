//! Built-in coding tools: `read`, `write`, `edit`, `bash`, `ls`, `find`,
//! `grep`.
//!
//! Each tool lives in its own file and exposes the same three things: a
//! `definition()` (name, description, JSON Schema), a `preview()` that says
//! what a call would touch without doing it, and a `run()`. This file only
//! dispatches by name. Tools never ask for permission themselves: the caller
//! checks a [`Preview`] (paths for confinement, a diff for the prompt) before
//! it calls [`run`]. Every wire path goes through [`paths::resolve`], so the
//! paths a preview reports are the real locations the run will touch.
//!
//! Failures are tool results, not Rust errors: a model that sends a bad input
//! gets an `is_error` result saying which field to fix, and tries again.

mod args;
mod bash;
mod diff;
mod edit;
mod find;
mod fsutil;
mod grep;
mod ls;
pub mod paths;
mod read;
mod walk;
mod write;

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Incremental output lines buffered between a tool and the turn.
pub const UPDATE_CAPACITY: usize = 1024;

/// Where and how one tool call runs.
pub struct ToolCtx {
    /// The session's working directory, canonical.
    pub cwd: PathBuf,
    /// Abort: a running tool stops now and reports "aborted".
    pub cancel: CancellationToken,
    /// Incremental output (bash lines, without their newline) for
    /// `tool_execution_update` events. A closed receiver is fine.
    /// Bounded ([`UPDATE_CAPACITY`]): when the client does not keep up,
    /// further lines are skipped rather than buffered; the tool's result
    /// still carries the output.
    pub updates: mpsc::Sender<String>,
    /// Environment variable names that bash children must not inherit (API
    /// keys).
    pub env_remove: Vec<String>,
}

/// The result handed back to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
}

impl ToolOutput {
    pub(crate) fn ok(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
        }
    }

    pub(crate) fn error(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: true,
        }
    }

    /// A failure as the model reads it: the whole chain of context, since
    /// a tool's messages are built as "tool: what is wrong: why".
    pub(crate) fn failed(e: &anyhow::Error) -> Self {
        Self::error(format!("{e:#}"))
    }
}

impl From<anyhow::Result<String>> for ToolOutput {
    fn from(r: anyhow::Result<String>) -> Self {
        match r {
            Ok(s) => Self::ok(s),
            Err(e) => Self::failed(&e),
        }
    }
}

/// What a call would do, for the permission prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    /// A short line such as "Edit src/lib.rs (1 replacement)".
    pub title: String,
    /// The unified diff a `write` or `edit` would make.
    pub diff: Option<String>,
    /// The resolved paths the call touches, for confinement checks. For
    /// `bash` this is only its working directory: a shell command can touch
    /// anything, so confinement cannot be judged from paths.
    pub paths: Vec<PathBuf>,
}

/// Name, description and input schema of every built-in tool, in the shape
/// providers expect: `[{name, description, input_schema}]`.
/// Built once: every provider round sends them.
pub fn definitions() -> &'static [Value] {
    static DEFINITIONS: std::sync::LazyLock<Vec<Value>> = std::sync::LazyLock::new(|| {
        vec![
            read::definition(),
            write::definition(),
            edit::definition(),
            bash::definition(),
            ls::definition(),
            find::definition(),
            grep::definition(),
        ]
    });
    &DEFINITIONS
}

/// Tools that never change anything, so callers may run them without asking.
pub fn is_read_only(name: &str) -> bool {
    matches!(name, "read" | "ls" | "find" | "grep")
}

/// True for the names [`run`] accepts.
pub fn known(name: &str) -> bool {
    is_read_only(name) || matches!(name, "write" | "edit" | "bash")
}

/// Runs one tool call. An unknown tool or a bad input is an `is_error`
/// result whose message names the field to fix.
pub async fn run(name: &str, input: &Value, ctx: &ToolCtx) -> ToolOutput {
    if ctx.cancel.is_cancelled() {
        return ToolOutput::error("aborted");
    }
    tracing::debug!(tool = name, "running tool");
    match name {
        "read" => read::run(input, ctx).await,
        "write" => write::run(input, ctx).await,
        "edit" => edit::run(input, ctx).await,
        "bash" => bash::run(input, ctx).await,
        "ls" => ls::run(input, ctx).await,
        "find" => find::run(input, ctx).await,
        "grep" => grep::run(input, ctx).await,
        other => ToolOutput::error(unknown(other)),
    }
}

/// What a call would do, without doing it. Errors that would make the call
/// fail anyway (a missing field, edit's `old_string` not found) come back as
/// `Err` so the caller can fail the call without asking the user.
pub fn preview(name: &str, input: &Value, cwd: &Path) -> anyhow::Result<Preview> {
    match name {
        "read" => read::preview(input, cwd),
        "write" => write::preview(input, cwd),
        "edit" => edit::preview(input, cwd),
        "bash" => bash::preview(input, cwd),
        "ls" => ls::preview(input, cwd),
        "find" => find::preview(input, cwd),
        "grep" => grep::preview(input, cwd),
        other => Err(anyhow::anyhow!(unknown(other))),
    }
}

fn unknown(name: &str) -> String {
    format!(
        "unknown tool `{name}`; the built-in tools are read, write, edit, bash, ls, find and grep"
    )
}

/// Runs blocking file-system work off the async threads. A read-only tool
/// is abandoned at once on abort; the closure also gets the token so a long
/// walk stops soon after instead of running on unseen.
async fn blocking<F>(ctx: &ToolCtx, work: F) -> ToolOutput
where
    F: FnOnce(CancellationToken) -> anyhow::Result<String> + Send + 'static,
{
    let token = ctx.cancel.clone();
    let handle = tokio::task::spawn_blocking(move || work(token));
    tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => ToolOutput::error("aborted"),
        joined = handle => match joined {
            Ok(result) => result.into(),
            Err(e) => {
                tracing::error!(error = %e, "tool task failed");
                ToolOutput::error(format!("the tool failed unexpectedly: {e}"))
            }
        },
    }
}

/// Runs blocking work that must not be reported as aborted halfway: a
/// write that was already under way finishes (it is atomic and quick), and
/// the model is told what really happened.
async fn unabortable<F>(work: F) -> ToolOutput
where
    F: FnOnce() -> anyhow::Result<String> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.into(),
        Err(e) => {
            tracing::error!(error = %e, "tool task failed");
            ToolOutput::error(format!("the tool failed unexpectedly: {e}"))
        }
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// A context rooted at `dir` whose update receiver is handed back.
    pub fn ctx(dir: &Path) -> (ToolCtx, mpsc::Receiver<String>) {
        let (tx, rx) = mpsc::channel(UPDATE_CAPACITY);
        let cwd = match dir.canonicalize() {
            Ok(c) => c,
            Err(_) => dir.to_path_buf(),
        };
        let ctx = ToolCtx {
            cwd,
            cancel: CancellationToken::new(),
            updates: tx,
            env_remove: Vec::new(),
        };
        (ctx, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definitions_cover_every_known_tool() {
        let defs = definitions();
        assert_eq!(defs.len(), 7);
        for d in defs {
            let name = d["name"].as_str().unwrap_or_default();
            assert!(known(name), "{name}");
            assert!(d["description"].as_str().is_some_and(|s| !s.is_empty()));
            assert_eq!(d["input_schema"]["type"], "object");
        }
        assert!(is_read_only("grep") && !is_read_only("bash") && !known("rm"));
    }

    #[tokio::test]
    async fn unknown_tool_and_bad_input_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, _rx) = test_util::ctx(dir.path());
        let out = run("rm", &json!({}), &ctx).await;
        assert!(out.is_error && out.content.contains("unknown tool `rm`"));
        let out = run("read", &json!({"path": 5}), &ctx).await;
        assert!(
            out.is_error && out.content.contains("`path`"),
            "{}",
            out.content
        );
        let out = run("read", &json!("a.txt"), &ctx).await;
        assert!(
            out.is_error && out.content.contains("object"),
            "{}",
            out.content
        );
        assert!(preview("nope", &json!({}), &ctx.cwd).is_err());
    }
}
