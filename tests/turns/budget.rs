//! A session's budget: `--max-turns` counts provider rounds over the
//! session (after `--continue` too) and `budget_usd` its cost from the
//! catalogue's prices; reaching either stops the turn before its next round
//! (never inside a tool call) with `budget_exceeded`, and `set_budget`
//! changes or lifts them.

use super::*;
use common::fake_http::{Api, FakeServer};

const TOOL: &str = r#"go [[tool=ls input={"path": "."}]]"#;

fn ended(frames: &[Value]) -> &Value {
    frames
        .iter()
        .find(|f| f["type"] == "agent_end")
        .expect("agent_end")
}

#[test]
fn max_turns_counts_rounds_over_the_session_and_stops_between_rounds() {
    let data = tempfile::tempdir().expect("data dir");
    let spawn = || {
        Spawn::new()
            .data(data.path())
            .ext("echo")
            .model(ECHO)
            .arg("--permission-mode")
            .arg("allow-all")
    };
    let mut rpc = spawn().arg("--max-turns").arg("3").start();
    let id = rpc.ready()["session_id"].as_str().expect("id").to_owned();

    // Two rounds: the tool call, then the reply to its result.
    let (_, first) = prompt(&mut rpc, "1", TOOL);
    assert_eq!(first["ok"], true, "{first}");
    // The third round calls the tool; the reply would be the fourth.
    let (frames, second) = prompt(&mut rpc, "2", TOOL);
    assert_eq!(second["ok"], false, "{second}");
    assert_eq!(second["code"], "budget_exceeded", "{second}");
    assert_eq!(second["stop_reason"], "budget_exceeded", "{second}");
    let error = second["error"].as_str().expect("error");
    assert!(
        error.contains("budget of 3 provider rounds (max_turns; 3 used)"),
        "{error}"
    );
    assert_eq!(ended(&frames)["stop_reason"], "budget_exceeded");
    // The tool call ran to its end before the limit stopped the turn.
    let end = frames
        .iter()
        .find(|f| f["type"] == "tool_execution_end")
        .expect("the tool call ended");
    assert_eq!(end["is_error"], false, "{end}");

    // Lifted, the session goes on.
    let lifted = call_ok(
        &mut rpc,
        json!({"type": "set_budget", "max_turns": null}),
        "b",
    );
    assert_eq!(lifted["max_turns"], Value::Null, "{lifted}");
    let (_, third) = prompt(&mut rpc, "3", "hello");
    assert_eq!(third["ok"], true, "{third}");
    finish(rpc);

    // The rounds are stored: 3 + 1, so a limit of 5 leaves one round.
    let mut again = spawn()
        .arg("--continue")
        .arg(&id)
        .arg("--max-turns")
        .arg("5")
        .start();
    again.ready();
    let (_, fourth) = prompt(&mut again, "4", TOOL);
    assert_eq!(fourth["code"], "budget_exceeded", "{fourth}");
    finish(again);
}

#[test]
fn budget_usd_stops_the_next_turn_before_it_calls_the_model() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let mut rpc = Spawn::new()
        .env("XDG_CONFIG_HOME", "/nonexistent/agent-rpc-budget-tests")
        .env(api.base_var(), &api.base_url(srv.port))
        .env(api.key_var(), "sk-ant-test-budget")
        .model(api.model())
        .start();
    rpc.ready();
    let set = call_ok(
        &mut rpc,
        json!({"type": "set_budget", "budget_usd": 0.000001}),
        "b",
    );
    assert_eq!(set["budget_usd"], 0.000001, "{set}");
    assert_eq!(set["max_turns"], Value::Null, "{set}");

    let (_, first) = prompt(&mut rpc, "1", "hello");
    assert_eq!(first["ok"], true, "{first}");
    let requests = srv.api_requests().len();
    let (_, second) = prompt(&mut rpc, "2", "again");
    assert_eq!(second["code"], "budget_exceeded", "{second}");
    let error = second["error"].as_str().expect("error");
    assert!(error.contains("budget of $0.00 (budget_usd;"), "{error}");
    assert_eq!(
        srv.api_requests().len(),
        requests,
        "no request after the budget"
    );

    let raised = call_ok(
        &mut rpc,
        json!({"type": "set_budget", "budget_usd": 5.0}),
        "r",
    );
    assert_eq!(raised["budget_usd"], 5.0);
    let (_, third) = prompt(&mut rpc, "3", "once more");
    assert_eq!(third["ok"], true, "{third}");
    finish(rpc);
}

#[test]
fn a_bad_budget_is_refused_and_changes_nothing() {
    let (mut rpc, _) = host(&["echo"], ECHO);
    for bad in [
        json!({"type": "set_budget", "max_turns": 0}),
        json!({"type": "set_budget", "budget_usd": -1}),
        json!({"type": "set_budget", "max_turns": 2, "budget_usd": 0}),
        json!({"type": "set_budget", "turns": 2}),
    ] {
        let r = rpc.call(bad.clone(), "x");
        assert_eq!(r["type"], "error", "{bad} -> {r}");
        assert_eq!(r["code"], "invalid_params", "{r}");
    }
    let none = call_ok(&mut rpc, json!({"type": "set_budget"}), "n");
    assert_eq!(none["max_turns"], Value::Null, "{none}");
    assert_eq!(none["budget_usd"], Value::Null, "{none}");
    finish(rpc);
}
