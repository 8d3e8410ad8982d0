//! Starting turns and applying what they report: history appends as they
//! happen, then the ordered end of a turn (`agent_end`, the prompt's
//! response, dropped follow-ups, abort responses) and the next queued turn.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::pending::{Awaits, Token};
use super::{Deferred, Host, Queued, Reaching, Running};
use crate::commands::Expansion;
use crate::engine::{self, Reports, TurnCtx, TurnMsg, TurnOutcome, TurnResult, TurnSpec};
use crate::error::Coded;
use crate::message::{Block, Content, Message, Role};
use crate::protocol::{
    AbortResponse, AgentEndFrame, AgentStartFrame, Attachment, Dropped, ErrorCode, Frame, NotRun,
    PromptParams, Response, TurnResponse,
};
use crate::session::{self, Entry};

impl Host {
    /// Starts queued prompts while nothing holds them: no turn running, no
    /// `set_model` sent before them still being checked, no prompt's model
    /// being checked, not exiting. A prompt whose model cannot be reached
    /// is rejected here, before anything of it is stored.
    pub(super) async fn start_next(&mut self) {
        while self.turn.is_none()
            && self.compacting.is_none()
            && self.model_checks.is_empty()
            && !self.holds_a_prompt()
            && self.exit.is_none()
        {
            let Some(next) = self.queue.pop_front() else {
                return;
            };
            if self.pending.get(next.token).is_none() {
                continue;
            }
            // `/compact` runs the compaction in the turn's place.
            if let Expansion::Compact { instructions } = next.expansion {
                self.start_compaction(next.token, instructions).await;
                continue;
            }
            let model = self.session.model.clone();
            match self.providers.reach_now(model.as_deref()) {
                Some(Ok(chosen)) => self.start_turn(next, chosen).await,
                Some(Err(err)) => self.reject(next.token, err).await,
                None => self.reach_later(next, model),
            }
        }
    }

    /// Checks the prompt's model in a task (its extension is starting);
    /// the queue waits for the answer, which comes back as `Reached`.
    fn reach_later(&mut self, next: Queued, model: Option<String>) {
        let providers = self.providers.clone();
        let tx = self.deferred_tx.clone();
        let token = next.token;
        let wanted = model.clone();
        tokio::spawn(async move {
            let result = providers.reach(wanted.as_deref()).await;
            let _ = tx.send(Deferred::Reached { token, result });
        });
        self.reaching = Some(Reaching {
            token,
            params: next.params,
            expansion: next.expansion,
            model,
        });
    }

    /// A prompt's model check came back: start it, reject it, or — if the
    /// model changed meanwhile — check again.
    pub(super) async fn reached(&mut self, token: Token, result: Result<String, Coded>) {
        let Some(reaching) = self.reaching.take_if(|r| r.token == token) else {
            return;
        };
        let next = Queued {
            token,
            params: reaching.params,
            expansion: reaching.expansion,
        };
        if reaching.model != self.session.model {
            self.queue.push_front(next);
        } else if self.exit.is_none() {
            match result {
                Ok(chosen) => self.start_turn(next, chosen).await,
                Err(err) => self.reject(token, err).await,
            }
        }
        self.start_next().await;
    }

    /// Persists the user's message, then starts the turn on `model` (the
    /// session's, or the default chosen for it, which is recorded now). If
    /// the message cannot be written the prompt is rejected: nothing is sent
    /// to a model that the session would not remember.
    async fn start_turn(&mut self, next: Queued, model: String) {
        let Queued {
            token,
            mut params,
            expansion,
        } = next;
        if self.pending.get(token).is_none() {
            return;
        }
        // The model chosen for the turn is the session's from now on: a
        // default is recorded like one found at start-up (in the header of
        // a file not yet written), any other change as a model change.
        if self.session.model.is_none() {
            self.adopt_default_model(model).await;
        } else if self.session.model.as_ref() != Some(&model) {
            if let Err(e) = self.change_model(model).await {
                tracing::error!("{e:#}");
            }
        }
        // A slash command is stored (and sent) as its expansion, with the
        // line the user typed beside it.
        let typed = match expansion {
            Expansion::Prompt { text, line } => {
                params.message = text;
                Some(line)
            }
            _ => None,
        };
        if self.hooks.any(crate::hooks::Event::UserPromptSubmit) {
            return self.hook_later(token, params, typed);
        }
        let context = std::mem::take(&mut self.start_context);
        self.begin_turn(token, with_context(params, context), typed)
            .await;
    }

