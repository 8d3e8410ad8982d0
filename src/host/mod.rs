//! The dispatch loop: one `select!` over commands, turn reports, answers
//! computed by tasks, signals and the stdout-closed notice. It owns all
//! host state.
//!
//! Nothing in the loop awaits a turn or a provider: turns run as tasks and
//! report back over `turn_rx`; slow reads (`get_available_models`,
//! `list_sessions`, a `set_model` that must wait for an extension) answer
//! from their own tasks over `deferred_rx`. That is what keeps every
//! read-only command fast in the middle of a stream.
//!
//! The host speaks in types only: it reads [`Submission`]s (a typed
//! command and where its answer goes, `link.rs`) and writes typed frames to
//! its front end's [`Sink`]. Which wire they came from it never knows.
//!
//! - `link`: the command channel, [`Reply`] and [`HostHandle`].
//! - [`pending`]: the ledger of answers still owed (every command is in it
//!   from the moment it is read until it is answered, with its reply).
//! - `settings`: the one owner of the session's settings.
//! - `handlers/`: one function per command, grouped by area.
//! - `turn`: starting turns, applying their reports, the ordered end.
//! - `memory`: a host driven in memory, and `tests`: the host's logic
//!   checked through it.

mod handlers;
mod hooks;
mod link;
#[cfg(test)]
mod memory;
mod model_watch;
pub(crate) mod pending;
mod settings;
mod signals;
#[cfg(test)]
mod tests;
mod turn;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::commands::{Commands, Expansion};
use crate::context::SessionPrompt;
use crate::engine::TurnMsg;
use crate::error::Coded;
use crate::protocol::{Dropped, Frame, PromptParams, Response, ResponseFrame};
use crate::provider::Providers;
use crate::session::{Session, SessionFile, Store};
use crate::sink::Sink;
pub(crate) use link::{channel, Answer, HostGone, HostHandle, Reply, Submission};
use pending::{Awaits, Pending, Token};
pub(crate) use settings::SessionSettings;
pub(crate) use signals::Signals;

/// How long a cancelled turn may take to report before the host stops
/// waiting for it on exit. Turns normally report within the cancel grace.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// How the host runs its sessions: from the flags and the config, except
/// the working directory, which follows a `switch_session` or `fork` into
/// another session's (unless `--cwd` pinned it), and `compaction.forced_off`,
/// which a `set_auto_compaction` lifts.
pub(crate) struct Settings {
    pub cwd: String,
    /// The same directory as a path, for tools.
    pub cwd_path: std::path::PathBuf,
    /// `--cwd` was given: a session switched to works here too, not in
    /// its own directory.
    pub cwd_fixed: bool,
    /// Variables tool processes must not inherit (API keys).
    pub env_remove: Arc<Vec<String>>,
    pub max_rounds: u32,
    pub idle_timeout: Duration,
    pub compaction: CompactionSettings,
    /// The session's limits (flags, else config; `set_budget` changes them).
    pub budget: crate::protocol::BudgetResponse,
}

/// Compaction settings from the config and flags.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompactionSettings {
    /// The default for sessions that never ran `set_auto_compaction`.
    pub auto: bool,
    /// `--no-auto-compaction`: off for this process whatever the session says.
    pub forced_off: bool,
    pub reserve: Option<u64>,
    pub keep_cap: u64,
}

/// A prompt or follow-up waiting for its turn: behind the running turn, or
/// behind a `set_model` sent before it that is still being checked.
struct Queued {
    token: Token,
    /// As the client sent it (an abort lists its message as typed).
    params: PromptParams,
    /// What its message is as a slash command.
    expansion: Expansion,
}

/// A queued prompt whose model is being checked by a task (its extension
/// is still starting) before anything of it is stored.
struct Reaching {
    token: Token,
    params: PromptParams,
    expansion: Expansion,
    /// The session's model when the check began: if a `set_model` changed
    /// it meanwhile, the check is done again for the new one.
    model: Option<String>,
}

