//! HTTP endpoints: Anthropic, OpenAI, well-known OpenAI-compatible services
//! and the config's own, each with its URL, key variable and models.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};

use super::catalog::{self, ModelSpec, Price};
use crate::config::{env_nonempty, Config, Kind, ModelConfig};

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub name: String,
    pub kind: Kind,
    /// Without a trailing slash.
    pub base_url: String,
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
    pub fn key(&self) -> anyhow::Result<Option<String>> {
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

    pub fn available(&self) -> bool {
        match &self.api_key_env {
            Some(_) => self.key().is_ok(),
            None => self.configured,
        }
    }

    /// Whether `model` takes a thinking level: as its catalogue or config
    /// entry says, else as its family name suggests.
    pub fn reasoning(&self, model: &str) -> bool {
        self.model(model)
            .map_or_else(|| catalog::is_reasoning(model), |s| s.reasoning)
    }

    pub fn model(&self, id: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.id == id)
    }

    /// The full request URL.
    pub fn url(&self) -> String {
        format!("{}{}", self.base_url, super::api::api(self.kind).path())
    }
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
pub fn build(config: &Config) -> anyhow::Result<BTreeMap<String, Endpoint>> {
    let mut all = BTreeMap::new();
    all.insert(
        "anthropic".to_owned(),
        Endpoint {
            name: "anthropic".into(),
            kind: Kind::Anthropic,
            base_url: env_nonempty("ANTHROPIC_BASE_URL")
                .unwrap_or_else(|| "https://api.anthropic.com".into()),
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
            base_url: env_nonempty("OPENAI_BASE_URL")
                .unwrap_or_else(|| "https://api.openai.com/v1".into()),
            api_key_env: Some("OPENAI_API_KEY".into()),
            configured: false,
            prompt_caching: true,
            models: catalog::openai(),
        },
    );
    for &(name, url, key) in PRESETS {
        all.insert(
            name.to_owned(),
            Endpoint {
                name: name.into(),
                kind: Kind::Openai,
                base_url: url.into(),
                api_key_env: key.map(str::to_owned),
                configured: false,
                prompt_caching: true,
                models: Vec::new(),
            },
        );
    }
    for (name, pc) in &config.providers {
        let endpoint = match all.remove(name) {
            Some(mut e) => {
                if let Some(kind) = pc.kind {
                    e.kind = kind;
                }
                if let Some(url) = &pc.base_url {
                    e.base_url = url.clone();
                }
                if pc.api_key_env.is_some() {
                    e.api_key_env = pc.api_key_env.clone();
                }
                e
            }
            None => Endpoint {
                name: name.clone(),
                kind: pc.kind.with_context(|| {
                    format!("[providers.{name}] needs kind = \"openai\" or kind = \"anthropic\"")
                })?,
                base_url: pc
                    .base_url
                    .clone()
                    .with_context(|| format!("[providers.{name}] needs a base_url"))?,
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
        all.insert(name.clone(), endpoint);
    }
    for e in all.values_mut() {
        while e.base_url.ends_with('/') {
            e.base_url.pop();
        }
    }
    Ok(all)
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

#[cfg(test)]
mod tests {
    use super::*;

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
            all["work"].url(),
            "https://llm.example.com/v1/chat/completions"
        );
        assert_eq!(
            all["openai"].model("gpt-4o").unwrap().price.unwrap().input,
            1.0
        );
        let bad = crate::config::parse("[providers.x]\nbase_url = \"http://h\"\n").unwrap();
        assert!(build(&bad).unwrap_err().to_string().contains("kind"));
    }
}
