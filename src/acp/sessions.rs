//! One ACP session = one native [`Host`] in this process. Its commands are
//! native command lines sent through a channel (what stdin would carry);
//! its frames come back through an in-process [`Outbox`] and are read, in
//! order, by the session's pump, which answers waiting calls and turns the
//! rest into `session/update` notifications.
//!
//! Because the pump handles a turn's frames in the order the host wrote
//! them, every update of a turn is sent before the prompt's answer is
//! handed to the task that responds to `session/prompt`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::chunks;
use super::options::{self, SessionState};
use super::permissions;
use super::rpc::Connection;
use super::updates::Mapper;
use crate::host::{Host, Parts, Signals};
use crate::protocol::ModelEntry;
use crate::startup::Prepared;
use crate::transport::{Frames, Inbound, Outbox};

/// The model listing, filled once in the background at start-up (so that
/// `session/new` never waits for extensions); empty until then.
pub type Models = Arc<RwLock<Vec<ModelEntry>>>;

/// Commands buffered towards one host.
const COMMAND_CAPACITY: usize = 32;

/// How long a host gets to answer `shutdown` and finish at the end.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(1500);

/// The host ended before answering.
#[derive(Debug)]
pub struct HostGone;

/// One open ACP session.
pub struct AcpSession {
    pub id: String,
    /// The client was given the config options before the model listing
    /// was in (the current model alone): the listing announces the rest.
    short_list: std::sync::atomic::AtomicBool,
    pub cwd: String,
    commands: mpsc::Sender<Inbound>,
    /// Calls waiting for their `response` / `error` frame, by command id.
    answers: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    next_id: AtomicU64,
    pub state: Mutex<SessionState>,
    /// `session/request_permission` requests open on the client, by the
    /// native request id: aborted when the host cancels the request.
    asking: Mutex<HashMap<String, permissions::Asking>>,
    host: Mutex<Option<tokio::task::JoinHandle<i32>>>,
    models: Models,
    pub(super) cx: Connection,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AcpSession {
    /// Sends a native command and waits for its answer frame (a `response`
    /// or an `error`).
    pub async fn call(&self, mut command: Value) -> Result<Value, HostGone> {
        let id = format!("acp-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        command["id"] = Value::String(id.clone());
        let (tx, rx) = oneshot::channel();
        lock(&self.answers).insert(id.clone(), tx);
        let line = serde_json::to_vec(&command).map_err(|_| HostGone)?;
        if self.commands.send(Inbound::Line(line)).await.is_err() {
            lock(&self.answers).remove(&id);
            return Err(HostGone);
        }
        rx.await.map_err(|_| HostGone)
    }

    pub(super) fn asking_insert(&self, request_id: String, asking: permissions::Asking) {
        lock(&self.asking).insert(request_id, asking);
    }

    pub(super) fn asking_done(&self, request_id: &str) {
        lock(&self.asking).remove(request_id);
    }

    pub fn state(&self) -> SessionState {
        lock(&self.state).clone()
    }

    pub fn update_state(&self, change: impl FnOnce(&mut SessionState)) {
        change(&mut lock(&self.state));
    }

    /// The `configOptions` of a `session/new` / `session/load` answer,
    /// marking the session for the listing's update when the list is not
    /// in yet. Under the listing's lock, so either the answer has the
    /// whole list or the listing (written after this) sees the mark.
    pub fn config_options_for_answer(&self) -> Value {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        if models.is_empty() {
            self.short_list.store(true, Ordering::Release);
        }
        options::config_options(&self.state(), &models)
    }

    /// Whether the listing must announce this session's options; asked
    /// once.
    pub fn take_short_list(&self) -> bool {
        self.short_list.swap(false, Ordering::AcqRel)
    }

    /// The session's `configOptions` now.
    pub fn config_options(&self) -> Value {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        options::config_options(&self.state(), &models)
    }

    /// Sends one `session/update`.
    pub async fn notify(&self, update: Value) {
        self.cx
            .notify(
                "session/update",
                json!({"sessionId": self.id, "update": update}),
            )
            .await;
    }

    /// Asks the host to stop (aborting its turn) and waits for it.
    pub async fn shutdown(&self) {
        let ask = tokio::time::timeout(SHUTDOWN_WAIT, self.call(json!({"type": "shutdown"})));
        let _ = ask.await;
        let host = lock(&self.host).take();
        if let Some(host) = host {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, host).await;
        }
    }

    /// Handles one native frame from the host.
    async fn on_frame(self: &Arc<Self>, frame: Value, mapper: &mut Mapper) {
        let kind = frame.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "response" | "error" => {
                let waiting = frame
                    .get("id")
                    .and_then(Value::as_str)
                    .and_then(|id| lock(&self.answers).remove(id));
                match waiting {
                    Some(tx) => {
                        let _ = tx.send(frame);
                    }
                    None => tracing::debug!("unclaimed answer from the host: {frame}"),
                }
            }
            "permission_request" => permissions::ask(self.clone(), frame).await,
            "permission_cancelled" => {
                let request = frame.get("request_id").and_then(Value::as_str);
                let asking = request.and_then(|r| lock(&self.asking).remove(r));
                if let Some(asking) = asking {
                    asking.cancel(&self.cx).await;
                }
            }
            "model_changed" => {
                let model = frame
                    .get("model")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.update_state(|s| s.model = model);
                let update = json!({"sessionUpdate": "config_option_update", "configOptions": self.config_options()});
                self.notify(update).await;
            }
            "agent_end" => {
                if let Some(update) = self.usage_update(&frame) {
                    self.notify(update).await;
                }
            }
            _ => {
                for update in mapper.map(&frame) {
                    self.notify(update).await;
                }
            }
        }
    }

