//! Subprocess harness: spawns the real `rpc` binary with an isolated data
//! dir, reads its stdout on a thread, and puts a timeout on every read so a
//! hang fails the test in seconds instead of stalling CI.
//!
//! Also the one copy of what several test files need: the fixture model ids,
//! the base `rpc` command line and the stderr collector that the files with
//! their own process handling build on, the small command helpers
//! (`call_ok`, `get_state`, `messages`, …); the `/proc` reads are in
//! [`procfs`].
// Every test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

/// One test per API for a scenario function `name(api)` (a file using it
/// imports `Api` and declares `#[macro_use] mod common;`).
#[allow(unused_macros)]
macro_rules! both {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn anthropic() {
                super::$name(super::Api::Anthropic)
            }
            #[test]
            fn openai() {
                super::$name(super::Api::OpenAi)
            }
        }
    )*};
}

pub mod bounded;
pub mod fake_http;
pub mod node;
pub mod procfs;
pub mod python_env;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;

/// Default bound on any single read.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);

/// The fixture extensions' models (`fixtures/providers/<plugin>`), as
/// `plugin:provider:model` ids.
pub const ECHO: &str = "echo:echo:echo-1";
pub const SLOW: &str = "slow:slow:slow-1";
pub const FLOOD: &str = "flood:flood:flood-1";
pub const HANG: &str = "hang:hang:hang-1";

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rpc"))
}

/// `fixtures/providers/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/providers")
        .join(name)
}

/// The given data dir, or a fresh temporary one that the caller keeps alive
/// (and that is removed when the returned guard drops).
pub fn data_dir_or_temp(given: Option<&Path>) -> (PathBuf, Option<TempDir>) {
    match given {
        Some(dir) => (dir.to_path_buf(), None),
        None => {
            let owned = tempfile::tempdir().expect("tempdir");
            (owned.path().to_path_buf(), Some(owned))
        }
    }
}

/// `rpc --data-dir <data>` with all three stdio pipes, and without the
/// caller's `RUST_LOG` / `AGENT_RPC_HOME` / `XDG_CONFIG_HOME` so the
/// environment running the tests cannot change what the host logs, where it
/// keeps its data or what config it reads.
/// Under `ulimit -f <blocks>` when `file_size_blocks` is given (through
/// `/bin/sh`, which then `exec`s the host so its pid is the host's; exit 99
/// if the shell cannot set the limit).
pub fn rpc_command(data: &Path, file_size_blocks: Option<u64>) -> Command {
    rpc_command_limited(data, file_size_blocks.map(|n| format!("-f {n}")).as_deref())
}

