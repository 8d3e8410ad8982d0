//! The host's logic checked through the memory host (`memory.rs`): typed
//! commands in, typed answers and the frames a client would see out, no
//! process or pipe. What only a real process shows (framing, exit codes,
//! signals, real clients) is tested on the binary in `tests/`.

use std::path::Path;
use std::time::Duration;

use clap::Parser;

use super::memory::{start, MemoryHost};
use crate::cli::Cli;
use crate::error::Coded;
use crate::factory::prepare;
use crate::protocol::{
    Command, ErrorCode, MessageParams, Mode, PromptParams, Response, SetModelParams,
    SetPermissionModeParams, SetThinkingLevelParams, StateResponse, ThinkingLevel,
};

const ECHO: &str = "echo:echo:echo-1";
const SLOW: &str = "slow:slow:slow-1";
const WAIT: Duration = Duration::from_secs(15);

/// Flags for a host with the echo and slow fixture extensions.
fn cli(data: &Path, extra: &[&str]) -> Cli {
    let fixture = |name: &str| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers");
        dir.join(name).display().to_string()
    };
    let mut args = vec![
        "rpc".to_owned(),
        "--data-dir".into(),
        data.display().to_string(),
    ];
    for name in ["echo", "slow"] {
        args.extend(["--extension".to_owned(), fixture(name)]);
    }
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    Cli::try_parse_from(args).expect("flags")
}

fn host_on(data: &Path, model: &str) -> MemoryHost {
    start(prepare(&cli(data, &["--model", model])).expect("parts").1)
}

fn prompt(message: &str) -> Command {
    Command::Prompt(PromptParams {
        message: message.into(),
        attachments: Vec::new(),
    })
}

async fn state(host: &MemoryHost) -> StateResponse {
    match host.call(Command::GetState).await {
        Ok(Ok(Response::GetState(state))) => state,
        other => panic!("no state: {other:?}"),
    }
}

/// The parts of `get_state` a rejected command must leave as they were.
fn summary(s: &StateResponse) -> (bool, Option<String>, String, usize, usize) {
    (
        s.streaming,
        s.model.clone(),
        s.session_id.clone(),
        s.message_count,
        s.queued,
    )
}

/// `command` is refused with `code`, and the state is as it was.
async fn refused(host: &MemoryHost, command: Command, code: ErrorCode) -> Coded {
    let before = summary(&state(host).await);
    let answer = host.call(command).await.expect("answered");
    let Err(err) = answer else {
        panic!("accepted: {answer:?}");
    };
    assert_eq!(err.code, code, "{err:?}");
    assert!(!err.message.is_empty());
    assert_eq!(summary(&state(host).await), before, "after {err:?}");
    err
}

/// A host past one prompt, so rejections are checked against a session
/// with history.
async fn primed(data: &Path) -> MemoryHost {
    let host = host_on(data, ECHO);
    let answer = host.call(prompt("hello there")).await;
    assert!(matches!(answer, Ok(Ok(Response::Turn(_)))), "{answer:?}");
    assert_eq!(state(&host).await.message_count, 2);
    host
}

#[tokio::test]
async fn a_prompt_is_answered_typed_after_every_frame_of_its_turn() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut host = host_on(data.path(), ECHO);
    let answer = host.call(prompt("hello there")).await.expect("answered");
    let Ok(Response::Turn(turn)) = answer else {
        panic!("not a turn: {answer:?}");
    };
    assert_eq!(turn.stop_reason, "end_turn");
    // The answer is sent after agent_end: by now every frame is here.
    let frames = host
        .frames_until("agent_end", Duration::from_millis(1))
        .await;
    let text: String = frames
        .iter()
        .filter(|f| f["type"] == "message_update")
        .filter_map(|f| f["event"]["delta"].as_str())
        .collect();
    assert_eq!(text.trim(), "hello there");
    let last = frames.last().map(|f| f["type"].clone());
    assert_eq!(last, Some("agent_end".into()));
    assert_eq!(host.shutdown().await, Some(0));
}

