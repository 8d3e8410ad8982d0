//! Coding tools: the built-in `read`, `write`, `edit`, `bash`, `ls`, `find`,
//! `grep`, and the table a turn finds them in.
//!
//! A tool implements [`Tool`] (`tool.rs`); the turn looks it up by name in
//! a [`Toolset`] (`table.rs`) once per call. Each built-in tool lives in its
//! own file and says how to parse its input, what a call would touch
//! (`preview`) and how to run it. Tools never ask for permission
//! themselves: the caller checks a [`Preview`] (paths for confinement, a
//! diff for the prompt) and the tool's [`Access`] before it runs the call.
//! Every wire path goes through [`paths::resolve`], so the paths a preview
//! reports are the real locations the run will touch.
//! A tool touches files and starts processes only through the [`ToolEnv`]
//! in its [`ToolCtx`] (`env.rs`), so the backends can change per session.
//!
//! Inside a tool failures are `anyhow` errors whose contexts read as
//! "tool: what is wrong"; they reach the model as tool results, not Rust
//! errors: a model that sends a bad input gets an `is_error` result saying
//! which field to fix, and tries again.

mod args;
mod bash;
mod diff;
mod edit;
mod env;
mod find;
pub(crate) mod fsutil;
mod grep;
mod image;
mod local;
mod ls;
pub(crate) mod paths;
mod read;
mod source;
mod table;
mod todo;
mod tool;
mod walk;
mod write;

use std::path::PathBuf;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub(crate) use crate::permissions::Access;
pub(crate) use bash::output::MAX_OUTPUT_BYTES as BASH_OUTPUT_BYTES;
pub(crate) use env::{
    Backends, FileKind, FileMeta, FileSystem, Processes, Shell, ShellProcess, ToolEnv, ToolUpdate,
};
pub(crate) use local::LocalFs;
pub(crate) use source::{Builtins, ToolSource, ToolSources};
pub(crate) use table::{Offer, Toolset};
pub(crate) use tool::{BoxFuture, Tool};

/// Updates buffered between a tool and the turn.
pub(crate) const UPDATE_CAPACITY: usize = 1024;

/// Where and how one tool call runs.
pub(crate) struct ToolCtx {
    /// The session's working directory, canonical.
    pub cwd: PathBuf,
    /// Abort: a running tool stops now and reports "aborted".
    pub cancel: CancellationToken,
    /// What the call may touch: files, processes, and where its updates go.
    pub env: ToolEnv,
    /// The session and call this run is for.
    pub caller: Caller,
}

/// The session a call runs in, as a tool that acts for it (`task`, which
/// starts a subagent on its behalf) needs to know it.
#[derive(Clone)]
pub(crate) struct Caller {
    pub session_id: String,
    /// The call's own id (a subagent's frames are tagged with it).
    pub tool_call_id: String,
    /// The session's model now.
    pub model: Option<String>,
    /// The session's permission gate.
    pub gate: std::sync::Arc<crate::permissions::Gate>,
}

impl Caller {
    /// A caller outside any session (unit tests of single tools).
    #[cfg(test)]
    pub(crate) fn detached() -> Self {
        Caller {
            session_id: String::new(),
            tool_call_id: String::new(),
            model: None,
            gate: std::sync::Arc::new(crate::permissions::Gate::new(
                crate::protocol::Mode::Ask,
                Vec::new(),
            )),
        }
    }
}

/// The result handed back to the model.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ToolOutput {
    pub content: String,
    pub is_error: bool,
    /// Images the model is shown with the text (an MCP tool's image
    /// content, an image file `read` opened).
    pub images: Vec<ToolImage>,
    /// What a subagent the call ran spent (`task`): counted towards this
    /// session's budget and cost. 0 for every other tool.
    pub cost_usd: f64,
}

/// A base64 image in a tool's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolImage {
    pub media_type: String,
    /// Base64, as the server sent it.
    pub data: String,
}

