//! `rpc --acp`: the Agent Client Protocol (v1, JSON-RPC 2.0 on stdio) on
//! top of the native host, through the official `agent-client-protocol`
//! crate (its typed schema and its connection; we write no JSON-RPC
//! framing of our own).
//!
//! Each ACP session runs one native [`crate::host::Host`] in this process
//! (`sessions`): same ledger, abort, locks, modes, permission flow,
//! persistence and compaction as the native protocol, several sessions
//! per connection. Handlers never wait on a turn or on the client: a
//! prompt, a load or a permission request runs in its own task, so the
//! connection's dispatch loop stays free (a `session/cancel` is read while
//! a prompt runs).
//!
//! - `sessions`: the host per session and the pump reading its frames.
//! - `updates`: native frames → `session/update`; `load`: history replay.
//! - `prompt`: ACP prompt ↔ native `prompt`; `permissions`: asking.
//! - `options`: modes and config options; `list`; `mcp`: client servers.

mod list;
mod load;
pub mod mcp;
mod options;
mod permissions;
mod prompt;
mod sessions;
mod updates;

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};

use agent_client_protocol::v1::schema::{
    CancelNotification, InitializeRequest, InitializeResponse, ListSessionsRequest,
    ListSessionsResponse, LoadSessionRequest, LoadSessionResponse, NewSessionRequest,
    NewSessionResponse, PromptRequest, SetSessionConfigOptionRequest,
    SetSessionConfigOptionResponse, SetSessionModeRequest, SetSessionModeResponse,
};
use agent_client_protocol::{on_receive_notification, on_receive_request, Agent, Stdio};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use crate::cli::Cli;
use crate::error::Coded;
use crate::host::Signals;
use crate::startup::{Opening, Shared};
use sessions::{AcpSession, Connection, Models, Registry};

type AcpError = agent_client_protocol::Error;
type AcpResult<T> = Result<T, AcpError>;

/// Exit status when the flags or config make serving impossible.
const EXIT_STARTUP: i32 = 2;

/// What every handler shares.
struct Acp {
    cli: Cli,
    shared: Shared,
    sessions: Registry,
    models: Models,
}

/// Serves ACP on stdio until the client closes stdin or a signal arrives;
/// returns the exit code. Start-up errors go to stderr only: stdout
/// carries JSON-RPC and nothing else.
pub fn run(cli: &Cli, runtime: &tokio::runtime::Runtime) -> i32 {
    runtime.block_on(async {
        let shared = match Shared::new(cli) {
            Ok(shared) => shared,
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "rpc: {} ({})",
                    e.message,
                    e.code.as_str()
                );
                return EXIT_STARTUP;
            }
        };
        let signals = Signals::new();
        shared.providers.warm_up();
        let acp = Arc::new(Acp {
            cli: cli.clone(),
            shared,
            sessions: Registry::default(),
            models: Models::default(),
        });
        // The listing waits (briefly) for extensions: never in a handler.
        let listing = acp.clone();
        tokio::spawn(async move {
            let models = listing.shared.providers.available_models().await;
            *listing
                .models
                .write()
                .unwrap_or_else(PoisonError::into_inner) = models;
        });
        serve(acp, signals).await
    })
}

async fn serve(acp: Arc<Acp>, mut signals: Signals) -> i32 {
    let connection = {
        let (a, b, c, d, e, f, g, h) = (
            acp.clone(),
            acp.clone(),
            acp.clone(),
            acp.clone(),
            acp.clone(),
            acp.clone(),
            acp.clone(),
            acp.clone(),
        );
        Agent
            .v1()
            .name("agent-rpc")
            .on_receive_request(
                async move |req: InitializeRequest, responder, _cx| {
                    responder.respond(a.initialize(req)?)
                },
                on_receive_request!(),
            )
            .on_receive_request(
                async move |req: NewSessionRequest, responder, cx| {
                    responder.respond_with_result(b.new_session(req, cx))
                },
                on_receive_request!(),
            )
            .on_receive_request(
                async move |req: LoadSessionRequest, responder, cx| {
                    let acp = c.clone();
                    tokio::spawn(async move {
                        let _ = responder.respond_with_result(acp.load_session(req, cx).await);
                    });
                    Ok(())
                },
                on_receive_request!(),
            )
            .on_receive_request(
                async move |req: ListSessionsRequest, responder, _cx| {
                    let acp = d.clone();
                    tokio::spawn(async move {
                        let _ = responder.respond_with_result(acp.list_sessions(req));
                    });
                    Ok(())
                },
                on_receive_request!(),
            )
            .on_receive_request(
                async move |req: PromptRequest, responder, _cx| {
                    let session = e.session(&req.session_id.0)?;
                    tokio::spawn(async move {
                        let _ = responder.respond_with_result(run_prompt(session, req).await);
                    });
                    Ok(())
                },
                on_receive_request!(),
            )
            .on_receive_notification(
                async move |note: CancelNotification, _cx| {
                    if let Ok(session) = f.session(&note.session_id.0) {
                        tokio::spawn(async move {
                            let _ = session.call(json!({"type": "abort"})).await;
                        });
                    }
                    Ok(())
                },
                on_receive_notification!(),
            )
            .on_receive_request(
                async move |req: SetSessionModeRequest, responder, cx| {
                    let session = g.session(&req.session_id.0)?;
                    tokio::spawn(async move {
                        let _ = responder.respond_with_result(set_mode(session, req, cx).await);
                    });
                    Ok(())
                },
                on_receive_request!(),
            )
            .on_receive_request(
                async move |req: SetSessionConfigOptionRequest, responder, cx| {
                    let session = h.session(&req.session_id.0)?;
                    tokio::spawn(async move {
                        let answer = set_config_option(session, req, cx).await;
                        let _ = responder.respond_with_result(answer);
                    });
                    Ok(())
                },
                on_receive_request!(),
            )
            .connect_to(Stdio::new())
    };
    let code = tokio::select! {
        ended = connection => match ended {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!("the ACP connection failed: {e}");
                1
            }
        },
        _ = signals.next() => {
            tracing::info!("signal received; shutting down");
            0
        }
    };
    acp.sessions.shutdown_all().await;
    code
}

