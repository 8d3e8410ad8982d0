//! Model ids, and the rules that say which backend one names:
//! - `provider/model`, split at the first `/` (`openrouter/anthropic/x`,
//!   `ollama/qwen2.5:7b`), names an HTTP endpoint;
//! - `<plugin>:<provider>:<model>` names an extension model;
//! - a bare well-known name (`claude-…`, `gpt-…`, `o3`…) is shorthand for
//!   `anthropic/…` or `openai/…`.

use anyhow::anyhow;

use super::http::catalog;

/// Where a model id points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    Http { provider: &'a str, model: &'a str },
    Extension(ExtModelId<'a>),
}

pub(crate) fn parse(id: &str) -> anyhow::Result<Target<'_>> {
    if let Some((provider, model)) = id.split_once('/') {
        if !provider.contains(':') {
            if provider.is_empty() || model.is_empty() {
                return Err(anyhow!(
                    "model id {id:?} needs both a provider and a model: provider/model"
                ));
            }
            return Ok(Target::Http { provider, model });
        }
    }
    if let Some(ext) = parse_ext_model(id) {
        return Ok(Target::Extension(ext));
    }
    match catalog::provider_of_bare(id) {
        Some(provider) => Ok(Target::Http { provider, model: id }),
        None => Err(anyhow!(
            "model id {id:?} is not recognised: use provider/model (e.g. anthropic/claude-sonnet-5-5, \
             ollama/qwen2.5:7b), <plugin>:<provider>:<model> for an extension, or a bare \
             claude-…, gpt-…, chatgpt-…, o1…, o3…, o4… or codex-… name \
             (get_available_models lists the ids)"
        )),
    }
}

/// An extension model id split into its parts: `<plugin>:<provider>:<model>`.
/// The model part may itself contain ':' (e.g. `qwen2.5:7b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtModelId<'a> {
    pub plugin: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
}

pub(crate) fn parse_ext_model(id: &str) -> Option<ExtModelId<'_>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_resolve_by_the_documented_rules() {
        let http = |p, m| Target::Http {
            provider: p,
            model: m,
        };
        assert_eq!(
            parse("anthropic/claude-sonnet-5-5").ok(),
            Some(http("anthropic", "claude-sonnet-5-5"))
        );
        assert_eq!(
            parse("openrouter/anthropic/claude-sonnet-4").ok(),
            Some(http("openrouter", "anthropic/claude-sonnet-4"))
        );
        assert_eq!(
            parse("ollama/qwen2.5:7b").ok(),
            Some(http("ollama", "qwen2.5:7b"))
        );
        assert_eq!(
            parse("claude-opus-5-5").ok(),
            Some(http("anthropic", "claude-opus-5-5"))
        );
        assert_eq!(
            parse("gpt-4o-mini").ok(),
            Some(http("openai", "gpt-4o-mini"))
        );
        assert_eq!(parse("o3").ok(), Some(http("openai", "o3")));
        assert!(matches!(
            parse("echo:echo:echo-1"),
            Ok(Target::Extension(_))
        ));
        assert!(matches!(parse("echo:echo:a/b"), Ok(Target::Extension(e)) if e.model == "a/b"));
        assert!(parse("llama3").is_err());
        assert!(parse("/x").is_err());
        assert!(parse("openai/").is_err());
    }

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
