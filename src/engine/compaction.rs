//! Running one compaction: the summarisation request to the session's own
//! model (no tools offered, nothing streamed to the client), bounded by
//! abort and the idle timeout. Used by a turn (threshold, overflow) and by
//! the `compact` command's task; neither writes anything until it succeeds,
//! so an abort leaves the history exactly as it was.
//!
//! The arithmetic (where to cut, the request text, the view) is in
//! `crate::compaction`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::compaction::{self as calc, Known};
use crate::message::{Block, Message};
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
    Ok(Outcome {
        summary,
        kept: job.view.len() - cut,
        tokens_before,
        tokens_after,
        view,
    })
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
