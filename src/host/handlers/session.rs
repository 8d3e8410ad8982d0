//! Commands about the session itself: `new_session`, `list_sessions`,
//! `set_permission_mode`, `set_thinking_level` and `permission_response`.

use crate::error::{Coded, WithCode};
use crate::host::pending::Token;
use crate::host::{Deferred, Host};
use crate::permissions::Answer;
use crate::protocol::Mode;
use crate::protocol::ThinkingLevel;
use crate::protocol::{
    DeleteSessionResponse, Empty, ErrorCode, NewSessionResponse, PermissionResponseParams,
    Response, SessionsResponse, SetPermissionModeResponse, SetThinkingLevelResponse,
};
use crate::session::{self, Session};

impl Host {
    /// Why the session in use cannot be replaced now (`new_session`,
    /// `fork`, `switch_session`): queued prompts and pending model checks
    /// belong to it.
    pub(super) fn session_change_refused(&self) -> Option<Coded> {
        let busy = self.turn.is_some()
            || self.compacting.is_some()
            || self.holds_a_prompt()
            || !self.queue.is_empty()
            || !self.model_checks.is_empty();
        busy.then(|| Coded::new(ErrorCode::Busy, "another prompt is in flight; abort first"))
    }

    /// Starts a fresh session in the same process; the mode in effect
    /// carries over, `allow_always` grants do not.
    pub(super) async fn new_session(&mut self, token: Token) {
        if let Some(busy) = self.session_change_refused() {
            return self.reject(token, busy).await;
        }
        if let Err(e) = self.file.sync() {
            return self
                .reject(token, Coded::new(ErrorCode::Internal, format!("{e:#}")))
                .await;
        }
        let mut session = Session::new(
            session::new_id(),
            self.settings.cwd.clone(),
            self.session.model.clone(),
        );
        // Recorded so that resuming the new session keeps the mode.
        session.header.permission_mode = Some(self.gate.mode());
        session.permission_mode = Some(self.gate.mode());
        // The thinking level carries over too, like Claude Code's and pi's.
        let level = self.session.thinking_level;
        session.header.thinking_level = Some(level).filter(|l| *l != ThinkingLevel::Off);
        session.thinking_level = level;
        // Replacing the writer drops the old file and with it the lock.
        self.file = self.store.create(session.header.clone());
        // `allow_always` grants belong to the session they were given in.
        self.gate.reset();
        self.session = session;
        // Context files are read when a session starts: edits made since
        // the last one are picked up here.
        self.context.restart();
        self.commands.restart();
        self.publish_settings();
        let created = Response::NewSession(NewSessionResponse {
            session_id: self.session.header.id.clone(),
        });
        self.respond(token, created).await;
    }

    /// Lists stored sessions from a task: reading many files must not hold
    /// up the loop.
    pub(super) fn list_sessions(&mut self, token: Token) {
        let (token, tx) = self.defer(token);
        let store = self.store.clone();
        tokio::spawn(async move {
            let answer = match tokio::task::spawn_blocking(move || store.list()).await {
                Ok(listed) => listed
                    .code(ErrorCode::Internal)
                    .map(|sessions| Response::ListSessions(SessionsResponse { sessions })),
                Err(e) => Err(Coded::new(ErrorCode::Internal, e.to_string())),
            };
            let _ = tx.send(Deferred::Answer { token, answer });
        });
    }

    /// Deletes a stored session. The store refuses one that any process
    /// holds; the one in use here is refused first, with what to do.
    pub(super) async fn delete_session(&mut self, token: Token, id: String) {
        if id == self.session.header.id {
            let busy = Coded::new(
                ErrorCode::Busy,
                "that is the session in use; switch to another (new_session) before deleting it",
            );
            return self.reject(token, busy).await;
        }
        let answer = self
            .store
            .delete(&id)
            .map(|()| Response::DeleteSession(DeleteSessionResponse { session_id: id }));
        self.answer(token, answer).await;
    }

    pub(super) async fn set_permission_mode(&mut self, token: Token, mode: Mode) {
        let answer = self
            .set_mode(mode)
            .map(|()| Response::SetPermissionMode(SetPermissionModeResponse { mode }))
            .code(ErrorCode::Internal);
        self.answer(token, answer).await;
    }

    pub(super) async fn set_thinking_level(&mut self, token: Token, level: ThinkingLevel) {
        let answer = self
            .set_thinking(level)
            .map(|()| Response::SetThinkingLevel(SetThinkingLevelResponse { level }))
            .code(ErrorCode::Internal);
        self.answer(token, answer).await;
    }

    pub(super) async fn permission_response(
        &mut self,
        token: Token,
        params: PermissionResponseParams,
    ) {
        let answer = Answer {
            decision: params.decision,
            message: params.message,
        };
        if self.gate.answer(&params.request_id, answer) {
            return self.respond(token, Response::Empty(Empty {})).await;
        }
        let unknown = Coded::new(
            ErrorCode::NotFound,
            format!(
                "no open permission request {:?} (it was answered, cancelled by an abort, or never existed)",
                params.request_id
            ),
        );
        self.reject(token, unknown).await;
    }
}
