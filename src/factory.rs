//! The one session factory both front ends stand on: from flags to a
//! host's [`Parts`].
//!
//! `Factory` is built once per process from the flags (directories,
//! config, providers, the configured MCP servers); each session is then
//! one `Factory::session` call: the native front end makes one at start,
//! the ACP front end one per `session/new` or `session/load`. A start-up
//! failure is a [`Coded`] error; each front end reports it its own way.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::cli::Cli;
use crate::commands::Commands;
use crate::config::{self, env_nonempty, Config};
use crate::context::{PromptConfig, SessionPrompt};
use crate::error::{Coded, WithCode};
use crate::host::{Parts, Settings};
use crate::permissions::Gate;
use crate::protocol::{ErrorCode, Mode, ThinkingLevel};
use crate::provider::{manifest, Providers, Timeouts};
use crate::session::{self, Entry, Session, SessionFile, Store};

/// Exit status for a start-up failure.
pub(crate) const EXIT_STARTUP: i32 = 2;

/// How long an extension has to finish a cancelled request before it is
/// killed. Short, because abort must end the turn within 200 ms.
const CANCEL_GRACE: Duration = Duration::from_millis(100);

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

/// From flags to the host's parts, step by step; each step's error carries
/// the code the start-up `error` frame shows.
/// The factory comes back too: its subagents are stopped when the host
/// ends (`Factory::stop_subagents`).
pub(crate) fn prepare(cli: &Cli) -> Result<(Arc<Factory>, Parts), Coded> {
    let shared = Factory::new(cli)?;
    let opening = match &cli.continue_session {
        None => Opening::New,
        Some(id) => Opening::Continue {
            id: id.clone(),
            fork: cli.fork,
        },
    };
    let cwd = shared.cwd.clone();
    let parts = shared.session(cli, cwd, cli.cwd.is_some(), opening, Vec::new())?;
    Ok((shared, parts))
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
    /// A session already open and locked (ACP `session/fork` makes one
    /// with the store): taken as it is, like a loaded one, without letting
    /// go of its lock in between.
    Opened(Box<(Session, SessionFile)>),
}

/// What every session of the process shares, built once from the flags:
/// one store, one config, one set of providers (extensions start once).
pub(crate) struct Factory {
    /// `--cwd` or the current directory, canonical.
    pub cwd: PathBuf,
    data_dir: PathBuf,
    config: Config,
    prompt_config: PromptConfig,
    pub providers: Arc<Providers>,
    env_remove: Arc<Vec<String>>,
    /// The config's and `--mcp-config`'s servers, which every session gets.
    mcp_servers: Vec<crate::mcp::ServerSpec>,
    /// The flags, for the subagent sessions opened later.
    cli: Cli,
    /// The process's open subagent sessions.
    pub hub: Arc<crate::agents::hub::Hub>,
    /// The config's external ACP agents (`[agents.<name>]`), one process
    /// each, started on first use and shared by every session.
    pub external_agents: Vec<Arc<crate::agents::external::ExternalAgent>>,
    /// The `[sandbox]` policy every session's sandbox applies.
    sandbox_policy: Arc<crate::sandbox::Policy>,
    /// The mode a session starts in (`--sandbox`, else the config).
    sandbox_mode: crate::protocol::SandboxMode,
    /// The policy hooks every session runs (`--hooks`, `[hooks] file`).
    hooks: Arc<crate::hooks::HookConfig>,
}

