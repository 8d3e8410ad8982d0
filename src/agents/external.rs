//! An external ACP agent run as a child process: the host is its ACP
//! client (`[agents.<name>]` in the config).
//!
//! One process per configured agent, started on first use and shared by
//! all the child sessions the `task` tool opens with it; a process that
//! died (crashed, or was stopped as hung) is started again on next use.
//! The wire is the ACP server's own JSON-RPC code (`jsonrpc.rs`), pointed the
//! other way: our requests (`initialize`, `session/new`, `session/load`,
//! `session/prompt`) wait there for their responses by id, and one reader
//! task sorts what the agent sends: responses to those waits, each
//! session's `session/update`s and `session/request_permission`s to the
//! call running that session (in the order they came), `fs/*` to the file
//! system when the config offers it, everything else refused.
//!
//! What the agent does reaches the parent's client as [`Nested`] frames:
//! its message chunks as text deltas (the last of them, after its last
//! tool call, are the answer), its thoughts as thinking deltas, its tool
//! calls as `tool_execution_*` frames. Its permission questions are
//! answered by the run's permission mode, or asked of the parent's client
//! through the parent's gate.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdout};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{ChildAnswer, ChildRun, Nested, Runner};
use crate::config::ExternalAgentConfig;
use crate::jsonrpc::{decode, Connection, Incoming, RpcError, RpcResult};
use crate::message::Usage;
use crate::process::{kill_group, ChildBuilder};
use crate::protocol::{
    Decision, Frame, Mode, PermissionCancelledFrame, PermissionRequestFrame, StreamEvent,
    ToolExecutionEndFrame, ToolExecutionStartFrame, ToolExecutionUpdateFrame,
};
use crate::tools::{BoxFuture, ToolUpdate};
use crate::transport::{Inbound, LineDecoder};

/// The longest line the agent may send; a longer one is skipped.
const MAX_LINE: usize = 64 * 1024 * 1024;
/// How much of the agent's stderr is kept for error messages.
const STDERR_TAIL: usize = 2048;
/// How long a cancelled prompt's response is waited for after
/// `session/cancel` (the parent's abort must end within 200 ms).
const CANCEL_GRACE: Duration = Duration::from_millis(150);
/// How long an aborted call waits for room to tell the parent's client
/// that its question is withdrawn.
const WITHDRAW_WAIT: Duration = Duration::from_millis(20);
/// How long a dead process's exit status and last stderr are waited for.
const EXIT_WAIT: Duration = Duration::from_secs(1);
/// Messages of one session queued for its call: room for a burst, and
/// beyond it the agent's output waits for the parent's client.
const ROUTE_CAPACITY: usize = 1024;
/// ACP tool kinds that only look: allowed in read-only mode.
const LOOKING_KINDS: [&str; 4] = ["read", "search", "think", "fetch"];

/// One `[agents.<name>]`: built from the config, started on first use.
pub(crate) struct ExternalAgent {
    name: String,
    config: ExternalAgentConfig,
    /// How long a call may go without a message from the agent.
    timeout: Duration,
    /// The host's secret variables, which the agent does not inherit.
    env_remove: Arc<Vec<String>>,
    /// The running process, if any (dead ones are replaced on next use).
    live: Mutex<Option<Arc<Proc>>>,
    /// Held while a process starts, so concurrent first calls start one.
    starting: tokio::sync::Mutex<()>,
}

/// Why a wait ended early.
enum Stop {
    /// The parent's turn was aborted.
    Cancelled,
    /// A sentence for the parent's model.
    Fault(String),
}

impl From<String> for Stop {
    fn from(s: String) -> Self {
        Stop::Fault(s)
    }
}