    /// A prompt's `UserPromptSubmit` hooks finished: its turn begins with
    /// the context they added, or it is refused.
    pub(super) async fn hooked(&mut self, token: Token, outcome: crate::hooks::Outcome) {
        let Some(hooking) = self.hooking.take_if(|h| h.token == token) else {
            return;
        };
        let context = std::mem::take(&mut self.start_context);
        match prompt_refusal(&outcome) {
            // What the session start added is still owed to a prompt.
            Some(err) => {
                self.start_context = context;
                self.reject(token, err).await;
            }
            None if self.exit.is_none() => {
                let context = context.into_iter().chain(outcome.context).collect();
                let params = with_context(hooking.params, context);
                self.begin_turn(token, params, hooking.typed).await;
            }
            None => {}
        }
        self.start_next().await;
    }

    /// Stores the user's message and starts its turn.
    async fn begin_turn(
        &mut self,
        token: Token,
        params: PromptParams,
        typed: Option<session::CommandLine>,
    ) {
        let Some(open) = self.pending.get(token) else {
            return;
        };
        let (id, command) = (open.id(), open.command);
        let prompt_id = format!("p{}", self.prompts_started + 1);
        let message = Arc::new(user_message(params));
        let entry = Entry::Message {
            ts: session::now(),
            message: message.clone(),
            command: typed.clone(),
        };
        if let Err(e) = self.file.append(&entry) {
            let err = Coded::new(
                ErrorCode::Internal,
                format!("{e:#}; the prompt was not run"),
            );
            return self.reject(token, err).await;
        }
        if let Some(typed) = typed {
            let index = self.session.messages.len();
            self.session.commands.insert(index, typed);
        }
        self.session.messages.push(message);
        self.prompts_started += 1;
        self.pending.wait(token, Awaits::Turn);
        self.send(Frame::AgentStart(AgentStartFrame {
            prompt_id: prompt_id.clone(),
            id,
            command,
        }))
        .await;

        let cancel = CancellationToken::new();
        let (steer_tx, steer_rx) = mpsc::unbounded_channel();
        let spec = TurnSpec {
            prompt_id: prompt_id.clone(),
            session_id: self.session.header.id.clone(),
            history: self.session.model_messages(),
            model: self.model.subscribe(),
            system_prompt: self.context.text(),
            thinking: self.session.thinking_level,
            max_rounds: self.settings.max_rounds,
            idle_timeout: self.settings.idle_timeout,
            auto_compaction: self.auto_compaction().then_some(engine::AutoCompaction {
                reserve: self.settings.compaction.reserve,
                keep_cap: self.settings.compaction.keep_cap,
            }),
            budget: self.turn_budget(),
        };
        let ctx = TurnCtx {
            providers: self.providers.clone(),
            out: self.out.clone(),
            host: Reports::new(prompt_id.clone(), self.turn_tx.clone()),
            cancel: cancel.clone(),
            steers: steer_rx,
            gate: self.gate.clone(),
            hooks: self.hooks.clone(),
            cwd: self.settings.cwd_path.clone(),
            skill_roots: Arc::new(self.context.skill_roots()),
            backends: self.backends.clone(),
            tools: self.tools.clone(),
            session_id: self.session.header.id.clone(),
            model: self.model.subscribe(),
        };
        tokio::spawn(engine::run(spec, ctx));
        self.turn = Some(Running {
            prompt_id,
            token,
            cancel,
            steer: steer_tx,
            aborts: Vec::new(),
            dropped: Vec::new(),
            persist_error: None,
            compacting: false,
        });
    }

    pub(super) async fn on_turn_msg(&mut self, prompt_id: String, msg: TurnMsg) {
        if self.turn.as_ref().map(|t| &t.prompt_id) != Some(&prompt_id) {
            tracing::debug!("ignoring a report from finished turn {prompt_id}");
            return;
        }
        match msg {
            TurnMsg::Append(message) => self.append(message),
            TurnMsg::Compacting(on) => {
                if let Some(turn) = self.turn.as_mut() {
                    turn.compacting = on;
                }
            }
            TurnMsg::Compacted {
                summary,
                kept,
                tokens_before,
                tokens_after,
            } => {
                let first_kept = self.session.messages.len().saturating_sub(kept);
                if let Err(e) =
                    self.record_compaction(summary, first_kept, tokens_before, tokens_after)
                {
                    tracing::error!("{e:#}");
                    if let Some(turn) = self.turn.as_mut() {
                        turn.persist_error.get_or_insert(format!("{e:#}"));
                    }
                }
            }
            TurnMsg::Plan(entries) => self.record_plan(entries),
            TurnMsg::Done(outcome) => self.end_turn(outcome).await,
        }
    }

