//! Anthropic prompt caching: `cache_control` breakpoints in every request
//! of a tool loop, none when `prompt_caching = false` or for OpenAI, and
//! the usage and cost a 10-round loop reports with and without them (the
//! fake simulates the cache, see fixtures/http/prompt_cache.py).

use super::*;

/// A system prompt of a realistic size, so the cached prefix matters.
fn system_prompt() -> String {
    "You are a coding agent. Read files before editing them. ".repeat(40)
}

/// Runs a prompt that makes the model call `ls` `rounds` times, then
/// returns every API request the fake saw and the session stats.
fn tool_loop(api: Api, config: &str, rounds: u32) -> (Vec<Value>, Value) {
    let srv = FakeServer::start();
    let (_dir, path) = config_file(config);
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("a.txt"), "x").expect("write");
    let mut rpc = spawn(api, &srv)
        .arg("--config")
        .arg(&path)
        .arg("--cwd")
        .arg(&work.path().to_string_lossy())
        .arg("--system-prompt")
        .arg(&system_prompt())
        .start();
    rpc.ready();
    let (_, resp) = run(
        &mut rpc,
        "1",
        &format!("list the files [[tool=ls tool_rounds={rounds} id=loop]]"),
    );
    assert_ok(&resp, &rpc);
    let stats = call_ok(&mut rpc, json!({"type": "get_session_stats"}), "s");
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), rounds as usize + 1, "one request per round");
    (reqs, stats)
}

/// Where a request's breakpoints are: `tools[i]`, `system[i]`, `messages[n][i]`.
fn breakpoints(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut visit = |place: String, list: &Value| {
        for (i, b) in list.as_array().into_iter().flatten().enumerate() {
            if let Some(cc) = b.get("cache_control") {
                assert_eq!(cc, &json!({"type": "ephemeral"}), "{b}");
                out.push(format!("{place}[{i}]"));
            }
        }
    };
    visit("tools".into(), &body["tools"]);
    visit("system".into(), &body["system"]);
    for (n, m) in body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        visit(format!("messages[{n}]"), &m["content"]);
    }
    out
}

#[test]
fn every_round_of_a_tool_loop_carries_breakpoints_on_the_stable_prefix() {
    let (reqs, _) = tool_loop(Api::Anthropic, "", 4);
    for r in &reqs {
        let b = &r["body"];
        let marks = breakpoints(b);
        let tools = b["tools"].as_array().expect("tools").len();
        let newest = b["messages"].as_array().expect("messages").len() - 1;
        let last_block = b["messages"][newest]["content"]
            .as_array()
            .expect("content is a block list")
            .len()
            - 1;
        assert!(marks.len() <= 4, "{marks:?}");
        assert_eq!(
            marks,
            [
                format!("tools[{}]", tools - 1),
                "system[0]".to_owned(),
                format!("messages[{newest}][{last_block}]"),
            ],
            "request {}",
            r["seq"]
        );
    }
    // The moving breakpoint moved forward each round.
    let newest: Vec<usize> = reqs
        .iter()
        .map(|r| r["body"]["messages"].as_array().unwrap().len())
        .collect();
    assert!(newest.windows(2).all(|w| w[1] > w[0]), "{newest:?}");
}

#[test]
fn no_breakpoints_when_turned_off_or_for_openai() {
    let off = "[providers.anthropic]\nprompt_caching = false\n";
    let (reqs, _) = tool_loop(Api::Anthropic, off, 2);
    for r in &reqs {
        assert!(breakpoints(&r["body"]).is_empty(), "{}", r["body"]);
        assert!(r["body"]["system"].is_string(), "{}", r["body"]["system"]);
    }
    let (reqs, _) = tool_loop(Api::OpenAi, "", 2);
    for r in &reqs {
        assert!(
            !r["body"].to_string().contains("cache_control"),
            "{}",
            r["body"]
        );
    }
}

/// Usage and cost of the session, priced by hand from the catalogue's
/// prices for claude-sonnet-5-5 (USD per million: input 2, output 10,
/// cache read 0.1, cache write 2.5).
fn figures(stats: &Value) -> (u64, u64, u64, u64, f64) {
    let g = |k: &str| stats[k].as_u64().unwrap_or_else(|| panic!("{k}: {stats}"));
    let (input, output, read, write) = (
        g("input_tokens"),
        g("output_tokens"),
        g("cache_read_input_tokens"),
        g("cache_creation_input_tokens"),
    );
    let cost = stats["cost_usd"].as_f64().expect("cost_usd");
    let expected =
        (input as f64 * 2.0 + output as f64 * 10.0 + read as f64 * 0.1 + write as f64 * 2.5) / 1e6;
    assert!(
        (cost - expected).abs() < 1e-12,
        "{cost} vs {expected}: {stats}"
    );
    (input, output, read, write, cost)
}

/// The measurement of issue 11: a 10-round tool loop with caching on and
/// off. Prints the figures (`--nocapture`); asserts only that caching moves
/// the prefix from full-price input to cache reads and lowers the cost.
#[test]
fn a_ten_round_tool_loop_reads_its_prefix_from_the_cache() {
    let (_, on) = tool_loop(Api::Anthropic, "", 10);
    let (_, off) = tool_loop(
        Api::Anthropic,
        "[providers.anthropic]\nprompt_caching = false\n",
        10,
    );
    let (in_on, out_on, read_on, write_on, cost_on) = figures(&on);
    let (in_off, out_off, read_off, write_off, cost_off) = figures(&off);
    eprintln!(
        "10-round tool loop, claude-sonnet-5-5 prices:\n  caching on:  input {in_on} (full price), cache read {read_on}, cache write {write_on}, output {out_on}, cost ${cost_on:.6}\n  caching off: input {in_off} (full price), cache read {read_off}, cache write {write_off}, output {out_off}, cost ${cost_off:.6}"
    );
    assert_eq!((read_off, write_off), (0, 0));
    assert!(read_on > 0 && write_on > 0, "{on}");
    // Everything sent is billed one way or another: the totals agree.
    assert_eq!(in_on + read_on + write_on, in_off, "{on}\n{off}");
    assert!(in_on < in_off / 10, "{in_on} vs {in_off}");
    assert!(cost_on < cost_off, "{cost_on} vs {cost_off}");
}
