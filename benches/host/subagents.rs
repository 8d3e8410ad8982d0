//! Group 7 (`subagents`): what a `task` call costs the host over the
//! child's own model time, the memory a live child session holds, and 8
//! children streaming at once.

use serde_json::{json, Value};

use crate::clock::mono;
use crate::driver::{prompt, Host};
use crate::fixtures::{data_dir_args, ext, tmpdir, Fake};
use crate::frames::{find, starts};
use crate::procfs;
use crate::table::{Table, Target};
use crate::{Res, BIG_TURN_TIMEOUT, BIN, SMALL_TURN_TIMEOUT};

/// Children in the memory and streaming rows.
const CHILDREN: usize = 8;
/// Deltas each streaming child sends.
const CHILD_DELTAS: u64 = 20_000;

/// A parent prompt calling `task` once per child prompt.
fn delegate(prompts: &[String]) -> String {
    delegate_to("general", prompts)
}

/// The same, for the agent `agent`.
fn delegate_to(agent: &str, prompts: &[String]) -> String {
    let inputs: Vec<Value> = prompts
        .iter()
        .map(|p| json!({"description": "bench", "prompt": p, "agent": agent}))
        .collect();
    let tools = vec!["task"; prompts.len()].join(",");
    let input = match inputs.as_slice() {
        [one] => one.clone(),
        all => Value::from(all.to_vec()),
    };
    format!("go [[tool={tools} input={input}]]")
}

/// A host with `[subagents]` opened up for `CHILDREN` at once, and this
/// binary over ACP as the external agent `self` (echo extension).
fn spawn(dir: &std::path::Path, extra: &[String], env: &[(&str, String)]) -> Res<Host> {
    let config = dir.join("config.toml");
    let child_data = dir.join("child-data").display().to_string();
    let echo = ext("echo");
    let body = format!(
        "[subagents]\nmax_parallel = {CHILDREN}\nmax_sessions = {CHILDREN}\n\n\
         [agents.self]\ncommand = {BIN:?}\ndescription = \"rpc over ACP\"\n\
         args = [\"--acp\", \"--extension\", {echo:?}, \"--model\", \"echo:echo:echo-1\", \"--data-dir\", {child_data:?}]\n"
    );
    std::fs::write(&config, body).map_err(|e| e.to_string())?;
    let mut args = data_dir_args(dir);
    args.extend(["--permission-mode".into(), "allow-all".into()]);
    args.extend(["--config".into(), config.display().to_string()]);
    args.extend(extra.iter().cloned());
    let mut h = Host::spawn(&args, env, dir, "subagents")?;
    h.wait_ready()?;
    Ok(h)
}

