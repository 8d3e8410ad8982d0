//! The MCP servers of one host (or one ACP session): each started in the
//! background (`server.rs` starts, refreshes and restarts one) and their
//! status. The manager is one of the session's tool sources
//! (`tools::ToolSource`): it hands out the ready servers' tools, and its
//! version changes whenever any server's list does.
//!
//! The manager is built from a `Vec<ServerSpec>` value and reports status
//! changes on a channel, so whichever front end owns it decides where they
//! go (the native host writes `mcp_server_status` frames).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::ServerSpec;
use super::server::{Options, Server, Shared};
use crate::protocol::McpServerState;
use crate::tools::{BoxFuture, Tool, ToolSource};

pub(crate) struct Manager {
    servers: Vec<Arc<Server>>,
    /// Holds the stop token (`shared.stop`) that ends every server task
    /// when the manager goes.
    shared: Arc<Shared>,
}

impl Manager {
    /// Starts every server in the background and returns at once.
    pub(crate) fn start(specs: Vec<ServerSpec>, opts: Options) -> Arc<Manager> {
        let (starting, _) = watch::channel(specs.len());
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            opts,
            version: AtomicU64::new(0),
            starting,
            stop,
        });
        let servers: Vec<Arc<Server>> = specs
            .into_iter()
            .map(|spec| Server::new(spec, &shared))
            .collect();
        for server in &servers {
            let (server, shared) = (server.clone(), shared.clone());
            let stop = shared.stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = server.clone().run(shared) => {}
                }
                // The connection goes with the manager.
                server.disconnect();
            });
        }
        Arc::new(Manager { servers, shared })
    }

    /// Every server as `get_state` shows it.
    pub(crate) fn states(&self) -> Vec<McpServerState> {
        self.servers.iter().map(|s| s.state()).collect()
    }

    /// Stops every server (their processes are killed).
    pub(crate) fn shutdown(&self) {
        self.shared.stop.cancel();
        for s in &self.servers {
            s.disconnect();
        }
    }
}

/// The servers as one source of the session's tools: every ready server's
/// tools, in the order of the specs.
impl ToolSource for Manager {
    fn name(&self) -> &str {
        "MCP servers"
    }

    /// Servers still on their first start are waited for (each bounded by
    /// its startup timeout), so the first round sees their tools.
    fn ready<'a>(&'a self, cancel: &'a CancellationToken) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut starting = self.shared.starting.subscribe();
            tokio::select! {
                _ = cancel.cancelled() => {}
                _ = starting.wait_for(|n| *n == 0) => {}
            }
        })
    }

    fn version(&self) -> u64 {
        self.shared.version.load(Ordering::Acquire)
    }

    /// Names are unique within a server (`list_tools`) and carry its name.
    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        let mut all = Vec::new();
        for server in &self.servers {
            if let Some(tools) = server.offered_tools() {
                all.extend(tools.iter().cloned());
            }
        }
        all
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.shutdown();
    }
}
