//! One connection to one MCP server, through the official SDK (`rmcp`):
//! the child process or the HTTP endpoint, the initialize handshake, and
//! the client side's handler, which routes progress notifications to the
//! call that asked for them and reports `tools/list_changed`.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use rmcp::model::{
    ClientCapabilities, ClientConfig, Implementation, NumberOrString, ProgressNotificationParam,
};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, Peer, ServiceExt};
use tokio::io::AsyncReadExt;
use tokio::process::ChildStderr;
use tokio::sync::{mpsc, Notify};

use super::config::{ServerSpec, Transport};
use crate::process::ChildBuilder;

/// Bytes of a stdio server's stderr kept to explain its failures.
const STDERR_TAIL: usize = 2048;

/// Progress senders by progress token, shared by the handler (which gets
/// the notifications) and the calls (which register for them).
pub(super) type ProgressRoutes = Arc<Mutex<HashMap<String, mpsc::Sender<String>>>>;

/// The client side of the session: what the server tells us unasked.
#[derive(Clone)]
pub(super) struct Handler {
    pub progress: ProgressRoutes,
    /// Woken on `notifications/tools/list_changed`.
    pub list_changed: Arc<Notify>,
}

pub(super) fn token_key(token: &NumberOrString) -> String {
    match token {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.to_string(),
    }
}

impl ClientHandler for Handler {
    fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        let key = token_key(&params.progress_token.0);
        let line = match (params.message, params.total) {
            (Some(m), _) => m,
            (None, Some(total)) => format!("progress {}/{total}", params.progress),
            (None, None) => format!("progress {}", params.progress),
        };
        let routes = self.progress.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = routes.get(&key) {
            // A full channel drops a progress line rather than stall the
            // connection's reader.
            let _ = tx.try_send(line);
        }
        std::future::ready(())
    }

    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl std::future::Future<Output = ()> + Send + '_ {
        self.list_changed.notify_one();
        std::future::ready(())
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("agent-rpc", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// A live session with a server. Dropping it closes the session and kills
/// a stdio server's whole process group.
pub(super) struct Conn {
    service: RunningService<RoleClient, Handler>,
    /// The stdio server's process group, killed on drop.
    _group: Group,
}

/// Kills a stdio server's process group when dropped, from the moment it
/// is spawned: a handshake cut short (startup timeout, the host stopping)
/// must not leave a grandchild (`npx` → `node`) running. rmcp kills only
/// the direct child.
struct Group(Option<u32>);

impl Drop for Group {
    fn drop(&mut self) {
        crate::process::kill_group(self.0);
    }
}

impl Conn {
    pub(super) fn peer(&self) -> Peer<RoleClient> {
        self.service.peer().clone()
    }

    /// The session ended (the server exited or the connection broke).
    /// rmcp's own `is_closed` only says it was cancelled: a server that
    /// exits ends the service loop, which closes the peer's channel.
    pub(super) fn is_closed(&self) -> bool {
        self.service.is_closed() || self.service.peer().is_transport_closed()
    }
}

/// What a connection attempt needs besides the spec.
pub(super) struct Env<'a> {
    /// The host's working directory: a stdio server's unless it names one.
    pub cwd: &'a Path,
    /// Variables a server must not inherit (provider keys, `*_API_KEY`).
    pub env_remove: &'a [String],
    /// The sandbox a stdio server runs in, when its spec asks for one.
    pub sandbox: Option<Arc<dyn crate::process::Sandbox>>,
}

/// Starts the server and completes the initialize handshake. `stderr`
/// receives a stdio server's stderr tail, for error messages.
pub(super) async fn connect(
    spec: &ServerSpec,
    env: &Env<'_>,
    handler: Handler,
    stderr: Arc<Mutex<String>>,
) -> Result<Conn> {
    match &spec.transport {
        Transport::Stdio {
            command,
            args,
            env: extra,
            cwd,
        } => {
            // rmcp sets up stdin and stdout itself.
            let cmd = ChildBuilder::new(command)
                .args(args)
                .current_dir(cwd.as_deref().unwrap_or(env.cwd))
                .own_group()
                .env_remove(env.env_remove)
                .envs(extra)
                .sandbox(env.sandbox.clone())
                .into_command()
                .map_err(|e| anyhow!("cannot start `{command}`: {e}"))?;
            let (transport, child_stderr) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| anyhow!("cannot start `{command}`: {e}"))?;
            let group = Group(transport.id());
            if let Some(pipe) = child_stderr {
                tokio::spawn(keep_tail(pipe, stderr));
            }
            let service = handler
                .serve(transport)
                .await
                .map_err(|e| anyhow!("`{command}` did not complete the MCP handshake: {e}"))?;
            Ok(Conn {
                service,
                _group: group,
            })
        }
        Transport::Http { url, headers } => connect_http(url, headers, handler).await,
    }
}

/// Keeps the last [`STDERR_TAIL`] bytes a stdio server writes to stderr.
async fn keep_tail(mut pipe: ChildStderr, stderr: Arc<Mutex<String>>) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut tail = stderr.lock().unwrap_or_else(|p| p.into_inner());
        tail.push_str(&String::from_utf8_lossy(&buf[..n]));
        if tail.len() > STDERR_TAIL {
            let mut cut = tail.len() - STDERR_TAIL;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
    }
}

/// A streamable-HTTP server at `url`, sent `headers` with every request.
async fn connect_http(
    url: &str,
    headers: &std::collections::BTreeMap<String, String>,
    handler: Handler,
) -> Result<Conn> {
    crate::tls::use_ring();
    let mut custom = HashMap::new();
    for (name, value) in headers {
        // Checked by `ServerSpec::validate`; the value stays out of
        // every message.
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .with_context(|| format!("header {name:?}"))?;
        let value = reqwest::header::HeaderValue::from_str(value)
            .map_err(|_| anyhow!("header {name}: invalid value"))?;
        custom.insert(name, value);
    }
    let config = StreamableHttpClientTransportConfig::with_uri(url).custom_headers(custom);
    let client = super::http::Client::new().context("cannot set up the HTTP client")?;
    let transport = StreamableHttpClientTransport::with_client(client.clone(), config);
    let service = handler.serve(transport).await.map_err(|e| {
        // The URL as written may carry tokens: messages show it redacted.
        let shown = crate::error::redact_url(url);
        match client.take_failure() {
            Some(failure) => anyhow!("{shown}: {failure}"),
            None => anyhow!("{shown}: {}", sdk_error(&e, url, &shown)),
        }
    })?;
    Ok(Conn {
        service,
        _group: Group(None),
    })
}

/// An SDK error that no failed request explains (the server answered, but
/// not as MCP), with the URL redacted and the SDK's type names left out.
fn sdk_error(e: &dyn std::error::Error, url: &str, shown: &str) -> String {
    let mut text = crate::error::error_chain(e).replace(url, shown);
    if let Ok(parsed) = reqwest::Url::parse(url) {
        text = text.replace(parsed.as_str(), shown);
    }
    // "Transport [rmcp::transport::worker::WorkerTransport<…>] error": the
    // bracket names a Rust type, which tells a user nothing.
    while let (Some(open), Some(close)) = (text.find(" [rmcp::"), text.find("] ")) {
        if close < open {
            break;
        }
        text.replace_range(open..close + 1, "");
    }
    text
}
