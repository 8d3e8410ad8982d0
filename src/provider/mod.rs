//! Model providers: what a turn asks of a model, and where it is sent.
//!
//! [`Providers`] (in `registry`) is what the host holds: it resolves a model
//! id to an extension or an HTTP endpoint and opens a [`ProviderStream`] for
//! one round. Each backend has its own folder: `extension/` (process client,
//! framing, manifests) for subprocesses, `http/` (request loop, SSE, the
//! Anthropic and OpenAI APIs, endpoints and catalogue) for HTTP services.

pub mod extension;
pub mod http;
mod registry;
mod stream;

// The framing and SSE parsers are tested and fuzzed from outside the crate
// under these paths; the manifest loader is used by start-up.
pub use extension::{framing, manifest};
pub use http::sse;

use serde::Serialize;
use serde_json::Value;

use crate::message::Block;
use crate::message::Usage;

pub use registry::{Providers, Timeouts};
pub use stream::{ProviderStream, StreamItem, StreamMsg};

/// One piece of a model's answer as the provider streams it.
#[derive(Debug, Clone)]
pub enum ProviderEvent {
    Text(String),
    Thinking(String),
    /// The signature closing the current thinking block (Anthropic).
    ThinkingSignature(String),
    /// A whole tool call at once (extensions).
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// A tool call streamed in pieces (HTTP providers).
    ToolCallStart {
        id: String,
        name: String,
    },
    ToolCallDelta {
        id: String,
        delta: String,
    },
    ToolCallEnd {
        id: String,
        name: String,
        input: Value,
    },
    Usage(Usage),
    /// The provider will retry after a failed attempt.
    Retry {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
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
    /// The tool definitions offered to the model (built once, see `tools::definitions`).
    pub tools: &'static [Value],
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
