//! Group 3g (`gemini`): the same 20,000-delta reply from the fake server
//! over Google's Gemini API and over Anthropic Messages (one fake, both
//! endpoints pointed at it): host CPU and prompt → first delta, side by
//! side, run by run.

use crate::driver::{prompt, Host};
use crate::fixtures::{data_dir_args, tmpdir, Fake};
use crate::table::{Table, Target};
use crate::throughput::{big_turn, BigRun};
use crate::{Res, BIG_TURN_TIMEOUT, SMALL_TURN_TIMEOUT};

pub const N: u64 = 20_000;

/// One host on `model`, warmed by a small turn, then the big reply.
fn one_run(fake: &Fake, model: &str) -> Res<BigRun> {
    let dir = tmpdir("gemini");
    let config = dir.path().join("config.toml");
    let base = format!("http://127.0.0.1:{}", fake.port);
    std::fs::write(
        &config,
        format!("[providers.anthropic]\nbase_url = \"{base}\"\n[providers.google]\nbase_url = \"{base}\"\n"),
    )
    .map_err(|e| e.to_string())?;
    let mut args = data_dir_args(dir.path());
    args.extend([
        "--model".into(),
        model.into(),
        "--config".into(),
        config.display().to_string(),
    ]);
    let env = [
        ("ANTHROPIC_API_KEY", "dummy".to_owned()),
        ("GEMINI_API_KEY", "dummy".to_owned()),
    ];
    let tag = model.split('/').next().unwrap_or("host");
    let mut h = Host::spawn(&args, &env, dir.path(), tag)?;
    h.wait_ready()?;
    prompt(&mut h, "[[n=10]]", SMALL_TURN_TIMEOUT)?; // connection pool warm
    let b = big_turn(&mut h, N, BIG_TURN_TIMEOUT)?;
    h.close(10.0)?;
    if !b.exact {
        return Err(format!("{model}: {} of {N} deltas arrived intact", b.n));
    }
    Ok(b)
}

pub fn bench_gemini(t: &mut Table, runs: usize) {
    let g = "3g";
    let mut anthropic = Vec::new();
    let mut gemini = Vec::new();
    let r = (|| -> Res<()> {
        let fake = Fake::start()?;
        // Interleaved, so load on the machine falls on both alike.
        for _ in 0..runs {
            anthropic.push(one_run(&fake, "anthropic/claude-sonnet-5-5")?);
            gemini.push(one_run(&fake, "google/gemini-2.5-flash")?);
        }
        Ok(())
    })();
    if let Err(e) = r {
        return t.fail(g, "Gemini vs Anthropic, 20,000 deltas", &e);
    }
    let col = |runs: &[BigRun], f: fn(&BigRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    for (label, runs) in [("Anthropic", &anthropic), ("Gemini", &gemini)] {
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
    let ratio: Vec<f64> = gemini
        .iter()
        .zip(&anthropic)
        .map(|(g, a)| g.host_cpu / a.host_cpu)
        .collect();
    t.add(
        g,
        "Gemini / Anthropic host CPU, run by run",
        "×",
        &ratio,
        2,
        Target::None,
        "—",
    );
}
