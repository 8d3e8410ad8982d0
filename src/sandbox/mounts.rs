//! What Landlock cannot say, said with a private mount namespace: parts of
//! a writable tree that must stay read-only or unreadable.
//!
//! Landlock grants a right on a whole tree, so `.git/hooks` and
//! `.git/config` under the writable working directory would be writable,
//! and a denied path under a writable root (a data directory in `/tmp`)
//! readable. In a mount namespace of its own the child bind-mounts those
//! read-only, or mounts an empty read-only tmpfs over a denied directory,
//! before Landlock is applied (Landlock then forbids any further mount
//! change, so the command cannot undo them). `.git` itself is bind-mounted
//! onto itself: a mount point cannot be renamed or removed, so a command
//! cannot move the repository aside and put a new `.git` with hooks of its
//! own in its place.
//!
//! Root gets the namespace directly; anyone else through a user namespace
//! mapping only their own ids. Where neither is allowed (user namespaces
//! disabled), the command runs without these mounts: Landlock still holds,
//! and SPEC §10 says what is then not kept out.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The mounts one command gets, prepared in the host (the child must not
/// allocate).
pub(super) struct Mounts {
    /// `/proc/self/uid_map` and `gid_map` lines; `None` for root, which
    /// needs no user namespace.
    user_ns: Option<(CString, CString)>,
    ops: Vec<Op>,
}

enum Op {
    /// Bind onto itself, writable: makes it a mount point.
    Pin(CString),
    /// Bind onto itself, then remount read-only keeping the mount's
    /// other flags (a user namespace may not clear them).
    ReadOnly(CString, libc::c_ulong),
    /// An empty read-only tmpfs over it.
    Mask(CString),
}

impl Mounts {
    /// Nothing to mount.
    pub(super) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The mounts for a command writing in `write` roots with `cwd` the
/// session's working directory; `deny_read` paths under a writable root
/// are masked.
pub(super) fn plan(cwd: &Path, write: &[PathBuf], deny_read: &[PathBuf]) -> Mounts {
    let mut ops = Vec::new();
    let git = cwd.join(".git");
    if let Ok(meta) = std::fs::symlink_metadata(&git) {
        if meta.is_dir() {
            let hooks = git.join("hooks");
            // Created when missing (as `git init` does), so that a command
            // cannot create it with hooks in it.
            if !hooks.exists() {
                let _ = std::fs::create_dir(&hooks);
            }
            push(&mut ops, &git, Op::Pin);
            for protected in [hooks, git.join("config")] {
                if protected.exists() {
                    read_only(&mut ops, &protected);
                }
            }
        } else if meta.is_file() {
            // A worktree's `.git` file names where its repository is.
            read_only(&mut ops, &git);
        }
    }
    for denied in deny_read {
        let under_writable = write.iter().any(|w| denied.starts_with(w));
        // A denied path holding a writable root stays: masking it would
        // hide the root.
        let holds_writable = write.iter().any(|w| w.starts_with(denied));
        if under_writable && !holds_writable && denied.is_dir() {
            push(&mut ops, denied, Op::Mask);
        }
    }
    // SAFETY: getuid and getgid cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let user_ns = (uid != 0).then(|| {
        (
            CString::new(format!("{uid} {uid} 1")).unwrap_or_default(),
            CString::new(format!("{gid} {gid} 1")).unwrap_or_default(),
        )
    });
    Mounts { user_ns, ops }
}

fn push(ops: &mut Vec<Op>, path: &Path, op: fn(CString) -> Op) {
    if let Ok(c) = CString::new(path.as_os_str().as_bytes()) {
        ops.push(op(c));
    }
}

fn read_only(ops: &mut Vec<Op>, path: &Path) {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let flags = mount_flags(&c);
    ops.push(Op::ReadOnly(c, flags));
}

/// The flags of the mount `path` is on, as `mount(2)` takes them.
fn mount_flags(path: &CString) -> libc::c_ulong {
    // SAFETY: statvfs writes into the zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return 0;
    }
    let pairs = [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ];
    pairs
        .iter()
        .filter(|(st_flag, _)| st.f_flag & st_flag != 0)
        .fold(0, |acc, (_, ms)| acc | ms)
}

/// Enters a mount namespace and mounts. Called in the forked child before
/// Landlock: only syscalls on memory prepared by [`plan`].
pub(super) fn enter(mounts: &Mounts) -> io::Result<()> {
    if mounts.ops.is_empty() || !unshare(mounts) {
        return Ok(());
    }
    // SAFETY: mount(2) on NUL-terminated strings we own; async-signal-safe.
    unsafe {
        // Private first: a mount made here must never reach the host's
        // namespace through shared propagation.
        check(libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ))?;
        for op in &mounts.ops {
            match op {
                Op::Pin(path) => bind(path)?,
                Op::ReadOnly(path, flags) => {
                    bind(path)?;
                    check(libc::mount(
                        std::ptr::null(),
                        path.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | flags,
                        std::ptr::null(),
                    ))?;
                }
                Op::Mask(path) => check(libc::mount(
                    c"tmpfs".as_ptr(),
                    path.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    c"mode=000,size=4k".as_ptr().cast(),
                ))?,
            }
        }
    }
    Ok(())
}

/// The new namespaces; false when the system allows none (then nothing is
/// mounted, see the module doc).
fn unshare(mounts: &Mounts) -> bool {
    // SAFETY: unshare, open, write and close on memory we own.
    unsafe {
        let Some((uid_map, gid_map)) = &mounts.user_ns else {
            return libc::unshare(libc::CLONE_NEWNS) == 0;
        };
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
            return false;
        }
        // gid_map may only be written once setgroups is denied.
        write_file(c"/proc/self/setgroups", c"deny")
            && write_file(c"/proc/self/uid_map", uid_map)
            && write_file(c"/proc/self/gid_map", gid_map)
    }
}

unsafe fn write_file(path: &std::ffi::CStr, text: &std::ffi::CStr) -> bool {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return false;
    }
    let bytes = text.to_bytes();
    let n = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
    libc::close(fd);
    usize::try_from(n).ok() == Some(bytes.len())
}

unsafe fn bind(path: &CString) -> io::Result<()> {
    check(libc::mount(
        path.as_ptr(),
        path.as_ptr(),
        std::ptr::null(),
        libc::MS_BIND,
        std::ptr::null(),
    ))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