/// A prompt whose `UserPromptSubmit` hooks run in a task, before anything
/// of it is stored.
struct Hooking {
    token: Token,
    /// Expanded (a slash command's text), without the hooks' context yet.
    params: PromptParams,
    /// The slash command as typed, when it was one.
    typed: Option<crate::session::CommandLine>,
    /// Stops the hooks (abort, exit).
    cancel: CancellationToken,
}

/// The turn in flight.
struct Running {
    prompt_id: String,
    /// The `prompt` or `follow_up` that started it.
    token: Token,
    cancel: CancellationToken,
    steer: mpsc::UnboundedSender<String>,
    /// `abort` commands waiting for this turn to end, and what each dropped.
    aborts: Vec<(Token, Vec<Dropped>)>,
    /// Follow-ups taken out of the queue by an abort, answered after the turn.
    dropped: Vec<Token>,
    /// The first failure to write one of this turn's messages.
    persist_error: Option<String>,
    /// The turn is compacting the history (`get_state.compacting`).
    compacting: bool,
}

/// A `compact` command running in a task.
struct Compacting {
    token: Token,
    cancel: CancellationToken,
    /// `abort` commands waiting for it to stop, and what each dropped.
    aborts: Vec<(Token, Vec<Dropped>)>,
}

/// A `set_model` whose check runs in a task; applied in arrival order
/// whatever order the checks finish in.
struct ModelCheck {
    token: Token,
    model: String,
    result: Option<anyhow::Result<()>>,
}

/// Answers computed off the loop, applied back on it.
enum Deferred {
    /// A finished answer to a registered command.
    Answer {
        token: Token,
        answer: Result<Response, Coded>,
    },
    /// A `set_model` check finished.
    ModelChecked {
        token: Token,
        result: anyhow::Result<()>,
    },
    /// The check of a prompt's model finished: the model it runs on, or why
    /// it cannot run.
    Reached {
        token: Token,
        result: Result<String, Coded>,
    },
    /// The default model, once the extensions it depends on reported.
    DefaultModel(String),
    /// A prompt's `UserPromptSubmit` hooks finished.
    Hooked {
        token: Token,
        outcome: crate::hooks::Outcome,
    },
    /// A `compact` task finished (or was aborted).
    Compacted {
        token: Token,
        result: Result<crate::engine::compaction::Outcome, crate::engine::compaction::Failure>,
        tokens_before: u64,
    },
}

pub(crate) struct Host {
    settings: Settings,
    /// The session's system prompt: read at its start, rebuilt when the
    /// permission mode changes.
    context: SessionPrompt,
    /// The session's slash commands: found when it starts, like the
    /// context files.
    commands: Commands,
    gate: Arc<crate::permissions::Gate>,
    /// The session's policy hooks (`src/hooks/`).
    hooks: Arc<crate::hooks::Hooks>,
    /// What `SessionStart` hooks said for the model, waiting for the
    /// first prompt to carry it.
    start_context: Vec<String>,
    out: Sink,
    providers: Arc<Providers>,
    store: Arc<Store>,
    session: Session,
    file: SessionFile,
    model: watch::Sender<Option<String>>,
    /// The settings as front ends see them (`settings.rs`).
    published: watch::Sender<SessionSettings>,
    pending: Pending,
    turn: Option<Running>,
    /// Prompts and follow-ups waiting to run, in order.
    queue: VecDeque<Queued>,
    /// `set_model` checks still running, in arrival order.
    model_checks: VecDeque<ModelCheck>,
    /// The next prompt, while a task checks that its model can be reached.
    reaching: Option<Reaching>,
    /// The next prompt, while its `UserPromptSubmit` hooks run.
    hooking: Option<Hooking>,
    prompts_started: u64,
    turn_tx: mpsc::UnboundedSender<(String, TurnMsg)>,
    deferred_tx: mpsc::UnboundedSender<Deferred>,
    eof: bool,
    /// The `compact` command running in a task, if any.
    compacting: Option<Compacting>,
    /// The MCP servers, started when the host is (or its parent's, for a
    /// subagent's host); `None` without any.
    mcp: Option<Arc<crate::mcp::Manager>>,
    /// The servers are this host's to stop.
    owns_mcp: bool,
    /// Where the turns' tools come from (the built-ins, the MCP servers).
    tools: Arc<crate::tools::ToolSources>,
    /// The file system and processes the session's tools use.
    backends: crate::tools::Backends,
    /// Set when the host began to exit (shutdown, a signal, stdout gone):
    /// no more commands are read, and the running turn gets `EXIT_GRACE`.
    exit: Option<Instant>,
}