impl Acp {
    fn session(&self, id: &str) -> AcpResult<Arc<AcpSession>> {
        self.sessions.get(id).ok_or_else(|| {
            AcpError::invalid_params().data(json!(format!(
                "no open session {id} on this connection: session/new or session/load it first"
            )))
        })
    }

    fn initialize(&self, _req: InitializeRequest) -> AcpResult<InitializeResponse> {
        typed(json!({
            "protocolVersion": 1,
            "agentCapabilities": {
                "loadSession": true,
                "promptCapabilities": {"image": true, "audio": false, "embeddedContext": true},
                "mcpCapabilities": {"http": true, "sse": false},
                "sessionCapabilities": {"list": {}},
            },
            "agentInfo": {"name": "agent-rpc", "title": "agent-rpc", "version": env!("CARGO_PKG_VERSION")},
            "authMethods": [],
        }))
    }

    /// A new session, answered at once: nothing here waits for an
    /// extension or an MCP server.
    fn new_session(&self, req: NewSessionRequest, cx: Connection) -> AcpResult<NewSessionResponse> {
        let cwd = session_dir(&req.cwd)?;
        let mcp = mcp::convert(req.mcp_servers, &cwd);
        let prepared = self
            .shared
            .session(&self.cli, cwd, true, Opening::New)
            .map_err(coded_error)?;
        let session = sessions::start(prepared, cx, self.models.clone(), mcp);
        self.sessions.insert(session.clone());
        typed(json!({
            "sessionId": session.id,
            "modes": options::modes(session.state().mode),
            "configOptions": session.config_options(),
        }))
    }

    /// Opens a stored session, replays its history as updates, and only
    /// then answers. The stored file is not written by loading.
    async fn load_session(
        &self,
        req: LoadSessionRequest,
        cx: Connection,
    ) -> AcpResult<LoadSessionResponse> {
        let id = req.session_id.0.to_string();
        // An empty id means "the latest of the cwd" to the native opener.
        if id.is_empty() {
            return Err(AcpError::invalid_params().data(json!("sessionId is empty")));
        }
        if self.sessions.get(&id).is_some() {
            return Err(AcpError::invalid_params().data(json!(format!(
                "session {id} is already open on this connection"
            ))));
        }
        let cwd = session_dir(&req.cwd)?;
        let mcp = mcp::convert(req.mcp_servers, &cwd);
        let opening = Opening::Continue {
            id: id.clone(),
            fork: false,
            record_overrides: false,
        };
        let prepared = self
            .shared
            .session(&self.cli, cwd, true, opening)
            .map_err(coded_error)?;
        let history = load::replay(&prepared.settings.cwd, &prepared.session.messages);
        let session = sessions::start(prepared, cx.clone(), self.models.clone(), mcp);
        for update in history {
            session.notify(&cx, update);
        }
        self.sessions.insert(session.clone());
        typed(json!({
            "modes": options::modes(session.state().mode),
            "configOptions": session.config_options(),
        }))
    }

    fn list_sessions(&self, req: ListSessionsRequest) -> AcpResult<ListSessionsResponse> {
        let all = self
            .shared
            .store()
            .list()
            .map_err(|e| AcpError::internal_error().data(json!(format!("{e:#}"))))?;
        typed(json!({"sessions": list::sessions(&all, req.cwd.as_deref())}))
    }
}

