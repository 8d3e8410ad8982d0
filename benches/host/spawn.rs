//! Group 1 (`spawn`, `resume`): spawn → `ready` with an empty data dir
//! (1a), and with `--continue` of a 10,000-message session written here in
//! the SPEC §7.2 format (1b).

use std::fs;
use std::path::Path;

use serde_json::json;

use crate::clock::children_cpu;
use crate::driver::Host;
use crate::fixtures::{data_dir_args, tmpdir};
use crate::procfs;
use crate::table::{Table, Target};
use crate::Res;

pub fn bench_spawn(t: &mut Table, runs: usize) {
    let g = "1a";
    let mut v = Vec::new();
    let mut cpu = Vec::new();
    for i in 0..runs + 1 {
        let dir = tmpdir("spawn");
        let r = (|| -> Res<(f64, f64)> {
            let c0 = children_cpu();
            let mut h = Host::spawn(&data_dir_args(dir.path()), &[], dir.path(), "spawn")?;
            let (dt, ready) = h.wait_ready()?;
            if ready["message_count"] != 0 {
                return Err(format!(
                    "fresh ready has message_count {}",
                    ready["message_count"]
                ));
            }
            h.close(5.0)?;
            Ok((dt, children_cpu() - c0))
        })();
        match r {
            Ok((dt, c)) if i > 0 => {
                // run 0 only warms the page cache
                v.push(dt * 1e3);
                cpu.push(c * 1e3);
            }
            Ok(_) => {}
            Err(e) => return t.fail(g, "spawn → ready, empty data dir", &e),
        }
    }
    t.add(
        g,
        "spawn → `ready`, empty data dir (fresh process)",
        "ms",
        &v,
        2,
        Target::AtMost(5.0),
        "≤ 5 ms median",
    );
    t.add(
        g,
        "… host CPU for its whole life (start, `ready`, stdin EOF, exit; getrusage of children)",
        "ms",
        &cpu,
        2,
        Target::None,
        "—",
    );
}

pub fn words(seed: &mut u64, min_chars: usize) -> String {
    const W: &[&str] = &[
        "the",
        "function",
        "returns",
        "a",
        "list",
        "of",
        "files",
        "in",
        "directory",
        "and",
        "then",
        "we",
        "should",
        "check",
        "whether",
        "error",
        "handling",
        "is",
        "correct",
        "for",
        "this",
        "case",
        "please",
        "update",
        "tests",
        "so",
        "that",
        "they",
        "cover",
        "edge",
        "cases",
        "like",
        "empty",
        "input",
        "unicode",
        "paths",
        "ok",
        "I",
        "changed",
        "module",
        "to",
        "use",
        "async",
        "reader",
        "which",
        "avoids",
        "blocking",
        "runtime",
        "when",
        "stdout",
        "pipe",
        "is",
        "full",
        "configuration",
        "value",
        "parser",
        "struct",
        "field",
        "could",
        "you",
        "explain",
        "why",
    ];
    let mut s = String::new();
    while s.len() < min_chars {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let w = W[((*seed >> 33) as usize) % W.len()];
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(w);
        if (*seed >> 20).is_multiple_of(11) {
            s.push(if (*seed >> 8).is_multiple_of(3) {
                '?'
            } else {
                '.'
            });
        }
    }
    s.push('.');
    s
}

/// Writes a session file of `pairs` user/assistant pairs (SPEC §7.2).
pub fn write_session(data: &Path, id: &str, cwd: &Path, pairs: u64) -> Res<u64> {
    let dir = data.join("sessions");
    fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join(format!("{id}.jsonl"));
    let mut out = String::new();
    let header = json!({"type": "session", "version": 1, "id": id, "created_at": iso_ts(0),
                        "cwd": cwd.display().to_string(), "model": "openai/gpt-4o-mini"});
    out.push_str(&header.to_string());
    out.push('\n');
    let mut seed = 42u64;
    for i in 0..pairs {
        let q = words(&mut seed, 200);
        let a = words(&mut seed, 200);
        let user = json!({"type": "message", "ts": iso_ts(3 * i), "message": {"role": "user", "content": q}});
        let asst = json!({"type": "message", "ts": iso_ts(3 * i + 1), "message": {"role": "assistant",
                          "content": [{"type": "text", "text": a}], "stop_reason": "end_turn"}});
        let end = json!({"type": "turn_end", "ts": iso_ts(3 * i + 2), "prompt_id": format!("p{}", i + 1),
                         "stop_reason": "end_turn", "usage": {"input_tokens": 60 + i, "output_tokens": 55,
                         "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}});
        for l in [user, asst, end] {
            out.push_str(&l.to_string());
            out.push('\n');
        }
    }
    fs::write(&path, &out).map_err(|e| e.to_string())?;
    Ok(out.len() as u64)
}

pub fn bench_resume(t: &mut Table, runs: usize) {
    let g = "1b";
    let dir = tmpdir("resume");
    let id = "bench-resume-10k";
    let size = match write_session(&dir.path().join("data"), id, &dir.path().join("cwd"), 5000) {
        Ok(s) => s,
        Err(e) => return t.fail(g, "resume", &e),
    };
    let mut args = data_dir_args(dir.path());
    args.extend(["--continue".into(), id.into()]);
    let mut v = Vec::new();
    let mut hwm = Vec::new();
    for i in 0..runs + 1 {
        let r = (|| -> Res<(f64, f64)> {
            let mut h = Host::spawn(&args, &[], dir.path(), "resume")?;
            let (dt, ready) = h.wait_ready()?;
            if ready["message_count"] != 10000 {
                return Err(format!(
                    "ready.message_count = {} (want 10000)",
                    ready["message_count"]
                ));
            }
            if ready["session_id"] != id {
                return Err(format!("ready.session_id = {}", ready["session_id"]));
            }
            let (_, m) = procfs::rss_and_peak_mib(h.pid)?;
            h.close(5.0)?;
            Ok((dt, m))
        })();
        match r {
            Ok((dt, m)) if i > 0 => {
                v.push(dt * 1e3);
                hwm.push(m);
            }
            Ok(_) => {}
            Err(e) => return t.fail(g, "resume 10,000 messages", &e),
        }
    }
    t.add(
        g,
        &format!("spawn → `ready`, `--continue` of 10,000 messages ({:.1} MB file; ready.message_count checked = 10000)", size as f64 / 1e6),
        "ms",
        &v,
        1,
        Target::AtMost(100.0),
        "≤ 100 ms median",
    );
    t.add(
        g,
        "… host VmHWM at `ready` after loading it",
        "MiB",
        &hwm,
        1,
        Target::None,
        "—",
    );
}

pub fn iso_ts(i: u64) -> String {
    format!(
        "2026-11-21T05:{:02}:{:02}.{:03}Z",
        (i / 60) % 60,
        i % 60,
        i % 1000
    )
}
