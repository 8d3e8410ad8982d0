//! One provider round: the stream forwarded as `message_update` events while
//! the assistant message is assembled, with abort and the idle timeout.
//!
//! Events that are already waiting are collected into one batch and handed
//! to the sink together when the stream has nothing more ready, so a fast
//! provider costs one sink call (one channel message and one writer wake-up
//! on either wire) per burst rather than per delta, while a slow one still
//! sees each delta at once.

use std::time::Duration;

use super::{failed, Stop, TurnCtx};
use crate::message::{AssistantBuilder, Block, Usage};
use crate::protocol::{AutoRetryFrame, Frame, StreamEvent};
use crate::provider::{Completion, Event, ProviderStream};
use crate::sink::Sink;

type RoundError = (Stop, Usage);

/// A batch is handed to the sink once its text reaches this size even
/// mid-burst, which bounds both its memory and how long a delta waits in it.
const BATCH_BYTES: usize = 64 * 1024;

/// What an event costs in a batch besides its text: about the JSON around
/// a delta, so that a burst of tiny deltas is bounded too.
const EVENT_OVERHEAD: usize = 64;

/// Events of one burst, handed on as one unit.
struct Batch<'a> {
    out: &'a Sink,
    prompt_id: &'a str,
    events: Vec<StreamEvent>,
    bytes: usize,
}

impl Batch<'_> {
    async fn update(&mut self, event: StreamEvent) {
        self.bytes += EVENT_OVERHEAD + event_text_len(&event);
        self.events.push(event);
        if self.bytes >= BATCH_BYTES {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if !self.events.is_empty() {
            self.out.updates(self.prompt_id, &self.events).await;
            // Kept for the next burst: its capacity is pointers, not text.
            self.events.clear();
            self.bytes = 0;
        }
    }

    /// A frame of its own, after everything batched before it.
    async fn frame(&mut self, frame: &Frame) {
        self.flush().await;
        self.out.frame(frame).await;
    }
}

/// The text an event carries (what dominates its size on any wire).
fn event_text_len(event: &StreamEvent) -> usize {
    match event {
        StreamEvent::TextDelta { delta } | StreamEvent::ThinkingDelta { delta } => delta.len(),
        StreamEvent::ToolcallDelta { delta, .. } => delta.len(),
        _ => 0,
    }
}

/// Forwards one provider round. On failure the builder keeps what arrived.
pub(super) async fn one_round(
    prompt_id: &str,
    mut stream: ProviderStream,
    ctx: &TurnCtx,
    builder: &mut AssistantBuilder,
    idle: Duration,
) -> Result<(Completion, Usage), RoundError> {
    let mut batch = Batch {
        out: &ctx.out,
        prompt_id,
        events: Vec::new(),
        bytes: 0,
    };
    let result = forward(&mut stream, ctx, builder, idle, &mut batch).await;
    // Whatever the outcome, the deltas shown so far go out before the
    // turn reports it (agent_end must follow every delta).
    batch.flush().await;
    match result {
        Err((Stop::Cancelled, usage)) => {
            stream.cancel().await;
            Err((Stop::Cancelled, usage))
        }
        other => other,
    }
}

/// Sends each event on to the client and into the message being built,
/// until the round's final answer.
async fn forward(
    stream: &mut ProviderStream,
    ctx: &TurnCtx,
    builder: &mut AssistantBuilder,
    idle: Duration,
    batch: &mut Batch<'_>,
) -> Result<(Completion, Usage), RoundError> {
    let mut last_usage: Option<Usage> = None;
    loop {
        let event = match next_event(stream, ctx, idle, batch).await {
            Ok(event) => event,
            Err(stop) => return Err((stop, last_usage.unwrap_or_default())),
        };
        match event {
            Event::Delta(delta) => {
                keep(builder, &delta);
                batch.update(delta).await;
            }
            Event::ThinkingSignature(sig) => builder.signature(&sig),
            Event::Reasoning(item) => builder.reasoning(item),
            Event::Usage(u) => last_usage = Some(u),
            Event::Retry {
                attempt,
                delay_ms,
                reason,
            } => {
                let frame = Frame::AutoRetry(AutoRetryFrame {
                    prompt_id: batch.prompt_id.to_owned(),
                    attempt,
                    delay_ms,
                    reason,
                });
                batch.frame(&frame).await;
            }
            Event::Done(completion) => {
                let usage = completion.usage.or(last_usage).unwrap_or_default();
                return Ok((completion, usage));
            }
        }
    }
}

/// The next event: one that is already waiting, else (once the burst so
/// far is shown) the next to arrive, bounded by abort and the idle timeout.
async fn next_event(
    stream: &mut ProviderStream,
    ctx: &TurnCtx,
    idle: Duration,
    batch: &mut Batch<'_>,
) -> Result<Event, Stop> {
    if ctx.cancel.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    let item = match stream.try_next() {
        Some(item) => item,
        None => {
            batch.flush().await;
            let waited = tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => return Err(Stop::Cancelled),
                item = next(stream, idle) => item,
            };
            match waited {
                Ok(item) => item,
                Err(_) => {
                    let message = stream.idle_failure(idle.as_secs());
                    stream.abandon("was killed after sending nothing within the idle timeout");
                    return Err(failed(message));
                }
            }
        }
    };
    item.map_err(|e| failed(format!("{e:#}")))
}

/// The stream's next item, bounded by the idle timeout where the stream
/// does not keep its own.
async fn next(
    stream: &mut ProviderStream,
    idle: Duration,
) -> Result<anyhow::Result<Event>, tokio::time::error::Elapsed> {
    if stream.needs_idle_timeout() {
        tokio::time::timeout(idle, stream.next()).await
    } else {
        Ok(stream.next().await)
    }
}

/// What a delta adds to the message being built. Only a finished tool call
/// becomes a block; its start and pieces are for the client's display.
fn keep(builder: &mut AssistantBuilder, delta: &StreamEvent) {
    match delta {
        StreamEvent::TextDelta { delta } => builder.text(delta),
        StreamEvent::ThinkingDelta { delta } => builder.thinking(delta),
        StreamEvent::ToolcallEnd {
            tool_call_id,
            name,
            input,
        } => builder.block(Block::ToolUse {
            id: tool_call_id.clone(),
            name: name.clone(),
            input: input.clone(),
        }),
        StreamEvent::ToolcallStart { .. } | StreamEvent::ToolcallDelta { .. } => {}
    }
}
