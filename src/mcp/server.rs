//! One MCP server of a manager: its spec, state and connection; started
//! (within its startup timeout), its tool list refreshed, restarted when a
//! call finds it dead (at most [`MAX_RESTARTS`] a minute), and one
//! `tools/call`. Its tools ([`McpTool`]) reach it through the
//! [`Remote`] trait, so `tool.rs` does not import this file.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotification, CancelledNotificationParam,
    ClientRequest, ServerResult,
};
use rmcp::service::PeerRequestOptions;
use serde_json::Value;
use tokio::sync::{mpsc, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::client::{self, Conn, Handler};
use super::config::ServerSpec;
use super::tool::{self, McpTool, Remote};
use crate::protocol::{McpServerState, McpServerStatusFrame, McpStatus};
use crate::tools::{BoxFuture, Tool, ToolOutput, ToolUpdate};

/// Restarts allowed within [`RESTART_WINDOW`] before a server is given up.
pub(super) const MAX_RESTARTS: usize = 3;
const RESTART_WINDOW: Duration = Duration::from_secs(60);
/// Progress lines buffered per call before further ones are dropped.
const PROGRESS_CAPACITY: usize = 64;

/// What the manager is given besides the specs.
pub(crate) struct Options {
    /// The working directory of stdio servers that name none.
    pub cwd: PathBuf,
    /// Variables stdio servers must not inherit (provider keys, `*_API_KEY`).
    pub env_remove: Arc<Vec<String>>,
    /// The session's sandbox, for servers configured with `sandbox = true`.
    pub sandbox: Option<Arc<crate::sandbox::SessionSandbox>>,
    /// Where status changes go.
    pub events: mpsc::UnboundedSender<McpServerStatusFrame>,
}

/// What every server task reports to.
pub(super) struct Shared {
    pub(super) opts: Options,
    /// Bumped whenever a tool list that is offered changes.
    pub(super) version: AtomicU64,
    /// Servers whose first start has not finished yet.
    pub(super) starting: watch::Sender<usize>,
    /// The manager's stop: a (re)start in flight gives up and stores
    /// nothing once it fires.
    pub(super) stop: CancellationToken,
}

/// One server: its spec, its state and its connection.
pub(super) struct Server {
    spec: ServerSpec,
    state: Mutex<State>,
    handler: Handler,
    stderr: Arc<Mutex<String>>,
    /// Connects and restarts one at a time.
    connecting: tokio::sync::Mutex<()>,
    /// The manager's shared state, not kept alive by the tools.
    shared: std::sync::Weak<Shared>,
}

struct State {
    status: McpStatus,
    tools: Arc<Vec<Arc<dyn Tool>>>,
    error: Option<String>,
    conn: Option<Arc<Conn>>,
    restarts: VecDeque<Instant>,
    /// Restarted too often: its tools are no longer offered.
    given_up: bool,
}

/// What the model is told about each tool: what a change of the
/// list is measured by.
fn definitions(tools: &[Arc<dyn Tool>]) -> Vec<Value> {
    tools.iter().map(|t| t.definition()).collect()
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Server {
    pub(super) fn new(spec: ServerSpec, shared: &Arc<Shared>) -> Arc<Server> {
        Arc::new(Server {
            spec,
            state: Mutex::new(State {
                status: McpStatus::Starting,
                tools: Arc::new(Vec::new()),
                error: None,
                conn: None,
                restarts: VecDeque::new(),
                given_up: false,
            }),
            handler: Handler {
                progress: Default::default(),
                list_changed: Arc::new(Notify::new()),
            },
            stderr: Default::default(),
            connecting: tokio::sync::Mutex::new(()),
            shared: Arc::downgrade(shared),
        })
    }

    pub(super) fn name(&self) -> &str {
        &self.spec.name
    }

    /// The server as `get_state` shows it.
    pub(super) fn state(&self) -> McpServerState {
        let st = lock(&self.state);
        McpServerState {
            name: self.spec.name.clone(),
            status: st.status,
            tools: st.tools.iter().map(|t| t.name().to_owned()).collect(),
            error: st.error.clone(),
        }
    }

    /// Its tools, unless it was given up (restarted too often).
    pub(super) fn offered_tools(&self) -> Option<Arc<Vec<Arc<dyn Tool>>>> {
        let st = lock(&self.state);
        (!st.given_up).then(|| st.tools.clone())
    }

    /// Drops the connection, which kills a stdio server's process group.
    pub(super) fn disconnect(&self) {
        lock(&self.state).conn = None;
    }

    /// The first start, then tool list refreshes until the manager stops.
    pub(super) async fn run(self: Arc<Self>, shared: Arc<Shared>) {
        // Announced as documented: `starting`, then `ready` or `failed`.
        self.report(&shared);
        let started = self.connect(&shared).await;
        shared.starting.send_modify(|n| *n = n.saturating_sub(1));
        if let Err(e) = started {
            self.fail(&shared, e, false);
        }
        loop {
            self.handler.list_changed.notified().await;
            let conn = lock(&self.state).conn.clone();
            let Some(conn) = conn else { continue };
            match self.list_tools(&conn).await {
                Ok(tools) => {
                    // A server may say its list changed when it has not
                    // (server-everything does, right after starting): the
                    // offer and the client hear only of a real change.
                    let changed = {
                        let mut st = lock(&self.state);
                        let same = definitions(&st.tools) == definitions(&tools);
                        st.tools = Arc::new(tools);
                        !same
                    };
                    if changed {
                        shared.version.fetch_add(1, Ordering::AcqRel);
                        self.report(&shared);
                    }
                }
                Err(e) => tracing::warn!("MCP server {}: refreshing tools: {e:#}", self.name()),
            }
        }
    }

    /// Connects, lists the tools and becomes ready, within the startup
    /// timeout.
    async fn connect(self: &Arc<Self>, shared: &Shared) -> Result<Arc<Conn>> {
        let timeout = self.spec.startup_timeout;
        let env = client::Env {
            cwd: &shared.opts.cwd,
            env_remove: &shared.opts.env_remove,
            sandbox: shared
                .opts
                .sandbox
                .clone()
                .filter(|_| self.spec.sandbox)
                .map(|s| s as Arc<dyn crate::process::Sandbox>),
        };
        lock(&self.stderr).clear();
        let attempt = async {
            let conn = client::connect(&self.spec, &env, self.handler.clone(), self.stderr.clone())
                .await?;
            let tools = self.list_tools(&conn).await?;
            anyhow::Ok((Arc::new(conn), tools))
        };
        // A restart runs in a task of its own (`live`): the stop must end
        // it too, and dropping the attempt kills the process group.
        let attempt = tokio::select! {
            _ = shared.stop.cancelled() => bail!("the host is stopping"),
            outcome = tokio::time::timeout(timeout, attempt) => outcome,
        };
        let (conn, tools) = match attempt {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => return Err(self.with_stderr(e)),
            Err(_) => {
                return Err(self.with_stderr(anyhow!(
                    "did not start within {} s (startup timeout)",
                    timeout.as_secs()
                )))
            }
        };
        {
            let mut st = lock(&self.state);
            // `shutdown` cancels, then clears `conn` under this lock: a
            // connection finished after that is dropped here, not stored.
            if shared.stop.is_cancelled() {
                bail!("the host is stopping");
            }
            st.status = McpStatus::Ready;
            st.error = None;
            st.tools = Arc::new(tools);
            st.conn = Some(conn.clone());
        }
        shared.version.fetch_add(1, Ordering::AcqRel);
        tracing::info!("MCP server {} is ready", self.name());
        self.report(shared);
        tokio::spawn(watch_exit(Arc::downgrade(self), Arc::downgrade(&conn)));
        Ok(conn)
    }

    /// The connection ended on its own (the server exited between calls):
    /// `failed`, announced now, so a client is not shown `ready` for a dead
    /// server and the next call restarts it rather than failing on it.
    fn exited(&self, conn: &Arc<Conn>) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        if shared.stop.is_cancelled() {
            return;
        }
        {
            let st = lock(&self.state);
            // Already replaced, or already failed by the call it broke.
            if !st.conn.as_ref().is_some_and(|c| Arc::ptr_eq(c, conn)) {
                return;
            }
        }
        let why = self.with_stderr(anyhow!("the server exited"));
        self.fail(&shared, why, false);
    }

    async fn list_tools(self: &Arc<Self>, conn: &Conn) -> Result<Vec<Arc<dyn Tool>>> {
        let listed = conn
            .peer()
            .list_all_tools()
            .await
            .map_err(|e| anyhow!("tools/list failed: {e}"))?;
        let mut tools: Vec<Arc<dyn Tool>> = Vec::with_capacity(listed.len());
        for info in listed {
            let tool = McpTool::new(self.clone(), info);
            // Two server names that differ only in characters `sanitise`
            // replaces would give the model two tools of one name, which
            // providers refuse: the first one wins.
            if tools.iter().any(|t| t.name() == tool.name()) {
                tracing::warn!(
                    "MCP server {}: a second tool named {} is not offered",
                    self.name(),
                    tool.name()
                );
                continue;
            }
            tools.push(Arc::new(tool));
        }
        Ok(tools)
    }

    /// Adds the stderr tail of a stdio server, which usually says why.
    fn with_stderr(&self, e: anyhow::Error) -> anyhow::Error {
        let tail = lock(&self.stderr).trim().to_owned();
        if tail.is_empty() {
            e
        } else {
            anyhow!("{e:#}; stderr: {tail}")
        }
    }

    fn fail(&self, shared: &Shared, e: anyhow::Error, given_up: bool) {
        let message = format!("{e:#}");
        tracing::warn!("MCP server {}: {message}", self.name());
        {
            let mut st = lock(&self.state);
            st.status = McpStatus::Failed;
            st.error = Some(message);
            st.conn = None;
            if given_up {
                st.given_up = true;
            }
        }
        if given_up {
            shared.version.fetch_add(1, Ordering::AcqRel);
        }
        self.report(shared);
    }

    fn report(&self, shared: &Shared) {
        let frame = {
            let st = lock(&self.state);
            McpServerStatusFrame {
                name: self.spec.name.clone(),
                status: st.status,
                tools: (st.status == McpStatus::Ready)
                    .then(|| st.tools.iter().map(|t| t.name().to_owned()).collect()),
                error: st.error.clone(),
            }
        };
        let _ = shared.opts.events.send(frame);
    }

    /// The live connection, restarting the server if it died (at most
    /// [`MAX_RESTARTS`] times a minute).
    async fn live(self: &Arc<Self>, shared: &Arc<Shared>) -> Result<Arc<Conn>> {
        // In a task of its own: an abort that drops the call must not leave
        // a restart half done (the server `starting` for ever).
        let (server, shared) = (self.clone(), shared.clone());
        tokio::spawn(async move { server.live_now(&shared).await })
            .await
            .map_err(|e| anyhow!("restarting the MCP server failed: {e}"))?
    }

    async fn live_now(self: &Arc<Self>, shared: &Shared) -> Result<Arc<Conn>> {
        let _one_at_a_time = self.connecting.lock().await;
        {
            let mut st = lock(&self.state);
            if let Some(conn) = st.conn.as_ref().filter(|c| !c.is_closed()) {
                return Ok(conn.clone());
            }
            if st.given_up {
                bail!(
                    "MCP server {} is not running: {}",
                    self.name(),
                    st.error.as_deref().unwrap_or("it failed")
                );
            }
            let now = Instant::now();
            while st
                .restarts
                .front()
                .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
            {
                st.restarts.pop_front();
            }
            if st.restarts.len() >= MAX_RESTARTS {
                drop(st);
                let e =
                    anyhow!("restarted {MAX_RESTARTS} times within a minute; not restarted again");
                self.fail(shared, e, true);
                bail!("MCP server {} failed: restarted too often", self.name());
            }
            st.restarts.push_back(now);
            st.status = McpStatus::Starting;
            st.conn = None;
        }
        self.report(shared);
        match self.connect(shared).await {
            Ok(conn) => Ok(conn),
            Err(e) => {
                let message = format!("{e:#}");
                self.fail(shared, e, false);
                bail!(
                    "MCP server {} could not be restarted: {message}",
                    self.name()
                )
            }
        }
    }

    /// One `tools/call`, with the spec's timeout; `cancel` (abort) and the
    /// timeout drop the request, which the SDK turns into
    /// `notifications/cancelled`.
    async fn call_tool(
        self: &Arc<Self>,
        tool: &str,
        arguments: serde_json::Map<String, Value>,
        updates: &mpsc::Sender<ToolUpdate>,
        cancel: &CancellationToken,
    ) -> ToolOutput {
        let Some(shared) = self.shared.upgrade() else {
            return ToolOutput::error("the MCP servers were shut down");
        };
        let conn = tokio::select! {
            _ = cancel.cancelled() => return ToolOutput::error("aborted"),
            c = self.live(&shared) => match c {
                Ok(c) => c,
                Err(e) => return ToolOutput::failed(&e),
            },
        };
        let peer = conn.peer();
        let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        // The SDK gives the request its progress token; progress for it is
        // routed to this call's updates until it ends.
        let handle = match peer
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await
        {
            Ok(h) => h,
            Err(e) => return self.call_failed(&shared, &conn, e),
        };
        let token = client::token_key(&handle.progress_token.0);
        let request_id = handle.id.clone();
        let (tx, mut rx) = mpsc::channel(PROGRESS_CAPACITY);
        lock(&self.handler.progress).insert(token.clone(), tx);
        let response = tokio::time::timeout(self.spec.tool_timeout, handle.await_response());
        tokio::pin!(response);
        let outcome = loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break None,
                r = &mut response => break Some(r),
                Some(line) = rx.recv() => { let _ = updates.try_send(ToolUpdate::Output(line)); }
            }
        };
        lock(&self.handler.progress).remove(&token);
        let cancelled = |reason: &str| {
            let note = CancelledNotification::new(CancelledNotificationParam::new(
                Some(request_id.clone()),
                Some(reason.to_owned()),
            ));
            let peer = peer.clone();
            // Sent from a task: the turn must not wait on a slow server.
            tokio::spawn(async move {
                let _ = peer.send_notification(note.into()).await;
            });
        };
        match outcome {
            None => {
                cancelled("aborted by the user");
                ToolOutput::error("aborted")
            }
            Some(Err(_)) => {
                cancelled("timed out");
                ToolOutput::error(format!(
                    "the MCP tool call timed out after {} s and was cancelled",
                    self.spec.tool_timeout.as_secs()
                ))
            }
            Some(Ok(Ok(ServerResult::CallToolResult(result)))) => tool::output(result),
            Some(Ok(Ok(_))) => ToolOutput::error(format!(
                "MCP server {} answered tools/call with something other than a tool result",
                self.name()
            )),
            Some(Ok(Err(e))) => self.call_failed(&shared, &conn, e),
        }
    }

    /// A call's error: the server's own, or the connection's. A dead
    /// connection marks the server failed; the next call restarts it.
    fn call_failed(&self, shared: &Shared, conn: &Conn, e: rmcp::ServiceError) -> ToolOutput {
        let dead = conn.is_closed()
            || matches!(
                e,
                rmcp::ServiceError::TransportClosed | rmcp::ServiceError::TransportSend(_)
            );
        if !dead {
            return ToolOutput::error(format!("MCP server {}: {e}", self.name()));
        }
        // The exit watcher may have failed the server already: once is
        // enough for the client.
        let current = lock(&self.state)
            .conn
            .as_ref()
            .is_some_and(|c| std::ptr::eq(c.as_ref(), conn));
        if current {
            let why = self.with_stderr(anyhow!("the server stopped during the call: {e}"));
            self.fail(shared, why, false);
        }
        let message = lock(&self.state)
            .error
            .clone()
            .unwrap_or_else(|| format!("the server stopped during the call: {e}"));
        ToolOutput::error(format!("MCP server {}: {message}", self.name()))
    }
}

/// How often a connection is checked for having ended. rmcp offers no
/// future for that short of consuming the service, which the calls share.
const EXIT_POLL: Duration = Duration::from_millis(200);

/// Watches one connection until it ends or is dropped (replaced, the
/// server failed or stopped), and reports an end nobody asked for.
async fn watch_exit(server: std::sync::Weak<Server>, conn: std::sync::Weak<Conn>) {
    loop {
        tokio::time::sleep(EXIT_POLL).await;
        let Some(live) = conn.upgrade() else { return };
        if !live.is_closed() {
            continue;
        }
        if let Some(server) = server.upgrade() {
            server.exited(&live);
        }
        return;
    }
}

impl Remote for Server {
    fn name(&self) -> &str {
        &self.spec.name
    }

    fn call<'a>(
        self: Arc<Self>,
        tool: &'a str,
        arguments: serde_json::Map<String, Value>,
        updates: &'a mpsc::Sender<ToolUpdate>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move { self.call_tool(tool, arguments, updates, cancel).await })
    }
}
