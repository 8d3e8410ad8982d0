//! The fixtures the host is pointed at: extension paths, scratch dirs and
//! the fake HTTP model server (`fixtures/http/fake_llm.py`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::clock::mono;
use crate::frames::find;
use crate::{Res, ROOT};

pub fn ext(name: &str) -> String {
    format!("{ROOT}/fixtures/providers/{name}")
}

pub fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("rpc-bench-{tag}-"))
        .tempdir()
        .expect("temp dir")
}

pub fn data_dir_args(dir: &Path) -> Vec<String> {
    vec!["--data-dir".into(), dir.join("data").display().to_string()]
}

/// The fake HTTP model server (fixtures/http/fake_llm.py), stopped by
/// closing its stdin.
pub struct Fake {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub port: u16,
}

impl Fake {
    pub fn start() -> Res<Fake> {
        let mut child = Command::new("python3")
            .arg(format!("{ROOT}/fixtures/http/fake_llm.py"))
            .args(["--port", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start fake_llm.py: {e}"))?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().ok_or("no stdout")?)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("fake_llm.py said {line:?}"))?;
        Ok(Fake { child, stdin, port })
    }

    pub fn get_json(&self, path: &str) -> Res<Value> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
        let p = find(&buf, b"\r\n\r\n").ok_or("no header end")?;
        serde_json::from_slice(&buf[p + 4..]).map_err(|e| format!("{path}: {e}"))
    }

    pub fn requests(&self) -> Res<Vec<Value>> {
        let v = self.get_json("/_requests")?;
        Ok(v.as_array()
            .ok_or("/_requests: not a list")?
            .iter()
            .filter(|r| r["path"] == "/v1/chat/completions")
            .cloned()
            .collect())
    }

    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "OPENAI_BASE_URL",
                format!("http://127.0.0.1:{}/v1", self.port),
            ),
            ("OPENAI_API_KEY", "dummy".into()),
        ]
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let end = mono() + 2.0;
        while mono() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
