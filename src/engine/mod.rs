//! One turn: provider rounds turned into events, the model's tool calls
//! executed (behind the permission gate) round after round, steers delivered
//! between rounds, and abort handled in order.
//!
//! A turn runs as its own task so the dispatch loop never waits on it. It
//! writes events straight to the front end's [`Sink`] and reports to the host through a
//! channel: each finished message as it is complete (so the host persists it
//! at once), then one [`TurnMsg::Done`]. The host writes `agent_end` and the
//! response after `Done`, which puts them after every event of the turn.
//! Abort follows "cancel, grace, force, then report": the provider or tool is
//! asked to stop, killed if it does not within the grace, and the partial
//! message is handed back marked `aborted`.

pub(crate) mod budget;
pub(crate) mod compaction;
mod hooks;
mod round;
mod tool_calls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::compaction::Known;
use crate::message::Usage;
use crate::message::{AssistantBuilder, Block, Content, Message, Role};
use crate::permissions::Gate;
use crate::protocol::{CompactionReason, ErrorCode, StreamEvent, ThinkingLevel};
use crate::provider::{Completion, ProviderStream, Providers, Request};
use crate::sink::Sink;
use compaction::Compactor;

/// What a turn needs besides the shared services.
pub(crate) struct TurnSpec {
    pub prompt_id: String,
    /// The session's id, sent where an API keys its prompt cache by it.
    pub session_id: String,
    /// The history including the user message that started the turn,
    /// shared with the host's copy: starting a turn copies pointers only.
    pub history: Vec<Arc<Message>>,
    pub model: watch::Receiver<Option<String>>,
    pub system_prompt: Option<String>,
    /// Fixed for the turn: a `set_thinking_level` applies from the next one.
    pub thinking: ThinkingLevel,
    pub max_rounds: u32,
    pub idle_timeout: Duration,
    /// Compaction at the threshold and on overflow; `None` when off.
    pub auto_compaction: Option<AutoCompaction>,
    /// The session's budget; `None` when it has no limits.
    pub budget: Option<budget::TurnBudget>,
}

/// The configured sizes of a compaction: what a turn needs to compact on
/// its own, and what the `compact` command's task passes too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AutoCompaction {
    /// The configured reserve; else the model's output limit, else 16k.
    pub reserve: Option<u64>,
    pub keep_cap: u64,
}

/// Messages from a turn to the host.
#[derive(Debug)]
pub(crate) enum TurnMsg {
    /// A message to add to the history (and to disk) now.
    Append(Arc<Message>),
    /// A compaction of the turn began (`true`) or ended.
    Compacting(bool),
    /// The model replaced its plan (`todo_write`): to store in the session.
    Plan(Vec<crate::protocol::PlanEntry>),
    /// The history was compacted: the model now sees the summary and the
    /// last `kept` messages of the history.
    Compacted {
        summary: String,
        kept: usize,
        tokens_before: u64,
        tokens_after: u64,
    },
    Done(TurnOutcome),
}

#[derive(Debug)]
pub(crate) struct TurnOutcome {
    pub prompt_id: String,
    pub stop_reason: String,
    /// Summed over the turn's provider calls.
    pub usage: Usage,
    /// The last provider call's own report: what the model's context held
    /// after it (its input, cache and output). `None` when no call
    /// reported any.
    pub last_call: Option<Usage>,
    /// Provider rounds that completed (for the session's budget).
    pub rounds: u64,
    /// What the turn's subagents spent (part of the turn's cost).
    pub children_usd: f64,
    pub result: TurnResult,
    /// Steers that arrived too late to reach the model.
    pub undelivered: Vec<String>,
}

#[derive(Debug)]
pub(crate) enum TurnResult {
    Ok,
    Cancelled,
    Failed {
        code: ErrorCode,
        error: String,
    },
    /// The turn reached `--max-rounds` (a failure on the native wire; ACP
    /// has a stop reason of its own for it).
    RoundLimit {
        error: String,
    },
    /// The session's budget stopped the turn before a round.
    BudgetExceeded {
        error: String,
    },
}

