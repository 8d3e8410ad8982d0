//! `agent_rpc.fleet` on a real two-node Ray cluster: the binding installed
//! with its `ray` extra into a venv holding the pinned Ray
//! (`tests/requirements-ray.txt`), then its suite
//! (`bindings/python/fleet_tests`) run against this build of `rpc`. The
//! cluster's nodes bind 127.0.0.2 and 127.0.0.3 with telemetry off; any
//! Ray process the suite leaves behind (it was killed, say) is stopped
//! here by the scratch dir its command line names.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::bounded::run_bounded;
use crate::common::procfs;
use crate::common::python_env::ray_python;
use crate::python_binding::{assert_every_test_ran, copy_tree};

const RPC: &str = env!("CARGO_BIN_EXE_rpc");
/// One Ray cluster at a time: two on a 2-core machine starve each other.
static ONE_CLUSTER: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// The suite's own bound; the README promises the Ray tests stay under ~5 min.
const SUITE_LIMIT: Duration = Duration::from_secs(420);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_fleet_runs_tasks_on_a_two_node_ray_cluster() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let (scratch, python, binding) = installed_binding("fleet-");
    let scratch = scratch.path();
    // Short, in /tmp: Ray's socket paths under it must fit AF_UNIX's 107 bytes.
    let cluster_root = tempfile::Builder::new()
        .prefix("fleet-")
        .tempdir()
        .expect("create the cluster's dir");
    let cluster_root = cluster_root.path();
    let mut cmd = Command::new(&python);
    cmd.args(["-m", "unittest", "discover", "-v", "-s"])
        .arg(binding.join("fleet_tests"))
        .arg("-t")
        .arg(&binding)
        // From the scratch dir: `agent_rpc` is the installed one, as on a node.
        .current_dir(scratch)
        .env_remove("PYTHONPATH")
        .env("AGENT_RPC_BINARY", RPC)
        .env("AGENT_RPC_REPO", repo())
        .env("AGENT_RPC_FLEET_TEST_ROOT", cluster_root)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (status, stdout, stderr) = run_bounded(&mut cmd, b"", SUITE_LIMIT);
    let leftovers = stop_ray_processes_under(cluster_root);
    assert!(
        status.is_some_and(|s| s.success()),
        "the fleet suite failed ({status:?}; limit {SUITE_LIMIT:?}):\n{stdout}{stderr}"
    );
    // The suite's measurements (node death, cancel), for `--nocapture`.
    for line in stdout.lines().chain(stderr.lines()) {
        if line.starts_with("node death:") || line.starts_with("cancel -> ") {
            println!("{line}");
        }
    }
    assert_every_test_ran(&binding.join("fleet_tests"), &stderr);
    assert!(
        leftovers.is_empty(),
        "the suite left Ray processes running: {leftovers:?}"
    );
}

/// A scratch dir holding a copy of the binding, installed with its `ray`
/// extra into the Ray venv; returns the dir, the venv's python and the copy.
fn installed_binding(prefix: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let python = ray_python();
    let scratch = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create a scratch dir");
    let binding = scratch.path().join("binding");
    copy_tree(&repo().join("bindings/python"), &binding);
    install_with_ray_extra(&python, &binding);
    (scratch, python, binding)
}

/// `pip install <binding>[ray]` with nothing fetched: Ray is already
/// installed at the pin, so this also checks the extra names that pin.
fn install_with_ray_extra(python: &Path, binding: &Path) {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-build-isolation",
        "--no-index",
        "--force-reinstall",
        "--no-deps",
    ])
    .arg(binding)
    .env_remove("PYTHONPATH");
    let (status, stdout, stderr) = run_bounded(&mut cmd, b"", Duration::from_secs(300));
    assert!(
        status.is_some_and(|s| s.success()),
        "installing the binding failed ({status:?}):\n{stdout}{stderr}"
    );
    let mut check = Command::new(python);
    check
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-build-isolation",
            "--no-index",
            "--dry-run",
        ])
        .arg(format!("{}[ray]", binding.display()))
        .env_remove("PYTHONPATH");
    let (status, stdout, stderr) = run_bounded(&mut check, b"", Duration::from_secs(300));
    assert!(
        status.is_some_and(|s| s.success()),
        "the binding's `ray` extra does not resolve to the pinned Ray ({status:?}):\n{stdout}{stderr}"
    );
}

