//! Group 6 (`abort`): how long an `abort` takes, from the line written to
//! the host's stdin to the turn's `agent_end` read from its stdout, for
//! each kind of work a turn can be stopped in (SPEC §4 "abort", §8.4, §9,
//! §10): a provider extension that honours `$/cancel_request`, one that
//! ignores it (killed after the 100 ms grace), a running `bash` command (its
//! process group is killed) and a running MCP tool call (cancelled, not
//! waited for). The same host serves every run of a row.

use std::path::Path;

use serde_json::{json, Value};

use crate::clock::mono;
use crate::driver::Host;
use crate::fixtures::{data_dir_args, ext, tmpdir};
use crate::frames::{find, starts};
use crate::procfs;
use crate::table::{Table, Target};
use crate::{Res, READY_TIMEOUT, ROOT, SMALL_TURN_TIMEOUT};

/// SPEC §4: "The turn ends within 200 ms even if the provider ignores
/// cancellation"; ACP's `session/cancel` row repeats it for tools.
const TURN_END_MS: f64 = 200.0;
/// SPEC §4 / §8.4: a provider not finished 100 ms after the cancel is
/// killed, so one that honours it finishes within that.
const GRACE_MS: f64 = 100.0;

pub fn bench_abort(t: &mut Table, runs: usize) {
    cooperative(t, runs);
    ignoring(t, runs);
    bash(t, runs);
    mcp(t, runs);
}

