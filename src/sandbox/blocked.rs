//! Telling the model that a command failed because of the sandbox, so it
//! can change course (work inside the rules, or ask to rerun the command
//! outside the sandbox) instead of retrying blindly.
//!
//! The kernel's refusals surface as ordinary errors (EACCES, EPERM, EROFS,
//! EXDEV for a hard link out of the tree): a failed command whose output
//! names one of them gets a note. It may be a plain permission problem
//! too; the note says "may".

use crate::protocol::SandboxMode;

/// The messages the C library gives the errors the sandbox causes.
const SIGNS: &[&str] = &[
    "Permission denied",
    "Operation not permitted",
    "Read-only file system",
    "Invalid cross-device link",
];

/// The note for a command that exited with `failed` after writing
/// `output`, run under `mode`; `None` when nothing points at the sandbox.
pub(crate) fn note(mode: SandboxMode, failed: bool, output: &str) -> Option<String> {
    if !failed || mode == SandboxMode::Off || !SIGNS.iter().any(|s| output.contains(s)) {
        return None;
    }
    let rules = match mode {
        SandboxMode::ReadOnly => "it may write only in its private $TMPDIR",
        _ => "it may write only in the working directory, $TMPDIR and the configured writable roots (.git/hooks and .git/config stay read-only)",
    };
    Some(format!(
        "[sandbox] This command may have been blocked by the sandbox ({}): {rules}; it cannot read credential directories such as ~/.ssh, and it has no network unless the config allows it. If it must do more, call bash again with \"sandbox\": false to run it outside the sandbox (the user is asked first).",
        mode.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_failure_naming_a_refusal_gets_the_note() {
        let ww = SandboxMode::WorkspaceWrite;
        assert!(note(ww, true, "sh: /etc/x: Permission denied").is_some());
        assert!(note(ww, true, "ln: failed: Invalid cross-device link").is_some());
        assert!(note(ww, false, "Permission denied").is_none());
        assert!(note(ww, true, "error: no such file").is_none());
        assert!(note(SandboxMode::Off, true, "Permission denied").is_none());
    }
}
