//! Two hosts on the same 20,000-delta reply from one fake server,
//! interleaved run by run (so load on the machine falls on both alike):
//! each one's host CPU, prompt → first delta and rate, and the CPU ratio.
//! Groups 3f (Responses vs Chat Completions) and 3g (Gemini vs Anthropic)
//! are two such pairs.

use crate::driver::{prompt, Host};
use crate::fixtures::{data_dir_args, tmpdir, Fake};
use crate::table::{Table, Target};
use crate::throughput::{big_turn, BigRun};
use crate::{Res, BIG_TURN_TIMEOUT, SMALL_TURN_TIMEOUT};

pub const N: u64 = 20_000;

/// One of the two hosts: its label in the table, its `--model`, the config
/// file it runs with (given the fake's base URL) and its environment.
pub struct Side {
    pub label: &'static str,
    pub model: &'static str,
    pub config: fn(&str) -> String,
    pub env: fn(&Fake) -> Vec<(&'static str, String)>,
}

/// One host of `side`, warmed by a small turn, then the big reply.
fn one_run(fake: &Fake, side: &Side) -> Res<BigRun> {
    let dir = tmpdir("side-by-side");
    let config = dir.path().join("config.toml");
    let base = format!("http://127.0.0.1:{}", fake.port);
    std::fs::write(&config, (side.config)(&base)).map_err(|e| e.to_string())?;
    let mut args = data_dir_args(dir.path());
    args.extend([
        "--model".into(),
        side.model.into(),
        "--config".into(),
        config.display().to_string(),
    ]);
    let mut h = Host::spawn(&args, &(side.env)(fake), dir.path(), side.label)?;
    h.wait_ready()?;
    prompt(&mut h, "[[n=10]]", SMALL_TURN_TIMEOUT)?; // connection pool warm
    let b = big_turn(&mut h, N, BIG_TURN_TIMEOUT)?;
    h.close(10.0)?;
    if !b.exact {
        return Err(format!(
            "{}: {} of {N} deltas arrived intact",
            side.label, b.n
        ));
    }
    Ok(b)
}

/// Rows of group `g`: `base` and `other` each, then `other / base` CPU.
pub fn compare(t: &mut Table, g: &str, runs: usize, base: &Side, other: &Side) {
    let mut base_runs = Vec::new();
    let mut other_runs = Vec::new();
    let r = (|| -> Res<()> {
        let fake = Fake::start()?;
        for _ in 0..runs {
            base_runs.push(one_run(&fake, base)?);
            other_runs.push(one_run(&fake, other)?);
        }
        Ok(())
    })();
    if let Err(e) = r {
        let title = format!("{} vs {}, 20,000 deltas", other.label, base.label);
        return t.fail(g, &title, &e);
    }
    let col = |runs: &[BigRun], f: fn(&BigRun) -> f64| runs.iter().map(f).collect::<Vec<_>>();
    for (label, runs) in [(base.label, &base_runs), (other.label, &other_runs)] {
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
    let ratio: Vec<f64> = other_runs
        .iter()
        .zip(&base_runs)
        .map(|(o, b)| o.host_cpu / b.host_cpu)
        .collect();
    t.add(
        g,
        &format!("{} / {} host CPU, run by run", other.label, base.label),
        "×",
        &ratio,
        2,
        Target::None,
        "—",
    );
}
