//! From flags to a running host: resolve directories, discover extensions,
//! open or create the session, write `ready`, run the dispatch loop.
//!
//! `ready` is written as soon as the session is loaded; extensions are
//! started afterwards in the background. A start-up failure is one `error`
//! frame on stdout, the same message on stderr, and exit status 2.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::cli::Cli;
use crate::config::{self, env_nonempty};
use crate::host::{Host, Settings, Signals};
use crate::permissions::{Gate, Mode};
use crate::protocol::{ErrorCode, ErrorFrame, Frame, ReadyFrame, PROTOCOL_VERSION};
use crate::provider::{manifest, Providers, Timeouts};
use crate::session::{self, Entry, OpenError, Session, SessionFile, Store};
use crate::transport;

/// Exit status for a start-up failure.
const EXIT_STARTUP: i32 = 2;

/// How long an extension has to finish a cancelled request before it is
/// killed. Short, because abort must end the turn within 200 ms.
const CANCEL_GRACE: Duration = Duration::from_millis(100);

struct StartupError {
    code: ErrorCode,
    message: String,
}

fn fail(code: ErrorCode, message: impl Into<String>) -> StartupError {
    StartupError {
        code,
        message: message.into(),
    }
}

/// Runs the host to completion and returns the process exit code.
pub fn run(cli: Cli) -> i32 {
    // A file-size limit (RLIMIT_FSIZE) must make a write fail with EFBIG,
    // which the session store handles, not kill the host with SIGXFSZ.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread
    // that could rely on it exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "rpc: cannot start the async runtime: {e}"
            );
            return EXIT_STARTUP;
        }
    };
    let (out, writer, closed) = transport::spawn_writer(std::io::stdout());
    let code = runtime.block_on(async move {
        let prepared = match prepare(&cli) {
            Ok(p) => p,
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "rpc: {} ({})",
                    e.message,
                    e.code.as_str()
                );
                out.frame(&Frame::Error(ErrorFrame::new(
                    Value::Null,
                    e.code,
                    e.message,
                )))
                .await;
                return EXIT_STARTUP;
            }
        };
        let Prepared {
            settings,
            store,
            session,
            file,
            providers,
            gate,
        } = prepared;
        // Handlers go in before `ready`: from then on a signal must act like
        // `shutdown`, never kill the process with the session half-written.
        let signals = Signals::new();
        out.frame(&Frame::Ready(ReadyFrame {
            protocol_version: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION"),
            session_id: session.header.id.clone(),
            model: session.model.clone(),
            cwd: settings.cwd.clone(),
            message_count: session.messages.len(),
            usage: session.usage,
        }))
        .await;
        providers.warm_up();
        let inbound = transport::spawn_reader(std::io::stdin(), cli.max_frame_bytes);
        let (host, channels) = Host::new(settings, out, providers, store, session, file, gate);
        host.run(inbound, channels, closed, signals).await
    });
    // Dropping the runtime drops every task still holding an outbox (and
    // kills extension processes); then the writer has flushed everything.
    runtime.shutdown_timeout(Duration::from_millis(200));
    writer.finish();
    code
}

struct Prepared {
    settings: Settings,
    gate: Arc<Gate>,
    store: Store,
    session: Session,
    file: SessionFile,
    providers: Arc<Providers>,
}

