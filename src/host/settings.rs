//! One owner for what a client can change about a session: its permission
//! mode, model, thinking level, working directory and auto-compaction.
//!
//! Each change is one method here: it persists the change first (a setting
//! the session would not remember is not applied), then updates every
//! holder that acts on it (the gate, the system prompt), then publishes the
//! new [`SessionSettings`] on a watch channel. Front ends read the settings
//! they show (mode, model, thinking level, sandbox) from that channel instead of
//! keeping a mirror of their own, and a model change is also announced on
//! the wire (`model_changed`). The working directory and auto-compaction
//! are shown by `get_state` only, so they are not published.

use crate::host::Host;
use crate::protocol::Mode;
use crate::protocol::ThinkingLevel;
use crate::protocol::{Frame, ModelChangedFrame};
use crate::session::{self, Entry};

/// The settings a front end shows, as they are now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SessionSettings {
    pub mode: Mode,
    pub model: Option<String>,
    pub thinking: ThinkingLevel,
    /// The kernel sandbox of the session's commands.
    pub sandbox: crate::protocol::SandboxMode,
}

impl Host {
    /// The settings in force, derived from their holders.
    pub(super) fn current_settings(&self) -> SessionSettings {
        SessionSettings {
            mode: self.gate.mode(),
            model: self.session.model.clone(),
            thinking: self.session.thinking_level,
            sandbox: self.backends.sandbox_state().mode,
        }
    }

    /// Tells the front end, after any change (or a change of session).
    pub(super) fn publish_settings(&self) {
        let now = self.current_settings();
        self.published.send_if_modified(|shown| {
            let changed = *shown != now;
            *shown = now;
            changed
        });
    }

    pub(super) fn set_mode(&mut self, mode: Mode) -> anyhow::Result<()> {
        self.file.append(&Entry::PermissionMode {
            ts: session::now(),
            mode,
        })?;
        self.gate.set_mode(mode);
        self.session.permission_mode = Some(mode);
        // The prompt lists the tools the mode allows.
        self.context.set_mode(mode);
        self.publish_settings();
        Ok(())
    }

    /// Applies from the next turn.
    pub(super) fn set_thinking(&mut self, level: ThinkingLevel) -> anyhow::Result<()> {
        self.file.append(&Entry::ThinkingLevel {
            ts: session::now(),
            level,
        })?;
        self.session.thinking_level = level;
        self.publish_settings();
        Ok(())
    }

    pub(super) fn set_auto_compaction_to(&mut self, enabled: bool) -> anyhow::Result<()> {
        let entry = Entry::AutoCompaction {
            ts: session::now(),
            enabled,
        };
        self.file.append(&entry)?;
        self.session.apply(entry);
        // The client's explicit choice outranks the start-up flag.
        self.settings.compaction.forced_off = false;
        Ok(())
    }

    /// Switches the model for the next provider request and records it.
    pub(super) async fn change_model(&mut self, model: String) -> anyhow::Result<()> {
        self.file.append(&Entry::ModelChange {
            ts: session::now(),
            model: model.clone(),
        })?;
        self.use_model(model).await;
        Ok(())
    }

    /// The model from now on (already recorded, or a default that is),
    /// announced with `model_changed` when it is another one.
    pub(super) async fn use_model(&mut self, model: String) {
        let changed = self.session.model.as_ref() != Some(&model);
        self.session.model = Some(model.clone());
        self.model.send_replace(Some(model.clone()));
        self.publish_settings();
        if changed {
            self.send(Frame::ModelChanged(ModelChangedFrame { model }))
                .await;
        }
    }
}
