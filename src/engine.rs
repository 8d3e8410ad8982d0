//! One turn: provider rounds turned into `message_update` events, steers
//! delivered between rounds, and abort handled in order.
//!
//! A turn runs as its own task so the dispatch loop never waits on it. It
//! writes deltas straight to the [`Outbox`] and reports to the host through a
//! channel: each finished message as it is complete (so the host persists it
//! at once), then one [`TurnMsg::Done`]. The host writes `agent_end` and the
//! response after `Done`, which puts them after every delta of the turn.
//! Abort follows "cancel, grace, force, then report": the provider is asked to
//! cancel, killed if it does not stop within the grace, and the partial
//! message is handed back marked `aborted`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::message::{AssistantBuilder, Block, Message};
use crate::protocol::{AutoRetryFrame, ErrorCode, Frame, StreamEvent, Usage};
use crate::provider::{Completion, ProviderEvent, ProviderStream, Providers, Request, StreamItem};
use crate::transport::Outbox;

/// What a turn needs besides the shared services.
pub struct TurnSpec {
    pub prompt_id: String,
    /// The history including the user message that started the turn.
    pub history: Vec<Message>,
    pub model: watch::Receiver<Option<String>>,
    pub system_prompt: Option<String>,
    pub max_rounds: u32,
    pub idle_timeout: Duration,
}

/// Messages from a turn to the host.
#[derive(Debug)]
pub enum TurnMsg {
    /// A message to add to the history (and to disk) now.
    Append(Message),
    /// No model was set; the turn picked this default.
    ModelChosen(String),
    Done(TurnOutcome),
}

#[derive(Debug)]
pub struct TurnOutcome {
    pub prompt_id: String,
    pub stop_reason: String,
    pub usage: Usage,
    pub result: TurnResult,
    /// Steers that arrived too late to reach the model.
    pub undelivered: Vec<String>,
}

#[derive(Debug)]
pub enum TurnResult {
    Ok,
    Cancelled,
    Failed { code: ErrorCode, error: String },
}

/// The services a turn uses.
pub struct TurnCtx {
    pub providers: Arc<Providers>,
    pub out: Outbox,
    pub host: mpsc::UnboundedSender<TurnMsg>,
    pub cancel: CancellationToken,
    pub steers: mpsc::UnboundedReceiver<String>,
}

/// Runs the turn to its end and reports `Done`.
pub async fn run(spec: TurnSpec, mut ctx: TurnCtx) {
    let prompt_id = spec.prompt_id.clone();
    let mut usage = Usage::default();
    let result = rounds(spec, &mut ctx, &mut usage).await;
    ctx.steers.close();
    let mut undelivered = Vec::new();
    while let Ok(s) = ctx.steers.try_recv() {
        undelivered.push(s);
    }
    let (stop_reason, result) = match result {
        Ok(stop) => (stop, TurnResult::Ok),
        Err(Stop::Cancelled) => ("aborted".to_owned(), TurnResult::Cancelled),
        Err(Stop::Failed(code, error)) => ("error".to_owned(), TurnResult::Failed { code, error }),
    };
    let _ = ctx.host.send(TurnMsg::Done(TurnOutcome {
        prompt_id,
        stop_reason,
        usage,
        result,
        undelivered,
    }));
}

enum Stop {
    Cancelled,
    Failed(ErrorCode, String),
}

fn failed(error: String) -> Stop {
    Stop::Failed(ErrorCode::ProviderError, error)
}

/// Provider rounds until the model ends its turn with nothing left to
/// deliver. Returns the final stop reason.
async fn rounds(spec: TurnSpec, ctx: &mut TurnCtx, usage: &mut Usage) -> Result<String, Stop> {
    let TurnSpec {
        prompt_id,
        mut history,
        model,
        system_prompt,
        max_rounds,
        idle_timeout,
    } = spec;
    let mut round = 0;
    loop {
        round += 1;
        if round > max_rounds {
            return Err(failed(format!(
                "the turn reached its limit of {max_rounds} provider rounds (--max-rounds)"
            )));
        }
        let model_id = current_model(&model, ctx).await?;
        let request = Request {
            messages: history.iter().map(Message::to_provider).collect(),
            system_prompt: system_prompt.clone(),
            tools: Vec::new(),
            max_tokens: None,
            temperature: None,
        };
        let stream = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(Stop::Cancelled),
            s = ctx.providers.stream(&model_id, &request) => s.map_err(failed)?,
        };
        let mut builder = AssistantBuilder::default();
        let outcome = one_round(&prompt_id, stream, ctx, &mut builder, idle_timeout).await;
        let (completion, round_usage) = match outcome {
            Ok(done) => done,
            Err((stop, round_usage)) => {
                usage.add(&round_usage);
                if !builder.is_empty() {
                    let mut partial = builder.build();
                    match &stop {
                        Stop::Cancelled => partial.aborted = true,
                        Stop::Failed(_, e) => partial.error = Some(e.clone()),
                    }
                    let _ = ctx.host.send(TurnMsg::Append(partial));
                }
                return Err(stop);
            }
        };
        usage.add(&round_usage);
        if builder.is_empty() {
            // A non-streaming model (or a stream that sent only its result):
            // show the client what the final answer holds.
            for block in completion.content {
                if let Block::Text { text } = &block {
                    let ev = StreamEvent::TextDelta {
                        delta: text.clone(),
                    };
                    ctx.out.update(&prompt_id, &ev).await;
                }
                builder.block(block);
            }
        }
        let stop_reason = completion
            .stop_reason
            .unwrap_or_else(|| "end_turn".to_owned());
        if !builder.is_empty() {
            let mut message = builder.build();
            message.stop_reason = Some(stop_reason.clone());
            history.push(message.clone());
            let _ = ctx.host.send(TurnMsg::Append(message));
        }
        // The end of a round is the safe point for steering. The channel is
        // closed before the last look, so a steer is either seen here or
        // refused to the client, never silently lost.
        let mut steers = drain(&mut ctx.steers);
        if steers.is_empty() {
            ctx.steers.close();
            steers = drain(&mut ctx.steers);
        }
        if steers.is_empty() {
            return Ok(stop_reason);
        }
        let message = Message::user_text(steers.join("\n\n"));
        history.push(message.clone());
        let _ = ctx.host.send(TurnMsg::Append(message));
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(s) = rx.try_recv() {
        out.push(s);
    }
    out
}

/// The model for the next round; with none set, the first available one.
async fn current_model(
    model: &watch::Receiver<Option<String>>,
    ctx: &TurnCtx,
) -> Result<String, Stop> {
    if let Some(m) = model.borrow().clone() {
        return Ok(m);
    }
    let chosen = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => return Err(Stop::Cancelled),
        m = ctx.providers.default_model() => m,
    };
    let Some(chosen) = chosen else {
        return Err(failed(
            "no model is available: start rpc with --extension <dir> (see README, \
             \"Provider extensions\") and pick a model with --model or set_model"
                .to_owned(),
        ));
    };
    let _ = ctx.host.send(TurnMsg::ModelChosen(chosen.clone()));
    Ok(chosen)
}

type RoundError = (Stop, Usage);

/// Forwards one provider round. On failure the builder keeps what arrived.
async fn one_round(
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
            item = tokio::time::timeout(idle, stream.next()) => item,
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
