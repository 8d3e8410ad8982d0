//! Model providers: what a turn asks of a model, and where it is sent.
//!
//! [`Providers`] (in `registry`) is what the host holds. It resolves a model
//! id (the rules are in `model_id`) once into a backend (an extension, or an
//! HTTP endpoint with its API)
//! and opens a [`ProviderStream`] for one round. Each backend has its own
//! folder: `extension/` (process client, framing, manifests) for
//! subprocesses, `http/` (request loop, SSE, one file per API, endpoints and
//! catalogue) for HTTP services.
//!
//! Every backend yields the same [`Event`]s: client-visible deltas already in
//! their wire shape ([`StreamEvent`]), which the turn forwards without
//! rebuilding them, plus the few items only the turn reads (usage, retries,
//! the final [`Completion`]).

pub(crate) mod extension;
pub(crate) mod http;
pub(crate) mod model_id;
mod registry;
pub(crate) mod thinking;
mod typo;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use serde_json::Value;

use crate::message::{Block, Message, ReasoningItem, Usage};
use crate::protocol::{StreamEvent, ThinkingLevel};

// The framing and SSE parsers are tested and fuzzed from outside the crate
// under these paths; the manifest loader is used by start-up.
pub use extension::framing;
pub(crate) use extension::manifest;
pub use http::sse;
pub(crate) use model_id::ExtModelId;
pub(crate) use registry::{Providers, Timeouts};

/// One item of a round, whatever the backend.
#[derive(Debug)]
pub(crate) enum Event {
    /// A piece of the answer for the client, sent on as a `message_update`.
    Delta(StreamEvent),
    /// The signature closing the current thinking block (Anthropic).
    ThinkingSignature(String),
    /// The reasoning item closing the current thinking block (OpenAI
    /// Responses), to keep with the message and send back later.
    Reasoning(ReasoningItem),
    Usage(Usage),
    /// The provider will retry after a failed attempt.
    Retry {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The round's final answer; nothing follows it.
    Done(Completion),
}

impl Event {
    pub(crate) fn text(delta: String) -> Self {
        Event::Delta(StreamEvent::TextDelta { delta })
    }

    pub(crate) fn thinking(delta: String) -> Self {
        Event::Delta(StreamEvent::ThinkingDelta { delta })
    }

    pub(crate) fn tool_start(tool_call_id: String, name: String) -> Self {
        Event::Delta(StreamEvent::ToolcallStart { tool_call_id, name })
    }

    pub(crate) fn tool_delta(tool_call_id: String, delta: String) -> Self {
        Event::Delta(StreamEvent::ToolcallDelta {
            tool_call_id,
            delta,
        })
    }

    pub(crate) fn tool_end(tool_call_id: String, name: String, input: Value) -> Self {
        Event::Delta(StreamEvent::ToolcallEnd {
            tool_call_id,
            name,
            input,
        })
    }
}

/// What one provider round is given. Borrowed: the turn keeps the history,
/// and each backend builds its own request from the typed messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub history: &'a [Arc<Message>],
    pub system_prompt: Option<&'a str>,
    /// The tool definitions offered to the model (the built-in ones are
    /// built once; a session with MCP servers rebuilds its own when they
    /// change, see `tools::Offer`).
    pub tools: &'a [Value],
    pub max_tokens: Option<u64>,
    pub temperature: Option<f64>,
    pub thinking: ThinkingLevel,
    /// The session the round belongs to, for APIs that route a session's
    /// requests to one prompt cache by it (OpenAI `prompt_cache_key`).
    pub session_id: Option<&'a str>,
}

/// The final answer of a round.
#[derive(Debug, Clone, Default)]
pub(crate) struct Completion {
    pub content: Vec<Block>,
    pub stop_reason: Option<String>,
    pub usage: Option<Usage>,
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One round in flight, as a backend runs it. Items are polled rather than
/// returned as boxed futures so that waiting for a delta allocates nothing.
trait Round: Send {
    /// An item that is already waiting; `None` when none is (or the stream
    /// has closed: `poll_next` then says so).
    fn try_next(&mut self) -> Option<anyhow::Result<Event>>;
    /// The next item; `Ready(None)` when the stream closed without a
    /// [`Event::Done`].
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<anyhow::Result<Event>>>;
    /// Why the stream closed without an answer.
    fn closed(&self) -> BoxFuture<'_, anyhow::Error>;
    /// Whether the turn must watch for silence (HTTP rounds time out and
    /// retry on their own).
    fn needs_idle_timeout(&self) -> bool;
    /// The message for a round that went silent for `secs`.
    fn idle_failure(&self, secs: u64) -> String;
    /// Gives up on a stalled round at once.
    fn abandon(&self, why: &str);
    /// Cancels the round in the backend's own way.
    fn cancel(self: Box<Self>) -> BoxFuture<'static, ()>;
}

/// One provider round in flight. Extensions are asked to cancel, given a
/// grace, then killed; an HTTP round's task is dropped, closing the
/// connection at once.
pub(crate) struct ProviderStream(Box<dyn Round>);

impl ProviderStream {
    pub(crate) fn needs_idle_timeout(&self) -> bool {
        self.0.needs_idle_timeout()
    }

    /// An item that is already waiting, without waiting for one.
    pub(crate) fn try_next(&mut self) -> Option<anyhow::Result<Event>> {
        self.0.try_next()
    }

    /// The next item; `Err` when the round failed.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Event> {
        match std::future::poll_fn(|cx| self.0.poll_next(cx)).await {
            Some(item) => item,
            None => Err(self.0.closed().await),
        }
    }

    pub(crate) async fn cancel(self) {
        self.0.cancel().await
    }

    pub(crate) fn idle_failure(&self, secs: u64) -> String {
        self.0.idle_failure(secs)
    }

    /// Gives up on a stalled round. A stalled extension is killed, since it
    /// may still be producing output for it.
    pub(crate) fn abandon(&self, why: &str) {
        self.0.abandon(why)
    }
}