impl ToolOutput {
    pub(crate) fn ok(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: false,
            images: Vec::new(),
            cost_usd: 0.0,
        }
    }

    pub(crate) fn error(content: impl Into<String>) -> Self {
        Self {
            content: content.into(),
            is_error: true,
            images: Vec::new(),
            cost_usd: 0.0,
        }
    }

    /// A failure as the model reads it: the whole chain of context, since
    /// a tool's messages are built as "tool: what is wrong: why".
    pub(crate) fn failed(e: &anyhow::Error) -> Self {
        Self::error(format!("{e:#}"))
    }
}

impl From<anyhow::Result<ToolOutput>> for ToolOutput {
    fn from(r: anyhow::Result<ToolOutput>) -> Self {
        r.unwrap_or_else(|e| Self::failed(&e))
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
pub(crate) struct Preview {
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
/// providers expect: `[{name, description, input_schema}]`, built once with
/// the built-in [`Toolset`]. Provider rounds do not read these: a round
/// sends its [`Offer`]'s definitions (for the permission mode, with the
/// session's MCP tools). Only compaction's estimate of a request's size
/// reads them (`compaction::tool_tokens`).
pub(crate) fn definitions() -> &'static [Value] {
    Toolset::builtin().definitions()
}

/// Runs blocking file-system work off the async threads. A read-only tool
/// is abandoned at once on abort; the closure also gets the token so a long
/// walk stops soon after instead of running on unseen.
async fn blocking<F, R>(ctx: &ToolCtx, work: F) -> ToolOutput
where
    F: FnOnce(CancellationToken) -> R + Send + 'static,
    R: Into<ToolOutput> + Send + 'static,
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

/// How long an abort waits for a write already under way. A local write
/// takes a few milliseconds and always finishes inside it; the editor's
/// (`fs/write_text_file`) may wait on its user, and the turn must not.
const WRITE_ABORT_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Runs a blocking write that must not be reported as aborted halfway: on
/// an abort, a write already under way gets [`WRITE_ABORT_GRACE`] to finish
/// (a local one is atomic and quick), and the model is told what really
/// happened; a write not done by then is reported as maybe applied.
async fn let_write_finish<F>(ctx: &ToolCtx, work: F) -> ToolOutput
where
    F: FnOnce() -> anyhow::Result<String> + Send + 'static,
{
    let handle = tokio::task::spawn_blocking(work);
    tokio::pin!(handle);
    let joined = tokio::select! {
        biased;
        joined = &mut handle => joined,
        _ = ctx.cancel.cancelled() => {
            match tokio::time::timeout(WRITE_ABORT_GRACE, &mut handle).await {
                Ok(joined) => joined,
                Err(_) => {
                    return ToolOutput::error(
                        "aborted while the write was under way: it may still complete; check the file before relying on it",
                    )
                }
            }
        }
    };
    match joined {
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
    use std::path::Path;
    use tokio::sync::mpsc;

    /// A context rooted at `dir` on the local backends, whose update
    /// receiver is handed back.
    pub(crate) fn ctx(dir: &Path) -> (ToolCtx, mpsc::Receiver<ToolUpdate>) {
        ctx_with(dir, Default::default())
    }

    /// The same, with bash children not inheriting `env_remove`.
    pub(crate) fn ctx_with(
        dir: &Path,
        env_remove: std::sync::Arc<Vec<String>>,
    ) -> (ToolCtx, mpsc::Receiver<ToolUpdate>) {
        let (tx, rx) = mpsc::channel(UPDATE_CAPACITY);
        let cwd = match dir.canonicalize() {
            Ok(c) => c,
            Err(_) => dir.to_path_buf(),
        };
        let ctx = ToolCtx {
            cwd,
            cancel: CancellationToken::new(),
            env: Backends::local(env_remove).env(tx),

            caller: crate::tools::Caller::detached(),
        };
        (ctx, rx)
    }

    /// The text of the output updates received so far.
    pub(crate) fn lines(rx: &mut mpsc::Receiver<ToolUpdate>) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(update) = rx.try_recv() {
            if let ToolUpdate::Output(line) = update {
                lines.push(line);
            }
        }
        lines
    }
}
