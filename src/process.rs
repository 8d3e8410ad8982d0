//! The one way the host starts a child process: [`ChildBuilder`], used by
//! the `bash` tool (through the local process backend), MCP stdio servers
//! and extensions.
//!
//! Every child gets the same set-up, so a fix to it is made once: it dies
//! with the host (`PR_SET_PDEATHSIG`), SIGXFSZ is back at its default, it is
//! killed when its handle is dropped, and what it inherits from the host's
//! environment is chosen by the caller (minus the secret variables, or only
//! a named few). A process group of its own is the caller's choice, since
//! an extension is stopped as one process and a shell command as a group.
//! [`Sandbox`] is where a kernel sandbox will be applied, by a caller
//! that passes one (today only the local shell backend carries the slot);
//! none is applied today.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

/// A policy applied to a child before it starts (a kernel sandbox, later):
/// it may change the command (wrap it, add a `pre_exec` step). Kept here so
/// that every child the host starts goes through it.
pub(crate) trait Sandbox: Send + Sync {
    fn apply(&self, cmd: &mut tokio::process::Command) -> io::Result<()>;
}

/// Builds a child with the host's standard set-up (see the module doc).
pub(crate) struct ChildBuilder {
    cmd: tokio::process::Command,
    sandbox: Option<Arc<dyn Sandbox>>,
}

impl ChildBuilder {
    /// `program`, inheriting the host's environment until told otherwise;
    /// stdin, stdout and stderr are the caller's to set (tokio inherits them
    /// by default, which no child of ours should get: stdout is the wire).
    pub(crate) fn new(program: impl AsRef<OsStr>) -> Self {
        let mut cmd = tokio::process::Command::new(program);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        ChildBuilder { cmd, sandbox: None }
    }

    pub(crate) fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub(crate) fn current_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    /// Leaves out the named variables of the host's environment (API keys).
    pub(crate) fn env_remove(mut self, names: &[String]) -> Self {
        for name in names {
            self.cmd.env_remove(name);
        }
        self
    }

    /// Starts from an empty environment and passes on only the host's
    /// `names` that are set.
    pub(crate) fn env_only<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.cmd.env_clear();
        for name in names {
            if let Some(value) = std::env::var_os(name) {
                self.cmd.env(name, value);
            }
        }
        self
    }

    /// Fixed values, set after the scrub so the caller's own always arrive.
    pub(crate) fn envs<I, K, V>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.cmd.envs(vars);
        self
    }

    /// A process group of its own, led by the child, so that everything it
    /// starts can be killed at once ([`kill_group`]).
    pub(crate) fn own_group(mut self) -> Self {
        self.cmd.process_group(0);
        self
    }

    pub(crate) fn stdio(
        mut self,
        stdin: impl Into<Stdio>,
        stdout: impl Into<Stdio>,
        stderr: impl Into<Stdio>,
    ) -> Self {
        self.cmd.stdin(stdin).stdout(stdout).stderr(stderr);
        self
    }

    /// The sandbox to apply; `None` (today's only value) applies none.
    pub(crate) fn sandbox(mut self, sandbox: Option<Arc<dyn Sandbox>>) -> Self {
        self.sandbox = sandbox;
        self
    }

    /// The finished command, for a library that spawns it itself (rmcp's
    /// child transport).
    pub(crate) fn into_command(self) -> io::Result<tokio::process::Command> {
        let ChildBuilder {
            mut cmd,
            sandbox: policy,
        } = self;
        in_child(&mut cmd);
        if let Some(policy) = policy {
            policy.apply(&mut cmd)?;
        }
        Ok(cmd)
    }

    pub(crate) fn spawn(self) -> io::Result<tokio::process::Child> {
        self.into_command()?.spawn()
    }
}

/// The set-up done in the forked child before exec: the parent-death signal
/// and the signal reset.
fn in_child(cmd: &mut tokio::process::Command) {
    // Taken before the fork: the child compares it with its parent after
    // arming the signal, since a host that died in between would never
    // send it.
    let host = std::process::id();
    // SAFETY: the closure runs in the forked child before exec and makes
    // only async-signal-safe calls (prctl, getppid, signal, raise); it
    // touches no memory shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            die_with_parent(host)?;
            // The host ignores SIGXFSZ (so a file-size limit fails its own
            // writes instead of killing it); an ignored signal would be
            // inherited across exec.
            libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
            Ok(())
        });
    }
}

