//! The kernel sandbox of what the host runs for the model: `bash`, and MCP
//! stdio servers marked `sandbox = true` (SPEC §10).
//!
//! A [`SessionSandbox`] is one session's: its mode (`set_sandbox` changes
//! it), its working directory and the `[sandbox]` policy. It is the
//! [`Sandbox`] the child-process builder applies: for each command it
//! builds, in the host, a Landlock ruleset (`landlock.rs`: files, TCP), the
//! seccomp filter (`seccomp.rs`: socket families) and the mounts Landlock
//! cannot express (`mounts.rs`: read-only `.git/hooks` and `.git/config`);
//! the forked child applies them before exec, so the command and all it
//! starts inherit them and nothing can lift them.
//!
//! Fail closed: without Landlock in the kernel a sandboxed command does not
//! start; it fails with a message naming the missing feature and
//! `--sandbox off`. `blocked.rs` tells the model when a command failed
//! because of the sandbox; `check_write` holds the file tools to the same
//! writable roots.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use crate::process::Sandbox;
use crate::protocol::{SandboxMode, SandboxState};

pub(crate) mod blocked;
#[cfg(target_os = "linux")]
mod landlock;
#[cfg(target_os = "linux")]
mod mounts;
#[cfg(target_os = "linux")]
mod seccomp;

/// Why a sandboxed command cannot start on a kernel without Landlock.
pub(crate) const NO_LANDLOCK: &str = "the sandbox needs Landlock (Linux 5.13 or later, with `lsm=landlock` among the boot's security modules), which this kernel does not offer; the command was not run. Start the host with `--sandbox off` (or set `[sandbox] mode = \"off\"`) to run commands without a sandbox";

/// The `[sandbox]` policy, paths resolved.
#[derive(Debug, Clone, Default)]
pub(crate) struct Policy {
    /// Writable besides the working directory and the temp dir.
    pub writable_roots: Vec<PathBuf>,
    /// Nothing sandboxed reads these.
    pub deny_read: Vec<PathBuf>,
    pub network: bool,
}

impl Policy {
    /// The default `deny_read`: credentials in the home directory, and the
    /// host's own config and data (sessions hold whole conversations).
    pub(crate) fn default_deny_read(home: Option<&Path>, own: &[PathBuf]) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = home
            .map(|h| {
                [".ssh", ".gnupg", ".aws", ".config/gcloud"]
                    .iter()
                    .map(|p| h.join(p))
                    .collect()
            })
            .unwrap_or_default();
        paths.extend(own.iter().cloned());
        paths
    }
}

/// Whether the kernel can enforce a sandbox: checked once per process.
pub(crate) fn kernel_supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        #[cfg(target_os = "linux")]
        {
            landlock::kernel_abi().is_some()
        }
        #[cfg(not(target_os = "linux"))]
        {
            false
        }
    })
}

/// The mode a session starts in: the flag, else the config, else
/// workspace-write where the kernel can enforce it and off where it cannot
/// (said once on stderr). A mode asked for is kept even without Landlock:
/// then commands fail closed rather than run unguarded.
pub(crate) fn default_mode(flag: Option<SandboxMode>, config: Option<SandboxMode>) -> SandboxMode {
    if let Some(mode) = flag.or(config) {
        return mode;
    }
    if kernel_supported() {
        return SandboxMode::WorkspaceWrite;
    }
    tracing::warn!(
        "this kernel has no Landlock, so commands run without a sandbox (sandbox mode off); `--sandbox workspace-write` would refuse to run them instead"
    );
    SandboxMode::Off
}

/// One session's sandbox (see the module doc).
pub(crate) struct SessionSandbox {
    mode: Mutex<SandboxMode>,
    cwd: Mutex<PathBuf>,
    policy: Arc<Policy>,
    /// read-only mode's private temp dir, made on first use and removed
    /// with the session.
    private_tmp: Mutex<Option<PathBuf>>,
}

impl SessionSandbox {
    pub(crate) fn new(mode: SandboxMode, cwd: PathBuf, policy: Arc<Policy>) -> Self {
        SessionSandbox {
            mode: Mutex::new(mode),
            cwd: Mutex::new(cwd),
            policy,
            private_tmp: Mutex::new(None),
        }
    }

