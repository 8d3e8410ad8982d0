//! Real ACP clients against this build of `rpc --acp`: the official
//! TypeScript SDK (`node/sdk.test.mjs`) and the `acpx` CLI
//! (`node/acpx.test.mjs`), both pinned in `node/package.json` and its
//! lockfile and installed with `npm ci` on first use. Needs Node >= 20.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{bounded::run_bounded, fixture};

const TIMEOUT: Duration = Duration::from_secs(240);

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acp/node")
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Installs the lockfile's pinned packages when `node_modules` is missing
/// or older than the lockfile; a file lock makes concurrent callers wait
/// for one install.
///
/// `npm install --no-save` rather than `npm ci`: acpx 0.19.1 depends on
/// `@openclaw/fs-safe` 0.12.0, whose optional per-platform packages for
/// macOS, Windows and arm64 were never published, so no lockfile can list
/// them and `npm ci` refuses every lockfile as "out of sync". `npm install`
/// takes the same pinned versions from the lockfile, and `--no-save`
/// keeps it from writing the lockfile.
fn ensure_node_modules(pkg: &Path) {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(scratch).expect("create the test scratch dir");
    let lock = File::create(scratch.join("acp-clients-npm.lock")).expect("create the npm lock");
    lock.lock().expect("lock the npm install");
    let installed = modified(&pkg.join("node_modules/.package-lock.json"));
    let wanted =
        modified(&pkg.join("package-lock.json")).expect("tests/acp/node/package-lock.json");
    if installed.is_some_and(|t| t >= wanted) {
        return;
    }
    let (status, stdout, stderr) = run_bounded(
        Command::new("npm")
            .args(["install", "--no-save", "--no-audit", "--no-fund"])
            .current_dir(pkg),
        b"",
        Duration::from_secs(300),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "npm install in tests/acp/node failed or hung ({status:?}; Node >= 20 and npm are needed):\n{stdout}{stderr}"
    );
}

/// Runs one `node --test` file against the binary, output to a file (no
/// pipe to block on), the whole process group killed after `TIMEOUT`.
fn node_test(file: &str) {
    let pkg = package_dir();
    ensure_node_modules(&pkg);
    let scratch = tempfile::tempdir().expect("temp dir");
    let log_path = scratch.path().join("node-test.log");
    let log = File::create(&log_path).expect("create the log");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg("--test")
        .arg(file)
        .current_dir(&pkg)
        .env("RPC_BINARY", env!("CARGO_BIN_EXE_rpc"))
        .env("ECHO_EXTENSION", fixture("echo"))
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
        if started.elapsed() > TIMEOUT {
            let pgid = child.id() as libc::pid_t;
            // SAFETY: signalling the process group this test created.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    match status {
        Some(status) => assert!(
            status.success(),
            "node --test {file} failed ({status}):\n{output}"
        ),
        None => panic!(
            "node --test {file} did not finish within {} s; output so far:\n{output}",
            TIMEOUT.as_secs()
        ),
    }
    assert!(output.contains("# fail 0"), "{output}");
}

#[test]
fn the_typescript_sdk_client() {
    node_test("sdk.test.mjs");
}

#[test]
fn acpx() {
    node_test("acpx.test.mjs");
}
