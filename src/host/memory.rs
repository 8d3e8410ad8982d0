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

/// How long `shutdown` waits for the host task to end.
const SHUTDOWN_BOUND: Duration = Duration::from_secs(30);
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

    /// Asks the host to shut down and returns its exit code, once it has
    /// ended (its session file closed, so its lock is released).
    pub(crate) async fn shutdown(self) -> Option<i32> {
        let _ = self.call(Command::Shutdown).await;
        drop(self.handle);
        // A bound against a hang, not a speed check: on a loaded machine
        // stopping the extensions took longer than an earlier 5 s, and a
        // test reopening the session then found it still locked.
        let done = tokio::time::timeout(SHUTDOWN_BOUND, self.running).await;
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
                parent_tool_call_id: None,
            });
        }
        Box::pin(std::future::ready(()))
    }

    fn nested_updates<'a>(
        &'a self,
        prompt_id: &'a str,
        parent: &'a str,
        events: &'a [StreamEvent],
    ) -> BoxFuture<'a, ()> {
        for event in events {
            self.push(&MessageUpdate {
                kind: "message_update",
                prompt_id,
                event,
                parent_tool_call_id: Some(parent),
            });
        }
        Box::pin(std::future::ready(()))
    }
}
