//! Helpers for spawning child processes, shared by every place that starts
//! one: the `bash` tool and the extension client.
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
