//! Provider extensions as the host sees them, one file per sub-area:
//! crashes, hangs and corrupt frames end the turn cleanly with a message a
//! person can act on (and the extension is respawned) (`crashes`, `hangs`,
//! `garbage`), the environment an extension gets (`environment`), what it
//! is sent (`requests`), discovery (`discovery`), that a misbehaving
//! extension never blocks `ready` or grows the host's memory
//! (`never_blocking`), and prompts waiting for or refused by an extension's
//! models (`models`). Fixtures: fixtures/providers (README.md). The
//! helpers below are shared.

#[path = "../common/mod.rs"]
mod common;

mod crashes;
mod discovery;
mod environment;
mod garbage;
mod hangs;
mod models;
mod never_blocking;
mod requests;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::procfs::{self, alive, vm_hwm_kib};
use common::{call_ok, message_text, prompt, text_of, Rpc, Spawn, ECHO, READ_TIMEOUT};
use serde_json::{json, Value};

/// Runs a prompt to its answer, which must be a `response` (an accepted
/// prompt never produces an `error` frame) with `agent_end` just before it.
fn run(rpc: &mut Rpc, id: &str, message: &str) -> (Vec<Value>, Value) {
    let (frames, resp) = prompt(rpc, id, message);
    assert_eq!(
        resp["type"],
        "response",
        "prompt {id}: {resp}\nstderr:\n{}",
        rpc.stderr()
    );
    let end = frames.last().expect("frames before the response");
    assert_eq!(
        end["type"], "agent_end",
        "agent_end must come right before the response: {end}"
    );
    (frames, resp)
}

fn run_ok(rpc: &mut Rpc, id: &str, message: &str) -> String {
    let (frames, resp) = run(rpc, id, message);
    assert_eq!(
        resp["ok"],
        true,
        "prompt {id} failed: {resp}\nstderr:\n{}",
        rpc.stderr()
    );
    text_of(&frames)
}

/// A prompt that must fail as a provider error; returns (streamed text, error).
fn run_failing(rpc: &mut Rpc, id: &str, message: &str) -> (String, String) {
    let (frames, resp) = run(rpc, id, message);
    assert_eq!(resp["ok"], false, "prompt {id} should fail: {resp}");
    assert_eq!(resp["code"], "provider_error", "{resp}");
    let error = resp["error"].as_str().expect("error message").to_owned();
    assert!(!error.is_empty());
    (text_of(&frames), error)
}

fn set_model(rpc: &mut Rpc, model: &str) {
    let resp = call_ok(rpc, json!({"type": "set_model", "model": model}), "model");
    assert_eq!(resp["model"], model);
}

fn last_message(rpc: &mut Rpc) -> Value {
    let resp = call_ok(rpc, json!({"type": "get_messages"}), "msgs");
    resp["messages"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .expect("a message")
}

/// A host that is always shut down the polite way (stdin EOF), even when a
/// test fails half-way: the harness would SIGKILL it, orphaning fixtures such
/// as `hang`, which ignore everything but SIGKILL. Extension processes still
/// alive after the host exits are killed by pid.
struct Host(Option<Rpc>);

impl Host {
    fn start(spawn: Spawn) -> Host {
        Host(Some(spawn.start()))
    }
}

impl std::ops::Deref for Host {
    type Target = Rpc;
    fn deref(&self) -> &Rpc {
        self.0.as_ref().expect("host running")
    }
}

impl std::ops::DerefMut for Host {
    fn deref_mut(&mut self) -> &mut Rpc {
        self.0.as_mut().expect("host running")
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(rpc) = self.0.take() {
            let _ = close_and_reap(rpc);
        }
    }
}

/// Closes stdin, waits (up to 5 s) for the exit, then kills any extension
/// process of the host that outlived it. Returns the exit status, the
/// survivors, and the host's stderr.
fn close_and_reap(mut rpc: Rpc) -> (Option<std::process::ExitStatus>, Vec<u32>, String) {
    let kids = fakeprovs(rpc.pid(), "");
    rpc.close_stdin();
    let status = rpc.wait(Duration::from_secs(5));
    // Killed extensions are reaped by the host as it exits; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut left: Vec<u32> = kids.clone();
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left.retain(|&p| is_fakeprov(p));
    }
    for &p in &left {
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg(p.to_string())
            .status();
    }
    (status, left, rpc.stderr())
}

