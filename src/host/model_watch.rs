//! Telling the client early that its model does not exist: an extension
//! model id can only be checked once the extension has answered
//! `initialize`, which happens after `ready` (start-up never waits for
//! extensions). This task waits for that answer for whatever model is in
//! use and, if the extension does not offer it, writes a `model_error`
//! frame — instead of the client learning it from its first prompt.

use std::sync::Arc;

use tokio::sync::watch;

use crate::protocol::{Frame, ModelErrorFrame};
use crate::provider::Providers;
use crate::sink::Sink;

/// Runs until the host ends (the model channel closes).
pub(super) async fn run(
    providers: Arc<Providers>,
    mut model: watch::Receiver<Option<String>>,
    out: Sink,
) {
    loop {
        let current = model
            .borrow_and_update()
            .clone()
            .or_else(|| providers.configured_default().map(str::to_owned));
        if let Some(id) = current {
            tokio::select! {
                unoffered = providers.unoffered_after_start(&id) => {
                    // Only for the model still in use: a set_model made
                    // meanwhile was checked (and answered) on its own.
                    let still = model.borrow().clone().or_else(|| {
                        providers.configured_default().map(str::to_owned)
                    });
                    if let (Some(message), true) = (unoffered, still.as_ref() == Some(&id)) {
                        let message = format!(
                            "{message}; pick another model with set_model, or prompts will be refused"
                        );
                        out.frame(&Frame::ModelError(ModelErrorFrame { model: id, message }))
                            .await;
                    }
                }
                changed = model.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            }
        }
        if model.changed().await.is_err() {
            return;
        }
    }
}
