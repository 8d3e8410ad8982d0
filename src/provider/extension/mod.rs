//! Provider extensions (SynapsCLI-compatible process extensions): each
//! installed one is an [`Extension`], which starts its process on demand,
//! initialises it, remembers what it reported, and restarts it after a death.
//! The process client itself is in `process`, one round's stream in
//! `stream`.

pub mod framing;
pub(crate) mod manifest;
mod process;
mod stream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::{json, Value};
use tokio::sync::watch;

use super::ExtModelId;
use manifest::Manifest;
pub(crate) use process::{Incoming, Proc};
pub(crate) use stream::open;

/// What an extension's `initialize` reported of one provider.
#[derive(Debug, Clone)]
pub(crate) struct ProviderInfo {
    pub id: String,
    pub models: Vec<ModelInfo>,
}

/// One model of a provider, with what the extension says it can do.
#[derive(Debug, Clone)]
pub(crate) struct ModelInfo {
    pub id: String,
    pub name: String,
    pub streaming: bool,
    pub tool_use: bool,
    /// Declared `capabilities.reasoning`: the model honours `thinking_level`.
    pub reasoning: bool,
    pub context_window: Option<u64>,
}

/// Where an extension's start stands, for readers that must not wait long.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Status {
    Idle,
    Starting,
    Ready,
    Failed(String),
}

/// One installed extension: its manifest, and the process when running.
pub(crate) struct Extension {
    pub manifest: Manifest,
    proc: tokio::sync::Mutex<Option<Arc<Proc>>>,
    providers: Mutex<Option<Arc<Vec<ProviderInfo>>>>,
    init_timeout: Duration,
    status: watch::Sender<Status>,
    /// Start attempts so far; lets a caller that waited on another's start
    /// take that start's failure instead of trying again at once.
    attempts: AtomicU64,
}

