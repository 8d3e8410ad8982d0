//! The process's live subagent sessions: which child sessions are open,
//! which of them run a task now, the cap on how many may be open at once,
//! and closing those left idle.
//!
//! One hub per process (it lives in the session factory), shared by every
//! parent session: `max_sessions` is a cap on the process, so a fleet of
//! ACP sessions cannot open children without bound. An idle child counts
//! until it is closed; when the cap is reached the child idle the longest
//! is closed first (it reopens from disk when continued), and only when
//! every open child is running is a new one refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::nested::Target;
use crate::host::{HostHandle, SessionSettings};

/// How long closing a child may wait for its host to finish writing.
const CLOSE_BOUND: Duration = Duration::from_secs(5);

/// The hub's settings (`[subagents]` in the config).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_parallel: usize,
    pub max_sessions: usize,
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_parallel: 4,
            max_sessions: 8,
            idle_timeout: Duration::from_secs(600),
        }
    }
}

/// An open child session.
pub(crate) struct Child {
    pub handle: HostHandle,
    /// Where its frames go: the `task` call it works for.
    pub target: Target,
    pub settings: tokio::sync::watch::Receiver<SessionSettings>,
    /// The session whose `task` call opened it.
    pub parent: String,
    pub running: JoinHandle<i32>,
}

struct Entry {
    child: Arc<Child>,
    busy: bool,
    idle_since: Instant,
}

#[derive(Default)]
pub(crate) struct Hub {
    limits: Limits,
    open: Mutex<HashMap<String, Entry>>,
    reaper: Mutex<Option<JoinHandle<()>>>,
}

/// Why a child cannot be had.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// It runs another task now.
    Busy,
    /// It belongs to another session.
    NotYours,
}

impl Hub {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        Arc::new(Hub {
            limits,
            ..Hub::default()
        })
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The open child `id` for a new task of `parent`, marked running;
    /// `Ok(None)` when it is not open.
    pub(crate) fn take(&self, id: &str, parent: &str) -> Result<Option<Arc<Child>>, Refusal> {
        let mut open = self.open();
        let Some(entry) = open.get_mut(id) else {
            return Ok(None);
        };
        if entry.child.parent != parent {
            return Err(Refusal::NotYours);
        }
        if entry.busy {
            return Err(Refusal::Busy);
        }
        entry.busy = true;
        Ok(Some(entry.child.clone()))
    }

    /// Makes room for one more open child: closes the one idle the
    /// longest when the cap is reached. An error saying so when every open
    /// child is running.
    pub(crate) fn make_room(&self) -> Result<(), String> {
        let evicted = {
            let mut open = self.open();
            if open.len() < self.limits.max_sessions {
                return Ok(());
            }
            let oldest = open
                .iter()
                .filter(|(_, e)| !e.busy)
                .min_by_key(|(_, e)| e.idle_since)
                .map(|(id, _)| id.clone());
            match oldest.and_then(|id| open.remove(&id)) {
                Some(entry) => entry.child,
                None => {
                    return Err(format!(
                        "{} subagent sessions are running, the most this host runs at once (max_sessions in [subagents]); wait for one to finish, or do this part yourself",
                        open.len()
                    ))
                }
            }
        };
        tokio::spawn(close(evicted));
        Ok(())
    }

    /// Registers a child just opened, as running.
    pub(crate) fn insert(self: &Arc<Self>, id: String, child: Arc<Child>) {
        let entry = Entry {
            child,
            busy: true,
            idle_since: Instant::now(),
        };
        self.open().insert(id, entry);
        self.start_reaper();
    }

    /// The child `id` finished its task and waits for the next.
    pub(crate) fn release(&self, id: &str) {
        if let Some(entry) = self.open().get_mut(id) {
            entry.busy = false;
            entry.idle_since = Instant::now();
        }
    }

    /// Forgets a child whose host is gone (it is reopened from disk when
    /// continued).
    pub(crate) fn forget(&self, id: &str) {
        self.open().remove(id);
    }

    /// Closes every child (the process is exiting), each bounded.
    pub(crate) async fn shutdown(&self) {
        let children: Vec<_> = self.open().drain().map(|(_, e)| e.child).collect();
        if let Some(reaper) = self
            .reaper
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            reaper.abort();
        }
        for child in children {
            close(child).await;
        }
    }

    /// Closes idle children past the idle timeout, checking a few times
    /// per timeout. Holds the hub weakly: it ends with the process's last
    /// factory.
    fn start_reaper(self: &Arc<Self>) {
        let mut reaper = self.reaper.lock().unwrap_or_else(PoisonError::into_inner);
        if reaper.is_some() {
            return;
        }
        let hub: Weak<Hub> = Arc::downgrade(self);
        let every = (self.limits.idle_timeout / 4)
            .clamp(Duration::from_millis(20), Duration::from_secs(30));
        *reaper = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(hub) = hub.upgrade() else { return };
                for child in hub.stale() {
                    close(child).await;
                }
            }
        }));
    }

    /// Takes out the children idle for longer than the timeout.
    fn stale(&self) -> Vec<Arc<Child>> {
        let now = Instant::now();
        let mut open = self.open();
        let ids: Vec<String> = open
            .iter()
            .filter(|(_, e)| {
                !e.busy && now.duration_since(e.idle_since) >= self.limits.idle_timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| open.remove(id))
            .map(|e| e.child)
            .collect()
    }
}

/// Closes a child: its host sees its input end, finishes and releases the
/// session file (so it can be reopened), bounded.
async fn close(child: Arc<Child>) {
    let Ok(child) = Arc::try_unwrap(child) else {
        // A task still holds it; it is closed when that lets go.
        return;
    };
    let Child {
        handle, running, ..
    } = child;
    drop(handle);
    if tokio::time::timeout(CLOSE_BOUND, running).await.is_err() {
        tracing::warn!("a subagent session did not close within {CLOSE_BOUND:?}");
    }
}