fn prepare(cli: &Cli) -> Result<Prepared, StartupError> {
    let cwd = match &cli.cwd {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().map_err(|e| {
            fail(
                ErrorCode::Internal,
                format!("cannot read the current directory: {e}"),
            )
        })?,
    };
    let cwd = cwd.canonicalize().map_err(|e| {
        fail(
            ErrorCode::InvalidParams,
            format!("working directory {} is not usable: {e}", cwd.display()),
        )
    })?;
    if !cwd.is_dir() {
        return Err(fail(
            ErrorCode::InvalidParams,
            format!("working directory {} is not a directory", cwd.display()),
        ));
    }
    let data_dir = data_dir(cli)?;
    session::create_private_dir(&data_dir).map_err(|e| {
        fail(
            ErrorCode::Internal,
            format!("data directory unusable: {e:#}"),
        )
    })?;
    let store = Store::new(data_dir.join("sessions"));

    let config =
        config::load(cli.config.as_deref()).map_err(|e| fail(ErrorCode::InvalidParams, e))?;
    let manifests = manifest::discover(&data_dir.join("extensions"), &cli.extensions)
        .map_err(|e| fail(ErrorCode::InvalidParams, format!("{e:#}")))?;
    let providers = Providers::new(
        manifests,
        &config,
        Timeouts {
            init: Duration::from_secs(cli.init_timeout),
            idle: Duration::from_secs(cli.provider_idle_timeout),
            cancel_grace: CANCEL_GRACE,
        },
    )
    .map_err(|e| fail(ErrorCode::InvalidParams, format!("config: {e}")))?;
    let providers = Arc::new(providers);
    if let Some(model) = &cli.model {
        providers
            .check_model_quick(model)
            .map_err(|e| fail(ErrorCode::NotFound, format!("--model: {e}")))?;
    }

    let cwd_text = cwd.to_string_lossy().into_owned();
    let (mut session, mut file) = match &cli.continue_session {
        None => {
            let mut s = Session::new(session::new_id(), cwd_text.clone(), cli.model.clone());
            // Kept in the header (written with the first entry) so that a
            // later --continue resumes with the mode the session began with.
            s.header.permission_mode = cli.permission_mode;
            let f = store.create(s.header.clone());
            (s, f)
        }
        Some(id) => {
            let id = if id.is_empty() {
                store
                    .latest()
                    .map_err(|e| fail(ErrorCode::Internal, format!("{e:#}")))?
                    .ok_or_else(|| {
                        fail(
                            ErrorCode::NotFound,
                            format!("no session to continue in {}", store.dir().display()),
                        )
                    })?
            } else {
                id.clone()
            };
            store.open(&id).map_err(|e| {
                let code = match e {
                    OpenError::InvalidId(_) => ErrorCode::InvalidParams,
                    OpenError::NotFound(_) => ErrorCode::NotFound,
                    OpenError::Locked(_) => ErrorCode::SessionLocked,
                    OpenError::Other(_) => ErrorCode::Internal,
                };
                fail(code, e.to_string())
            })?
        }
    };
    if let Some(model) = &cli.model {
        if session.model.as_ref() != Some(model) && cli.continue_session.is_some() {
            file.append(&Entry::ModelChange {
                ts: session::now(),
                model: model.clone(),
            })
            .map_err(|e| fail(ErrorCode::Internal, format!("{e:#}")))?;
            session.model = Some(model.clone());
        }
    }
    if let Some(mode) = cli.permission_mode {
        if session.permission_mode != Some(mode) && cli.continue_session.is_some() {
            file.append(&Entry::PermissionMode {
                ts: session::now(),
                mode,
            })
            .map_err(|e| fail(ErrorCode::Internal, format!("{e:#}")))?;
        }
        session.permission_mode = Some(mode);
    }
    let gate = Arc::new(Gate::new(
        session.permission_mode.unwrap_or(Mode::Ask),
        vec![cwd.clone()],
    ));
    Ok(Prepared {
        gate,
        settings: Settings {
            cwd_path: cwd.clone(),
            env_remove: Arc::new(secret_vars(&providers, &config.tools.keep_env)),
            cwd: cwd_text,
            system_prompt: cli.system_prompt.clone(),
            max_rounds: cli.max_rounds,
            idle_timeout: Duration::from_secs(cli.provider_idle_timeout),
            max_frame_bytes: cli.max_frame_bytes,
        },
        store,
        session,
        file,
        providers,
    })
}

/// Variables that hold credentials: every provider's key variable and any
/// `*_API_KEY`. Tool processes (bash) do not inherit them.
fn secret_vars(providers: &Providers, keep: &[String]) -> Vec<String> {
    let mut names = providers.key_vars();
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str() {
            if name.ends_with("_API_KEY") && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names.retain(|n| !keep.contains(n));
    names
}

/// `--data-dir`, else `$AGENT_RPC_HOME`, else `$XDG_DATA_HOME/agent-rpc`,
/// else `~/.local/share/agent-rpc`.
fn data_dir(cli: &Cli) -> Result<PathBuf, StartupError> {
    let dir = if let Some(d) = &cli.data_dir {
        d.clone()
    } else if let Some(d) = env_nonempty("AGENT_RPC_HOME") {
        PathBuf::from(d)
    } else if let Some(d) = env_nonempty("XDG_DATA_HOME").filter(|d| d.starts_with('/')) {
        PathBuf::from(d).join("agent-rpc")
    } else if let Some(home) = env_nonempty("HOME") {
        PathBuf::from(home).join(".local/share/agent-rpc")
    } else {
        return Err(fail(
            ErrorCode::InvalidParams,
            "cannot find a data directory: pass --data-dir or set AGENT_RPC_HOME",
        ));
    };
    std::path::absolute(&dir).map_err(|e| {
        fail(
            ErrorCode::InvalidParams,
            format!("data directory {} is not usable: {e}", dir.display()),
        )
    })
}
