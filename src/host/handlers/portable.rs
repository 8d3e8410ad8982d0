//! `export_session` and `import_session`: a stored session as one export
//! stream, and such a stream stored (the format: `session::portable`).

use crate::error::Coded;
use crate::host::pending::Token;
use crate::host::{Deferred, Host};
use crate::protocol::{
    ErrorCode, ExportSessionResponse, ImportSessionParams, ImportSessionResponse, Response,
};
use crate::session::ImportOptions;

impl Host {
    /// Exports from a task: a long session's file must not hold up the
    /// loop. The session in use exports too, as a snapshot of its complete
    /// entries (the store reads without the lock).
    pub(super) fn export_session(&mut self, token: Token, id: String) {
        let in_use = id == self.session.header.id;
        let (token, tx) = self.defer(token);
        let store = self.store.clone();
        tokio::spawn(async move {
            let read = tokio::task::spawn_blocking(move || (store.export(&id), id)).await;
            let answer = match read {
                Ok((Ok(stream), session_id)) => match String::from_utf8(stream) {
                    Ok(data) => Ok(Response::ExportSession(ExportSessionResponse {
                        session_id,
                        data,
                    })),
                    Err(e) => Err(Coded::new(ErrorCode::Internal, format!("{e}"))),
                },
                Ok((Err(e), _)) if in_use && e.code == ErrorCode::NotFound => Err(Coded::new(
                    ErrorCode::NotFound,
                    "the session in use has nothing stored yet (its file appears with its first prompt)",
                )),
                Ok((Err(e), _)) => Err(e),
                Err(e) => Err(Coded::new(ErrorCode::Internal, e.to_string())),
            };
            let _ = tx.send(Deferred::Answer { token, answer });
        });
    }

    /// Stores an export stream. On the loop, not in a task: the stream is
    /// at most one command line, and nothing else (a `switch_session` to
    /// the same id) can run between the in-use check and the write.
    pub(super) async fn import_session(&mut self, token: Token, params: ImportSessionParams) {
        let options = ImportOptions {
            new_id: params.new_id,
            replace: params.replace,
        };
        let in_use = Some(self.session.header.id.as_str());
        let answer = self
            .store
            .import(params.data.as_bytes(), options, in_use)
            .map(|session_id| Response::ImportSession(ImportSessionResponse { session_id }));
        self.answer(token, answer).await;
    }
}
