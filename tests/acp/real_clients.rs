//! Real ACP clients against this build of `rpc --acp`: the official
//! TypeScript SDK (`node/sdk.test.mjs`; `node/editor.test.mjs` as an editor
//! serving its files and terminals) and the `acpx` CLI
//! (`node/acpx.test.mjs`), both pinned in `node/package.json` and its
//! lockfile and installed on first use (needs Node >= 20); and the official
//! Python SDK (`python/lifecycle.py`: initialize, new, prompt, list, close,
//! resume, fork, load and an error, every message checked against the SDK's
//! schema), pinned in `tests/requirements.txt` and run with the venv of
//! `common::python_env`.
//!
//! `npm install --no-save` rather than `npm ci`: acpx 0.19.1 depends on
//! `@openclaw/fs-safe` 0.12.0, whose optional per-platform packages for
//! macOS, Windows and arm64 were never published, so no lockfile can list
//! them and `npm ci` refuses every lockfile as "out of sync". `npm install`
//! takes the same pinned versions from the lockfile, and `--no-save` keeps
//! it from writing the lockfile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::bounded::run_bounded;
use crate::common::node::{ensure_node_modules, run_node_test, Install};
use crate::common::{fixture, python_env};

const TIMEOUT: Duration = Duration::from_secs(240);

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acp/node")
}

/// Runs one `node --test` file against the binary.
fn node_test(file: &str) {
    let pkg = package_dir();
    ensure_node_modules(&pkg, "acp-clients-npm.lock", Install::NoSave);
    run_node_test(
        &pkg,
        &[file.to_owned()],
        &[
            ("RPC_BINARY", PathBuf::from(env!("CARGO_BIN_EXE_rpc"))),
            ("ECHO_EXTENSION", fixture("echo")),
        ],
        TIMEOUT,
    );
}

#[test]
fn the_typescript_sdk_client() {
    node_test("sdk.test.mjs");
}

#[test]
fn the_editors_files_and_terminal() {
    node_test("editor.test.mjs");
}

#[test]
fn acpx() {
    node_test("acpx.test.mjs");
}

/// The Python SDK's client side through a session's whole life. The script
/// bounds each call itself (30 s); this bounds the whole run.
#[test]
fn the_python_sdk_client_lifecycle() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/acp/python/lifecycle.py");
    let (status, stdout, stderr) = run_bounded(
        Command::new(python_env::python())
            .arg(&script)
            .env("RPC_BINARY", env!("CARGO_BIN_EXE_rpc"))
            .env("ECHO_EXTENSION", fixture("echo"))
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        b"",
        Duration::from_secs(120),
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "{} failed or hung ({status:?}):\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}",
        script.display()
    );
    assert!(
        stdout.contains("python sdk lifecycle: ok"),
        "no success line:\n{stdout}{stderr}"
    );
}