/// Receivers the loop selects over, split from `Host` so `select!` can
/// borrow them while handlers borrow the host.
pub(crate) struct HostChannels {
    turn_rx: mpsc::UnboundedReceiver<(String, TurnMsg)>,
    deferred_rx: mpsc::UnboundedReceiver<Deferred>,
}

/// Builds a session's `task` tool source once its MCP servers are known
/// (the factory's closure over `agents::Delegation`: the agents run hosts,
/// so the host cannot name them).
pub(crate) type Delegate =
    Box<dyn FnOnce(Option<Arc<crate::mcp::Manager>>) -> Arc<dyn crate::tools::ToolSource> + Send>;

/// What the host is started with: the services and the session in use
/// (built by `factory.rs` for either front end).
pub(crate) struct Parts {
    pub settings: Settings,
    pub context: SessionPrompt,
    pub commands: Commands,
    pub gate: Arc<crate::permissions::Gate>,
    /// The session's policy hooks.
    pub hooks: Arc<crate::hooks::Hooks>,
    pub providers: Arc<Providers>,
    pub store: Store,
    pub session: Session,
    pub file: SessionFile,
    /// The MCP servers to start (from the config and `--mcp-config`).
    pub mcp_servers: Vec<crate::mcp::ServerSpec>,
    /// The file system and processes the session's tools use (a front end
    /// may put the editor's in place of the local ones).
    pub backends: crate::tools::Backends,
    /// What the session may hand tasks to (the `task` tool); `None` for a
    /// subagent's own session.
    pub delegation: Option<Delegate>,
    /// Only these tools are offered (a subagent's definition); `None`: all.
    pub only_tools: Option<Vec<String>>,
    /// MCP servers already running (a subagent shares its parent's)
    /// instead of starting `mcp_servers`.
    pub shared_mcp: Option<Arc<crate::mcp::Manager>>,
}

impl Host {
    /// A host for `parts` writing to `out`. Its settings can be watched
    /// from the start ([`Host::settings`]).
    pub(crate) fn new(parts: Parts, out: Sink) -> (Self, HostChannels) {
        let Parts {
            settings,
            context,
            commands,
            gate,
            hooks,
            providers,
            store,
            session,
            file,
            mcp_servers,
            backends,
            delegation,
            only_tools,
            shared_mcp,
        } = parts;
        let started = (!mcp_servers.is_empty()).then(|| {
            let (events, mut rx) = mpsc::unbounded_channel();
            let out = out.clone();
            tokio::spawn(async move {
                while let Some(status) = rx.recv().await {
                    out.frame(&Frame::McpServerStatus(status)).await;
                }
            });
            crate::mcp::Manager::start(
                mcp_servers,
                crate::mcp::Options {
                    cwd: settings.cwd_path.clone(),
                    env_remove: settings.env_remove.clone(),
                    sandbox: backends.sandbox.clone(),
                    events,
                },
            )
        });
        // A subagent's host uses its parent's servers and leaves them
        // running when it ends.
        let owns_mcp = started.is_some();
        let mcp = started.or(shared_mcp);
        // The tool sources, in the order their tools are offered; a new
        // source is one line here.
        let mut sources: Vec<Arc<dyn crate::tools::ToolSource>> =
            vec![Arc::new(crate::tools::Builtins)];
        sources.extend(mcp.clone().map(|m| m as Arc<dyn crate::tools::ToolSource>));
        if let Some(delegate) = delegation {
            sources.push(delegate(mcp.clone()));
        }
        let tools = Arc::new(crate::tools::ToolSources::new(sources).only(only_tools));
        // What bash asks in the system prompt depends on the sandbox.
        let mut context = context;
        context.set_sandboxed(backends.sandbox_state().enforced);
        let (turn_tx, turn_rx) = mpsc::unbounded_channel();
        let (deferred_tx, deferred_rx) = mpsc::unbounded_channel();
        let (model, _) = watch::channel(session.model.clone());
        let (published, _) = watch::channel(SessionSettings {
            mode: gate.mode(),
            model: session.model.clone(),
            thinking: session.thinking_level,
            sandbox: backends.sandbox_state().mode,
        });
        let host = Host {
            settings,
            context,
            commands,
            gate,
            hooks,
            start_context: Vec::new(),
            out,
            providers,
            store: Arc::new(store),
            session,
            file,
            model,
            published,
            pending: Pending::default(),
            turn: None,
            queue: VecDeque::new(),
            model_checks: VecDeque::new(),
            reaching: None,
            hooking: None,
            prompts_started: 0,
            turn_tx,
            deferred_tx,
            eof: false,
            compacting: None,
            mcp,
            owns_mcp,
            tools,
            backends,
            exit: None,
        };
        let channels = HostChannels {
            turn_rx,
            deferred_rx,
        };
        (host, channels)
    }

