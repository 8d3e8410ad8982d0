//! `fork` and `switch_session`: replacing the session in use by a copy of
//! part of it, or by another stored session. Both are refused (`busy`)
//! while anything of the current session is in flight, and both release
//! the current session's lock by dropping its writer.

use std::sync::Arc;

use crate::error::Coded;
use crate::host::pending::Token;
use crate::host::Host;
use crate::message::{Block, Content, Role};
use crate::permissions::Gate;
use crate::protocol::Mode;
use crate::protocol::{ErrorCode, ForkResponse, Response, SwitchSessionResponse};
use crate::session::Session;

impl Host {
    /// Writes the fork (synced) before switching to it, so the answer is
    /// only sent for a fork that survives a crash. The model, mode and
    /// thinking level carry over; `allow_always` grants do not (they belong
    /// to the session they were given in); the system prompt stays as it
    /// is, since the conversation goes on in the same directory.
    pub(super) async fn fork(&mut self, token: Token, message_index: Option<u64>) {
        if let Some(busy) = self.session_change_refused() {
            return self.reject(token, busy).await;
        }
        let upto = match self.fork_point(message_index) {
            Ok(upto) => upto,
            Err(e) => return self.reject(token, e).await,
        };
        if let Err(e) = self.file.sync() {
            return self
                .reject(token, Coded::new(ErrorCode::Internal, format!("{e:#}")))
                .await;
        }
        let (session, file) = match self.store.fork(&self.session, upto) {
            Ok(forked) => forked,
            Err(e) => {
                return self
                    .reject(token, Coded::new(ErrorCode::Internal, format!("{e:#}")))
                    .await
            }
        };
        let message = self.session.messages.get(upto).map(|m| m.text());
        let forked_from = self.session.header.id.clone();
        // Replacing the writer drops the old file and with it the lock.
        self.file = file;
        self.session = session;
        self.gate.reset();
        self.publish_settings();
        let forked = Response::Fork(ForkResponse {
            session_id: self.session.header.id.clone(),
            forked_from,
            message_count: upto,
            message,
        });
        self.respond(token, forked).await;
    }

    /// Where a fork cuts the history: before a user message the client
    /// typed (not one carrying tool results, which would separate them from
    /// their calls), or after the whole history.
    fn fork_point(&self, message_index: Option<u64>) -> Result<usize, Coded> {
        let len = self.session.messages.len();
        let Some(index) = message_index else {
            return Ok(len);
        };
        let invalid = |why: String| {
            Coded::new(
                ErrorCode::InvalidParams,
                format!("message_index {index}: {why}; use the index of a user message or the history length ({len})"),
            )
        };
        let Ok(upto) = usize::try_from(index) else {
            return Err(invalid("beyond the history".into()));
        };
        if upto == len {
            return Ok(len);
        }
        let Some(message) = self.session.messages.get(upto) else {
            return Err(invalid(format!("beyond the history of {len} messages")));
        };
        let carries_results = match &message.content {
            Content::Blocks(blocks) => blocks.iter().any(|b| matches!(b, Block::ToolResult { .. })),
            Content::Text(_) => false,
        };
        if message.role != Role::User || carries_results {
            let what = if message.role == Role::User {
                "a user message carrying tool results"
            } else {
                "an assistant message"
            };
            return Err(invalid(format!("that is {what}")));
        }
        Ok(upto)
    }

    /// Opens the other session under the same rules as `--continue` (its
    /// lock, its validation), then lets the host's state follow it: model,
    /// permission mode, thinking level, working directory (unless `--cwd`
    /// pinned it) and the system prompt built there. Switching to the
    /// session in use answers at once without reopening anything.
    pub(super) async fn switch_session(&mut self, token: Token, id: String) {
        if let Some(busy) = self.session_change_refused() {
            return self.reject(token, busy).await;
        }
        if id != self.session.header.id {
            if let Err(e) = self.switch_to(&id).await {
                return self.reject(token, e).await;
            }
        }
        let s = &self.session;
        let switched = Response::SwitchSession(SwitchSessionResponse {
            session_id: s.header.id.clone(),
            model: s.model.clone(),
            cwd: self.settings.cwd.clone(),
            message_count: s.messages.len(),
            usage: s.usage,
            permission_mode: self.gate.mode(),
            thinking_level: s.thinking_level,
            context_files: self.context.files().to_vec(),
            skills: self.context.skill_entries(),
        });
        self.respond(token, switched).await;
    }

    async fn switch_to(&mut self, id: &str) -> Result<(), Coded> {
        // Synced first: if this fails nothing has changed yet.
        self.file
            .sync()
            .map_err(|e| Coded::new(ErrorCode::Internal, format!("{e:#}")))?;
        let (mut session, mut file) = self.store.open(id)?;
        let previous_model = self.session.model.clone();
        if session.model.is_none() {
            // Started before any model was known: it goes on with this one.
            if let Some(model) = &previous_model {
                file.record_default_model(model)
                    .map_err(|e| Coded::new(ErrorCode::Internal, format!("{e:#}")))?;
                session.header.model = Some(model.clone());
                session.model = Some(model.clone());
            }
        }
        if !self.settings.cwd_fixed {
            let cwd = crate::session::resumed_cwd(&session, self.settings.cwd_path.clone());
            self.settings.cwd = cwd.to_string_lossy().into_owned();
            if let Some(sandbox) = &self.backends.sandbox {
                sandbox.set_cwd(cwd.clone());
            }
            self.settings.cwd_path = cwd;
        }
        let mode = session.permission_mode.unwrap_or(Mode::Ask);
        // A fresh gate: the roots follow the directory, and `allow_always`
        // grants belong to the session they were given in.
        let gate = Gate::new(mode, vec![self.settings.cwd_path.clone()]);
        if self.eof || self.exit.is_some() {
            gate.close();
        }
        self.gate = Arc::new(gate);
        self.context
            .restart_in(self.settings.cwd_path.clone(), mode);
        self.commands.restart_in(self.settings.cwd_path.clone());
        let next_model = session.model.take();
        // Replacing the writer drops the old file and with it the lock.
        self.file = file;
        self.session = Session {
            model: previous_model,
            ..session
        };
        if let Some(model) = next_model {
            // Announces `model_changed` when it differs from the one in use.
            self.use_model(model).await;
        }
        self.publish_settings();
        Ok(())
    }
}
