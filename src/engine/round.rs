//! One provider round: the stream forwarded as `message_update` events while
//! the assistant message is assembled, with abort and the idle timeout.
//!
//! Events that are already waiting are encoded into one batch and handed to
//! the stdout writer together when the stream has nothing more ready, so a
//! fast provider costs one channel message and one writer wake-up per burst
//! rather than per delta, while a slow one still sees each delta at once.

use std::time::Duration;

use super::{failed, Stop, TurnCtx};
use crate::message::Usage;
use crate::message::{AssistantBuilder, Block};
use crate::protocol::{AutoRetryFrame, Frame, StreamEvent};
use crate::provider::{Completion, ProviderEvent, ProviderStream, StreamItem};
use crate::transport::Outbox;

type RoundError = (Stop, Usage);

/// A batch is handed to the writer at this size even mid-burst, which
/// bounds both its memory and how long a delta waits in it.
const BATCH_BYTES: usize = 64 * 1024;

/// The stream's next item, bounded by the idle timeout where the stream
/// does not keep its own.
async fn next(
    stream: &mut ProviderStream,
    idle: Duration,
) -> Result<Result<StreamItem, String>, tokio::time::error::Elapsed> {
    if stream.needs_idle_timeout() {
        tokio::time::timeout(idle, stream.next()).await
    } else {
        Ok(stream.next().await)
    }
}

/// Frames of one burst, written out as one unit.
struct Batch<'a> {
    out: &'a Outbox,
    prompt_id: &'a str,
    buf: Vec<u8>,
}

impl Batch<'_> {
    async fn update(&mut self, event: &StreamEvent) {
        Outbox::encode_update(&mut self.buf, self.prompt_id, event);
        if self.buf.len() >= BATCH_BYTES {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if !self.buf.is_empty() {
            // Not pre-sized: a burst of one delta must not pin kilobytes
            // while it waits in the writer's queue (the byte budget counts
            // lengths, so spare capacity would escape it).
            let lines = std::mem::take(&mut self.buf);
            self.out.lines(lines).await;
        }
    }

    /// A frame of its own, after everything batched before it.
    async fn frame(&mut self, frame: &Frame) {
        self.flush().await;
        self.out.frame(frame).await;
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
        buf: Vec::new(),
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

async fn forward(
    stream: &mut ProviderStream,
    ctx: &TurnCtx,
    builder: &mut AssistantBuilder,
    idle: Duration,
    batch: &mut Batch<'_>,
) -> Result<(Completion, Usage), RoundError> {
    let mut last_usage: Option<Usage> = None;
    loop {
        if ctx.cancel.is_cancelled() {
            return Err((Stop::Cancelled, last_usage.unwrap_or_default()));
        }
        let item = match stream.try_next() {
            Some(item) => Ok(item),
            None => {
                // Nothing more is ready: show what the burst brought, then wait.
                batch.flush().await;
                tokio::select! {
                    biased;
                    _ = ctx.cancel.cancelled() => {
                        return Err((Stop::Cancelled, last_usage.unwrap_or_default()));
                    }
                    item = next(stream, idle) => item,
                }
            }
        };
        let item = match item {
            Ok(Ok(item)) => item,
            Ok(Err(e)) => return Err((failed(e), last_usage.unwrap_or_default())),
            Err(_) => {
                let message = stream.idle_failure(idle.as_secs());
                stream.abandon("was killed after sending nothing within the idle timeout");
                return Err((failed(message), last_usage.unwrap_or_default()));
            }
        };
        match item {
            StreamItem::Event(ProviderEvent::Text(delta)) => {
                let ev = StreamEvent::TextDelta { delta };
                batch.update(&ev).await;
                if let StreamEvent::TextDelta { delta } = &ev {
                    builder.text(delta);
                }
            }
            StreamItem::Event(ProviderEvent::Thinking(delta)) => {
                let ev = StreamEvent::ThinkingDelta { delta };
                batch.update(&ev).await;
                if let StreamEvent::ThinkingDelta { delta } = &ev {
                    builder.thinking(delta);
                }
            }
            StreamItem::Event(ProviderEvent::ToolUse { id, name, input }) => {
                let start = StreamEvent::ToolcallStart {
                    tool_call_id: id.clone(),
                    name: name.clone(),
                };
                batch.update(&start).await;
                let end = StreamEvent::ToolcallEnd {
                    tool_call_id: id.clone(),
                    name: name.clone(),
                    input: input.clone(),
                };
                batch.update(&end).await;
                builder.block(Block::ToolUse { id, name, input });
            }
            StreamItem::Event(ProviderEvent::ThinkingSignature(sig)) => builder.signature(&sig),
            StreamItem::Event(ProviderEvent::ToolCallStart { id, name }) => {
                let ev = StreamEvent::ToolcallStart {
                    tool_call_id: id,
                    name,
                };
                batch.update(&ev).await;
            }
            StreamItem::Event(ProviderEvent::ToolCallDelta { id, delta }) => {
                let ev = StreamEvent::ToolcallDelta {
                    tool_call_id: id,
                    delta,
                };
                batch.update(&ev).await;
            }
            StreamItem::Event(ProviderEvent::ToolCallEnd { id, name, input }) => {
                let ev = StreamEvent::ToolcallEnd {
                    tool_call_id: id,
                    name,
                    input,
                };
                batch.update(&ev).await;
                if let StreamEvent::ToolcallEnd {
                    tool_call_id,
                    name,
                    input,
                } = ev
                {
                    builder.block(Block::ToolUse {
                        id: tool_call_id,
                        name,
                        input,
                    });
                }
            }
            StreamItem::Event(ProviderEvent::Retry {
                attempt,
                delay_ms,
                reason,
            }) => {
                let frame = Frame::AutoRetry(AutoRetryFrame {
                    prompt_id: batch.prompt_id.to_owned(),
                    attempt,
                    delay_ms,
                    reason,
                });
                batch.frame(&frame).await;
            }
            StreamItem::Event(ProviderEvent::Usage(u)) => last_usage = Some(u),
            StreamItem::Event(ProviderEvent::Done | ProviderEvent::Error(_)) => {}
            StreamItem::Done(completion) => {
                let usage = completion.usage.or(last_usage).unwrap_or_default();
                return Ok((completion, usage));
            }
        }
    }
}
