//! MCP tool servers, against the real `rpc` binary, real MCP servers and
//! the fake HTTP model server (`fixtures/http/fake_llm.py`, Anthropic API),
//! whose `[[tool=NAME input=JSON]]` directive makes the model call a tool
//! and whose reply after a tool round is `tool result: <content>`.
//!
//! The servers: `fixtures/mcp/server.py` (the official Python SDK, `mcp`
//! pinned in tests/requirements.txt, installed into a venv on first use)
//! and `@modelcontextprotocol/server-everything` (pinned in
//! tests/mcp_servers/package-lock.json, installed with `npm ci` on first use).
//!
//! Every read is bounded by the harness timeout; nothing asserts a speed.

#[path = "../common/mod.rs"]
mod common;

mod config;
mod everything;
mod fixture;
mod sandbox;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::fake_http::{Api, FakeServer};
use common::*;
use serde_json::{json, Value};
use tempfile::TempDir;

/// `XDG_CONFIG_HOME` for every host, so no developer config leaks in.
const NO_CONFIG_HOME: &str = "/nonexistent/agent-rpc-mcp-tests";
const API: Api = Api::Anthropic;

/// The Python that has the `mcp` SDK, and the fixture server's path.
fn python_fixture() -> (PathBuf, PathBuf) {
    let python = common::python_env::python();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/mcp/server.py");
    (python, script)
}

/// `tests/mcp_servers/node_modules`, installed with `npm ci` when missing or older
/// than the lockfile.
fn everything_js() -> PathBuf {
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp_servers");
    common::node::ensure_node_modules(&pkg, "mcp-npm.lock", common::node::Install::Ci);
    pkg.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
}

