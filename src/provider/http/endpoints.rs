//! HTTP endpoints: Anthropic, OpenAI, Google, well-known OpenAI-compatible services
//! and the config's own, each with its URL, key variable and models.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::{anyhow, Context};

use super::catalog::{self, ModelSpec, Price};
use crate::config::{env_nonempty, ApiName, Config, Kind, ModelConfig, OpenaiApi, ProviderConfig};

#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub name: String,
    pub kind: Kind,
    /// For kind `openai`: the API the config chose (`api =`); `None` picks
    /// per model (see [`Endpoint::openai_api`]).
    pub api: Option<OpenaiApi>,
    /// Without a trailing slash.
    pub base_url: String,
    /// Where `base_url` came from, for messages about a wrong one.
    pub base_url_source: UrlSource,
    /// The variable holding the key; `None` for keyless (local) servers.
    pub api_key_env: Option<String>,
    /// Named in the config file (a keyless endpoint counts as usable only
    /// then, since a preset like `ollama` may not be running at all).
    pub configured: bool,
    /// Send Anthropic `cache_control` breakpoints (config `prompt_caching`).
    pub prompt_caching: bool,
    pub models: Vec<ModelSpec>,
}

impl Endpoint {
    /// The key, if one is needed and set (empty counts as unset).
    pub(crate) fn key(&self) -> anyhow::Result<Option<String>> {
        let Some(var) = &self.api_key_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Some(v)),
            _ => Err(anyhow!(
                "{var} is not set: export {var}=<your key> before starting rpc{}",
                if self.configured {
                    String::new()
                } else {
                    format!(
                        " (or set api_key_env for [providers.{}] in the config file)",
                        self.name
                    )
                }
            )),
        }
    }

    /// Whether a request could be sent now. Asked for every endpoint at
    /// start-up (the default model) and in every listing, so it reads the
    /// variable without building the error `key` would.
    pub(crate) fn available(&self) -> bool {
        match &self.api_key_env {
            Some(var) => std::env::var_os(var).is_some_and(|v| !v.is_empty()),
            None => self.configured,
        }
    }

    /// The output limit a request to `model` sends: the request's own, else
    /// a configured model's. A catalogue limit is not sent: it is only a
    /// guess about a service that knows better (Chat Completions, Responses
    /// and Gemini; Anthropic requires a limit and picks its own).
    pub(crate) fn max_output_tokens(&self, model: &str, requested: Option<u64>) -> Option<u64> {
        requested.or(self
            .model(model)
            .and_then(|s| s.max_tokens)
            .filter(|_| self.configured))
    }

    /// What this endpoint and the catalogue decide about a request for
    /// `model` (the APIs that carry reasoning between turns need them all).
    pub(crate) fn request_options(&self, model: &str, requested: Option<u64>) -> RequestOptions {
        RequestOptions {
            model_id: format!("{}/{model}", self.name),
            reasoning: self.reasoning(model),
            max_output_tokens: self.max_output_tokens(model, requested),
        }
    }

    /// Whether `model` takes a thinking level: as its catalogue or config
    /// entry says, else as its family name suggests.
    pub(crate) fn reasoning(&self, model: &str) -> bool {
        self.model(model)
            .map_or_else(|| catalog::is_reasoning(model), |s| s.reasoning)
    }

    /// The OpenAI API `model` is sent over: the configured one, else the
    /// Responses API for OpenAI's own reasoning models (over Chat
    /// Completions they lose their reasoning between tool calls), else
    /// Chat Completions, which the compatible servers speak.
    pub(crate) fn openai_api(&self, model: &str) -> OpenaiApi {
        match self.api {
            Some(api) => api,
            None if self.name == "openai" && self.reasoning(model) => OpenaiApi::Responses,
            None => OpenaiApi::ChatCompletions,
        }
    }

    pub(crate) fn model(&self, id: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.id == id)
    }

    /// The full request URL for an API's `path` (`Api::path`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

/// Where an endpoint's base URL was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UrlSource {
    /// The built-in default.
    Default,
    /// An environment variable (`OPENAI_BASE_URL`, `OLLAMA_HOST`, …).
    Env(&'static str),
    /// `[providers.<name>] base_url` in the config file.
    Config {
        provider: String,
        file: Option<PathBuf>,
    },
}

impl fmt::Display for UrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlSource::Default => f.write_str("the built-in default"),
            UrlSource::Env(var) => write!(f, "from {var}"),
            UrlSource::Config {
                provider,
                file: Some(file),
            } => write!(
                f,
                "from [providers.{provider}] base_url in {}",
                file.display()
            ),
            UrlSource::Config {
                provider,
                file: None,
            } => write!(f, "from [providers.{provider}] base_url in the config file"),
        }
    }
}

