//! The Python binding (`bindings/python`) against this build of `rpc`: its
//! unittest suite, and a real `pip install` into a fresh virtual environment
//! that then runs the README's example against the echo fixture provider.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::common::bounded::run_bounded;

const RPC: &str = env!("CARGO_BIN_EXE_rpc");

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn describe(status: Option<ExitStatus>, limit: Duration) -> String {
    match status {
        Some(status) => status.to_string(),
        None => format!("killed after {limit:?}"),
    }
}

#[test]
fn python_binding_unittests_pass() {
    let limit = Duration::from_secs(180);
    let (status, stdout, stderr) = run_bounded(
        Command::new("python3")
            .args([
                "-m",
                "unittest",
                "discover",
                "-s",
                "bindings/python/tests",
                "-t",
                "bindings/python",
                "-v",
            ])
            .current_dir(repo())
            .env("AGENT_RPC_BINARY", RPC)
            .env("PYTHONPATH", repo().join("bindings/python"))
            .env("PYTHONDONTWRITEBYTECODE", "1"),
        b"",
        limit,
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "the Python binding's tests failed ({}):\n{stdout}{stderr}",
        describe(status, limit)
    );
    assert_every_test_ran(&repo().join("bindings/python/tests"), &stderr);
}

/// unittest exits 0 when discovery finds nothing (before Python 3.12):
/// every test the files in `dir` define must have run, none skipped.
pub(crate) fn assert_every_test_ran(dir: &Path, stderr: &str) {
    let declared = declared_python_tests(dir);
    let ran = stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("Ran ")?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `Ran N tests` in unittest's output:\n{stderr}"));
    assert!(
        declared > 0 && ran >= declared,
        "unittest ran {ran} tests, the files define {declared}:\n{stderr}"
    );
    assert!(
        !stderr.contains("skipped="),
        "tests were skipped:\n{stderr}"
    );
}

/// The `def test_` methods in `dir`'s `test_*.py` files.
fn declared_python_tests(dir: &Path) -> usize {
    fs::read_dir(dir)
        .expect("read the binding's tests")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("test_") && n.ends_with(".py"))
        })
        .map(|p| {
            fs::read_to_string(&p)
                .expect("read a test file")
                .lines()
                .filter(|l| {
                    let l = l.trim_start();
                    l.starts_with("def test_") || l.starts_with("async def test_")
                })
                .count()
        })
        .sum()
}

/// Copies `from` to `to`, leaving out what a local build leaves behind.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create the copy's directory");
    for entry in fs::read_dir(from).expect("read the binding's directory") {
        let entry = entry.expect("directory entry");
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name == "build" || name == "__pycache__" || name.ends_with(".egg-info") {
            continue;
        }
        let target = to.join(&*name);
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy a file of the binding");
        }
    }
}

/// The README's complete example: its python code block that calls
/// `asyncio.run(`.
fn readme_example() -> String {
    let readme =
        fs::read_to_string(repo().join("bindings/python/README.md")).expect("read the README");
    readme
        .split("```python\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .find(|block| block.contains("asyncio.run("))
        .expect("the README has a python block calling asyncio.run")
        .to_string()
}

fn run_ok(cmd: &mut Command, limit: Duration) -> String {
    let (status, stdout, stderr) = run_bounded(cmd, b"", limit);
    assert!(
        status.is_some_and(|s| s.success()),
        "{cmd:?} failed ({}):\n{stdout}{stderr}",
        describe(status, limit)
    );
    stdout
}

#[test]
fn pip_install_then_the_readme_example_runs() {
    let scratch = tempfile::Builder::new()
        .prefix("binding-python-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create a scratch dir");
    let scratch = scratch.path();
    // A copy of the binding, so that setuptools' in-tree build/ and
    // *.egg-info neither land in the checkout nor leak stale files in.
    let checkout = scratch.join("checkout");
    copy_tree(
        &repo().join("bindings/python"),
        &checkout.join("bindings/python"),
    );
    let venv = scratch.join("venv");
    run_ok(
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
        Duration::from_secs(120),
    );
    let python: PathBuf = venv.join("bin/python");
    // From the user's own project, naming the checkout's folder, as README says.
    let project = scratch.join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    let pip = |extra: &[&str]| {
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "pip", "install", "--disable-pip-version-check"])
            .args(extra)
            .arg(checkout.join("bindings/python"))
            .current_dir(&project)
            .env_remove("PYTHONPATH");
        run_bounded(&mut cmd, b"", Duration::from_secs(300))
    };
    // Offline first, with the venv's own setuptools; if that cannot build a
    // wheel (setuptools < 70.1 without `wheel`, or none at all as on Python
    // 3.12+), the plain command, which fetches the build backend from PyPI.
    let (status, _, offline_err) = pip(&["--no-build-isolation", "--no-index"]);
    if !status.is_some_and(|s| s.success()) {
        let (status, stdout, stderr) = pip(&[]);
        assert!(
            status.is_some_and(|s| s.success()),
            "pip install <checkout>/bindings/python failed ({}):\n{stdout}{stderr}\n\
             (offline, without build isolation, it said:\n{offline_err})",
            describe(status, Duration::from_secs(300))
        );
    }
    let location = run_ok(
        Command::new(&python)
            .args(["-c", "import agent_rpc; print(agent_rpc.__file__)"])
            .current_dir(scratch)
            .env_remove("PYTHONPATH"),
        Duration::from_secs(60),
    );
    assert!(
        Path::new(location.trim()).starts_with(&venv),
        "agent_rpc was imported from {location}, not the venv"
    );

    let example = scratch.join("example.py");
    fs::write(&example, readme_example()).expect("write example.py");
    let work = scratch.join("work");
    fs::create_dir_all(&work).expect("create the work dir");
    let rpc_dir = Path::new(RPC).parent().expect("rpc's directory");
    let path = std::env::join_paths(std::iter::once(rpc_dir.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("join PATH");
    let stdout = run_ok(
        Command::new(&python)
            .arg(&example)
            .arg("--data-dir")
            .arg(scratch.join("data"))
            .arg("--extension")
            .arg(repo().join("fixtures/providers/echo"))
            .args(["--model", "echo:echo:echo-1"])
            .current_dir(&work)
            .env("PATH", path)
            .env_remove("PYTHONPATH"),
        Duration::from_secs(60),
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "unexpected output:\n{stdout}");
    assert!(lines[0].starts_with("session "), "{stdout}");
    assert_eq!(lines[1], "fix the failing test", "{stdout}");
    assert_eq!(lines[2], "messages: 2", "{stdout}");
}