/// The services a turn uses.
pub(crate) struct TurnCtx {
    pub providers: Arc<Providers>,
    pub out: Sink,
    pub host: Reports,
    pub cancel: CancellationToken,
    pub steers: mpsc::UnboundedReceiver<String>,
    pub gate: Arc<Gate>,
    /// The session's policy hooks (`PreToolUse`, `Stop`, ...).
    pub hooks: Arc<crate::hooks::Hooks>,
    pub cwd: PathBuf,
    /// The folders of the session's Agent Skills (canonical): a read-only
    /// call inside one runs unasked, so the model can open a skill the
    /// system prompt lists wherever it is installed.
    pub skill_roots: Arc<Vec<PathBuf>>,
    /// The session's file system and processes, which tools use.
    pub backends: crate::tools::Backends,
    /// Where the session's tools come from (built-ins, MCP servers).
    pub tools: Arc<crate::tools::ToolSources>,
    /// The session's id, for tools acting for it (`task`).
    pub session_id: String,
    /// The session's model (a `set_model` during the turn shows here).
    pub model: watch::Receiver<Option<String>>,
}

/// The turn's line to the host. Every report carries the turn's prompt id,
/// so a late report from a finished turn can never be taken for the current
/// one's, without a relay task per turn to tag them.
///
/// It also guarantees the turn's end: if the turn task stops without
/// reporting `Done` (a panic unwinding it), dropping `Reports` reports a
/// failed end, so the prompt still gets its one answer and the host can
/// exit.
pub(crate) struct Reports {
    prompt_id: String,
    tx: mpsc::UnboundedSender<(String, TurnMsg)>,
    done: bool,
}

impl Reports {
    pub(crate) fn new(prompt_id: String, tx: mpsc::UnboundedSender<(String, TurnMsg)>) -> Self {
        Reports {
            prompt_id,
            tx,
            done: false,
        }
    }

    /// Sends a report; a host that has gone has nothing left to tell.
    pub(crate) fn send(&self, msg: TurnMsg) {
        let _ = self.tx.send((self.prompt_id.clone(), msg));
    }

    /// The turn's last report.
    fn done(&mut self, outcome: TurnOutcome) {
        self.done = true;
        self.send(TurnMsg::Done(outcome));
    }

    fn append(&self, message: Message) -> Arc<Message> {
        let message = Arc::new(message);
        self.send(TurnMsg::Append(message.clone()));
        message
    }
}

/// Runs the turn to its end and reports `Done`.
pub(crate) async fn run(mut spec: TurnSpec, mut ctx: TurnCtx) {
    let mut usage = Spent::default();
    let history = std::mem::take(&mut spec.history);
    let result = Turn::new(&spec, &mut ctx, history, &mut usage)
        .rounds()
        .await;
    ctx.steers.close();
    let mut undelivered = Vec::new();
    while let Ok(s) = ctx.steers.try_recv() {
        undelivered.push(s);
    }
    let (stop_reason, result) = match result {
        Ok(stop) => (stop, TurnResult::Ok),
        Err(Stop::Cancelled) => ("aborted".to_owned(), TurnResult::Cancelled),
        Err(Stop::Failed(code, error)) => ("error".to_owned(), TurnResult::Failed { code, error }),
        Err(Stop::RoundLimit(error)) => ("error".to_owned(), TurnResult::RoundLimit { error }),
        Err(Stop::Budget(error)) => (
            "budget_exceeded".to_owned(),
            TurnResult::BudgetExceeded { error },
        ),
    };
    ctx.host.done(TurnOutcome {
        prompt_id: spec.prompt_id,
        stop_reason,
        usage: usage.total,
        last_call: usage.last,
        rounds: usage.rounds,
        children_usd: usage.children_usd,
        result,
        undelivered,
    });
}

