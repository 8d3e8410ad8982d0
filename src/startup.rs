//! From flags to a running host: resolve directories, discover extensions,
//! open or create the session, write `ready`, run the dispatch loop.
//!
//! `ready` is written as soon as the session is loaded; extensions are
//! started afterwards in the background. A start-up failure is one `error`
//! frame on stdout, the same message on stderr, and exit status 2.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::cli::Cli;
use crate::config::{self, env_nonempty, Config};
use crate::context::{PromptConfig, SessionPrompt};
use crate::error::{Coded, WithCode};
use crate::host::{Host, Parts, Settings, Signals};
use crate::permissions::Gate;
use crate::protocol::Mode;
use crate::protocol::ThinkingLevel;
use crate::protocol::{ErrorCode, ErrorFrame, Frame, ReadyFrame, PROTOCOL_VERSION};
use crate::provider::{manifest, Providers, Timeouts};
use crate::session::{self, Entry, Session, SessionFile, Store};
use crate::transport::{self, Outbox};

/// Exit status for a start-up failure.
const EXIT_STARTUP: i32 = 2;

/// How long an extension has to finish a cancelled request before it is
/// killed. Short, because abort must end the turn within 200 ms.
const CANCEL_GRACE: Duration = Duration::from_millis(100);

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
    if cli.acp {
        let (code, writer) = crate::acp::run(&cli, &runtime);
        runtime.shutdown_timeout(Duration::from_millis(200));
        writer.finish();
        return code;
    }
    let (out, writer, closed) = transport::spawn_writer(std::io::stdout());
    let code = runtime.block_on(async move {
        match prepare(&cli) {
            Ok(prepared) => serve(prepared, out, closed, cli.max_frame_bytes).await,
            Err(e) => {
                let code = report_startup_failure(&e);
                let frame = ErrorFrame::new(Value::Null, e.code, e.message);
                out.frame(&Frame::Error(frame)).await;
                code
            }
        }
    });
    // Dropping the runtime drops every task still holding an outbox (and
    // kills extension processes); then the writer has flushed everything.
    runtime.shutdown_timeout(Duration::from_millis(200));
    writer.finish();
    code
}

/// Says on stderr why the host cannot start; returns the exit status.
pub(crate) fn report_startup_failure(e: &Coded) -> i32 {
    let _ = writeln!(
        std::io::stderr(),
        "rpc: {} ({})",
        e.message,
        e.code.as_str()
    );
    EXIT_STARTUP
}

/// Writes `ready`, starts extensions in the background and runs the
/// dispatch loop to its end.
async fn serve(
    prepared: Prepared,
    out: Outbox,
    stdout_closed: oneshot::Receiver<std::io::Error>,
    max_frame_bytes: usize,
) -> i32 {
    let Prepared {
        settings,
        context,
        store,
        session,
        file,
        providers,
        gate,
        mcp_servers,
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
        thinking_level: session.thinking_level,
        context_files: context.files().to_vec(),
    }))
    .await;
    providers.warm_up();
    let inbound = transport::spawn_reader(std::io::stdin(), max_frame_bytes);
    let (host, channels) = Host::new(Parts {
        settings,
        context,
        gate,
        out,
        providers,
        store,
        session,
        file,
        mcp_servers,
    });
    host.run(inbound, channels, stdout_closed, signals).await
}

/// Everything the host is started with, ready before `ready` is written.
pub(crate) struct Prepared {
    pub settings: Settings,
    pub context: SessionPrompt,
    pub gate: Arc<Gate>,
    pub store: Store,
    pub session: Session,
    pub file: SessionFile,
    pub providers: Arc<Providers>,
    /// Started by the host after `ready`, in the background.
    pub mcp_servers: Vec<crate::mcp::ServerSpec>,
}

/// From flags to the host's parts, step by step; each step's error carries
/// the code the start-up `error` frame shows.
fn prepare(cli: &Cli) -> Result<Prepared, Coded> {
    let shared = Shared::new(cli)?;
    let opening = match &cli.continue_session {
        None => Opening::New,
        Some(id) => Opening::Continue {
            id: id.clone(),
            fork: cli.fork,
        },
    };
    let cwd = shared.cwd.clone();
    shared.session(cli, cwd, cli.cwd.is_some(), opening, Vec::new())
}

/// Which session a host starts on.
pub(crate) enum Opening {
    New,
    /// `--continue`: a stored session (an empty id: the latest one of the
    /// cwd), with `--model`, `--permission-mode` and `--thinking` written
    /// into it.
    Continue {
        id: String,
        fork: bool,
    },
    /// ACP `session/load`: a stored session taken as it is; the flags are
    /// for new sessions, and loading writes nothing.
    Load {
        id: String,
    },
}

