//! The TypeScript binding (`bindings/typescript`) against this build of
//! `rpc`: runs its `node --test` suite with `AGENT_RPC_BINARY` set to the
//! binary cargo just built. Needs Node ≥ 20 and npm; the binding's
//! dev-dependencies (TypeScript, for its type-check test) are installed
//! with `npm ci` from its lockfile on first use.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::node::{ensure_node_modules, run_node_test, Install};

const TIMEOUT: Duration = Duration::from_secs(180);

fn package_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bindings/typescript")
}

#[test]
fn node_test_suite_passes() {
    let pkg = package_dir();
    ensure_node_modules(&pkg, "binding-typescript-npm.lock", Install::Ci);
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

    run_node_test(
        &pkg,
        &tests,
        &[("AGENT_RPC_BINARY", env!("CARGO_BIN_EXE_rpc"))],
        TIMEOUT,
    );
}
