//! `rpc --acp`: the Agent Client Protocol (v1, JSON-RPC 2.0 on stdio), a
//! front end beside the native one (`native.rs`) on the same host.
//!
//! Each ACP session runs one [`crate::host::Host`] in this process
//! (`sessions`), made by the same factory as a native one: same ledger,
//! abort, locks, modes, permission flow, persistence and compaction,
//! several sessions per connection. It talks to its host in types only:
//! typed commands and answers through a `HostHandle`, typed frames into
//! its sink. The read loop never waits on a turn or on the client: a
//! prompt, a load, a mode change or a permission question runs in its own
//! task, so a `session/cancel` is read while a prompt runs.
//!
//! - `rpc`: JSON-RPC over the stdio transport (why not the official crate:
//!   see there).
//! - `start`: a session's host and sink wired together; `sessions`: the
//!   open sessions; `sink`: a host's frames →
//!   `session/update` (`updates` maps, `chunks` is the delta fast path).
//! - `load`: history replay; `lifecycle`: `session/close` and
//!   `session/fork`; `prompt`: ACP prompt ↔ the `prompt` command;
//!   `permissions`: asking the client; `client_fs`, `terminal`: the
//!   client's files and terminals as a session's tool backends, when its
//!   `initialize` offers them.
//! - `options`: modes and config options; `list`; `info`: titles and
//!   `session_info_update`; `mcp`: client servers; `commands`: slash
//!   commands (`available_commands_update`, `/compact`'s message).

mod chunks;
mod client_fs;
mod commands;
mod info;
mod lifecycle;
mod list;
mod load;
pub(crate) mod mcp;
mod options;
mod permissions;
mod prompt;
// JSON-RPC lives below the front ends: external ACP agents (a subagent's
// wire) use it too.
use crate::jsonrpc as rpc;
mod sessions;
mod sink;
mod start;
mod terminal;
mod updates;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError};

use serde_json::{json, Value};

use crate::cli::Cli;
use crate::error::Coded;
use crate::factory::{Factory, Opening};
use crate::host::{Answer, HostGone, Signals};
use crate::protocol::{
    Command, ErrorCode, Response, SetModelParams, SetPermissionModeParams, SetSandboxParams,
    SetThinkingLevelParams,
};
use crate::transport::{self, Inbound};
use rpc::{Connection, Incoming, RpcError, RpcResult};
use sessions::{AcpSession, Models, Registry};

/// How long the background model listing waits for extensions still
/// starting (one that hangs in `initialize` is listed as unavailable).
const MODEL_LISTING_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The ACP protocol version spoken.
const PROTOCOL_VERSION: u64 = 1;

/// What every handler shares.
struct Acp {
    cli: Cli,
    factory: std::sync::Arc<Factory>,
    sessions: Registry,
    models: Models,
    cx: Connection,
}

/// Serves ACP on stdio until the client closes stdin or a signal arrives;
/// returns the exit code. Start-up errors go to stderr only: stdout
/// carries JSON-RPC and nothing else.
pub(crate) fn run(cli: &Cli, runtime: &tokio::runtime::Runtime) -> (i32, transport::Writer) {
    // A closed stdout ends the session the way a closed stdin does: the
    // client is gone either way, and stdin's end follows.
    let (out, writer, _closed) = transport::spawn_writer(std::io::stdout());
    let code = runtime.block_on(async move {
        let factory = match Factory::new(cli) {
            Ok(factory) => factory,
            // Nothing on stdout: it carries JSON-RPC only.
            Err(e) => return crate::factory::report_startup_failure(&e),
        };
        let signals = Signals::new();
        factory.providers.warm_up();
        let acp = Arc::new(Acp {
            cli: cli.clone(),
            factory,
            sessions: Registry::default(),
            models: Models::default(),
            cx: Connection::new(out),
        });
        // The listing waits (briefly) for extensions: never in a handler.
        let listing = acp.clone();
        tokio::spawn(async move {
            // In the background, so it can wait for a slow extension
            // (sessions answered meanwhile get the list as an update).
            let models = listing
                .factory
                .providers
                .available_models_within(MODEL_LISTING_WAIT)
                .await;
            *listing
                .models
                .write()
                .unwrap_or_else(PoisonError::into_inner) = models;
            // Sessions answered before the listing offered only their own
            // model: their model selector gets the whole list now.
            for session in listing.sessions.all().into_iter().filter(|s| s.take_short_list()) {
                let update = json!({"sessionUpdate": "config_option_update", "configOptions": session.config_options()});
                session.notify(update).await;
            }
        });
        serve(&acp, signals).await;
        acp.cx.client_gone();
        acp.sessions.shutdown_all().await;
        // The sessions share the providers: stopped once, by the
        // connection, so that closing one session leaves the others' alone.
        acp.factory.stop_subagents().await;
        acp.factory.providers.shutdown().await;
        0
    });
    // The caller drops the runtime (and with it every task holding the
    // outbox) before waiting for the writer to flush.
    (code, writer)
}

