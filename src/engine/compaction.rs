//! Running one compaction: the summarisation request to the session's own
//! model (no tools offered, nothing streamed to the client), bounded by
//! abort and the idle timeout. Used by a turn (threshold, overflow) and by
//! the `compact` command's task; neither writes anything until it succeeds,
//! so an abort leaves the history exactly as it was. [`Compactor`] is a
//! turn's side: when one is due, its events, and the report to the host.
//!
//! The arithmetic (where to cut, the request text, the view) is in
//! `crate::compaction`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{current_model, AutoCompaction, Stop, TurnCtx, TurnMsg};
use crate::compaction::{self as calc, Known};
use crate::message::{Block, Message};
use crate::protocol::{CompactionEndFrame, CompactionReason, CompactionStartFrame, Frame};
use crate::provider::{Event, Providers, Request, ThinkingLevel};

/// Tokens kept aside in the summarisation request for the request text
/// and the answer, besides the reserve.
const REQUEST_OVERHEAD: u64 = 1_024;

/// How often a summarisation request that is itself too long is retried
/// with half the transcript budget.
const SHRINK_ATTEMPTS: u32 = 4;

/// What a compaction is given.
pub struct Job<'a> {
    pub providers: &'a Providers,
    pub model: &'a str,
    /// What the model sees now (after any earlier compaction).
    pub view: &'a [Arc<Message>],
    pub system_prompt: Option<&'a str>,
    pub instructions: Option<&'a str>,
    pub context_window: u64,
    pub reserve: u64,
    pub keep_cap: u64,
    pub idle_timeout: Duration,
    pub known: Option<Known>,
}

/// A finished compaction, not yet stored.
#[derive(Debug)]
pub struct Outcome {
    pub summary: String,
    /// Messages of `view` kept verbatim (its tail).
    pub kept: usize,
    pub tokens_before: u64,
    pub tokens_after: u64,
    /// The new view: the summary, then the kept messages.
    pub view: Vec<Arc<Message>>,
}

#[derive(Debug)]
pub enum Failure {
    Cancelled,
    Failed(String),
}

/// The window and reserve for `model`: the configured or catalogue
/// window (none known: compaction cannot be sized, it is skipped), and the
/// reserve (config, else the model's output limit, else 16k).
pub async fn limits(
    providers: &Providers,
    model: &str,
    reserve: Option<u64>,
) -> Option<(u64, u64)> {
    let (window, max_out) = providers.limits(model).await;
    let window = window?;
    let reserve = reserve
        .or(max_out)
        .unwrap_or(calc::DEFAULT_RESERVE)
        // A reserve as large as the window would compact before every round.
        .min(window / 2);
    Some((window, reserve))
}

/// Summarises the older part of `job.view` and returns the new view.
pub async fn run(job: Job<'_>, cancel: &CancellationToken) -> Result<Outcome, Failure> {
    let tokens_before = calc::estimate(job.view, job.system_prompt, job.known);
    let budget = calc::keep_budget(job.context_window, job.keep_cap);
    let Some(cut) = calc::cut_point(job.view, budget) else {
        return Err(Failure::Failed(
            "nothing to compact: the history has fewer than two messages".into(),
        ));
    };
    let older = &job.view[..cut];
    let mut transcript_budget = job
        .context_window
        .saturating_sub(job.reserve)
        .saturating_sub(REQUEST_OVERHEAD)
        .max(256);
    let mut attempt = 0;
    let summary = loop {
        let request = calc::summary_request(older, job.instructions, transcript_budget);
        let sent = calc::text_tokens(&request.text());
        match summarise(&job, request, cancel).await {
            Ok(summary) => break summary,
            Err(Failure::Failed(e)) if calc::is_overflow(&e) && attempt < SHRINK_ATTEMPTS => {
                // Too long for the model itself (its window is smaller than
                // configured, or the estimate was short): send half as much
                // of the transcript, the oldest part dropped with a note,
                // rather than dead-ending.
                attempt += 1;
                transcript_budget = (sent.min(transcript_budget) / 2).max(128);
            }
            Err(e) => return Err(e),
        }
    };
    let mut view = Vec::with_capacity(job.view.len() - cut + 1);
    view.push(Arc::new(calc::summary_message(&summary)));
    view.extend(job.view[cut..].iter().cloned());
    let tokens_after = calc::estimate(&view, job.system_prompt, None);
    // A model that restates rather than summarises (or a history already
    // mostly kept) would make the context larger: keep the history as is.
    if tokens_after >= tokens_before {
        return Err(Failure::Failed(format!(
            "the summary would not shrink the context (about {tokens_before} tokens before, {tokens_after} after); nothing was changed"
        )));
    }
    Ok(Outcome {
        summary,
        kept: job.view.len() - cut,
        tokens_before,
        tokens_after,
        view,
    })
}

/// A turn's own compaction: at the threshold before a round, or after an
/// overflow. Shown as `compaction_start`/`compaction_end` inside the turn.
pub(super) struct Compactor<'a> {
    pub prompt_id: &'a str,
    pub model: &'a watch::Receiver<Option<String>>,
    pub system_prompt: Option<&'a str>,
    pub idle_timeout: Duration,
    pub auto: AutoCompaction,
}