/// `PR_SET_PDEATHSIG`: a host killed with SIGKILL cannot kill its children
/// itself. The signal is sent when the thread that forked the child ends;
/// the host forks from tokio's worker threads, which live as long as the
/// runtime.
#[cfg(target_os = "linux")]
fn die_with_parent(host: u32) -> io::Result<()> {
    // SAFETY: plain syscalls on integers, async-signal-safe.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
            return Err(io::Error::last_os_error());
        }
        if u32::try_from(libc::getppid()).ok() != Some(host) {
            libc::raise(libc::SIGKILL);
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_host: u32) -> io::Result<()> {
    Ok(())
}

/// Kills a process group the host started (`process_group(0)` makes the
/// group id the leader's pid). Ids 0 and 1 would hit our own group or every
/// process, so they are never used. Returns false when there was no group
/// to kill (no id, or everything in it had exited).
pub(crate) fn kill_group(pid: Option<u32>) -> bool {
    let Some(pgid) = pid
        .and_then(|p| libc::pid_t::try_from(p).ok())
        .filter(|&p| p > 1)
    else {
        return false;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours;
    // `pgid > 1`, so `-pgid` names exactly that group.
    unsafe { libc::kill(-pgid, libc::SIGKILL) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// What the child itself sees: the shell's ignored-signal mask (python
    /// ignores SIGXFSZ itself, so the shell reads it), then from python,
    /// which the shell execs so the process keeps its settings: the
    /// parent-death signal (`prctl(PR_GET_PDEATHSIG)`), a secret the host
    /// has, and one fixed variable.
    const PROBE: &str = "\
import ctypes, os
sig = ctypes.c_int(0)
ctypes.CDLL(None).prctl(2, ctypes.byref(sig))
print(sig.value, os.environ.get('AGENT_RPC_PROCESS_TEST_API_KEY', 'unset'),
      os.environ.get('KEPT', 'unset'))
";
    const SHELL: &str = "grep ^SigIgn: /proc/$$/status; exec python3 -c \"$1\"";

    /// The probe's line, with SIGXFSZ's bit of the mask (1: ignored).
    async fn probe(builder: ChildBuilder) -> String {
        let child = builder
            .args(["-c", SHELL, "sh", PROBE])
            .stdio(Stdio::null(), Stdio::piped(), Stdio::inherit())
            .spawn()
            .expect("sh starts");
        let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .expect("the probe ends within 10 s")
            .expect("the probe's output");
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let mask = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .expect("a SigIgn line");
        let xfsz = (mask >> (libc::SIGXFSZ - 1)) & 1;
        format!("{} {xfsz}", lines.next().unwrap_or_default())
    }

    #[tokio::test]
    async fn a_child_dies_with_the_host_and_gets_no_secret() {
        // A name no other test uses, so setting it cannot disturb them.
        std::env::set_var("AGENT_RPC_PROCESS_TEST_API_KEY", "s3cret");
        // SIGXFSZ ignored here, as the binary does at start-up.
        // SAFETY: changes only this process's disposition of one signal.
        unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
        let secret = ["AGENT_RPC_PROCESS_TEST_API_KEY".to_owned()];
        let scrubbed = ChildBuilder::new("sh")
            .env_remove(&secret)
            .envs([("KEPT", "yes")]);
        let kill = libc::SIGKILL;
        assert_eq!(probe(scrubbed).await, format!("{kill} unset yes 0"));
        let only = ChildBuilder::new("sh").env_only(["PATH", "HOME"]);
        assert_eq!(probe(only).await, format!("{kill} unset unset 0"));
        // The host itself still has the secret: the probe is not vacuous.
        let plain = ChildBuilder::new("sh");
        assert_eq!(probe(plain).await, format!("{kill} s3cret unset 0"));
    }

    /// A sandbox that records that it was applied, by setting a variable.
    struct Marker;

    impl Sandbox for Marker {
        fn apply(&self, cmd: &mut tokio::process::Command) -> io::Result<()> {
            cmd.env("KEPT", "sandboxed");
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_sandbox_is_applied_last() {
        let builder = ChildBuilder::new("sh")
            .envs([("KEPT", "yes")])
            .sandbox(Some(Arc::new(Marker)));
        let out = probe(builder).await;
        assert!(out.ends_with(" sandboxed 0"), "{out}");
    }

    #[tokio::test]
    async fn a_group_is_killed_whole() {
        let child = ChildBuilder::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .own_group()
            .spawn()
            .expect("sh starts");
        let pid = child.id();
        assert!(kill_group(pid));
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
            .await
            .expect("the group dies within 5 s")
            .expect("its status");
        assert!(!status.status.success());
        assert!(!kill_group(Some(1)) && !kill_group(None));
    }
}
