//! The TypeScript binding (`bindings/typescript`) against this build of
//! `rpc`: runs its `node --test` suite with `AGENT_RPC_BINARY` set to the
//! binary cargo just built. Needs Node ≥ 20 and npm; the binding's
//! dev-dependencies (TypeScript, for its type-check test) are installed
//! with `npm ci` from its lockfile on first use.

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::bounded::run_bounded;

const TIMEOUT: Duration = Duration::from_secs(180);

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bindings/typescript")
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Runs `npm ci` when `node_modules` is missing or older than
/// `package-lock.json`. A file lock makes concurrent callers wait for one
/// install instead of racing on `node_modules`.
fn ensure_node_modules(pkg: &Path) {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    fs::create_dir_all(scratch).expect("create the test scratch dir");
    let lock =
        File::create(scratch.join("binding-typescript-npm.lock")).expect("create the npm lock");
    lock.lock().expect("lock the npm install");
    // npm writes node_modules/.package-lock.json on every install.
    let installed = modified(&pkg.join("node_modules/.package-lock.json"));
    let wanted =
        modified(&pkg.join("package-lock.json")).expect("bindings/typescript/package-lock.json");
    if installed.is_some_and(|t| t >= wanted) {
        return;
    }
    let (status, stdout, stderr) = run_bounded(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(pkg),
        b"",
        Duration::from_secs(300),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "npm ci in bindings/typescript failed or hung ({status:?}; Node >= 20 and npm are needed):\n{stdout}{stderr}"
    );
}

#[test]
fn node_test_suite_passes() {
    let pkg = package_dir();
    ensure_node_modules(&pkg);
    let mut tests: Vec<String> = fs::read_dir(pkg.join("test"))
        .expect("read bindings/typescript/test")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".test.js"))
        .map(|name| format!("test/{name}"))
        .collect();
    tests.sort();
    assert!(
        !tests.is_empty(),
        "no test/*.test.js in bindings/typescript"
    );

    // Output goes to a file, not a pipe: nothing can block on a full pipe,
    // and a test process that outlives a kill cannot hold the read open.
    let scratch = tempfile::tempdir().expect("temp dir");
    let log_path = scratch.path().join("node-test.log");
    let log = File::create(&log_path).expect("create the log");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg("--test")
        .args(&tests)
        .current_dir(&pkg)
        .env("AGENT_RPC_BINARY", env!("CARGO_BIN_EXE_rpc"))
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
            // The whole group: node --test runs each file in a child process.
            let pgid = child.id() as libc::pid_t;
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
            "node --test in bindings/typescript failed ({status}):\n{output}"
        ),
        None => panic!(
            "node --test in bindings/typescript did not finish within {} s; output so far:\n{output}",
            TIMEOUT.as_secs()
        ),
    }
}