impl Factory {
    pub(crate) fn new(cli: &Cli) -> Result<Arc<Self>, Coded> {
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
        let env_remove = Arc::new(secret_vars(&providers, &config.env_keep()));
        let sandbox_policy = Arc::new(sandbox_policy(&config, &data_dir));
        let sandbox_mode = crate::sandbox::default_mode(cli.sandbox, config.sandbox.mode);
        let hooks = Arc::new(hook_config(cli, &config, &cwd)?);
        let hub = crate::agents::hub::Hub::new(subagent_limits(&config)?);
        let external_agents = config
            .agents
            .iter()
            .map(|(name, agent)| {
                let agent = crate::agents::external::ExternalAgent::new(
                    name.clone(),
                    agent.clone(),
                    env_remove.clone(),
                );
                Arc::new(agent)
            })
            .collect();
        Ok(Arc::new(Self {
            cwd,
            data_dir,
            config,
            prompt_config,
            providers,
            env_remove,
            mcp_servers,
            cli: cli.clone(),
            hub,
            external_agents,
            sandbox_policy,
            sandbox_mode,
            hooks,
        }))
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
        self: &Arc<Self>,
        cli: &Cli,
        cwd: PathBuf,
        cwd_fixed: bool,
        opening: Opening,
        session_mcp: Vec<crate::mcp::ServerSpec>,
    ) -> Result<Parts, Coded> {
        let store = self.store();
        let providers = self.providers.clone();
        let continuing = matches!(opening, Opening::Continue { .. });
        let loading = matches!(opening, Opening::Load { .. } | Opening::Opened(_));
        let (mut session, mut file) = open_session(cli, &store, &cwd.to_string_lossy(), opening)?;
        let mut cwd = cwd;
        if continuing {
            apply_overrides(cli, &mut session, &mut file).code(ErrorCode::Internal)?;
        }
        if (continuing || loading) && !cwd_fixed {
            cwd = session::resumed_cwd(&session, cwd);
        }
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
        let commands = Commands::discover(cwd.clone(), config::default_dir());
        let delegation = Some(self.delegation(&cwd));
        let sandbox = Arc::new(crate::sandbox::SessionSandbox::new(
            self.sandbox_mode,
            cwd.clone(),
            self.sandbox_policy.clone(),
        ));
        let hooks = self.session_hooks(&cwd, &session, &file, Some(sandbox.clone()), false);
        let config = &self.config;
        Ok(Parts {
            gate,
            context,
            commands,
            hooks,
            settings: self.settings(
                cwd,
                cwd_fixed,
                crate::protocol::BudgetResponse {
                    max_turns: cli.max_turns.or(config.budget.max_turns),
                    budget_usd: cli.max_budget_usd.or(config.budget.max_usd),
                },
            ),
            store,
            session,
            file,
            providers,
            mcp_servers: merge_mcp(&self.mcp_servers, session_mcp),
            backends: crate::tools::Backends::local_sandboxed(
                self.env_remove.clone(),
                Some(sandbox),
            ),
            delegation,
            only_tools: None,
            shared_mcp: None,
        })
    }

    /// The configured hooks as one session runs them: in its cwd, under
    /// its sandbox, told its id and file.
    fn session_hooks(
        &self,
        cwd: &Path,
        session: &Session,
        file: &SessionFile,
        sandbox: Option<Arc<crate::sandbox::SessionSandbox>>,
        subagent: bool,
    ) -> Arc<crate::hooks::Hooks> {
        let info = crate::hooks::SessionInfo {
            cwd: cwd.to_owned(),
            session_id: session.header.id.clone(),
            transcript_path: file.path().to_owned(),
            env_remove: self.env_remove.clone(),
            sandbox,
            subagent,
        };
        Arc::new(crate::hooks::Hooks::new(self.hooks.clone(), info))
    }

    /// How a host runs a session in `cwd` with `budget`: the flags, else
    /// the config.
    fn settings(
        &self,
        cwd: PathBuf,
        cwd_fixed: bool,
        budget: crate::protocol::BudgetResponse,
    ) -> Settings {
        let (cli, config) = (&self.cli, &self.config);
        Settings {
            cwd: cwd.to_string_lossy().into_owned(),
            cwd_path: cwd,
            cwd_fixed,
            env_remove: self.env_remove.clone(),
            max_rounds: cli.max_rounds,
            budget,
            idle_timeout: Duration::from_secs(cli.provider_idle_timeout),
            compaction: crate::host::CompactionSettings {
                auto: !cli.no_auto_compaction && config.compaction.auto != Some(false),
                forced_off: cli.no_auto_compaction,
                reserve: config.compaction.reserve_tokens,
                keep_cap: config
                    .compaction
                    .keep_tokens
                    .unwrap_or(crate::compaction::KEEP_CAP),
            },
        }
    }

    /// Closes the open subagent sessions and stops the external agents
    /// (the process is exiting).
    pub(crate) async fn stop_subagents(&self) {
        self.hub.shutdown().await;
        for agent in &self.external_agents {
            agent.shutdown();
        }
    }

    /// The agents a session in `cwd` may hand tasks to: the definitions
    /// found for it (and the built-in `general`).
    fn delegation(self: &Arc<Self>, cwd: &Path) -> crate::host::Delegate {
        let delegation = crate::agents::Delegation {
            children: self.clone(),
            external: self.external_agents.clone(),
            definitions: crate::agents::definitions::discover(
                cwd,
                config::default_dir().as_deref(),
            ),
        };
        Box::new(move |mcp| Arc::new(delegation.source(mcp)))
    }

