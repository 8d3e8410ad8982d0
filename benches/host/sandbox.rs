//! Group 7 (`sandbox`): what the kernel sandbox adds to a bash call (SPEC
//! §10.1). Two hosts, `--sandbox workspace-write` and `--sandbox off`, each
//! with the echo extension in allow-all; per run each calls bash `true`
//! once (interleaved, so load hits both alike), timed from the call's
//! `tool_execution_start` to its `tool_execution_end` as read. The added
//! row is the difference run by run. In workspace-write every call builds
//! the Landlock ruleset (opening each path of `/` minus `~/.ssh` and the
//! like), forks into a mount namespace for a repository's `.git` (the cwd
//! here is a git repository, as it usually is) and installs the seccomp
//! filter.

use serde_json::json;

use crate::clock::mono;
use crate::driver::Host;
use crate::fixtures::{data_dir_args, ext, tmpdir};
use crate::frames::starts;
use crate::table::{Table, Target};
use crate::{Res, SMALL_TURN_TIMEOUT};

/// Calls per run: one call is well under a millisecond's noise on a busy
/// machine, so runs pool a few (n = runs × this).
const CALLS_PER_RUN: usize = 5;

pub fn bench_sandbox(t: &mut Table, runs: usize) {
    let g = "8";
    let measured = (|| -> Res<(Vec<f64>, Vec<f64>)> {
        let sandboxed = tmpdir("sandbox-ww");
        let open = tmpdir("sandbox-off");
        let mut ww = host(sandboxed.path(), "workspace-write")?;
        let mut off = host(open.path(), "off")?;
        // One unrecorded call each: the extension's start, the page cache.
        bash_ms(&mut ww, 0)?;
        bash_ms(&mut off, 0)?;
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for i in 1..=runs * CALLS_PER_RUN {
            a.push(bash_ms(&mut ww, i)?);
            b.push(bash_ms(&mut off, i)?);
        }
        ww.close(2.0)?;
        off.close(2.0)?;
        Ok((a, b))
    })();
    let (ww, off) = match measured {
        Ok(m) => m,
        Err(e) => return t.fail(g, "bash with the sandbox", &e),
    };
    let added: Vec<f64> = ww.iter().zip(&off).map(|(w, o)| w - o).collect();
    t.add(
        g,
        "bash `true`, `--sandbox workspace-write`: tool start → end",
        "ms",
        &ww,
        2,
        Target::None,
        "—",
    );
    t.add(g, "… `--sandbox off`", "ms", &off, 2, Target::None, "—");
    t.add(
        g,
        "… added by the sandbox (paired calls)",
        "ms",
        &added,
        2,
        Target::AtMost(2.0),
        "≤ 2 ms",
    );
}

fn host(dir: &std::path::Path, mode: &str) -> Res<Host> {
    let mut args = data_dir_args(dir);
    for a in [
        "--extension",
        &ext("echo"),
        "--model",
        "echo:echo:echo-1",
        "--permission-mode",
        "allow-all",
        "--sandbox",
        mode,
    ] {
        args.push(a.to_owned());
    }
    // A repository in the cwd, so the `.git` mounts are part of the cost.
    std::fs::create_dir_all(dir.join("cwd/.git/hooks")).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("cwd/.git/config"), "[core]\n").map_err(|e| e.to_string())?;
    let mut h = Host::spawn(&args, &[], dir, mode)?;
    let (_, ready) = h.wait_ready()?;
    if ready["sandbox"]["mode"] != mode {
        return Err(format!("ready says sandbox {}", ready["sandbox"]));
    }
    Ok(h)
}

/// One prompt calling bash `true`; the call's time in ms.
fn bash_ms(h: &mut Host, n: usize) -> Res<f64> {
    let input = json!({"command": "true"});
    let message = format!("[[tool=bash input={input}]]");
    h.send(&json!({"type": "prompt", "id": format!("b{n}"), "message": message}).to_string())?;
    let (mut start, mut end, mut failed) = (None, None, None);
    h.read_lines(mono() + SMALL_TURN_TIMEOUT, "the bash call", |l, t| {
        if starts(l, r#"{"type":"tool_execution_start""#) {
            start = Some(t);
        } else if starts(l, r#"{"type":"tool_execution_end""#) {
            end = Some(t);
            if crate::frames::find(l, br#""is_error":true"#).is_some() {
                failed = Some(String::from_utf8_lossy(l).into_owned());
            }
        } else if starts(l, r#"{"type":"error""#) {
            failed = Some(String::from_utf8_lossy(l).into_owned());
            return true;
        }
        starts(l, r#"{"type":"response""#)
    })?;
    if let Some(line) = failed {
        return Err(format!("the bash call failed: {line}"));
    }
    match (start, end) {
        (Some(s), Some(e)) => Ok((e - s) * 1e3),
        _ => Err("no tool_execution_start / _end".into()),
    }
}
