//! SIGTERM and SIGINT as one stream the dispatch loop selects over.

/// Created before `ready` is written, so a signal at any moment after it
/// acts like `shutdown`. If a handler cannot be installed the default
/// disposition (exit) stays.
pub(crate) struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    #[allow(clippy::new_without_default)]
    pub(crate) fn new() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate())
            .map_err(|e| tracing::warn!("cannot handle SIGTERM: {e}"))
            .ok();
        let int = signal(SignalKind::interrupt())
            .map_err(|e| tracing::warn!("cannot handle SIGINT: {e}"))
            .ok();
        Signals { term, int }
    }

    /// A stream that never fires: for hosts run inside another loop that
    /// handles signals once for all of them (ACP mode).
    pub(crate) fn none() -> Self {
        Signals {
            term: None,
            int: None,
        }
    }

    /// The next SIGTERM or SIGINT.
    pub(crate) async fn next(&mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    if s.recv().await.is_none() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => {}
            _ = recv(&mut self.int) => {}
        }
    }
}
