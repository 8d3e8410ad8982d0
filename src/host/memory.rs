//! A host driven in memory, for tests: the typed boundary a front end uses
//! (a [`HostHandle`] in, a sink out), without a process or a pipe, the way
//! lsp-server's `Connection::memory()` serves its tests.
//!
//! The sink keeps each frame as the JSON value the native wire would carry,
//! so a test compares frames as a client would see them; commands and
//! answers stay typed. Tests that check the real binary (framing, exit
//! codes, signals, real clients) still spawn it.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};

use super::{channel, Answer, Host, HostGone, HostHandle, Parts, SessionSettings, Signals};
use crate::protocol::{Command, Frame, MessageUpdate, StreamEvent};
use crate::sink::{BoxFuture, FrameSink, Sink};

/// A running host and what it wrote.
pub(crate) struct MemoryHost {
    handle: HostHandle,
    frames: mpsc::UnboundedReceiver<Value>,
    settings: watch::Receiver<SessionSettings>,
    running: tokio::task::JoinHandle<i32>,
}

/// Starts a host on a session's parts (`factory::prepare` makes them from
/// flags, as `rpc` would). Must run inside a tokio runtime.
pub(crate) fn start(parts: Parts) -> MemoryHost {
    let (tx, frames) = mpsc::unbounded_channel();
    let (handle, submissions) = channel();
    let (host, channels) = Host::new(parts, Sink::new(MemorySink { tx }));
    let settings = host.settings();
    let (_never, closed) = oneshot::channel();
    let running = tokio::spawn(host.run(submissions, channels, closed, Signals::none()));
    MemoryHost {
        handle,
        frames,
        settings,
        running,
    }
}

impl MemoryHost {
    /// Sends a command and waits (bounded) for its typed answer.
    pub(crate) async fn call(&self, command: Command) -> Result<Answer, HostGone> {
        let within = tokio::time::timeout(Duration::from_secs(10), self.handle.call(command));
        within.await.map_err(|_| HostGone)?
    }

    /// The session's settings as the host published them last.
    pub(crate) fn settings(&self) -> SessionSettings {
        self.settings.borrow().clone()
    }

    /// The host's handle, to send from another task.
    pub(crate) fn handle(&self) -> HostHandle {
        self.handle.clone()
    }

    /// Frames up to and including the first of type `kind`, waiting at
    /// most `within` in all.
    pub(crate) async fn frames_until(&mut self, kind: &str, within: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, self.frames.recv()).await {
            let done = frame["type"] == kind;
            seen.push(frame);
            if done {
                break;
            }
        }
        seen
    }

    /// Asks the host to shut down and returns its exit code.
    pub(crate) async fn shutdown(self) -> Option<i32> {
        let _ = self.call(Command::Shutdown).await;
        drop(self.handle);
        let done = tokio::time::timeout(Duration::from_secs(5), self.running).await;
        done.ok().and_then(Result::ok)
    }
}

/// Frames as JSON values on a channel.
struct MemorySink {
    tx: mpsc::UnboundedSender<Value>,
}

impl MemorySink {
    fn push(&self, frame: &impl serde::Serialize) {
        match serde_json::to_value(frame) {
            Ok(value) => {
                let _ = self.tx.send(value);
            }
            Err(e) => tracing::error!("a frame could not be serialised: {e}"),
        }
    }
}

impl FrameSink for MemorySink {
    fn frame<'a>(&'a self, frame: &'a Frame) -> BoxFuture<'a, ()> {
        self.push(frame);
        Box::pin(std::future::ready(()))
    }

    fn updates<'a>(&'a self, prompt_id: &'a str, events: &'a [StreamEvent]) -> BoxFuture<'a, ()> {
        for event in events {
            self.push(&MessageUpdate {
                kind: "message_update",
                prompt_id,
                event,
            });
        }
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use crate::factory::prepare;
    use crate::protocol::Mode;
    use crate::protocol::ThinkingLevel;
    use crate::protocol::{
        ErrorCode, PromptParams, Response, SetPermissionModeParams, SetThinkingLevelParams,
    };
    use clap::Parser;
    use std::path::Path;

    const ECHO: &str = "echo:echo:echo-1";
    const WAIT: Duration = Duration::from_secs(15);

    fn cli(data: &Path, extra: &[&str]) -> Cli {
        let echo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers/echo");
        let slow = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/providers/slow");
        let mut args = vec![
            "rpc".to_owned(),
            "--data-dir".into(),
            data.display().to_string(),
            "--extension".into(),
            echo.display().to_string(),
            "--extension".into(),
            slow.display().to_string(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        Cli::try_parse_from(args).expect("flags")
    }

    fn prompt(message: &str) -> Command {
        Command::Prompt(PromptParams {
            message: message.into(),
            attachments: Vec::new(),
        })
    }

    #[tokio::test]
    async fn a_prompt_is_answered_typed_after_every_frame_of_its_turn() {
        let data = tempfile::tempdir().expect("tempdir");
        let mut host = start(prepare(&cli(data.path(), &["--model", ECHO])).expect("parts"));
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
        assert_eq!(
            frames.last().map(|f| f["type"].clone()),
            Some("agent_end".into())
        );
        assert_eq!(host.shutdown().await, Some(0));
    }

    #[tokio::test]
    async fn a_second_prompt_while_one_runs_is_busy_and_the_first_goes_on() {
        let data = tempfile::tempdir().expect("tempdir");
        let mut host =
            start(prepare(&cli(data.path(), &["--model", "slow:slow:slow-1"])).expect("parts"));
        let handle = host.handle();
        let first = tokio::spawn(async move { handle.call(prompt("one two three")).await });
        let started = host.frames_until("agent_start", WAIT).await;
        assert!(started.iter().any(|f| f["type"] == "agent_start"));
        let second = host.call(prompt("again")).await.expect("answered");
        assert!(
            matches!(&second, Err(e) if e.code == ErrorCode::Busy),
            "{second:?}"
        );
        let first = tokio::time::timeout(WAIT, first).await.expect("in time");
        assert!(matches!(first, Ok(Ok(Ok(Response::Turn(_))))), "{first:?}");
        host.shutdown().await;
    }

    #[tokio::test]
    async fn a_setting_is_persisted_and_published_by_its_one_owner() {
        let data = tempfile::tempdir().expect("tempdir");
        let flags = cli(data.path(), &["--model", ECHO]);
        let host = start(prepare(&flags).expect("parts"));
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
        let Ok(Ok(Response::GetState(state))) = host.call(Command::GetState).await else {
            panic!("no state");
        };
        host.shutdown().await;
        // A new host on the same session reads both back from disk.
        let again = cli(
            data.path(),
            &["--continue", &state.session_id, "--model", ECHO],
        );
        let parts = prepare(&again).expect("reopened");
        assert_eq!(parts.session.permission_mode, Some(Mode::ReadOnly));
        assert_eq!(parts.session.thinking_level, ThinkingLevel::High);
    }
}
