//! Running one compaction: the summarisation request to the session's own
//! model (no tools offered, nothing streamed to the client), bounded by
//! abort and the idle timeout. [`run`] is the one path for both a turn
//! (threshold, overflow) and the `compact` command's task: it sizes the
//! compaction ([`limits_or_guess`]), summarises, and builds the new view
//! with [`crate::compaction::model_view`], the same function the session
//! rebuilds its view with after storing the entry. Neither caller writes
//! anything until it succeeds, so an abort leaves the history exactly as it
//! was; both show the result with [`end_frame`]. [`Compactor`] is a turn's
//! side: when one is due, its events, and the report to the host.
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
use crate::protocol::{
    CompactionEndFrame, CompactionReason, CompactionStartFrame, Frame, ThinkingLevel,
};
use crate::provider::{Event, Providers, Request};

/// Tokens kept aside in the summarisation request for the request text
/// and the answer, besides the reserve.
const REQUEST_OVERHEAD: u64 = 1_024;

/// How often a summarisation request that is itself too long is retried
/// with half the transcript budget.
const SHRINK_ATTEMPTS: u32 = 4;

/// What a compaction is given.
pub(crate) struct Job<'a> {
    pub providers: &'a Providers,
    pub model: &'a str,
    /// What the model sees now (after any earlier compaction).
    pub view: &'a [Arc<Message>],
    pub system_prompt: Option<&'a str>,
    pub instructions: Option<&'a str>,
    /// The configured reserve and cap of the kept part.
    pub settings: AutoCompaction,
    pub idle_timeout: Duration,
    /// The provider's last usage report on `view`, if any.
    pub known: Option<Known>,
    /// Why it runs: after an overflow the model's window is known to be
    /// smaller than what was sent.
    pub reason: CompactionReason,
}

/// A compaction that ran: its result, and the estimate of the context
/// before it (what a failure reports as both before and after).
#[derive(Debug)]
pub(crate) struct Finished {
    pub result: Result<Outcome, Failure>,
    pub tokens_before: u64,
}

/// A finished compaction, not yet stored.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub summary: String,
    /// Messages of `view` kept verbatim (its tail).
    pub kept: usize,
    pub tokens_before: u64,
    pub tokens_after: u64,
    /// The new view: the summary, then the kept messages.
    pub view: Vec<Arc<Message>>,
}

#[derive(Debug)]
pub(crate) enum Failure {
    Cancelled,
    /// The provider failed, or answered with nothing usable.
    Failed(String),
    /// The host kept the history as it was: nothing to compact, or the
    /// summary would not shrink the context. Nobody's fault but the
    /// history's (code `not_compacted`).
    Refused(String),
}