impl ExternalAgent {
    /// The agent `name` as configured; `env_remove` are the variables it
    /// must not inherit (the host's secrets, as bash gets them). Starts
    /// nothing.
    pub(crate) fn new(
        name: impl Into<String>,
        config: ExternalAgentConfig,
        env_remove: Arc<Vec<String>>,
    ) -> Self {
        let timeout = Duration::from_secs(config.timeout.max(1));
        ExternalAgent {
            name: name.into(),
            config,
            timeout,
            env_remove,
            live: Mutex::new(None),
            starting: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What the config says the agent is good at (for the model).
    pub(crate) fn description(&self) -> &str {
        &self.config.description
    }

    /// Kills the agent's process group, if it runs (the host exits). A
    /// later call would start it again.
    pub(crate) fn shutdown(&self) {
        if let Some(proc) = lock(&self.live).take() {
            proc.kill("the host stopped it".into());
        }
    }

    fn running(&self) -> Option<Arc<Proc>> {
        lock(&self.live)
            .as_ref()
            .filter(|p| !p.dead.is_cancelled())
            .cloned()
    }

    /// The live process, started (and initialized) if there is none.
    async fn process(&self, cwd: &Path, cancel: &CancellationToken) -> Result<Arc<Proc>, Stop> {
        if let Some(proc) = self.running() {
            return Ok(proc);
        }
        let _starting = tokio::select! {
            g = self.starting.lock() => g,
            () = cancel.cancelled() => return Err(Stop::Cancelled),
        };
        if let Some(proc) = self.running() {
            return Ok(proc);
        }
        let proc = self.spawn(cwd)?;
        let caps = &self.config;
        let params = json!({
            "protocolVersion": 1,
            "clientCapabilities": {
                "fs": {"readTextFile": caps.fs_read, "writeTextFile": caps.fs_write},
                "terminal": false,
            },
            "clientInfo": {"name": "agent-rpc", "version": env!("CARGO_PKG_VERSION")},
        });
        // Killed unless it completes initialize (a call abandoned meanwhile
        // leaves no process behind).
        let mut unready = Unready(Some(&proc));
        let (_, rx) = proc.cx.request("initialize", params).await;
        let init = self.reply(&proc, "initialize", rx, cancel).await?;
        unready.0 = None;
        let version = init.get("protocolVersion").and_then(Value::as_u64);
        if version != Some(1) {
            tracing::warn!(
                "agent {}: protocol version {version:?} (we speak 1)",
                self.name
            );
        }
        let load = init["agentCapabilities"]["loadSession"].as_bool() == Some(true);
        let _ = proc.load_session.set(load);
        *lock(&self.live) = Some(proc.clone());
        drop(unready);
        Ok(proc)
    }

    /// Starts the process and its reader tasks.
    fn spawn(&self, cwd: &Path) -> Result<Arc<Proc>, String> {
        let command = &self.config.command;
        let name = &self.name;
        let cannot = |e: std::io::Error| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "cannot start the agent {name}: the command `{command}` was not found \
                     (`[agents.{name}]` in the config sets it)"
                )
            } else {
                format!(
                    "cannot start the agent {name} (`{command}`, set in `[agents.{name}]`): {e}"
                )
            }
        };
        let (stdin_r, stdin_w) = std::io::pipe().map_err(cannot)?;
        let keep = &self.config.env_keep;
        let removed: Vec<String> = self
            .env_remove
            .iter()
            .filter(|v| !keep.contains(v))
            .cloned()
            .collect();
        let mut child = ChildBuilder::new(command)
            .args(&self.config.args)
            .current_dir(cwd)
            .own_group()
            .env_remove(&removed)
            .envs(&self.config.env)
            .stdio(stdin_r, Stdio::piped(), Stdio::piped())
            .spawn()
            .map_err(cannot)?;
        let (out, _writer, _closed) = crate::transport::spawn_writer(stdin_w);
        let proc = Arc::new(Proc {
            name: name.clone(),
            cx: Connection::new(out),
            pid: Mutex::new(child.id()),
            load_session: OnceLock::new(),
            sessions: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            heard: Mutex::new(Instant::now()),
            stderr: Arc::new(Mutex::new(String::new())),
            dead: CancellationToken::new(),
            why_dead: OnceLock::new(),
            fs_read: self.config.fs_read,
            fs_write: self.config.fs_write,
        });
        let stdout = child.stdout.take();
        let stderr = child
            .stderr
            .take()
            .map(|pipe| tokio::spawn(keep_stderr(name.clone(), pipe, proc.stderr.clone())));
        tokio::spawn(read_agent(proc.clone(), stdout, child, stderr));
        Ok(proc)
    }

    /// Waits for the response `rx` to our `method`, failing when the agent
    /// dies, says nothing for the timeout, or the run is cancelled.
    async fn reply(
        &self,
        proc: &Proc,
        method: &str,
        mut rx: oneshot::Receiver<RpcResult>,
        cancel: &CancellationToken,
    ) -> Result<Value, Stop> {
        loop {
            let deadline = proc.heard() + self.timeout;
            tokio::select! {
                answer = &mut rx => return match answer {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(Stop::Fault(format!(
                        "the agent {} refused {method}: {}",
                        self.name,
                        e.describe()
                    ))),
                    Err(_) => Err(Stop::Fault(self.exited(proc).await)),
                },
                () = cancel.cancelled() => return Err(Stop::Cancelled),
                () = tokio::time::sleep_until(deadline.into()) => {
                    if proc.heard().elapsed() >= self.timeout {
                        return Err(Stop::Fault(self.hung(proc)));
                    }
                }
            }
        }
    }

    /// The agent stopped talking: it is killed (the next call starts it
    /// again), and this is the sentence saying so.
    fn hung(&self, proc: &Proc) -> String {
        let why = format!(
            "the agent {} sent nothing for {} s and was stopped as hung \
             (`timeout` in `[agents.{}]` sets how long it may be silent)",
            self.name,
            self.timeout.as_secs(),
            self.name
        );
        proc.kill(why.clone());
        why
    }

    /// Why the process is gone, once the reader has found out.
    async fn exited(&self, proc: &Proc) -> String {
        let _ = tokio::time::timeout(EXIT_WAIT * 3, proc.dead.cancelled()).await;
        proc.why_dead
            .get()
            .cloned()
            .unwrap_or_else(|| format!("the agent {} stopped answering", self.name))
    }

    async fn run_inner(
        &self,
        session: Option<&str>,
        run: ChildRun<'_>,
    ) -> Result<ChildAnswer, String> {
        let aborted = |session_id: String, turn: &Turn| ChildAnswer {
            session_id,
            text: turn.answer(),
            stop_reason: "aborted".into(),
            ..ChildAnswer::default()
        };
        let turn = Turn::default();
        let proc = match self.process(run.cwd, run.cancel).await {
            Ok(proc) => proc,
            Err(Stop::Cancelled) => return Ok(aborted(session.unwrap_or("").into(), &turn)),
            Err(Stop::Fault(why)) => return Err(why),
        };
        let sid = match self.open(&proc, session, &run).await {
            Ok(sid) => sid,
            Err(Stop::Cancelled) => return Ok(aborted(session.unwrap_or("").into(), &turn)),
            Err(Stop::Fault(why)) => return Err(why),
        };
        let (tx, rx) = mpsc::channel(ROUTE_CAPACITY);
        {
            let mut routes = lock(&proc.routes);
            if routes.contains_key(&sid) {
                return Err(format!(
                    "the agent {}'s session {sid} is already running a task; wait for it to end",
                    self.name
                ));
            }
            routes.insert(sid.clone(), tx);
        }
        let mut route = Route {
            proc: &proc,
            sid: &sid,
            settled: false,
        };
        let params = json!({"sessionId": sid, "prompt": [{"type": "text", "text": run.prompt}]});
        let (_, response) = proc.cx.request("session/prompt", params).await;
        let mut prompt = Prompt {
            agent: self,
            proc: &proc,
            run: &run,
            sid: &sid,
            rx,
            turn,
            quiet_since: Instant::now(),
        };
        let outcome = prompt.drive(response).await;
        route.settled = true;
        match outcome {
            Ok(result) => Ok(ChildAnswer {
                session_id: sid.clone(),
                text: prompt.turn.answer(),
                stop_reason: result
                    .get("stopReason")
                    .and_then(Value::as_str)
                    .unwrap_or("end_turn")
                    .to_owned(),
                usage: usage_of(&result),
                cost_usd: None,
            }),
            Err(Stop::Cancelled) => Ok(aborted(sid.clone(), &prompt.turn)),
            Err(Stop::Fault(why)) => Err(why),
        }
    }

    /// The agent's session for this call: a new one, one the process has,
    /// or one it loads from its own storage.
    async fn open(
        &self,
        proc: &Proc,
        session: Option<&str>,
        run: &ChildRun<'_>,
    ) -> Result<String, Stop> {
        // ACP wants an absolute path.
        let dir = std::path::absolute(run.cwd).unwrap_or_else(|_| run.cwd.to_path_buf());
        let cwd = dir.to_string_lossy();
        let sid = match session {
            Some(id) if lock(&proc.sessions).contains_key(id) => return Ok(id.to_owned()),
            Some(id) => {
                if proc.load_session.get() != Some(&true) {
                    return Err(Stop::Fault(format!(
                        "the agent {}'s session {id} cannot be continued: its process no longer \
                         has it (the agent was restarted) and it cannot load sessions \
                         (no loadSession capability); start a new session instead",
                        self.name
                    )));
                }
                let params = json!({"sessionId": id, "cwd": cwd, "mcpServers": []});
                let (_, rx) = proc.cx.request("session/load", params).await;
                self.reply(proc, "session/load", rx, run.cancel).await?;
                id.to_owned()
            }
            None => {
                let params = json!({"cwd": cwd, "mcpServers": []});
                let (_, rx) = proc.cx.request("session/new", params).await;
                let made = self.reply(proc, "session/new", rx, run.cancel).await?;
                match made.get("sessionId").and_then(Value::as_str) {
                    Some(id) if !id.is_empty() => id.to_owned(),
                    _ => {
                        return Err(Stop::Fault(format!(
                            "the agent {} answered session/new without a sessionId",
                            self.name
                        )))
                    }
                }
            }
        };
        lock(&proc.sessions).insert(sid.clone(), dir.clone());
        Ok(sid)
    }
}

impl Drop for ExternalAgent {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Runner for ExternalAgent {
    fn run<'a>(
        &'a self,
        session: Option<&'a str>,
        run: ChildRun<'a>,
    ) -> BoxFuture<'a, Result<ChildAnswer, String>> {
        Box::pin(self.run_inner(session, run))
    }
}

/// A running agent process.
struct Proc {
    name: String,
    cx: Connection,
    /// Its process group; taken by the first kill, or once it is reaped
    /// and its leftovers killed, so a reused id is never signalled.
    pid: Mutex<Option<u32>>,
    /// `agentCapabilities.loadSession`, once `initialize` answered.
    load_session: OnceLock<bool>,
    /// The sessions this process has (made or loaded), with their cwd.
    sessions: Mutex<HashMap<String, PathBuf>>,
    /// Where each session's messages go while a call runs it.
    routes: Mutex<HashMap<String, mpsc::Sender<FromAgent>>>,
    /// When the agent last sent anything.
    heard: Mutex<Instant>,
    stderr: Arc<Mutex<String>>,
    /// Fired once the process is gone; `why_dead` says why.
    dead: CancellationToken,
    why_dead: OnceLock<String>,
    fs_read: bool,
    fs_write: bool,
}

impl Proc {
    fn heard(&self) -> Instant {
        *lock(&self.heard)
    }

    fn kill(&self, why: String) {
        let _ = self.why_dead.set(why);
        kill_group(lock(&self.pid).take());
        self.dead.cancel();
        self.cx.client_gone();
        lock(&self.routes).clear();
    }

    fn stderr_tail(&self) -> String {
        lock(&self.stderr).trim().to_owned()
    }
}

/// A message of the agent for the call running its session.
enum FromAgent {
    /// `session/update`'s `update`.
    Update(Value),
    /// `session/request_permission`, to answer under `id`.
    Permission { id: Value, params: Value },
}

/// Unregisters a call's session route when the call ends, however it ends.
/// A call dropped before its prompt ended (rather than cancelled through
/// its token) sends `session/cancel` on its way out.
struct Route<'a> {
    proc: &'a Proc,
    sid: &'a str,
    settled: bool,
}

impl Drop for Route<'_> {
    fn drop(&mut self) {
        lock(&self.proc.routes).remove(self.sid);
        if self.settled {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let cx = self.proc.cx.clone();
            let params = json!({"sessionId": self.sid});
            runtime.spawn(async move { cx.notify("session/cancel", params).await });
        }
    }
}