    /// `usage_update` after a turn: the tokens of its last context against
    /// the model's window, when the listing knows the window.
    fn usage_update(&self, frame: &Value) -> Option<Value> {
        let usage = frame.get("usage")?;
        let count = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
        let used = count("input_tokens")
            + count("output_tokens")
            + count("cache_read_input_tokens")
            + count("cache_creation_input_tokens");
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        let size = options::context_window(&models, self.state().model.as_deref())?;
        Some(json!({"sessionUpdate": "usage_update", "used": used, "size": size}))
    }
}

/// Starts the host of a prepared session and its pump; the session can be
/// used at once (the host reads its first command when the caller yields).
pub fn start(prepared: Prepared, cx: Connection, models: Models) -> Arc<AcpSession> {
    let Prepared {
        settings,
        context,
        gate,
        store,
        session,
        file,
        providers,
        mcp_servers,
    } = prepared;
    let state = SessionState {
        mode: session
            .permission_mode
            .unwrap_or(crate::protocol::Mode::Ask),
        model: session.model.clone(),
        thinking: session.thinking_level,
    };
    let (out, frames) = Outbox::channel();
    let (commands, inbound) = mpsc::channel(COMMAND_CAPACITY);
    let acp = Arc::new(AcpSession {
        id: session.header.id.clone(),
        cwd: settings.cwd.clone(),
        commands,
        answers: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        state: Mutex::new(state),
        asking: Mutex::new(HashMap::new()),
        short_list: std::sync::atomic::AtomicBool::new(false),
        host: Mutex::new(None),
        models,
        cx,
    });
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
    // Stdout and signals belong to the ACP connection, handled once for
    // every session: this host's "stdout closed" notice resolves empty (its
    // sender is dropped), which the host ignores, and it gets no signals.
    let (_never, stdout_closed) = oneshot::channel();
    let running = tokio::spawn(host.run(inbound, channels, stdout_closed, Signals::none()));
    *lock(&acp.host) = Some(running);
    tokio::spawn(pump(frames, acp.clone()));
    acp
}

/// Reads the host's frames in order until it exits.
async fn pump(mut frames: Frames, session: Arc<AcpSession>) {
    let mut mapper = Mapper::new(session.cwd.clone());
    // The chunks of one burst from the host, sent as one write; flushed
    // before any other frame so the order is kept.
    let mut burst = Vec::new();
    while let Some(bytes) = frames.next().await {
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Some(delta) = chunks::delta(line) {
                chunks::encode(&mut burst, &session.id, &delta);
                continue;
            }
            if !burst.is_empty() {
                session.cx.lines(std::mem::take(&mut burst)).await;
            }
            match serde_json::from_slice::<Value>(line) {
                Ok(frame) => session.on_frame(frame, &mut mapper).await,
                Err(e) => tracing::error!("the host wrote a line that is not JSON: {e}"),
            }
        }
        if !burst.is_empty() {
            session.cx.lines(std::mem::take(&mut burst)).await;
        }
    }
    // The host is gone (every outbox dropped). Calls still waiting for an
    // answer from it get `HostGone` (a JSON-RPC error) instead of waiting
    // for ever; a call made from now on fails to send.
    lock(&session.answers).clear();
}

/// The open sessions of the connection.
#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<String, Arc<AcpSession>>>,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<Arc<AcpSession>> {
        lock(&self.sessions).get(id).cloned()
    }

    pub fn insert(&self, session: Arc<AcpSession>) {
        lock(&self.sessions).insert(session.id.clone(), session);
    }

    /// Every open session.
    pub fn all(&self) -> Vec<Arc<AcpSession>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Stops every host, concurrently.
    pub async fn shutdown_all(&self) {
        let all: Vec<_> = lock(&self.sessions).drain().map(|(_, s)| s).collect();
        let mut set = tokio::task::JoinSet::new();
        for session in all {
            set.spawn(async move { session.shutdown().await });
        }
        while set.join_next().await.is_some() {}
    }
}
