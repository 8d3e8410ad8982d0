//! Group `acp`: one 200,000-delta reply from the flood extension over
//! `rpc --acp`: rate, completeness, host CPU and peak memory. The same
//! reply as row 3a, through the ACP front end (typed frames mapped to
//! `agent_message_chunk` notifications), so the two rows show what the
//! ACP mapping costs over the native wire.

use serde_json::json;

use crate::clock::mono;
use crate::driver::Host;
use crate::fixtures::{data_dir_args, ext, tmpdir};
use crate::frames::find;
use crate::procfs;
use crate::table::{fmt_num, Table, Target};
use crate::{Res, BIG_TURN_TIMEOUT, READY_TIMEOUT, SMALL_TURN_TIMEOUT};

const N: u64 = 200_000;

struct AcpRun {
    rate: f64,
    host_cpu: f64,
    hwm: f64,
    chunks: u64,
}

pub fn bench_acp_flood(t: &mut Table, runs: usize) {
    let mut done = Vec::new();
    for i in 0..runs {
        match one_run(i) {
            Ok(run) => done.push(run),
            Err(e) => return t.fail("acp", "ACP flood", &e),
        }
    }
    let col = |f: fn(&AcpRun) -> f64| done.iter().map(f).collect::<Vec<_>>();
    let label = format!(
        "ACP flood extension: chunks/s (N / prompt→result), N = {}",
        fmt_num(N as f64, 0)
    );
    t.add(
        "acp",
        &label,
        "/s",
        &col(|r| r.rate),
        0,
        Target::AtLeast(250_000.0),
        "≥ 250,000/s",
    );
    let all = done.iter().filter(|r| r.chunks == N).count();
    t.add_text(
        "acp",
        "… all N `agent_message_chunk`s arrived before the result",
        format!("{all}/{}", done.len()),
        "all",
        Some(all == done.len()),
    );
    t.add(
        "acp",
        "… host CPU s (`rpc` only)",
        "s",
        &col(|r| r.host_cpu),
        2,
        Target::AtMost(0.5),
        "≤ 0.5 s",
    );
    t.add(
        "acp",
        "… host peak RSS (VmHWM)",
        "MiB",
        &col(|r| r.hwm),
        1,
        Target::AtMost(16.0),
        "≤ 16 MB",
    );
}

fn one_run(i: usize) -> Res<AcpRun> {
    let dir = tmpdir("acp");
    let mut args = data_dir_args(dir.path());
    args.extend(
        [
            "--acp",
            "--extension",
            &ext("flood"),
            "--model",
            "flood:flood:flood-1",
        ]
        .map(String::from),
    );
    let mut h = Host::spawn(&args, &[], dir.path(), &format!("acp{i}"))?;
    request(
        &mut h,
        1,
        "initialize",
        json!({"protocolVersion": 1, "clientCapabilities": {}}),
        READY_TIMEOUT,
    )?;
    let cwd = dir.path().join("cwd").display().to_string();
    let new = request(
        &mut h,
        2,
        "session/new",
        json!({"cwd": cwd, "mcpServers": []}),
        READY_TIMEOUT,
    )?;
    let session: serde_json::Value = serde_json::from_slice(&new).map_err(|e| e.to_string())?;
    let id = session["result"]["sessionId"]
        .as_str()
        .ok_or("no sessionId")?
        .to_owned();
    prompt(&mut h, 3, &id, 10, SMALL_TURN_TIMEOUT)?;
    let cpu0 = procfs::cpu_seconds(h.pid)?;
    let t0 = mono();
    let chunks = prompt(&mut h, 4, &id, N, BIG_TURN_TIMEOUT)?;
    let rate = N as f64 / (mono() - t0);
    let cpu1 = procfs::cpu_seconds(h.pid)?;
    let (_, hwm) = procfs::rss_and_peak_mib(h.pid)?;
    h.stdin.take();
    let _ = h.child.wait();
    Ok(AcpRun {
        rate,
        host_cpu: cpu1 - cpu0,
        hwm,
        chunks,
    })
}

/// Sends a request; returns its response line.
fn request(
    h: &mut Host,
    id: u64,
    method: &str,
    params: serde_json::Value,
    timeout: f64,
) -> Res<Vec<u8>> {
    h.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string())?;
    let mut got = Vec::new();
    h.read_lines(mono() + timeout, method, |line, _| {
        let answered = answers(line, id);
        if answered {
            got = line.to_vec();
        }
        answered
    })?;
    Ok(got)
}

/// Prompts `[[n=N]]`; returns the chunks that arrived before the result.
fn prompt(h: &mut Host, id: u64, session: &str, n: u64, timeout: f64) -> Res<u64> {
    let params =
        json!({"sessionId": session, "prompt": [{"type": "text", "text": format!("[[n={n}]]")}]});
    h.send(
        &json!({"jsonrpc": "2.0", "id": id, "method": "session/prompt", "params": params})
            .to_string(),
    )?;
    let mut chunks = 0;
    h.read_lines(mono() + timeout, "the prompt's result", |line, _| {
        if find(line, b"\"agent_message_chunk\"").is_some() {
            chunks += 1;
            return false;
        }
        answers(line, id)
    })?;
    Ok(chunks)
}

/// Whether `line` is the response to our request `id`: it names the id and
/// no method (the agent's own requests and notifications carry one; its
/// keys come in any order).
fn answers(line: &[u8], id: u64) -> bool {
    find(line, format!("\"id\":{id},").as_bytes()).is_some() && find(line, b"\"method\"").is_none()
}
