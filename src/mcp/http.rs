//! The HTTP client of streamable-HTTP MCP servers: reqwest set up as
//! rmcp's own default (no idle pooling, only same-origin 307/308 redirects
//! followed), wrapped so that the cause of a failed request is kept in
//! words.
//!
//! rmcp reports a handshake that got no response as its transport's type
//! name and "error sending request for url"; the cause (a DNS failure, a
//! refused connection, TLS, a timeout, an HTTP status) is in the reqwest
//! error it drops. [`Client`] records the last one, and `client.rs` says it.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures_core::Stream;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;

use crate::error::error_chain;

/// Redirects followed for one request, as rmcp's default client.
const MAX_REDIRECTS: usize = 10;
/// Of a server's unexpected answer, as much as a message should hold.
const BODY_CHARS: usize = 200;

type Failure = StreamableHttpError<reqwest::Error>;
type SseStream = Pin<Box<dyn Stream<Item = Result<Sse, SseError>> + Send>>;

/// reqwest for rmcp, remembering why its last request failed.
#[derive(Clone)]
pub(super) struct Client {
    inner: reqwest::Client,
    last_failure: Arc<Mutex<Option<String>>>,
}

impl Client {
    pub(super) fn new() -> anyhow::Result<Self> {
        let inner = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .redirect(same_origin_redirects())
            .build()?;
        Ok(Client {
            inner,
            last_failure: Arc::default(),
        })
    }

    /// Why the last message posted failed, in words; taken, so an old cause
    /// is never given for a later failure. Only posts count: a server may
    /// refuse the optional GET stream (405) or a session delete, and that is
    /// not why a handshake failed.
    pub(super) fn take_failure(&self) -> Option<String> {
        self.lock().take()
    }

    fn note<T>(&self, result: Result<T, Failure>) -> Result<T, Failure> {
        if let Err(e) = &result {
            *self.lock() = Some(describe(e));
        }
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.last_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Only 307 and 308 keep a POST's body, and another origin would be sent
/// the session id and the configured headers: anything else is returned
/// as the response.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(attempt.status().as_u16(), 307 | 308);
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !keeps_body || !same_origin {
            attempt.stop()
        } else if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
        } else {
            attempt.follow()
        }
    })
}

/// A failed request in words, without its URL (the message names the
/// server's URL once, redacted).
fn describe(e: &Failure) -> String {
    match e {
        StreamableHttpError::Client(e) => match e.status() {
            Some(status) => format!("the server answered HTTP status {status}"),
            None => format!("cannot reach the MCP server: {}", cause(e)),
        },
        StreamableHttpError::HttpStatus(status) => {
            format!("the server answered HTTP status {}", status.status)
        }
        // "HTTP 404 Not Found: <the body>": the status, and a body cut short.
        StreamableHttpError::UnexpectedServerResponse(text) if text.starts_with("HTTP ") => {
            let status = text.strip_prefix("HTTP ").unwrap_or(text);
            format!(
                "the server answered HTTP status {}",
                cut(status, BODY_CHARS)
            )
        }
        other => cut(&other.to_string(), BODY_CHARS),
    }
}

/// At most `max` characters of `text`, marked when cut.
fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Why a request got no response.
fn cause(e: &reqwest::Error) -> String {
    let mut chain = error_chain(e);
    if let Some(url) = e.url() {
        chain = chain.replace(&format!(" for url ({url})"), "");
    }
    let detail = chain.rsplit(": ").next().unwrap_or(&chain).to_owned();
    if e.is_timeout() {
        "the request timed out".to_owned()
    } else if chain.contains("dns error") {
        format!("DNS lookup failed ({detail})")
    } else if chain.contains("Connection refused") {
        "connection refused (is the server running, and on that port?)".to_owned()
    } else if chain.contains("certificate") || chain.contains("tls") || chain.contains("TLS") {
        format!("TLS failed ({detail})")
    } else {
        chain
    }
}

impl StreamableHttpClient for Client {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let sent = self
            .inner
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await;
        self.note(sent)
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let sent = self
            .inner
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.note(sent)
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, Failure> {
        let sent = self
            .inner
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            )
            .await;
        self.note(sent)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), Failure> {
        self.inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<SseStream, Failure> {
        self.inner
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<SseStream, Failure> {
        self.inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}
