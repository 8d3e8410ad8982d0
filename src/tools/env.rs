//! The tool environment: what a tool may touch, handed to it as one value
//! ([`ToolEnv`] in its [`super::ToolCtx`]) instead of reached for as a
//! global. A tool reads and writes files through [`FileSystem`], starts its
//! shell command through [`Processes`] and reports progress as typed
//! [`ToolUpdate`]s, so the same tool runs against the local machine today
//! and against the editor (ACP `fs/*`, its terminal) or a sandbox later,
//! without knowing which. The local backends live in `local.rs`.
//!
//! The file system offers only what an editor can serve: metadata, reading
//! a file and replacing it whole. The walking tools (`ls`, `find`, `grep`)
//! need to list directories, which an editor does not offer, so they walk
//! the local disk directly, and so does path resolution (`paths.rs`), which
//! follows symlinks.
//!
//! The file-system methods are blocking, like the std calls they stand
//! for: previews and tools call them on blocking threads (`spawn_blocking`),
//! so a remote backend may block such a thread on its request. `shell` is
//! the exception: it is a future polled on the runtime's thread, because a
//! child's parent-death signal follows the thread that forks it, and a
//! blocking thread exits when idle (which would kill a long command); a
//! remote backend awaits its requests there instead of blocking.

use std::io::{self, Read};
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;

use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use super::tool::BoxFuture;
use crate::protocol::PlanEntry;

/// What a path is, as far as the file tools care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    File,
    Dir,
    /// A FIFO, a device, a socket: opening one could block or never end.
    Other,
}

/// A path's metadata, symlinks followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileMeta {
    pub kind: FileKind,
    pub len: u64,
}

/// Where the file tools (`read`, `write`, `edit`) read and write.
pub(crate) trait FileSystem: Send + Sync {
    fn metadata(&self, path: &Path) -> io::Result<FileMeta>;

    /// A regular file's bytes, from the start; the caller stops reading
    /// when it has what it shows.
    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>>;

    /// Replaces `path` with `bytes` whole (never half-written), creating
    /// parent directories; true when the file did not exist before.
    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<bool>;

    /// Lines `line..line + limit` (1-based) of a text file, when this file
    /// system serves text by lines (the editor's `fs/read_text_file`);
    /// `None` when it does not or the file is binary, and the caller reads
    /// it whole through [`FileSystem::open`].
    fn read_lines(&self, _path: &Path, _line: u64, _limit: u64) -> Option<io::Result<String>> {
        None
    }
}

/// Where the `bash` tool runs its command.
pub(crate) trait Processes: Send + Sync {
    /// Starts `command` in a shell in `cwd` with stdin empty,
    /// stdout and stderr together on one stream. `sandboxed: false` runs
    /// it outside the session's sandbox (the gate asked the user first).
    fn shell<'a>(
        &'a self,
        command: &'a str,
        cwd: &'a Path,
        sandboxed: bool,
    ) -> BoxFuture<'a, io::Result<Shell>>;

    /// The sandbox mode the kernel enforces on commands started here;
    /// `None` when none is (off, or a backend that has none: the editor's
    /// terminal).
    fn sandbox(&self) -> Option<crate::protocol::SandboxMode> {
        None
    }
}

/// A running shell command: its output and the process, apart so that a
/// tool can read the one while it waits for the other.
pub(crate) struct Shell {
    /// stdout and stderr in the order they were written; ends when every
    /// process holding it has closed it.
    pub output: Box<dyn AsyncRead + Send + Unpin>,
    pub process: Box<dyn ShellProcess>,
    /// The editor terminal the command runs in, when it runs in one (the
    /// editor shows its output live; `output` carries it once it ended).
    pub terminal: Option<String>,
}

/// The process side of a [`Shell`]. Dropping it kills the command and
/// everything it started, so nothing outlives a call that is dropped.
pub(crate) trait ShellProcess: Send {
    /// The shell's exit; cancel-safe, so it can sit in a `select!`.
    fn wait(&mut self) -> BoxFuture<'_, io::Result<ExitStatus>>;

    /// Kills the command and everything it started (once; later calls do
    /// nothing).
    fn kill(&mut self);

    /// After a kill on timeout, how long the output may take to arrive:
    /// `None` for the caller's own short drain (a local pipe has it at
    /// once); an editor's terminal hands it over only after round trips.
    fn output_after_kill(&self) -> Option<std::time::Duration> {
        None
    }
}

/// Something a running tool reports before its result.
#[derive(Debug)]
pub(crate) enum ToolUpdate {
    /// A line of output (bash), or a progress line (an MCP server's),
    /// without its newline.
    Output(String),
    /// The editor terminal the command runs in (ACP `terminal/create`),
    /// for the client to show.
    Terminal(String),
    /// The model's plan, replacing the last one (`todo_write`).
    Plan(Vec<PlanEntry>),
    /// Something the subagent a `task` call runs did, for the parent's
    /// client (`agents::Nested`).
    #[allow(
        dead_code,
        reason = "the task tool producing it is being written (issue 22)"
    )]
    Subagent(crate::sink::Nested),
}

