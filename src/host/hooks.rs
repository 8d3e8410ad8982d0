//! The hooks the host itself fires: `SessionStart` when it starts
//! (its context waits for the first prompt) and `UserPromptSubmit` before a
//! prompt's message is stored (in a task; `turn.rs` applies the outcome: a
//! block refuses the prompt, context goes into the message), and
//! `PreCompact` before a `compact` command. The
//! turn's own hooks fire in `engine/hooks.rs`.

use serde_json::Value;

use tokio_util::sync::CancellationToken;

use super::pending::Token;
use super::{Deferred, Hooking, Host};
use crate::hooks::{fields, Event};
use crate::protocol::PromptParams;
use crate::session::CommandLine;

impl Host {
    /// `SessionStart`, with source `startup` for a new session and
    /// `resume` for one that has a history.
    pub(super) async fn session_start(&mut self) {
        if !self.hooks.any(Event::SessionStart) {
            return;
        }
        let source = if self.session.messages.is_empty() {
            "startup"
        } else {
            "resume"
        };
        let outcome = self
            .hooks
            .fire(
                Event::SessionStart,
                Some(source),
                fields([("source", Value::from(source))]),
                &self.out,
                None,
            )
            .await;
        self.start_context.extend(outcome.context);
    }

    /// Runs the prompt's `UserPromptSubmit` hooks in a task: the queue
    /// waits for them as for a model check (the loop goes on reading
    /// commands), and `abort` drops the prompt and kills the hooks. They
    /// come back as `Hooked`.
    pub(super) fn hook_later(
        &mut self,
        token: Token,
        params: PromptParams,
        typed: Option<CommandLine>,
    ) {
        // The id the prompt will have if it starts, so that the hook
        // frames belong to it (nothing else starts meanwhile).
        let prompt_id = format!("p{}", self.prompts_started + 1);
        let fields = fields([("prompt", Value::from(params.message.clone()))]);
        let (hooks, out, tx) = (
            self.hooks.clone(),
            self.out.clone(),
            self.deferred_tx.clone(),
        );
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        tokio::spawn(async move {
            let fired = hooks.fire(
                Event::UserPromptSubmit,
                None,
                fields,
                &out,
                Some(&prompt_id),
            );
            // Dropped on abort: the hooks' process groups are killed.
            tokio::select! {
                _ = stop.cancelled() => {}
                outcome = fired => {
                    let _ = tx.send(Deferred::Hooked { token, outcome });
                }
            }
        });
        self.hooking = Some(Hooking {
            token,
            params,
            typed,
            cancel,
        });
    }

    /// `PreCompact` before the `compact` command's compaction (trigger
    /// `manual`); seen, not obeyed, as in the turn's own (`engine/hooks.rs`).
    pub(super) async fn pre_compact(&mut self, instructions: Option<&str>) {
        if !self.hooks.any(Event::PreCompact) {
            return;
        }
        let fields = fields([
            ("trigger", Value::from("manual")),
            (
                "custom_instructions",
                Value::from(instructions.unwrap_or("")),
            ),
        ]);
        self.hooks
            .fire(Event::PreCompact, Some("manual"), fields, &self.out, None)
            .await;
    }
}
