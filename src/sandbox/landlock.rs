//! The Landlock ruleset of a sandboxed command: what it may read, write
//! and reach over TCP. Built in the host (it opens paths and allocates),
//! handed to the child as a file descriptor the child restricts itself
//! with after fork.
//!
//! Landlock only allows: a right granted on a directory holds in the whole
//! tree under it, and nothing can be taken back below. So "read everything
//! but `~/.ssh`" is written as rules on `/` minus the denied subtrees: each
//! directory on the way down to a denied one is not granted itself, its
//! other entries are ([`minus`]).

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use landlock::{
    Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, Scope, ABI,
};

/// The newest ABI whose rights are asked for. An older kernel enforces
/// what it knows (best effort, the crate's default); ABI 1 already covers
/// reads and writes. What older ABIs miss is in SPEC §10.
const ABI_USED: ABI = ABI::V6;

/// Devices every command needs to write to (`> /dev/null`, a terminal).
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

/// What one command may touch.
pub(super) struct Rules<'a> {
    /// Paths nothing may read (canonical).
    pub deny_read: &'a [PathBuf],
    /// Where it may write (canonical; missing ones are skipped).
    pub write: &'a [PathBuf],
    pub network: bool,
}

/// The ruleset, as the descriptor `landlock_restrict_self` takes.
pub(super) fn ruleset(rules: &Rules) -> Result<OwnedFd, String> {
    build(rules).map_err(|e| format!("cannot build the Landlock ruleset: {e}"))
}

fn build(rules: &Rules) -> Result<OwnedFd, Box<dyn std::error::Error>> {
    let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(ABI_USED))?;
    if !rules.network {
        ruleset = ruleset
            .handle_access(AccessNet::from_all(ABI_USED))?
            // Abstract Unix sockets have no path a file rule could guard
            // (X11, D-Bus and container runtimes listen on some).
            .scope(Scope::AbstractUnixSocket)?;
    }
    let mut created = ruleset.create()?;
    // Listing directories is allowed everywhere: it shows the names in a
    // denied directory, never what its files hold, and without it a walk
    // from `/` or `~` (tools looking for their config) fails.
    created = add(created, Path::new("/"), AccessFs::ReadDir.into())?;
    let read = AccessFs::from_read(ABI_USED);
    for path in minus(Path::new("/"), rules.deny_read) {
        created = add(created, &path, read)?;
    }
    let all = AccessFs::from_all(ABI_USED);
    for path in rules.write {
        created = add(created, path, all)?;
    }
    for device in DEVICES {
        created = add(created, Path::new(device), all)?;
    }
    let fd: Option<OwnedFd> = created.into();
    fd.ok_or_else(|| "the kernel has no Landlock".into())
}

/// Grants `access` on `path` (only its file rights for a file); a path
/// that is gone or cannot be opened is skipped, which grants less.
fn add(
    ruleset: RulesetCreated,
    path: &Path,
    access: BitFlags<AccessFs>,
) -> Result<RulesetCreated, landlock::RulesetError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(ruleset);
    };
    let access = if meta.is_dir() {
        access
    } else {
        access & AccessFs::from_file(ABI_USED)
    };
    match PathFd::new(path) {
        Ok(fd) => ruleset.add_rule(PathBeneath::new(fd, access)),
        Err(e) => {
            tracing::debug!(path = %path.display(), "sandbox: not granted: {e}");
            Ok(ruleset)
        }
    }
}

/// `root`'s tree minus the `denied` subtrees, as the paths whose trees
/// cover the rest: a directory holding a denied path is replaced by its
/// entries, down to the denied one. Symlinks are left out (granting one
/// would grant its target, which may be a denied path); what they point
/// to is reached by its own path.
pub(super) fn minus(root: &Path, denied: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(root, denied, &mut out);
    out
}

fn walk(dir: &Path, denied: &[PathBuf], out: &mut Vec<PathBuf>) {
    if denied.iter().any(|d| d == dir) {
        return;
    }
    if !denied.iter().any(|d| d.starts_with(dir)) {
        out.push(dir.to_path_buf());
        return;
    }
    // A directory that cannot be listed is left out whole: less is granted.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let is_link = entry.file_type().map_or(true, |t| t.is_symlink());
        if !is_link {
            walk(&entry.path(), denied, out);
        }
    }
}

/// The Landlock ABI of the running kernel; `None` without Landlock.
pub(super) fn kernel_abi() -> Option<i32> {
    // SAFETY: landlock_create_ruleset with a null attribute, size 0 and the
    // VERSION flag only returns the ABI number; it touches no memory.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, // LANDLOCK_CREATE_RULESET_VERSION
        )
    };
    (v >= 1).then(|| i32::try_from(v).unwrap_or(i32::MAX))
}

/// Restricts the calling thread (and all it execs and forks) to `ruleset`.
/// Called in the forked child before exec: two syscalls, nothing else.
pub(super) fn restrict(ruleset: &OwnedFd) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscalls on integers; async-signal-safe.
    unsafe {
        // Landlock requires it of an unprivileged process; it also keeps a
        // setuid program from regaining what the sandbox takes away.
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_leaves_out_the_denied_tree_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        for d in ["a/secret/x", "a/b", "c"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("a/file"), "").unwrap();
        std::os::unix::fs::symlink(root.join("a/secret"), root.join("a/link")).unwrap();
        let mut got = minus(&root, &[root.join("a/secret")]);
        got.sort();
        assert_eq!(
            got,
            vec![root.join("a/b"), root.join("a/file"), root.join("c")]
        );
        assert_eq!(minus(&root, &[]), vec![root.clone()]);
        assert!(minus(&root, std::slice::from_ref(&root)).is_empty());
    }
}
