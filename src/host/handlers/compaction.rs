//! `compact` and `set_auto_compaction`. A `compact` runs as a task (the
//! loop never awaits it) and comes back as `Deferred::Compacted`; nothing
//! is written until it succeeds, so an `abort` leaves the history exactly
//! as it was. The compaction itself (sizing, summarising, the new view,
//! the `compaction_end` frame) is the one path in `engine/compaction.rs`
//! that a turn's own compactions (`Compactor`) take too.

use tokio_util::sync::CancellationToken;

use crate::engine::compaction::{self, Failure, Finished, Outcome};
use crate::error::Coded;
use crate::host::pending::{Awaits, Token};
use crate::host::{Compacting, Deferred, Host};
use crate::protocol::{
    AbortResponse, CompactParams, CompactionReason, CompactionResult, CompactionStartFrame,
    Dropped, ErrorCode, Frame, NotRun, Response, SetAutoCompactionResponse,
};

impl Host {
    pub(super) async fn compact(&mut self, token: Token, params: CompactParams) {
        // A set_model sent before it applies first, as for prompts.
        if self.turn.is_some()
            || self.holds_a_prompt()
            || !self.queue.is_empty()
            || !self.model_checks.is_empty()
        {
            let busy = Coded::new(
                ErrorCode::Busy,
                "a turn is running; abort it or wait for its end",
            );
            return self.reject(token, busy).await;
        }
        if self.compacting.is_some() {
            let busy = Coded::new(ErrorCode::Busy, "a compaction is already running");
            return self.reject(token, busy).await;
        }
        self.start_compaction(token, params.instructions).await;
    }

    /// Runs a compaction for `token` (`compact`, or a `/compact` prompt
    /// whose turn has come), nothing else running.
    pub(in crate::host) async fn start_compaction(
        &mut self,
        token: Token,
        instructions: Option<String>,
    ) {
        let Some(model) = self
            .session
            .model
            .clone()
            .or_else(|| self.providers.default_model_now())
        else {
            let none = Coded::new(
                ErrorCode::NotFound,
                "no model is set to summarise with; pick one with set_model",
            );
            return self.reject(token, none).await;
        };
        let view = self.session.model_messages();
        if crate::compaction::cut_point(&view, u64::MAX).is_none() {
            let nothing = Coded::new(
                ErrorCode::NotCompacted,
                "nothing to compact: the history has fewer than two messages",
            );
            return self.reject(token, nothing).await;
        }
        self.pre_compact(instructions.as_deref()).await;
        self.pending.wait(token, Awaits::Task);
        let cancel = CancellationToken::new();
        self.compacting = Some(Compacting {
            token,
            cancel: cancel.clone(),
            aborts: Vec::new(),
        });
        self.send(Frame::CompactionStart(CompactionStartFrame {
            prompt_id: None,
            reason: CompactionReason::Manual,
        }))
        .await;
        let providers = self.providers.clone();
        let system_prompt = self.context.text();
        let settings = crate::engine::AutoCompaction {
            reserve: self.settings.compaction.reserve,
            keep_cap: self.settings.compaction.keep_cap,
        };
        let idle_timeout = self.settings.idle_timeout;
        let tx = self.deferred_tx.clone();
        tokio::spawn(async move {
            let job = compaction::Job {
                providers: &providers,
                model: &model,
                view: &view,
                system_prompt: system_prompt.as_deref(),
                instructions: instructions.as_deref(),
                settings,
                idle_timeout,
                known: None,
                reason: CompactionReason::Manual,
            };
            let Finished {
                result,
                tokens_before,
            } = compaction::run(job, &cancel).await;
            let _ = tx.send(Deferred::Compacted {
                token,
                result,
                tokens_before,
            });
        });
    }

    /// A `compact` task finished: store it and answer, or (aborted,
    /// failed) answer with the history untouched; then the aborts, then
    /// whatever was queued behind it.
    pub(in crate::host) async fn compacted(
        &mut self,
        token: Token,
        result: Result<Outcome, Failure>,
        tokens_before: u64,
    ) {
        let Some(running) = self.compacting.take_if(|c| c.token == token) else {
            return;
        };
        let end = compaction::end_frame(None, CompactionReason::Manual, &result, tokens_before);
        let answer = match result {
            Ok(o) => {
                let first_kept = self.session.messages.len().saturating_sub(o.kept);
                let written = self.record_compaction(
                    o.summary.clone(),
                    first_kept,
                    o.tokens_before,
                    o.tokens_after,
                );
                match written {
                    Ok(()) => Ok(Response::Compact(CompactionResult {
                        summary: o.summary,
                        tokens_before: o.tokens_before,
                        tokens_after: o.tokens_after,
                        messages_summarized: first_kept,
                    })),
                    Err(e) => Err(Coded::new(
                        ErrorCode::Internal,
                        format!("{e:#}; the compaction applies to this process but is not saved"),
                    )),
                }
            }
            Err(Failure::Cancelled) => Ok(Response::NotRun(NotRun::cancelled())),
            Err(Failure::Failed(e)) => Err(Coded::new(
                ErrorCode::ProviderError,
                format!("the compaction failed and the history is unchanged: {e}"),
            )),
            Err(Failure::Refused(e)) => Err(Coded::new(
                ErrorCode::NotCompacted,
                format!("the history is unchanged: {e}"),
            )),
        };
        self.send(Frame::CompactionEnd(end)).await;
        self.answer(token, answer).await;
        for (abort, dropped) in running.aborts {
            self.respond(abort, Response::Abort(AbortResponse { dropped }))
                .await;
        }
        self.start_next().await;
    }

    /// `abort` while a `compact` runs: it stops at once, and the abort is
    /// answered after the compact's own answer.
    pub(super) fn abort_compaction(&mut self, token: Token, dropped: Vec<Dropped>) {
        if let Some(running) = self.compacting.as_mut() {
            running.cancel.cancel();
            self.pending.wait(token, Awaits::Task);
            running.aborts.push((token, dropped));
        }
    }

    pub(super) async fn set_auto_compaction(&mut self, token: Token, enabled: bool) {
        if let Err(e) = self.set_auto_compaction_to(enabled) {
            let err = Coded::new(ErrorCode::Internal, format!("{e:#}; nothing was changed"));
            return self.reject(token, err).await;
        }
        let answer = Response::SetAutoCompaction(SetAutoCompactionResponse { enabled });
        self.respond(token, answer).await;
    }
}
