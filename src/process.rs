//! Helpers for spawning child processes, shared by every place that starts
//! one: the `bash` tool, the extension client and MCP servers.
//!
//! They live apart from both so that how a child is set up (signals it
//! inherits, and later limits or its process group) is decided once for
//! every child the host starts.

/// Gives a child the default SIGXFSZ disposition back: the host ignores it
/// (so a file-size limit fails its own writes instead of killing it), and an
/// ignored signal would otherwise be inherited across exec.
pub fn restore_signals(cmd: &mut tokio::process::Command) {
    // SAFETY: runs in the forked child before exec; `signal` is
    // async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
            Ok(())
        });
    }
}

/// Makes the child die with the host (`PR_SET_PDEATHSIG`): a host killed
/// with SIGKILL cannot kill its children itself.
pub fn die_with_parent(cmd: &mut tokio::process::Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the forked child before exec and only makes
    // one async-signal-safe syscall.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// Kills a process group the host started (`process_group(0)` makes the
/// group id the leader's pid). Ids 0 and 1 would hit our own group or every
/// process, so they are never used.
pub fn kill_group(pid: Option<u32>) {
    let Some(pgid) = pid
        .and_then(|p| libc::pid_t::try_from(p).ok())
        .filter(|&p| p > 1)
    else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // `pgid > 1`, so `-pgid` names exactly that group.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}
