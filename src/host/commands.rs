//! One handler per command. Each answers exactly once: here, or (for turns
//! and deferred reads) later from the turn report or a spawned task.

use serde_json::{json, Map, Value};

use super::{Deferred, Held, Host, Queued};
use crate::protocol::{Command, Envelope, ErrorCode, ErrorFrame, Frame, ResponseFrame};
use crate::session::{self, Entry, Session};

/// Builds a response body from a `json!` object.
fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Host {
    pub(super) async fn dispatch(&mut self, Envelope { id, command }: Envelope) {
        let name = command.name();
        match command {
            Command::Prompt(params) => {
                if self.turn.is_some() || !self.held.is_empty() {
                    return self.busy(id, name).await;
                }
                if !self.model_checks.is_empty() {
                    self.held.push_back(Held {
                        id,
                        command: name,
                        params,
                    });
                    return;
                }
                self.start_turn(id, name, params).await;
            }
            Command::FollowUp(params) => {
                if self.turn.is_some() {
                    self.queue.push_back(Queued { id, params });
                } else if !self.model_checks.is_empty() || !self.held.is_empty() {
                    self.held.push_back(Held {
                        id,
                        command: name,
                        params,
                    });
                } else {
                    self.start_turn(id, name, params).await;
                }
            }
            Command::Abort => self.abort(id).await,
            Command::PermissionResponse(p) => {
                let answer = crate::permissions::Answer {
                    decision: p.decision,
                    message: p.message,
                };
                if self.gate.answer(&p.request_id, answer) {
                    self.respond(id, name, true, Map::new()).await;
                } else {
                    let err = ErrorFrame::new(
                        id.clone(),
                        ErrorCode::NotFound,
                        format!(
                            "no open permission request {:?} (it was answered, cancelled by an abort, or never existed)",
                            p.request_id
                        ),
                    );
                    self.reject(id, name, err).await;
                }
            }
            Command::SetPermissionMode(p) => {
                let entry = Entry::PermissionMode {
                    ts: session::now(),
                    mode: p.mode,
                };
                if let Err(e) = self.file.append(&entry) {
                    let err = ErrorFrame::new(id.clone(), ErrorCode::Internal, format!("{e:#}"));
                    return self.reject(id, name, err).await;
                }
                self.gate.set_mode(p.mode);
                self.session.permission_mode = Some(p.mode);
                let b = json!({ "mode": p.mode });
                self.respond(id, name, true, body(b)).await;
            }
            Command::Steer(params) => self.steer(id, params.message).await,
            Command::SetModel(params) => self.set_model(id, params.model).await,
            Command::GetState => {
                let b = json!({
                    "streaming": self.turn.is_some(),
                    "prompt_id": self.turn.as_ref().map(|t| t.prompt_id.clone()),
                    "model": self.session.model,
                    "session_id": self.session.header.id,
                    "message_count": self.session.messages.len(),
                    "queued": self.queue.len(),
                    "cwd": self.settings.cwd,
                    "permission_mode": self.gate.mode(),
                });
                self.respond(id, name, true, body(b)).await;
            }
            Command::GetSessionStats => {
                let u = &self.session.usage;
                let b = json!({
                    "session_id": self.session.header.id,
                    "model": self.session.model,
                    "message_count": self.session.messages.len(),
                    "turns": self.session.turns,
                    "input_tokens": u.input_tokens,
                    "output_tokens": u.output_tokens,
                    "cache_read_input_tokens": u.cache_read_input_tokens,
                    "cache_creation_input_tokens": u.cache_creation_input_tokens,
                    "cost_usd": self.session.cost_usd,
                });
                self.respond(id, name, true, body(b)).await;
            }
            Command::GetMessages => {
                let b = json!({ "messages": self.session.messages });
                self.respond(id, name, true, body(b)).await;
            }
            Command::GetAvailableModels => {
                // Extensions may still be starting: answer from a task so the
                // loop keeps serving while they do.
                let token = self.outstanding(&id, name);
                let providers = self.providers.clone();
                let tx = self.deferred_tx.clone();
                tokio::spawn(async move {
                    let models = providers.available_models().await;
                    let frame = Frame::Response(ResponseFrame {
                        id,
                        command: name,
                        ok: true,
                        body: body(json!({ "models": models })),
                    });
                    let _ = tx.send(Deferred::Answer { token, frame });
                });
            }
            Command::NewSession => {
                if self.turn.is_some() {
                    return self.busy(id, name).await;
                }
                self.new_session(id).await;
            }
            Command::ListSessions => {
                let token = self.outstanding(&id, name);
                let store = self.store.clone();
                let tx = self.deferred_tx.clone();
                tokio::spawn(async move {
                    let listed = tokio::task::spawn_blocking(move || store.list()).await;
                    let frame = match listed {
                        Ok(Ok(sessions)) => Frame::Response(ResponseFrame {
                            id,
                            command: name,
                            ok: true,
                            body: body(json!({ "sessions": sessions })),
                        }),
                        Ok(Err(e)) => Frame::Error(
                            ErrorFrame::new(id, ErrorCode::Internal, format!("{e:#}"))
                                .for_command(name),
                        ),
                        Err(e) => Frame::Error(
                            ErrorFrame::new(id, ErrorCode::Internal, e.to_string())
                                .for_command(name),
                        ),
                    };
                    let _ = tx.send(Deferred::Answer { token, frame });
                });
            }
            Command::Shutdown => {
                self.respond(id, name, true, Map::new()).await;
                self.begin_exit();
            }
        }
    }

    async fn busy(&self, id: Value, name: &'static str) {
        let err = ErrorFrame::new(
            id.clone(),
            ErrorCode::Busy,
            "another prompt is in flight; abort first",
        );
        self.reject(id, name, err).await;
    }

    async fn abort(&mut self, id: Value) {
        let Some(turn) = self.turn.as_mut() else {
            return self
                .respond(id, "abort", true, body(json!({ "dropped": [] })))
                .await;
        };
        turn.cancel.cancel();
        // Follow-ups queued so far are dropped; ones sent after this abort
        // run normally after the turn.
        let mut dropped = Vec::new();
        for q in self.queue.drain(..) {
            dropped.push(json!({"type": "follow_up", "id": q.id, "message": q.params.message}));
            turn.dropped.push(q);
        }
        turn.aborts.push((id, dropped));
    }

    async fn steer(&mut self, id: Value, message: String) {
        let delivered = match &self.turn {
            Some(turn) => turn.steer.send(message).is_ok(),
            None => false,
        };
        if delivered {
            self.respond(id, "steer", true, body(json!({ "queued": true })))
                .await;
        } else {
            let msg = if self.turn.is_some() {
                "the turn is ending and takes no more steering; send it as a follow_up"
            } else {
                "no prompt is running; send a prompt instead"
            };
            let err = ErrorFrame::new(id.clone(), ErrorCode::NotStreaming, msg);
            self.reject(id, "steer", err).await;
        }
    }

    async fn set_model(&mut self, id: Value, model: String) {
        if let Err(e) = self.providers.check_model_quick(&model) {
            let err = ErrorFrame::new(id.clone(), ErrorCode::NotFound, e);
            return self.reject(id, "set_model", err).await;
        }
        if self.model_checks.is_empty() {
            if let Some(result) = self.providers.check_model_now(&model) {
                return self.apply_set_model(id, model, result).await;
            }
        }
        // An extension's provider and model names are known once it has
        // started; checking them may wait for that, so it runs off the loop,
        // and later set_models queue behind it to keep their order.
        let token = self.outstanding(&id, "set_model");
        self.model_checks.push_back(token);
        let providers = self.providers.clone();
        let tx = self.deferred_tx.clone();
        tokio::spawn(async move {
            let result = providers.check_model(&model).await.map(|_| ());
            let _ = tx.send(Deferred::SetModel {
                token,
                id,
                model,
                result,
            });
        });
    }

    pub(super) async fn on_deferred(&mut self, d: Deferred) {
        match d {
            Deferred::Answer { token, frame } => {
                if self.outstanding.remove(&token).is_some() {
                    self.send(frame).await;
                }
                // Otherwise it was already answered at exit; a second
                // answer would break the one-answer rule.
            }
            Deferred::SetModel {
                token,
                id,
                model,
                result,
            } => {
                self.model_results.insert(token, (id, model, result));
                self.apply_model_checks().await;
            }
        }
    }

    /// Applies finished `set_model` checks in arrival order, then starts a
    /// prompt that was waiting for them.
    async fn apply_model_checks(&mut self) {
        while let Some(&token) = self.model_checks.front() {
            let Some((id, model, result)) = self.model_results.remove(&token) else {
                return;
            };
            self.model_checks.pop_front();
            if self.outstanding.remove(&token).is_some() {
                self.apply_set_model(id, model, result).await;
            }
        }
        if self.model_checks.is_empty() && self.turn.is_none() && self.exit.is_none() {
            if let Some(h) = self.held.pop_front() {
                self.start_turn(h.id, h.command, h.params).await;
                // Follow-ups held behind it run after it, in order.
                for h in std::mem::take(&mut self.held) {
                    self.queue.push_back(Queued {
                        id: h.id,
                        params: h.params,
                    });
                }
            }
        }
    }

    async fn apply_set_model(&mut self, id: Value, model: String, result: Result<(), String>) {
        match result {
            Ok(()) => match self.change_model(model.clone()) {
                Ok(()) => {
                    self.respond(id, "set_model", true, body(json!({ "model": model })))
                        .await
                }
                Err(e) => {
                    let err = ErrorFrame::new(id.clone(), ErrorCode::Internal, e);
                    self.reject(id, "set_model", err).await;
                }
            },
            Err(e) => {
                let err = ErrorFrame::new(id.clone(), ErrorCode::NotFound, e);
                self.reject(id, "set_model", err).await;
            }
        }
    }

    /// Switches the model for the next provider request and records it.
    pub(super) fn change_model(&mut self, model: String) -> Result<(), String> {
        self.file
            .append(&Entry::ModelChange {
                ts: session::now(),
                model: model.clone(),
            })
            .map_err(|e| format!("{e:#}"))?;
        self.session.model = Some(model.clone());
        self.model.send_replace(Some(model));
        Ok(())
    }

    async fn new_session(&mut self, id: Value) {
        if let Err(e) = self.file.sync() {
            let err = ErrorFrame::new(id.clone(), ErrorCode::Internal, format!("{e:#}"));
            return self.reject(id, "new_session", err).await;
        }
        let mut session = Session::new(
            session::new_id(),
            self.settings.cwd.clone(),
            self.session.model.clone(),
        );
        // The mode in effect carries over, and is recorded so that resuming
        // the new session keeps it.
        session.header.permission_mode = Some(self.gate.mode());
        session.permission_mode = Some(self.gate.mode());
        // Replacing the writer drops the old file and with it the lock.
        self.file = self.store.create(session.header.clone());
        // `allow_always` grants belong to the session they were given in.
        self.gate.reset();
        self.session = session;
        let b = json!({ "session_id": self.session.header.id });
        self.respond(id, "new_session", true, body(b)).await;
    }
}
