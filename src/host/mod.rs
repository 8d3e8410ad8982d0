//! The dispatch loop: one `select!` over commands, turn reports, deferred
//! answers, signals and the stdout-closed notice. It owns all host state.
//!
//! Nothing in the loop awaits a turn or a provider: turns run as tasks and
//! report back over `turn_rx`; slow reads (`get_available_models`,
//! `list_sessions`) answer from their own tasks. That is what keeps every
//! read-only command fast in the middle of a stream.

mod commands;
mod turn;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::TurnMsg;
use crate::protocol::{ErrorFrame, Frame, PromptParams, ResponseFrame};
use crate::provider::Providers;
use crate::session::{Session, SessionFile, Store};
use crate::transport::{Inbound, Outbox};

/// How long a cancelled turn may take to report before the host stops
/// waiting for it on exit. Turns normally report within the cancel grace.
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// Settings fixed at start-up.
pub struct Settings {
    pub cwd: String,
    /// The same directory as a path, for tools.
    pub cwd_path: std::path::PathBuf,
    /// Variables tool processes must not inherit (API keys).
    pub env_remove: Arc<Vec<String>>,
    pub system_prompt: Option<String>,
    pub max_rounds: u32,
    pub idle_timeout: Duration,
    pub max_frame_bytes: usize,
}

/// A command queued to run as the next turn.
struct Queued {
    id: Value,
    params: PromptParams,
}

/// A prompt or follow-up that arrived while a `set_model` sent before it
/// was still being checked: it runs once the model it was meant for is set.
struct Held {
    id: Value,
    command: &'static str,
    params: PromptParams,
}

/// The turn in flight.
struct Running {
    prompt_id: String,
    id: Value,
    command: &'static str,
    cancel: CancellationToken,
    steer: mpsc::UnboundedSender<String>,
    /// `abort` commands waiting for this turn to end, and what each dropped.
    aborts: Vec<(Value, Vec<Value>)>,
    /// Follow-ups taken out of the queue by an abort, answered after the turn.
    dropped: Vec<Queued>,
    /// The first failure to write one of this turn's messages.
    persist_error: Option<String>,
}

/// Answers computed off the loop, applied back on it. Each carries the
/// token under which the loop counts it as outstanding.
enum Deferred {
    SetModel {
        token: u64,
        id: Value,
        model: String,
        result: Result<(), String>,
    },
    /// A finished answer to write as it is.
    Answer { token: u64, frame: Frame },
}

/// A command whose answer is being computed by a task.
struct Outstanding {
    id: Value,
    command: &'static str,
}

pub struct Host {
    settings: Settings,
    gate: Arc<crate::permissions::Gate>,
    out: Outbox,
    providers: Arc<Providers>,
    store: Arc<Store>,
    session: Session,
    file: SessionFile,
    model: watch::Sender<Option<String>>,
    turn: Option<Running>,
    queue: VecDeque<Queued>,
    prompts_started: u64,
    turn_tx: mpsc::UnboundedSender<(String, TurnMsg)>,
    deferred_tx: mpsc::UnboundedSender<Deferred>,
    eof: bool,
    /// Set when the host began to exit (shutdown, a signal, stdout gone):
    /// no more commands are read, and the running turn gets `EXIT_GRACE`.
    exit: Option<Instant>,
    /// Answers still being computed: the host does not exit before they are
    /// written, so every command read gets its one answer.
    outstanding: std::collections::HashMap<u64, Outstanding>,
    next_token: u64,
    /// `set_model` checks in the order the commands arrived; results are
    /// applied in this order whatever order they finish in.
    model_checks: VecDeque<u64>,
    model_results: std::collections::HashMap<u64, (Value, String, Result<(), String>)>,
    held: VecDeque<Held>,
}

impl Host {
    pub fn new(
        settings: Settings,
        out: Outbox,
        providers: Arc<Providers>,
        store: Store,
        session: Session,
        file: SessionFile,
        gate: Arc<crate::permissions::Gate>,
    ) -> (Self, HostChannels) {
        let (turn_tx, turn_rx) = mpsc::unbounded_channel();
        let (deferred_tx, deferred_rx) = mpsc::unbounded_channel();
        let (model, _) = watch::channel(session.model.clone());
        let host = Host {
            settings,
            gate,
            out,
            providers,
            store: Arc::new(store),
            session,
            file,
            model,
            turn: None,
            queue: VecDeque::new(),
            prompts_started: 0,
            turn_tx,
            deferred_tx,
            eof: false,
            exit: None,
            outstanding: std::collections::HashMap::new(),
            next_token: 0,
            model_checks: VecDeque::new(),
            model_results: std::collections::HashMap::new(),
            held: VecDeque::new(),
        };
        (
            host,
            HostChannels {
                turn_rx,
                deferred_rx,
            },
        )
    }

