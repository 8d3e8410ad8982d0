//! One ACP session = one [`crate::host::Host`] in this process (started by
//! `start.rs`), driven through the typed host boundary: commands go in
//! through a [`HostHandle`] and come back as typed answers; frames come out
//! through the session's sink (`sink.rs`), which maps them to
//! `session/update`s as they are emitted; the settings the client sees are
//! read from the host's own watch channel.
//!
//! A prompt's answer is sent by the host after every frame of its turn,
//! and the sink queues each update before it returns, so every update of a
//! turn is written before the `session/prompt` response.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;

use super::options;
use super::rpc::Connection;
use crate::host::{Answer, HostGone, HostHandle, SessionSettings};
use crate::protocol::{Command, ModelEntry};

/// The model listing, filled once in the background at start-up (so that
/// `session/new` never waits for extensions); empty until then.
pub(super) type Models = Arc<RwLock<Vec<ModelEntry>>>;

/// How long a host gets to answer `shutdown` and finish at the end.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(1500);

/// One open ACP session.
pub(super) struct AcpSession {
    pub id: String,
    pub cwd: String,
    /// The client was given the config options before the model listing
    /// was in (the current model alone): the listing announces the rest.
    short_list: AtomicBool,
    /// The title announced (`info.rs`), once there is one.
    title: Mutex<Option<String>>,
    host: HostHandle,
    settings: watch::Receiver<SessionSettings>,
    running: Mutex<Option<tokio::task::JoinHandle<i32>>>,
    models: Models,
    pub(super) cx: Connection,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AcpSession {
    /// A session on the host behind `host`, whose settings are `settings`.
    pub(super) fn new(
        id: String,
        cwd: String,
        title: Option<String>,
        host: HostHandle,
        settings: watch::Receiver<SessionSettings>,
        models: Models,
        cx: Connection,
    ) -> Self {
        AcpSession {
            id,
            cwd,
            short_list: AtomicBool::new(false),
            title: Mutex::new(title),
            host,
            settings,
            running: Mutex::new(None),
            models,
            cx,
        }
    }

    /// Keeps the host's task, for `shutdown` to wait on.
    pub(super) fn set_running(&self, running: tokio::task::JoinHandle<i32>) {
        *lock(&self.running) = Some(running);
    }

    /// Takes `candidate` as the title if the session has none yet;
    /// returns it when it did.
    pub(super) fn set_title_once(&self, candidate: Option<String>) -> Option<String> {
        let mut title = lock(&self.title);
        if title.is_some() {
            return None;
        }
        title.clone_from(&candidate);
        candidate
    }

    /// Sends a command to the host and waits for its typed answer.
    pub(super) async fn call(&self, command: Command) -> Result<Answer, HostGone> {
        self.host.call(command).await
    }

    /// The session's settings as the host has them now.
    pub(super) fn settings(&self) -> SessionSettings {
        self.settings.borrow().clone()
    }

    /// The `configOptions` of a `session/new` / `session/load` answer,
    /// marking the session for the listing's update when the list is not
    /// in yet. Under the listing's lock, so either the answer has the
    /// whole list or the listing (written after this) sees the mark.
    pub(super) fn config_options_for_answer(&self) -> Value {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        if models.is_empty() {
            self.short_list.store(true, Ordering::Release);
        }
        options::config_options(&self.settings(), &models)
    }

    /// Whether the listing must announce this session's options; asked
    /// once.
    pub(super) fn take_short_list(&self) -> bool {
        self.short_list.swap(false, Ordering::AcqRel)
    }

    /// The session's `configOptions` now.
    pub(super) fn config_options(&self) -> Value {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        options::config_options(&self.settings(), &models)
    }

    /// The window of the session's model, when the listing knows it.
    pub(super) fn context_window(&self) -> Option<u64> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        options::context_window(&models, self.settings().model.as_deref())
    }

    /// Sends one `session/update`.
    pub(super) async fn notify(&self, update: Value) {
        self.cx
            .notify(
                "session/update",
                json!({"sessionId": self.id, "update": update}),
            )
            .await;
    }

    /// Asks the host to stop (aborting its turn) and waits for it.
    pub(super) async fn shutdown(&self) {
        let ask = tokio::time::timeout(SHUTDOWN_WAIT, self.call(Command::Shutdown));
        let _ = ask.await;
        let running = lock(&self.running).take();
        if let Some(running) = running {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, running).await;
        }
    }
}

/// The open sessions of the connection.
#[derive(Default)]
pub(super) struct Registry {
    sessions: Mutex<HashMap<String, Arc<AcpSession>>>,
}

impl Registry {
    pub(super) fn get(&self, id: &str) -> Option<Arc<AcpSession>> {
        lock(&self.sessions).get(id).cloned()
    }

    pub(super) fn insert(&self, session: Arc<AcpSession>) {
        lock(&self.sessions).insert(session.id.clone(), session);
    }

    /// Takes a session out of the connection.
    pub(super) fn remove(&self, id: &str) -> Option<Arc<AcpSession>> {
        lock(&self.sessions).remove(id)
    }

    /// Every open session.
    pub(super) fn all(&self) -> Vec<Arc<AcpSession>> {
        lock(&self.sessions).values().cloned().collect()
    }

    /// Stops every host, concurrently.
    pub(super) async fn shutdown_all(&self) {
        let all: Vec<_> = lock(&self.sessions).drain().map(|(_, s)| s).collect();
        let mut set = tokio::task::JoinSet::new();
        for session in all {
            set.spawn(async move { session.shutdown().await });
        }
        while set.join_next().await.is_some() {}
    }
}
