//! One provider round in flight, whatever the provider kind.
//!
//! Extensions deliver through the process's request routing; HTTP rounds run
//! as a task that sends [`StreamMsg`]s. Either way the turn sees the same
//! [`StreamItem`]s, and cancelling follows each kind's own rules: an
//! extension is asked, given a grace, then killed; an HTTP task is simply
//! dropped, which closes the connection at once.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::extension::{Incoming, Proc};
use super::{Completion, ProviderEvent};
use crate::message::Block;
use crate::message::Usage;

/// What an HTTP round task sends.
#[derive(Debug)]
pub enum StreamMsg {
    Event(ProviderEvent),
    Done(Completion),
    Failed(String),
}

/// What a round yields to the turn.
pub enum StreamItem {
    Event(ProviderEvent),
    Done(Completion),
}

enum Kind {
    Extension {
        proc: Arc<Proc>,
        id: u64,
        rx: mpsc::Receiver<Incoming>,
        grace: Duration,
    },
    Http {
        rx: mpsc::Receiver<StreamMsg>,
        task: AbortOnDrop,
    },
}

/// Aborts the HTTP task when the round is dropped on any path, so a round
/// can never outlive its turn.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub struct ProviderStream {
    kind: Kind,
}

impl ProviderStream {
    pub(super) fn extension(
        proc: Arc<Proc>,
        id: u64,
        rx: mpsc::Receiver<Incoming>,
        grace: Duration,
    ) -> Self {
        ProviderStream {
            kind: Kind::Extension {
                proc,
                id,
                rx,
                grace,
            },
        }
    }

    pub(super) fn http(rx: mpsc::Receiver<StreamMsg>, task: JoinHandle<()>) -> Self {
        ProviderStream {
            kind: Kind::Http {
                rx,
                task: AbortOnDrop(task),
            },
        }
    }

    /// HTTP rounds time out (and retry) on their own; an extension round
    /// needs the turn to watch for silence.
    pub fn needs_idle_timeout(&self) -> bool {
        matches!(self.kind, Kind::Extension { .. })
    }

    /// An item that is already waiting, without waiting for one. `None` when
    /// nothing is ready (or the stream ended: [`ProviderStream::next`] then
    /// says how).
    pub fn try_next(&mut self) -> Option<Result<StreamItem, String>> {
        match &mut self.kind {
            Kind::Extension { proc, rx, .. } => Some(from_extension(proc, rx.try_recv().ok()?)),
            Kind::Http { rx, .. } => Some(from_http(rx.try_recv().ok()?)),
        }
    }

    /// The next event or the final answer; `Err` when the round failed.
    pub async fn next(&mut self) -> Result<StreamItem, String> {
        match &mut self.kind {
            Kind::Extension { proc, rx, .. } => match rx.recv().await {
                Some(msg) => from_extension(proc, msg),
                None => Err(proc.failure().await),
            },
            Kind::Http { rx, .. } => match rx.recv().await {
                Some(msg) => from_http(msg),
                None => Err("the provider task ended without an answer".into()),
            },
        }
    }

    /// Cancels the round. An extension gets `$/cancel_request` and a short
    /// grace before it is killed; an HTTP stream is dropped at once.
    pub async fn cancel(self) {
        match self.kind {
            Kind::Extension {
                proc,
                id,
                mut rx,
                grace,
            } => {
                proc.notify("$/cancel_request", json!({ "id": id }));
                let finished = tokio::time::timeout(grace, async {
                    loop {
                        match rx.recv().await {
                            Some(Incoming::Event(_)) => continue,
                            _ => return,
                        }
                    }
                })
                .await;
                if finished.is_err() {
                    tracing::info!("extension ignored cancel; killing it");
                    proc.kill("was killed after ignoring a cancel");
                }
                proc.forget(id);
            }
            Kind::Http { task, .. } => drop(task),
        }
    }

    /// The message for a round that went silent for `secs`.
    pub fn idle_failure(&self, secs: u64) -> String {
        let what = format!("sent nothing for {secs} s (--provider-idle-timeout) and was stopped");
        match &self.kind {
            Kind::Extension { proc, .. } => proc.describe(&what),
            Kind::Http { .. } => format!("the provider {what}"),
        }
    }

    /// Gives up on a stalled round. A stalled extension is killed, since it
    /// may still be producing output for it.
    pub fn abandon(&self, why: &str) {
        match &self.kind {
            Kind::Extension { proc, .. } => proc.kill(why),
            Kind::Http { task, .. } => task.0.abort(),
        }
    }
}

/// What an extension's message means for the round. An `error` stream
/// event fails it like an error response does.
fn from_extension(proc: &Proc, msg: Incoming) -> Result<StreamItem, String> {
    match msg {
        Incoming::Event(ProviderEvent::Error(message)) => {
            Err(proc.with_stderr(format!("the provider reported an error: {message}")))
        }
        Incoming::Event(e) => Ok(StreamItem::Event(e)),
        Incoming::Result(v) => Ok(StreamItem::Done(parse_completion(v))),
        Incoming::Error(e) => {
            Err(proc.with_stderr(format!("the provider failed the request: {e}")))
        }
    }
}

fn from_http(msg: StreamMsg) -> Result<StreamItem, String> {
    match msg {
        StreamMsg::Event(e) => Ok(StreamItem::Event(e)),
        StreamMsg::Done(c) => Ok(StreamItem::Done(c)),
        StreamMsg::Failed(e) => Err(e),
    }
}

/// The final result of a round. Strings are moved out of the value rather
/// than cloned: for a long answer the result repeats every streamed delta,
/// and copying it would double the turn's peak memory.
fn parse_completion(mut v: Value) -> Completion {
    let content = match v.get_mut("content").map(Value::take) {
        Some(Value::String(text)) => vec![Block::Text { text }],
        Some(blocks @ Value::Array(_)) => serde_json::from_value(blocks).unwrap_or_default(),
        _ => Vec::new(),
    };
    Completion {
        content,
        stop_reason: v
            .get("stop_reason")
            .and_then(Value::as_str)
            .map(str::to_owned),
        usage: v
            .get_mut("usage")
            .map(Value::take)
            .and_then(|u| serde_json::from_value::<Usage>(u).ok()),
    }
}
