//! Group 3f (`responses`): the same 20,000-delta reply from the fake server
//! over OpenAI's Responses API and over Chat Completions (one model, only
//! the config's `api` differs): host CPU and prompt → first delta, side by
//! side, run by run.

use crate::driver::{prompt, Host};
use crate::fixtures::{data_dir_args, tmpdir, Fake};
use crate::table::{Table, Target};
use crate::throughput::{big_turn, BigRun};
use crate::{Res, BIG_TURN_TIMEOUT, SMALL_TURN_TIMEOUT};

pub const N: u64 = 20_000;

/// One host on `api`, warmed by a small turn, then the big reply.
fn one_run(fake: &Fake, api: &str) -> Res<BigRun> {
    let dir = tmpdir("responses");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, format!("[providers.openai]\napi = \"{api}\"\n"))
        .map_err(|e| e.to_string())?;
    let mut args = data_dir_args(dir.path());
    args.extend([
        "--model".into(),
        "openai/gpt-4o-mini".into(),
        "--config".into(),
        config.display().to_string(),
    ]);
    let mut h = Host::spawn(&args, &fake.env(), dir.path(), api)?;
    h.wait_ready()?;
    prompt(&mut h, "[[n=10]]", SMALL_TURN_TIMEOUT)?; // connection pool warm
    let b = big_turn(&mut h, N, BIG_TURN_TIMEOUT)?;
    h.close(10.0)?;
    if !b.exact {
        return Err(format!("{api}: {} of {N} deltas arrived intact", b.n));
    }
    Ok(b)
}

pub fn bench_responses(t: &mut Table, runs: usize) {
    let g = "3f";
    let mut chat = Vec::new();
    let mut responses = Vec::new();
    let r = (|| -> Res<()> {
        let fake = Fake::start()?;
        // Interleaved, so load on the machine falls on both alike.
        for _ in 0..runs {
            chat.push(one_run(&fake, "chat_completions")?);
            responses.push(one_run(&fake, "responses")?);
        }
        Ok(())
    })();
    if let Err(e) = r {
        return t.fail(g, "Responses vs Chat Completions, 20,000 deltas", &e);
    }
    let col = |runs: &[BigRun], f: fn(&BigRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    for (label, runs) in [("Chat Completions", &chat), ("Responses", &responses)] {
        t.add(
            g,
            &format!("{label}, N = 20,000: host CPU s (`rpc` only)"),
            "s",
            &col(runs, |r| r.host_cpu),
            3,
            Target::None,
            "—",
        );
        t.add(
            g,
            &format!("{label}: prompt → first `text_delta`"),
            "ms",
            &col(runs, |r| r.first_delta_ms),
            2,
            Target::None,
            "—",
        );
        t.add(
            g,
            &format!("{label}: deltas/s (N / prompt→`agent_end`)"),
            "/s",
            &col(runs, |r| r.rate),
            0,
            Target::None,
            "—",
        );
    }
    let ratio: Vec<f64> = responses
        .iter()
        .zip(&chat)
        .map(|(r, c)| r.host_cpu / c.host_cpu)
        .collect();
    t.add(
        g,
        "Responses / Chat Completions host CPU, run by run",
        "×",
        &ratio,
        2,
        Target::None,
        "—",
    );
}
