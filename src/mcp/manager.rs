//! The MCP servers of one host (or one ACP session): each started in the
//! background (`server.rs` starts, refreshes and restarts one), their
//! status, and the table of tools the turns use, rebuilt when any server's
//! list changes.
//!
//! The manager is built from a `Vec<ServerSpec>` value and reports status
//! changes on a channel, so whichever front end owns it decides where they
//! go (the native host writes `mcp_server_status` frames).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::ServerSpec;
use super::server::{lock, Options, Server, Shared};
use crate::protocol::McpServerState;
use crate::protocol::Mode;
use crate::tools::{Offer, Toolset};

pub struct Manager {
    servers: Vec<Arc<Server>>,
    shared: Arc<Shared>,
    /// The offers for the current tool lists, rebuilt when they change.
    offers: Mutex<Option<Offers>>,
    /// Stops every server task when the manager goes.
    stop: CancellationToken,
}

/// The offers built for one version of the tool lists.
struct Offers {
    version: u64,
    all: Arc<Offer>,
    read_only: Arc<Offer>,
}

impl Manager {
    /// Starts every server in the background and returns at once.
    pub fn start(specs: Vec<ServerSpec>, opts: Options) -> Arc<Manager> {
        let (starting, _) = watch::channel(specs.len());
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            opts,
            version: AtomicU64::new(0),
            starting,
            stop: stop.clone(),
        });
        let servers: Vec<Arc<Server>> = specs
            .into_iter()
            .map(|spec| Server::new(spec, &shared))
            .collect();
        for server in &servers {
            let (server, shared, stop) = (server.clone(), shared.clone(), stop.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = server.clone().run(shared) => {}
                }
                // The connection goes with the manager.
                server.disconnect();
            });
        }
        Arc::new(Manager {
            servers,
            shared,
            offers: Mutex::new(None),
            stop,
        })
    }

    /// Every server as `get_state` shows it.
    pub fn states(&self) -> Vec<McpServerState> {
        self.servers.iter().map(|s| s.state()).collect()
    }

    /// The tools a round offers in `mode`: the built-in ones and every
    /// ready server's. Waits first for servers still on their first start
    /// (each bounded by its startup timeout), or until `cancel`.
    pub async fn offer(&self, mode: Mode, cancel: &CancellationToken) -> Arc<Offer> {
        let mut starting = self.shared.starting.subscribe();
        tokio::select! {
            _ = cancel.cancelled() => {}
            _ = starting.wait_for(|n| *n == 0) => {}
        }
        let version = self.shared.version.load(Ordering::Acquire);
        let mut offers = lock(&self.offers);
        let current = match offers.as_ref() {
            Some(o) if o.version == version => o,
            _ => {
                let tools = self.table();
                offers.insert(Offers {
                    version,
                    all: Arc::new(Offer::new(tools.clone(), Mode::Ask)),
                    read_only: Arc::new(Offer::new(tools, Mode::ReadOnly)),
                })
            }
        };
        match mode {
            Mode::ReadOnly => current.read_only.clone(),
            _ => current.all.clone(),
        }
    }

    /// The built-in table plus every offered server tool. Names are unique
    /// within a server (`list_tools`) and carry its name, so a clash is left
    /// only between two long names cut to the same hash; the later tool is
    /// dropped.
    fn table(&self) -> Toolset {
        let mut set = Toolset::builtin().clone();
        for server in &self.servers {
            let Some(tools) = server.offered_tools() else {
                continue;
            };
            for t in tools.iter() {
                match set.with([t.clone()]) {
                    Ok(s) => set = s,
                    Err(e) => tracing::warn!("MCP server {}: {e:#}", server.name()),
                }
            }
        }
        set
    }

    /// Stops every server (their processes are killed).
    pub fn shutdown(&self) {
        self.stop.cancel();
        for s in &self.servers {
            s.disconnect();
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        self.shutdown();
    }
}