/// A base URL from an environment variable, else the default.
fn env_or(var: &'static str, default: &str) -> (String, UrlSource) {
    match env_nonempty(var) {
        Some(url) => (url, UrlSource::Env(var)),
        None => (default.to_owned(), UrlSource::Default),
    }
}

/// The OpenAI-compatible base URL `OLLAMA_HOST` names, read the way Ollama
/// reads it: `host`, `host:port` or a URL; `http://` and port 11434 when not
/// given (80/443 for an explicit http/https URL without a port); `/v1`
/// appended for the OpenAI-compatible API.
pub(crate) fn ollama_base_url(value: &str) -> Option<String> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    let (scheme, rest, default_port) = match value.split_once("://") {
        None => ("http", value, "11434"),
        Some(("http", rest)) => ("http", rest, "80"),
        Some(("https", rest)) => ("https", rest, "443"),
        Some((other, rest)) => (other, rest, "11434"),
    };
    let (hostport, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = split_host_port(hostport).unwrap_or((hostport, default_port));
    let host = if host.is_empty() { "127.0.0.1" } else { host };
    let path = path.trim_end_matches('/');
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    Some(format!("{scheme}://{host}:{port}{path}/v1"))
}

/// `host:port` or `[v6]:port` split in two; `None` without a numeric port.
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let (host, port) = hostport.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A bare IPv6 address has colons of its own; only `[…]:port` has a port.
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return None;
    }
    Some((host, port))
}

/// (name, base URL, key variable) of OpenAI-compatible services known by name.
const PRESETS: &[(&str, &str, Option<&str>)] = &[
    (
        "openrouter",
        "https://openrouter.ai/api/v1",
        Some("OPENROUTER_API_KEY"),
    ),
    (
        "groq",
        "https://api.groq.com/openai/v1",
        Some("GROQ_API_KEY"),
    ),
    (
        "together",
        "https://api.together.xyz/v1",
        Some("TOGETHER_API_KEY"),
    ),
    (
        "deepseek",
        "https://api.deepseek.com/v1",
        Some("DEEPSEEK_API_KEY"),
    ),
    (
        "mistral",
        "https://api.mistral.ai/v1",
        Some("MISTRAL_API_KEY"),
    ),
    ("xai", "https://api.x.ai/v1", Some("XAI_API_KEY")),
    ("ollama", "http://localhost:11434/v1", None),
    ("lmstudio", "http://localhost:1234/v1", None),
    ("vllm", "http://localhost:8000/v1", None),
    ("llamacpp", "http://localhost:8080/v1", None),
];

/// Every endpoint: built-ins, presets, then the config's, which override a
/// built-in of the same name field by field.
pub(crate) fn build(config: &Config) -> anyhow::Result<BTreeMap<String, Endpoint>> {
    let mut all = builtin();
    for (name, pc) in &config.providers {
        let endpoint = configured(name, pc, all.remove(name), config)?;
        all.insert(name.clone(), endpoint);
    }
    for e in all.values_mut() {
        while e.base_url.ends_with('/') {
            e.base_url.pop();
        }
    }
    Ok(all)
}

/// The endpoints there are without a config: Anthropic, OpenAI and the
/// [`PRESETS`], their base URLs from the environment where it sets one.
fn builtin() -> BTreeMap<String, Endpoint> {
    let mut all = BTreeMap::new();
    let anthropic_base = env_or("ANTHROPIC_BASE_URL", "https://api.anthropic.com");
    let openai_base = env_or("OPENAI_BASE_URL", "https://api.openai.com/v1");
    all.insert(
        "anthropic".to_owned(),
        Endpoint {
            name: "anthropic".into(),
            kind: Kind::Anthropic,
            api: None,
            base_url: anthropic_base.0,
            base_url_source: anthropic_base.1,
            api_key_env: Some("ANTHROPIC_API_KEY".into()),
            configured: false,
            prompt_caching: true,
            models: catalog::anthropic(),
        },
    );
    all.insert(
        "openai".to_owned(),
        Endpoint {
            name: "openai".into(),
            kind: Kind::Openai,
            api: None,
            base_url: openai_base.0,
            base_url_source: openai_base.1,
            api_key_env: Some("OPENAI_API_KEY".into()),
            configured: false,
            prompt_caching: true,
            models: catalog::openai(),
        },
    );
    let google_base = env_or(
        "GOOGLE_GEMINI_BASE_URL",
        "https://generativelanguage.googleapis.com",
    );
    all.insert(
        "google".to_owned(),
        Endpoint {
            name: "google".into(),
            kind: Kind::Gemini,
            api: None,
            base_url: google_base.0,
            base_url_source: google_base.1,
            api_key_env: Some(google_key_var().into()),
            configured: false,
            prompt_caching: true,
            models: catalog::gemini(),
        },
    );
    for &(name, url, key) in PRESETS {
        let (base_url, base_url_source) = match name {
            "ollama" => match env_nonempty("OLLAMA_HOST").and_then(|v| ollama_base_url(&v)) {
                Some(url) => (url, UrlSource::Env("OLLAMA_HOST")),
                None => (url.to_owned(), UrlSource::Default),
            },
            _ => (url.to_owned(), UrlSource::Default),
        };
        all.insert(
            name.to_owned(),
            Endpoint {
                name: name.into(),
                kind: Kind::Openai,
                api: None,
                base_url,
                base_url_source,
                api_key_env: key.map(str::to_owned),
                configured: false,
                prompt_caching: true,
                models: Vec::new(),
            },
        );
    }
    all
}