/// [`rpc_command`] under `ulimit <limit>` (e.g. `-Sn 64`) when given.
pub fn rpc_command_limited(data: &Path, limit: Option<&str>) -> Command {
    let mut cmd = match limit {
        None => Command::new(bin()),
        Some(limit) => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c")
                .arg(format!("ulimit {limit} || exit 99; exec \"$0\" \"$@\""))
                .arg(bin());
            c
        }
    };
    cmd.arg("--data-dir")
        .arg(data)
        .env_remove("RUST_LOG")
        .env_remove("AGENT_RPC_HOME")
        // No developer config (config.toml, the global AGENTS.md, skills in
        // ~/.agents/skills) leaks in; a test that wants one sets its own.
        .env("XDG_CONFIG_HOME", data.join("no-config-home"))
        .env("HOME", data.join("no-home"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A child's stderr, collected by a thread of its own so the child never
/// blocks on a full pipe, and readable at any time for failure messages.
#[derive(Clone)]
pub struct StderrLog {
    text: Arc<Mutex<String>>,
    /// The thread saw end of file: everything is in `text`.
    done: Arc<AtomicBool>,
}

impl StderrLog {
    /// Starts the thread that reads `pipe` to its end.
    pub fn collect(pipe: impl Read + Send + 'static) -> Self {
        let log = StderrLog {
            text: Arc::default(),
            done: Arc::default(),
        };
        let (sink, done) = (log.text.clone(), log.done.clone());
        std::thread::spawn(move || {
            let mut pipe = pipe;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            done.store(true, Ordering::Release);
        });
        log
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Whether the pipe reached end of file (the text is complete).
    pub fn finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }
}

/// A host started with `--extension` for each named fixture.
pub struct Spawn {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub data_dir: Option<PathBuf>,
    /// The process's current directory (default: the test's).
    pub dir: Option<PathBuf>,
    /// A shell `ulimit` to start it under (e.g. `-Sn 64`).
    pub limit: Option<String>,
}

impl Spawn {
    pub fn new() -> Self {
        Spawn {
            args: Vec::new(),
            env: Vec::new(),
            data_dir: None,
            dir: None,
            limit: None,
        }
    }

    /// Start it under `ulimit <limit>` (through `/bin/sh`, which `exec`s it).
    pub fn ulimit(mut self, limit: &str) -> Self {
        self.limit = Some(limit.to_owned());
        self
    }

    pub fn ext(mut self, name: &str) -> Self {
        self.args.push("--extension".into());
        self.args.push(fixture(name).to_string_lossy().into_owned());
        self
    }

    pub fn model(self, id: &str) -> Self {
        self.arg("--model").arg(id)
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_owned());
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Run the process in `dir` (its current directory, not `--cwd`).
    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Reuse a data dir (for resume tests).
    pub fn data(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub fn start(self) -> Rpc {
        let (data, owned) = data_dir_or_temp(self.data_dir.as_deref());
        let mut cmd = rpc_command_limited(&data, self.limit.as_deref());
        cmd.args(&self.args);
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn rpc");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                // Bytes, not a String: output that is not UTF-8 must reach
                // the test as a NOT_JSON frame, not end the reader silently
                // (which would make every "no more output" check pass).
                let v = match reader.read_until(b'\n', &mut line) {
                    Ok(0) => return,
                    Ok(_) => serde_json::from_slice(line.trim_ascii_end()).unwrap_or_else(|e| {
                        let text = String::from_utf8_lossy(&line).into_owned();
                        json!({"type": "NOT_JSON", "line": text, "error": e.to_string()})
                    }),
                    Err(e) => json!({"type": "NOT_JSON", "line": "", "error": e.to_string()}),
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        // Writes go through a thread so that a host that stops reading stdin
        // fails the test on its next read timeout instead of hanging it.
        let stdin = stdin.map(|mut stdin| {
            let (wtx, wrx) = mpsc::channel::<Vec<u8>>();
            std::thread::spawn(move || {
                for bytes in wrx {
                    if stdin
                        .write_all(&bytes)
                        .and_then(|()| stdin.flush())
                        .is_err()
                    {
                        return;
                    }
                }
                // Channel closed (close_stdin or drop): stdin closes here,
                // after everything queued was written.
            });
            wtx
        });
        Rpc {
            child,
            stdin,
            rx,
            stderr: StderrLog::collect(stderr),
            data,
            _owned: owned,
            seen: Vec::new(),
        }
    }
}

pub struct Rpc {
    pub child: Child,
    stdin: Option<mpsc::Sender<Vec<u8>>>,
    rx: Receiver<Value>,
    stderr: StderrLog,
    pub data: PathBuf,
    _owned: Option<TempDir>,
    /// Every frame read so far, in order.
    pub seen: Vec<Value>,
}

impl Rpc {
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    pub fn send(&mut self, v: Value) {
        let mut line = serde_json::to_vec(&v).unwrap();
        line.push(b'\n');
        self.send_raw(&line);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_ref().expect("stdin open");
        stdin.send(bytes.to_vec()).expect("stdin writer alive");
    }

    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// The next frame, failing the test after `READ_TIMEOUT`.
    pub fn recv(&mut self) -> Value {
        self.recv_within(READ_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "no frame within {READ_TIMEOUT:?}; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// The next frame, or None after `timeout` (or at EOF).
    pub fn recv_within(&mut self, timeout: Duration) -> Option<Value> {
        match self.rx.recv_timeout(timeout) {
            Ok(v) => {
                assert_ne!(v["type"], "NOT_JSON", "stdout carried a non-JSON line: {v}");
                self.seen.push(v.clone());
                Some(v)
            }
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Reads until a frame matches; returns the frames before it and it.
    pub fn until(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(v) = self.recv_within(left) else {
                panic!(
                    "waiting for {what}: nothing matched within {READ_TIMEOUT:?}; last frames: {:?}\nstderr:\n{}",
                    before.iter().rev().take(5).collect::<Vec<_>>(),
                    self.stderr()
                );
            };
            if pred(&v) {
                return (before, v);
            }
            before.push(v);
        }
    }

    /// The `response` or `error` frame answering `id`.
    pub fn answer(&mut self, id: &Value) -> Value {
        let id = id.clone();
        self.until(&format!("answer to {id}"), move |v| {
            (v["type"] == "response" || v["type"] == "error") && v["id"] == id
        })
        .1
    }

    /// Sends a command and returns its answer.
    pub fn call(&mut self, mut cmd: Value, id: &str) -> Value {
        cmd["id"] = json!(id);
        self.send(cmd);
        self.answer(&json!(id))
    }

    /// Reads the `ready` frame (the first line).
    pub fn ready(&mut self) -> Value {
        let v = self.recv();
        assert_eq!(v["type"], "ready", "first frame must be ready: {v}");
        v
    }

    /// Waits for the process to exit, killing it after `timeout`. After an
    /// exit it also waits (briefly) until stderr is fully read, so a test
    /// that then checks `stderr()` does not race the reader thread.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let Some(s) = wait_timeout(&mut self.child, timeout) else {
            let _ = self.child.kill();
            let _ = self.child.wait();
            return None;
        };
        let drained = Instant::now() + Duration::from_secs(3);
        while !self.stderr.finished() && Instant::now() < drained {
            std::thread::sleep(Duration::from_millis(2));
        }
        Some(s)
    }

    /// Every remaining frame until stdout closes (bounded by `timeout`).
    pub fn drain(&mut self, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            match self.rx.recv_timeout(left) {
                Ok(v) => {
                    assert_ne!(v["type"], "NOT_JSON", "stdout carried a non-JSON line: {v}");
                    self.seen.push(v.clone());
                    out.push(v)
                }
                Err(_) => return out,
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.data.join("sessions")
    }
}

impl Drop for Rpc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's exit status, or None if it is still running after `timeout`
/// (the caller decides whether to kill it).
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The first frame of type `kind` among `frames` (failing if there is none).
pub fn the_frame<'a>(frames: &'a [Value], kind: &str) -> &'a Value {
    frames
        .iter()
        .find(|f| f["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} among {frames:?}"))
}

/// Concatenated `text_delta`s among `frames`.
pub fn text_of(frames: &[Value]) -> String {
    frames
        .iter()
        .filter(|f| f["type"] == "message_update" && f["event"]["type"] == "text_delta")
        .map(|f| f["event"]["delta"].as_str().unwrap_or(""))
        .collect()
}

/// Runs a prompt to its response; returns (frames in between, response).
pub fn prompt(rpc: &mut Rpc, id: &str, message: &str) -> (Vec<Value>, Value) {
    rpc.send(json!({"type": "prompt", "id": id, "message": message}));
    let id = json!(id);
    rpc.until("prompt response", move |v| {
        (v["type"] == "response" || v["type"] == "error") && v["id"] == id
    })
}

/// The text of a stored message: a plain string or its `text` blocks.
pub fn message_text(m: &Value) -> String {
    match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .map(|b| b["text"].as_str().unwrap_or(""))
            .collect(),
        other => panic!("unexpected content {other}"),
    }
}

/// Whether a frame is the `response` or `error` answering command `id`.
pub fn is_answer_to(f: &Value, id: &str) -> bool {
    (f["type"] == "response" || f["type"] == "error") && f["id"] == id
}

/// Asserts an answer is a successful `response`, with the host's stderr in
/// the failure message.
pub fn assert_ok(resp: &Value, rpc: &Rpc) {
    assert_eq!(
        resp["type"],
        "response",
        "{resp}\nstderr:\n{}",
        rpc.stderr()
    );
    assert_eq!(resp["ok"], true, "{resp}\nstderr:\n{}", rpc.stderr());
}

/// Sends a command and returns its answer, which must be a successful
/// `response`.
pub fn call_ok(rpc: &mut Rpc, cmd: Value, id: &str) -> Value {
    let resp = rpc.call(cmd, id);
    assert_eq!(resp["type"], "response", "{resp}");
    assert_eq!(resp["ok"], true, "{resp}");
    resp
}

/// `get_state`, which must answer successfully.
pub fn get_state(rpc: &mut Rpc, id: &str) -> Value {
    let r = rpc.call(json!({"type": "get_state"}), id);
    assert_eq!(r["type"], "response", "get_state must answer: {r}");
    assert_eq!(r["ok"], true, "{r}");
    r
}

/// The session's messages, from `get_messages`.
pub fn messages(rpc: &mut Rpc, id: &str) -> Vec<Value> {
    let r = call_ok(rpc, json!({"type": "get_messages"}), id);
    r["messages"].as_array().expect("messages array").clone()
}

/// A host with the echo extension and its model, past its `ready` frame
/// (returned too).
pub fn echo_host() -> (Rpc, Value) {
    let mut rpc = Spawn::new().ext("echo").model(ECHO).start();
    let ready = rpc.ready();
    (rpc, ready)
}

/// Runs a prompt that must succeed; returns its streamed text.
pub fn ok_prompt(rpc: &mut Rpc, id: &str, message: &str) -> String {
    let (frames, resp) = prompt(rpc, id, message);
    assert_eq!(
        resp["type"],
        "response",
        "prompt {id}: {resp}\nstderr:\n{}",
        rpc.stderr()
    );
    assert_eq!(
        resp["ok"],
        true,
        "prompt {id} failed: {resp}\nstderr:\n{}",
        rpc.stderr()
    );
    text_of(&frames)
}

/// Closes stdin and expects the host to exit cleanly within 5 s.
pub fn finish(mut rpc: Rpc) {
    rpc.close_stdin();
    let status = rpc.wait(Duration::from_secs(5));
    let stderr = rpc.stderr();
    let status =
        status.unwrap_or_else(|| panic!("host did not exit on stdin EOF; stderr:\n{stderr}"));
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{stderr}"
    );
}

/// The file of session `id` in data dir `data`.
pub fn session_file(data: &Path, id: &str) -> PathBuf {
    data.join("sessions").join(format!("{id}.jsonl"))
}

/// Every line of a session file, each required to be complete JSON, the
/// file ending in a newline.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("read session file");
    assert!(
        text.ends_with('\n'),
        "session file must end with a newline: {text:?}"
    );
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// `dir` as the host reports it: canonical, as a string.
pub fn canonical(dir: &Path) -> String {
    dir.canonicalize()
        .expect("canonical dir")
        .to_string_lossy()
        .into_owned()
}

/// `rpc <args>` as a plain command (a subcommand, `--help`; no session
/// served), bounded in time, its output read while it runs.
pub fn rpc_cli(data: &Path, args: &[&str]) -> std::process::Output {
    let (status, stdout, stderr) =
        bounded::run_bounded(rpc_command(data, None).args(args), b"", READ_TIMEOUT);
    let status = status.unwrap_or_else(|| panic!("rpc {args:?} did not finish"));
    std::process::Output {
        status,
        stdout: stdout.into_bytes(),
        stderr: stderr.into_bytes(),
    }
}