/// The session's directory: absolute, existing, canonical.
fn session_dir(cwd: &std::path::Path) -> AcpResult<PathBuf> {
    if !cwd.is_absolute() {
        return Err(AcpError::invalid_params().data(json!(format!(
            "cwd must be an absolute path, not {}",
            cwd.display()
        ))));
    }
    match cwd.canonicalize() {
        Ok(dir) if dir.is_dir() => Ok(dir),
        _ => Err(AcpError::invalid_params()
            .data(json!(format!("cwd {} is not a directory", cwd.display())))),
    }
}

async fn run_prompt(
    session: Arc<AcpSession>,
    req: PromptRequest,
) -> AcpResult<agent_client_protocol::v1::schema::PromptResponse> {
    let blocks: Vec<Value> = req
        .prompt
        .iter()
        .filter_map(|b| serde_json::to_value(b).ok())
        .collect();
    let answer = session
        .call(prompt::command(&blocks))
        .await
        .map_err(|_| host_gone())?;
    prompt::outcome(&answer)
}

async fn set_mode(
    session: Arc<AcpSession>,
    req: SetSessionModeRequest,
    cx: Connection,
) -> AcpResult<SetSessionModeResponse> {
    let id = req.mode_id.0.to_string();
    let Some(mode) = options::parse_mode(&id) else {
        return Err(AcpError::invalid_params().data(json!(format!(
            "unknown mode {id:?}: ask, accept-edits, allow-all or read-only"
        ))));
    };
    let answer = session
        .call(json!({"type": "set_permission_mode", "mode": id}))
        .await
        .map_err(|_| host_gone())?;
    check(&answer)?;
    session.update_state(|s| s.mode = mode);
    session.notify(
        &cx,
        json!({"sessionUpdate": "current_mode_update", "currentModeId": id}),
    );
    Ok(SetSessionModeResponse::new())
}

async fn set_config_option(
    session: Arc<AcpSession>,
    req: SetSessionConfigOptionRequest,
    cx: Connection,
) -> AcpResult<SetSessionConfigOptionResponse> {
    let value = serde_json::to_value(&req.value)
        .ok()
        .and_then(|v| v.get("value").and_then(Value::as_str).map(str::to_owned))
        .ok_or_else(|| AcpError::invalid_params().data(json!("value must be a string")))?;
    match req.config_id.0.as_ref() {
        "model" => {
            let answer = session
                .call(json!({"type": "set_model", "model": value}))
                .await
                .map_err(|_| host_gone())?;
            check(&answer)?;
            // A model change is announced by the pump (`model_changed`).
            session.update_state(|s| s.model = Some(value));
        }
        "thinking" => {
            let Some(level) = options::parse_level(&value) else {
                return Err(AcpError::invalid_params().data(json!(format!(
                    "unknown thinking level {value:?}: off, minimal, low, medium, high or xhigh"
                ))));
            };
            let answer = session
                .call(json!({"type": "set_thinking_level", "level": value}))
                .await
                .map_err(|_| host_gone())?;
            check(&answer)?;
            session.update_state(|s| s.thinking = level);
            session.notify(
                &cx,
                json!({"sessionUpdate": "config_option_update", "configOptions": session.config_options()}),
            );
        }
        other => {
            return Err(AcpError::invalid_params().data(json!(format!(
                "unknown config option {other:?}: model or thinking"
            ))))
        }
    }
    typed(json!({"configOptions": session.config_options()}))
}

/// A native answer as success or a JSON-RPC error.
fn check(answer: &Value) -> AcpResult<()> {
    let ok = answer.get("ok").and_then(Value::as_bool).unwrap_or(false);
    if answer.get("type").and_then(Value::as_str) == Some("response") && ok {
        Ok(())
    } else {
        Err(native_error(answer))
    }
}

/// A native `error` frame (or failed response) as a JSON-RPC error: the
/// message for people, the native code in `data.code`.
fn native_error(answer: &Value) -> AcpError {
    let field = |k: &str| answer.get(k).and_then(Value::as_str).unwrap_or("");
    let message = match field("message") {
        "" => field("error"),
        m => m,
    };
    AcpError::new(json_rpc_code(field("code")), message.to_owned())
        .data(json!({"code": field("code")}))
}

fn coded_error(e: Coded) -> AcpError {
    AcpError::new(json_rpc_code(e.code.as_str()), e.message.clone())
        .data(json!({"code": e.code.as_str()}))
}

/// JSON-RPC codes for native error codes: ACP's "resource not found" for
/// `not_found`, invalid params where the request was wrong, else internal.
fn json_rpc_code(native: &str) -> i32 {
    match native {
        "not_found" => -32002,
        "invalid_params" | "parse_error" | "invalid_request" => -32602,
        _ => -32603,
    }
}

fn host_gone() -> AcpError {
    AcpError::internal_error().data(json!("the session's host has stopped"))
}

/// A value of an ACP schema type from its JSON; an error here is ours.
fn typed<T: DeserializeOwned>(value: Value) -> AcpResult<T> {
    serde_json::from_value(value)
        .map_err(|e| AcpError::internal_error().data(json!(format!("schema mismatch: {e}"))))
}
