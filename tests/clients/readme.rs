//! README.md's commands are the ones that work: the quick start's command
//! line, and the offline tools walk-through replayed line by line against
//! the real binary, its frames compared with the ones README shows.

use std::time::Duration;

use crate::common::*;
use serde_json::Value;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README.md")
}

/// The indented command lines of a README section, from its heading to the
/// next `## `.
fn section<'a>(text: &'a str, heading: &str) -> &'a str {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("README has no {heading:?}"));
    let rest = &text[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

#[test]
fn the_quick_start_runs_the_echo_fixture_and_cargo_test() {
    let text = readme();
    for word in text.split(|c: char| !(c.is_ascii_uppercase() || c == '_')) {
        assert!(
            !(word.len() > 5 && word.ends_with("_TIME")),
            "README still has the placeholder {word}"
        );
    }
    let quick = section(&text, "## Quick start");
    let commands: Vec<&str> = quick
        .lines()
        .filter(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert_eq!(commands.len(), 2, "two commands: {commands:?}");
    assert!(
        commands[0].starts_with("printf '{\"type\":\"prompt\"")
            && commands[0].ends_with("| cargo run -- --extension fixtures/providers/echo"),
        "{}",
        commands[0]
    );
    assert_eq!(commands[1], "cargo test");
    assert!(
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run"))
            .expect(".ci/run")
            .lines()
            .any(|l| l.trim() == "cargo test"),
        ".ci/run must run the README's test command"
    );

    // The first command, with the built binary in place of cargo run.
    let line = commands[0]
        .strip_prefix("printf '")
        .and_then(|l| l.split("\\n'").next())
        .expect("the printf line");
    let mut h = Spawn::new().ext("echo").start();
    h.ready();
    h.send_raw(format!("{line}\n").as_bytes());
    h.close_stdin();
    let frames = h.drain(READ_TIMEOUT);
    // `model_changed` (the extension's default model, once it reported)
    // may come at any point; the turn's own frames are what is checked.
    let kinds: Vec<&str> = frames
        .iter()
        .filter_map(|f| f["type"].as_str())
        .filter(|k| *k != "model_changed")
        .collect();
    assert_eq!(kinds.first(), Some(&"agent_start"), "{kinds:?}");
    assert_eq!(
        &kinds[kinds.len() - 2..],
        ["agent_end", "response"],
        "{kinds:?}"
    );
    assert_eq!(text_of(&frames), "hello from the pipe");
    assert!(h.wait(Duration::from_secs(5)).is_some_and(|s| s.success()));
}

/// The frame's kind as README shows it: its type and, for updates, the
/// event's type.
fn kind(frame: &Value) -> String {
    match frame["event"]["type"].as_str() {
        Some(event) => format!("{} {event}", frame["type"].as_str().unwrap_or("?")),
        None => frame["type"].as_str().unwrap_or("?").to_owned(),
    }
}

#[test]
fn the_tools_walk_through_gives_the_frames_readme_shows() {
    let text = readme();
    let tools = section(&text, "## Tools and permissions");
    let block = tools
        .split("```console\n")
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .expect("the walk-through's console block");
    let mut typed = Vec::new();
    let mut shown = Vec::new();
    for line in block.lines() {
        if let Some(command) = line.strip_suffix("← you") {
            typed.push(command.trim().to_owned());
        } else if line.starts_with('{') && !line.contains('…') {
            let frame: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("README frame is not JSON ({e}): {line}"));
            shown.push(frame);
        }
    }
    assert_eq!(typed.len(), 2, "{typed:?}");
    // README shows 11 whole frames; fewer means the comparison below would
    // check less than README claims.
    assert!(
        shown.len() >= 11,
        "{} frames parsed: {shown:?}",
        shown.len()
    );

    let cwd = tempfile::tempdir().expect("cwd");
    let mut h = Spawn::new()
        .ext("echo")
        .arg("--cwd")
        .arg(cwd.path().to_str().expect("utf-8"))
        .start();
    h.ready();
    // A person types after the extension's model was announced, as shown.
    h.until("model_changed", |f| f["type"] == "model_changed");
    h.send_raw(format!("{}\n", typed[0]).as_bytes());
    let (_, ask) = h.until("permission_request", |f| f["type"] == "permission_request");
    h.send_raw(format!("{}\n", typed[1]).as_bytes());
    h.until("the prompt's response", |f| is_answer_to(f, "1"));
    assert_eq!(
        std::fs::read_to_string(cwd.path().join("hello.txt"))
            .ok()
            .as_deref(),
        Some("hi\n")
    );
    // Every full frame README shows was sent, in that order, with the same
    // content (ids and the session's own values aside).
    let mut seen = h.seen.iter();
    for want in &shown {
        let Some(got) = seen.find(|f| kind(f) == kind(want)) else {
            panic!("README shows {want}, the host did not send it (in order)");
        };
        for key in [
            "tool_call_id",
            "name",
            "input",
            "title",
            "diff",
            "result",
            "event",
            "ok",
        ] {
            if want.get(key).is_some() && want["type"] != "ready" {
                assert_eq!(got[key], want[key], "{key} of {want}");
            }
        }
    }
    assert_eq!(ask["request_id"], "perm-1");
    finish(h);
}

/// The offline HTTP path README shows: the fake server, then each prompt
/// line as written (with the binary under test for `cargo run`, and the
/// fake's own port for README's, which a reader may be using).
#[test]
fn the_fake_model_server_commands_work_as_written() {
    let text = readme();
    let part = section(&text, "### Without a key: the fake model server");
    let lines: Vec<&str> = part
        .lines()
        .filter(|l| l.starts_with("    "))
        .map(str::trim)
        .collect();
    // The server, the exports, then one prompt line per API.
    let exports_end = 1 + lines[1..]
        .iter()
        .take_while(|l| l.starts_with("export "))
        .count();
    let prompts = &lines[exports_end..];
    assert!(exports_end > 1 && prompts.len() >= 2, "{lines:?}");
    let port: u16 = lines[0]
        .split_whitespace()
        .skip_while(|w| *w != "--port")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("a --port");
    // On a port of its own: README's may be taken (by a reader trying it).
    let fake = crate::common::fake_http::FakeServer::start();
    let exports: Vec<(String, String)> = lines[1..exports_end]
        .iter()
        .flat_map(|l| l.trim_start_matches("export ").split_whitespace())
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            (
                k.to_owned(),
                v.replace(&port.to_string(), &fake.port.to_string()),
            )
        })
        .collect();
    let on_the_fake = format!("http://127.0.0.1:{}", fake.port);
    let bases: Vec<_> = exports
        .iter()
        .filter(|(k, _)| k.ends_with("_BASE_URL"))
        .collect();
    assert!(
        !bases.is_empty() && bases.iter().all(|(_, v)| v.starts_with(&on_the_fake)),
        "every base URL on the fake's port: {exports:?}"
    );
    for line in prompts {
        let (input, command) = line.split_once(" | cargo run -- ").expect("a prompt line");
        let message = input
            .trim_start_matches("printf '")
            .trim_end_matches("\\n'");
        let data = tempfile::tempdir().expect("data dir");
        let mut cmd = std::process::Command::new(bin());
        cmd.args(command.split_whitespace())
            .arg("--data-dir")
            .arg(data.path())
            .env("XDG_CONFIG_HOME", data.path().join("cfg"))
            .envs(exports.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn rpc");
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        writeln!(stdin, "{message}").expect("write the prompt");
        drop(stdin);
        let status = wait_timeout(&mut child, Duration::from_secs(30)).expect("rpc exits");
        let mut out = String::new();
        use std::io::Read;
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read");
        assert!(status.success(), "{line}: {status:?}\n{out}");
        let answer = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|f| f["type"] == "response" && f["command"] == "prompt")
            .unwrap_or_else(|| panic!("{line}: no answer in\n{out}"));
        assert_eq!(answer["ok"], true, "{line}: {answer}");
        let frames: Vec<Value> = out
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        assert_eq!(text_of(&frames), "Say hi", "{line}: the fake's echo");
    }
    assert_eq!(
        fake.api_requests().len(),
        prompts.len(),
        "each prompt reached the fake"
    );
}