/// Google's two names for the Gemini key, as its own tools read them:
/// `GEMINI_API_KEY`, else `GOOGLE_API_KEY` when only that one is set.
fn google_key_var() -> &'static str {
    if env_nonempty("GEMINI_API_KEY").is_none() && env_nonempty("GOOGLE_API_KEY").is_some() {
        "GOOGLE_API_KEY"
    } else {
        "GEMINI_API_KEY"
    }
}

/// `[providers.<name>]` applied to the built-in endpoint of that name
/// (`existing`), or a new endpoint, which needs a kind and a base URL.
fn configured(
    name: &str,
    pc: &ProviderConfig,
    existing: Option<Endpoint>,
    config: &Config,
) -> anyhow::Result<Endpoint> {
    let config_source = || UrlSource::Config {
        provider: name.to_owned(),
        file: config.path.clone(),
    };
    // `api` names a wire API, so it implies a kind; it never changes the
    // kind that was set (a built-in's, or `kind =`).
    let implied = pc.api.map(ApiName::resolve);
    let mismatch = |kind: Kind| {
        if kind == Kind::Openai {
            anyhow!(
                "[providers.{name}] api = … chooses between OpenAI's APIs; it needs kind = \"openai\""
            )
        } else {
            anyhow!("[providers.{name}] api = \"gemini\" needs kind = \"gemini\"")
        }
    };
    let endpoint = match existing {
        Some(mut e) => {
            if let Some(kind) = pc.kind {
                e.kind = kind;
            }
            if let Some((kind, api)) = implied {
                if kind != e.kind {
                    return Err(mismatch(kind));
                }
                e.api = api;
            }
            if let Some(url) = &pc.base_url {
                e.base_url = url.clone();
                e.base_url_source = config_source();
            }
            if pc.api_key_env.is_some() {
                e.api_key_env = pc.api_key_env.clone();
            }
            e
        }
        None => Endpoint {
            name: name.to_owned(),
            kind: match (pc.kind, implied) {
                (Some(kind), Some((wanted, _))) if kind != wanted => return Err(mismatch(wanted)),
                (kind, implied) => kind.or(implied.map(|(k, _)| k)),
            }
            .with_context(|| {
                format!("[providers.{name}] needs kind = \"openai\", \"anthropic\" or \"gemini\"")
            })?,
            api: implied.and_then(|(_, api)| api),
            base_url: pc
                .base_url
                .clone()
                .with_context(|| format!("[providers.{name}] needs a base_url"))?,
            base_url_source: config_source(),
            api_key_env: pc.api_key_env.clone(),
            configured: true,
            prompt_caching: true,
            models: Vec::new(),
        },
    };
    let mut endpoint = Endpoint {
        configured: true,
        prompt_caching: pc.prompt_caching.unwrap_or(endpoint.prompt_caching),
        ..endpoint
    };
    for m in &pc.models {
        merge_model(&mut endpoint.models, m);
    }
    Ok(endpoint)
}

fn merge_model(models: &mut Vec<ModelSpec>, m: &ModelConfig) {
    let existing = models.iter_mut().find(|s| s.id == m.id);
    let spec = match existing {
        Some(s) => s,
        None => {
            models.push(ModelSpec {
                id: m.id.clone(),
                name: m.id.clone(),
                context_window: None,
                max_tokens: None,
                price: None,
                reasoning: catalog::is_reasoning(&m.id),
            });
            models.last_mut().expect("just pushed")
        }
    };
    if let Some(n) = &m.name {
        spec.name = n.clone();
    }
    spec.context_window = m.context_window.or(spec.context_window);
    spec.max_tokens = m.max_tokens.or(spec.max_tokens);
    spec.reasoning = m.reasoning.unwrap_or(spec.reasoning);
    if let (Some(input), Some(output)) = (m.input_price, m.output_price) {
        spec.price = Some(Price {
            input,
            output,
            cache_read: m.cache_read_price.unwrap_or(input),
            cache_write: m.cache_write_price.unwrap_or(input),
        });
    }
}