/// What a turn's provider calls reported: their sum, and the last one.
#[derive(Debug, Default)]
struct Spent {
    total: Usage,
    last: Option<Usage>,
    /// Provider rounds that completed.
    rounds: u64,
    /// What the subagents of the turn's `task` calls spent.
    children_usd: f64,
}

impl Spent {
    fn add(&mut self, round: &Usage) {
        self.total.add(round);
        // A call that reported nothing (it failed before its usage came)
        // says nothing about the context.
        if *round != Usage::default() {
            self.last = Some(*round);
        }
    }
}

impl Drop for Reports {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        tracing::error!("turn {} ended without reporting its end", self.prompt_id);
        self.send(TurnMsg::Done(TurnOutcome {
            prompt_id: self.prompt_id.clone(),
            stop_reason: "error".into(),
            usage: Usage::default(),
            last_call: None,
            rounds: 0,
            children_usd: 0.0,
            result: TurnResult::Failed {
                code: ErrorCode::Internal,
                error: "the turn stopped unexpectedly (an internal error, logged on stderr); the session is intact, send the prompt again".into(),
            },
            undelivered: Vec::new(),
        }));
    }
}

/// The tools this round offers, asked of the session's tool sources; the
/// first round waits for MCP servers still starting (each up to its
/// startup timeout).
async fn offer(ctx: &TurnCtx) -> Arc<crate::tools::Offer> {
    ctx.tools.offer(ctx.gate.mode(), &ctx.cancel).await
}

enum Stop {
    Cancelled,
    Failed(ErrorCode, String),
    /// `--max-rounds` was reached.
    RoundLimit(String),
    /// The session's budget was reached.
    Budget(String),
}

fn failed(error: String) -> Stop {
    Stop::Failed(ErrorCode::ProviderError, error)
}

/// One turn's state across its rounds: what the model sees, the usage so
/// far, and the one [`Compactor`] (when auto-compaction is on) that both
/// the threshold and an overflow use.
struct Turn<'a> {
    spec: &'a TurnSpec,
    ctx: &'a mut TurnCtx,
    compactor: Option<Compactor<'a>>,
    history: Vec<Arc<Message>>,
    usage: &'a mut Spent,
    /// The provider's last report of the input size; `None` after a
    /// compaction changed what the model sees.
    known: Option<Known>,
    /// An overflow was compacted already: a second one fails the turn.
    overflowed: bool,
    /// How many times `Stop` hooks sent the model back to work.
    stop_continued: u32,
}

impl<'a> Turn<'a> {
    /// `spec.history` has been taken out into `history`.
    fn new(
        spec: &'a TurnSpec,
        ctx: &'a mut TurnCtx,
        history: Vec<Arc<Message>>,
        usage: &'a mut Spent,
    ) -> Self {
        let compactor = spec.auto_compaction.map(|auto| Compactor {
            prompt_id: &spec.prompt_id,
            model: &spec.model,
            system_prompt: spec.system_prompt.as_deref(),
            idle_timeout: spec.idle_timeout,
            auto,
        });
        Turn {
            spec,
            ctx,
            compactor,
            history,
            usage,
            known: None,
            overflowed: false,
            stop_continued: 0,
        }
    }

    /// Provider rounds until the model ends its turn with no tool calls
    /// and nothing left to deliver. Returns the final stop reason.
    async fn rounds(mut self) -> Result<String, Stop> {
        while self.usage.rounds < u64::from(self.spec.max_rounds) {
            if let Some(why) = self.over_budget() {
                return Err(Stop::Budget(why));
            }
            self.compact_if_due().await?;
            let offer = offer(self.ctx).await;
            let mut builder = AssistantBuilder::default();
            let completion = match self.stream_round(&offer, &mut builder).await {
                Ok(completion) => completion,
                Err((Stop::Failed(code, e), round_usage))
                    if builder.is_empty() && crate::compaction::is_overflow(&e) =>
                {
                    self.usage.add(&round_usage);
                    self.compact_on_overflow(code, e).await?;
                    continue;
                }
                Err((stop, round_usage)) => {
                    self.usage.add(&round_usage);
                    keep_partial(self.ctx, builder, &stop);
                    return Err(stop);
                }
            };
            self.usage.rounds += 1;
            if let Some(stop_reason) = self.finish_round(completion, builder, &offer).await? {
                return Ok(stop_reason);
            }
        }
        Err(Stop::RoundLimit(format!(
            "the turn reached its limit of {} provider rounds (--max-rounds)",
            self.spec.max_rounds
        )))
    }