    /// Runs until the host should exit; returns the process exit code.
    pub async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut channels: HostChannels,
        mut stdout_closed: oneshot::Receiver<std::io::Error>,
        mut signals: Signals,
    ) -> i32 {
        let mut stdout_open = true;
        loop {
            if self.ready_to_exit() {
                break;
            }
            let exit_deadline = self.exit.map(|at| at + EXIT_GRACE);
            tokio::select! {
                line = inbound.recv(), if !self.eof && self.exit.is_none() => match line {
                    Some(item) => self.on_inbound(item).await,
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

    fn ready_to_exit(&self) -> bool {
        self.turn.is_none()
            && self.outstanding.is_empty()
            && (self.exit.is_some() || (self.eof && self.queue.is_empty() && self.held.is_empty()))
    }

    /// Registers a command answered later by a task; returns its token.
    fn outstanding(&mut self, id: &Value, command: &'static str) -> u64 {
        self.next_token += 1;
        self.outstanding.insert(
            self.next_token,
            Outstanding {
                id: id.clone(),
                command,
            },
        );
        self.next_token
    }

    fn on_eof(&mut self) {
        tracing::debug!("end of input");
        self.eof = true;
        // Nobody is left to answer permission prompts: deny them instead of
        // letting a piped prompt hang.
        self.gate.close();
    }

    /// Stops taking commands, aborts the running turn and drops the queue.
    fn begin_exit(&mut self) {
        if self.exit.is_some() {
            return;
        }
        self.exit = Some(Instant::now());
        self.gate.close();
        if let Some(turn) = &self.turn {
            turn.cancel.cancel();
        }
    }

    /// Persists, stops extensions and returns the exit code.
    async fn finish(mut self) -> i32 {
        // A turn that did not stop by the exit deadline is closed here as
        // aborted, so its prompt still gets agent_end and its response.
        if let Some(prompt_id) = self.turn.as_ref().map(|t| t.prompt_id.clone()) {
            self.end_turn(crate::engine::TurnOutcome {
                prompt_id,
                stop_reason: "aborted".into(),
                usage: Default::default(),
                result: crate::engine::TurnResult::Cancelled,
                undelivered: Vec::new(),
            })
            .await;
        }
        // Answers that could not finish before the exit deadline still get
        // their one answer, saying why.
        for (_, o) in std::mem::take(&mut self.outstanding) {
            let err = ErrorFrame::new(
                o.id,
                crate::protocol::ErrorCode::Internal,
                "not answered: the host is shutting down",
            )
            .for_command(o.command);
            self.send(Frame::Error(err)).await;
        }
        // Held prompts and queued follow-ups that never ran still get their
        // one answer.
        for h in std::mem::take(&mut self.held) {
            let mut body = Map::new();
            body.insert("cancelled".into(), Value::Bool(true));
            self.respond(h.id, h.command, true, body).await;
        }
        for q in std::mem::take(&mut self.queue) {
            let mut body = Map::new();
            body.insert("cancelled".into(), Value::Bool(true));
            self.respond(q.id, "follow_up", true, body).await;
        }
        if let Err(e) = self.file.sync() {
            tracing::error!("{e:#}");
        }
        tokio::time::timeout(Duration::from_millis(500), self.providers.shutdown())
            .await
            .ok();
        0
    }

    async fn on_inbound(&mut self, item: Inbound) {
        match item {
            Inbound::TooLarge { bytes } => {
                let err = ErrorFrame::new(
                    Value::Null,
                    crate::protocol::ErrorCode::FrameTooLarge,
                    format!(
                        "command line of {bytes} bytes exceeds the limit of {} bytes (--max-frame-bytes); it was discarded",
                        self.settings.max_frame_bytes
                    ),
                );
                self.send(Frame::Error(err)).await;
            }
            Inbound::Line(line) => match crate::protocol::decode_command(&line) {
                Ok(envelope) => self.dispatch(envelope).await,
                Err(err) => self.send(Frame::Error(err)).await,
            },
        }
    }

    async fn send(&self, frame: Frame) {
        self.out.frame(&frame).await;
    }

    async fn respond(&self, id: Value, command: &'static str, ok: bool, body: Map<String, Value>) {
        self.send(Frame::Response(ResponseFrame {
            id,
            command,
            ok,
            body,
        }))
        .await;
    }

    async fn reject(&self, id: Value, command: &'static str, err: ErrorFrame) {
        let mut err = err.for_command(command);
        err.id = id;
        self.send(Frame::Error(err)).await;
    }
}

/// Receivers the loop selects over, split from `Host` so `select!` can
/// borrow them while handlers borrow the host.
pub struct HostChannels {
    turn_rx: mpsc::UnboundedReceiver<(String, TurnMsg)>,
    deferred_rx: mpsc::UnboundedReceiver<Deferred>,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// SIGTERM and SIGINT as one stream. Created before `ready` is written, so a
/// signal at any moment after it acts like `shutdown`. If a handler cannot be
/// installed the default disposition (exit) stays.
pub struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate())
            .map_err(|e| tracing::warn!("cannot handle SIGTERM: {e}"))
            .ok();
        let int = signal(SignalKind::interrupt())
            .map_err(|e| tracing::warn!("cannot handle SIGINT: {e}"))
            .ok();
        Signals { term, int }
    }

    async fn next(&mut self) {
        async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
            match s {
                Some(s) => {
                    if s.recv().await.is_none() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            _ = recv(&mut self.term) => {}
            _ = recv(&mut self.int) => {}
        }
    }
}
