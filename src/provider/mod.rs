//! Model providers: what a turn asks of a model, and where it is sent.
//!
//! [`Providers`] is the registry the host holds; it resolves a model id to a
//! provider and opens a [`ProviderStream`] for one round. Each provider kind
//! lives in its own file; today that is subprocess extensions.

pub mod extension;
pub mod framing;
pub mod manifest;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::message::Block;
use crate::protocol::Usage;
use extension::{Extension, Incoming, Proc};
use manifest::Manifest;

/// One piece of a model's answer as the provider streams it.
#[derive(Debug, Clone)]
pub enum ProviderEvent {
    Text(String),
    Thinking(String),
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    Usage(Usage),
    Error(String),
    Done,
}

#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub models: Vec<ModelInfo>,
}

#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub id: String,
    pub name: String,
    pub streaming: bool,
    pub tool_use: bool,
    pub context_window: Option<u64>,
}

/// An entry of `get_available_models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEntry {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub context_window: Option<u64>,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What one provider round is given.
#[derive(Debug, Clone)]
pub struct Request {
    pub messages: Vec<Value>,
    pub system_prompt: Option<String>,
    pub tools: Vec<Value>,
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
}

/// The final answer of a round.
#[derive(Debug, Clone, Default)]
pub struct Completion {
    pub content: Vec<Block>,
    pub stop_reason: Option<String>,
    pub usage: Option<Usage>,
}

/// An extension model id split into its parts: `<plugin>:<provider>:<model>`.
/// The model part may itself contain ':' (e.g. `qwen2.5:7b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtModelId<'a> {
    pub plugin: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
}

pub fn parse_ext_model(id: &str) -> Option<ExtModelId<'_>> {
    let mut parts = id.splitn(3, ':');
    let (plugin, provider, model) = (parts.next()?, parts.next()?, parts.next()?);
    if plugin.is_empty() || provider.is_empty() || model.is_empty() {
        return None;
    }
    Some(ExtModelId {
        plugin,
        provider,
        model,
    })
}

/// Timeouts that apply to provider calls.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub init: Duration,
    pub idle: Duration,
    pub cancel_grace: Duration,
}

pub struct Providers {
    extensions: Vec<Arc<Extension>>,
    pub timeouts: Timeouts,
}

impl Providers {
    pub fn new(manifests: Vec<Manifest>, timeouts: Timeouts) -> Self {
        Providers {
            extensions: manifests
                .into_iter()
                .map(|m| Arc::new(Extension::new(m, timeouts.init)))
                .collect(),
            timeouts,
        }
    }

    fn extension(&self, plugin: &str) -> Option<&Arc<Extension>> {
        self.extensions.iter().find(|e| e.id() == plugin)
    }

    /// Starts every extension in the background so that its models are known
    /// by the time a client asks; failures are kept for later reporting.
    pub fn warm_up(self: &Arc<Self>) {
        for ext in &self.extensions {
            let ext = ext.clone();
            tokio::spawn(async move {
                if let Err(e) = ext.proc().await {
                    tracing::warn!("{e}");
                }
            });
        }
    }

    /// Checks a model id without waiting for anything: the syntax, and that the
    /// plugin exists. The provider and model are checked once the extension
    /// has reported them, by [`Providers::check_model`].
    pub fn check_model_quick(&self, id: &str) -> Result<(), String> {
        let Some(parsed) = parse_ext_model(id) else {
            return Err(format!(
                "model id {id:?} is not of the form <plugin>:<provider>:<model> \
                 (get_available_models lists the ids)"
            ));
        };
        if self.extension(parsed.plugin).is_none() {
            return Err(format!(
                "no provider extension {:?} is installed (known: {})",
                parsed.plugin,
                self.plugin_list()
            ));
        }
        Ok(())
    }