    /// Why the session's budget forbids another round, if it does.
    fn over_budget(&self) -> Option<String> {
        let budget = self.spec.budget.as_ref()?;
        budget.exceeded(
            self.usage.rounds,
            &self.usage.total,
            self.usage.children_usd,
        )
    }

    /// At the threshold, compacts before the round is sent.
    async fn compact_if_due(&mut self) -> Result<(), Stop> {
        let Some(compactor) = &self.compactor else {
            return Ok(());
        };
        if compactor.due(self.ctx, &self.history, self.known).await? {
            compactor
                .compact(
                    self.ctx,
                    &mut self.history,
                    self.known,
                    CompactionReason::Threshold,
                )
                .await?;
            self.known = None;
        }
        Ok(())
    }

    /// Sends one round and streams it; on success adds its usage and
    /// remembers the input size the provider reported.
    async fn stream_round(
        &mut self,
        offer: &crate::tools::Offer,
        builder: &mut AssistantBuilder,
    ) -> Result<Completion, (Stop, Usage)> {
        let request = Request {
            history: &self.history,
            system_prompt: self.spec.system_prompt.as_deref(),
            tools: &offer.definitions,
            max_tokens: None,
            temperature: None,
            thinking: self.spec.thinking,
            session_id: Some(&self.spec.session_id),
        };
        let sent = self.history.len();
        let stream = match open_round(self.ctx, &self.spec.model, &request).await {
            Ok(stream) => stream,
            Err(stop) => return Err((stop, Usage::default())),
        };
        let (completion, round_usage) = round::one_round(
            &self.spec.prompt_id,
            stream,
            self.ctx,
            builder,
            self.spec.idle_timeout,
        )
        .await?;
        self.usage.add(&round_usage);
        self.known = Some(Known {
            messages: sent,
            tokens: round_usage.input_tokens
                + round_usage.cache_read_input_tokens
                + round_usage.cache_creation_input_tokens,
        });
        Ok(completion)
    }

    /// The provider refused the round as too long for the model: compact
    /// once and let the caller send the round again (not an ordinary
    /// retry, and not a round of its own).
    async fn compact_on_overflow(&mut self, code: ErrorCode, e: String) -> Result<(), Stop> {
        let Some(compactor) = self.compactor.as_ref().filter(|_| !self.overflowed) else {
            let why = if self.overflowed {
                "the request is still too long for the model's context window after compacting the history"
            } else {
                "the request is too long for the model's context window and auto-compaction is off (send compact, or set_auto_compaction)"
            };
            return Err(Stop::Failed(code, format!("{why}: {e}")));
        };
        self.overflowed = true;
        if !compactor
            .compact(
                self.ctx,
                &mut self.history,
                self.known,
                CompactionReason::Overflow,
            )
            .await?
        {
            return Err(Stop::Failed(
                code,
                format!("the request is too long for the model's context window and compacting the history failed: {e}"),
            ));
        }
        self.known = None;
        Ok(())
    }