/// SIGKILLs the process group of every process whose command line names
/// `root`; returns the pids it found.
fn stop_ray_processes_under(root: &Path) -> Vec<u32> {
    let root = root.to_string_lossy().into_owned();
    let found: Vec<u32> = procfs::all_pids()
        .into_iter()
        .filter(|&pid| procfs::cmdline(pid).is_some_and(|c| c.contains(&root)))
        .collect();
    for &pid in &found {
        // SAFETY: getpgid and killpg only read and signal; a stale pid
        // fails with ESRCH, which is fine.
        unsafe {
            let group = libc::getpgid(pid as libc::pid_t);
            if group > 1 {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }
    found
}

/// README's "Fleets" example, as written: `Fleet()` starting its own local
/// cluster, `rpc` found on PATH, the key and base URL from the environment
/// (the fake HTTP provider, which refuses any other key).
#[test]
fn the_readme_fleet_example_runs() {
    let _one = ONE_CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    let (scratch, python, _) = installed_binding("fleet-readme-");
    let scratch = scratch.path();
    let example = scratch.join("example.py");
    std::fs::write(&example, readme_fleet_example()).expect("write example.py");
    let fake = crate::common::fake_http::FakeServer::with_args(&["--api-key", "readme-fleet-key"]);
    let rpc_dir = Path::new(RPC).parent().expect("rpc's directory");
    let path = format!(
        "{}:{}",
        rpc_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The cluster's temp dir (mkdtemp) lands here, so leftovers are found;
    // short, for Ray's socket paths.
    let tmp = tempfile::Builder::new()
        .prefix("frd-")
        .tempdir()
        .expect("create the example's TMPDIR");
    let tmp = tmp.path();
    let mut cmd = Command::new(&python);
    cmd.arg(&example)
        .current_dir(scratch)
        .env_remove("PYTHONPATH")
        .env("PATH", path)
        .env("TMPDIR", tmp)
        .env(
            "ANTHROPIC_BASE_URL",
            format!("http://127.0.0.1:{}", fake.port),
        )
        .env("ANTHROPIC_API_KEY", "readme-fleet-key");
    let limit = Duration::from_secs(240);
    let (status, stdout, stderr) = run_bounded(&mut cmd, b"", limit);
    let leftovers = stop_ray_processes_under(tmp);
    assert!(
        status.is_some_and(|s| s.success()),
        "README's fleet example failed ({status:?}; limit {limit:?}):\n{stdout}{stderr}"
    );
    // The fake echoes each prompt; the follow-up continued the first session.
    assert!(
        stdout.contains("end_turn") && stdout.contains("Name a prime number."),
        "{stdout}"
    );
    assert!(stdout.contains("Name an even number."), "{stdout}");
    assert!(stdout.contains("And another?"), "{stdout}");
    assert!(
        leftovers.is_empty(),
        "the example left Ray processes: {leftovers:?}"
    );
    let sessions = fake
        .api_requests()
        .into_iter()
        .map(|r| r["body"]["messages"].to_string())
        .filter(|m| m.contains("And another?"))
        .collect::<Vec<_>>();
    assert!(
        sessions.iter().all(|m| m.contains("Name a prime number.")),
        "the follow-up was sent without the first turn: {sessions:?}"
    );
    assert!(
        !sessions.is_empty(),
        "the follow-up never reached the model"
    );
}

/// The python block of README's "Fleets" section.
fn readme_fleet_example() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("read README.md");
    let section = readme
        .split("\n## Fleets\n")
        .nth(1)
        .expect("README has a Fleets section");
    section
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the Fleets section has a python block")
        .to_string()
}