/// Seconds from the parent's `task` call start to its end, read off the
/// wire, and whether the result was a success.
fn task_span(h: &mut Host, message: &str, timeout: f64) -> Res<f64> {
    let cmd = json!({"type": "prompt", "id": "t", "message": message}).to_string();
    let (mut start, mut end) = (None, None);
    h.send(&cmd)?;
    h.read_lines(mono() + timeout, "the task turn", |line, t| {
        let parent = find(line, b"parent_tool_call_id").is_none();
        if parent && starts(line, r#"{"type":"tool_execution_start""#) && start.is_none() {
            start = Some(t);
        }
        if parent && starts(line, r#"{"type":"tool_execution_end""#) {
            end = Some((t, find(line, br#""is_error":false"#).is_some()));
        }
        starts(line, r#"{"type":"response""#)
    })?;
    match (start, end) {
        (Some(s), Some((e, true))) => Ok(e - s),
        (_, Some((_, false))) => Err("the task call failed".into()),
        _ => Err("no task call seen".into()),
    }
}

pub fn bench_subagents(t: &mut Table, runs: usize) {
    overhead(t, runs);
    memory(t, runs);
    streaming(t, runs);
    abort(t, runs);
}

/// 7d: `abort` while two children stream: abort written → the parent's
/// `agent_end` read (both children stopped: their `task` calls ended).
fn abort(t: &mut Table, runs: usize) {
    let g = "7d";
    let mut took = Vec::new();
    let dir = tmpdir("subagents");
    let r = (|| -> Res<()> {
        let echo = ["--extension".into(), ext("echo")];
        let mut h = spawn(dir.path(), &echo, &[])?;
        prompt(&mut h, "warm [[n=1]]", SMALL_TURN_TIMEOUT)?;
        let slow = "[[n=100000 delay_ms=5]]".to_owned();
        for _ in 0..runs {
            let cmd = json!({"type": "prompt", "id": "a", "message": delegate(&[slow.clone(), slow.clone()])});
            h.send(&cmd.to_string())?;
            h.read_lines(mono() + SMALL_TURN_TIMEOUT, "a child's delta", |line, _| {
                starts(line, r#"{"type":"message_update""#)
                    && find(line, b"parent_tool_call_id").is_some()
            })?;
            let sent = mono();
            h.send(&json!({"type": "abort", "id": "x"}).to_string())?;
            let (mut ended, mut at) = (0, None);
            h.read_lines(mono() + SMALL_TURN_TIMEOUT, "agent_end", |line, t| {
                let parent = find(line, b"parent_tool_call_id").is_none();
                if parent && starts(line, r#"{"type":"tool_execution_end""#) {
                    ended += 1;
                }
                if starts(line, r#"{"type":"agent_end""#) {
                    at = Some(t);
                }
                starts(line, r#"{"type":"response""#)
                    && find(line, br#""command":"abort""#).is_some()
            })?;
            if ended != 2 {
                return Err(format!("{ended} of 2 task calls ended"));
            }
            took.push((at.ok_or("no agent_end")? - sent) * 1e3);
        }
        h.close(10.0)
    })();
    if let Err(e) = r {
        return t.fail(g, "abort with two running children", &e);
    }
    t.add(
        g,
        "abort with two children streaming → the parent's `agent_end` (both task calls ended)",
        "ms",
        &took,
        1,
        Target::AtMost(200.0),
        "≤ 200 ms",
    );
}

/// 7a: a `task` call of a one-delta child, in-process and through this
/// binary over ACP (`[agents.self]`), against the same prompt as a plain
/// turn of the parent.
fn overhead(t: &mut Table, runs: usize) {
    let g = "7a";
    let hi = ["hi [[n=1]]".to_owned()];
    let (mut plain, mut inproc, mut external) = (Vec::new(), Vec::new(), Vec::new());
    let dir = tmpdir("subagents");
    let r = (|| -> Res<()> {
        let echo = ["--extension".into(), ext("echo")];
        let mut h = spawn(dir.path(), &echo, &[])?;
        prompt(&mut h, "warm [[n=1]]", SMALL_TURN_TIMEOUT)?;
        task_span(&mut h, &delegate(&hi), SMALL_TURN_TIMEOUT)?;
        // The external agent's process starts on its first call.
        task_span(&mut h, &delegate_to("self", &hi), SMALL_TURN_TIMEOUT)?;
        for _ in 0..runs {
            let own = prompt(&mut h, &hi[0], SMALL_TURN_TIMEOUT)?.end_s()?;
            plain.push(own * 1e3);
            inproc.push(task_span(&mut h, &delegate(&hi), SMALL_TURN_TIMEOUT)? * 1e3);
            let span = task_span(&mut h, &delegate_to("self", &hi), SMALL_TURN_TIMEOUT)?;
            external.push(span * 1e3);
        }
        h.close(10.0)
    })();
    if let Err(e) = r {
        return t.fail(g, "task call overhead", &e);
    }
    let over =
        |spans: &[f64]| -> Vec<f64> { spans.iter().zip(&plain).map(|(s, p)| s - p).collect() };
    let rows = [
        (
            "the same prompt as a plain turn: prompt → `agent_end`",
            plain.clone(),
            Target::None,
            "—",
        ),
        (
            "`task` call, in-process child: call start → end",
            inproc.clone(),
            Target::None,
            "—",
        ),
        (
            "… added over the plain turn (a new session, its host, reading its answer)",
            over(&inproc),
            Target::AtMost(5.0),
            "≤ 5 ms",
        ),
        (
            "`task` call, external `rpc --acp` (warm process, a new ACP session): call start → end",
            external.clone(),
            Target::None,
            "—",
        ),
        (
            "… added over the plain turn (ACP round trips, the child's own session)",
            over(&external),
            Target::AtMost(20.0),
            "≤ 20 ms",
        ),
    ];
    for (what, values, target, said) in rows {
        t.add(g, what, "ms", &values, 2, target, said);
    }
}

/// 7b: the host's RSS with `CHILDREN` idle child sessions open, per child.
fn memory(t: &mut Table, runs: usize) {
    let g = "7b";
    let mut per_child = Vec::new();
    for _ in 0..runs {
        let dir = tmpdir("subagents");
        let r = (|| -> Res<f64> {
            let echo = ["--extension".into(), ext("echo")];
            let mut h = spawn(dir.path(), &echo, &[])?;
            prompt(&mut h, "warm [[n=1]]", SMALL_TURN_TIMEOUT)?;
            std::thread::sleep(std::time::Duration::from_millis(100));
            let (before, _) = procfs::rss_and_peak_mib(h.pid)?;
            let prompts: Vec<String> = (0..CHILDREN)
                .map(|i| format!("child {i} [[n=1]]"))
                .collect();
            prompt(&mut h, &delegate(&prompts), SMALL_TURN_TIMEOUT)?;
            std::thread::sleep(std::time::Duration::from_millis(100));
            let (after, _) = procfs::rss_and_peak_mib(h.pid)?;
            h.close(10.0)?;
            Ok((after - before) / CHILDREN as f64)
        })();
        match r {
            Ok(m) => per_child.push(m * 1024.0),
            Err(e) => return t.fail(g, "memory per child", &e),
        }
    }
    t.add(
        g,
        &format!("host VmRSS added per open child session ({CHILDREN} idle children)"),
        "KiB",
        &per_child,
        0,
        Target::AtMost(1024.0),
        "≤ 1 MiB",
    );
}

/// 7c: `CHILDREN` children each streaming `CHILD_DELTAS` deltas at once
/// from the fake HTTP server, through one parent.
fn streaming(t: &mut Table, runs: usize) {
    let g = "7c";
    let (mut rate, mut cpu, mut hwm) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let dir = tmpdir("subagents");
        let r = (|| -> Res<(f64, f64, f64)> {
            let fake = Fake::start()?;
            let model = ["--model".into(), "openai/gpt-4o-mini".into()];
            let mut h = spawn(dir.path(), &model, &fake.env())?;
            prompt(&mut h, "warm [[n=1]]", SMALL_TURN_TIMEOUT)?;
            let prompts: Vec<String> = (0..CHILDREN)
                .map(|_| format!("[[n={CHILD_DELTAS}]]"))
                .collect();
            let cpu0 = procfs::cpu_seconds(h.pid)?;
            let sent = mono();
            let cmd =
                json!({"type": "prompt", "id": "s", "message": delegate(&prompts)}).to_string();
            h.send(&cmd)?;
            let mut nested = 0u64;
            h.read_lines(
                mono() + BIG_TURN_TIMEOUT,
                "8 streaming children",
                |line, _| {
                    if starts(line, r#"{"type":"message_update""#)
                        && find(line, b"parent_tool_call_id").is_some()
                    {
                        nested += 1;
                    }
                    starts(line, r#"{"type":"response""#)
                },
            )?;
            let took = mono() - sent;
            let used = procfs::cpu_seconds(h.pid)? - cpu0;
            let (_, peak) = procfs::rss_and_peak_mib(h.pid)?;
            h.close(10.0)?;
            let want = CHILDREN as u64 * CHILD_DELTAS;
            if nested < want {
                return Err(format!("{nested} of {want} child deltas arrived"));
            }
            Ok((want as f64 / took, used, peak))
        })();
        match r {
            Ok((r, c, p)) => {
                rate.push(r);
                cpu.push(c);
                hwm.push(p);
            }
            Err(e) => return t.fail(g, "8 children streaming", &e),
        }
    }
    let n = CHILDREN as u64 * CHILD_DELTAS;
    t.add(g, &format!("{CHILDREN} children streaming at once ({n} deltas, OpenAI HTTP fake): deltas/s to the client"), "/s", &rate, 0, Target::AtLeast(50_000.0), "≥ 50,000/s");
    t.add(g, "… host CPU", "s", &cpu, 2, Target::None, "—");
    t.add(
        g,
        "… host peak RSS",
        "MiB",
        &hwm,
        1,
        Target::AtMost(32.0),
        "≤ 32 MB",
    );
}
