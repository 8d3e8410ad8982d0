//! Group 3 (`throughput`): one 200,000-delta reply from the flood extension
//! (3a) and from the fake OpenAI server (3b): rate, completeness, bytes per
//! delta, host CPU and peak memory.

use std::time::Duration;

use serde_json::json;

use crate::clock::self_cpu;
use crate::direct::DirectHttp;
use crate::driver::{prompt, Host};
use crate::fixtures::{data_dir_args, ext, tmpdir, Fake};
use crate::procfs;
use crate::table::{fmt_num, stat, Table, Target};
use crate::{Res, BIG_TURN_TIMEOUT, SMALL_TURN_TIMEOUT};

pub struct BigRun {
    pub rate: f64,
    pub stream_rate: f64,
    pub ctxt_per_delta: f64,
    pub bytes_per_delta: f64,
    pub host_cpu: f64,
    pub harness_cpu: f64,
    pub hwm: f64,
    pub first_delta_ms: f64,
    pub exact: bool,
    pub n: u64,
}

pub fn big_turn(h: &mut Host, n: u64, timeout: f64) -> Res<BigRun> {
    let cpu0 = procfs::cpu_seconds(h.pid)?;
    let cs0 = procfs::context_switches(h.pid)?;
    let me0 = self_cpu();
    let tu = prompt(h, &format!("[[n={n}]]"), timeout)?;
    let me1 = self_cpu();
    std::thread::sleep(Duration::from_millis(20));
    let cpu1 = procfs::cpu_seconds(h.pid)?;
    let cs1 = procfs::context_switches(h.pid)?;
    let (_, hwm) = procfs::rss_and_peak_mib(h.pid)?;
    let exact = tu.n_deltas == n
        && tu.text.len() as u64 == 4 * n
        && tu.text.chunks(4).all(|c| c == b"tok ");
    Ok(BigRun {
        rate: n as f64 / tu.end_s()?,
        stream_rate: (n - 1) as f64
            / (tu.t_last_delta.ok_or("no delta")? - tu.t_first_delta.ok_or("no delta")?),
        ctxt_per_delta: (cs1 - cs0) as f64 / n as f64,
        bytes_per_delta: tu.bytes as f64 / n as f64,
        host_cpu: cpu1 - cpu0,
        harness_cpu: me1 - me0,
        hwm,
        first_delta_ms: tu.first_delta_s()? * 1e3,
        exact,
        n: tu.n_deltas,
    })
}

