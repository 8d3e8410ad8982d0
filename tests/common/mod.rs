//! Subprocess harness: spawns the real `rpc` binary with an isolated data
//! dir, reads its stdout on a thread, and puts a timeout on every read so a
//! hang fails the test in seconds instead of stalling CI.
#![allow(dead_code)]

pub mod fake_http;

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

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rpc"))
}

/// `fixtures/providers/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/providers")
        .join(name)
}

/// A host started with `--extension` for each named fixture.
pub struct Spawn {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub data_dir: Option<PathBuf>,
}

impl Spawn {
    pub fn new() -> Self {
        Spawn {
            args: Vec::new(),
            env: Vec::new(),
            data_dir: None,
        }
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

    /// Reuse a data dir (for resume tests).
    pub fn data(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub fn start(self) -> Rpc {
        let owned = match &self.data_dir {
            Some(_) => None,
            None => Some(tempfile::tempdir().expect("tempdir")),
        };
        let data = self
            .data_dir
            .clone()
            .unwrap_or_else(|| owned.as_ref().unwrap().path().to_path_buf());
        let mut cmd = Command::new(bin());
        cmd.arg("--data-dir")
            .arg(&data)
            .args(&self.args)
            .env_remove("RUST_LOG")
            .env_remove("AGENT_RPC_HOME")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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
        let err_buf = Arc::new(Mutex::new(String::new()));
        let err_done = Arc::new(AtomicBool::new(false));
        let sink = err_buf.clone();
        let done = err_done.clone();
        std::thread::spawn(move || {
            let mut stderr = stderr;
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            done.store(true, Ordering::Release);
        });
        Rpc {
            child,
            stdin,
            rx,
            stderr: err_buf,
            stderr_done: err_done,
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
    stderr: Arc<Mutex<String>>,
    /// The stderr thread saw end of file: everything is in `stderr`.
    stderr_done: Arc<AtomicBool>,
    pub data: PathBuf,
    _owned: Option<TempDir>,
    /// Every frame read so far, in order.
    pub seen: Vec<Value>,
}

impl Rpc {
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
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
        while !self.stderr_done.load(Ordering::Acquire) && Instant::now() < drained {
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

/// Peak resident memory (VmHWM) of a live process, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// PIDs of live descendants of `pid` (from /proc).
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        let Ok(children) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) else {
            continue;
        };
        for c in children.split_whitespace().filter_map(|c| c.parse().ok()) {
            out.push(c);
            frontier.push(c);
        }
    }
    out
}

/// Whether a process still exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .map(|rest| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}
