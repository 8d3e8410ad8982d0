//! One provider round: the stream forwarded as `message_update` events while
//! the assistant message is assembled, with abort and the idle timeout.

use std::time::Duration;

use super::{failed, Stop, TurnCtx};
use crate::message::{AssistantBuilder, Block};
use crate::protocol::{AutoRetryFrame, Frame, StreamEvent, Usage};
use crate::provider::{Completion, ProviderEvent, ProviderStream, StreamItem};

type RoundError = (Stop, Usage);

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

/// Forwards one provider round. On failure the builder keeps what arrived.
pub(super) async fn one_round(
    prompt_id: &str,
    mut stream: ProviderStream,
    ctx: &TurnCtx,
    builder: &mut AssistantBuilder,
    idle: Duration,
) -> Result<(Completion, Usage), RoundError> {
    let mut last_usage: Option<Usage> = None;
    loop {
        let item = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => {
                stream.cancel().await;
                return Err((Stop::Cancelled, last_usage.unwrap_or_default()));
            }
            item = next(&mut stream, idle) => item,
        };
        let item = match item {
            Ok(Ok(item)) => item,
            Ok(Err(e)) => return Err((failed(e), last_usage.unwrap_or_default())),
            Err(_) => {
                stream.abandon("was killed after sending nothing within the idle timeout");
                return Err((
                    failed(format!(
                        "the provider sent nothing for {} s (--provider-idle-timeout); \
                         the extension was stopped",
                        idle.as_secs()
                    )),
                    last_usage.unwrap_or_default(),
                ));
            }
        };
        match item {
            StreamItem::Event(ProviderEvent::Text(delta)) => {
                let ev = StreamEvent::TextDelta { delta };
                ctx.out.update(prompt_id, &ev).await;
                if let StreamEvent::TextDelta { delta } = &ev {
                    builder.text(delta);
                }
            }
            StreamItem::Event(ProviderEvent::Thinking(delta)) => {
                let ev = StreamEvent::ThinkingDelta { delta };
                ctx.out.update(prompt_id, &ev).await;
                if let StreamEvent::ThinkingDelta { delta } = &ev {
                    builder.thinking(delta);
                }
            }
            StreamItem::Event(ProviderEvent::ToolUse { id, name, input }) => {
                let start = StreamEvent::ToolcallStart {
                    tool_call_id: id.clone(),
                    name: name.clone(),
                };
                ctx.out.update(prompt_id, &start).await;
                let end = StreamEvent::ToolcallEnd {
                    tool_call_id: id.clone(),
                    name: name.clone(),
                    input: input.clone(),
                };
                ctx.out.update(prompt_id, &end).await;
                builder.block(Block::ToolUse { id, name, input });
            }
            StreamItem::Event(ProviderEvent::ThinkingSignature(sig)) => builder.signature(&sig),
            StreamItem::Event(ProviderEvent::ToolCallStart { id, name }) => {
                let ev = StreamEvent::ToolcallStart {
                    tool_call_id: id,
                    name,
                };
                ctx.out.update(prompt_id, &ev).await;
            }
            StreamItem::Event(ProviderEvent::ToolCallDelta { id, delta }) => {
                let ev = StreamEvent::ToolcallDelta {
                    tool_call_id: id,
                    delta,
                };
                ctx.out.update(prompt_id, &ev).await;
            }
            StreamItem::Event(ProviderEvent::ToolCallEnd { id, name, input }) => {
                let ev = StreamEvent::ToolcallEnd {
                    tool_call_id: id,
                    name,
                    input,
                };
                ctx.out.update(prompt_id, &ev).await;
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
                    prompt_id: prompt_id.to_owned(),
                    attempt,
                    delay_ms,
                    reason,
                });
                ctx.out.frame(&frame).await;
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