/// What every session of the process shares, built once from the flags:
/// one store, one config, one set of providers (extensions start once).
pub(crate) struct Shared {
    /// `--cwd` or the current directory, canonical.
    pub cwd: PathBuf,
    data_dir: PathBuf,
    config: Config,
    prompt_config: PromptConfig,
    pub providers: Arc<Providers>,
    env_remove: Arc<Vec<String>>,
    /// The config's and `--mcp-config`'s servers, which every session gets.
    mcp_servers: Vec<crate::mcp::ServerSpec>,
}

impl Shared {
    pub(crate) fn new(cli: &Cli) -> Result<Shared, Coded> {
        let cwd = working_dir(cli)?;
        let data_dir = data_dir(cli)?;
        session::create_private_dir(&data_dir)
            .context("data directory unusable")
            .code(ErrorCode::Internal)?;
        let config = config::load(cli.config.as_deref()).code(ErrorCode::InvalidParams)?;
        let mcp_servers = mcp_servers(cli, &config)?;
        // Before anything is opened or written: a missing @file stops start-up
        // without touching a resumed session.
        let prompt_config = prompt_config(cli, &config)?;
        let providers = providers(cli, &config, &data_dir)?;
        let env_remove = Arc::new(secret_vars(&providers, &config.tools.keep_env));
        Ok(Shared {
            cwd,
            data_dir,
            config,
            prompt_config,
            providers,
            env_remove,
            mcp_servers,
        })
    }

    /// The session store (cheap: a directory).
    pub(crate) fn store(&self) -> Store {
        Store::new(self.data_dir.join("sessions"))
    }

    /// A host's parts for one session working in `cwd` (`cwd_fixed`: a
    /// resumed session stays there instead of moving to its own directory).
    /// `session_mcp`: servers this session adds to the configured ones (an
    /// ACP client's `mcpServers`); one of the same name replaces the
    /// configured one.
    pub(crate) fn session(
        &self,
        cli: &Cli,
        cwd: PathBuf,
        cwd_fixed: bool,
        opening: Opening,
        session_mcp: Vec<crate::mcp::ServerSpec>,
    ) -> Result<Prepared, Coded> {
        let store = self.store();
        let providers = self.providers.clone();
        let continuing = matches!(opening, Opening::Continue { .. });
        let loading = matches!(opening, Opening::Load { .. });
        let (mut session, mut file) = open_session(cli, &store, &cwd.to_string_lossy(), opening)?;
        let mut cwd = cwd;
        if continuing {
            apply_overrides(cli, &mut session, &mut file).code(ErrorCode::Internal)?;
        }
        if (continuing || loading) && !cwd_fixed {
            cwd = resumed_cwd(&session, cwd);
        }
        let cwd_text = cwd.to_string_lossy().into_owned();
        // A loaded session is taken as stored (see `Opening::Load`).
        if !loading {
            if let Some(mode) = cli.permission_mode {
                session.permission_mode = Some(mode);
            }
            if let Some(level) = cli.thinking {
                session.thinking_level = level;
            }
        }
        // `ready` names the model the first prompt will use whenever that is
        // known without waiting for extensions.
        if session.model.is_none() {
            if let Some(model) = providers.default_model_now() {
                if !loading {
                    file.record_default_model(&model)
                        .code(ErrorCode::Internal)?;
                }
                session.header.model = Some(model.clone());
                session.model = Some(model);
            }
        }
        let mode = session.permission_mode.unwrap_or(Mode::Ask);
        let gate = Arc::new(Gate::new(mode, vec![cwd.clone()]));
        let context = SessionPrompt::start(self.prompt_config.clone(), cwd.clone(), mode);
        let config = &self.config;
        Ok(Prepared {
            gate,
            context,
            settings: Settings {
                cwd_path: cwd,
                cwd_fixed,
                env_remove: self.env_remove.clone(),
                cwd: cwd_text,
                max_rounds: cli.max_rounds,
                idle_timeout: Duration::from_secs(cli.provider_idle_timeout),
                max_frame_bytes: cli.max_frame_bytes,
                compaction: crate::host::CompactionSettings {
                    auto: !cli.no_auto_compaction && config.compaction.auto != Some(false),
                    forced_off: cli.no_auto_compaction,
                    reserve: config.compaction.reserve_tokens,
                    keep_cap: config
                        .compaction
                        .keep_tokens
                        .unwrap_or(crate::compaction::KEEP_CAP),
                },
            },
            store,
            session,
            file,
            providers,
            mcp_servers: merge_mcp(&self.mcp_servers, session_mcp),
        })
    }
}

