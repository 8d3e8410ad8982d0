//! Built-in catalogue of Anthropic, OpenAI and Google models: context windows,
//! output limits and prices, so `get_available_models` can list them and
//! `get_session_stats.cost_usd` can price them.
//!
//! Checked against the vendors' model and pricing pages on 2026-11-21.
//! Prices are USD per million tokens at the standard tier. Models not listed
//! still work (any id is passed through); they just have no price.

use crate::message::Usage;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl Price {
    pub(crate) fn cost(&self, u: &Usage) -> f64 {
        (u.input_tokens as f64 * self.input
            + u.output_tokens as f64 * self.output
            + u.cache_read_input_tokens as f64 * self.cache_read
            + u.cache_creation_input_tokens as f64 * self.cache_write)
            / 1_000_000.0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ModelSpec {
    pub id: String,
    pub name: String,
    pub context_window: Option<u64>,
    pub max_tokens: Option<u64>,
    pub price: Option<Price>,
    /// Takes a thinking level: Anthropic `thinking`, OpenAI `reasoning_effort`.
    pub reasoning: bool,
}

/// (id, name, context window, max output, input, output, cache read, cache write)
type Row = (&'static str, &'static str, u64, u64, f64, f64, f64, f64);

/// The first row of each table is the default when nothing chose a model:
/// the vendor's balanced current model, not its most expensive one.
#[rustfmt::skip]
const ANTHROPIC: &[Row] = &[
    ("claude-sonnet-5-5", "Claude Sonnet 5.5", 1_000_000, 128_000, 2.0, 10.0, 0.1, 2.5),
    ("claude-opus-5-5", "Claude Opus 5.5", 1_000_000, 128_000, 4.0, 20.0, 0.2, 5.0),
    ("claude-fable-5-1", "Claude Fable 5.1", 1_000_000, 128_000, 10.0, 50.0, 0.25, 12.5),
    // Haiku 5.5 bills prompts over 100K tokens at 5x; the lower band is listed.
    ("claude-haiku-5-5", "Claude Haiku 5.5", 1_000_000, 128_000, 0.1, 0.5, 0.01, 0.125),
    ("claude-opus-5", "Claude Opus 5", 1_000_000, 128_000, 5.0, 25.0, 0.5, 6.25),
    ("claude-sonnet-5", "Claude Sonnet 5", 1_000_000, 128_000, 2.0, 10.0, 0.2, 2.5),
    ("claude-opus-4-5", "Claude Opus 4.5", 200_000, 64_000, 5.0, 25.0, 0.5, 6.25),
    ("claude-haiku-4-5", "Claude Haiku 4.5", 200_000, 64_000, 1.0, 5.0, 0.1, 1.25),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", 200_000, 64_000, 3.0, 15.0, 0.3, 3.75),
];

/// OpenAI bills cache writes only on GPT-5.6 and later (1.25x input); older
/// models cache implicitly, so their write price is the input price.
#[rustfmt::skip]
const OPENAI: &[Row] = &[
    ("gpt-6.2-sol", "GPT-6.2 Sol", 1_050_000, 128_000, 2.0, 10.0, 0.1, 2.5),
    ("gpt-6.2-astra", "GPT-6.2 Astra", 1_050_000, 128_000, 8.0, 40.0, 0.4, 10.0),
    ("gpt-6.1-terra", "GPT-6.1 Terra", 1_050_000, 128_000, 1.0, 5.0, 0.05, 1.25),
    ("gpt-6.1-sol", "GPT-6.1 Sol", 1_050_000, 128_000, 2.0, 10.0, 0.1, 2.5),
    ("gpt-6-luna", "GPT-6 Luna", 1_050_000, 128_000, 0.1, 0.5, 0.01, 0.125),
    ("gpt-5.6-sol", "GPT-5.6 Sol", 1_050_000, 128_000, 5.0, 30.0, 0.5, 6.25),
    ("gpt-5.5", "GPT-5.5", 1_050_000, 128_000, 5.0, 30.0, 0.5, 5.0),
    ("gpt-5.4", "GPT-5.4", 1_050_000, 128_000, 2.5, 15.0, 0.25, 2.5),
    ("gpt-5.4-mini", "GPT-5.4 mini", 400_000, 128_000, 0.75, 4.5, 0.075, 0.75),
    ("gpt-4.1", "GPT-4.1", 1_047_576, 32_768, 2.0, 8.0, 0.5, 2.0),
    ("gpt-4o", "GPT-4o", 128_000, 16_384, 2.5, 10.0, 1.25, 2.5),
    ("gpt-4o-mini", "GPT-4o mini", 128_000, 16_384, 0.15, 0.6, 0.075, 0.15),
    ("o3", "o3", 200_000, 100_000, 2.0, 8.0, 0.5, 2.0),
];

/// Gemini's prices are those of prompts up to 200K tokens (2.5 Pro and 3
/// Pro bill longer ones at twice the input rate). Implicit caching has no
/// write charge, so the write price is the input price.
#[rustfmt::skip]
const GEMINI: &[Row] = &[
    ("gemini-2.5-flash", "Gemini 2.5 Flash", 1_048_576, 65_536, 0.30, 2.50, 0.03, 0.30),
    ("gemini-2.5-pro", "Gemini 2.5 Pro", 1_048_576, 65_536, 1.25, 10.0, 0.125, 1.25),
    ("gemini-2.5-flash-lite", "Gemini 2.5 Flash-Lite", 1_048_576, 65_536, 0.10, 0.40, 0.01, 0.10),
    ("gemini-3-pro-preview", "Gemini 3 Pro Preview", 1_048_576, 65_536, 2.0, 12.0, 0.20, 2.0),
];

fn specs(rows: &[Row]) -> Vec<ModelSpec> {
    rows.iter()
        .map(
            |&(id, name, ctx, max, input, output, cache_read, cache_write)| ModelSpec {
                id: id.into(),
                name: name.into(),
                context_window: Some(ctx),
                max_tokens: Some(max),
                price: Some(Price {
                    input,
                    output,
                    cache_read,
                    cache_write,
                }),
                reasoning: is_reasoning(id),
            },
        )
        .collect()
}

pub(crate) fn anthropic() -> Vec<ModelSpec> {
    specs(ANTHROPIC)
}

pub(crate) fn openai() -> Vec<ModelSpec> {
    specs(OPENAI)
}

pub(crate) fn gemini() -> Vec<ModelSpec> {
    specs(GEMINI)
}

/// Whether a model id names a thinking (reasoning) model, by family: every
/// Claude from 3.7 on (extended thinking), OpenAI's o-series and GPT-5 and
/// later. Used for the catalogue and for ids it does not list; a config
/// entry's `reasoning` overrides it.
pub(crate) fn is_reasoning(id: &str) -> bool {
    if let Some(rest) = id.strip_prefix("claude-") {
        // claude-3-haiku, claude-3-5-sonnet, … predate extended thinking.
        return !rest.contains("3-") || rest.contains("3-7");
    }
    if let Some(rest) = id.strip_prefix("gemini-") {
        // Gemini thinks from 2.5 on; 1.x and 2.0 do not.
        return !(rest.starts_with("1.") || rest.starts_with("2.0"));
    }
    if ["o1", "o3", "o4"].iter().any(|p| id.starts_with(p)) {
        return true;
    }
    id.strip_prefix("gpt-")
        .and_then(|v| v.split(['.', '-']).next())
        .and_then(|major| major.parse::<u32>().ok())
        .is_some_and(|major| major >= 5)
}

/// The built-in provider a bare model name belongs to, if it is well known.
pub(crate) fn provider_of_bare(model: &str) -> Option<&'static str> {
    let openai_prefix = ["gpt-", "chatgpt-", "o1", "o3", "o4", "codex-"]
        .iter()
        .any(|p| model.starts_with(p));
    if model.starts_with("claude-") {
        Some("anthropic")
    } else if model.starts_with("gemini-") {
        Some("google")
    } else if openai_prefix {
        Some("openai")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_per_million() {
        let p = anthropic()
            .into_iter()
            .find(|m| m.id == "claude-sonnet-4-5")
            .unwrap();
        let u = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 0,
        };
        assert!((p.price.unwrap().cost(&u) - 4.5).abs() < 1e-9);
    }

    #[test]
    fn reasoning_families() {
        for id in [
            "claude-sonnet-4-5",
            "claude-3-7-sonnet-latest",
            "o3",
            "gpt-5.4",
            "gpt-6.2-sol",
            "gemini-2.5-flash",
            "gemini-3-pro-preview",
        ] {
            assert!(is_reasoning(id), "{id}");
        }
        for id in [
            "claude-3-5-haiku-latest",
            "gpt-4o",
            "gpt-4.1",
            "llama3",
            "gemini-2.0-flash",
        ] {
            assert!(!is_reasoning(id), "{id}");
        }
    }

    #[test]
    fn bare_names_resolve() {
        assert_eq!(provider_of_bare("claude-opus-5-5"), Some("anthropic"));
        assert_eq!(provider_of_bare("gpt-4o-mini"), Some("openai"));
        assert_eq!(provider_of_bare("o3"), Some("openai"));
        assert_eq!(provider_of_bare("gemini-2.5-pro"), Some("google"));
        assert_eq!(provider_of_bare("llama3"), None);
    }
}
