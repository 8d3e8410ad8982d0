//! The provider registry: resolves a model id once into a [`Backend`],
//! lists models, prices usage, and opens rounds.
//!
//! Errors are `anyhow`, except where the host answers a command with them:
//! [`Providers::reach_now`] and [`Providers::reach`] say with a wire code
//! why a prompt cannot be run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context};

use super::extension::manifest::Manifest;
use super::extension::{self, Extension};
use super::http;
use super::http::catalog::Price;
use super::http::endpoints::{self, Endpoint};
use super::model_id::{self, Target};
use super::{ExtModelId, ProviderStream, Request};
use crate::config::Config;
use crate::error::Coded;
use crate::protocol::ErrorCode;
use crate::protocol::ModelEntry;

/// Longest a model listing waits for extensions that are still starting.
const LISTING_WAIT: Duration = Duration::from_millis(750);

/// Timeouts that apply to provider calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub init: Duration,
    pub idle: Duration,
    pub cancel_grace: Duration,
}

/// Where a model id leads, found once per use: every later step calls the
/// backend instead of parsing the id again.
enum Backend<'a> {
    Http {
        endpoint: &'a Endpoint,
        model: &'a str,
    },
    Extension {
        ext: &'a Arc<Extension>,
        id: ExtModelId<'a>,
    },
}

pub(crate) struct Providers {
    extensions: Vec<Arc<Extension>>,
    endpoints: BTreeMap<String, Endpoint>,
    default_model: Option<String>,
    http: http::Settings,
    pub timeouts: Timeouts,
}