    /// Stores the model's new plan, in memory even when the file could not
    /// take it (the turn's answer then says its entries were not saved).
    fn record_plan(&mut self, entries: Vec<crate::protocol::PlanEntry>) {
        let entry = Entry::Plan {
            ts: session::now(),
            entries,
        };
        if let Err(e) = self.file.append(&entry) {
            tracing::error!("{e:#}");
            if let Some(turn) = self.turn.as_mut() {
                turn.persist_error.get_or_insert(format!("{e:#}"));
            }
        }
        self.session.apply(entry);
    }

    /// Writes a `compaction` entry and makes it the session's latest: the
    /// model sees the summary and the messages from `first_kept` on.
    pub(super) fn record_compaction(
        &mut self,
        summary: String,
        first_kept: usize,
        tokens_before: u64,
        tokens_after: u64,
    ) -> anyhow::Result<()> {
        let entry = Entry::Compaction {
            ts: session::now(),
            summary,
            first_kept,
            tokens_before,
            tokens_after,
        };
        let written = self.file.append(&entry).and_then(|()| self.file.sync());
        // Applied even when it could not be written: the running session
        // goes on from the summary; a resume would redo it.
        self.session.apply(entry);
        written
    }

    /// Adds a message of the running turn to the history and the file.
    fn append(&mut self, message: Arc<Message>) {
        let entry = Entry::Message {
            ts: session::now(),
            message: message.clone(),
            command: None,
        };
        if let Err(e) = self.file.append(&entry) {
            // The turn goes on (the client still sees it); its response
            // will say that its messages were not saved.
            tracing::error!("{e:#}");
            if let Some(turn) = self.turn.as_mut() {
                turn.persist_error.get_or_insert(format!("{e:#}"));
            }
        }
        self.session.messages.push(message);
    }

    /// Records the turn's end, then answers in order: `agent_end`, the
    /// prompt's response, the follow-ups an abort dropped, the aborts; then
    /// starts the next queued prompt.
    pub(super) async fn end_turn(&mut self, outcome: TurnOutcome) {
        let Some(turn) = self.turn.take() else { return };
        let persisted = self.record_turn_end(&outcome);
        self.send(Frame::AgentEnd(AgentEndFrame {
            prompt_id: outcome.prompt_id.clone(),
            stop_reason: outcome.stop_reason.clone(),
            usage: outcome.usage,
            last_call: outcome.last_call,
            session_cost_usd: self.session.cost_usd,
        }))
        .await;

        let persist_error = turn
            .persist_error
            .or_else(|| persisted.err().map(|e| format!("{e:#}")));
        let steers: Vec<Dropped> = outcome
            .undelivered
            .iter()
            .map(|message| Dropped::Steer {
                message: message.clone(),
            })
            .collect();
        // With no abort to report them, the turn failed before it could
        // deliver its steers: its own response lists them.
        let unreported = if turn.aborts.is_empty() {
            steers.clone()
        } else {
            Vec::new()
        };
        let response = turn_response(outcome, unreported, persist_error);
        self.respond(turn.token, Response::Turn(response)).await;

        for token in turn.dropped {
            self.respond(token, Response::NotRun(NotRun::cancelled()))
                .await;
        }
        let mut steers = Some(steers);
        for (token, mut dropped) in turn.aborts {
            // The first abort reports the steers the turn never delivered.
            dropped.extend(steers.take().unwrap_or_default());
            self.respond(token, Response::Abort(AbortResponse { dropped }))
                .await;
        }
        self.start_next().await;
    }