    fn plugin_list(&self) -> String {
        if self.extensions.is_empty() {
            "none; pass --extension <dir>".into()
        } else {
            self.extensions
                .iter()
                .map(|e| e.id())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// Full check of a model id, starting its extension if needed.
    pub async fn check_model(&self, id: &str) -> Result<ModelInfo, String> {
        self.check_model_quick(id)?;
        let parsed = parse_ext_model(id).ok_or("unreachable: checked above")?;
        let ext = self
            .extension(parsed.plugin)
            .ok_or("unreachable: checked above")?;
        let providers = ext.providers().await?;
        let provider = providers
            .iter()
            .find(|p| p.id == parsed.provider)
            .ok_or_else(|| {
                format!(
                    "extension {:?} has no provider {:?} (it has: {})",
                    parsed.plugin,
                    parsed.provider,
                    providers
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        provider
            .models
            .iter()
            .find(|m| m.id == parsed.model)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "provider {}:{} has no model {:?} (it has: {})",
                    parsed.plugin,
                    parsed.provider,
                    parsed.model,
                    provider
                        .models
                        .iter()
                        .map(|m| m.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// Every model of every provider. Extensions not yet started are started.
    pub async fn available_models(&self) -> Vec<ModelEntry> {
        let mut out = Vec::new();
        for ext in &self.extensions {
            match ext.providers().await {
                Ok(providers) => {
                    for p in providers.iter() {
                        for m in &p.models {
                            out.push(ModelEntry {
                                id: format!("{}:{}:{}", ext.id(), p.id, m.id),
                                provider: format!("{}:{}", ext.id(), p.id),
                                name: m.name.clone(),
                                context_window: m.context_window,
                                available: true,
                                error: None,
                            });
                        }
                    }
                }
                Err(e) => out.push(ModelEntry {
                    id: format!("{}:*", ext.id()),
                    provider: ext.id().to_owned(),
                    name: ext.manifest.name.clone(),
                    context_window: None,
                    available: false,
                    error: Some(e),
                }),
            }
        }
        out
    }

    /// The model used when none was chosen: the first one any extension offers.
    pub async fn default_model(&self) -> Option<String> {
        self.available_models()
            .await
            .into_iter()
            .find(|m| m.available)
            .map(|m| m.id)
    }

    /// Opens one round against `model`.
    pub async fn stream(&self, model: &str, req: &Request) -> Result<ProviderStream, String> {
        let info = self.check_model(model).await?;
        let parsed = parse_ext_model(model).ok_or("unreachable: checked above")?;
        let ext = self
            .extension(parsed.plugin)
            .ok_or("unreachable: checked above")?;
        let proc = ext.proc().await?;
        let params = json!({
            "provider_id": parsed.provider,
            "model_id": parsed.model,
            "model": parsed.model,
            "messages": req.messages,
            "system_prompt": req.system_prompt,
            "tools": req.tools,
            "temperature": req.temperature,
            "max_tokens": req.max_tokens,
        });
        let method = if info.streaming {
            "provider.stream"
        } else {
            "provider.complete"
        };
        let (id, rx) = proc.request(method, params, info.streaming).await?;
        Ok(ProviderStream {
            proc,
            id,
            rx,
            grace: self.timeouts.cancel_grace,
        })
    }

    /// Stops every running extension, all at once.
    pub async fn shutdown(&self) {
        let grace = Duration::from_millis(200);
        let mut set = tokio::task::JoinSet::new();
        for ext in &self.extensions {
            let ext = ext.clone();
            set.spawn(async move { ext.shutdown(grace).await });
        }
        while set.join_next().await.is_some() {}
    }
}

/// One round in flight.
pub struct ProviderStream {
    proc: Arc<Proc>,
    id: u64,
    rx: mpsc::Receiver<Incoming>,
    grace: Duration,
}

/// What a round yields.
pub enum StreamItem {
    Event(ProviderEvent),
    Done(Completion),
}

impl ProviderStream {
    /// The next event or the final answer; `Err` when the round failed.
    pub async fn next(&mut self) -> Result<StreamItem, String> {
        match self.rx.recv().await {
            Some(Incoming::Event(ProviderEvent::Error(message))) => Err(self
                .proc
                .with_stderr(format!("the provider reported an error: {message}"))),
            Some(Incoming::Event(e)) => Ok(StreamItem::Event(e)),
            Some(Incoming::Result(v)) => Ok(StreamItem::Done(parse_completion(v))),
            Some(Incoming::Error(e)) => Err(self
                .proc
                .with_stderr(format!("the provider failed the request: {e}"))),
            None => Err(self.proc.failure().await),
        }
    }

    /// Cancels the round: `$/cancel_request`, a short grace for the extension
    /// to finish, then a kill. Returns within about `grace`.
    pub async fn cancel(mut self) {
        self.proc
            .notify("$/cancel_request", json!({ "id": self.id }));
        let finished = tokio::time::timeout(self.grace, async {
            loop {
                match self.rx.recv().await {
                    Some(Incoming::Event(_)) => continue,
                    _ => return,
                }
            }
        })
        .await;
        if finished.is_err() {
            tracing::info!("extension ignored cancel; killing it");
            self.proc.kill("was killed after ignoring a cancel");
        }
        self.proc.forget(self.id);
    }

    /// Gives up on a stalled round: the process is killed, since it may still
    /// be producing output for it.
    pub fn abandon(self, why: &str) {
        self.proc.kill(why);
    }
}

fn parse_completion(v: Value) -> Completion {
    let content = v
        .get("content")
        .and_then(|c| serde_json::from_value::<Vec<Block>>(c.clone()).ok())
        .or_else(|| {
            v.get("content")
                .and_then(Value::as_str)
                .map(|t| vec![Block::Text { text: t.to_owned() }])
        })
        .unwrap_or_default();
    Completion {
        content,
        stop_reason: v
            .get("stop_reason")
            .and_then(Value::as_str)
            .map(str::to_owned),
        usage: v
            .get("usage")
            .and_then(|u| serde_json::from_value::<Usage>(u.clone()).ok()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_split_in_three() {
        assert_eq!(
            parse_ext_model("echo:echo:qwen2.5:7b"),
            Some(ExtModelId {
                plugin: "echo",
                provider: "echo",
                model: "qwen2.5:7b"
            })
        );
        assert_eq!(parse_ext_model("echo:echo"), None);
        assert_eq!(parse_ext_model("::x"), None);
    }
}
