//! Opening an ACP session: its host, the sink the host writes to, the
//! editor's files and terminal as its tools' backends where the client
//! offers them, and the [`AcpSession`] the connection's handlers use,
//! wired together once.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::client_fs::ClientFs;
use super::rpc::Connection;
use super::sessions::{AcpSession, Models};
use super::sink::AcpSink;
use super::terminal::ClientTerminals;
use crate::host::{self, Host, Parts, Signals};
use crate::sink::Sink;
use crate::tools::Backends;

/// Starts the host of a session and returns the session, usable at once
/// (the host reads its first command when the caller yields).
pub(super) fn start(mut parts: Parts, cx: Connection, models: Models) -> Arc<AcpSession> {
    let (handle, submissions) = host::channel();
    let id = parts.session.header.id.clone();
    use_the_editor(&mut parts.backends, &cx, &id);
    let cwd = parts.settings.cwd.clone();
    let title = parts
        .session
        .title()
        .as_deref()
        .and_then(super::info::title);
    // The sink reaches its session through a weak pointer: the session
    // owns the host's handle, the host owns the sink, and neither keeps
    // the other alive.
    let mut host = None;
    let session = Arc::new_cyclic(|weak| {
        let sink = Sink::new(AcpSink::new(weak.clone(), cwd.clone()));
        let (built, channels) = Host::new(parts, sink);
        let settings = built.settings();
        host = Some((built, channels));
        AcpSession::new(id, cwd, title, handle, settings, models, cx)
    });
    if let Some((host, channels)) = host {
        // Stdout and signals belong to the ACP connection, handled once for
        // every session: this host's "stdout closed" notice resolves empty
        // (its sender is dropped), which the host ignores, and it gets no
        // signals.
        let (_never, stdout_closed) = oneshot::channel();
        let running = tokio::spawn(host.run(submissions, channels, stdout_closed, Signals::none()));
        session.set_running(running);
    }
    session
}

/// The client's file system and terminal in place of the local ones, for
/// what its `initialize` advertised (`client_fs.rs`, `terminal.rs`).
fn use_the_editor(backends: &mut Backends, cx: &Connection, session_id: &str) {
    if let Some(fs) = ClientFs::new(cx.clone(), session_id.to_owned()) {
        backends.fs = Arc::new(fs);
    }
    if let Some(terminals) = ClientTerminals::new(cx.clone(), session_id.to_owned()) {
        backends.processes = Arc::new(terminals);
    }
}
