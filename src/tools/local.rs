//! The local backends of the tool environment (`env.rs`): the disk this
//! process sees, and shell commands started on this machine through the one
//! child-process builder.
//!
//! Writes go to a temporary file in the target's own directory and are then
//! renamed over it. A rename within one file system is atomic, so a crash or
//! a kill leaves either the old file or the new one, never half of either.
//!
//! A shell command runs in a process group of its own, so everything it
//! starts can be killed with one `kill(-pgid, SIGKILL)`; dropping its
//! [`ShellProcess`] does that, so nothing outlives a call that was dropped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::net::unix::pipe;
use tokio::process::Child;

use super::env::{Backends, FileKind, FileMeta, FileSystem, Processes, Shell, ShellProcess};
use super::tool::BoxFuture;
use crate::process::{ChildBuilder, Sandbox};
use crate::protocol::SandboxMode;
use crate::sandbox::SessionSandbox;

/// The local disk.
pub(crate) struct LocalFs;

impl FileSystem for LocalFs {
    fn metadata(&self, path: &Path) -> io::Result<FileMeta> {
        let meta = fs::metadata(path)?;
        let kind = if meta.is_dir() {
            FileKind::Dir
        } else if meta.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        Ok(FileMeta {
            kind,
            len: meta.len(),
        })
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(File::open(path)?))
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<bool> {
        atomic_write(path, bytes)
    }
}

/// Keeps temporary names unique within this process; the pid keeps them
/// unique between processes.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically, creating parent directories.
/// Returns true when the file did not exist before. An existing file keeps
/// its permission bits.
fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (dir, name),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path names no file",
            ))
        }
    };
    let existing = match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory",
            ))
        }
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    fs::create_dir_all(dir)?;
    let tmp = tmp_path(dir, name);
    let result = write_then_rename(&tmp, path, bytes, existing.clone());
    if result.is_err() {
        // The temp file is ours and useless now; a failure to remove it
        // changes nothing for the caller.
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| existing.is_none())
}

fn tmp_path(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
    dir.join(tmp_name)
}

fn write_then_rename(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    perms: Option<fs::Permissions>,
) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(tmp)?;
    file.write_all(bytes)?;
    if let Some(perms) = perms {
        file.set_permissions(perms)?;
    }
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)?;
    // Make the rename itself durable. Some file systems refuse to sync a
    // directory; the data is already safe, so that is not an error.
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Shell commands on this machine.
pub(crate) struct LocalProcesses {
    /// Variables the command must not inherit (API keys).
    pub env_remove: Arc<Vec<String>>,
    /// The session's sandbox, applied to every command not run outside it.
    pub sandbox: Option<Arc<SessionSandbox>>,
}

impl Processes for LocalProcesses {
    fn shell<'a>(
        &'a self,
        command: &'a str,
        cwd: &'a Path,
        sandboxed: bool,
    ) -> BoxFuture<'a, io::Result<Shell>> {
        let sandbox = self
            .sandbox
            .clone()
            .filter(|_| sandboxed)
            .map(|s| s as Arc<dyn Sandbox>);
        // Spawned before the future is returned, on the caller's thread.
        let shell = self.spawn(command, cwd, sandbox);
        Box::pin(std::future::ready(shell))
    }

    fn sandbox(&self) -> Option<SandboxMode> {
        self.sandbox.as_ref().and_then(|s| s.enforced())
    }
}

impl LocalProcesses {
    /// `bash -c`, or `sh -c` where bash is missing, with stdout and stderr
    /// on one new pipe, as with `2>&1`, so the output keeps the order in
    /// which it was written.
    fn spawn(
        &self,
        command: &str,
        cwd: &Path,
        sandbox: Option<Arc<dyn Sandbox>>,
    ) -> io::Result<Shell> {
        // Checked here, where the process starts: a missing directory
        // would otherwise surface as the shell itself not being found.
        if !cwd.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the working directory {} does not exist", cwd.display()),
            ));
        }
        for shell in ["bash", "sh"] {
            let (reader, writer) = io::pipe()?;
            // The write end goes to the child twice (stdout and stderr) and
            // our copies close with the builder, or end of file would never
            // come.
            let spawned = ChildBuilder::new(shell)
                .args(["-c", command])
                .current_dir(cwd)
                .env_remove(&self.env_remove)
                .own_group()
                .stdio(Stdio::null(), writer.try_clone()?, writer)
                .sandbox(sandbox.clone())
                .spawn();
            match spawned {
                Ok(child) => {
                    let output = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
                    // The child leads a group whose id is its pid.
                    let group = child.id();
                    return Ok(Shell {
                        output: Box::new(output),
                        process: Box::new(LocalShell { child, group }),
                        terminal: None,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && shell == "bash" => {
                    tracing::debug!("bash is not installed; using sh");
                }
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "neither bash nor sh was found",
        ))
    }
}

/// A local shell and its process group, killed when this is dropped.
struct LocalShell {
    child: Child,
    /// Taken by the first kill.
    group: Option<u32>,
}

impl ShellProcess for LocalShell {
    fn wait(&mut self) -> BoxFuture<'_, io::Result<ExitStatus>> {
        Box::pin(self.child.wait())
    }

    fn kill(&mut self) {
        let group = self.group.take();
        if group.is_some() && !crate::process::kill_group(group) {
            // ESRCH: everything in the group had already exited.
            tracing::trace!(?group, "process group already gone");
        }
    }
}

impl Drop for LocalShell {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Backends {
    /// The local disk, and local processes that do not inherit
    /// `env_remove` (the API keys); no sandbox (the tools' unit tests).
    #[cfg(test)]
    pub(crate) fn local(env_remove: Arc<Vec<String>>) -> Backends {
        Backends::local_sandboxed(env_remove, None)
    }

    /// The same, commands and file writes held to `sandbox`.
    pub(crate) fn local_sandboxed(
        env_remove: Arc<Vec<String>>,
        sandbox: Option<Arc<SessionSandbox>>,
    ) -> Backends {
        Backends {
            fs: Arc::new(LocalFs),
            processes: Arc::new(LocalProcesses {
                env_remove,
                sandbox: sandbox.clone(),
            }),
            sandbox,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_creates_replaces_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c.txt");
        assert!(atomic_write(&p, b"one").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o751)).unwrap();
        assert!(!atomic_write(&p, b"two").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o751);
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(atomic_write(dir.path(), b"x").is_err());
    }
}
