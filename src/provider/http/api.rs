//! What differs between HTTP APIs, behind one small trait: the path, the
//! headers, the request body and the stream decoder.
//!
//! Everything else (sending, retries, SSE, timeouts, scrubbing keys) is the
//! same for every API and lives in `http/mod.rs`, so a new API is one file
//! implementing [`Api`], a config value to name it by (`kind = "…"`, or
//! `api = "…"` among OpenAI's), and its arm in the registry (`api` in
//! `http/mod.rs`). The registry is not here: this file is what
//! the API files import, so it imports none of them.

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::endpoints::Endpoint;
use super::sse;
use crate::provider::{Completion, Event, Request};

/// One HTTP API's side of a round.
pub(crate) trait Api: Sync {
    /// Appended to the endpoint's base URL.
    fn path(&self) -> &'static str;

    /// The path for `model`: the same for every model except where the
    /// API puts the model in the URL (Gemini).
    fn path_for(&self, _model: &str) -> String {
        self.path().to_owned()
    }

    /// Headers besides content type and accept: the key, version headers.
    fn headers(&self, key: Option<&str>, headers: &mut HeaderMap) -> anyhow::Result<()>;

    /// The request body for `model` on `endpoint`.
    fn body(&self, endpoint: &Endpoint, model: &str, req: &Request<'_>) -> Value;

    /// A decoder for one attempt's stream of `model` (`provider/model`).
    fn decoder(&self, model: &str) -> Box<dyn Decoder>;
}

/// Turns SSE events into round events for one API.
pub(crate) trait Decoder: Send {
    /// Handles one event. `Ok(Some(_))` when it was the terminal event.
    fn event(
        &mut self,
        ev: &sse::Event,
        out: &mut Vec<Event>,
    ) -> Result<Option<Completion>, ApiError>;

    /// The body ended. A complete stream yields its completion; a stream
    /// cut before its terminal event is an error, never a success.
    fn eof(&mut self, out: &mut Vec<Event>) -> Result<Completion, ApiError>;
}

/// Tests: hands `decoder` one SSE event named `event` (empty for APIs whose
/// events are unnamed) and returns what it emitted and, for the terminal
/// event, the completion. A decoding error fails the test.
#[cfg(test)]
pub(crate) fn feed(
    decoder: &mut dyn Decoder,
    event: &str,
    data: &str,
) -> (Vec<Event>, Option<Completion>) {
    let mut out = Vec::new();
    let ev = sse::Event {
        event: event.into(),
        data: data.into(),
    };
    let done = decoder.event(&ev, &mut out).expect("the event decodes");
    (out, done)
}

/// An error reported inside a stream or by a response. Not an
/// `anyhow::Error`: the retry loop needs to know whether it may retry.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub message: String,
    pub retryable: bool,
}

impl ApiError {
    pub(crate) fn fatal(message: impl Into<String>) -> Self {
        ApiError {
            message: message.into(),
            retryable: false,
        }
    }
}
