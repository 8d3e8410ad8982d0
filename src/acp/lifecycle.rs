//! `session/close` and `session/fork` (`session/resume` is
//! `session/load` without the replay, in `mod.rs`).
//!
//! Closing stops the session's host: its running prompt is aborted (and
//! answered `cancelled`), its MCP servers are stopped and its file, with
//! the lock, is closed, so another process can open it at once. Forking
//! copies the stored history into a new session (the store's `fork`, as
//! the native `fork` does) and opens the copy beside the original.

use serde_json::{json, Value};

use super::rpc::{RpcError, RpcResult};
use super::{host_error, mcp, options, session_dir, start, string, Acp};
use crate::error::Coded;
use crate::factory::Opening;
use crate::protocol::ErrorCode;
use crate::session::{self, Session};

impl Acp {
    /// Answered once the host has stopped (or did not within its grace).
    pub(super) async fn close_session(&self, params: &Value) -> RpcResult {
        let id = string(params, "sessionId")?;
        // Out of the connection first: requests naming it fail from now on.
        let session = self.sessions.remove(id).ok_or_else(|| {
            RpcError::invalid_params(format!("no open session {id} on this connection"))
        })?;
        session.shutdown().await;
        Ok(json!({}))
    }

    /// A new session holding the history of `sessionId` (open on this
    /// connection or only stored), answered like `session/new`.
    pub(super) async fn fork_session(&self, params: &Value) -> RpcResult {
        let source_id = string(params, "sessionId")?;
        session::validate_id(source_id).map_err(|e| host_error(&e))?;
        let cwd = session_dir(string(params, "cwd")?)?;
        let mcp = mcp::convert(params.get("mcpServers"), &cwd)?;
        let source = self.stored(source_id)?;
        let store = self.factory.store();
        let forked = store
            .fork(&source, source.messages.len())
            .map_err(|e| RpcError::internal(format!("{e:#}")))?;
        // Opened as it is, still locked: no other process can take it
        // between the fork and its host.
        let opening = Opening::Opened(Box::new(forked));
        let parts = self
            .factory
            .session(&self.cli, cwd, true, opening, mcp)
            .map_err(|e| host_error(&e))?;
        let session = start::start(parts, self.cx.clone(), self.models.clone());
        self.sessions.insert(session.clone());
        Ok(json!({
            "sessionId": session.id,
            "modes": options::modes(session.settings().mode),
            "configOptions": session.config_options_for_answer(),
        }))
    }

    /// Session `id` as stored now, read without its lock (a session open
    /// here or in another process is locked by its host). An open session
    /// that has written nothing yet is its settings and no history.
    fn stored(&self, id: &str) -> Result<Session, RpcError> {
        let path = self.factory.store().path_of(id);
        match std::fs::read(&path) {
            Ok(bytes) => session::parse(&bytes)
                .map(|(session, _)| session)
                .map_err(|e| RpcError::internal(format!("session file {}: {e:#}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let Some(open) = self.sessions.get(id) else {
                    return Err(host_error(&Coded::new(
                        ErrorCode::NotFound,
                        format!("no session {id:?} to fork"),
                    )));
                };
                let settings = open.settings();
                let mut session = Session::new(id.to_owned(), open.cwd.clone(), settings.model);
                session.permission_mode = Some(settings.mode);
                session.thinking_level = settings.thinking;
                Ok(session)
            }
            Err(e) => Err(RpcError::internal(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }
}