    /// Keeps the round's answer and decides what follows: `Some(stop
    /// reason)` when the turn ends, `None` when another round follows
    /// (tool results or steers to hand back).
    async fn finish_round(
        &mut self,
        completion: Completion,
        mut builder: AssistantBuilder,
        offer: &crate::tools::Offer,
    ) -> Result<Option<String>, Stop> {
        let prompt_id = &self.spec.prompt_id;
        show_unstreamed(prompt_id, self.ctx, &mut builder, completion.content).await;
        let stop_reason = completion
            .stop_reason
            .unwrap_or_else(|| "end_turn".to_owned());
        let calls: Vec<Block> = builder.tool_uses().cloned().collect();
        if calls.is_empty() {
            let steers = last_steers(&mut self.ctx.steers);
            if steers.is_empty() {
                // A `Stop` hook that blocks sends the model back to work
                // with its reason as the next user message.
                let again = hooks::stop(self.ctx, prompt_id, self.stop_continued).await;
                let Some(again) = again else {
                    keep_answer(self.ctx, builder, &stop_reason, None);
                    return Ok(Some(stop_reason));
                };
                if self.ctx.cancel.is_cancelled() {
                    keep_answer(self.ctx, builder, &stop_reason, None);
                    return Err(Stop::Cancelled);
                }
                self.stop_continued += 1;
                keep_answer(self.ctx, builder, &stop_reason, Some(&mut self.history));
                let message = Message::user_text(again);
                self.history.push(self.ctx.host.append(message));
                return Ok(None);
            }
            // Steers that came during the round start another one.
            keep_answer(self.ctx, builder, &stop_reason, Some(&mut self.history));
            let message = Message::user_text(steers.join("\n\n"));
            self.history.push(self.ctx.host.append(message));
        } else {
            // The model asked for tools: run them, hand back the results
            // (with any steers) and go round again.
            keep_answer(self.ctx, builder, &stop_reason, Some(&mut self.history));
            let results = tool_calls::execute(prompt_id, &calls, &offer.tools, self.ctx).await;
            self.usage.children_usd += results.children_usd;
            self.history.push(hand_back(self.ctx, results.blocks));
            if results.cancelled {
                return Err(Stop::Cancelled);
            }
        }
        Ok(None)
    }
}

/// Opens the round's stream against the model chosen now (a `set_model`
/// during the turn applies from its next round); abort wins over a slow
/// start.
async fn open_round(
    ctx: &TurnCtx,
    model: &watch::Receiver<Option<String>>,
    request: &Request<'_>,
) -> Result<ProviderStream, Stop> {
    let model_id = current_model(model)?;
    tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => Err(Stop::Cancelled),
        s = ctx.providers.stream(&model_id, request) => s.map_err(|e| failed(format!("{e:#}"))),
    }
}

/// Stores the round's answer (if it has any content); `history` is given
/// when another round follows and must see it.
fn keep_answer(
    ctx: &TurnCtx,
    builder: AssistantBuilder,
    stop_reason: &str,
    history: Option<&mut Vec<Arc<Message>>>,
) {
    if builder.is_empty() {
        return;
    }
    let mut message = builder.build();
    message.stop_reason = Some(stop_reason.to_owned());
    let message = ctx.host.append(message);
    if let Some(history) = history {
        history.push(message);
    }
}

/// Keeps what a failed or aborted round streamed, marked as partial, with
/// its tool calls answered as not run.
fn keep_partial(ctx: &TurnCtx, builder: AssistantBuilder, stop: &Stop) {
    if builder.is_empty() {
        return;
    }
    let calls = tool_ids(&builder);
    let mut partial = builder.build();
    match stop {
        Stop::Cancelled => partial.aborted = true,
        Stop::Failed(_, e) | Stop::RoundLimit(e) | Stop::Budget(e) => {
            partial.error = Some(e.clone())
        }
    }
    ctx.host.append(partial);
    close_calls(ctx, &calls, stop);
}

