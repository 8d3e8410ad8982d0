//! The hooks the host itself fires: `SessionStart` when it starts
//! (its context waits for the first prompt) and `UserPromptSubmit` before a
//! prompt's message is stored (a block refuses the prompt; context goes
//! into the message), and `PreCompact` before a `compact` command. The
//! turn's own hooks fire in `engine/hooks.rs`.

use serde_json::Value;

use super::Host;
use crate::error::Coded;
use crate::hooks::{fields, Event};
use crate::protocol::{Attachment, ErrorCode, PromptParams};

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

    /// `UserPromptSubmit` for the prompt about to start as `prompt_id`:
    /// the context the hooks (and the session's start) add goes into the
    /// message as extra text; a block is the prompt's error.
    pub(super) async fn prompt_hooks(
        &mut self,
        prompt_id: &str,
        params: &mut PromptParams,
    ) -> Result<(), Coded> {
        let mut context = std::mem::take(&mut self.start_context);
        if self.hooks.any(Event::UserPromptSubmit) {
            let outcome = self
                .hooks
                .fire(
                    Event::UserPromptSubmit,
                    None,
                    fields([("prompt", Value::from(params.message.clone()))]),
                    &self.out,
                    Some(prompt_id),
                )
                .await;
            if let Some(reason) = outcome.block {
                // What the session start added is still owed to a prompt.
                self.start_context = context;
                let hooks = outcome
                    .blocked_by
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(Coded::new(
                    ErrorCode::HookBlocked,
                    format!("the UserPromptSubmit hook {hooks} refused the prompt: {reason}"),
                ));
            }
            context.extend(outcome.context);
        }
        for text in context.into_iter().rev() {
            params.attachments.insert(0, Attachment::Text { text });
        }
        Ok(())
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