/// The read loop: one line at a time, each handled without waiting.
async fn serve(acp: &Arc<Acp>, mut signals: Signals) {
    let mut inbound = transport::spawn_reader(std::io::stdin(), acp.cli.max_frame_bytes);
    loop {
        tokio::select! {
            line = inbound.recv() => match line {
                Some(Inbound::Line(line)) => acp.on_message(rpc::decode(&line)).await,
                Some(Inbound::TooLarge { bytes }) => {
                    let error = RpcError::new(-32600, format!(
                        "a message of {bytes} bytes exceeds the limit of {} bytes (--max-frame-bytes); it was discarded",
                        acp.cli.max_frame_bytes
                    ));
                    acp.cx.respond(Value::Null, Err(error)).await;
                }
                None => return,
            },
            _ = signals.next() => {
                tracing::info!("signal received; shutting down");
                return;
            }
        }
    }
}

impl Acp {
    async fn on_message(self: &Arc<Self>, message: Incoming) {
        match message {
            Incoming::Request { id, method, params } => self.on_request(id, method, params).await,
            Incoming::Notification { method, params } => {
                if method == "session/cancel" {
                    if let Ok(session) = self.session(&params) {
                        tokio::spawn(async move {
                            let _ = session.call(Command::Abort).await;
                        });
                    }
                }
            }
            Incoming::Response(message) => self.cx.on_response(&message),
            Incoming::Invalid { id, error } => self.cx.respond(id, Err(error)).await,
        }
    }

    /// Quick requests are answered here; anything that can wait on a host,
    /// the disk or the client is answered from its own task.
    async fn on_request(self: &Arc<Self>, id: Value, method: String, params: Value) {
        let answer = match method.as_str() {
            "initialize" => {
                self.cx.set_client(rpc::ClientCapabilities::of(&params));
                initialize()
            }
            "session/new" => {
                let answer = self.new_session(&params);
                let opened = self.opened(&method, &params, &answer);
                self.cx.respond(id, answer).await;
                if let Some(session) = opened {
                    // From a task: the read loop never waits on a host.
                    tokio::spawn(async move { commands::announce(&session).await });
                }
                return;
            }
            "session/load"
            | "session/resume"
            | "session/close"
            | "session/fork"
            | "session/list"
            | "session/prompt"
            | "session/set_mode"
            | "session/set_config_option" => {
                let acp = self.clone();
                tokio::spawn(async move {
                    let answer = acp.in_task(&method, &params).await;
                    let opened = acp.opened(&method, &params, &answer);
                    acp.cx.respond(id, answer).await;
                    if let Some(session) = opened {
                        commands::announce(&session).await;
                    }
                });
                return;
            }
            other => Err(RpcError::new(-32601, format!("method not found: {other}"))),
        };
        self.cx.respond(id, answer).await;
    }