/// The window and reserve for `model`: the configured or catalogue
/// window, and the reserve (config, else the model's output limit, else
/// 16k). `None` when no window is known: the model has no threshold, and a
/// compaction guesses one ([`limits_or_guess`]).
pub(crate) async fn limits(
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

/// [`limits`], or when the model's window is unknown (an unlisted model:
/// an overflow, or a `compact` command) a guess from the one thing known
/// about it, the size of what it was `sent`, with an eighth of the guess
/// as the reserve.
///
/// After an overflow the model has just refused `sent` tokens, so its
/// window is smaller: half of it, which leaves the compacted context well
/// under what was refused (a fixed guess such as 128k could be larger than
/// a local model's 8k, and the context would overflow again). Otherwise
/// (`compact`) the history was last accepted at about `sent` tokens, so the
/// transcript of it fits the model whatever the guess, and the guess must
/// only not cut it short: twice what was accepted, and at least
/// [`ACCEPTED_GUESS`].
pub(crate) async fn limits_or_guess(
    providers: &Providers,
    model: &str,
    reserve: Option<u64>,
    sent: u64,
    refused: bool,
) -> (u64, u64) {
    match limits(providers, model, reserve).await {
        Some(known) => known,
        None => guess(sent, refused),
    }
}

/// The window and reserve [`limits_or_guess`] assumes for a model of
/// unknown window that was sent `sent` tokens (and `refused` them).
fn guess(sent: u64, refused: bool) -> (u64, u64) {
    let window = if refused {
        (sent / 2).max(1_024)
    } else {
        sent.saturating_mul(2).max(ACCEPTED_GUESS)
    };
    (window, window / 8)
}

/// The least window guessed for a model of unknown window that accepted
/// its history: what today's models offer at the least.
const ACCEPTED_GUESS: u64 = 128_000;

/// Summarises the older part of `job.view`: the one compaction path of
/// both a turn and the `compact` command.
pub(crate) async fn run(job: Job<'_>, cancel: &CancellationToken) -> Finished {
    let tokens_before = calc::estimate(job.view, job.system_prompt, job.known);
    let (window, reserve) = limits_or_guess(
        job.providers,
        job.model,
        job.settings.reserve,
        tokens_before,
        job.reason == CompactionReason::Overflow,
    )
    .await;
    let result = summarise_view(&job, window, reserve, tokens_before, cancel).await;
    Finished {
        result,
        tokens_before,
    }
}

/// [`run`] once the window and reserve are known.
async fn summarise_view(
    job: &Job<'_>,
    window: u64,
    reserve: u64,
    tokens_before: u64,
    cancel: &CancellationToken,
) -> Result<Outcome, Failure> {
    let budget = calc::keep_budget(window, job.settings.keep_cap);
    let Some(cut) = calc::cut_point(job.view, budget) else {
        return Err(Failure::Refused(
            "nothing to compact: the history has fewer than two messages".into(),
        ));
    };
    let older = &job.view[..cut];
    let mut transcript_budget = window
        .saturating_sub(reserve)
        .saturating_sub(REQUEST_OVERHEAD)
        .max(256);
    let mut attempt = 0;
    let summary = loop {
        let request = calc::summary_request(older, job.instructions, transcript_budget);
        let sent = calc::text_tokens(&request.text());
        match summarise(job, request, cancel).await {
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
    let view = calc::model_view(job.view, &summary, cut);
    let tokens_after = calc::estimate(&view, job.system_prompt, None);
    // A model that restates rather than summarises (or a history already
    // mostly kept) would make the context larger: keep the history as is.
    if tokens_after >= tokens_before {
        return Err(Failure::Refused(format!(
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

/// The one `compaction_end` frame of a compaction, for a turn's (with its
/// `prompt_id`) and for the `compact` command's (`None`). A failure shows
/// the context unchanged: `tokens_after` is `tokens_before`.
pub(crate) fn end_frame(
    prompt_id: Option<String>,
    reason: CompactionReason,
    result: &Result<Outcome, Failure>,
    tokens_before: u64,
) -> CompactionEndFrame {
    match result {
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
            tokens_before,
            tokens_after: tokens_before,
            error: Some(match e {
                Failure::Cancelled => "aborted".to_owned(),
                Failure::Failed(e) | Failure::Refused(e) => e.clone(),
            }),
        },
    }
}

/// A turn's own compaction: at the threshold before a round, or after an
/// overflow. Shown as `compaction_start`/`compaction_end` inside the turn.
/// A turn builds one, when auto-compaction is on, and uses it for both.
pub(super) struct Compactor<'a> {
    pub prompt_id: &'a str,
    pub model: &'a watch::Receiver<Option<String>>,
    pub system_prompt: Option<&'a str>,
    pub idle_timeout: Duration,
    pub auto: AutoCompaction,
}

impl Compactor<'_> {
    /// Whether the next request would leave less than the reserve free.
    /// A model whose window is unknown has no threshold.
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
        let estimated = calc::estimate(history, self.system_prompt, known);
        Ok(calc::over_threshold(estimated, window, reserve)
            && calc::cut_point(history, calc::keep_budget(window, self.auto.keep_cap)).is_some())
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
        super::hooks::pre_compact(ctx, self.prompt_id).await;
        ctx.host.send(TurnMsg::Compacting(true));
        ctx.out
            .frame(&Frame::CompactionStart(CompactionStartFrame {
                prompt_id: prompt_id.clone(),
                reason,
            }))
            .await;
        let job = Job {
            providers: &ctx.providers,
            model: &model_id,
            view: history,
            system_prompt: self.system_prompt,
            instructions: None,
            settings: self.auto,
            idle_timeout: self.idle_timeout,
            known,
            reason,
        };
        let Finished {
            result,
            tokens_before,
        } = run(job, &ctx.cancel).await;
        let end = end_frame(prompt_id, reason, &result, tokens_before);
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
            Err(Failure::Failed(_) | Failure::Refused(_)) => Ok(false),
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
        session_id: None,
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

#[cfg(test)]
mod tests {
    use super::guess;

    #[test]
    fn an_unknown_window_is_guessed_from_what_the_model_was_sent() {
        // Refused: smaller than what was sent.
        assert_eq!(guess(100_000, true), (50_000, 6_250));
        assert_eq!(guess(1_000, true), (1_024, 128));
        // Accepted: the history's transcript must not be cut short.
        assert_eq!(guess(100_000, false), (200_000, 25_000));
        assert_eq!(guess(20_000, false), (128_000, 16_000));
    }
}
