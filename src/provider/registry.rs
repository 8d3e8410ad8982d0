//! The provider registry: resolves model ids to extensions or HTTP
//! endpoints, lists models, prices usage, and opens rounds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use serde_json::json;
use tokio::sync::mpsc;

use super::http::catalog::Price;
use super::http::endpoints::{self, Endpoint, Target};
use super::extension::Extension;
use super::extension::manifest::Manifest;
use super::http::{self, anthropic, openai, Prepared};
use super::{ModelEntry, ModelInfo, ProviderStream, Request};
use crate::config::{Config, Kind};

/// A model of an extension's reported providers, or what it has instead.
fn find_ext_model(
    parsed: &super::ExtModelId<'_>,
    providers: &[super::ProviderInfo],
) -> Result<ModelInfo, String> {
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

/// Longest a model listing waits for extensions that are still starting.
const LISTING_WAIT: Duration = Duration::from_millis(750);

/// Events buffered between an HTTP round task and the turn.
const HTTP_STREAM_CAPACITY: usize = 256;

/// Timeouts that apply to provider calls.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub init: Duration,
    pub idle: Duration,
    pub cancel_grace: Duration,
}

pub struct Providers {
    extensions: Vec<Arc<Extension>>,
    endpoints: BTreeMap<String, Endpoint>,
    default_model: Option<String>,
    http: http::Settings,
    pub timeouts: Timeouts,
}

