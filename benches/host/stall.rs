//! Group 5 (`stall`): a client that stops reading stdout for 5 s in the
//! middle of a 1,000,000-delta reply: the host's memory stays bounded and
//! every character still arrives.

use std::time::Duration;

use serde_json::json;

use crate::clock::mono;
use crate::driver::{prompt, Host, Turn};
use crate::fixtures::{data_dir_args, ext, tmpdir};
use crate::procfs;
use crate::table::{Table, Target};
use crate::{Res, SMALL_TURN_TIMEOUT, STALL_SECS, STALL_TURN_TIMEOUT};

pub fn bench_stall(t: &mut Table, runs: usize) {
    let g = "5";
    const N: u64 = 1_000_000;
    let mut hwm = Vec::new();
    let mut rss_stalled = Vec::new();
    let mut total = Vec::new();
    let mut exact = 0;
    let mut bad = Vec::new();
    for _ in 0..runs {
        let dir = tmpdir("stall");
        let r = (|| -> Res<(f64, f64, f64, bool, u64)> {
            let mut args = data_dir_args(dir.path());
            args.extend([
                "--extension".into(),
                ext("flood"),
                "--model".into(),
                "flood:flood:flood-1".into(),
            ]);
            let mut h = Host::spawn(&args, &[], dir.path(), "stall")?;
            h.wait_ready()?;
            prompt(&mut h, "[[n=10]]", SMALL_TURN_TIMEOUT)?;
            let mut tu = Turn {
                t_sent: mono(),
                ..Default::default()
            };
            h.send(
                &json!({"type": "prompt", "id": "stall", "message": format!("[[n={N}]]")})
                    .to_string(),
            )?;
            let deadline = mono() + STALL_TURN_TIMEOUT;
            // Read until the stream has started …
            let mut started = false;
            h.read_lines(deadline, "the first delta", |l, ts| {
                let done = tu.on_line(l, ts);
                started = tu.n_deltas > 0;
                done || started
            })?;
            if tu.response.is_some() {
                return Err("the turn ended before the stall".into());
            }
            // … then do not read stdout at all for 5 s.
            let stall_end = mono() + STALL_SECS;
            let mut peak_rss: f64 = 0.0;
            while mono() < stall_end {
                std::thread::sleep(Duration::from_millis(100));
                peak_rss = peak_rss.max(procfs::rss_and_peak_mib(h.pid)?.0);
            }
            h.read_lines(deadline, "the response after the stall", |l, ts| {
                tu.on_line(l, ts)
            })?;
            tu.check_ok()?;
            let (_, m) = procfs::rss_and_peak_mib(h.pid)?;
            let ok = tu.n_deltas == N
                && tu.text.len() as u64 == 4 * N
                && tu.text.chunks(4).all(|c| c == b"tok ");
            let secs = tu.end_s()?;
            h.close(10.0)?;
            Ok((m, peak_rss, secs, ok, tu.n_deltas))
        })();
        match r {
            Ok((m, p, s, ok, n)) => {
                hwm.push(m);
                rss_stalled.push(p);
                total.push(s);
                if ok {
                    exact += 1;
                } else {
                    bad.push(n.to_string());
                }
            }
            Err(e) => return t.fail(g, "stalled reader", &e),
        }
    }
    t.add(
        g,
        "stalled reader (1,000,000-delta flood, stdout unread for 5 s): host peak RSS (VmHWM)",
        "MiB",
        &hwm,
        1,
        Target::AtMost(32.0),
        "≤ 32 MB",
    );
    t.add_text(
        g,
        &format!(
            "… every character arrived (text == \"tok \" × 1e6){}",
            if bad.is_empty() {
                String::new()
            } else {
                format!(" (bad runs: {} deltas)", bad.join(", "))
            }
        ),
        format!("{exact}/{runs}"),
        "nothing lost",
        Some(exact == runs),
    );
    t.add(
        g,
        "… host VmRSS, highest 100 ms sample during the stall",
        "MiB",
        &rss_stalled,
        1,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… prompt → `agent_end` (includes the 5 s stall)",
        "s",
        &total,
        2,
        Target::None,
        "—",
    );
}
