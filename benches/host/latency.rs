//! Group 2 (`latency`): warm prompt → first `text_delta` through the echo
//! extension (2a) and the OpenAI HTTP API (2b), each beside the provider's
//! own latency measured directly, so the host's overhead is the difference.

use crate::direct::{DirectExt, DirectHttp};
use crate::driver::{prompt, Host};
use crate::fixtures::{data_dir_args, ext, tmpdir, Fake};
use crate::table::{stat, Table, Target};
use crate::{Res, LATENCY_PROMPTS_PER_RUN, SMALL_TURN_TIMEOUT};

pub fn bench_latency_echo(t: &mut Table, runs: usize) {
    let g = "2a";
    let dir = tmpdir("echo");
    let r = (|| -> Res<(Vec<f64>, Vec<f64>, Vec<f64>)> {
        let mut args = data_dir_args(dir.path());
        args.extend([
            "--extension".into(),
            ext("echo"),
            "--model".into(),
            "echo:echo:echo-1".into(),
        ]);
        let mut h = Host::spawn(&args, &[], dir.path(), "echo")?;
        h.wait_ready()?;
        prompt(&mut h, "warm up [[n=1]]", SMALL_TURN_TIMEOUT)?; // starts the extension
        let mut host = Vec::new();
        let mut end = Vec::new();
        for _ in 0..runs * LATENCY_PROMPTS_PER_RUN {
            let tu = prompt(&mut h, "hi [[n=1]]", SMALL_TURN_TIMEOUT)?;
            if tu.n_deltas != 1 || tu.text != b"tok " {
                return Err(format!(
                    "expected one `tok ` delta, got {} ({:?})",
                    tu.n_deltas,
                    String::from_utf8_lossy(&tu.text)
                ));
            }
            host.push(tu.first_delta_s()? * 1e3);
            end.push(tu.end_s()? * 1e3);
        }
        h.close(5.0)?;
        // The extension alone: same fixture, same framing, no host.
        let mut d = DirectExt::start("echo", "echo")?;
        d.stream("warm up [[n=1]]")?;
        let mut direct = Vec::new();
        for _ in 0..runs * LATENCY_PROMPTS_PER_RUN {
            direct.push(d.stream("hi [[n=1]]")?.0 * 1e3);
        }
        Ok((host, end, direct))
    })();
    match r {
        Ok((host, end, direct)) => {
            let over = stat(&host).unwrap().median - stat(&direct).unwrap().median;
            t.add(
                g,
                "echo extension: warm prompt → first `text_delta` frame",
                "ms",
                &host,
                3,
                Target::None,
                "—",
            );
            t.add(g, "… provider's own latency: fakeprov.py echo driven directly (request → first text event)", "ms", &direct, 3, Target::None, "—");
            t.add_text(
                g,
                "… host overhead = median(host) − median(provider alone)",
                format!("{over:.3} ms"),
                "≤ 1 ms",
                Some(over <= 1.0),
            );
            t.add(
                g,
                "… warm prompt → `agent_end` (after the turn's fsync)",
                "ms",
                &end,
                3,
                Target::None,
                "—",
            );
        }
        Err(e) => t.fail(g, "echo warm prompt → first delta", &e),
    }
}

pub fn bench_latency_http(t: &mut Table, runs: usize) {
    let prompts = runs * LATENCY_PROMPTS_PER_RUN;
    let g = "2b";
    let dir = tmpdir("http");
    let r = (|| -> Res<()> {
        let fake = Fake::start()?;
        let mut args = data_dir_args(dir.path());
        args.extend(["--model".into(), "openai/gpt-4o-mini".into()]);
        let mut h = Host::spawn(&args, &fake.env(), dir.path(), "http")?;
        h.wait_ready()?;
        prompt(&mut h, "warm up [[n=1]]", SMALL_TURN_TIMEOUT)?;
        let mut turns = Vec::new();
        for _ in 0..prompts {
            let tu = prompt(&mut h, "hi [[n=1]]", SMALL_TURN_TIMEOUT)?;
            if tu.n_deltas != 1 || tu.text != b"tok " {
                return Err(format!("expected one `tok ` delta, got {}", tu.n_deltas));
            }
            turns.push(tu);
        }
        h.close(5.0)?;
        let reqs = fake.requests()?;
        if reqs.len() != prompts + 1 {
            return Err(format!(
                "fake saw {} chat requests, expected {} (retries?)",
                reqs.len(),
                prompts + 1
            ));
        }
        let mut host = Vec::new();
        let mut end = Vec::new();
        let mut to_arrival = Vec::new();
        let mut arrival_to_delta = Vec::new();
        let mut served_to_end = Vec::new();
        for (tu, rq) in turns.iter().zip(&reqs[1..]) {
            let arr = rq["time"].as_f64().ok_or("request without time")?;
            let served = rq["end_time"].as_f64().ok_or("request without end_time")?;
            served_to_end.push((tu.t_end.ok_or("no agent_end")? - served) * 1e3);
            host.push(tu.first_delta_s()? * 1e3);
            end.push(tu.end_s()? * 1e3);
            to_arrival.push((arr - tu.t_sent) * 1e3);
            arrival_to_delta.push((tu.t_first_delta.unwrap() - arr) * 1e3);
        }
        // The provider alone: replay the host's own last request body on a
        // keep-alive connection of our own.
        let body = serde_json::to_vec(&reqs[prompts]["body"]).map_err(|e| e.to_string())?;
        let mut c = DirectHttp::connect(fake.port)?;
        c.post(&body, SMALL_TURN_TIMEOUT, false)?;
        let mut direct = Vec::new();
        for _ in 0..prompts {
            direct.push(c.post(&body, SMALL_TURN_TIMEOUT, false)?.first_content_s * 1e3);
        }
        let over = stat(&host).unwrap().median - stat(&direct).unwrap().median;
        t.add(
            g,
            "OpenAI HTTP (fake_llm.py): warm prompt → first `text_delta` frame",
            "ms",
            &host,
            3,
            Target::None,
            "—",
        );
        t.add(
            g,
            "… prompt written → request arrival at the fake (its CLOCK_MONOTONIC log)",
            "ms",
            &to_arrival,
            3,
            Target::None,
            "—",
        );
        t.add(
            g,
            "… request arrival → first `text_delta` frame read",
            "ms",
            &arrival_to_delta,
            3,
            Target::None,
            "—",
        );
        t.add(
            g,
            &format!("… provider's own latency: same request body ({} B) replayed by a bare keep-alive client (request → first content chunk)", body.len()),
            "ms",
            &direct,
            3,
            Target::None,
            "—",
        );
        t.add_text(
            g,
            "… host overhead = median(host) − median(provider alone)",
            format!("{over:.3} ms"),
            "≤ 1 ms",
            Some(over <= 1.0),
        );
        t.add(
            g,
            "… warm prompt → `agent_end` (after the turn's fsync)",
            "ms",
            &end,
            3,
            Target::None,
            "—",
        );
        t.add(
            g,
            "… the fake's last byte written (its `end_time`) → `agent_end` read: the last event decoded, the session appended and synced, the frame written",
            "ms",
            &served_to_end,
            3,
            Target::None,
            "—",
        );
        Ok(())
    })();
    if let Err(e) = r {
        t.fail(g, "HTTP warm prompt → first delta", &e);
    }
}