    async fn in_task(&self, method: &str, params: &Value) -> RpcResult {
        match method {
            "session/load" => self.load_session(params, true).await,
            "session/resume" => self.load_session(params, false).await,
            "session/close" => self.close_session(params).await,
            "session/fork" => self.fork_session(params).await,
            "session/list" => self.list_sessions(params),
            "session/prompt" => {
                let session = self.session(params)?;
                let blocks = params
                    .get("prompt")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        RpcError::invalid_params("prompt must be a list of content blocks")
                    })?;
                let params = prompt::params(blocks);
                let title = info::title(&params.message);
                let answer = session.call(Command::Prompt(params)).await;
                let answer = answer.map_err(host_gone)?;
                // A turn ran: its prompt is stored and the file written.
                if matches!(answer, Ok(Response::Turn(_))) {
                    self.announce_info(&session, title).await;
                }
                // `/compact` ran no turn: the editor is told what it did.
                if let Ok(Response::Compact(result)) = &answer {
                    session.notify(commands::compacted(result)).await;
                }
                prompt::outcome(answer)
            }
            "session/set_mode" => set_mode(self.session(params)?, params).await,
            _ => set_config_option(self.session(params)?, params).await,
        }
    }

    /// The session a successful `session/new`, `load`, `resume` or `fork`
    /// opened, to announce its commands to once it is answered.
    fn opened(&self, method: &str, params: &Value, answer: &RpcResult) -> Option<Arc<AcpSession>> {
        let answer = answer.as_ref().ok()?;
        let id = match method {
            "session/new" | "session/fork" => answer.get("sessionId"),
            "session/load" | "session/resume" => params.get("sessionId"),
            _ => None,
        }?;
        self.sessions.get(id.as_str()?)
    }

    /// The open session a request names.
    fn session(&self, params: &Value) -> Result<Arc<AcpSession>, RpcError> {
        let id = string(params, "sessionId")?;
        self.sessions.get(id).ok_or_else(|| {
            RpcError::invalid_params(format!(
                "no open session {id} on this connection: session/new or session/load it first"
            ))
        })
    }

    /// A new session, answered at once: nothing here waits for an
    /// extension or an MCP server.
    fn new_session(&self, params: &Value) -> RpcResult {
        let cwd = session_dir(string(params, "cwd")?)?;
        let mcp = mcp::convert(params.get("mcpServers"), &cwd)?;
        let parts = self
            .factory
            .session(&self.cli, cwd, true, Opening::New, mcp)
            .map_err(|e| host_error(&e))?;
        let session = start::start(parts, self.cx.clone(), self.models.clone());
        self.sessions.insert(session.clone());
        Ok(json!({
            "sessionId": session.id,
            "modes": options::modes(session.settings().mode),
            "configOptions": session.config_options_for_answer(),
        }))
    }

    /// Opens a stored session, replays its history as updates (`replay`:
    /// `session/load`; `session/resume` does not), and only then answers.
    /// The stored file is not written by loading.
    async fn load_session(&self, params: &Value, replay: bool) -> RpcResult {
        let id = string(params, "sessionId")?.to_owned();
        // An empty id means "the latest of the cwd" to the native opener.
        if id.is_empty() {
            return Err(RpcError::invalid_params("sessionId is empty"));
        }
        if self.sessions.get(&id).is_some() {
            return Err(RpcError::invalid_params(format!(
                "session {id} is already open on this connection"
            )));
        }
        let cwd = session_dir(string(params, "cwd")?)?;
        let mcp = mcp::convert(params.get("mcpServers"), &cwd)?;
        let opening = Opening::Load { id };
        let parts = self
            .factory
            .session(&self.cli, cwd, true, opening, mcp)
            .map_err(|e| host_error(&e))?;
        let history = if replay {
            let mut history = load::replay(
                &parts.settings.cwd,
                &parts.session.messages,
                &parts.session.commands,
            );
            // A plan update replaces the last one: the stored plan is the
            // one to show.
            if !parts.session.plan.is_empty() {
                history.push(updates::plan_update(&parts.session.plan));
            }
            history
        } else {
            Vec::new()
        };
        let session = start::start(parts, self.cx.clone(), self.models.clone());
        for update in history {
            session.notify(update).await;
        }
        self.sessions.insert(session.clone());
        Ok(json!({
            "modes": options::modes(session.settings().mode),
            "configOptions": session.config_options_for_answer(),
        }))
    }

    fn list_sessions(&self, params: &Value) -> RpcResult {
        let all = self
            .factory
            .store()
            .list()
            .map_err(|e| RpcError::internal(format!("{e:#}")))?;
        let cwd = params.get("cwd").and_then(Value::as_str).map(Path::new);
        Ok(json!({"sessions": list::sessions(&all, cwd)}))
    }
}

fn initialize() -> RpcResult {
    Ok(json!({
        "protocolVersion": PROTOCOL_VERSION,
        "agentCapabilities": {
            "loadSession": true,
            "promptCapabilities": {"image": true, "audio": false, "embeddedContext": true},
            "mcpCapabilities": {"http": true, "sse": false},
            "sessionCapabilities": {"list": {}, "resume": {}, "close": {}, "fork": {}},
        },
        "agentInfo": {"name": "agent-rpc", "title": "agent-rpc", "version": env!("CARGO_PKG_VERSION")},
        "authMethods": [],
    }))
}

/// A required string parameter.
fn string<'a>(params: &'a Value, name: &str) -> Result<&'a str, RpcError> {
    params
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params(format!("{name} (a string) is required")))
}

/// The session's directory: absolute, existing, canonical.
fn session_dir(cwd: &str) -> Result<PathBuf, RpcError> {
    let path = Path::new(cwd);
    if !path.is_absolute() {
        return Err(RpcError::invalid_params(format!(
            "cwd must be an absolute path, not {cwd}"
        )));
    }
    match path.canonicalize() {
        Ok(dir) if dir.is_dir() => Ok(dir),
        _ => Err(RpcError::invalid_params(format!(
            "cwd {cwd} is not a directory"
        ))),
    }
}