impl Providers {
    pub fn new(
        manifests: Vec<Manifest>,
        config: &Config,
        timeouts: Timeouts,
    ) -> Result<Self, String> {
        let endpoints = endpoints::build(config)?;
        let h = &config.http;
        let secs = |s: f64, what: &str| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                format!("config [http] {what} must be a non-negative number of seconds")
            })
        };
        Ok(Providers {
            extensions: manifests
                .into_iter()
                .map(|m| Arc::new(Extension::new(m, timeouts.init)))
                .collect(),
            endpoints,
            default_model: config.default_model.clone(),
            http: http::Settings {
                connect_timeout: secs(h.connect_timeout_secs, "connect_timeout_secs")?,
                idle_timeout: timeouts.idle,
                max_retries: h.max_retries,
                max_retry_time: secs(h.max_retry_secs, "max_retry_secs")?,
                base_delay: Duration::from_millis(h.retry_base_delay_ms),
            },
            timeouts,
        })
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

    fn endpoint(&self, name: &str) -> Result<&Endpoint, String> {
        self.endpoints.get(name).ok_or_else(|| {
            format!(
                "unknown provider {name:?} (known: {}; add [providers.{name}] to the config file for another OpenAI-compatible endpoint)",
                self.endpoints.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// Checks a model id without waiting for anything: the syntax, that the
    /// provider or plugin exists. An extension's own provider and model names
    /// are checked by [`Providers::check_model`] once it has started.
    pub fn check_model_quick(&self, id: &str) -> Result<(), String> {
        match endpoints::parse(id)? {
            Target::Http { provider, .. } => self.endpoint(provider).map(|_| ()),
            Target::Extension(parsed) => {
                if self.extension(parsed.plugin).is_none() {
                    return Err(format!(
                        "no provider extension {:?} is installed (known: {})",
                        parsed.plugin,
                        self.plugin_list()
                    ));
                }
                Ok(())
            }
        }
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
    pub async fn check_model(&self, id: &str) -> Result<(), String> {
        match endpoints::parse(id)? {
            // Any model name may be sent to an HTTP endpoint: services add
            // models faster than a catalogue can follow.
            Target::Http { provider, .. } => self.endpoint(provider).map(|_| ()),
            Target::Extension(_) => self.extension_model(id).await.map(|_| ()),
        }
    }

    async fn extension_model(&self, id: &str) -> Result<ModelInfo, String> {
        self.check_model_quick(id)?;
        let Ok(Target::Extension(parsed)) = endpoints::parse(id) else {
            return Err(format!("{id:?} is not an extension model id"));
        };
        let ext = self
            .extension(parsed.plugin)
            .ok_or("unreachable: checked above")?;
        let providers = ext.providers().await?;
        find_ext_model(&parsed, &providers)
    }

    /// The full check when it needs no waiting: always for HTTP ids, and for
    /// an extension that has already reported its models. `None` when the
    /// extension must start first.
    pub fn check_model_now(&self, id: &str) -> Option<Result<(), String>> {
        if let Err(e) = self.check_model_quick(id) {
            return Some(Err(e));
        }
        match endpoints::parse(id) {
            Ok(Target::Extension(parsed)) => {
                let providers = self.extension(parsed.plugin)?.known_providers()?;
                Some(find_ext_model(&parsed, &providers).map(|_| ()))
            }
            Ok(Target::Http { .. }) => Some(Ok(())),
            Err(e) => Some(Err(e)),
        }
    }

    /// Every model: extension models (starting extensions if needed), then
    /// the catalogue and configured models of every HTTP endpoint.
    pub async fn available_models(&self) -> Vec<ModelEntry> {
        let mut out = Vec::new();
        // Extensions still starting get a short, shared wait: the answer must
        // come fast even when one of them hangs in initialize.
        let deadline = tokio::time::Instant::now() + LISTING_WAIT;
        for ext in &self.extensions {
            match ext.providers_by(deadline).await {
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
        for e in self.endpoints.values() {
            let available = e.available();
            for m in &e.models {
                out.push(ModelEntry {
                    id: format!("{}/{}", e.name, m.id),
                    provider: e.name.clone(),
                    name: m.name.clone(),
                    context_window: m.context_window,
                    available,
                    error: None,
                });
            }
        }
        out
    }

    /// The model used when none was chosen: the config's `default_model`,
    /// else the first available one.
    pub async fn default_model(&self) -> Option<String> {
        if let Some(m) = &self.default_model {
            return Some(m.clone());
        }
        // Unlike a listing, a turn can wait for its extensions to report
        // (each bounded by its initialize timeout): skipping a slow one
        // would pick a different model than a moment later.
        for ext in &self.extensions {
            if let Ok(providers) = ext.providers().await {
                if let Some((p, m)) = providers
                    .iter()
                    .find_map(|p| p.models.first().map(|m| (p, m)))
                {
                    return Some(format!("{}:{}:{}", ext.id(), p.id, m.id));
                }
            }
        }
        self.available_models()
            .await
            .into_iter()
            .find(|m| m.available)
            .map(|m| m.id)
    }

    /// The environment variables that hold provider keys.
    pub fn key_vars(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .endpoints
            .values()
            .filter_map(|e| e.api_key_env.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Prices of a model, when known (catalogue or config).
    pub fn price(&self, id: &str) -> Option<Price> {
        match endpoints::parse(id).ok()? {
            Target::Http { provider, model } => self.endpoints.get(provider)?.model(model)?.price,
            Target::Extension(_) => None,
        }
    }

    /// Opens one round against `model`.
    pub async fn stream(&self, model: &str, req: &Request) -> Result<ProviderStream, String> {
        match endpoints::parse(model)? {
            Target::Http { provider, model } => self.http_stream(provider, model, req),
            Target::Extension(parsed) => {
                let info = self.extension_model(model).await?;
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
                    // A model that declares no tool use is not offered tools.
                    "tools": if info.tool_use { req.tools } else { &[] },
                    "temperature": req.temperature,
                    "max_tokens": req.max_tokens,
                });
                let method = if info.streaming {
                    "provider.stream"
                } else {
                    "provider.complete"
                };
                let (id, rx) = proc.request(method, params, info.streaming).await?;
                Ok(ProviderStream::extension(
                    proc,
                    id,
                    rx,
                    self.timeouts.cancel_grace,
                ))
            }
        }
    }

    fn http_stream(
        &self,
        provider: &str,
        model: &str,
        req: &Request,
    ) -> Result<ProviderStream, String> {
        let endpoint = self.endpoint(provider)?;
        let key = endpoint.key()?;
        let spec = endpoint.model(model);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
        let body = match endpoint.kind {
            Kind::Anthropic => {
                headers.insert(
                    "anthropic-version",
                    HeaderValue::from_static(anthropic::API_VERSION),
                );
                if let Some(k) = &key {
                    headers.insert("x-api-key", http::secret_header(k)?);
                }
                let max = spec
                    .and_then(|s| s.max_tokens)
                    .unwrap_or(anthropic::DEFAULT_MAX_TOKENS);
                anthropic::body(model, max, req)
            }
            Kind::Openai => {
                if let Some(k) = &key {
                    headers.insert(
                        reqwest::header::AUTHORIZATION,
                        http::secret_header(&format!("Bearer {k}"))?,
                    );
                }
                let field = if endpoint.name == "openai" {
                    "max_completion_tokens"
                } else {
                    "max_tokens"
                };
                let mut req = req.clone();
                req.max_tokens = req.max_tokens.or(spec
                    .and_then(|s| s.max_tokens)
                    .filter(|_| endpoint.configured));
                openai::body(model, &req, field)
            }
        };
        let prepared = Prepared {
            provider: endpoint.name.clone(),
            url: endpoint.url(),
            headers,
            body: body.to_string().into_bytes(),
            secret: key,
        };
        let kind = endpoint.kind;
        let (tx, rx) = mpsc::channel(HTTP_STREAM_CAPACITY);
        let task = tokio::spawn(http::run(
            self.http.clone(),
            prepared,
            move || -> Box<dyn http::Decoder> {
                match kind {
                    Kind::Anthropic => Box::new(anthropic::AnthropicDecoder::new()),
                    Kind::Openai => Box::new(openai::OpenAiDecoder::new()),
                }
            },
            tx,
        ));
        Ok(ProviderStream::http(rx, task))
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
