//! `set_model`: checked at once when it can be, else by a task (an
//! extension's models are known only once it has started), and applied in
//! the order the commands arrived whatever order their checks finish in. A
//! prompt sent after a `set_model` waits for it, so it runs on the model it
//! was meant for.

use crate::error::Coded;
use crate::host::pending::Token;
use crate::host::{Deferred, Host, ModelCheck};
use crate::protocol::{ErrorCode, Response, SetModelResponse};

impl Host {
    pub(super) async fn set_model(&mut self, token: Token, model: String) {
        if let Err(e) = self.providers.check_model_quick(&model) {
            return self
                .reject(token, Coded::new(ErrorCode::NotFound, format!("{e:#}")))
                .await;
        }
        if self.model_checks.is_empty() {
            if let Some(result) = self.providers.check_model_now(&model) {
                return self.apply_set_model(token, model, result).await;
            }
        }
        let (token, tx) = self.defer(token);
        self.model_checks.push_back(ModelCheck {
            token,
            model: model.clone(),
            result: None,
        });
        let providers = self.providers.clone();
        tokio::spawn(async move {
            let result = providers.check_model(&model).await;
            let _ = tx.send(Deferred::ModelChecked { token, result });
        });
    }

    /// Applies the finished checks at the front of the queue, then starts a
    /// prompt that was waiting for them.
    pub(in crate::host) async fn apply_model_checks(&mut self) {
        while self
            .model_checks
            .front()
            .is_some_and(|c| c.result.is_some())
        {
            let Some(ModelCheck {
                token,
                model,
                result: Some(result),
            }) = self.model_checks.pop_front()
            else {
                break;
            };
            self.apply_set_model(token, model, result).await;
        }
        self.start_next().await;
    }

    async fn apply_set_model(&mut self, token: Token, model: String, checked: anyhow::Result<()>) {
        if self.pending.get(token).is_none() {
            // Answered already (the host is exiting): change nothing.
            return;
        }
        let answer = match checked {
            Err(e) => Err(Coded::new(ErrorCode::NotFound, format!("{e:#}"))),
            Ok(()) => match self.change_model(model.clone()).await {
                Ok(()) => Ok(Response::SetModel(SetModelResponse { model })),
                Err(e) => Err(Coded::new(ErrorCode::Internal, format!("{e:#}"))),
            },
        };
        self.answer(token, answer).await;
    }

    /// Takes a default model (found at start-up once extensions reported,
    /// or by a turn) unless one was set meanwhile.
    pub(in crate::host) async fn adopt_default_model(&mut self, model: String) {
        if self.session.model.is_some() {
            return;
        }
        if let Err(e) = self.file.record_default_model(&model) {
            tracing::error!("{e:#}");
        }
        self.session
            .header
            .model
            .get_or_insert_with(|| model.clone());
        self.use_model(model).await;
    }

    /// Looks for the default model in a task when it depends on extensions
    /// still starting; `ready` said `null`, `model_changed` follows.
    pub(in crate::host) fn find_default_model(&mut self) {
        if self.session.model.is_some() || !self.providers.has_extensions() {
            return;
        }
        let providers = self.providers.clone();
        let tx = self.deferred_tx.clone();
        tokio::spawn(async move {
            if let Some(model) = providers.default_model().await {
                let _ = tx.send(Deferred::DefaultModel(model));
            }
        });
    }
}
