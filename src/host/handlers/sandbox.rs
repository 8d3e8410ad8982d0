//! `set_sandbox`: the kernel sandbox of the session's commands, from the
//! next one started (a running command keeps the one it started in).

use crate::host::pending::Token;
use crate::host::Host;
use crate::protocol::{Response, SetSandboxParams, SetSandboxResponse};

impl Host {
    pub(super) async fn set_sandbox(&mut self, token: Token, params: SetSandboxParams) {
        if let Some(sandbox) = &self.backends.sandbox {
            sandbox.set_mode(params.mode);
        }
        let state = self.backends.sandbox_state();
        // The system prompt says what asks, which the sandbox changes.
        self.context.set_sandboxed(state.enforced);
        let mode = state.mode;
        // ACP shows it as a config option.
        self.publish_settings();
        let answer = Ok(Response::SetSandbox(SetSandboxResponse { mode }));
        self.answer(token, answer).await;
    }
}
