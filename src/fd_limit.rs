//! Raises the soft limit on open files to the hard limit at start-up.
//!
//! A host holds descriptors for every session, MCP server, subagent and
//! connection it serves; with the soft limit of 256 that macOS and some
//! Linux desktops set, an ACP client opening many sessions hit "Too many
//! open files" long before the system's real (hard) limit. The soft limit
//! exists for programs that do not expect many files; this one does.

use nix::sys::resource::{getrlimit, setrlimit, Resource, RLIM_INFINITY};

/// The most a soft limit is raised to where the hard limit is unlimited:
/// macOS refuses `RLIM_INFINITY` (and anything over its `OPEN_MAX`) as the
/// soft limit of open files.
#[cfg(target_os = "macos")]
const UNLIMITED_CAP: u64 = 10_240;
#[cfg(not(target_os = "macos"))]
const UNLIMITED_CAP: u64 = 1 << 20;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns the limit
/// now in force, or why it could not be raised (the process then runs
/// with what it was given, which is not fatal).
pub fn raise() -> Result<u64, String> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(RLIMIT_NOFILE): {e}"))?;
    let target = if hard == RLIM_INFINITY {
        UNLIMITED_CAP
    } else {
        hard
    };
    if soft != RLIM_INFINITY && soft >= target {
        return Ok(soft);
    }
    setrlimit(Resource::RLIMIT_NOFILE, target, hard)
        .map_err(|e| format!("setrlimit(RLIMIT_NOFILE, {target}): {e}"))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_reaches_the_hard_one() {
        let now = raise().expect("raise");
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
        assert_eq!(soft, now);
        assert!(hard == RLIM_INFINITY || soft == hard);
    }
}
