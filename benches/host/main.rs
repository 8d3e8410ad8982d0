//! `cargo bench`: end-to-end performance of the `rpc` binary, driven the way a
//! client drives it (spawned child, line-delimited JSON on stdin/stdout),
//! against the fixture providers in `fixtures/`. Prints one markdown table
//! with median and min–max over repeated runs, the target for each row and
//! whether it was met. See `benches/README.md` for what every row means.
//!
//! Environment:
//! - `BENCH_RUNS` (default 10): runs per row.
//! - `BENCH_STALL_RUNS` (default `BENCH_RUNS`): runs of the 1,000,000-delta
//!   stalled-reader row (each takes ≥ 5 s by design).
//! - `BENCH_ONLY` (optional): comma-separated row groups to run
//!   (`spawn,resume,skills,latency,throughput,responses,gemini,acp,editor,idle,stall,abort,subagents,sandbox`); default all.
//!
//! The harness reads the host's stdout with 1 MiB `read(2)` calls straight
//! into its line buffer and recognises frames by their fixed prefixes (the
//! host writes `{"type":"…"` first); serde is used only for the handful of
//! non-streaming frames. Its own CPU time is reported beside the throughput
//! rows so it can be seen not to be the bottleneck. Every wait has a deadline:
//! a hang fails the row (reported in the table) instead of stalling the bench.

#[path = "../../tests/common/procfs.rs"]
mod procfs;

mod clock;
mod direct;
mod driver;
mod fixtures;
mod frames;
mod machine;
mod table;

mod abort;
mod acp;
mod editor;
mod gemini;
mod idle;
mod latency;
mod responses;
mod sandbox;
mod side_by_side;
mod skills;
mod spawn;
mod stall;
mod subagents;
mod throughput;

use std::path::Path;

use clock::mono;
use table::Table;

/// The binary under test, built by cargo for this bench (release profile).
pub const BIN: &str = env!("CARGO_BIN_EXE_rpc");
pub const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub const READ_CHUNK: usize = 1 << 20;
pub const READY_TIMEOUT: f64 = 10.0;
pub const SMALL_TURN_TIMEOUT: f64 = 30.0;
pub const BIG_TURN_TIMEOUT: f64 = 120.0;
pub const STALL_TURN_TIMEOUT: f64 = 180.0;
pub const STALL_SECS: f64 = 5.0;
/// Warm prompts per run in the latency rows (they are cheap, and a busy
/// machine makes single sub-millisecond samples noisy): n = runs × this.
pub const LATENCY_PROMPTS_PER_RUN: usize = 5;

pub type Res<T> = Result<T, String>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass
    // nothing and expects a quick exit.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("benches/host: run with `cargo bench` (skipped: no --bench flag)");
        return;
    }
    // The binary must be the optimised one cargo built for this bench.
    let bin = Path::new(BIN);
    let profile_dir = bin
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if profile_dir != "release" || cfg!(debug_assertions) {
        eprintln!("error: {BIN} is not the release build (profile dir `{profile_dir}`, debug_assertions {}); run `cargo bench`", cfg!(debug_assertions));
        std::process::exit(1);
    }
    if !bin.exists() {
        eprintln!("error: {BIN} does not exist");
        std::process::exit(1);
    }
    let runs = env_usize("BENCH_RUNS", 10);
    let stall_runs = env_usize("BENCH_STALL_RUNS", runs);
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect());
    let want = |g: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == g));
    let machine = machine::machine();
    eprintln!("[bench] {BIN}, {runs} runs per row ({stall_runs} for the stalled reader)");
    let t0 = mono();
    let mut t = Table::default();
    let mut step = |name: &str, f: &mut dyn FnMut(&mut Table)| {
        if want(name) {
            let s = mono();
            eprintln!("[bench] {name} …");
            f(&mut t);
            eprintln!("[bench] {name} done in {:.1} s", mono() - s);
        }
    };
    step("spawn", &mut |t| spawn::bench_spawn(t, runs));
    step("resume", &mut |t| spawn::bench_resume(t, runs));
    step("skills", &mut |t| skills::bench_skills(t, runs));
    step("latency", &mut |t| {
        latency::bench_latency_echo(t, runs);
        latency::bench_latency_http(t, runs);
    });
    step("throughput", &mut |t| {
        throughput::bench_flood(t, runs);
        throughput::bench_http_big(t, runs);
    });
    step("responses", &mut |t| responses::bench_responses(t, runs));
    step("gemini", &mut |t| gemini::bench_gemini(t, runs));
    step("acp", &mut |t| acp::bench_acp_flood(t, runs));
    step("editor", &mut |t| editor::bench_editor(t, runs));
    step("idle", &mut |t| idle::bench_idle(t, runs));
    step("stall", &mut |t| stall::bench_stall(t, stall_runs));
    step("abort", &mut |t| abort::bench_abort(t, runs));
    step("subagents", &mut |t| subagents::bench_subagents(t, runs));
    step("sandbox", &mut |t| sandbox::bench_sandbox(t, runs));
    t.print(&machine, runs, mono() - t0);
}