impl Extension {
    pub(crate) fn new(manifest: Manifest, init_timeout: Duration) -> Self {
        Extension {
            manifest,
            proc: tokio::sync::Mutex::new(None),
            providers: Mutex::new(None),
            init_timeout,
            status: watch::Sender::new(Status::Idle),
            attempts: AtomicU64::new(0),
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.manifest.id
    }

    /// Why its last start failed, while that is the latest news of it.
    pub(crate) fn failure(&self) -> Option<String> {
        match &*self.status.borrow() {
            Status::Failed(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// What `initialize` reported, if it has run.
    pub(crate) fn known_providers(&self) -> Option<Arc<Vec<ProviderInfo>>> {
        self.providers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The running, initialised process, starting it if needed. Concurrent
    /// callers share one start.
    pub(crate) async fn proc(&self) -> anyhow::Result<Arc<Proc>> {
        let seen = self.attempts.load(Ordering::Acquire);
        let mut slot = self.proc.lock().await;
        if let Some(p) = slot.as_ref() {
            if p.is_alive() {
                return Ok(p.clone());
            }
        }
        *slot = None;
        if self.attempts.load(Ordering::Acquire) != seen {
            if let Status::Failed(e) = &*self.status.borrow() {
                return Err(anyhow!(e.clone()));
            }
        }
        self.attempts.fetch_add(1, Ordering::AcqRel);
        self.status.send_replace(Status::Starting);
        let started = self.start().await;
        self.status.send_replace(match &started {
            Ok(_) => Status::Ready,
            Err(e) => Status::Failed(format!("{e:#}")),
        });
        let proc = started?;
        *slot = Some(proc.clone());
        Ok(proc)
    }

    async fn start(&self) -> anyhow::Result<Arc<Proc>> {
        let proc = Proc::spawn(&self.manifest)?;
        let params = json!({
            "host_version": env!("CARGO_PKG_VERSION"),
            // SynapsCLI's name for the same field, so its extensions see it.
            "synaps_version": env!("CARGO_PKG_VERSION"),
            "extension_protocol_version": 1,
            "plugin_id": self.manifest.id,
            "plugin_root": self.manifest.root,
            "config": self.manifest.config,
        });
        let result = match proc.call("initialize", params, self.init_timeout).await {
            Ok(r) => r,
            Err(e) => {
                proc.kill("failed to initialize");
                return Err(e);
            }
        };
        let providers = parse_capabilities(&result).map_err(|e| {
            proc.kill("sent bad capabilities");
            anyhow!(
                "extension {:?} answered initialize with {e}",
                self.manifest.id
            )
        })?;
        *self.providers.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(providers));
        Ok(proc)
    }

    /// The provider list for a listing: what is known now, waiting at most
    /// until `deadline` for a start in progress, and never starting twice.
    pub(crate) async fn providers_by(
        self: &Arc<Self>,
        deadline: tokio::time::Instant,
    ) -> anyhow::Result<Arc<Vec<ProviderInfo>>> {
        if let Some(p) = self.known_providers() {
            return Ok(p);
        }
        if *self.status.borrow() == Status::Idle {
            let me = self.clone();
            tokio::spawn(async move {
                let _ = me.proc().await;
            });
        }
        let mut status = self.status.subscribe();
        let settled = tokio::time::timeout_at(
            deadline,
            status.wait_for(|s| matches!(s, Status::Ready | Status::Failed(_))),
        )
        .await;
        if let Some(p) = self.known_providers() {
            return Ok(p);
        }
        match settled {
            Ok(Ok(s)) => match &*s {
                Status::Failed(e) => Err(anyhow!(e.clone())),
                _ => Err(anyhow!(
                    "extension {:?} reported no providers",
                    self.manifest.id
                )),
            },
            _ => Err(anyhow!(
                "extension {:?} is still starting (initialize not answered yet)",
                self.manifest.id
            )),
        }
    }

    /// What `initialize` reported, once the start under way (or the next
    /// one) has settled; `None` if it failed. Starts nothing itself.
    pub(crate) async fn settled(&self) -> Option<Arc<Vec<ProviderInfo>>> {
        let mut status = self.status.subscribe();
        let _ = status
            .wait_for(|s| matches!(s, Status::Ready | Status::Failed(_)))
            .await;
        self.known_providers()
    }

    /// Provider list, starting the process if it never ran.
    pub(crate) async fn providers(&self) -> anyhow::Result<Arc<Vec<ProviderInfo>>> {
        if let Some(p) = self.known_providers() {
            return Ok(p);
        }
        self.proc().await?;
        self.known_providers()
            .with_context(|| format!("extension {:?} reported no providers", self.manifest.id))
    }

    /// The model `id` names, starting the process if it never ran.
    pub(crate) async fn model(&self, id: &ExtModelId<'_>) -> anyhow::Result<ModelInfo> {
        find_model(id, &self.providers().await?)
    }

    pub(crate) async fn shutdown(&self, grace: Duration) {
        let proc = self.proc.lock().await.take();
        if let Some(p) = proc {
            p.shutdown(grace).await;
        }
    }
}

/// A model of an extension's reported providers, or what it has instead.
pub(crate) fn find_model(
    id: &ExtModelId<'_>,
    providers: &[ProviderInfo],
) -> anyhow::Result<ModelInfo> {
    let names = |it: &mut dyn Iterator<Item = &str>| it.collect::<Vec<_>>().join(", ");
    let provider = providers
        .iter()
        .find(|p| p.id == id.provider)
        .with_context(|| {
            format!(
                "extension {:?} has no provider {:?} (it has: {})",
                id.plugin,
                id.provider,
                names(&mut providers.iter().map(|p| p.id.as_str()))
            )
        })?;
    provider
        .models
        .iter()
        .find(|m| m.id == id.model)
        .cloned()
        .with_context(|| {
            format!(
                "provider {}:{} has no model {:?} (it has: {})",
                id.plugin,
                id.provider,
                id.model,
                names(&mut provider.models.iter().map(|m| m.id.as_str()))
            )
        })
}

/// The capability list's own problems are plain words: they only ever end
/// the message `start` builds around them.
fn parse_capabilities(result: &Value) -> Result<Vec<ProviderInfo>, &'static str> {
    let list = result
        .pointer("/capabilities/providers")
        .and_then(Value::as_array)
        .ok_or("no capabilities.providers list")?;
    let mut out = Vec::new();
    for p in list {
        let id = p
            .get("id")
            .and_then(Value::as_str)
            .ok_or("a provider without an id")?;
        let models = p
            .get("models")
            .and_then(Value::as_array)
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        let id = m.get("id")?.as_str()?.to_owned();
                        let caps = m.get("capabilities");
                        let flag = |k: &str, default: bool| {
                            caps.and_then(|c| c.get(k))
                                .and_then(Value::as_bool)
                                .unwrap_or(default)
                        };
                        Some(ModelInfo {
                            name: m
                                .get("display_name")
                                .and_then(Value::as_str)
                                .unwrap_or(&id)
                                .to_owned(),
                            streaming: flag("streaming", true),
                            tool_use: flag("tool_use", false),
                            reasoning: flag("reasoning", false),
                            context_window: m.get("context_window").and_then(Value::as_u64),
                            id,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(ProviderInfo {
            id: id.to_owned(),
            models,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_parse() {
        let caps = json!({"protocol_version":1,"capabilities":{"providers":[{"id":"p","display_name":"P",
            "models":[{"id":"m","capabilities":{"streaming":false},"context_window":10}]}]}});
        let ps = parse_capabilities(&caps).unwrap();
        assert_eq!(ps[0].models[0].id, "m");
        assert!(!ps[0].models[0].streaming);
        assert!(parse_capabilities(&json!({})).is_err());
    }
}