impl Compactor<'_> {
    /// Whether the next request would leave less than the reserve free.
    pub(super) async fn due(
        &self,
        ctx: &TurnCtx,
        history: &[Arc<Message>],
        known: Option<Known>,
    ) -> Result<bool, Stop> {
        let model_id = current_model(self.model)?;
        let Some((window, reserve)) = limits(&ctx.providers, &model_id, self.auto.reserve).await
        else {
            return Ok(false);
        };
        let estimated = crate::compaction::estimate(history, self.system_prompt, known);
        Ok(
            crate::compaction::over_threshold(estimated, window, reserve)
                && crate::compaction::cut_point(
                    history,
                    crate::compaction::keep_budget(window, self.auto.keep_cap),
                )
                .is_some(),
        )
    }

    /// Compacts `history` in place and tells the host; `Ok(false)` when it
    /// failed (the history is unchanged and the failure was shown).
    pub(super) async fn compact(
        &self,
        ctx: &TurnCtx,
        history: &mut Vec<Arc<Message>>,
        known: Option<Known>,
        reason: CompactionReason,
    ) -> Result<bool, Stop> {
        let model_id = current_model(self.model)?;
        let prompt_id = Some(self.prompt_id.to_owned());
        ctx.host.send(TurnMsg::Compacting(true));
        ctx.out
            .frame(&Frame::CompactionStart(CompactionStartFrame {
                prompt_id: prompt_id.clone(),
                reason,
            }))
            .await;
        // Without a known window (an overflow on an unlisted model), the
        // provider's refusal says the request was too big: aim at half
        // of what was sent.
        let (window, reserve) = match limits(&ctx.providers, &model_id, self.auto.reserve).await {
            Some(l) => l,
            None => {
                let sent = crate::compaction::estimate(history, self.system_prompt, known);
                let window = (sent / 2).max(1_024);
                (window, window / 8)
            }
        };
        let job = Job {
            providers: &ctx.providers,
            model: &model_id,
            view: history,
            system_prompt: self.system_prompt,
            instructions: None,
            context_window: window,
            reserve,
            keep_cap: self.auto.keep_cap,
            idle_timeout: self.idle_timeout,
            known,
        };
        let before = crate::compaction::estimate(history, self.system_prompt, known);
        let result = run(job, &ctx.cancel).await;
        let end = match &result {
            Ok(o) => CompactionEndFrame {
                prompt_id,
                reason,
                ok: true,
                summary: Some(o.summary.clone()),
                tokens_before: o.tokens_before,
                tokens_after: o.tokens_after,
                error: None,
            },
            Err(e) => CompactionEndFrame {
                prompt_id,
                reason,
                ok: false,
                summary: None,
                tokens_before: before,
                tokens_after: before,
                error: Some(match e {
                    Failure::Cancelled => "aborted".to_owned(),
                    Failure::Failed(e) => e.clone(),
                }),
            },
        };
        ctx.host.send(TurnMsg::Compacting(false));
        ctx.out.frame(&Frame::CompactionEnd(end)).await;
        match result {
            Ok(o) => {
                ctx.host.send(TurnMsg::Compacted {
                    summary: o.summary,
                    kept: o.kept,
                    tokens_before: o.tokens_before,
                    tokens_after: o.tokens_after,
                });
                *history = o.view;
                Ok(true)
            }
            Err(Failure::Cancelled) => Err(Stop::Cancelled),
            Err(Failure::Failed(_)) => Ok(false),
        }
    }
}

/// One summarisation request: its final text, or why there is none.
async fn summarise(
    job: &Job<'_>,
    request: Message,
    cancel: &CancellationToken,
) -> Result<String, Failure> {
    let history = [Arc::new(request)];
    let request = Request {
        history: &history,
        system_prompt: None,
        tools: &[],
        max_tokens: None,
        temperature: None,
        thinking: ThinkingLevel::Off,
    };
    let mut stream = tokio::select! {
        biased;
        _ = cancel.cancelled() => return Err(Failure::Cancelled),
        s = job.providers.stream(job.model, &request) => s.map_err(|e| Failure::Failed(format!("{e:#}")))?,
    };
    let mut text = String::new();
    loop {
        let next = async {
            if stream.needs_idle_timeout() {
                tokio::time::timeout(job.idle_timeout, stream.next())
                    .await
                    .map_err(|_| ())
            } else {
                Ok(stream.next().await)
            }
        };
        let item = tokio::select! {
            biased;
            _ = cancel.cancelled() => {
                // Stopping the provider may take its grace; the abort does not wait.
                tokio::spawn(stream.cancel());
                return Err(Failure::Cancelled);
            }
            item = next => item,
        };
        let event = match item {
            Err(()) => {
                let message = stream.idle_failure(job.idle_timeout.as_secs());
                stream.abandon("was killed after sending nothing within the idle timeout");
                return Err(Failure::Failed(message));
            }
            Ok(Err(e)) => return Err(Failure::Failed(format!("{e:#}"))),
            Ok(Ok(event)) => event,
        };
        match event {
            Event::Delta(crate::protocol::StreamEvent::TextDelta { delta }) => {
                text.push_str(&delta)
            }
            Event::Done(completion) => {
                let done: String = completion
                    .content
                    .iter()
                    .filter_map(|b| match b {
                        Block::Text { text } => Some(text.as_str()),
                        _ => None,
                    })
                    .collect();
                let summary = if done.trim().is_empty() { text } else { done };
                if summary.trim().is_empty() {
                    return Err(Failure::Failed(
                        "the model answered the summarisation request with no text".into(),
                    ));
                }
                return Ok(summary.trim().to_owned());
            }
            _ => {}
        }
    }
}