async fn set_mode(session: Arc<AcpSession>, params: &Value) -> RpcResult {
    change_mode(&session, string(params, "modeId")?).await?;
    Ok(json!({}))
}

/// A mode change by either path (`session/set_mode`, or the `mode` config
/// option): both views of the mode are announced, so a client showing
/// either stays in step.
async fn change_mode(session: &AcpSession, id: &str) -> Result<(), RpcError> {
    let Some(mode) = options::parse_mode(id) else {
        return Err(RpcError::invalid_params(format!(
            "unknown mode {id:?}: ask, accept-edits, allow-all or read-only"
        )));
    };
    let command = Command::SetPermissionMode(SetPermissionModeParams { mode });
    accepted(session.call(command).await)?;
    session
        .notify(json!({"sessionUpdate": "current_mode_update", "currentModeId": id}))
        .await;
    announce_options(session).await;
    Ok(())
}

async fn set_config_option(session: Arc<AcpSession>, params: &Value) -> RpcResult {
    let value = string(params, "value")?.to_owned();
    match string(params, "configId")? {
        "model" => set_model(&session, value).await?,
        "mode" => change_mode(&session, &value).await?,
        "thinking" => {
            let Some(level) = options::parse_level(&value) else {
                return Err(RpcError::invalid_params(format!(
                    "unknown thinking level {value:?}: off, minimal, low, medium, high or xhigh"
                )));
            };
            let command = Command::SetThinkingLevel(SetThinkingLevelParams { level });
            accepted(session.call(command).await)?;
            announce_options(&session).await;
        }
        "sandbox" => {
            let Some(mode) = options::parse_sandbox(&value) else {
                return Err(RpcError::invalid_params(format!(
                    "unknown sandbox mode {value:?}: read-only, workspace-write or off"
                )));
            };
            let command = Command::SetSandbox(SetSandboxParams { mode });
            accepted(session.call(command).await)?;
            announce_options(&session).await;
        }
        other => {
            return Err(RpcError::invalid_params(format!(
                "unknown config option {other:?}: model, mode, thinking or sandbox"
            )))
        }
    }
    Ok(json!({"configOptions": session.config_options()}))
}

/// A real change was announced by the sink (`model_changed`); the same
/// model again is announced here, so every accepted `set_config_option`
/// has its `config_option_update`.
async fn set_model(session: &AcpSession, model: String) -> Result<(), RpcError> {
    let before = session.settings().model;
    let answer = session
        .call(Command::SetModel(SetModelParams { model }))
        .await
        .map_err(host_gone)?
        .map_err(|e| bad_value(&e))?;
    // The answer names the model resolved (an alias becomes its full id).
    let resolved = match answer {
        Response::SetModel(set) => Some(set.model),
        _ => None,
    };
    if resolved.is_some() && resolved == before {
        announce_options(session).await;
    }
    Ok(())
}

async fn announce_options(session: &AcpSession) {
    session
        .notify(json!({"sessionUpdate": "config_option_update", "configOptions": session.config_options()}))
        .await;
}

/// A host's answer as success or a JSON-RPC error.
fn accepted(answer: Result<Answer, HostGone>) -> Result<Response, RpcError> {
    answer.map_err(host_gone)?.map_err(|e| host_error(&e))
}

/// A host error as a JSON-RPC error: the message for people, the native
/// code in `data.code`.
fn host_error(e: &Coded) -> RpcError {
    RpcError::new(json_rpc_code(e.code), e.message.clone())
        .with_data(json!({"code": e.code.as_str()}))
}

/// A host's refusal of a value the client chose: an unknown one (the
/// native `not_found`, e.g. a model no provider has) is invalid params,
/// like an unknown mode or level.
fn bad_value(e: &Coded) -> RpcError {
    let mut error = host_error(e);
    if e.code == ErrorCode::NotFound {
        error.code = -32602;
    }
    error
}

/// JSON-RPC codes for native error codes: ACP's "resource not found" for
/// `not_found`, invalid params where the request was wrong, else internal.
fn json_rpc_code(code: ErrorCode) -> i32 {
    match code {
        ErrorCode::NotFound => -32002,
        ErrorCode::InvalidParams | ErrorCode::ParseError | ErrorCode::InvalidRequest => -32602,
        _ => -32603,
    }
}

fn host_gone(_: HostGone) -> RpcError {
    RpcError::internal("the session's host has stopped")
}
