//! Direct clients: the fake HTTP server and the echo extension driven by
//! the harness itself, without the host, so each latency row can subtract
//! the provider's own latency.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::clock::mono;
use crate::fixtures::ext;
use crate::frames::find;
use crate::{Res, READ_CHUNK};

/// A minimal keep-alive HTTP/1.1 client for the fake: the provider's own
/// latency and serve time, without the host in the way.
pub struct DirectHttp {
    pub s: TcpStream,
    pub port: u16,
}

pub struct DirectReply {
    /// request written → first byte of a non-empty content delta read
    pub first_content_s: f64,
    /// request written → terminating chunk read
    pub total_s: f64,
    pub content_chunks: usize,
}

impl DirectHttp {
    pub fn connect(port: u16) -> Res<DirectHttp> {
        let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
        s.set_nodelay(true).ok();
        Ok(DirectHttp { s, port })
    }

    pub fn post(&mut self, body: &[u8], timeout: f64, count: bool) -> Res<DirectReply> {
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nAuthorization: Bearer dummy\r\nAccept: text/event-stream\r\nContent-Length: {}\r\n\r\n",
            self.port,
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        let deadline = mono() + timeout;
        let t0 = mono();
        self.s.write_all(&req).map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; READ_CHUNK];
        // The previous read's last bytes are kept in front of the new ones so
        // a marker split across reads is still seen (and counted once: only
        // matches that end inside the new bytes count).
        let mut win: Vec<u8> = Vec::with_capacity(READ_CHUNK + 64);
        let mut first = None;
        let mut chunks = 0;
        // Every reply here is `[[n=..]]` deltas of "tok "; the first chunk's
        // `"content":""` does not match.
        const C: &[u8] = br#""content":"tok "#;
        const END: &[u8] = b"\r\n0\r\n\r\n"; // the terminating chunk
                                             // One timeout for the whole reply (not a setsockopt per read).
        self.s
            .set_read_timeout(Some(Duration::from_secs_f64(timeout)))
            .ok();
        loop {
            if mono() > deadline {
                return Err("direct HTTP: timeout".into());
            }
            let n = self
                .s
                .read(&mut buf)
                .map_err(|e| format!("direct HTTP read: {e}"))?;
            let t = mono();
            if n == 0 {
                return Err("direct HTTP: connection closed".into());
            }
            let keep = win.len();
            win.extend_from_slice(&buf[..n]);
            let mut i = (keep + 1).saturating_sub(C.len());
            while let Some(p) = find(&win[i..], C) {
                first.get_or_insert(t);
                chunks += 1;
                if !count {
                    break;
                }
                i += p + C.len();
            }
            if win.ends_with(END) {
                return Ok(DirectReply {
                    first_content_s: first.ok_or("no content delta")? - t0,
                    total_s: t - t0,
                    content_chunks: chunks,
                });
            }
            let cut = win.len().saturating_sub(C.len().max(END.len()));
            win.drain(..cut);
        }
    }
}

/// The echo extension driven directly (Content-Length JSON-RPC over pipes):
/// the provider's own latency without the host.
pub struct DirectExt {
    pub child: Child,
    pub stdin: ChildStdin,
    pub out: BufReader<ChildStdout>,
    pub next_id: u64,
}

impl DirectExt {
    pub fn start(name: &str, mode: &str) -> Res<DirectExt> {
        let dir = ext(name);
        let mut child = Command::new("python3")
            .args(["../fakeprov.py", mode])
            .current_dir(&dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start fakeprov.py: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut d = DirectExt {
            child,
            stdin,
            out,
            next_id: 1,
        };
        let id = d.request(
            "initialize",
            json!({"host_version": "0.1.0", "synaps_version": "0.1.0", "extension_protocol_version": 1,
                   "plugin_id": name, "plugin_root": dir, "config": {}}),
        )?;
        loop {
            let m = d.read_msg()?;
            if m["id"] == id {
                break;
            }
        }
        Ok(d)
    }

    pub fn request(&mut self, method: &str, params: Value) -> Res<u64> {
        let id = self.next_id;
        self.next_id += 1;
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{}", body.len(), body)
            .and_then(|_| self.stdin.flush())
            .map_err(|e| e.to_string())?;
        Ok(id)
    }

    pub fn read_msg(&mut self) -> Res<Value> {
        let mut len = None;
        loop {
            let mut line = String::new();
            if self.out.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("fakeprov closed stdout".into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("Content-Length:") {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0u8; len.ok_or("no Content-Length")?];
        self.out.read_exact(&mut body).map_err(|e| e.to_string())?;
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }

    /// provider.stream → (first text event, response) times, seconds.
    pub fn stream(&mut self, text: &str) -> Res<(f64, f64)> {
        let t0 = mono();
        let id = self.request(
            "provider.stream",
            json!({"provider_id": "echo", "model_id": "echo-1", "model": "echo-1",
                   "messages": [{"role": "user", "content": text}], "system_prompt": null,
                   "tools": [], "temperature": null, "max_tokens": null}),
        )?;
        let mut first = None;
        loop {
            // Blocking reads: the fixture answers in milliseconds; the child
            // is killed on drop if the bench fails elsewhere.
            let m = self.read_msg()?;
            let t = mono();
            if m["method"] == "provider.stream.event" {
                let ev = if m["params"]["event"].is_object() {
                    &m["params"]["event"]
                } else {
                    &m["params"]
                };
                if ev["type"] == "text" {
                    first.get_or_insert(t);
                }
            } else if m["id"] == id {
                if m.get("error").is_some() {
                    return Err(format!("fakeprov error: {m}"));
                }
                return Ok((first.ok_or("no text event")? - t0, t - t0));
            }
        }
    }
}

impl Drop for DirectExt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