    /// A subagent's session: a new one, or the stored child `spec.resume`
    /// of the same parent. It works in the parent's directory with the
    /// parent's backends, in a mode never wider than the parent's, and has
    /// no `task` tool of its own.
    pub(crate) fn child_session(
        &self,
        spec: &crate::agents::inprocess::ChildSpec<'_>,
    ) -> Result<Parts, Coded> {
        let (run, def) = (spec.run, spec.def);
        let store = self.store();
        let cwd = run.cwd.to_path_buf();
        let (mut session, file) = self.open_child(&store, spec)?;
        if session.model.is_none() {
            session.model = self.providers.default_model_now();
        }
        let mode = crate::agents::inprocess::child_mode(run.mode, def.permission_mode);
        session.permission_mode = Some(mode);
        let gate = Arc::new(run.parent.gate.child(mode, vec![cwd.clone()]));
        let mut prompt_config = self.prompt_config.clone();
        let append = [prompt_config.append.take(), Some(def.prompt.clone())];
        let append: Vec<String> = append
            .into_iter()
            .flatten()
            .filter(|a| !a.is_empty())
            .collect();
        prompt_config.append = Some(append.join("\n\n")).filter(|a| !a.is_empty());
        let context = SessionPrompt::start(prompt_config, cwd.clone(), mode);
        let hooks = self.session_hooks(&cwd, &session, &file, run.backends.sandbox.clone(), true);
        Ok(Parts {
            gate,
            context,
            hooks,
            commands: Commands::discover(cwd.clone(), None),
            settings: self.settings(
                cwd,
                true,
                crate::protocol::BudgetResponse {
                    max_turns: def.max_turns,
                    budget_usd: def.budget_usd,
                },
            ),
            store,
            session,
            file,
            providers: self.providers.clone(),
            mcp_servers: Vec::new(),
            backends: run.backends.clone(),
            delegation: None,
            only_tools: def.tools.clone(),
            shared_mcp: spec.mcp.clone(),
        })
    }
}

impl Factory {
    /// The stored child `spec.resume` (which must be the calling session's
    /// own child), or a new child session whose header names its parent.
    fn open_child(
        &self,
        store: &Store,
        spec: &crate::agents::inprocess::ChildSpec<'_>,
    ) -> Result<(Session, SessionFile), Coded> {
        let (run, def) = (spec.run, spec.def);
        if let Some(id) = spec.resume {
            let (session, file) = store.open(id)?;
            if session.header.parent_session_id.as_deref() != Some(&run.parent.session_id) {
                return Err(Coded::new(
                    ErrorCode::NotFound,
                    format!("session {id} is not a subagent of this session"),
                ));
            }
            return Ok((session, file));
        }
        let model = self.child_model(def).or_else(|| run.parent.model.clone());
        let cwd = run.cwd.to_string_lossy().into_owned();
        let mut session = Session::new(session::new_id(), cwd, model);
        let header = &mut session.header;
        header.parent_session_id = Some(run.parent.session_id.clone());
        header.parent_tool_call_id = Some(run.parent.tool_call_id.clone());
        header.agent = Some(def.name.clone());
        header.permission_mode = Some(run.mode);
        let file = store.create(session.header.clone());
        Ok((session, file))
    }

    /// The model a definition names, unless it is one of Claude Code's
    /// aliases (`sonnet`, `opus`, `haiku`) that names no model here: such
    /// a file, written for Claude Code, runs on the parent's model instead
    /// of failing every call.
    fn child_model(&self, def: &crate::agents::definitions::Definition) -> Option<String> {
        let model = def.model.as_deref()?;
        let alias = matches!(model, "sonnet" | "opus" | "haiku");
        if alias && self.providers.check_model_quick(model).is_err() {
            tracing::info!(
                "agent {}: model {model:?} is Claude Code's alias; using the parent's model",
                def.name
            );
            return None;
        }
        Some(model.to_owned())
    }
}

impl crate::agents::Children for Factory {
    fn child_session(
        &self,
        spec: &crate::agents::inprocess::ChildSpec<'_>,
    ) -> Result<Parts, Coded> {
        Factory::child_session(self, spec)
    }

    fn hub(&self) -> &Arc<crate::agents::hub::Hub> {
        &self.hub
    }

    fn price(&self, model: &str) -> Option<crate::provider::http::catalog::Price> {
        self.providers.price(model)
    }
}

/// `[subagents]` over the defaults.
/// The hooks files' commands; a bad file stops start-up, naming the file
/// and the JSON path. `[hooks] file` is relative to the config file (`~`
/// expands to the home directory).
fn hook_config(cli: &Cli, config: &Config, cwd: &Path) -> Result<crate::hooks::HookConfig, Coded> {
    let home = env_nonempty("HOME").map(PathBuf::from);
    let from_config = config
        .hooks
        .file
        .as_ref()
        .map(|f| match (f.strip_prefix("~"), &home) {
            (Ok(rest), Some(home)) => home.join(rest),
            _ => match &config.path {
                Some(p) if f.is_relative() => p.parent().unwrap_or(Path::new(".")).join(f),
                _ => f.clone(),
            },
        });
    crate::hooks::config::load(
        cli.hooks.as_deref(),
        from_config.as_deref(),
        cwd,
        cli.trust_project_hooks,
    )
    .code(ErrorCode::InvalidParams)
}