/// Moved from the subprocess tests (`prompt_or_new_session_while_streaming_is_busy`).
#[tokio::test]
async fn a_prompt_or_new_session_while_one_runs_is_busy_and_the_turn_goes_on() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut host = host_on(data.path(), SLOW);
    let handle = host.handle();
    let first = tokio::spawn(async move { handle.call(prompt("[[n=200 delay_ms=20]]")).await });
    let started = host.frames_until("message_update", WAIT).await;
    assert!(started.iter().any(|f| f["type"] == "message_update"));
    let before = state(&host).await;
    assert!(before.streaming);
    for command in [prompt("me too"), Command::NewSession] {
        let err = refused(&host, command, ErrorCode::Busy).await;
        assert_eq!(err.message, "another prompt is in flight; abort first");
    }
    assert!(matches!(
        host.call(Command::Abort).await,
        Ok(Ok(Response::Abort(_)))
    ));
    let first = tokio::time::timeout(WAIT, first).await.expect("in time");
    let Ok(Ok(Ok(Response::Turn(turn)))) = first else {
        panic!("the first prompt: {first:?}");
    };
    assert!(turn.cancelled, "{turn:?}");
    host.shutdown().await;
}

/// Moved from the subprocess tests (`steer_when_idle_is_not_streaming`).
#[tokio::test]
async fn steer_when_idle_is_not_streaming() {
    let data = tempfile::tempdir().expect("tempdir");
    let host = primed(data.path()).await;
    let steer = Command::Steer(MessageParams {
        message: "go left".into(),
    });
    refused(&host, steer, ErrorCode::NotStreaming).await;
    host.shutdown().await;
}

/// Moved from the subprocess tests (the two `set_model_to_an_unknown_…`).
#[tokio::test]
async fn set_model_to_an_unknown_or_malformed_model_is_not_found_and_a_good_one_works() {
    let data = tempfile::tempdir().expect("tempdir");
    let host = primed(data.path()).await;
    let bad = [
        "nope:echo:echo-1",
        "echo-1",
        "echo:echo",
        "",
        "::",
        "echo::echo-1",
        "echo:nope:echo-1",
        "echo:echo:echo-99",
    ];
    for model in bad {
        let set = Command::SetModel(SetModelParams {
            model: model.into(),
        });
        refused(&host, set, ErrorCode::NotFound).await;
    }
    let good = Command::SetModel(SetModelParams {
        model: "echo:echo:echo-complete".into(),
    });
    let answer = host.call(good).await.expect("answered");
    assert!(
        matches!(&answer, Ok(Response::SetModel(set)) if set.model == "echo:echo:echo-complete"),
        "{answer:?}"
    );
    let model = state(&host).await.model;
    assert_eq!(model.as_deref(), Some("echo:echo:echo-complete"));
    host.shutdown().await;
}

#[tokio::test]
async fn a_setting_is_persisted_and_published_by_its_one_owner() {
    let data = tempfile::tempdir().expect("tempdir");
    let host = host_on(data.path(), ECHO);
    let set = Command::SetPermissionMode(SetPermissionModeParams {
        mode: Mode::ReadOnly,
    });
    assert!(matches!(host.call(set).await, Ok(Ok(_))));
    let level = Command::SetThinkingLevel(SetThinkingLevelParams {
        level: ThinkingLevel::High,
    });
    assert!(matches!(host.call(level).await, Ok(Ok(_))));
    // Published before the answers, for front ends to read.
    let now = host.settings();
    assert_eq!(
        (now.mode, now.thinking),
        (Mode::ReadOnly, ThinkingLevel::High)
    );
    let id = state(&host).await.session_id;
    host.shutdown().await;
    // A new host on the same session reads both back from disk.
    let again = cli(data.path(), &["--continue", &id, "--model", ECHO]);
    let (_, parts) = prepare(&again).expect("reopened");
    assert_eq!(parts.session.permission_mode, Some(Mode::ReadOnly));
    assert_eq!(parts.session.thinking_level, ThinkingLevel::High);
}