    /// The session's budget as the turn about to start keeps to it; `None`
    /// when it has no limits.
    fn turn_budget(&self) -> Option<engine::budget::TurnBudget> {
        let limits = self.settings.budget;
        if limits.max_turns.is_none() && limits.budget_usd.is_none() {
            return None;
        }
        Some(engine::budget::TurnBudget {
            limits,
            rounds_before: self.session.rounds,
            usd_before: self.session.cost_usd.unwrap_or(0.0),
            price: self
                .session
                .model
                .as_deref()
                .and_then(|m| self.providers.price(m)),
        })
    }

    /// Writes the `turn_end` entry, syncs the file and adds the turn to the
    /// session's totals (priced when the model's prices are known; what
    /// its subagents spent is part of it).
    fn record_turn_end(&mut self, outcome: &TurnOutcome) -> anyhow::Result<()> {
        let own = self
            .session
            .model
            .as_deref()
            .and_then(|m| self.providers.price(m))
            .map(|p| p.cost(&outcome.usage));
        let cost_usd = match own {
            Some(own) => Some(own + outcome.children_usd),
            None => (outcome.children_usd > 0.0).then_some(outcome.children_usd),
        };
        let persisted = self
            .file
            .append(&Entry::TurnEnd {
                ts: session::now(),
                prompt_id: outcome.prompt_id.clone(),
                stop_reason: outcome.stop_reason.clone(),
                usage: outcome.usage,
                cost_usd,
                rounds: Some(outcome.rounds),
            })
            .and_then(|()| self.file.sync());
        self.session.add_turn(&outcome.usage, cost_usd);
        self.session.rounds += outcome.rounds;
        persisted
    }
}

/// The response to the command that started a turn (`ok` unless it names
/// a `code`: see `Response::ok`).
fn turn_response(
    outcome: TurnOutcome,
    dropped: Vec<Dropped>,
    persist_error: Option<String>,
) -> TurnResponse {
    let mut response = TurnResponse {
        prompt_id: outcome.prompt_id,
        stop_reason: outcome.stop_reason,
        usage: outcome.usage,
        cancelled: false,
        code: None,
        error: None,
        dropped,
        persist_error: None,
        round_limit: false,
    };
    match outcome.result {
        // An answer the session could not keep is not a success: the
        // client must learn that a restart would lose it.
        TurnResult::Ok if persist_error.is_some() => {
            response.code = Some(ErrorCode::Internal);
            response.error = Some(format!(
                "{}; the answer was shown but is not saved in the session",
                persist_error.as_deref().unwrap_or_default()
            ));
        }
        TurnResult::Ok => {}
        TurnResult::Cancelled => response.cancelled = true,
        TurnResult::Failed { code, error } => {
            response.code = Some(code);
            response.error = Some(error);
        }
        TurnResult::RoundLimit { error } => {
            response.code = Some(ErrorCode::ProviderError);
            response.error = Some(error);
            response.round_limit = true;
        }
        TurnResult::BudgetExceeded { error } => {
            response.code = Some(ErrorCode::BudgetExceeded);
            response.error = Some(error);
            response.round_limit = true;
        }
    }
    response.persist_error = persist_error;
    response
}

fn user_message(params: PromptParams) -> Message {
    if params.attachments.is_empty() {
        return Message::user_text(params.message);
    }
    let mut blocks = vec![Block::Text {
        text: params.message,
    }];
    for a in params.attachments {
        blocks.push(match a {
            Attachment::Text { text } => Block::Text { text },
            Attachment::Image { media_type, data } => Block::Image {
                source: json!({"type": "base64", "media_type": media_type, "data": data}),
            },
        });
    }
    Message::new(Role::User, Content::Blocks(blocks))
}

/// The prompt with the context hooks added before its own text, as text
/// attachments.
fn with_context(mut params: PromptParams, context: Vec<String>) -> PromptParams {
    for text in context.into_iter().rev() {
        params.attachments.insert(0, Attachment::Text { text });
    }
    params
}

/// The error refusing a prompt its `UserPromptSubmit` hooks blocked.
fn prompt_refusal(outcome: &crate::hooks::Outcome) -> Option<Coded> {
    let reason = outcome.block.as_ref()?;
    let hooks: Vec<String> = outcome
        .blocked_by
        .iter()
        .map(|c| format!("`{c}`"))
        .collect();
    Some(Coded::new(
        ErrorCode::HookBlocked,
        format!(
            "the UserPromptSubmit hook {} refused the prompt: {reason}",
            hooks.join(", ")
        ),
    ))
}