/// Ends the host with stdin EOF: it must exit 0 and leave no extension
/// process behind.
fn finish(mut host: Host) {
    let rpc = host.0.take().expect("host running");
    let (status, left, stderr) = close_and_reap(rpc);
    let status =
        status.unwrap_or_else(|| panic!("host did not exit after stdin EOF; stderr:\n{stderr}"));
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{stderr}"
    );
    assert!(
        left.is_empty(),
        "extension processes outlived the host: {left:?}"
    );
}

fn is_fakeprov(pid: u32) -> bool {
    alive(pid) && procfs::cmdline(pid).is_some_and(|c| c.contains("fakeprov.py"))
}

/// Live processes under `pid` running fakeprov.py in `mode` (scans all of
/// /proc by parent pid, so children started from any host thread count).
fn fakeprovs(pid: u32, mode: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![pid];
    while let Some(parent) = frontier.pop() {
        for p in procfs::all_pids() {
            if procfs::parent_of(p) != Some(parent) {
                continue;
            }
            frontier.push(p);
            let cmdline = procfs::cmdline(p).unwrap_or_default();
            if cmdline.contains("fakeprov.py") && cmdline.ends_with(mode) && alive(p) {
                found.push(p);
            }
        }
    }
    found
}

/// Waits for the answer to `id`, noting every `mode` extension process seen
/// meanwhile. Returns (frames before, the answer, pids seen, elapsed).
fn answer_watching(
    rpc: &mut Rpc,
    id: &str,
    mode: &str,
    limit: Duration,
) -> (Vec<Value>, Value, BTreeSet<u32>, Duration) {
    let start = Instant::now();
    let mut seen = BTreeSet::new();
    let mut frames = Vec::new();
    loop {
        seen.extend(fakeprovs(rpc.pid(), mode));
        assert!(
            start.elapsed() < limit,
            "no answer to {id} within {limit:?}; frames {frames:?}\nstderr:\n{}",
            rpc.stderr()
        );
        if let Some(v) = rpc.recv_within(Duration::from_millis(20)) {
            if (v["type"] == "response" || v["type"] == "error") && v["id"] == id {
                return (frames, v, seen, start.elapsed());
            }
            frames.push(v);
        }
    }
}

/// Asserts each pid is gone within `within` (killed and reaped).
fn assert_all_gone(pids: &BTreeSet<u32>, within: Duration, what: &str) {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: processes still alive: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A copy of a fixture plugin under `root/<id>/plugin.json`, with
/// `fakeprov.py` (and the `directives.py` and `summaries.py` it imports) at `root/` so the
/// manifest's `../fakeprov.py` still resolves; `edit` changes the manifest.
fn plugin_copy(root: &Path, id: &str, from: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    std::fs::create_dir_all(root.join(id)).unwrap();
    std::fs::copy(common::fixture("fakeprov.py"), root.join("fakeprov.py")).unwrap();
    // fakeprov.py imports the modules the fakes share from beside itself.
    for shared in ["directives.py", "summaries.py"] {
        std::fs::copy(common::fixture("..").join(shared), root.join(shared)).unwrap();
    }
    let text = std::fs::read_to_string(common::fixture(from).join("plugin.json")).unwrap();
    let mut manifest: Value = serde_json::from_str(&text).unwrap();
    edit(&mut manifest);
    let dir = root.join(id);
    std::fs::write(
        dir.join("plugin.json"),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
    dir
}

fn with_plugin(spawn: Spawn, dir: &Path) -> Spawn {
    spawn.arg("--extension").arg(dir.to_str().unwrap())
}