/// A session's backends, shared by its turns; [`Backends::env`] adds the
/// update channel of one call. (`Backends::local`, in `local.rs`, makes
/// the local ones.)
#[derive(Clone)]
pub(crate) struct Backends {
    pub fs: Arc<dyn FileSystem>,
    pub processes: Arc<dyn Processes>,
    /// The session's sandbox: its writable roots bind the file tools
    /// whatever the file system is.
    pub sandbox: Option<Arc<crate::sandbox::SessionSandbox>>,
}

impl Backends {
    /// `{mode, enforced}` as `ready` and `get_state` report it: enforced
    /// only where the process backend applies the sandbox (not in an
    /// editor's terminal).
    pub(crate) fn sandbox_state(&self) -> crate::protocol::SandboxState {
        let mode = self
            .sandbox
            .as_ref()
            .map_or(crate::protocol::SandboxMode::Off, |s| s.mode());
        crate::protocol::SandboxState {
            mode,
            enforced: self.processes.sandbox().is_some(),
        }
    }

    pub(crate) fn env(&self, updates: mpsc::Sender<ToolUpdate>) -> ToolEnv {
        ToolEnv {
            fs: self.fs.clone(),
            processes: self.processes.clone(),
            sandbox: self.sandbox.clone(),
            updates,
        }
    }
}

/// What one tool call may touch.
pub(crate) struct ToolEnv {
    pub fs: Arc<dyn FileSystem>,
    pub processes: Arc<dyn Processes>,
    pub sandbox: Option<Arc<crate::sandbox::SessionSandbox>>,
    /// Incremental output for `tool_execution_update` events. A closed
    /// receiver is fine. Bounded ([`super::UPDATE_CAPACITY`]): when the
    /// client does not keep up, further updates are skipped rather than
    /// buffered; the tool's result still carries the output.
    pub updates: mpsc::Sender<ToolUpdate>,
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::Mutex;

    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::tools::{ToolCtx, Toolset};

    /// A file system held in memory, as the editor's would be: nothing the
    /// tools do may reach the disk.
    #[derive(Default)]
    struct MemFs(Mutex<HashMap<PathBuf, Vec<u8>>>);

    impl FileSystem for MemFs {
        fn metadata(&self, path: &Path) -> io::Result<FileMeta> {
            let files = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match files.get(path) {
                Some(bytes) => Ok(FileMeta {
                    kind: FileKind::File,
                    len: bytes.len() as u64,
                }),
                None if path.parent().is_none() || files.keys().any(|k| k.starts_with(path)) => {
                    Ok(FileMeta {
                        kind: FileKind::Dir,
                        len: 0,
                    })
                }
                None => Err(io::ErrorKind::NotFound.into()),
            }
        }

        fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
            let files = self.0.lock().unwrap_or_else(|p| p.into_inner());
            let bytes = files.get(path).ok_or(io::ErrorKind::NotFound)?;
            Ok(Box::new(io::Cursor::new(bytes.clone())))
        }

        fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<bool> {
            let mut files = self.0.lock().unwrap_or_else(|p| p.into_inner());
            Ok(files.insert(path.to_owned(), bytes.to_vec()).is_none())
        }
    }

    #[tokio::test]
    async fn the_file_tools_use_the_sessions_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path().canonicalize().unwrap();
        let fs = Arc::new(MemFs::default());
        let backends = Backends {
            fs: fs.clone(),
            processes: Backends::local(Default::default()).processes,
            sandbox: None,
        };
        let (tx, _rx) = mpsc::channel(crate::tools::UPDATE_CAPACITY);
        let ctx = ToolCtx {
            cwd: cwd.clone(),
            cancel: CancellationToken::new(),
            env: backends.env(tx),

            caller: crate::tools::Caller::detached(),
        };
        let tool = |name| Toolset::builtin().get(name).unwrap();

        let out = tool("write")
            .run(&json!({"path": "a.txt", "content": "one\ntwo\n"}), &ctx)
            .await;
        assert_eq!(out.content, "Created a.txt (8 bytes written)");
        assert!(!cwd.join("a.txt").exists(), "the write reached the disk");

        let edit = json!({"path": "a.txt", "old_string": "two", "new_string": "2"});
        let preview = tool("edit").preview(&edit, &cwd, fs.as_ref()).unwrap();
        assert!(preview.diff.unwrap_or_default().contains("+2"));
        assert!(!tool("edit").run(&edit, &ctx).await.is_error);

        let out = tool("read").run(&json!({"path": "a.txt"}), &ctx).await;
        assert_eq!(out.content, "     1\tone\n     2\t2\n");
        let files = fs.0.lock().unwrap();
        assert_eq!(files.get(&cwd.join("a.txt")).unwrap(), b"one\n2\n");
    }
}