/// The configured servers, then the session's own; a session's server of
/// the same name as a configured one replaces it.
fn merge_mcp(
    configured: &[crate::mcp::ServerSpec],
    session: Vec<crate::mcp::ServerSpec>,
) -> Vec<crate::mcp::ServerSpec> {
    let mut all: Vec<_> = configured
        .iter()
        .filter(|c| !session.iter().any(|s| s.name == c.name))
        .cloned()
        .collect();
    all.extend(session);
    all
}

/// The config file's `[mcp_servers]` and the `--mcp-config` files'
/// servers. Never read from the project directory on its own: a cloned
/// repository must not be able to start programs.
fn mcp_servers(cli: &Cli, config: &Config) -> Result<Vec<crate::mcp::ServerSpec>, Coded> {
    let file = config
        .path
        .as_deref()
        .map_or_else(|| "the config file".to_owned(), |p| p.display().to_string());
    crate::mcp::config::collect(&config.mcp_servers, &file, &cli.mcp_config)
        .map_err(|e| Coded::new(ErrorCode::InvalidParams, format!("{e:#}")))
}

/// Where the system prompt comes from: a flag wins over the config key of
/// the same name. A flag's `@file` is relative to the current directory
/// (the config's were read against the config file's by `config::load`).
fn prompt_config(cli: &Cli, config: &Config) -> Result<PromptConfig, Coded> {
    let flag = |name: &str, value: &Option<String>| -> Result<Option<String>, Coded> {
        value
            .as_deref()
            .map(|v| config::text_or_file(v, Path::new("")))
            .transpose()
            .with_context(|| format!("--{name}"))
            .code(ErrorCode::InvalidParams)
    };
    let replace = flag("system-prompt", &cli.system_prompt)?;
    let append = flag("append-system-prompt", &cli.append_system_prompt)?;
    Ok(PromptConfig {
        replace: replace.or_else(|| config.system_prompt.clone()),
        append: append.or_else(|| config.append_system_prompt.clone()),
        context_files: !cli.no_context_files && config.context_files != Some(false),
        global_dir: config::default_dir(),
    })
}

/// `--cwd` or the current directory, canonical.
pub fn working_dir(cli: &Cli) -> Result<PathBuf, Coded> {
    let cwd = match &cli.cwd {
        Some(dir) => dir.clone(),
        None => std::env::current_dir()
            .context("cannot read the current directory")
            .code(ErrorCode::Internal)?,
    };
    let cwd = cwd
        .canonicalize()
        .with_context(|| format!("working directory {} is not usable", cwd.display()))
        .code(ErrorCode::InvalidParams)?;
    if !cwd.is_dir() {
        return Err(Coded::new(
            ErrorCode::InvalidParams,
            format!("working directory {} is not a directory", cwd.display()),
        ));
    }
    Ok(cwd)
}

/// The extensions found and the HTTP endpoints configured; `--model`
/// checked as far as it can be without starting anything.
fn providers(cli: &Cli, config: &Config, data_dir: &Path) -> Result<Arc<Providers>, Coded> {
    let manifests = manifest::discover(&data_dir.join("extensions"), &cli.extensions)
        .code(ErrorCode::InvalidParams)?;
    let timeouts = Timeouts {
        init: Duration::from_secs(cli.init_timeout),
        idle: Duration::from_secs(cli.provider_idle_timeout),
        cancel_grace: CANCEL_GRACE,
    };
    let providers = Providers::new(manifests, config, timeouts)
        .map_err(|e| Coded::new(ErrorCode::InvalidParams, format!("config: {e:#}")))?;
    if let Some(model) = &cli.model {
        providers
            .check_model_quick(model)
            .map_err(|e| Coded::new(ErrorCode::NotFound, format!("--model: {e:#}")))?;
    }
    // Checked even when --model or the session names another model: a
    // mistake in the file should surface now, not on the day it is used.
    if let Some(model) = &config.default_model {
        providers.check_model_quick(model).map_err(|e| {
            let file = config
                .path
                .as_deref()
                .map_or_else(|| "the config file".to_owned(), |p| p.display().to_string());
            Coded::new(ErrorCode::NotFound, format!("{file}: default_model: {e:#}"))
        })?;
    }
    Ok(Arc::new(providers))
}

