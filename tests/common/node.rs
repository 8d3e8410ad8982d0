//! Node packages for the tests that drive real Node clients and servers
//! (the TypeScript binding, the ACP clients, the MCP `server-everything`):
//! installed from a pinned lockfile on first use, and `node --test` run
//! bounded.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::bounded::run_bounded;

/// How a package directory's lockfile is installed.
#[derive(Clone, Copy)]
pub enum Install {
    /// `npm ci`: exactly the lockfile, refusing one out of sync.
    Ci,
    /// `npm install --no-save`: the lockfile's versions, for a tree `npm
    /// ci` cannot take (a dependency naming optional packages that were
    /// never published); the lockfile is not written.
    NoSave,
}

/// Installs `pkg`'s packages when `node_modules` is missing or older than
/// its `package-lock.json`. A file lock (named `lock_name`, under the test
/// scratch dir) makes concurrent callers wait for one install instead of
/// racing on `node_modules`.
pub fn ensure_node_modules(pkg: &Path, lock_name: &str, install: Install) {
    let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(scratch).expect("create the test scratch dir");
    let lock = File::create(scratch.join(lock_name)).expect("create the npm lock");
    lock.lock().expect("lock the npm install");
    // npm writes node_modules/.package-lock.json on every install.
    let installed = modified(&pkg.join("node_modules/.package-lock.json"));
    let wanted = modified(&pkg.join("package-lock.json"))
        .unwrap_or_else(|| panic!("{} has no package-lock.json", pkg.display()));
    if installed.is_some_and(|t| t >= wanted) {
        return;
    }
    let args: &[&str] = match install {
        Install::Ci => &["ci", "--no-audit", "--no-fund"],
        Install::NoSave => &["install", "--no-save", "--no-audit", "--no-fund"],
    };
    let (status, stdout, stderr) = run_bounded(
        Command::new("npm").args(args).current_dir(pkg),
        b"",
        Duration::from_secs(300),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "npm {} in {} failed or hung ({status:?}; Node >= 20 and npm are needed):\n{stdout}{stderr}",
        args[0],
        pkg.display()
    );
}

/// Runs `node --test <files>` in `pkg` with `envs`, and fails the test
/// unless it passes within `timeout` having run every test the files
/// declare (a suite that ran nothing, or fewer tests than the files' `test(`
/// calls, fails: see [`declared_tests`]); returns its output. Output goes to a file, not a pipe:
/// nothing can block on a full pipe, and a test process that outlives a
/// kill cannot hold the read open. The whole process group is killed on
/// timeout (node --test runs each file in a child process).
pub fn run_node_test<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    pkg: &Path,
    files: &[String],
    envs: &[(K, V)],
    timeout: Duration,
) -> String {
    let scratch = tempfile::tempdir().expect("temp dir");
    let log_path = scratch.path().join("node-test.log");
    let log = File::create(&log_path).expect("create the log");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg("--test")
        .args(files)
        .current_dir(pkg)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone the log"))
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node (Node >= 20 is needed): {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() > timeout {
            let pgid = child.id() as libc::pid_t;
            // SAFETY: signalling the process group this test created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    let what = format!("node --test {} in {}", files.join(" "), pkg.display());
    match status {
        Some(status) => assert!(status.success(), "{what} failed ({status}):\n{output}"),
        None => panic!(
            "{what} did not finish within {} s; output so far:\n{output}",
            timeout.as_secs()
        ),
    }
    let declared: usize = files.iter().map(|f| declared_tests(&pkg.join(f))).sum();
    let passed = summary_count(&output, "pass")
        .unwrap_or_else(|| panic!("{what}: no `pass` count in its summary:\n{output}"));
    let failed = summary_count(&output, "fail")
        .unwrap_or_else(|| panic!("{what}: no `fail` count in its summary:\n{output}"));
    assert!(
        declared > 0 && passed >= declared && failed == 0,
        "{what}: {passed} passed, {failed} failed, but the files declare {declared} tests:\n{output}"
    );
    output
}

/// The top-level tests a `node --test` file declares: lines starting with
/// `test(` or `it(` (after indentation).
pub fn declared_tests(file: &Path) -> usize {
    let text =
        fs::read_to_string(file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
    text.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("test(") || l.starts_with("it("))
        .count()
}

/// A count from `node --test`'s closing summary: `# pass 12` (TAP, the
/// reporter when output is not a terminal) or `ℹ pass 12` (spec).
pub fn summary_count(output: &str, what: &str) -> Option<usize> {
    output.lines().rev().find_map(|line| {
        let rest = line
            .strip_prefix("# ")
            .or_else(|| line.strip_prefix("ℹ "))?;
        rest.strip_prefix(what)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}