pub fn report_big(t: &mut Table, g: &str, label: &str, n: u64, runs: &[BigRun], min_rate: f64) {
    let col = |f: fn(&BigRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    t.add(
        g,
        &format!(
            "{label}: deltas/s (N / prompt→`agent_end`), N = {}",
            fmt_num(n as f64, 0)
        ),
        "/s",
        &col(|r| r.rate),
        0,
        Target::AtLeast(min_rate),
        &format!("≥ {}/s", fmt_num(min_rate, 0)),
    );
    let exact = runs.iter().filter(|r| r.exact).count();
    let counts: Vec<String> = runs
        .iter()
        .filter(|r| !r.exact)
        .map(|r| r.n.to_string())
        .collect();
    t.add_text(
        g,
        &format!(
            "… all N deltas arrived, concatenated text == \"tok \" × N{}",
            if counts.is_empty() {
                String::new()
            } else {
                format!(" (bad runs got {})", counts.join(", "))
            }
        ),
        format!("{exact}/{}", runs.len()),
        "all",
        Some(exact == runs.len()),
    );
    t.add(
        g,
        "… stdout bytes per delta (prompt → `agent_end`, 4-char deltas)",
        "B",
        &col(|r| r.bytes_per_delta),
        1,
        Target::AtMost(90.0),
        "≤ 90 B",
    );
    t.add(
        g,
        "… host CPU s (utime+stime of `rpc` only, /proc/PID/stat)",
        "s",
        &col(|r| r.host_cpu),
        2,
        Target::AtMost(0.5 * n as f64 / 200_000.0),
        "≤ 0.5 s",
    );
    t.add(
        g,
        "… host peak RSS (VmHWM)",
        "MiB",
        &col(|r| r.hwm),
        1,
        Target::AtMost(16.0),
        "≤ 16 MB",
    );
    t.add(
        g,
        "… prompt → first `text_delta`",
        "ms",
        &col(|r| r.first_delta_ms),
        2,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… streaming rate after the first delta, (N−1)/(first → last delta)",
        "/s",
        &col(|r| r.stream_rate),
        0,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… host context switches per delta (all its threads, /proc/PID/task/*/status)",
        "",
        &col(|r| r.ctxt_per_delta),
        2,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… harness's own CPU s during the turn (reader not the bottleneck)",
        "s",
        &col(|r| r.harness_cpu),
        2,
        Target::None,
        "—",
    );
}

pub const BIG_N: u64 = 200_000;

pub fn bench_flood(t: &mut Table, runs: usize) {
    let g = "3a";
    let mut out = Vec::new();
    for _ in 0..runs {
        let dir = tmpdir("flood");
        let r = (|| -> Res<BigRun> {
            let mut args = data_dir_args(dir.path());
            args.extend([
                "--extension".into(),
                ext("flood"),
                "--model".into(),
                "flood:flood:flood-1".into(),
            ]);
            let mut h = Host::spawn(&args, &[], dir.path(), "flood")?;
            h.wait_ready()?;
            prompt(&mut h, "[[n=10]]", SMALL_TURN_TIMEOUT)?; // extension started and warm
            let b = big_turn(&mut h, BIG_N, BIG_TURN_TIMEOUT)?;
            h.close(10.0)?;
            Ok(b)
        })();
        match r {
            Ok(b) => out.push(b),
            Err(e) => return t.fail(g, "flood extension 200,000 deltas", &e),
        }
    }
    report_big(t, g, "flood extension", BIG_N, &out, 250_000.0);
}

pub fn bench_http_big(t: &mut Table, runs: usize) {
    let g = "3b";
    let mut out = Vec::new();
    let mut serve_host = Vec::new();
    let mut direct_total = Vec::new();
    let mut direct_first = Vec::new();
    let mut direct_stream = Vec::new();
    let r = (|| -> Res<()> {
        let fake = Fake::start()?;
        for _ in 0..runs {
            let dir = tmpdir("httpbig");
            let mut args = data_dir_args(dir.path());
            args.extend(["--model".into(), "openai/gpt-4o-mini".into()]);
            let mut h = Host::spawn(&args, &fake.env(), dir.path(), "httpbig")?;
            h.wait_ready()?;
            prompt(&mut h, "[[n=10]]", SMALL_TURN_TIMEOUT)?; // connection pool warm
            let b = big_turn(&mut h, BIG_N, BIG_TURN_TIMEOUT)?;
            h.close(10.0)?;
            out.push(b);
            let reqs = fake.requests()?;
            let last = reqs.last().ok_or("no request")?;
            if let (Some(a), Some(e)) = (last["time"].as_f64(), last["end_time"].as_f64()) {
                serve_host.push(e - a);
            }
        }
        // The fake alone: the same reply to a bare client that only scans
        // the bytes (its own serve time and its ceiling in deltas/s).
        let body = serde_json::to_vec(&json!({"model": "gpt-4o-mini", "stream": true,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": format!("[[n={BIG_N}]]")}]}))
        .unwrap();
        let mut c = DirectHttp::connect(fake.port)?;
        for _ in 0..runs.min(5) {
            let d = c.post(&body, BIG_TURN_TIMEOUT, true)?;
            if d.content_chunks as u64 != BIG_N {
                return Err(format!(
                    "direct client saw {} content chunks",
                    d.content_chunks
                ));
            }
            direct_first.push(d.first_content_s);
            direct_stream.push((BIG_N - 1) as f64 / (d.total_s - d.first_content_s));
            direct_total.push(d.total_s);
        }
        Ok(())
    })();
    if let Err(e) = r {
        return t.fail(g, "HTTP 200,000 deltas", &e);
    }
    report_big(t, g, "OpenAI HTTP (fake_llm.py)", BIG_N, &out, 100_000.0);
    let fake_rate: Vec<f64> = direct_total.iter().map(|s| BIG_N as f64 / s).collect();
    t.add(
        g,
        "… fake_llm.py alone: serve time of the same 200,000-delta reply to a bare client",
        "s",
        &direct_total,
        2,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… fake_llm.py alone: its ceiling in deltas/s (N / serve time)",
        "/s",
        &fake_rate,
        0,
        Target::None,
        "—",
    );
    t.add(g, "… fake_llm.py alone: request → first content chunk (it renders the whole reply before sending headers)", "s", &direct_first, 2, Target::None, "—");
    t.add(
        g,
        "… fake_llm.py alone: streaming rate after its first chunk, (N−1)/(first → last byte)",
        "/s",
        &direct_stream,
        0,
        Target::None,
        "—",
    );
    t.add(
        g,
        "… fake's serve time while the host read it (arrival → end, its log)",
        "s",
        &serve_host,
        2,
        Target::None,
        "—",
    );
    if let (Some(h), Some(f)) = (
        stat(&out.iter().map(|r| r.rate).collect::<Vec<_>>()),
        stat(&fake_rate),
    ) {
        t.notes.push(format!(
            "3b: the fake HTTP server alone serves {} deltas/s (median) to a client that does nothing but scan the bytes; the host reached {} deltas/s = {:.0}% of that ceiling.{}",
            fmt_num(f.median, 0),
            fmt_num(h.median, 0),
            100.0 * h.median / f.median,
            if f.median < 1.5 * 100_000.0 { " The fake is close to being the bottleneck of this row." } else { "" }
        ));
        if f.median < 1.2 * 100_000.0 {
            // The fake cannot go much faster than the target itself: the
            // row cannot tell whether the host would meet it.
            if let Some(row) = t
                .rows
                .iter_mut()
                .find(|r| r.group == g && r.name.contains("deltas/s"))
            {
                let verdict = if h.median >= 100_000.0 {
                    "met"
                } else {
                    "MISSED"
                };
                row.status = Some(format!(
                    "**{verdict}**, but fake-bound (fake alone: {}/s)",
                    fmt_num(f.median, 0)
                ));
            }
        }
    }
}
