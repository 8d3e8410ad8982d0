//! Group `editor`: what an editor waits for over `rpc --acp`.
//!
//! - 3d: `session/resume` of a stored 2,000-message session (request →
//!   answer), with `session/load` (which replays the history first) beside
//!   it; one process, the session closed between runs.
//! - 3e: one tool call as the client sees it (its `tool_call` → its closing
//!   `tool_call_update`), the file or command done locally and through the
//!   editor (the harness plays the editor: it answers `fs/read_text_file`
//!   from the disk and runs `terminal/create`'s command itself), so the
//!   difference is what a round trip through the editor adds.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::clock::mono;
use crate::driver::Host;
use crate::fixtures::{data_dir_args, ext, tmpdir};
use crate::frames::find;
use crate::spawn::write_session;
use crate::table::{Table, Target};
use crate::{Res, READY_TIMEOUT, SMALL_TURN_TIMEOUT};

const RESUME_PAIRS: u64 = 1000;
const EDITOR: &str = "the editor";

pub fn bench_editor(t: &mut Table, runs: usize) {
    bench_resume(t, runs);
    bench_round_trips(t, runs);
}

fn bench_resume(t: &mut Table, runs: usize) {
    let g = "3d";
    let dir = tmpdir("acp-resume");
    let id = "bench-acp-resume-2k";
    let cwd = dir.path().join("cwd");
    if let Err(e) = std::fs::create_dir_all(&cwd)
        .map_err(|e| e.to_string())
        .and_then(|()| write_session(&dir.path().join("data"), id, &cwd, RESUME_PAIRS))
    {
        return t.fail(g, "ACP resume", &e);
    }
    let measured = (|| -> Res<(Vec<f64>, Vec<f64>)> {
        let mut h = acp_host(dir.path(), &[])?;
        request(
            &mut h,
            1,
            "initialize",
            json!({"protocolVersion": 1, "clientCapabilities": {}}),
        )?;
        let params = json!({"sessionId": id, "cwd": cwd, "mcpServers": []});
        let mut resume = Vec::new();
        let mut load = Vec::new();
        let mut next = 10;
        // One unrecorded round warms the page cache.
        for i in 0..=runs {
            for (method, times) in [("session/resume", &mut resume), ("session/load", &mut load)] {
                let t0 = mono();
                let answer = request(&mut h, next, method, params.clone())?;
                let dt = mono() - t0;
                if answer.get("result").is_none() {
                    return Err(format!("{method}: {answer}"));
                }
                if i > 0 {
                    times.push(dt * 1e3);
                }
                request(&mut h, next + 1, "session/close", json!({"sessionId": id}))?;
                next += 2;
            }
        }
        Ok((resume, load))
    })();
    let (resume, load) = match measured {
        Ok(m) => m,
        Err(e) => return t.fail(g, "ACP resume", &e),
    };
    t.add(
        g,
        "ACP `session/resume` of 2,000 messages: request → answer",
        "ms",
        &resume,
        1,
        Target::AtMost(50.0),
        "≤ 50 ms",
    );
    t.add(
        g,
        "… `session/load` of the same (replays 2,000 messages first)",
        "ms",
        &load,
        1,
        Target::None,
        "—",
    );
}

fn bench_round_trips(t: &mut Table, runs: usize) {
    let g = "3e";
    let cases = [
        ("`read` of 200 lines", "read", json!({"path": "a.txt"})),
        ("`bash` `true`", "bash", json!({"command": "true"})),
    ];
    for (label, tool, input) in cases {
        let local = tool_call_ms(tool, &input, false, runs);
        let editor = tool_call_ms(tool, &input, true, runs);
        let (local, editor) = match (local, editor) {
            (Ok(l), Ok(e)) => (l, e),
            (Err(e), _) | (_, Err(e)) => return t.fail(g, label, &e),
        };
        let added: Vec<f64> = editor.iter().zip(&local).map(|(e, l)| e - l).collect();
        t.add(
            g,
            &format!("{label}, local: `tool_call` → closing update"),
            "ms",
            &local,
            2,
            Target::None,
            "—",
        );
        t.add(
            g,
            &format!("… through {EDITOR}"),
            "ms",
            &editor,
            2,
            Target::None,
            "—",
        );
        t.add(
            g,
            &format!("… added by {EDITOR} (paired runs)"),
            "ms",
            &added,
            2,
            Target::AtMost(if tool == "read" { 1.0 } else { 5.0 }),
            if tool == "read" {
                "≤ 1 ms"
            } else {
                "≤ 5 ms"
            },
        );
    }
}