    pub(crate) fn mode(&self) -> SandboxMode {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_mode(&self, mode: SandboxMode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    /// Follows the session into another working directory.
    pub(crate) fn set_cwd(&self, cwd: PathBuf) {
        *self.cwd.lock().unwrap_or_else(|p| p.into_inner()) = cwd;
    }

    fn cwd(&self) -> PathBuf {
        self.cwd.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// `{mode, enforced}` for `ready` and `get_state`.
    pub(crate) fn state(&self) -> SandboxState {
        let mode = self.mode();
        SandboxState {
            mode,
            enforced: mode != SandboxMode::Off && kernel_supported(),
        }
    }

    /// The mode commands run under now, when the kernel enforces it.
    pub(crate) fn enforced(&self) -> Option<SandboxMode> {
        let state = self.state();
        state.enforced.then_some(state.mode)
    }

    /// The writable roots in `mode`, canonical; missing ones left out.
    fn write_roots(&self, mode: SandboxMode) -> io::Result<Vec<PathBuf>> {
        let roots = match mode {
            SandboxMode::Off => return Ok(vec![PathBuf::from("/")]),
            SandboxMode::ReadOnly => vec![self.private_tmp()?],
            SandboxMode::WorkspaceWrite => {
                let mut roots = vec![self.cwd(), temp_dir()];
                roots.extend(self.policy.writable_roots.iter().cloned());
                roots
            }
        };
        Ok(roots.iter().filter_map(|r| r.canonicalize().ok()).collect())
    }

    /// read-only mode's temp dir: private to the session (0700), so it
    /// leaks nothing to, and takes nothing from, other processes.
    fn private_tmp(&self) -> io::Result<PathBuf> {
        let mut slot = self.private_tmp.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = &*slot {
            if dir.is_dir() {
                return Ok(dir.clone());
            }
        }
        let dir = temp_dir().join(format!(
            "agent-rpc-sandbox-{}-{}",
            std::process::id(),
            crate::session::new_id()
        ));
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create the sandbox's temp dir {}: {e}",
                        dir.display()
                    ),
                )
            })?;
        *slot = Some(dir.clone());
        Ok(dir)
    }

    /// The file tools' rule (`write`, `edit`): in every mode but off, a
    /// file may only be written inside the writable roots, and never in
    /// `.git/hooks` or `.git/config` of the working directory. `path` is
    /// resolved as the tools resolve it (symlinks followed).
    pub(crate) fn check_write(&self, path: &Path) -> Result<(), String> {
        let mode = self.mode();
        if mode == SandboxMode::Off {
            return Ok(());
        }
        let roots = self.write_roots(mode).map_err(|e| e.to_string())?;
        let resolved = resolve(path);
        let git = self.cwd().join(".git");
        let protected = [git.join("hooks"), git.join("config")];
        if protected.iter().any(|p| resolved.starts_with(p)) {
            return Err(format!(
                "refused by the sandbox ({}): {} is in .git/hooks or .git/config, which stay read-only (a change there would run code outside the sandbox later)",
                mode.as_str(),
                path.display()
            ));
        }
        if roots.iter().any(|r| resolved.starts_with(r)) {
            return Ok(());
        }
        let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        Err(format!(
            "refused by the sandbox ({}): {} is outside the writable roots ({}); add a directory to `[sandbox] writable_roots`, or ask the user to switch the sandbox with set_sandbox",
            mode.as_str(),
            path.display(),
            shown.join(", ")
        ))
    }

    /// Everything the child needs, built in the host for `mode`.
    #[cfg(target_os = "linux")]
    fn prepare(&self, mode: SandboxMode) -> io::Result<Prepared> {
        let deny_read: Vec<PathBuf> = self
            .policy
            .deny_read
            .iter()
            .filter_map(|p| p.canonicalize().ok())
            .collect();
        let write = self.write_roots(mode)?;
        let network = self.policy.network;
        // A denied path inside a writable root is readable through that
        // root's rule anyway (the mount namespace masks it instead), so the
        // read rules need not go around it: walking around a data dir in
        // /tmp would mean one rule per entry of /tmp, on every command.
        let read_deny: Vec<PathBuf> = deny_read
            .iter()
            .filter(|d| !write.iter().any(|w| d.starts_with(w)))
            .cloned()
            .collect();
        let rules = landlock::Rules {
            deny_read: &read_deny,
            write: &write,
            network,
        };
        let ruleset = landlock::ruleset(&rules).map_err(io::Error::other)?;
        let filter = if network {
            None
        } else {
            Some(seccomp::no_network().map_err(io::Error::other)?)
        };
        let mounts = (mode == SandboxMode::WorkspaceWrite)
            .then(|| mounts::plan(&self.cwd(), &write, &deny_read))
            .filter(|m| !m.is_empty());
        let tmp = (mode == SandboxMode::ReadOnly)
            .then(|| write.first().cloned())
            .flatten();
        Ok(Prepared {
            ruleset,
            filter,
            mounts,
            tmp,
        })
    }
}

