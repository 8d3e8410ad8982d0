//! Python virtual environments holding the PyPI packages the tests use
//! (pinned in `tests/requirements.txt`, and Ray's closure in
//! `tests/requirements-ray.txt`), made on first use under cargo's test
//! scratch dir so that `cargo test` sets itself up on a fresh machine.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment's `python`, installing the requirements first if they
/// changed since the last install. Several test binaries may ask at once:
/// a file lock makes one of them install while the others wait.
pub fn python() -> PathBuf {
    python_with("tests/requirements.txt", "python")
}

/// The fleet tests' environment: Ray and its closure, nothing else (so
/// neither set of pins constrains the other).
pub fn ray_python() -> PathBuf {
    python_with("tests/requirements-ray.txt", "python-ray")
}

fn python_with(requirements: &str, name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let env = scratch.join(name);
    let requirements = root.join(requirements);
    let wanted = fs::read_to_string(&requirements).expect("read the test requirements");
    fs::create_dir_all(scratch).expect("create the test scratch dir");
    let lock = File::create(scratch.join(format!("{name}.lock"))).expect("create the venv lock");
    lock.lock().expect("lock the venv");
    let stamp = env.join("installed-requirements.txt");
    let python = env.join("bin/python");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && python.exists() {
        return python;
    }
    let _ = fs::remove_dir_all(&env);
    run(Command::new("python3").arg("-m").arg("venv").arg(&env));
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements));
    fs::write(&stamp, wanted).expect("write the install stamp");
    python
}

fn run(cmd: &mut Command) {
    let (status, _, stderr) =
        super::bounded::run_bounded(cmd, b"", std::time::Duration::from_secs(300));
    assert!(
        status.is_some_and(|s| s.success()),
        "{cmd:?} failed or hung ({status:?}); the tests need python3 with venv and pip, and PyPI:\n{stderr}"
    );
}