/// A value of 0 (or a timeout that is not a positive number of seconds) is
/// refused, naming the key, rather than quietly replaced.
fn subagent_limits(config: &Config) -> Result<crate::agents::hub::Limits, Coded> {
    let defaults = crate::agents::hub::Limits::default();
    let sub = &config.subagents;
    let refuse = |key: &str, why: &str| {
        let file = config
            .path
            .as_deref()
            .map_or_else(|| "the config file".to_owned(), |p| p.display().to_string());
        Coded::new(
            ErrorCode::InvalidParams,
            format!("{file}: [subagents] {key} {why}"),
        )
    };
    let count = |value: Option<usize>, default: usize, key: &str| match value {
        Some(0) => Err(refuse(key, "must be at least 1")),
        v => Ok(v.unwrap_or(default)),
    };
    let idle_timeout = match sub.idle_timeout {
        None => defaults.idle_timeout,
        Some(s) => Duration::try_from_secs_f64(s)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| refuse("idle_timeout", "must be a positive number of seconds"))?,
    };
    Ok(crate::agents::hub::Limits {
        max_parallel: count(sub.max_parallel, defaults.max_parallel, "max_parallel")?,
        max_sessions: count(sub.max_sessions, defaults.max_sessions, "max_sessions")?,
        idle_timeout,
    })
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
        skills: !cli.no_skills && config.skills != Some(false),
        skill_dirs: config::skill_dirs(),
    })
}

/// `--cwd` or the current directory, canonical.
pub(crate) fn working_dir(cli: &Cli) -> Result<PathBuf, Coded> {
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
        Opening::Opened(opened) => return Ok(*opened),
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
/// `*_API_KEY`, `*_TOKEN` or `*_SECRET` (`GITHUB_TOKEN`, `AWS_SECRET`...),
/// minus those `[shell] env_keep` lists. Tool processes (bash, MCP stdio
/// servers) do not inherit them.
fn secret_vars(providers: &Providers, keep: &[String]) -> Vec<String> {
    let mut names = providers.key_vars();
    for (name, _) in std::env::vars_os() {
        if let Some(name) = name.to_str() {
            if is_secret_name(name) && !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
    }
    names.retain(|n| !keep.contains(n));
    names
}

/// A variable name that says it holds a credential.
fn is_secret_name(name: &str) -> bool {
    ["_API_KEY", "_TOKEN", "_SECRET"]
        .iter()
        .any(|suffix| name.ends_with(suffix))
}

/// The `[sandbox]` table with `~` expanded, and the default `deny_read`
/// (with the host's own config and data directories) where it names none.
fn sandbox_policy(config: &Config, data_dir: &Path) -> crate::sandbox::Policy {
    let home = env_nonempty("HOME").map(PathBuf::from);
    let expand = |p: &PathBuf| match (p.strip_prefix("~"), &home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => p.clone(),
    };
    let deny_read = match &config.sandbox.deny_read {
        Some(paths) => paths.iter().map(expand).collect(),
        None => {
            let mut own: Vec<PathBuf> = config::default_dir().into_iter().collect();
            own.push(data_dir.to_path_buf());
            crate::sandbox::Policy::default_deny_read(home.as_deref(), &own)
        }
    };
    crate::sandbox::Policy {
        writable_roots: config.sandbox.writable_roots.iter().map(expand).collect(),
        deny_read,
        network: config.sandbox.network,
    }
}

/// The session store the flags point at, for the subcommands that manage
/// it; unlike start-up, it creates nothing.
pub(crate) fn store(cli: &Cli) -> Result<Store, Coded> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(toml: &str) -> Result<crate::agents::hub::Limits, Coded> {
        let config = Config {
            subagents: toml::from_str(toml).unwrap(),
            ..Config::default()
        };
        subagent_limits(&config)
    }

    #[test]
    fn subagent_limits_refuse_zero_and_bad_timeouts_naming_the_key() {
        let ok = limits("max_parallel = 2\nidle_timeout = 0.5").unwrap();
        assert_eq!(ok.max_parallel, 2);
        assert_eq!(ok.max_sessions, 8);
        assert_eq!(ok.idle_timeout, Duration::from_millis(500));
        for (toml, key) in [
            ("max_parallel = 0", "max_parallel must be at least 1"),
            ("max_sessions = 0", "max_sessions must be at least 1"),
            ("idle_timeout = 0", "idle_timeout must be a positive"),
            ("idle_timeout = -3", "idle_timeout must be a positive"),
        ] {
            let err = limits(toml).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidParams);
            assert!(
                err.message.contains(&format!("[subagents] {key}")),
                "{}",
                err.message
            );
        }
    }
}