/// Sends `message` as a prompt, waits for a line `trigger` accepts, runs
/// `before_abort`, then aborts. Returns (abort written, `agent_end` read)
/// in seconds, after reading on to the abort's own answer.
fn abort_turn(
    h: &mut Host,
    n: usize,
    message: &str,
    trigger: &dyn Fn(&[u8]) -> bool,
    before_abort: &mut dyn FnMut(&mut Host) -> Res<()>,
) -> Res<(f64, f64)> {
    let prompt = json!({"type": "prompt", "id": format!("p{n}"), "message": message});
    h.send(&prompt.to_string())?;
    let mut failed = None;
    h.read_lines(mono() + SMALL_TURN_TIMEOUT, "the work to abort", |l, _| {
        if starts(l, r#"{"type":"error""#) || starts(l, r#"{"type":"agent_end""#) {
            failed = Some(String::from_utf8_lossy(l).into_owned());
            return true;
        }
        trigger(l)
    })?;
    if let Some(line) = failed {
        return Err(format!("the turn ended before the abort: {line}"));
    }
    before_abort(h)?;
    let t_abort = mono();
    h.send(&json!({"type": "abort", "id": format!("a{n}")}).to_string())?;
    let mut end = None;
    h.read_lines(mono() + SMALL_TURN_TIMEOUT, "agent_end", |l, t| {
        if starts(l, r#"{"type":"agent_end""#) {
            end = Some((t, find(l, br#""stop_reason":"aborted""#).is_some()));
            return true;
        }
        false
    })?;
    let (t_end, aborted) = end.expect("set before returning");
    if !aborted {
        return Err("agent_end without stop_reason aborted".into());
    }
    let needle = format!(r#""id":"a{n}""#);
    h.read_lines(mono() + SMALL_TURN_TIMEOUT, "the abort's answer", |l, _| {
        starts(l, r#"{"type":"response""#) && find(l, needle.as_bytes()).is_some()
    })?;
    Ok((t_abort, t_end))
}

/// Live descendants of `host` whose command line contains `needle`.
fn children_named(host: u32, needle: &str) -> Vec<u32> {
    procfs::descendants(host)
        .into_iter()
        .filter(|&p| procfs::cmdline(p).is_some_and(|c| c.contains(needle)))
        .collect()
}

/// Polls until none of `pids` lives; seconds when they were all gone.
fn gone_at(pids: &[u32]) -> Res<f64> {
    let left = procfs::wait_gone(pids, std::time::Duration::from_secs(5));
    if left.is_empty() {
        Ok(mono())
    } else {
        Err(format!("still alive 5 s after the abort: {left:?}"))
    }
}

fn spawn(dir: &Path, tag: &str, extra: &[&str]) -> Res<Host> {
    let mut args = data_dir_args(dir);
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let mut h = Host::spawn(&args, &[], dir, tag)?;
    h.wait_ready()?;
    Ok(h)
}

fn ms(from: f64, to: f64) -> f64 {
    (to - from) * 1e3
}

/// 6a: the echo fixture streaming slowly, honouring `$/cancel_request`. The
/// extension's pid must not change: a killed one would be measuring 6b.
fn cooperative(t: &mut Table, runs: usize) {
    let g = "6a";
    let label = "abort → `agent_end`: extension honouring `$/cancel_request`";
    let dir = tmpdir("abort-coop");
    let r = (|| -> Res<Vec<f64>> {
        let echo = ext("echo");
        let mut h = spawn(
            dir.path(),
            "abort-coop",
            &["--extension", &echo, "--model", "echo:echo:echo-1"],
        )?;
        let mut out = Vec::new();
        let mut pid = None;
        for n in 0..runs {
            let (a, e) = abort_turn(
                &mut h,
                n,
                "[[n=100000 delay_ms=5]]",
                &|l| starts(l, r#"{"type":"message_update""#),
                &mut |_| Ok(()),
            )?;
            out.push(ms(a, e));
            let now = children_named(h.pid, "fakeprov.py");
            match (&pid, now.as_slice()) {
                (None, [p]) => pid = Some(*p),
                (Some(was), [p]) if was == p => {}
                _ => return Err(format!("the extension was replaced: {pid:?} → {now:?}")),
            }
        }
        h.close(5.0)?;
        Ok(out)
    })();
    match r {
        Ok(v) => t.add(
            g,
            label,
            "ms",
            &v,
            1,
            Target::AtMost(GRACE_MS),
            "≤ 100 ms (within the grace)",
        ),
        Err(e) => t.fail(g, label, &e),
    }
}

/// 6b: the `hang` fixture, which ignores `$/cancel_request` and SIGTERM: the
/// turn ends when the grace runs out and the process is killed (and is
/// respawned by the next prompt).
fn ignoring(t: &mut Table, runs: usize) {
    let g = "6b";
    let label = "abort → `agent_end`: extension ignoring the cancel";
    let dir = tmpdir("abort-hang");
    let r = (|| -> Res<(Vec<f64>, Vec<f64>)> {
        let hang = ext("hang");
        let mut h = spawn(
            dir.path(),
            "abort-hang",
            &["--extension", &hang, "--model", "hang:hang:hang-1"],
        )?;
        let (mut end, mut gone) = (Vec::new(), Vec::new());
        for n in 0..runs {
            let mut procs = Vec::new();
            let (a, e) = abort_turn(
                &mut h,
                n,
                "anything",
                &|l| starts(l, r#"{"type":"message_update""#),
                &mut |h| {
                    procs = children_named(h.pid, "fakeprov.py");
                    if procs.is_empty() {
                        return Err("no hang fixture under the host".into());
                    }
                    Ok(())
                },
            )?;
            end.push(ms(a, e));
            gone.push(ms(a, gone_at(&procs)?));
        }
        h.close(5.0)?;
        Ok((end, gone))
    })();
    match r {
        Ok((end, gone)) => {
            t.add(
                g,
                label,
                "ms",
                &end,
                1,
                Target::AtMost(TURN_END_MS),
                "≤ 200 ms",
            );
            t.add(
                g,
                "… abort → its process gone (`/proc`)",
                "ms",
                &gone,
                1,
                Target::AtMost(TURN_END_MS),
                "killed after 100 ms; ≤ 200 ms",
            );
        }
        Err(e) => t.fail(g, label, &e),
    }
}

/// 6c: `bash` running `sleep 30` (asked for by the echo fixture's tool
/// directive, allowed by `--permission-mode allow-all`): its process group
/// is killed.
fn bash(t: &mut Table, runs: usize) {
    let g = "6c";
    let label = "abort → `agent_end`: a running `bash` command";
    let dir = tmpdir("abort-bash");
    let r = (|| -> Res<(Vec<f64>, Vec<f64>)> {
        let echo = ext("echo");
        let mut h = spawn(
            dir.path(),
            "abort-bash",
            &[
                "--extension",
                &echo,
                "--model",
                "echo:echo:echo-1",
                "--permission-mode",
                "allow-all",
            ],
        )?;
        let (mut end, mut gone) = (Vec::new(), Vec::new());
        for n in 0..runs {
            let mut procs = Vec::new();
            let (a, e) = abort_turn(
                &mut h,
                n,
                r#"[[tool=bash input={"command": "sleep 30"}]]"#,
                &|l| starts(l, r#"{"type":"tool_execution_start""#),
                &mut |h| {
                    // The command's process, once the shell has started it.
                    let until = mono() + 5.0;
                    loop {
                        procs = children_named(h.pid, "sleep 30");
                        if !procs.is_empty() {
                            return Ok(());
                        }
                        if mono() > until {
                            return Err("`sleep 30` never showed up".into());
                        }
                        std::thread::sleep(std::time::Duration::from_millis(2));
                    }
                },
            )?;
            end.push(ms(a, e));
            gone.push(ms(a, gone_at(&procs)?));
        }
        h.close(5.0)?;
        Ok((end, gone))
    })();
    match r {
        Ok((end, gone)) => {
            t.add(
                g,
                label,
                "ms",
                &end,
                1,
                Target::AtMost(TURN_END_MS),
                "≤ 200 ms",
            );
            t.add(
                g,
                "… abort → its processes gone (`/proc`)",
                "ms",
                &gone,
                1,
                Target::AtMost(TURN_END_MS),
                "≤ 200 ms",
            );
        }
        Err(e) => t.fail(g, label, &e),
    }
}

/// The Python with the `mcp` SDK that `cargo test` installs (tests/common/
/// python_env.rs) under cargo's scratch dir.
fn mcp_python() -> Res<String> {
    let python = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python/bin/python");
    if !python.exists() {
        return Err(format!(
            "{} is missing: run `cargo test --test mcp_servers` once (it installs the MCP SDK)",
            python.display()
        ));
    }
    Ok(python.display().to_string())
}

/// 6d: the fixture MCP server's `slow` tool (progress every 0.1 s for 30 s),
/// aborted after its first progress update: the call is cancelled
/// (`notifications/cancelled`) and not waited for.
fn mcp(t: &mut Table, runs: usize) {
    let g = "6d";
    let label = "abort → `agent_end`: a running MCP tool call";
    let dir = tmpdir("abort-mcp");
    let r = (|| -> Res<Vec<f64>> {
        let config = dir.path().join("mcp.json");
        let servers = json!({"mcpServers": {"fx": {
            "command": mcp_python()?,
            "args": [format!("{ROOT}/fixtures/mcp/server.py")],
        }}});
        std::fs::write(&config, servers.to_string()).map_err(|e| e.to_string())?;
        let echo = ext("echo");
        let config = config.display().to_string();
        let mut h = spawn(
            dir.path(),
            "abort-mcp",
            &[
                "--extension",
                &echo,
                "--model",
                "echo:echo:echo-1",
                "--permission-mode",
                "allow-all",
                "--mcp-config",
                &config,
            ],
        )?;
        let mut status: Option<Value> = None;
        h.read_lines(mono() + READY_TIMEOUT * 3.0, "the MCP server", |l, _| {
            if starts(l, r#"{"type":"mcp_server_status""#) {
                status = serde_json::from_slice(l).ok();
                return true;
            }
            false
        })?;
        let status = status.unwrap_or_default();
        if status["status"] != "ready" {
            return Err(format!("the MCP server did not start: {status}"));
        }
        let mut out = Vec::new();
        for n in 0..runs {
            let (a, e) = abort_turn(
                &mut h,
                n,
                r#"[[tool=mcp__fx__slow input={"seconds": 30}]]"#,
                &|l| starts(l, r#"{"type":"tool_execution_update""#),
                &mut |_| Ok(()),
            )?;
            out.push(ms(a, e));
        }
        h.close(5.0)?;
        Ok(out)
    })();
    match r {
        Ok(v) => t.add(
            g,
            label,
            "ms",
            &v,
            1,
            Target::AtMost(TURN_END_MS),
            "≤ 200 ms",
        ),
        Err(e) => t.fail(g, label, &e),
    }
}