/// A process that has not completed `initialize` yet: killed if dropped.
struct Unready<'a>(Option<&'a Proc>);

impl Drop for Unready<'_> {
    fn drop(&mut self) {
        if let Some(proc) = self.0 {
            proc.kill("it did not complete initialize".into());
        }
    }
}

/// One `session/prompt` in flight.
struct Prompt<'a, 'r> {
    agent: &'a ExternalAgent,
    proc: &'a Proc,
    run: &'a ChildRun<'r>,
    sid: &'a str,
    rx: mpsc::Receiver<FromAgent>,
    turn: Turn,
    /// Since when the call waits on the agent (reset when we were the one
    /// waited for: a permission question answered by the parent).
    quiet_since: Instant,
}

impl Prompt<'_, '_> {
    /// Runs the prompt to its response, forwarding what the agent does.
    async fn drive(&mut self, mut response: oneshot::Receiver<RpcResult>) -> Result<Value, Stop> {
        let timeout = self.agent.timeout;
        loop {
            let since = self.proc.heard().max(self.quiet_since);
            tokio::select! {
                biased;
                () = self.run.cancel.cancelled() => return Err(self.cancel(response).await),
                message = self.rx.recv() => match message {
                    Some(message) => match self.handle(message).await {
                        Ok(()) => {}
                        Err(Stop::Cancelled) => return Err(self.cancel(response).await),
                        Err(fault) => return Err(fault),
                    },
                    None => return Err(Stop::Fault(self.crashed().await)),
                },
                answer = &mut response => return match answer {
                    Ok(Ok(result)) => Ok(result),
                    Ok(Err(e)) => Err(Stop::Fault(format!(
                        "the agent {} failed the task: {}",
                        self.agent.name,
                        e.describe()
                    ))),
                    Err(_) => Err(Stop::Fault(self.crashed().await)),
                },
                () = tokio::time::sleep_until((since + timeout).into()) => {
                    if self.proc.heard().max(self.quiet_since).elapsed() >= timeout {
                        return Err(Stop::Fault(self.agent.hung(self.proc)));
                    }
                }
            }
        }
    }

    async fn crashed(&self) -> String {
        let why = self.agent.exited(self.proc).await;
        format!("{why} (during the task)")
    }

    async fn handle(&mut self, message: FromAgent) -> Result<(), Stop> {
        match message {
            FromAgent::Update(update) => {
                for nested in self.turn.nested(&update) {
                    self.send(nested).await;
                }
                Ok(())
            }
            FromAgent::Permission { id, params } => {
                let outcome = self.permission(&params).await;
                let cancelled = outcome.is_none();
                let result = outcome.unwrap_or_else(|| json!({"outcome": "cancelled"}));
                self.proc
                    .cx
                    .respond(id, Ok(json!({ "outcome": result })))
                    .await;
                self.quiet_since = Instant::now();
                if cancelled && self.run.cancel.is_cancelled() {
                    return Err(Stop::Cancelled);
                }
                Ok(())
            }
        }
    }

    /// Sends a frame to the parent's client, unless the turn is aborted
    /// meanwhile (a stalled client must not hold up the abort).
    async fn send(&self, nested: Nested) {
        tokio::select! {
            _ = self.run.updates.send(ToolUpdate::Subagent(nested)) => {}
            () = self.run.cancel.cancelled() => {}
        }
    }

    /// `session/cancel`, then the prompt's response for a moment; what the
    /// agent says meanwhile still goes to the parent's client.
    async fn cancel(&mut self, mut response: oneshot::Receiver<RpcResult>) -> Stop {
        self.proc
            .cx
            .notify("session/cancel", json!({"sessionId": self.sid}))
            .await;
        let grace = async {
            loop {
                tokio::select! {
                    biased;
                    message = self.rx.recv() => match message {
                        Some(FromAgent::Update(update)) => {
                            for nested in self.turn.nested(&update) {
                                let _ = self.run.updates.try_send(ToolUpdate::Subagent(nested));
                            }
                        }
                        Some(FromAgent::Permission { id, .. }) => {
                            let cancelled = json!({"outcome": {"outcome": "cancelled"}});
                            self.proc.cx.respond(id, Ok(cancelled)).await;
                        }
                        None => return,
                    },
                    _ = &mut response => return,
                }
            }
        };
        let _ = tokio::time::timeout(CANCEL_GRACE, grace).await;
        Stop::Cancelled
    }

    /// The answer to a permission question (`outcome`'s value), or `None`
    /// for "cancelled" (the turn was aborted while the parent was asked).
    async fn permission(&self, params: &Value) -> Option<Value> {
        let call = params.get("toolCall").unwrap_or(&Value::Null);
        let id = str_of(call, "toolCallId").unwrap_or_default().to_owned();
        let known = self.turn.tools.get(&id);
        let kind = str_of(call, "kind")
            .map(str::to_owned)
            .or_else(|| known.and_then(|t| t.kind.clone()));
        let title = str_of(call, "title")
            .map(str::to_owned)
            .or_else(|| known.map(|t| t.title.clone()))
            .unwrap_or_default();
        let input = call
            .get("rawInput")
            .cloned()
            .or_else(|| known.map(|t| t.input.clone()))
            .unwrap_or_else(|| json!({}));
        let mut locations = paths_of(call);
        if locations.is_empty() {
            locations = known.map(|t| t.locations.clone()).unwrap_or_default();
        }
        let tool = tool_name(kind.as_deref(), &title);
        let kind = kind.as_deref().unwrap_or("other");
        let options = params.get("options").and_then(Value::as_array);
        let options = options.map(Vec::as_slice).unwrap_or_default();
        let decision = match self.run.mode {
            Mode::AllowAll => Decision::AllowOnce,
            Mode::ReadOnly if LOOKING_KINDS.contains(&kind) => Decision::AllowOnce,
            Mode::ReadOnly => Decision::Deny,
            Mode::AcceptEdits
                if kind == "edit"
                    && !locations.is_empty()
                    && locations.iter().all(|p| inside(self.run.cwd, p)) =>
            {
                Decision::AllowOnce
            }
            Mode::Ask | Mode::AcceptEdits => self.ask(&id, &tool, input, title, &locations).await?,
        };
        Some(pick(decision, options))
    }

    /// Asks the parent's client through the parent's gate.
    async fn ask(
        &self,
        tool_call_id: &str,
        tool: &str,
        input: Value,
        title: String,
        locations: &[PathBuf],
    ) -> Option<Decision> {
        // Its own key in the gate: the parent's client allowing this
        // agent's `edit` always must not allow the parent's own `edit`.
        let key = format!("agent:{}:{tool}", self.agent.name);
        let Ok((request_id, answer)) = self.run.parent.gate.ask(&key) else {
            // Nobody can answer (the client closed stdin).
            return Some(Decision::Deny);
        };
        let ask = PermissionRequestFrame {
            request_id: request_id.clone(),
            prompt_id: String::new(),
            tool_call_id: tool_call_id.to_owned(),
            tool: tool.to_owned(),
            input,
            title,
            diff: None,
            outside_cwd: locations.iter().any(|p| !inside(self.run.cwd, p)),
            parent_tool_call_id: None,
        };
        self.send(frame(Frame::PermissionRequest(ask))).await;
        tokio::select! {
            answer = answer => Some(answer.map_or(Decision::Deny, |a| a.decision)),
            () = self.run.cancel.cancelled() => {
                self.run.parent.gate.cancel(&request_id);
                let withdrawn = PermissionCancelledFrame {
                    request_id,
                    reason: "aborted".into(),
                };
                // Waited for briefly: the abort must end within 200 ms.
                let gone = ToolUpdate::Subagent(frame(Frame::PermissionCancelled(withdrawn)));
                let _ = tokio::time::timeout(WITHDRAW_WAIT, self.run.updates.send(gone)).await;
                None
            }
        }
    }
}