/// Milliseconds per call, `runs` of them after one warm-up, in one host
/// whose client offers (`editor`) its files and terminal or not.
fn tool_call_ms(tool: &str, input: &Value, editor: bool, runs: usize) -> Res<Vec<f64>> {
    let dir = tmpdir("acp-editor");
    let cwd = dir.path().join("cwd");
    std::fs::create_dir_all(&cwd).map_err(|e| e.to_string())?;
    let text: String = (1..=200).map(|i| format!("line {i}\n")).collect();
    std::fs::write(cwd.join("a.txt"), text).map_err(|e| e.to_string())?;
    let caps = if editor {
        json!({"fs": {"readTextFile": true, "writeTextFile": true}, "terminal": true})
    } else {
        json!({})
    };
    let mut h = acp_host(dir.path(), &["--permission-mode", "allow-all"])?;
    request(
        &mut h,
        1,
        "initialize",
        json!({"protocolVersion": 1, "clientCapabilities": caps}),
    )?;
    let new = request(
        &mut h,
        2,
        "session/new",
        json!({"cwd": cwd, "mcpServers": []}),
    )?;
    let session = new["result"]["sessionId"]
        .as_str()
        .ok_or("no sessionId")?
        .to_owned();
    let prompt = format!("[[tool={tool} input={input}]]");
    let mut times = Vec::new();
    let mut editor = Editor::default();
    for i in 0..=runs {
        let id = 100 + i as u64;
        let params = json!({"sessionId": session, "prompt": [{"type": "text", "text": prompt}]});
        h.send(
            &json!({"jsonrpc": "2.0", "id": id, "method": "session/prompt", "params": params})
                .to_string(),
        )?;
        let ms = editor.serve_turn(&mut h, id)?;
        if i > 0 {
            times.push(ms);
        }
    }
    h.stdin.take();
    let _ = h.child.wait();
    Ok(times)
}

/// The harness as the editor: the terminals it runs.
#[derive(Default)]
struct Editor {
    terminals: Vec<Child>,
}

impl Editor {
    /// Reads the turn of prompt `id` to its answer, answering the agent's
    /// requests; returns the tool call's time in ms.
    fn serve_turn(&mut self, h: &mut Host, id: u64) -> Res<f64> {
        let deadline = mono() + SMALL_TURN_TIMEOUT;
        let (mut start, mut end) = (None, None);
        loop {
            let mut asked = None;
            let mut answered = false;
            h.read_lines(deadline, "the prompt's answer", |line, t| {
                if find(line, b"\"sessionUpdate\":\"tool_call\"").is_some() {
                    start = Some(t);
                } else if find(line, b"\"status\":\"completed\"").is_some() {
                    end = Some(t);
                } else if find(line, b"\"status\":\"failed\"").is_some() {
                    asked = Some(Err(String::from_utf8_lossy(line).into_owned()));
                    return true;
                }
                // The agent's requests: an id, then a method (its messages
                // have sorted keys; notifications start with "jsonrpc").
                if line.starts_with(b"{\"id\":") && find(line, b"\"method\":\"").is_some() {
                    asked = Some(serde_json::from_slice::<Value>(line).map_err(|e| e.to_string()));
                    return true;
                }
                answered = find(line, format!("\"id\":{id},").as_bytes()).is_some();
                answered
            })?;
            if answered {
                break;
            }
            if let Some(request) = asked {
                let request = request?;
                let result = self.answer(&request)?;
                h.send(
                    &json!({"jsonrpc": "2.0", "id": request["id"], "result": result}).to_string(),
                )?;
            }
        }
        match (start, end) {
            (Some(s), Some(e)) => Ok((e - s) * 1e3),
            _ => Err("the turn showed no completed tool call".into()),
        }
    }

    fn answer(&mut self, request: &Value) -> Res<Value> {
        let params = &request["params"];
        let terminal = |p: &Value| -> Res<usize> {
            p["terminalId"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| "bad terminalId".to_owned())
        };
        Ok(match request["method"].as_str().unwrap_or("") {
            "fs/read_text_file" => {
                let path = params["path"].as_str().ok_or("no path")?;
                let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
                let from = params["line"].as_u64().unwrap_or(1) as usize - 1;
                let limit = params["limit"].as_u64().map_or(usize::MAX, |l| l as usize);
                let content: String = text.split_inclusive('\n').skip(from).take(limit).collect();
                json!({"content": content})
            }
            "terminal/create" => {
                let args: Vec<&str> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let child = Command::new(params["command"].as_str().ok_or("no command")?)
                    .args(args)
                    .current_dir(params["cwd"].as_str().unwrap_or("."))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|e| e.to_string())?;
                self.terminals.push(child);
                json!({"terminalId": (self.terminals.len() - 1).to_string()})
            }
            "terminal/wait_for_exit" => {
                let child = &mut self.terminals[terminal(params)?];
                let status = child.wait().map_err(|e| e.to_string())?;
                json!({"exitCode": status.code(), "signal": null})
            }
            "terminal/output" => {
                let child = &mut self.terminals[terminal(params)?];
                let mut output = String::new();
                if let Some(out) = child.stdout.as_mut() {
                    out.read_to_string(&mut output).map_err(|e| e.to_string())?;
                }
                json!({"output": output, "truncated": false})
            }
            "terminal/release" | "terminal/kill" => json!({}),
            other => return Err(format!("unexpected request {other}")),
        })
    }
}

fn acp_host(dir: &Path, extra: &[&str]) -> Res<Host> {
    let mut args = data_dir_args(dir);
    args.extend(
        [
            "--acp",
            "--extension",
            &ext("echo"),
            "--model",
            "echo:echo:echo-1",
        ]
        .map(String::from),
    );
    args.extend(extra.iter().map(|s| s.to_string()));
    Host::spawn(&args, &[], dir, "acp-editor")
}

/// Sends a request and returns its parsed response.
fn request(h: &mut Host, id: u64, method: &str, params: Value) -> Res<Value> {
    h.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string())?;
    let mut got = Vec::new();
    h.read_lines(mono() + READY_TIMEOUT, method, |line, _| {
        let answered = find(line, format!("\"id\":{id},").as_bytes()).is_some()
            && find(line, b"\"method\"").is_none();
        if answered {
            got = line.to_vec();
        }
        answered
    })?;
    serde_json::from_slice(&got).map_err(|e| e.to_string())
}