/// A new session, or the stored one `--continue` names (without an id, the
/// latest one started in `cwd`) or ACP's `session/load` names.
fn open_session(
    cli: &Cli,
    store: &Store,
    cwd: &str,
    opening: Opening,
) -> Result<(Session, SessionFile), Coded> {
    let (id, fork) = match opening {
        Opening::Continue { id, fork } => (id, fork),
        Opening::Load { id } => (id, false),
        Opening::New => {
            let mut session = Session::new(session::new_id(), cwd.to_owned(), cli.model.clone());
            // Kept in the header (written with the first entry) so that a
            // later --continue resumes with the mode the session began with.
            session.header.permission_mode = cli.permission_mode;
            session.header.thinking_level = cli.thinking.filter(|l| *l != ThinkingLevel::Off);
            let file = store.create(session.header.clone());
            return Ok((session, file));
        }
    };
    let id = if id.is_empty() {
        // Like Claude Code and pi: the latest session of this directory,
        // not whatever was used last anywhere.
        store.latest_in(cwd).code(ErrorCode::Internal)?.ok_or_else(|| {
            Coded::new(
                ErrorCode::NotFound,
                format!(
                    "no session to continue in {cwd}; `rpc sessions --all` lists the sessions of every directory, and `rpc --continue <id>` resumes one"
                ),
            )
        })?
    } else {
        id
    };
    let (session, file) = store.open(&id)?;
    if !fork {
        return Ok((session, file));
    }
    // The original's lock is held while it is copied, then released.
    store
        .fork(&session, session.messages.len())
        .with_context(|| format!("cannot fork session {id}"))
        .code(ErrorCode::Internal)
}

/// A resumed session works where it was started, unless `--cwd` says
/// otherwise; if that directory is gone, in the current one (and says so).
pub(crate) fn resumed_cwd(session: &Session, current: PathBuf) -> PathBuf {
    let stored = Path::new(&session.header.cwd);
    match stored.canonicalize() {
        Ok(dir) if dir.is_dir() => dir,
        _ => {
            tracing::warn!(
                "session {} was started in {}, which is no longer a directory; working in {} instead",
                session.header.id,
                stored.display(),
                current.display()
            );
            current
        }
    }
}

/// `--model`, `--permission-mode` and `--thinking` given with `--continue` replace the
/// session's own, and are recorded so the next resume keeps them.
fn apply_overrides(cli: &Cli, session: &mut Session, file: &mut SessionFile) -> anyhow::Result<()> {
    if let Some(model) = &cli.model {
        if session.model.as_ref() != Some(model) {
            file.append(&Entry::ModelChange {
                ts: session::now(),
                model: model.clone(),
            })?;
            session.model = Some(model.clone());
        }
    }
    if let Some(mode) = cli.permission_mode {
        if session.permission_mode != Some(mode) {
            file.append(&Entry::PermissionMode {
                ts: session::now(),
                mode,
            })?;
        }
    }
    if let Some(level) = cli.thinking {
        if session.thinking_level != level {
            file.append(&Entry::ThinkingLevel {
                ts: session::now(),
                level,
            })?;
        }
    }
    Ok(())
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

/// The session store the flags point at, for the subcommands that manage
/// it; unlike start-up, it creates nothing.
pub fn store(cli: &Cli) -> Result<Store, Coded> {
    Ok(Store::new(data_dir(cli)?.join("sessions")))
}

/// `--data-dir`, else `$AGENT_RPC_HOME`, else `$XDG_DATA_HOME/agent-rpc`,
/// else `~/.local/share/agent-rpc`.
fn data_dir(cli: &Cli) -> Result<PathBuf, Coded> {
    let dir = if let Some(d) = &cli.data_dir {
        d.clone()
    } else if let Some(d) = env_nonempty("AGENT_RPC_HOME") {
        PathBuf::from(d)
    } else if let Some(d) = env_nonempty("XDG_DATA_HOME").filter(|d| d.starts_with('/')) {
        PathBuf::from(d).join("agent-rpc")
    } else if let Some(home) = env_nonempty("HOME") {
        PathBuf::from(home).join(".local/share/agent-rpc")
    } else {
        return Err(Coded::new(
            ErrorCode::InvalidParams,
            "cannot find a data directory: pass --data-dir or set AGENT_RPC_HOME",
        ));
    };
    std::path::absolute(&dir)
        .with_context(|| format!("data directory {} is not usable", dir.display()))
        .code(ErrorCode::InvalidParams)
}