/// The agent's option for a decision (by the options' `kind`), as
/// `outcome`'s value; "cancelled" when it offers nothing that fits.
fn pick(decision: Decision, options: &[Value]) -> Value {
    let wanted: &[&str] = match decision {
        Decision::AllowOnce => &["allow_once", "allow_always"],
        Decision::AllowAlways => &["allow_always", "allow_once"],
        Decision::Deny => &["reject_once", "reject_always"],
    };
    wanted
        .iter()
        .find_map(|kind| {
            options
                .iter()
                .find(|o| str_of(o, "kind") == Some(kind))
                .and_then(|o| str_of(o, "optionId"))
        })
        .map_or_else(
            || json!({"outcome": "cancelled"}),
            |id| json!({"outcome": "selected", "optionId": id}),
        )
}

/// What one prompt of the agent said, and the tool calls it made.
#[derive(Default)]
struct Turn {
    /// Every message chunk of this prompt.
    all: String,
    /// The chunks after its last tool call.
    since_tool: String,
    tools: HashMap<String, ToolInfo>,
    running: HashSet<String>,
}

#[derive(Clone)]
struct ToolInfo {
    kind: Option<String>,
    title: String,
    input: Value,
    locations: Vec<PathBuf>,
}

impl Turn {
    /// The final answer: the text after the last tool call, or all of it
    /// when there is none after it.
    fn answer(&self) -> String {
        if self.since_tool.trim().is_empty() {
            self.all.clone()
        } else {
            self.since_tool.clone()
        }
    }

    /// A `session/update` as the frames the parent's client sees.
    fn nested(&mut self, update: &Value) -> Vec<Nested> {
        let text = || {
            let content = update.get("content")?;
            (str_of(content, "type") == Some("text"))
                .then(|| str_of(content, "text"))
                .flatten()
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        };
        match str_of(update, "sessionUpdate").unwrap_or("") {
            "agent_message_chunk" => {
                let Some(delta) = text() else { return vec![] };
                self.all.push_str(&delta);
                self.since_tool.push_str(&delta);
                vec![Nested::Events(vec![StreamEvent::TextDelta { delta }])]
            }
            "agent_thought_chunk" => match text() {
                Some(delta) => vec![Nested::Events(vec![StreamEvent::ThinkingDelta { delta }])],
                None => vec![],
            },
            // One start per call: Claude Code sends `tool_call` again for a
            // call it announced (first with an empty input while the model
            // streams it, then with the whole input), and a call first seen
            // in an update still gets its start.
            "tool_call" | "tool_call_update" => {
                let Some(id) = str_of(update, "toolCallId").map(str::to_owned) else {
                    return vec![];
                };
                let fresh = !self.tools.contains_key(&id);
                if fresh {
                    self.since_tool.clear();
                }
                let info = self.tools.entry(id.clone()).or_insert_with(|| ToolInfo {
                    kind: None,
                    title: String::new(),
                    input: json!({}),
                    locations: vec![],
                });
                if let Some(kind) = str_of(update, "kind") {
                    info.kind = Some(kind.to_owned());
                }
                if let Some(title) = str_of(update, "title") {
                    info.title = title.to_owned();
                }
                if let Some(input) = update.get("rawInput") {
                    info.input = input.clone();
                }
                let paths = paths_of(update);
                if !paths.is_empty() {
                    info.locations = paths;
                }
                let mut out = if fresh {
                    vec![start(&id, info)]
                } else {
                    vec![]
                };
                out.extend(self.status(&id, update));
                out
            }
            _ => vec![],
        }
    }

    /// The frames a tool call's `status` and `content` make.
    fn status(&mut self, id: &str, update: &Value) -> Vec<Nested> {
        let output = content_text(update);
        match str_of(update, "status") {
            Some(status @ ("completed" | "failed")) => {
                self.running.remove(id);
                let result = output.or_else(|| match update.get("rawOutput") {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(Value::Null) | None => None,
                    Some(other) => Some(other.to_string()),
                });
                vec![frame(Frame::ToolExecutionEnd(ToolExecutionEndFrame {
                    prompt_id: String::new(),
                    tool_call_id: id.to_owned(),
                    result: result.unwrap_or_default(),
                    is_error: status == "failed",
                    parent_tool_call_id: None,
                }))]
            }
            status => {
                let mut out = vec![];
                if status == Some("in_progress") && self.running.insert(id.to_owned()) {
                    out.push(Nested::Running(id.to_owned()));
                }
                if let Some(output) = output {
                    out.push(frame(Frame::ToolExecutionUpdate(
                        ToolExecutionUpdateFrame {
                            prompt_id: String::new(),
                            tool_call_id: id.to_owned(),
                            output,
                            parent_tool_call_id: None,
                        },
                    )));
                }
                out
            }
        }
    }
}

/// A frame of the child's, as [`Nested::Frame`] holds it.
fn frame(frame: Frame) -> Nested {
    Nested::Frame(Box::new(frame))
}

fn start(id: &str, info: &ToolInfo) -> Nested {
    frame(Frame::ToolExecutionStart(ToolExecutionStartFrame {
        prompt_id: String::new(),
        tool_call_id: id.to_owned(),
        name: tool_name(info.kind.as_deref(), &info.title),
        input: info.input.clone(),
        parent_tool_call_id: None,
    }))
}

/// A tool call's name for the parent's client: its ACP `kind`, else its
/// title.
fn tool_name(kind: Option<&str>, title: &str) -> String {
    match kind {
        Some(kind) if kind != "other" || title.is_empty() => kind.to_owned(),
        _ if !title.is_empty() => title.to_owned(),
        _ => "tool".to_owned(),
    }
}