    /// The session's settings, kept current for as long as the host runs.
    pub(crate) fn settings(&self) -> watch::Receiver<SessionSettings> {
        self.published.subscribe()
    }

    /// Runs until the host should exit; returns the process exit code.
    pub(crate) async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Submission>,
        mut channels: HostChannels,
        mut stdout_closed: oneshot::Receiver<std::io::Error>,
        mut signals: Signals,
    ) -> i32 {
        self.find_default_model();
        self.session_start().await;
        let mut stdout_open = true;
        tokio::spawn(model_watch::run(
            self.providers.clone(),
            self.model.subscribe(),
            self.out.clone(),
        ));
        loop {
            if self.ready_to_exit() {
                break;
            }
            let exit_deadline = self.exit.map(|at| at + EXIT_GRACE);
            tokio::select! {
                line = inbound.recv(), if !self.eof && self.exit.is_none() => match line {
                    Some(item) => self.on_submission(item).await,
                    None => self.on_eof(),
                },
                Some((prompt_id, msg)) = channels.turn_rx.recv() => {
                    self.on_turn_msg(prompt_id, msg).await;
                }
                Some(d) = channels.deferred_rx.recv() => self.on_deferred(d).await,
                _ = signals.next() => {
                    tracing::info!("signal received; shutting down");
                    self.begin_exit();
                }
                closed = &mut stdout_closed, if stdout_open => {
                    stdout_open = false;
                    if let Ok(e) = closed {
                        tracing::info!("stdout closed ({e}); aborting and exiting");
                        self.begin_exit();
                    }
                }
                _ = sleep_until(exit_deadline), if exit_deadline.is_some() => {
                    tracing::warn!("the running turn or an answer did not finish in time; exiting without it");
                    break;
                }
            }
        }
        self.finish().await
    }

    /// At EOF the host exits once every command read has been answered; on
    /// shutdown once the turn and the answering tasks are done (queued
    /// prompts are then answered as cancelled).
    fn ready_to_exit(&self) -> bool {
        if self.turn.is_some() || self.pending.tasks_running() {
            return false;
        }
        self.exit.is_some() || (self.eof && self.pending.is_empty())
    }

    /// Whether the host compacts on its own (at the threshold, on
    /// overflow): the session's own `set_auto_compaction`, else the config;
    /// `--no-auto-compaction` wins until a `set_auto_compaction` says
    /// otherwise. Derived, so it follows a `switch_session`, `fork` or
    /// `new_session` without being kept in step.
    fn auto_compaction(&self) -> bool {
        !self.settings.compaction.forced_off
            && self
                .session
                .auto_compaction
                .unwrap_or(self.settings.compaction.auto)
    }

    fn on_eof(&mut self) {
        tracing::debug!("end of input");
        self.eof = true;
        // Nobody is left to answer permission prompts: deny them instead of
        // letting a piped prompt hang.
        self.gate.close();
    }

    /// Stops taking commands and aborts the running turn.
    fn begin_exit(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.exit = Some(Instant::now());
        self.gate.close();
        if let Some(turn) = &self.turn {
            turn.cancel.cancel();
        }
        if let Some(c) = &self.compacting {
            c.cancel.cancel();
        }
        if let Some(h) = &self.hooking {
            h.cancel.cancel();
        }
    }

    /// A prompt is held before its turn: its model or its hooks are being
    /// checked in a task.
    fn holds_a_prompt(&self) -> bool {
        self.reaching.is_some() || self.hooking.is_some()
    }

    /// Persists, answers what is still owed, stops extensions and returns
    /// the exit code.
    async fn finish(mut self) -> i32 {
        // A turn that did not stop by the exit deadline is closed here as
        // aborted, so its prompt still gets agent_end and its response.
        if let Some(prompt_id) = self.turn.as_ref().map(|t| t.prompt_id.clone()) {
            self.end_turn(crate::engine::TurnOutcome {
                prompt_id,
                stop_reason: "aborted".into(),
                usage: Default::default(),
                last_call: None,
                rounds: 0,
                children_usd: 0.0,
                result: crate::engine::TurnResult::Cancelled,
                undelivered: Vec::new(),
            })
            .await;
        }
        for (open, answer) in self.pending.cancel_all("the host is shutting down") {
            self.deliver(open, answer).await;
        }
        if let Err(e) = self.file.sync() {
            tracing::error!("{e:#}");
        }
        if let Some(mcp) = self.mcp.as_ref().filter(|_| self.owns_mcp) {
            mcp.shutdown();
        }
        // The providers are the front end's to stop: an ACP session shares
        // them with the connection's other sessions.
        0
    }

    async fn on_submission(&mut self, item: Submission) {
        match item {
            Submission::Command { command, reply } => {
                let token = self.pending.register(reply, command.name());
                self.dispatch(token, command).await;
            }
            Submission::Invalid(err) => self.send(Frame::Error(err)).await,
        }
    }

    async fn send(&self, frame: Frame) {
        self.out.frame(&frame).await;
    }

    /// Answers with a response (`ok` unless it is a failed turn's), unless
    /// the command was answered already.
    async fn respond(&mut self, token: Token, body: Response) {
        self.answer(token, Ok(body)).await;
    }

    /// Answers with an error, unless the command was answered already.
    async fn reject(&mut self, token: Token, err: Coded) {
        self.answer(token, Err(err)).await;
    }

    /// Answers the command, unless it was answered already.
    async fn answer(&mut self, token: Token, answer: Answer) {
        if let Some(open) = self.pending.take(token) {
            self.deliver(open, answer).await;
        }
    }

    /// Sends an answer taken out of the ledger where its command wants it.
    async fn deliver(&self, open: pending::Open, answer: Answer) {
        let command = open.command;
        match open.reply {
            Reply::Wire(id) => {
                let frame = match answer {
                    Ok(body) => Frame::Response(ResponseFrame {
                        id,
                        command,
                        ok: body.ok(),
                        body,
                    }),
                    Err(err) => Frame::Error(err.frame(id, command)),
                };
                self.send(frame).await;
            }
            // Every frame sent before this one is queued already (sink
            // calls return once queued), so the caller sees them first.
            Reply::Call(tx) => {
                let _ = tx.send(answer);
            }
        }
    }

    /// Marks the command as answered by a task, which it hands its token.
    fn defer(&mut self, token: Token) -> (Token, mpsc::UnboundedSender<Deferred>) {
        self.pending.wait(token, Awaits::Task);
        (token, self.deferred_tx.clone())
    }

    async fn on_deferred(&mut self, d: Deferred) {
        match d {
            Deferred::Answer { token, answer } => self.answer(token, answer).await,
            Deferred::ModelChecked { token, result } => {
                if let Some(check) = self.model_checks.iter_mut().find(|c| c.token == token) {
                    check.result = Some(result);
                }
                self.apply_model_checks().await;
            }
            Deferred::Reached { token, result } => self.reached(token, result).await,
            Deferred::DefaultModel(model) => self.adopt_default_model(model).await,
            Deferred::Hooked { token, outcome } => self.hooked(token, outcome).await,
            Deferred::Compacted {
                token,
                result,
                tokens_before,
            } => self.compacted(token, result, tokens_before).await,
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
