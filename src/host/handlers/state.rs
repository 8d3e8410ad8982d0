//! Read-only commands: `get_state`, `get_session_stats`, `get_messages` and
//! `get_available_models`. None of them waits for a turn.

use crate::host::pending::Token;
use crate::host::{Deferred, Host};
use crate::protocol::{
    MessagesResponse, ModelsResponse, Response, SessionStatsResponse, StateResponse,
};

impl Host {
    pub(super) fn state(&self) -> Response {
        Response::GetState(StateResponse {
            streaming: self.turn.is_some(),
            prompt_id: self.turn.as_ref().map(|t| t.prompt_id.clone()),
            model: self.session.model.clone(),
            session_id: self.session.header.id.clone(),
            message_count: self.session.messages.len(),
            queued: self.queue.len() + usize::from(self.holds_a_prompt()),
            cwd: self.settings.cwd.clone(),
            permission_mode: self.gate.mode(),
            thinking_level: self.session.thinking_level,
            context_files: self.context.files().to_vec(),
            skills: self.context.skill_entries(),
            skill_errors: self.context.skill_errors(),
            compacting: self.compacting.is_some()
                || self.turn.as_ref().is_some_and(|t| t.compacting),
            auto_compaction: self.auto_compaction(),
            mcp_servers: self.mcp.as_ref().map(|m| m.states()).unwrap_or_default(),
            plan: self.session.plan.clone(),
            sandbox: self.backends.sandbox_state(),
        })
    }

    pub(super) fn session_stats(&self) -> Response {
        let u = &self.session.usage;
        Response::GetSessionStats(SessionStatsResponse {
            session_id: self.session.header.id.clone(),
            model: self.session.model.clone(),
            message_count: self.session.messages.len(),
            turns: self.session.turns,
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
            cache_read_input_tokens: u.cache_read_input_tokens,
            cache_creation_input_tokens: u.cache_creation_input_tokens,
            cost_usd: self.session.cost_usd,
        })
    }

    /// What the model sees (the summary, marked, then the kept messages),
    /// or with `all` the whole history; the messages are shared, not copied.
    pub(super) fn messages(&self, all: bool) -> Response {
        let messages = if all {
            self.session.messages.clone()
        } else {
            self.session.model_messages()
        };
        Response::GetMessages(MessagesResponse { messages })
    }

    /// Extensions may still be starting: answered from a task so the loop
    /// keeps serving while they do.
    pub(super) fn available_models(&mut self, token: Token) {
        let (token, tx) = self.defer(token);
        let providers = self.providers.clone();
        tokio::spawn(async move {
            let models = providers.available_models().await;
            let answer = Ok(Response::GetAvailableModels(ModelsResponse { models }));
            let _ = tx.send(Deferred::Answer { token, answer });
        });
    }
}