/// What the endpoint and the catalogue decide about one request.
pub(crate) struct RequestOptions {
    /// `provider/model`: reasoning (items, signatures) made by another model
    /// is not sent back (it is encrypted or signed for the model that wrote it).
    pub model_id: String,
    /// The model reasons: it takes a reasoning or thinking configuration;
    /// the others reject it.
    pub reasoning: bool,
    pub max_output_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_gemini_names_googles_api() {
        let config = crate::config::parse(
            "[providers.vertexish]\napi = \"gemini\"\nbase_url = \"https://g.example.com\"\n\
             [providers.google]\napi = \"gemini\"\n",
        )
        .unwrap();
        let all = build(&config).unwrap();
        assert_eq!(all["vertexish"].kind, Kind::Gemini);
        assert_eq!(all["google"].kind, Kind::Gemini);
        for bad in [
            "[providers.openai]\napi = \"gemini\"\n",
            "[providers.x]\nkind = \"anthropic\"\napi = \"gemini\"\nbase_url = \"http://x\"\n",
            "[providers.google]\napi = \"responses\"\n",
        ] {
            let config = crate::config::parse(bad).unwrap();
            assert!(build(&config).is_err(), "{bad}");
        }
    }

    #[test]
    fn openais_reasoning_models_default_to_the_responses_api() {
        let config = crate::config::parse(
            r#"
[[providers.openai.models]]
id = "house-reasoner"
reasoning = true
[providers.work]
kind = "openai"
api = "responses"
base_url = "https://llm.example.com/v1"
[providers.groq]
api = "chat_completions"
"#,
        )
        .unwrap();
        let all = build(&config).unwrap();
        let api = |e: &str, m: &str| all[e].openai_api(m);
        assert_eq!(api("openai", "o3"), OpenaiApi::Responses);
        assert_eq!(api("openai", "house-reasoner"), OpenaiApi::Responses);
        assert_eq!(api("openai", "gpt-4o-mini"), OpenaiApi::ChatCompletions);
        assert_eq!(api("work", "anything"), OpenaiApi::Responses);
        assert_eq!(api("groq", "o3"), OpenaiApi::ChatCompletions);
        assert_eq!(api("openrouter", "o3"), OpenaiApi::ChatCompletions);
        let bad = crate::config::parse("[providers.anthropic]\napi = \"responses\"\n").unwrap();
        let e = build(&bad).unwrap_err().to_string();
        assert!(e.contains("kind = \"openai\""), "{e}");
    }

    #[test]
    fn config_overrides_and_adds_endpoints() {
        let config = crate::config::parse(
            r#"
[providers.ollama]
[[providers.ollama.models]]
id = "qwen2.5:7b"
context_window = 32768
[providers.work]
kind = "openai"
base_url = "https://llm.example.com/v1/"
api_key_env = "WORK_KEY"
[providers.openai]
[[providers.openai.models]]
id = "gpt-4o"
input_price = 1.0
output_price = 2.0
"#,
        )
        .unwrap();
        let all = build(&config).unwrap();
        assert!(all["ollama"].available(), "configured keyless endpoint");
        assert!(!all["lmstudio"].available(), "unconfigured keyless preset");
        assert_eq!(
            all["work"].url("/chat/completions"),
            "https://llm.example.com/v1/chat/completions"
        );
        assert_eq!(
            all["openai"].model("gpt-4o").unwrap().price.unwrap().input,
            1.0
        );
        assert_eq!(
            all["work"].base_url_source.to_string(),
            "from [providers.work] base_url in the config file"
        );
        let bad = crate::config::parse("[providers.x]\nbase_url = \"http://h\"\n").unwrap();
        assert!(build(&bad).unwrap_err().to_string().contains("kind"));
    }

    #[test]
    fn ollama_host_is_read_like_ollama_reads_it() {
        let cases = [
            ("127.0.0.1:4000", "http://127.0.0.1:4000/v1"),
            ("gpu-box", "http://gpu-box:11434/v1"),
            (":5000", "http://127.0.0.1:5000/v1"),
            ("0.0.0.0", "http://0.0.0.0:11434/v1"),
            ("http://gpu-box:8080", "http://gpu-box:8080/v1"),
            (
                "https://ollama.example.com",
                "https://ollama.example.com:443/v1",
            ),
            ("http://h:1/proxy/", "http://h:1/proxy/v1"),
            ("[::1]:7000", "http://[::1]:7000/v1"),
        ];
        for (value, want) in cases {
            assert_eq!(ollama_base_url(value).as_deref(), Some(want), "{value}");
        }
        assert_eq!(ollama_base_url("  "), None);
    }
}
