//! `fixtures/http/fake_llm.py` (the fake Anthropic/OpenAI server) for tests:
//! spawned on an ephemeral port, its request log read over a plain HTTP GET,
//! killed on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use super::StderrLog;

/// `fixtures/http/fake_llm.py` on an ephemeral port.
pub struct FakeServer {
    child: Child,
    /// Held open: the server exits when its stdin reaches EOF.
    stdin: Option<ChildStdin>,
    pub port: u16,
    stderr: StderrLog,
}

impl FakeServer {
    pub fn start() -> Self {
        Self::with_args(&[])
    }

    pub fn with_args(args: &[&str]) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/http/fake_llm.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .args(["--port", "0"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn python3 fake_llm.py");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Nothing else is written to stdout; keep the pipe drained anyway.
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let mut server = FakeServer {
            child,
            stdin,
            port: 0,
            stderr: StderrLog::collect(stderr),
        };
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        server.port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "fake_llm.py did not announce its port (first line {line:?}); stderr:\n{}",
                    server.stderr.text()
                )
            });
        server
    }

    /// `GET path` answered with JSON.
    pub fn get(&self, path: &str) -> Value {
        http_get_json(self.port, path)
    }

    /// Every request the server received (`/_requests`).
    pub fn requests(&self) -> Vec<Value> {
        match self.get("/_requests") {
            Value::Array(a) => a,
            other => panic!("/_requests is not a list: {other}"),
        }
    }

    /// Only the model API requests.
    pub fn api_requests(&self) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|r| !r["api"].is_null())
            .collect()
    }

    /// API requests whose scenario string contains `needle` (e.g. `id=x`).
    pub fn requests_with(&self, needle: &str) -> Vec<Value> {
        self.api_requests()
            .into_iter()
            .filter(|r| r["scenario"].as_str().is_some_and(|s| s.contains(needle)))
            .collect()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stdin.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET of a JSON document from 127.0.0.1.
pub fn http_get_json(port: u16, path: &str) -> Value {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .expect("send GET");
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (head_end, length) = loop {
        let n = s.read(&mut buf).expect("read response");
        assert!(n > 0, "connection closed before the response head");
        raw.extend_from_slice(&buf[..n]);
        if let Some(pos) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..pos]).to_string();
            let status = head.lines().next().unwrap_or("");
            assert!(status.contains(" 200 "), "GET {path}: {status}");
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .expect("content-length");
            break (pos + 4, length);
        }
    };
    while raw.len() < head_end + length {
        let n = s.read(&mut buf).expect("read body");
        assert!(n > 0, "connection closed mid-body");
        raw.extend_from_slice(&buf[..n]);
    }
    serde_json::from_slice(&raw[head_end..head_end + length]).expect("JSON body")
}

/// The two HTTP APIs the fake serves, and how the host is pointed at each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Anthropic,
    OpenAi,
}

impl Api {
    pub fn model(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic/claude-sonnet-5-5",
            Api::OpenAi => "openai/gpt-4o-mini",
        }
    }
    pub fn kind(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic",
            Api::OpenAi => "openai",
        }
    }
    pub fn key_var(self) -> &'static str {
        match self {
            Api::Anthropic => "ANTHROPIC_API_KEY",
            Api::OpenAi => "OPENAI_API_KEY",
        }
    }
    pub fn base_var(self) -> &'static str {
        match self {
            Api::Anthropic => "ANTHROPIC_BASE_URL",
            Api::OpenAi => "OPENAI_BASE_URL",
        }
    }
    pub fn base_url(self, port: u16) -> String {
        match self {
            Api::Anthropic => format!("http://127.0.0.1:{port}"),
            Api::OpenAi => format!("http://127.0.0.1:{port}/v1"),
        }
    }
    pub fn path(self) -> &'static str {
        match self {
            Api::Anthropic => "/v1/messages",
            Api::OpenAi => "/v1/chat/completions",
        }
    }
    /// The tool-call ids the fake gives, in order.
    pub fn call_id(self, n: usize) -> String {
        match self {
            Api::Anthropic => format!("toolu_{n}"),
            Api::OpenAi => format!("call_{n}"),
        }
    }
}