/// A test's directories: the session cwd, and a place for config files
/// and server logs.
struct Dirs {
    _root: TempDir,
    cwd: PathBuf,
    files: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let cwd = root.path().join("work");
        let files = root.path().join("files");
        fs::create_dir(&cwd).expect("mkdir work");
        fs::create_dir(&files).expect("mkdir files");
        Dirs {
            cwd: cwd.canonicalize().expect("canonical cwd"),
            files,
            _root: root,
        }
    }

    /// Writes `{"mcpServers": servers}` and returns its path.
    fn mcp_json(&self, servers: Value) -> PathBuf {
        let path = self.files.join("mcp.json");
        fs::write(&path, json!({ "mcpServers": servers }).to_string()).expect("write mcp.json");
        path
    }

    /// Where the fixture server named `name` logs its events.
    fn log(&self, name: &str) -> PathBuf {
        self.files.join(format!("{name}.log"))
    }

    fn log_lines(&self, name: &str) -> Vec<String> {
        fs::read_to_string(self.log(name))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// The fixture server as a stdio `.mcp.json` entry, logging to `log`.
fn fixture_entry(log: &Path, extra_args: &[&str]) -> Value {
    let (python, script) = python_fixture();
    let mut args = vec![script.to_string_lossy().into_owned()];
    args.extend(extra_args.iter().map(|a| (*a).to_owned()));
    json!({
        "command": python,
        "args": args,
        "env": {"MCP_FIXTURE_LOG": log},
    })
}

/// A host in `allow-all` with the fixture server as `fx` (logging to
/// `d.log("fx")`), past `ready`.
fn fixture_host(srv: &FakeServer, d: &Dirs) -> Rpc {
    let cfg = d.mcp_json(json!({"fx": fixture_entry(&d.log("fx"), &[])}));
    host(
        srv,
        d,
        "allow-all",
        &["--mcp-config", cfg.to_str().expect("utf-8 path")],
    )
}

/// A host on the fake model in `mode`, with `extra` flags, past `ready`.
fn host(srv: &FakeServer, d: &Dirs, mode: &str, extra: &[&str]) -> Rpc {
    host_with_env(srv, d, mode, extra, &[])
}

fn host_with_env(
    srv: &FakeServer,
    d: &Dirs,
    mode: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Rpc {
    host_on(API, srv, d, mode, extra, env)
}

/// A host on the fake model speaking `api`.
fn host_on(
    api: Api,
    srv: &FakeServer,
    d: &Dirs,
    mode: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Rpc {
    let mut spawn = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env(api.base_var(), &api.base_url(srv.port))
        .env(api.key_var(), "sk-test-mcp")
        .model(api.model())
        .arg("--cwd")
        .arg(d.cwd.to_str().expect("utf-8 cwd"))
        .arg("--permission-mode")
        .arg(mode);
    for a in extra {
        spawn = spawn.arg(a);
    }
    for (k, v) in env {
        spawn = spawn.env(k, v);
    }
    let mut rpc = spawn.start();
    rpc.ready();
    rpc
}

/// The directive that makes the model call `tool` with `input`.
fn call(tool: &str, input: &Value) -> String {
    format!("[[tool={tool} input={input}]]")
}

fn of_type<'a>(frames: &'a [Value], kind: &str) -> Vec<&'a Value> {
    frames.iter().filter(|f| f["type"] == kind).collect()
}

/// The one `tool_execution_end` among `frames`.
fn the_tool_end(frames: &[Value]) -> Value {
    let ends = of_type(frames, "tool_execution_end");
    assert_eq!(ends.len(), 1, "exactly one tool_execution_end: {frames:#?}");
    ends[0].clone()
}

/// Runs a prompt that must succeed; returns its frames.
fn run_ok(rpc: &mut Rpc, id: &str, message: &str) -> Vec<Value> {
    let (frames, resp) = prompt(rpc, id, message);
    assert_ok(&resp, rpc);
    frames
}

/// Reads until the `mcp_server_status` of `name` with `status`.
fn until_status(rpc: &mut Rpc, name: &str, status: &str) -> Value {
    let (n, s) = (name.to_owned(), status.to_owned());
    rpc.until(&format!("{name} {status}"), move |f| {
        f["type"] == "mcp_server_status" && f["name"] == n.as_str() && f["status"] == s.as_str()
    })
    .1
}

/// `get_state.mcp_servers[name]`.
fn server_state(rpc: &mut Rpc, name: &str) -> Value {
    let state = get_state(rpc, "st");
    state["mcp_servers"]
        .as_array()
        .expect("mcp_servers")
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no server {name} in {state}"))
}

/// Tool names offered in the last request to the model.
fn offered(srv: &FakeServer) -> Vec<String> {
    let requests = srv.api_requests();
    let last = requests.last().expect("a request to the model");
    last["body"]["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Sends a prompt and reads up to its `permission_request`.
fn until_permission(rpc: &mut Rpc, id: &str, message: &str) -> Value {
    rpc.send(json!({"type": "prompt", "id": id, "message": message}));
    let id = id.to_owned();
    let (before, f) = rpc.until("permission_request", move |f| {
        f["type"] == "permission_request" || is_answer_to(f, &id)
    });
    assert_eq!(
        f["type"], "permission_request",
        "the prompt ended without asking: {f}\n{before:#?}"
    );
    f
}

/// Answers a permission request and reads the prompt's answer; the
/// `permission_response`'s own answer must be a success among the frames.
fn decide(rpc: &mut Rpc, req: &Value, decision: &str, prompt_id: &str) -> (Vec<Value>, Value) {
    let rid = format!("d-{prompt_id}");
    rpc.send(json!({"type": "permission_response", "id": rid,
        "request_id": req["request_id"], "decision": decision}));
    let p = prompt_id.to_owned();
    let (frames, resp) = rpc.until("prompt answer", move |f| is_answer_to(f, &p));
    let ans = frames
        .iter()
        .find(|f| is_answer_to(f, &rid))
        .unwrap_or_else(|| panic!("permission_response {rid} unanswered: {frames:#?}"));
    assert_eq!(ans["ok"], true, "{ans}");
    (frames, resp)
}

/// Polls `cond` for up to 10 s.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen within 10 s");
}

/// A free TCP port on 127.0.0.1 for a server that takes a fixed port.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Waits until something listens on `port`.
fn wait_listening(port: u16) {
    eventually(&format!("a server listening on {port}"), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// A child server process killed when the test ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn shutdown(mut rpc: Rpc) {
    let r = rpc.call(json!({"type": "shutdown"}), "bye");
    assert_ok(&r, &rpc);
    assert!(
        rpc.wait(Duration::from_secs(10)).is_some(),
        "host did not exit"
    );
}

/// `shutdown`, then `check` what the host wrote on stderr over its life.
fn shutdown_keeping_stderr(mut rpc: Rpc, check: impl FnOnce(&str)) {
    let r = rpc.call(json!({"type": "shutdown"}), "bye");
    assert_ok(&r, &rpc);
    assert!(
        rpc.wait(Duration::from_secs(10)).is_some(),
        "host did not exit"
    );
    check(&rpc.stderr());
}