impl Providers {
    pub(crate) fn new(
        manifests: Vec<Manifest>,
        config: &Config,
        timeouts: Timeouts,
    ) -> anyhow::Result<Self> {
        let endpoints = endpoints::build(config)?;
        let h = &config.http;
        let secs = |s: f64, what: &str| {
            Duration::try_from_secs_f64(s).map_err(|_| {
                anyhow!("config [http] {what} must be a non-negative number of seconds")
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

    /// Starts every extension in the background so that its models are known
    /// by the time a client asks; failures are kept for later reporting.
    pub(crate) fn warm_up(self: &Arc<Self>) {
        for ext in &self.extensions {
            let ext = ext.clone();
            tokio::spawn(async move {
                if let Err(e) = ext.proc().await {
                    tracing::warn!("{e:#}");
                }
            });
        }
    }

    /// The backend `id` names: its syntax checked, its endpoint or
    /// extension found. An extension's own provider and model names are
    /// checked once it has started.
    fn resolve<'a>(&'a self, id: &'a str) -> anyhow::Result<Backend<'a>> {
        match model_id::parse(id)? {
            Target::Http { provider, model } => {
                let endpoint = self.endpoints.get(provider).with_context(|| {
                    format!(
                        "unknown provider {provider:?} (known: {}; add [providers.{provider}] to the config file for another OpenAI-compatible endpoint)",
                        self.endpoints.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                })?;
                Ok(Backend::Http { endpoint, model })
            }
            Target::Extension(id) => {
                let ext = self
                    .extensions
                    .iter()
                    .find(|e| e.id() == id.plugin)
                    .with_context(|| {
                        format!(
                            "no provider extension {:?} is installed (known: {})",
                            id.plugin,
                            self.plugin_list()
                        )
                    })?;
                Ok(Backend::Extension { ext, id })
            }
        }
    }

    /// Checks a model id without waiting for anything: the syntax, that the
    /// provider or plugin exists. An extension's own provider and model names
    /// are checked by [`Providers::check_model`] once it has started.
    pub(crate) fn check_model_quick(&self, id: &str) -> anyhow::Result<()> {
        match self.resolve(id)? {
            Backend::Http { endpoint, model } => not_a_slip(endpoint, model),
            Backend::Extension { .. } => Ok(()),
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
    pub(crate) async fn check_model(&self, id: &str) -> anyhow::Result<()> {
        match self.resolve(id)? {
            // Any model name may be sent to an HTTP endpoint (services add
            // models faster than a catalogue can follow), but not one a
            // slip away from a listed one.
            Backend::Http { endpoint, model } => not_a_slip(endpoint, model),
            Backend::Extension { ext, id } => ext.model(&id).await.map(drop),
        }
    }

    /// The full check when it needs no waiting: always for HTTP ids, and for
    /// an extension that has already reported its models. `None` when the
    /// extension must start first.
    pub(crate) fn check_model_now(&self, id: &str) -> Option<anyhow::Result<()>> {
        let checked = match self.resolve(id) {
            Ok(Backend::Http { .. }) => Ok(()),
            Ok(Backend::Extension { ext, id }) => {
                extension::find_model(&id, &ext.known_providers()?).map(drop)
            }
            Err(e) => Err(e),
        };
        Some(checked)
    }

    /// The model a prompt will run on — `model`, else the default — if it
    /// can be reached at all: its provider exists, its key is set, its
    /// extension offers it. `None` when that needs an extension to start
    /// first (then [`Providers::reach`] decides). Decided before anything
    /// of the prompt is stored, so a prompt that could never run leaves no
    /// trace.
    pub(crate) fn reach_now(&self, model: Option<&str>) -> Option<Result<String, Coded>> {
        let model = match model.or(self.default_model.as_deref()) {
            Some(m) => m.to_owned(),
            None => {
                // The first available model, when no extension is still to
                // report: the same choice `default_model` would make.
                let mut known = Vec::new();
                for ext in &self.extensions {
                    known.push((ext, ext.known_providers()?));
                }
                let first = known
                    .iter()
                    .find_map(|(ext, providers)| {
                        providers.iter().find_map(|p| {
                            p.models
                                .first()
                                .map(|m| format!("{}:{}:{}", ext.id(), p.id, m.id))
                        })
                    })
                    .or_else(|| self.first_available_endpoint_model());
                return Some(first.ok_or_else(|| self.no_model()));
            }
        };
        let checked = match self.resolve(&model) {
            Err(e) => Err(unknown(&e)),
            Ok(Backend::Http { endpoint, .. }) => endpoint
                .key()
                .map(drop)
                .map_err(|e| Coded::new(ErrorCode::ProviderError, format!("model {model}: {e:#}"))),
            Ok(Backend::Extension { ext, id }) => {
                extension::find_model(&id, &ext.known_providers()?)
                    .map(drop)
                    .map_err(|e| unknown(&e))
            }
        };
        Some(checked.map(|()| model))
    }

    /// [`Providers::reach_now`], waiting for extensions to start. An
    /// extension that cannot start makes its models unreachable
    /// (`provider_error`, with why).
    pub(crate) async fn reach(&self, model: Option<&str>) -> Result<String, Coded> {
        let model = match model.or(self.default_model.as_deref()) {
            Some(m) => m.to_owned(),
            None => self.default_model().await.ok_or_else(|| self.no_model())?,
        };
        if let Ok(Backend::Extension { ext, .. }) = self.resolve(&model) {
            if let Err(e) = ext.providers().await {
                return Err(Coded::new(
                    ErrorCode::ProviderError,
                    format!("model {model}: {e:#}"),
                ));
            }
        }
        self.reach_now(Some(&model)).unwrap_or_else(|| {
            Err(Coded::new(
                ErrorCode::ProviderError,
                format!("model {model}: its extension reported no providers"),
            ))
        })
    }

    /// The first catalogue or configured model of an endpoint that can be
    /// used, in listing order.
    fn first_available_endpoint_model(&self) -> Option<String> {
        self.first_endpoint_model()
    }

    /// The first model of an endpoint that can be used: in listing order,
    /// except that Google comes after the others, which were the choice
    /// before it was added (a GEMINI_API_KEY in the environment changes no
    /// one's default).
    fn first_endpoint_model(&self) -> Option<String> {
        let (google, rest): (Vec<&Endpoint>, Vec<&Endpoint>) = self
            .endpoints
            .values()
            .filter(|e| e.available())
            .partition(|e| e.name == "google" && !e.configured);
        rest.into_iter()
            .chain(google)
            .find_map(|e| e.models.first().map(|m| format!("{}/{}", e.name, m.id)))
    }

    /// Every model: extension models (starting extensions if needed), then
    /// the catalogue and configured models of every HTTP endpoint.
    pub(crate) async fn available_models(&self) -> Vec<ModelEntry> {
        // Extensions still starting get a short, shared wait: the answer must
        // come fast even when one of them hangs in initialize.
        self.available_models_within(LISTING_WAIT).await
    }

    /// [`Providers::available_models`], waiting up to `wait` in all for
    /// extensions still starting (a background listing can wait for a
    /// slow extension; a command's answer cannot).
    pub(crate) async fn available_models_within(&self, wait: Duration) -> Vec<ModelEntry> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
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
                                reasoning: m.reasoning,
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
                    reasoning: false,
                    available: false,
                    error: Some(format!("{e:#}")),
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
                    reasoning: m.reasoning,
                    available,
                    error: None,
                });
            }
        }
        out
    }

    /// The model used when none was chosen: the config's `default_model`,
    /// else the first available one.
    pub(crate) async fn default_model(&self) -> Option<String> {
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

    /// For an extension model whose extension has not answered
    /// `initialize` yet: waits for that answer and says why the extension
    /// does not offer the model, if it does not. For a model that names no
    /// extension or provider of this process (a resumed session's), says so
    /// at once. `None` in every other case (an HTTP model, a known
    /// extension, a model offered, a failed start — which is reported where
    /// it is used).
    pub(crate) async fn unoffered_after_start(&self, id: &str) -> Option<String> {
        let (ext, id) = match self.resolve(id) {
            Ok(Backend::Extension { ext, id }) => (ext, id),
            Ok(Backend::Http { .. }) => return None,
            // A resumed session's model whose extension this process was
            // not given (or whose provider is gone): said at once, not at
            // the first prompt.
            Err(e) => return Some(format!("{e:#}")),
        };
        if ext.known_providers().is_some() {
            return None;
        }
        let providers = ext.settled().await?;
        extension::find_model(&id, &providers)
            .err()
            .map(|e| format!("{e:#}"))
    }

    /// The config file's `default_model`, if it sets one.
    pub(crate) fn configured_default(&self) -> Option<&str> {
        self.default_model.as_deref()
    }

    /// The default model when it is known without waiting: the config's
    /// `default_model`, else (with no extension, whose models come first)
    /// the first available HTTP model. `None` when extensions must report
    /// first, or nothing is available.
    pub(crate) fn default_model_now(&self) -> Option<String> {
        if let Some(m) = &self.default_model {
            return Some(m.clone());
        }
        if !self.extensions.is_empty() {
            return None;
        }
        self.first_endpoint_model()
    }

    /// Whether the default model can depend on extensions still starting.
    pub(crate) fn has_extensions(&self) -> bool {
        !self.extensions.is_empty()
    }

    /// The environment variables that hold provider keys.
    pub(crate) fn key_vars(&self) -> Vec<String> {
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
    pub(crate) fn price(&self, id: &str) -> Option<Price> {
        match self.resolve(id).ok()? {
            Backend::Http { endpoint, model } => endpoint.model(model)?.price,
            Backend::Extension { .. } => None,
        }
    }

    /// The model's context window and output limit, where known (the
    /// catalogue, the config, or the extension's model info).
    pub(crate) async fn limits(&self, id: &str) -> (Option<u64>, Option<u64>) {
        match self.resolve(id) {
            Ok(Backend::Http { endpoint, model }) => endpoint
                .model(model)
                .map(|m| (m.context_window, m.max_tokens))
                .unwrap_or_default(),
            Ok(Backend::Extension { ext, id }) => {
                let Ok(providers) = ext.providers().await else {
                    return (None, None);
                };
                let window = providers
                    .iter()
                    .filter(|p| p.id == id.provider)
                    .flat_map(|p| p.models.iter())
                    .find(|m| m.id == id.model)
                    .and_then(|m| m.context_window);
                (window, None)
            }
            Err(_) => (None, None),
        }
    }

    /// Opens one round against `model`.
    pub(crate) async fn stream(
        &self,
        model: &str,
        req: &Request<'_>,
    ) -> anyhow::Result<ProviderStream> {
        match self.resolve(model)? {
            Backend::Http { endpoint, model } => http::open(&self.http, endpoint, model, req),
            Backend::Extension { ext, id } => {
                extension::open(ext, &id, req, self.timeouts.cancel_grace).await
            }
        }
    }

    /// Stops every running extension, all at once, giving up after half a
    /// second: the process is exiting, and what is still running is
    /// killed with it.
    pub(crate) async fn shutdown(&self) {
        let grace = Duration::from_millis(200);
        let mut set = tokio::task::JoinSet::new();
        for ext in &self.extensions {
            let ext = ext.clone();
            set.spawn(async move { ext.shutdown(grace).await });
        }
        let all = async { while set.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(Duration::from_millis(500), all).await;
    }
}

impl Providers {
    /// No model set and none available: why (an extension that could not
    /// start is the likely reason, and only stderr said so), and what to
    /// do about it.
    fn no_model(&self) -> Coded {
        let failed: Vec<String> = self
            .extensions
            .iter()
            // Each names its extension already.
            .filter_map(|ext| ext.failure())
            .collect();
        let why = if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join("; "))
        };
        Coded::new(
            ErrorCode::NotFound,
            format!(
                "no model is available{why}: set ANTHROPIC_API_KEY, OPENAI_API_KEY or GEMINI_API_KEY, configure a \
                 provider in the config file, or start rpc with --extension <dir>; then pick a \
                 model with --model or set_model (see README); the prompt was not run"
            ),
        )
    }
}

/// `model` is not a near miss of one of the endpoint's listed models.
fn not_a_slip(endpoint: &Endpoint, model: &str) -> anyhow::Result<()> {
    let known = endpoint.models.iter().map(|m| m.id.as_str());
    match super::typo::near_miss(model, known) {
        Some(meant) => Err(anyhow::anyhow!(
            "{}/{model} is not a model {} lists; did you mean {meant}?",
            endpoint.name,
            endpoint.name
        )),
        None => Ok(()),
    }
}

/// A model id that names nothing usable.
fn unknown(e: &anyhow::Error) -> Coded {
    Coded::new(
        ErrorCode::NotFound,
        format!("{e:#}; pick another model with set_model (get_available_models lists them); the prompt was not run"),
    )
}
