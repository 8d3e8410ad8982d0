//! One round against an extension: the `provider.stream` (or
//! `provider.complete`) request, its events as the process's reader routes
//! them, and cancel by `$/cancel_request`, a grace, then a kill.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::anyhow;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::{Extension, Incoming, Proc};
use crate::message::{Block, Usage};
use crate::provider::{BoxFuture, Completion, Event, ExtModelId, ProviderStream, Request, Round};

/// Sends the round's request to the extension and returns its stream.
pub(crate) async fn open(
    ext: &Extension,
    id: &ExtModelId<'_>,
    req: &Request<'_>,
    grace: Duration,
) -> anyhow::Result<ProviderStream> {
    let info = ext.model(id).await?;
    // Extensions get the history in its stored shape, host markers dropped.
    let messages: Vec<Value> = req.history.iter().map(|m| m.to_provider()).collect();
    let params = json!({
        "provider_id": id.provider,
        "model_id": id.model,
        "model": id.model,
        "messages": messages,
        "system_prompt": req.system_prompt,
        // A model that declares no tool use is not offered tools.
        "tools": if info.tool_use { req.tools } else { &[] },
        "temperature": req.temperature,
        "max_tokens": req.max_tokens,
        // Sent whatever the model declares: the extension maps (or ignores) it.
        "thinking_level": req.thinking,
    });
    let method = if info.streaming {
        "provider.stream"
    } else {
        "provider.complete"
    };
    let (proc, slot) = free_proc(ext).await?;
    let (id, rx) = proc.request(method, params, info.streaming).await?;
    Ok(ProviderStream(Box::new(ExtensionRound {
        proc,
        id,
        rx,
        grace,
        _slot: slot,
    })))
}

/// The extension's process once it is free for this round. Waiting here
/// is bounded by the other round; an abort meanwhile wins (the engine
/// selects on it while a round opens). The round waited for may end by
/// killing the process (another session's cancel that it ignored): this
/// round was not cancelled, so it takes the restarted process instead.
/// Once only: a process that dies again before the round starts is a
/// failure the request reports, not a reason to restart it in a loop.
async fn free_proc(
    ext: &Extension,
) -> anyhow::Result<(Arc<Proc>, Option<tokio::sync::OwnedSemaphorePermit>)> {
    let proc = ext.proc().await?;
    let slot = proc.round_slot().await;
    if proc.is_alive() {
        return Ok((proc, slot));
    }
    drop(slot);
    let proc = ext.proc().await?;
    let slot = proc.round_slot().await;
    Ok((proc, slot))
}

struct ExtensionRound {
    proc: Arc<Proc>,
    id: u64,
    rx: mpsc::Receiver<Incoming>,
    grace: Duration,
    /// This process's one round (released when the round is dropped).
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl ExtensionRound {
    /// What a message from the extension means for the round. An `error`
    /// stream event fails it like an error response does.
    fn item(&self, msg: Incoming) -> anyhow::Result<Event> {
        match msg {
            Incoming::Event(e) => Ok(e),
            Incoming::Result(v) => Ok(Event::Done(parse_completion(v))),
            Incoming::Failed(message) => Err(anyhow!(self
                .proc
                .with_stderr(format!("the provider reported an error: {message}")))),
            Incoming::Error(e) => Err(anyhow!(self
                .proc
                .with_stderr(format!("the provider failed the request: {e}")))),
        }
    }
}

impl Round for ExtensionRound {
    fn try_next(&mut self) -> Option<anyhow::Result<Event>> {
        let msg = self.rx.try_recv().ok()?;
        Some(self.item(msg))
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<anyhow::Result<Event>>> {
        self.rx
            .poll_recv(cx)
            .map(|msg| msg.map(|msg| self.item(msg)))
    }

    fn closed(&self) -> BoxFuture<'_, anyhow::Error> {
        Box::pin(async { anyhow!(self.proc.failure().await) })
    }

    fn needs_idle_timeout(&self) -> bool {
        true
    }

    fn idle_failure(&self, secs: u64) -> String {
        self.proc.describe(&format!(
            "sent nothing for {secs} s (--provider-idle-timeout) and was stopped"
        ))
    }

    fn abandon(&self, why: &str) {
        self.proc.kill(why)
    }

    fn cancel(self: Box<Self>) -> BoxFuture<'static, ()> {
        let ExtensionRound {
            proc,
            id,
            mut rx,
            grace,
            _slot: slot,
        } = *self;
        Box::pin(async move {
            proc.notify("$/cancel_request", json!({ "id": id }));
            // Events still in flight are drained until the request is
            // answered; one that never is gets its process killed.
            let finished = tokio::time::timeout(grace, async {
                while let Some(Incoming::Event(_) | Incoming::Failed(_)) = rx.recv().await {}
            })
            .await;
            if finished.is_err() {
                tracing::info!("extension ignored cancel; killing it");
                proc.kill("was killed after ignoring a cancel");
            }
            proc.forget(id);
            drop(slot);
        })
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