/// A round that streamed nothing (a non-streaming model, or a stream that
/// sent only its result) shows the client what its final answer holds.
/// Otherwise the result repeats what was streamed, and is let go now rather
/// than held twice while the message is stored.
async fn show_unstreamed(
    prompt_id: &str,
    ctx: &TurnCtx,
    builder: &mut AssistantBuilder,
    content: Vec<Block>,
) {
    if !builder.is_empty() {
        return;
    }
    for block in content {
        if let Block::Text { text } = &block {
            let ev = StreamEvent::TextDelta {
                delta: text.clone(),
            };
            ctx.out.update(prompt_id, &ev).await;
        }
        builder.block(block);
    }
}

/// Steers for a round that called no tools: the end of a round is the safe
/// point for steering. The channel is closed before the last look, so a
/// steer is either seen here or refused to the client, never silently lost.
fn last_steers(steers: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut seen = drain(steers);
    if seen.is_empty() {
        steers.close();
        seen = drain(steers);
    }
    seen
}

/// The tool results, with any steers that came while the tools ran, as
/// the next user message.
fn hand_back(ctx: &mut TurnCtx, mut blocks: Vec<Block>) -> Arc<Message> {
    for s in drain(&mut ctx.steers) {
        blocks.push(Block::Text { text: s });
    }
    ctx.host
        .append(Message::new(Role::User, Content::Blocks(blocks)))
}

fn tool_ids(builder: &AssistantBuilder) -> Vec<String> {
    builder
        .tool_uses()
        .filter_map(|b| match b {
            Block::ToolUse { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// Answers tool calls that will never run, so the history stays valid for
/// the next request (every provider rejects a tool call without a result).
fn close_calls(ctx: &TurnCtx, ids: &[String], stop: &Stop) {
    if ids.is_empty() {
        return;
    }
    let why = match stop {
        Stop::Cancelled => "not run: the turn was aborted",
        Stop::Failed(..) | Stop::RoundLimit(_) => "not run: the turn failed",
        Stop::Budget(_) => "not run: the session's budget was reached",
    };
    let blocks = ids
        .iter()
        .map(|id| Block::ToolResult {
            tool_use_id: id.clone(),
            content: why.into(),
            is_error: true,
        })
        .collect();
    ctx.host
        .append(Message::new(Role::User, Content::Blocks(blocks)));
}

fn drain(rx: &mut mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(s) = rx.try_recv() {
        out.push(s);
    }
    out
}

/// The model for the next round. The host sets one before it starts a turn
/// (it refuses prompts that cannot reach any), and `set_model` may change
/// it between rounds; it is never unset.
fn current_model(model: &watch::Receiver<Option<String>>) -> Result<String, Stop> {
    model.borrow().clone().ok_or_else(|| {
        failed("no model is set for this turn (an internal error; send the prompt again)".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(rx: &mut mpsc::UnboundedReceiver<(String, TurnMsg)>) -> Vec<TurnResult> {
        let mut out = Vec::new();
        while let Ok((_, msg)) = rx.try_recv() {
            if let TurnMsg::Done(outcome) = msg {
                out.push(outcome.result);
            }
        }
        out
    }

    #[test]
    fn a_turn_that_dies_still_reports_one_end() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = std::thread::spawn(move || {
            let _reports = Reports::new("p1".into(), tx);
            panic!("a bug in a turn");
        });
        assert!(task.join().is_err());
        let ends = ends(&mut rx);
        assert_eq!(ends.len(), 1);
        assert!(matches!(
            &ends[0],
            TurnResult::Failed { code: ErrorCode::Internal, error } if error.contains("unexpectedly")
        ));
    }

    #[test]
    fn a_turn_that_ends_reports_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut reports = Reports::new("p1".into(), tx);
        reports.done(TurnOutcome {
            prompt_id: "p1".into(),
            stop_reason: "end_turn".into(),
            usage: Usage::default(),
            last_call: None,
            rounds: 1,
            children_usd: 0.0,
            result: TurnResult::Ok,
            undelivered: Vec::new(),
        });
        drop(reports);
        let ends = ends(&mut rx);
        assert!(matches!(ends.as_slice(), [TurnResult::Ok]));
    }
}
