//! Starting turns and applying what they report: history appends as they
//! happen, then the ordered end of a turn (`agent_end`, the prompt's
//! response, dropped follow-ups, abort responses) and the next queued turn.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Host, Running};
use crate::engine::{self, Reports, TurnCtx, TurnMsg, TurnOutcome, TurnResult, TurnSpec};
use crate::message::{Block, Content, Message, Role};
use crate::protocol::{
    AgentEndFrame, AgentStartFrame, Attachment, ErrorCode, ErrorFrame, Frame, PromptParams,
};
use crate::session::{self, Entry};

impl Host {
    /// Persists the user's message, then starts the turn. If the message
    /// cannot be written the prompt is rejected: nothing is sent to a model
    /// that the session would not remember.
    pub(super) async fn start_turn(
        &mut self,
        id: Value,
        command: &'static str,
        params: PromptParams,
    ) {
        let message = Arc::new(user_message(params));
        let entry = Entry::Message {
            ts: session::now(),
            message,
        };
        if let Err(e) = self.file.append(&entry) {
            let err = ErrorFrame::new(
                id.clone(),
                ErrorCode::Internal,
                format!("{e:#}; the prompt was not run"),
            );
            return self.reject(id, command, err).await;
        }
        let Entry::Message { message, .. } = entry else {
            return;
        };
        self.session.messages.push(message);
        self.prompts_started += 1;
        let prompt_id = format!("p{}", self.prompts_started);
        self.send(Frame::AgentStart(AgentStartFrame {
            prompt_id: prompt_id.clone(),
            id: id.clone(),
            command,
        }))
        .await;

        let cancel = CancellationToken::new();
        let (steer_tx, steer_rx) = mpsc::unbounded_channel();
        let spec = TurnSpec {
            prompt_id: prompt_id.clone(),
            history: self.session.messages.clone(),
            model: self.model.subscribe(),
            system_prompt: self.settings.system_prompt.clone(),
            max_rounds: self.settings.max_rounds,
            idle_timeout: self.settings.idle_timeout,
        };
        let ctx = TurnCtx {
            providers: self.providers.clone(),
            out: self.out.clone(),
            host: Reports::new(prompt_id.clone(), self.turn_tx.clone()),
            cancel: cancel.clone(),
            steers: steer_rx,
            gate: self.gate.clone(),
            cwd: self.settings.cwd_path.clone(),
            env_remove: self.settings.env_remove.clone(),
        };
        tokio::spawn(engine::run(spec, ctx));
        self.turn = Some(Running {
            prompt_id,
            id,
            command,
            cancel,
            steer: steer_tx,
            aborts: Vec::new(),
            dropped: Vec::new(),
            persist_error: None,
        });
    }

    pub(super) async fn on_turn_msg(&mut self, prompt_id: String, msg: TurnMsg) {
        if self.turn.as_ref().map(|t| &t.prompt_id) != Some(&prompt_id) {
            tracing::debug!("ignoring a report from finished turn {prompt_id}");
            return;
        }
        match msg {
            TurnMsg::Append(message) => {
                let entry = Entry::Message {
                    ts: session::now(),
                    message,
                };
                if let Err(e) = self.file.append(&entry) {
                    // The turn goes on (the client still sees it); its
                    // response will say that its messages were not saved.
                    tracing::error!("{e:#}");
                    if let Some(turn) = self.turn.as_mut() {
                        turn.persist_error.get_or_insert(format!("{e:#}"));
                    }
                }
                if let Entry::Message { message, .. } = entry {
                    self.session.messages.push(message);
                }
            }
            TurnMsg::ModelChosen(model) => {
                if let Err(e) = self.change_model(model) {
                    tracing::error!("{e}");
                }
            }
            TurnMsg::Done(outcome) => self.end_turn(outcome).await,
        }
    }

    pub(super) async fn end_turn(&mut self, outcome: TurnOutcome) {
        let Some(turn) = self.turn.take() else { return };
        let TurnOutcome {
            prompt_id,
            stop_reason,
            usage,
            result,
            undelivered,
        } = outcome;
        let cost_usd = self
            .session
            .model
            .as_deref()
            .and_then(|m| self.providers.price(m))
            .map(|p| p.cost(&usage));
        let persisted = self
            .file
            .append(&Entry::TurnEnd {
                ts: session::now(),
                prompt_id: prompt_id.clone(),
                stop_reason: stop_reason.clone(),
                usage,
                cost_usd,
            })
            .and_then(|()| self.file.sync());
        self.session.add_turn(&usage, cost_usd);

        self.send(Frame::AgentEnd(AgentEndFrame {
            prompt_id: prompt_id.clone(),
            stop_reason: stop_reason.clone(),
            usage,
        }))
        .await;

        let mut body = Map::new();
        body.insert("prompt_id".into(), json!(prompt_id));
        body.insert("stop_reason".into(), json!(stop_reason));
        body.insert("usage".into(), json!(usage));
        let persist_error = turn
            .persist_error
            .clone()
            .or_else(|| persisted.err().map(|e| format!("{e:#}")));
        let ok = match result {
            // An answer the session could not keep is not a success: the
            // client must learn that a restart would lose it.
            TurnResult::Ok if persist_error.is_some() => {
                body.insert("code".into(), json!(ErrorCode::Internal));
                body.insert(
                    "error".into(),
                    json!(format!(
                        "{}; the answer was shown but is not saved in the session",
                        persist_error.as_deref().unwrap_or_default()
                    )),
                );
                false
            }
            TurnResult::Ok => true,
            TurnResult::Cancelled => {
                body.insert("cancelled".into(), json!(true));
                true
            }
            TurnResult::Failed { code, error } => {
                body.insert("code".into(), json!(code));
                body.insert("error".into(), json!(error));
                false
            }
        };
        let steers: Vec<Value> = undelivered
            .into_iter()
            .map(|m| json!({"type": "steer", "message": m}))
            .collect();
        if turn.aborts.is_empty() && !steers.is_empty() {
            // The turn failed before it could deliver them.
            body.insert("dropped".into(), Value::Array(steers.clone()));
        }
        if let Some(e) = persist_error {
            body.insert("persist_error".into(), json!(e));
        }
        self.respond(turn.id, turn.command, ok, body).await;

        for q in turn.dropped {
            let mut b = Map::new();
            b.insert("cancelled".into(), json!(true));
            self.respond(q.id, "follow_up", true, b).await;
        }
        for (n, (id, mut dropped)) in turn.aborts.into_iter().enumerate() {
            if n == 0 {
                dropped.extend(steers.iter().cloned());
            }
            let mut b = Map::new();
            b.insert("dropped".into(), Value::Array(dropped));
            self.respond(id, "abort", true, b).await;
        }

        if self.exit.is_none() {
            if let Some(next) = self.queue.pop_front() {
                self.start_turn(next.id, "follow_up", next.params).await;
            }
        }
    }
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