impl Drop for SessionSandbox {
    fn drop(&mut self) {
        let slot = self
            .private_tmp
            .get_mut()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(dir) = slot.take() {
            // A leftover in the temp dir is harmless; nothing to report to.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// `path` with its longest existing ancestor resolved (symlinks followed),
/// so a file yet to be created is judged by where it would land.
fn resolve(path: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut cur = path.to_path_buf();
    loop {
        if let Ok(real) = cur.canonicalize() {
            return rest.iter().rev().fold(real, |p, name| p.join(name));
        }
        match (cur.parent(), cur.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_owned());
                cur = parent.to_path_buf();
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// `$TMPDIR`, else `/tmp`.
fn temp_dir() -> PathBuf {
    std::env::var_os("TMPDIR")
        .filter(|d| !d.is_empty())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
}

/// What the forked child applies, in this order: mounts (Landlock forbids
/// them once applied), Landlock, seccomp.
#[cfg(target_os = "linux")]
struct Prepared {
    ruleset: std::os::fd::OwnedFd,
    filter: Option<&'static seccompiler::BpfProgram>,
    mounts: Option<mounts::Mounts>,
    /// read-only mode's private temp dir, the command's `$TMPDIR`.
    tmp: Option<PathBuf>,
}

#[cfg(target_os = "linux")]
impl Prepared {
    /// In the child, before exec: syscalls only, on memory built above.
    fn enter(&self) -> io::Result<()> {
        if let Some(mounts) = &self.mounts {
            mounts::enter(mounts)?;
        }
        landlock::restrict(&self.ruleset)?;
        if let Some(filter) = self.filter {
            seccomp::apply(filter)?;
        }
        Ok(())
    }
}

impl Sandbox for SessionSandbox {
    fn apply(&self, cmd: &mut tokio::process::Command) -> io::Result<()> {
        let mode = self.mode();
        if mode == SandboxMode::Off {
            return Ok(());
        }
        if !kernel_supported() {
            return Err(io::Error::new(io::ErrorKind::Unsupported, NO_LANDLOCK));
        }
        #[cfg(target_os = "linux")]
        {
            let prepared = self.prepare(mode)?;
            if let Some(tmp) = &prepared.tmp {
                cmd.env("TMPDIR", tmp);
            }
            // SAFETY: `enter` runs in the forked child before exec and makes
            // only async-signal-safe syscalls on memory prepared in the host
            // (no allocation, no lock).
            unsafe {
                cmd.pre_exec(move || prepared.enter());
            }
        }
        #[cfg(not(target_os = "linux"))]
        let _ = cmd;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(mode: SandboxMode, cwd: &Path, roots: Vec<PathBuf>) -> SessionSandbox {
        let policy = Policy {
            writable_roots: roots,
            ..Policy::default()
        };
        SessionSandbox::new(mode, cwd.to_path_buf(), Arc::new(policy))
    }

    #[test]
    fn the_flag_wins_then_the_config_then_what_the_kernel_can_do() {
        use SandboxMode::{Off, ReadOnly, WorkspaceWrite};
        assert_eq!(default_mode(Some(Off), Some(ReadOnly)), Off);
        assert_eq!(default_mode(None, Some(ReadOnly)), ReadOnly);
        let by_kernel = if kernel_supported() {
            WorkspaceWrite
        } else {
            Off
        };
        assert_eq!(default_mode(None, None), by_kernel);
    }

    #[test]
    fn file_writes_keep_to_the_writable_roots() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().canonicalize().unwrap();
        let cwd = base.join("work");
        let extra = base.join("extra");
        std::fs::create_dir_all(cwd.join(".git/hooks")).unwrap();
        std::fs::create_dir_all(&extra).unwrap();
        std::os::unix::fs::symlink("/etc", cwd.join("out")).unwrap();
        let s = sandbox(SandboxMode::WorkspaceWrite, &cwd, vec![extra.clone()]);
        assert!(s.check_write(&cwd.join("new/dir/file.rs")).is_ok());
        assert!(s.check_write(&extra.join("x")).is_ok());
        let outside = s.check_write(Path::new("/etc/passwd")).unwrap_err();
        assert!(outside.contains("outside the writable roots"), "{outside}");
        assert!(s.check_write(&cwd.join("out/passwd")).is_err());
        // The temp dir is writable, so `..` is followed out to /etc.
        let up = "../".repeat(cwd.components().count());
        assert!(s.check_write(&cwd.join(format!("{up}etc/x"))).is_err());
        let hook = s
            .check_write(&cwd.join(".git/hooks/pre-commit"))
            .unwrap_err();
        assert!(hook.contains(".git/hooks"), "{hook}");
        assert!(s.check_write(&cwd.join(".git/config")).is_err());
        s.set_mode(SandboxMode::ReadOnly);
        assert!(s.check_write(&cwd.join("file")).is_err());
        s.set_mode(SandboxMode::Off);
        assert!(s.check_write(Path::new("/etc/passwd")).is_ok());
    }
}