/// The text of a tool call's `content` (text blocks; a diff as its path).
fn content_text(update: &Value) -> Option<String> {
    let items = update.get("content")?.as_array()?;
    let parts: Vec<String> = items
        .iter()
        .filter_map(|item| match str_of(item, "type") {
            Some("content") => {
                let block = item.get("content")?;
                (str_of(block, "type") == Some("text"))
                    .then(|| str_of(block, "text").map(str::to_owned))
                    .flatten()
            }
            Some("diff") => Some(format!(
                "edited {}",
                str_of(item, "path").unwrap_or("a file")
            )),
            _ => None,
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n"))
}

/// The paths of a tool call's `locations`.
fn paths_of(call: &Value) -> Vec<PathBuf> {
    call.get("locations")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|loc| str_of(loc, "path").map(PathBuf::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `path` (relative ones against `cwd`) stays inside `cwd`, by
/// its components and, when it exists, by where its symlinks lead.
fn inside(cwd: &Path, path: &Path) -> bool {
    let joined = cwd.join(path);
    let mut plain = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                plain.pop();
            }
            Component::CurDir => {}
            other => plain.push(other),
        }
    }
    if !plain.starts_with(cwd) {
        return false;
    }
    let real_cwd = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    // The deepest existing ancestor decides where symlinks lead.
    let mut probe = plain.as_path();
    loop {
        if let Ok(real) = probe.canonicalize() {
            return real.starts_with(&real_cwd);
        }
        match probe.parent() {
            Some(parent) => probe = parent,
            None => return true,
        }
    }
}

/// Token counts from a prompt response's `usage` or `_meta.usage`, in
/// ACP's (camelCase) or Anthropic's (snake_case) names; zero without.
fn usage_of(result: &Value) -> Usage {
    let Some(u) = result
        .get("usage")
        .or_else(|| result.get("_meta").and_then(|m| m.get("usage")))
    else {
        return Usage::default();
    };
    let n = |keys: [&str; 2]| keys.iter().find_map(|k| u.get(k)?.as_u64()).unwrap_or(0);
    Usage {
        input_tokens: n(["inputTokens", "input_tokens"]),
        output_tokens: n(["outputTokens", "output_tokens"]),
        cache_read_input_tokens: n(["cachedReadTokens", "cache_read_input_tokens"]),
        cache_creation_input_tokens: n(["cachedWriteTokens", "cache_creation_input_tokens"]),
    }
}

fn str_of<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads the agent's stdout until it closes: responses to our requests,
/// session messages to the call running the session, other requests
/// answered here. Then finds out why the process ended and says so.
async fn read_agent(
    proc: Arc<Proc>,
    stdout: Option<ChildStdout>,
    mut child: Child,
    stderr: Option<tokio::task::JoinHandle<()>>,
) {
    if let Some(mut stdout) = stdout {
        let mut decoder = LineDecoder::new(MAX_LINE);
        let mut buf = vec![0u8; 64 * 1024];
        let mut lines = Vec::new();
        loop {
            let n = tokio::select! {
                n = stdout.read(&mut buf) => n.unwrap_or(0),
                () = proc.dead.cancelled() => 0,
            };
            if n == 0 {
                decoder.finish(&mut |line| lines.push(line));
            } else {
                decoder.feed(&buf[..n], &mut |line| lines.push(line));
            }
            if !lines.is_empty() {
                *lock(&proc.heard) = Instant::now();
            }
            for line in lines.drain(..) {
                match line {
                    Inbound::Line(line) => on_line(&proc, &line).await,
                    Inbound::TooLarge { bytes } => tracing::warn!(
                        "agent {}: skipped a line of {bytes} bytes (over the limit)",
                        proc.name
                    ),
                }
            }
            if n == 0 {
                break;
            }
        }
    }
    if let Some(stderr) = stderr {
        let _ = tokio::time::timeout(EXIT_WAIT, stderr).await;
    }
    let status = match tokio::time::timeout(EXIT_WAIT, child.wait()).await {
        Ok(Ok(status)) => status.to_string(),
        Ok(Err(e)) => format!("its status is unknown: {e}"),
        Err(_) => "it closed its output and was killed".into(),
    };
    // Whatever it started and left behind goes with it.
    kill_group(lock(&proc.pid).take());
    let tail = proc.stderr_tail();
    let mut why = format!("the agent {} exited ({status})", proc.name);
    if !tail.is_empty() {
        why.push_str(&format!("; its stderr ended with: {tail}"));
    }
    tracing::info!("{why}");
    proc.kill(why);
}

/// One line from the agent.
async fn on_line(proc: &Arc<Proc>, line: &[u8]) {
    match decode(line) {
        Incoming::Response(message) => proc.cx.on_response(&message),
        Incoming::Notification { method, params } => {
            if method == "session/update" {
                let sid = str_of(&params, "sessionId").unwrap_or_default().to_owned();
                let update = match params {
                    Value::Object(mut params) => params.remove("update").unwrap_or_default(),
                    _ => Value::Null,
                };
                let _ = route(proc, &sid, FromAgent::Update(update)).await;
            }
        }
        Incoming::Request { id, method, params } => {
            if method == "session/request_permission" {
                let sid = str_of(&params, "sessionId").unwrap_or_default().to_owned();
                let message = FromAgent::Permission { id, params };
                if let Err(FromAgent::Permission { id, .. }) = route(proc, &sid, message).await {
                    // No call of ours runs that session: nobody to ask.
                    let cancelled = json!({"outcome": {"outcome": "cancelled"}});
                    proc.cx.respond(id, Ok(cancelled)).await;
                }
                return;
            }
            let proc = proc.clone();
            // File work off the reader, so it never holds up the stream.
            tokio::spawn(async move {
                let result = client_method(&proc, &method, &params).await;
                proc.cx.respond(id, result).await;
            });
        }
        Incoming::Invalid { id, error } => {
            tracing::warn!(
                "agent {}: {} in {:?}",
                proc.name,
                error.message,
                String::from_utf8_lossy(&line[..line.len().min(200)])
            );
            if !id.is_null() {
                proc.cx.respond(id, Err(error)).await;
            }
        }
    }
}

/// Hands a session's message to the call running it, waiting while that
/// call is [`ROUTE_CAPACITY`] messages behind (a slow parent client slows
/// the agent); gives the message back when no call runs the session.
async fn route(proc: &Proc, sid: &str, message: FromAgent) -> Result<(), FromAgent> {
    let tx = lock(&proc.routes).get(sid).cloned();
    match tx {
        Some(tx) => tx.send(message).await.map_err(|e| e.0),
        None => Err(message),
    }
}

/// The agent's requests of the client other than permission questions:
/// the file system when the config offers it, nothing else.
async fn client_method(proc: &Proc, method: &str, params: &Value) -> RpcResult {
    let name = &proc.name;
    let offered = match method {
        "fs/read_text_file" => proc.fs_read,
        "fs/write_text_file" => proc.fs_write,
        m if m.starts_with("terminal/") => {
            return Err(RpcError::new(
                -32601,
                format!("{m}: this client offers no terminals"),
            ))
        }
        m => return Err(RpcError::new(-32601, format!("method not found: {m}"))),
    };
    if !offered {
        let key = if method == "fs/read_text_file" {
            "fs_read"
        } else {
            "fs_write"
        };
        return Err(RpcError::new(
            -32601,
            format!("{method}: not offered to this agent (`{key} = true` in `[agents.{name}]`)"),
        ));
    }
    let sid = str_of(params, "sessionId").unwrap_or("");
    let Some(cwd) = lock(&proc.sessions).get(sid).cloned() else {
        return Err(RpcError::invalid_params(format!("unknown session {sid:?}")));
    };
    let Some(path) = str_of(params, "path").map(PathBuf::from) else {
        return Err(RpcError::invalid_params("field path is required"));
    };
    if !path.is_absolute() || !inside(&cwd, &path) {
        return Err(RpcError::invalid_params(format!(
            "{}: only absolute paths inside the session's directory {} are allowed",
            path.display(),
            cwd.display()
        )));
    }
    if method == "fs/write_text_file" {
        let content = str_of(params, "content").unwrap_or("").to_owned();
        return tokio::fs::write(&path, content)
            .await
            .map(|()| Value::Null)
            .map_err(|e| RpcError::internal(format!("cannot write {}: {e}", path.display())));
    }
    let text = tokio::fs::read_to_string(&path)
        .await
        .map_err(|e| RpcError::internal(format!("cannot read {}: {e}", path.display())))?;
    let line = params
        .get("line")
        .and_then(Value::as_u64)
        .unwrap_or(1)
        .max(1);
    let limit = params.get("limit").and_then(Value::as_u64);
    let content = if line == 1 && limit.is_none() {
        text
    } else {
        let skip = usize::try_from(line - 1).unwrap_or(usize::MAX);
        let take = limit.map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        text.split_inclusive('\n').skip(skip).take(take).collect()
    };
    Ok(json!({ "content": content }))
}

/// Logs the agent's stderr and keeps its tail for error messages.
async fn keep_stderr(name: String, mut pipe: ChildStderr, tail: Arc<Mutex<String>>) {
    let mut buf = [0u8; 4096];
    let mut line = Vec::new();
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let chunk = String::from_utf8_lossy(&buf[..n]);
        {
            let mut tail = lock(&tail);
            tail.push_str(&chunk);
            if tail.len() > STDERR_TAIL {
                let mut cut = tail.len() - STDERR_TAIL;
                while !tail.is_char_boundary(cut) {
                    cut += 1;
                }
                tail.drain(..cut);
            }
        }
        for &b in &buf[..n] {
            if b == b'\n' {
                tracing::info!("agent {name}: {}", String::from_utf8_lossy(&line));
                line.clear();
            } else if line.len() < 4096 {
                line.push(b);
            }
        }
    }
    if !line.is_empty() {
        tracing::info!("agent {name}: {}", String::from_utf8_lossy(&line));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{Access, Answer, Gate};

    /// The bound on every wait of these tests.
    const WAIT: Duration = Duration::from_secs(30);

    fn config(command: &str, args: Vec<String>, env: &[(&str, &str)]) -> ExternalAgentConfig {
        ExternalAgentConfig {
            command: command.into(),
            args,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            env_keep: Vec::new(),
            description: "a fake agent".into(),
            timeout: 600,
            fs_read: false,
            fs_write: false,
            terminal: false,
        }
    }

    fn fake(env: &[(&str, &str)]) -> ExternalAgent {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/acp_agent/fake_agent.py"
        );
        ExternalAgent::new(
            "fake",
            config("python3", vec![script.into()], env),
            Arc::new(vec![]),
        )
    }

    /// A parent's side of one call: its gate, its abort, its client.
    struct Parent {
        gate: Arc<Gate>,
        cancel: CancellationToken,
        cwd: tempfile::TempDir,
    }

    impl Parent {
        /// The parent session as a `task` call names it.
        fn caller(&self) -> crate::tools::Caller {
            crate::tools::Caller {
                session_id: "parent".into(),
                tool_call_id: "call_1".into(),
                model: None,
                gate: self.gate.clone(),
            }
        }

        fn new() -> Self {
            Parent {
                gate: Arc::new(Gate::new(Mode::Ask, vec![])),
                cancel: CancellationToken::new(),
                cwd: tempfile::tempdir().unwrap(),
            }
        }
    }

    fn frame_of(n: &Nested) -> Option<&Frame> {
        match n {
            Nested::Frame(f) => Some(std::borrow::Borrow::borrow(f)),
            _ => None,
        }
    }

    /// A frame as a short line, for comparing sequences.
    fn show(n: &Nested) -> String {
        match n {
            Nested::Events(events) => events
                .iter()
                .map(|e| match e {
                    StreamEvent::TextDelta { delta } => format!("text:{delta}"),
                    StreamEvent::ThinkingDelta { delta } => format!("think:{delta}"),
                    other => format!("{other:?}"),
                })
                .collect::<Vec<_>>()
                .join("|"),
            Nested::Running(id) => format!("running:{id}"),
            Nested::Frame(f) => match std::borrow::Borrow::<Frame>::borrow(f) {
                Frame::ToolExecutionStart(f) => {
                    format!("start:{}:{}:{}", f.tool_call_id, f.name, f.input)
                }
                Frame::ToolExecutionUpdate(f) => {
                    format!("update:{}:{}", f.tool_call_id, f.output)
                }
                Frame::ToolExecutionEnd(f) => {
                    format!("end:{}:{}:{}", f.tool_call_id, f.result, f.is_error)
                }
                Frame::PermissionRequest(f) => {
                    format!("ask:{}:{}:{}", f.tool_call_id, f.tool, f.title)
                }
                Frame::PermissionCancelled(_) => "ask-cancelled".into(),
                other => format!("{other:?}"),
            },
        }
    }

    /// Runs one call to its end (bounded by [`WAIT`]); `react` sees every
    /// frame as it comes, with the parent, to answer or abort.
    async fn call(
        agent: &ExternalAgent,
        parent: &Parent,
        session: Option<&str>,
        prompt: &str,
        mode: Mode,
        mut react: impl FnMut(&Nested, &Parent),
    ) -> (Result<ChildAnswer, String>, Vec<String>) {
        let (tx, mut rx) = mpsc::channel(1024);
        let caller = parent.caller();
        let run = ChildRun {
            prompt,
            cwd: parent.cwd.path(),
            mode,
            cancel: &parent.cancel,
            updates: &tx,
            parent: &caller,
            backends: crate::tools::Backends::local(Default::default()),
        };
        let mut seen = vec![];
        let fut = agent.run(session, run);
        tokio::pin!(fut);
        let result = tokio::time::timeout(WAIT, async {
            loop {
                tokio::select! {
                    result = &mut fut => break result,
                    Some(ToolUpdate::Subagent(n)) = rx.recv() => {
                        react(&n, parent);
                        seen.push(show(&n));
                    }
                }
            }
        })
        .await
        .expect("the call ends in time");
        while let Ok(ToolUpdate::Subagent(n)) = rx.try_recv() {
            seen.push(show(&n));
        }
        (result, seen)
    }

    fn answer_with(decision: Decision) -> impl FnMut(&Nested, &Parent) {
        move |n, parent| {
            if let Some(Frame::PermissionRequest(f)) = frame_of(n) {
                let answer = Answer {
                    decision,
                    message: None,
                };
                assert!(parent.gate.answer(&f.request_id, answer));
            }
        }
    }

    fn ignore(_: &Nested, _: &Parent) {}

    #[tokio::test]
    async fn a_prompt_streams_in_order_and_its_session_continues() {
        let agent = fake(&[]);
        let parent = Parent::new();
        let (answer, seen) = call(&agent, &parent, None, "hi there", Mode::Ask, ignore).await;
        let answer = answer.unwrap();
        assert_eq!(answer.text, "echo #1: hi there");
        assert_eq!(answer.stop_reason, "end_turn");
        assert_eq!(answer.usage, Usage::default());
        assert_eq!(answer.cost_usd, None);
        assert_eq!(seen, ["think:hmm", "text:echo #1: ", "text:hi there"]);
        let sid = answer.session_id;
        assert!(sid.starts_with("fake-"), "{sid}");
        let (again, _) = call(&agent, &parent, Some(&sid), "again", Mode::Ask, ignore).await;
        let again = again.unwrap();
        assert_eq!(
            (again.text.as_str(), again.session_id.as_str()),
            ("echo #2: again", sid.as_str())
        );
        // A second session shares the process but not the history.
        let (other, _) = call(&agent, &parent, None, "other", Mode::Ask, ignore).await;
        let other = other.unwrap();
        assert_eq!(other.text, "echo #1: other");
        assert_ne!(other.session_id, sid);
        let (counted, _) = call(&agent, &parent, None, "usage", Mode::Ask, ignore).await;
        let usage = counted.unwrap().usage;
        assert_eq!(
            (
                usage.input_tokens,
                usage.output_tokens,
                usage.cache_read_input_tokens
            ),
            (12, 34, 5)
        );
    }

    #[tokio::test]
    async fn a_flood_arrives_whole_and_in_order() {
        let agent = fake(&[]);
        let parent = Parent::new();
        let (answer, seen) = call(&agent, &parent, None, "flood 20000", Mode::Ask, ignore).await;
        let want: String = (0..20000).map(|i| format!("{i} ")).collect();
        assert_eq!(answer.unwrap().text, want);
        assert_eq!(seen.len(), 20000);
        assert_eq!(seen[19999], "text:19999 ");
    }

    #[tokio::test]
    async fn permission_questions_follow_the_mode() {
        let agent = fake(&[]);
        let parent = Parent::new();
        // Ask: the parent's client answers through the gate.
        let (answer, seen) = call(
            &agent,
            &parent,
            None,
            "tool edit",
            Mode::Ask,
            answer_with(Decision::AllowOnce),
        )
        .await;
        assert_eq!(
            seen,
            [
                "text:Let me look.",
                r#"start:call-1:edit:{"path":"a.txt"}"#,
                "ask:call-1:edit:Touch a.txt",
                "running:call-1",
                "update:call-1:progress",
                "end:call-1:touched:false",
                "text:Done: yes",
            ]
        );
        assert_eq!(
            answer.unwrap().text,
            "Done: yes",
            "only the text after the tool"
        );
        for (decision, said) in [(Decision::AllowAlways, "always"), (Decision::Deny, "no")] {
            let (answer, _) = call(
                &agent,
                &parent,
                None,
                "tool edit",
                Mode::Ask,
                answer_with(decision),
            )
            .await;
            assert_eq!(answer.unwrap().text, format!("Done: {said}"));
        }
        // The child's "always" is the agent's to keep, not the parent's:
        // the parent's own edit tool still asks.
        let verdict = parent.gate.verdict(
            "edit",
            Access::EditsFiles,
            false,
            crate::permissions::Cover::None,
        );
        assert_eq!(verdict, crate::permissions::Verdict::Ask);
        // Allow-all and accept-edits (an edit inside the cwd) ask nobody.
        for mode in [Mode::AllowAll, Mode::AcceptEdits] {
            let (answer, seen) = call(&agent, &parent, None, "tool edit", mode, ignore).await;
            assert_eq!(answer.unwrap().text, "Done: yes", "{mode:?}");
            assert!(!seen.iter().any(|s| s.starts_with("ask:")), "{seen:?}");
        }
        // Accept-edits asks for anything but an edit.
        let (answer, seen) = call(
            &agent,
            &parent,
            None,
            "tool execute",
            Mode::AcceptEdits,
            answer_with(Decision::Deny),
        )
        .await;
        assert_eq!(answer.unwrap().text, "Done: no");
        assert!(seen.contains(&"ask:call-1:execute:Touch a.txt".to_owned()));
        // Read-only: an edit is rejected unasked, a read allowed.
        let (answer, seen) = call(&agent, &parent, None, "tool edit", Mode::ReadOnly, ignore).await;
        assert_eq!(answer.unwrap().text, "Done: no");
        assert!(
            seen.contains(&r#"end:call-1:{"error":"rejected"}:true"#.to_owned()),
            "{seen:?}"
        );
        let (answer, _) = call(&agent, &parent, None, "tool read", Mode::ReadOnly, ignore).await;
        assert_eq!(answer.unwrap().text, "Done: yes");
    }

    #[tokio::test]
    async fn an_abort_ends_the_call_within_200_ms() {
        let agent = fake(&[]);
        let parent = Parent::new();
        let mut at = None;
        let (answer, seen) = call(&agent, &parent, None, "sleep 30", Mode::Ask, |n, p| {
            if show(n) == "text:sleeping" {
                at = Some(Instant::now());
                p.cancel.cancel();
            }
        })
        .await;
        let took = at.expect("the agent started").elapsed();
        tracing::info!("cancel while prompting took {took:?}");
        assert!(took < Duration::from_millis(200), "{took:?}");
        let answer = answer.unwrap();
        assert_eq!(
            (answer.stop_reason.as_str(), answer.text.as_str()),
            ("aborted", "sleeping")
        );
        assert_eq!(seen, ["text:sleeping"]);

        // Aborted while the parent's client is being asked: the question
        // is withdrawn.
        let parent = Parent::new();
        let mut at = None;
        let (answer, seen) = call(&agent, &parent, None, "tool edit", Mode::Ask, |n, p| {
            if matches!(frame_of(n), Some(Frame::PermissionRequest(_))) {
                at = Some(Instant::now());
                p.cancel.cancel();
            }
        })
        .await;
        let took = at.expect("the agent asked").elapsed();
        tracing::info!("cancel while asking took {took:?}");
        assert!(took < Duration::from_millis(200), "{took:?}");
        let answer = answer.unwrap();
        assert_eq!(answer.stop_reason, "aborted");
        assert_eq!(
            seen.last().map(String::as_str),
            Some("ask-cancelled"),
            "{seen:?}"
        );
        // The agent was told too.
        let parent = Parent::new();
        let sid = Some(answer.session_id.as_str());
        let (told, _) = call(&agent, &parent, sid, "cancels", Mode::Ask, ignore).await;
        assert_eq!(told.unwrap().text, "1");
        // The process is still good for the next call.
        let parent = Parent::new();
        let (answer, _) = call(&agent, &parent, None, "still there", Mode::Ask, ignore).await;
        assert_eq!(answer.unwrap().text, "echo #1: still there");
    }

    #[tokio::test]
    async fn an_agent_that_ignores_the_cancel_is_left_after_the_grace() {
        let agent = fake(&[]);
        let parent = Parent::new();
        let (warm, _) = call(&agent, &parent, None, "hi", Mode::Ask, ignore).await;
        warm.unwrap();
        let cancel = parent.cancel.clone();
        let at = Arc::new(Mutex::new(None));
        let set = at.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            *lock(&set) = Some(Instant::now());
            cancel.cancel();
        });
        let (answer, _) = call(&agent, &parent, None, "hang", Mode::Ask, ignore).await;
        let took = lock(&at).expect("cancelled").elapsed();
        assert_eq!(answer.unwrap().stop_reason, "aborted");
        assert!(
            took >= CANCEL_GRACE && took < Duration::from_millis(200),
            "{took:?}"
        );
        // The agent goes on with other sessions.
        let parent = Parent::new();
        let (answer, _) = call(&agent, &parent, None, "next", Mode::Ask, ignore).await;
        assert_eq!(answer.unwrap().text, "echo #1: next");
    }

    #[tokio::test]
    async fn a_call_dropped_mid_prompt_cancels_the_agents_prompt() {
        let agent = fake(&[]);
        let parent = Parent::new();
        let (answer, _) = call(&agent, &parent, None, "hi", Mode::Ask, ignore).await;
        let sid = answer.unwrap().session_id;
        let (tx, mut rx) = mpsc::channel(64);
        let caller = parent.caller();
        let run = ChildRun {
            prompt: "sleep 30",
            cwd: parent.cwd.path(),
            mode: Mode::Ask,
            cancel: &parent.cancel,
            updates: &tx,
            parent: &caller,
            backends: crate::tools::Backends::local(Default::default()),
        };
        let mut fut = agent.run(Some(&sid), run);
        tokio::time::timeout(WAIT, async {
            loop {
                tokio::select! {
                    _ = &mut fut => panic!("the sleep ended on its own"),
                    Some(ToolUpdate::Subagent(n)) = rx.recv() => {
                        if show(&n) == "text:sleeping" {
                            break;
                        }
                    }
                }
            }
        })
        .await
        .expect("the agent started sleeping");
        drop(fut);
        // The agent's sleep was cancelled, so it counts one.
        let deadline = Instant::now() + WAIT;
        loop {
            let (answer, _) = call(&agent, &parent, Some(&sid), "cancels", Mode::Ask, ignore).await;
            if answer.unwrap().text == "1" {
                break;
            }
            assert!(Instant::now() < deadline, "session/cancel never arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_crash_is_an_error_with_its_stderr_and_the_next_call_restarts() {
        let agent = fake(&[]);
        let parent = Parent::new();
        let (answer, _) = call(&agent, &parent, None, "hi", Mode::Ask, ignore).await;
        let sid = answer.unwrap().session_id;
        let (answer, seen) = call(&agent, &parent, None, "crash", Mode::Ask, ignore).await;
        let e = answer.unwrap_err();
        assert!(
            e.contains("the agent fake exited")
                && e.contains("exit status: 3")
                && e.contains("fatal: the fake agent crashed on purpose"),
            "{e}"
        );
        assert_eq!(seen, ["text:about to crash"]);
        let (answer, _) = call(&agent, &parent, None, "back", Mode::Ask, ignore).await;
        assert_eq!(answer.unwrap().text, "echo #1: back");
        // The old session died with the old process, and this agent keeps
        // no sessions of its own (no FAKE_AGENT_DIR): it cannot load it.
        let (answer, _) = call(&agent, &parent, Some(&sid), "more", Mode::Ask, ignore).await;
        let e = answer.unwrap_err();
        assert!(e.contains("refused session/load"), "{e}");
    }

    #[tokio::test]
    async fn a_silent_agent_fails_at_its_timeout_and_is_restarted() {
        let mut agent = fake(&[]);
        agent.timeout = Duration::from_secs(1);
        let parent = Parent::new();
        let started = Instant::now();
        let (answer, _) = call(&agent, &parent, None, "hang", Mode::Ask, ignore).await;
        let e = answer.unwrap_err();
        assert!(
            e.contains("sent nothing for 1 s") && e.contains("[agents.fake]"),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        let (answer, _) = call(&agent, &parent, None, "alive", Mode::Ask, ignore).await;
        assert_eq!(answer.unwrap().text, "echo #1: alive");
    }

    #[tokio::test]
    async fn garbage_is_skipped_and_unoffered_methods_are_refused() {
        let agent = fake(&[]);
        let parent = Parent::new();
        let (answer, _) = call(&agent, &parent, None, "garbage", Mode::Ask, ignore).await;
        assert_eq!(
            answer.unwrap().text,
            "fs/read_text_file=-32601 terminal/create=-32601 weird/method=-32601"
        );
    }

    #[tokio::test]
    async fn a_session_the_process_lost_is_loaded_when_the_agent_can() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().to_str().unwrap();
        let agent = fake(&[("FAKE_AGENT_DIR", state)]);
        let parent = Parent::new();
        let (answer, _) = call(&agent, &parent, None, "one", Mode::Ask, ignore).await;
        let sid = answer.unwrap().session_id;
        agent.shutdown();
        let (answer, seen) = call(&agent, &parent, Some(&sid), "two", Mode::Ask, ignore).await;
        let answer = answer.unwrap();
        assert_eq!(
            (answer.text.as_str(), answer.session_id.as_str()),
            ("echo #2: two", sid.as_str())
        );
        assert!(!seen.iter().any(|s| s.contains("replayed")), "{seen:?}");

        let agent = fake(&[("FAKE_AGENT_DIR", state), ("FAKE_AGENT_NO_LOAD", "1")]);
        let (answer, _) = call(&agent, &parent, None, "one", Mode::Ask, ignore).await;
        let sid = answer.unwrap().session_id;
        agent.shutdown();
        let (answer, _) = call(&agent, &parent, Some(&sid), "two", Mode::Ask, ignore).await;
        let e = answer.unwrap_err();
        assert!(e.contains("cannot be continued") && e.contains(&sid), "{e}");
    }

    #[tokio::test]
    async fn a_missing_command_says_which_and_where_it_is_set() {
        let agent = ExternalAgent::new(
            "nope",
            config("agent-rpc-no-such-agent", vec![], &[]),
            Arc::new(vec![]),
        );
        let parent = Parent::new();
        let (answer, _) = call(&agent, &parent, None, "hi", Mode::Ask, ignore).await;
        let e = answer.unwrap_err();
        assert!(
            e.contains("`agent-rpc-no-such-agent` was not found") && e.contains("[agents.nope]"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn the_agent_gets_no_secret_unless_its_table_gives_it() {
        // A name no other test uses, so setting it cannot disturb them.
        const KEY: &str = "AGENT_RPC_EXTERNAL_TEST_API_KEY";
        std::env::set_var(KEY, "s3cret");
        let secrets = Arc::new(vec![KEY.to_owned()]);
        let mut agent = fake(&[]);
        agent.env_remove = secrets.clone();
        let parent = Parent::new();
        let prompt = format!("env {KEY}");
        let (answer, _) = call(&agent, &parent, None, &prompt, Mode::Ask, ignore).await;
        assert_eq!(answer.unwrap().text, "unset");
        let mut agent = fake(&[(KEY, "given")]);
        agent.env_remove = secrets.clone();
        let (answer, _) = call(&agent, &parent, None, &prompt, Mode::Ask, ignore).await;
        assert_eq!(answer.unwrap().text, "given");
        // Kept by name, the host's own value passes without being written
        // into the config.
        let mut agent = fake(&[]);
        agent.config.env_keep = vec![KEY.to_owned()];
        agent.env_remove = secrets;
        let (answer, _) = call(&agent, &parent, None, &prompt, Mode::Ask, ignore).await;
        assert_eq!(answer.unwrap().text, "s3cret");
    }

    /// Our own binary as the external agent: `rpc --acp` with the echo
    /// provider. Needs `target/debug/rpc` (`cargo build`).
    #[tokio::test]
    async fn rpc_acp_itself_is_an_external_agent() {
        let root = env!("CARGO_MANIFEST_DIR");
        let rpc = format!("{root}/target/debug/rpc");
        assert!(
            Path::new(&rpc).exists(),
            "THIS TEST NEEDS THE BINARY: run `cargo build` first ({rpc} is missing)"
        );
        let home = tempfile::tempdir().unwrap();
        let home = home.path().to_str().unwrap();
        let args = vec![
            "--acp".to_owned(),
            "--extension".to_owned(),
            format!("{root}/fixtures/providers/echo"),
            "--data-dir".to_owned(),
            format!("{home}/data"),
        ];
        let env = [("XDG_CONFIG_HOME", home), ("HOME", home)];
        let agent = ExternalAgent::new("self", config(&rpc, args, &env), Arc::new(vec![]));
        let parent = Parent::new();
        let (answer, seen) = call(&agent, &parent, None, "hello there", Mode::Ask, ignore).await;
        let answer = answer.unwrap();
        assert_eq!(
            (answer.text.as_str(), answer.stop_reason.as_str()),
            ("hello there", "end_turn")
        );
        assert_eq!(seen, ["text:hello", "text: there"]);
        // Its sessions are stored, so it continues one after a restart.
        agent.shutdown();
        let sid = answer.session_id;
        let (again, seen) = call(&agent, &parent, Some(&sid), "once more", Mode::Ask, ignore).await;
        let again = again.unwrap();
        assert_eq!(
            (again.text.as_str(), again.session_id.as_str()),
            ("once more", sid.as_str())
        );
        assert_eq!(
            seen,
            ["text:once", "text: more"],
            "the replayed history is not shown"
        );
    }

    #[tokio::test]
    async fn the_file_system_is_offered_inside_the_cwd_when_configured() {
        let mut agent = fake(&[]);
        let parent = Parent::new();
        let cwd = parent.cwd.path();
        std::fs::write(cwd.join("a.txt"), "one\ntwo\nthree\n").unwrap();
        let read = format!("fs read {}", cwd.join("a.txt").display());
        let (answer, _) = call(&agent, &parent, None, &read, Mode::Ask, ignore).await;
        assert_eq!(
            answer.unwrap().text,
            "error -32601",
            "not offered by default"
        );
        agent.shutdown();
        agent.config.fs_read = true;
        agent.config.fs_write = true;
        let (answer, _) = call(&agent, &parent, None, &read, Mode::Ask, ignore).await;
        assert_eq!(answer.unwrap().text, "two\n", "line 2, limit 1");
        let write = format!("fs write {} new text", cwd.join("b.txt").display());
        let (answer, _) = call(&agent, &parent, None, &write, Mode::Ask, ignore).await;
        assert_eq!(answer.unwrap().text, "written");
        assert_eq!(
            std::fs::read_to_string(cwd.join("b.txt")).unwrap(),
            "new text"
        );
        let (answer, _) = call(
            &agent,
            &parent,
            None,
            "fs read /etc/hostname",
            Mode::Ask,
            ignore,
        )
        .await;
        assert_eq!(answer.unwrap().text, "error -32602", "outside the cwd");
    }

    #[tokio::test]
    async fn an_agent_that_dies_before_initialize_says_why() {
        let script = "echo 'no API key configured' >&2; exit 2";
        let args = vec!["-c".to_owned(), script.to_owned()];
        let agent = ExternalAgent::new("early", config("sh", args, &[]), Arc::new(vec![]));
        let parent = Parent::new();
        let (answer, _) = call(&agent, &parent, None, "hi", Mode::Ask, ignore).await;
        let e = answer.unwrap_err();
        assert!(
            e.contains("the agent early exited (exit status: 2)")
                && e.contains("no API key configured"),
            "{e}"
        );
    }

    /// Claude Code (`claude-code-acp` 0.16.2) announces a call with an empty
    /// input as the model starts it, then sends `tool_call` again with the
    /// same id and the whole input: one start, and the later fields kept.
    #[test]
    fn a_call_announced_twice_starts_once() {
        let mut turn = Turn::default();
        let first = json!({"sessionUpdate": "tool_call", "toolCallId": "toolu_1",
            "status": "pending", "title": "Write", "kind": "edit", "rawInput": {},
            "content": [], "locations": []});
        let again = json!({"sessionUpdate": "tool_call", "toolCallId": "toolu_1",
            "status": "pending", "title": "Write /w/a.txt", "kind": "edit",
            "rawInput": {"file_path": "/w/a.txt", "content": "hi\n"},
            "locations": [{"path": "/w/a.txt"}]});
        let done = json!({"sessionUpdate": "tool_call_update", "toolCallId": "toolu_1",
            "status": "completed", "rawOutput": "File created"});
        let seen: Vec<String> = [first, again, done]
            .iter()
            .flat_map(|u| turn.nested(u))
            .map(|n| show(&n))
            .collect();
        assert_eq!(
            seen,
            ["start:toolu_1:edit:{}", "end:toolu_1:File created:false"]
        );
        let info = &turn.tools["toolu_1"];
        assert_eq!(info.title, "Write /w/a.txt");
        assert_eq!(info.input["file_path"], "/w/a.txt");
        assert_eq!(info.locations, [PathBuf::from("/w/a.txt")]);
    }

    #[test]
    fn options_are_picked_by_kind() {
        let options = [
            json!({"optionId": "a", "kind": "allow_always"}),
            json!({"optionId": "r", "kind": "reject_always"}),
        ];
        let selected = |id: &str| json!({"outcome": "selected", "optionId": id});
        assert_eq!(pick(Decision::AllowOnce, &options), selected("a"));
        assert_eq!(pick(Decision::Deny, &options), selected("r"));
        assert_eq!(
            pick(Decision::Deny, &options[..1]),
            json!({"outcome": "cancelled"})
        );
    }

    #[test]
    fn inside_means_inside_the_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = dir.path();
        assert!(inside(cwd, Path::new("a.txt")));
        assert!(inside(cwd, &cwd.join("sub/new.txt")));
        assert!(!inside(cwd, Path::new("../x")));
        assert!(!inside(cwd, Path::new("/etc/passwd")));
        std::os::unix::fs::symlink("/etc", cwd.join("out")).unwrap();
        assert!(!inside(cwd, Path::new("out/passwd")));
    }
}
