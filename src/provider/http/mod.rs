//! The HTTP backend: one streaming request per round with retries, SSE
//! decoding and idle timeouts, shared by every API (`api.rs` says what
//! differs between them; `anthropic.rs`, `openai.rs` (Chat Completions) and
//! `responses.rs` (OpenAI Responses) and `gemini.rs` (Google) are the APIs).
//!
//! A round runs as its own task that sends [`Event`]s to the turn, so abort
//! is just dropping the task: the connection closes at once. Retries happen
//! only while nothing of the attempt has reached the client; after the first
//! forwarded delta a failure ends the turn (the partial answer is kept by the
//! engine), because a retry would show the user a second, different answer
//! glued to the first.

pub(crate) mod anthropic;
pub(crate) mod api;
pub(crate) mod catalog;
pub(crate) mod endpoints;
mod failure;
pub(crate) mod gemini;
pub(crate) mod openai;
pub(crate) mod responses;
pub mod sse;

use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_TYPE};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{BoxFuture, Event, ProviderStream, Request, Round};
use crate::config::{Kind, OpenaiApi};
use crate::error::error_chain;
use api::{Api, ApiError, Decoder};
use endpoints::Endpoint;
use failure::{backoff, check_status, scrub, AttemptFailure, Site, MAX_RETRY_AFTER};

/// Events buffered between a round task and the turn: enough for a burst
/// of deltas, small enough that a stalled client stalls the download.
const STREAM_CAPACITY: usize = 256;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_retries: u32,
    pub max_retry_time: Duration,
    pub base_delay: Duration,
}

/// The process-wide client, built on first use so start-up pays nothing
/// for TLS setup when no HTTP provider is used.
pub(crate) fn client(settings: &Settings) -> anyhow::Result<&'static reqwest::Client> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    crate::tls::use_ring();
    let built = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .user_agent(concat!("agent-rpc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| anyhow!("cannot set up the HTTP client: {e}"))?;
    Ok(CLIENT.get_or_init(|| built))
}

/// A request ready to send (and re-send on retry).
struct Prepared {
    /// For messages: `anthropic`, `openai`, or the configured name.
    provider: String,
    url: String,
    /// Where the request goes, for failure messages and their hints.
    site: Site,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The key, so that it can be scrubbed from anything echoed back.
    secret: Option<String>,
    api: &'static dyn Api,
    /// `provider/model`, for what the decoder keeps to send back later.
    model: String,
}

/// The API `model` is sent over on `endpoint`: the one place a
/// `config::Kind` (and, for OpenAI, the chosen API) becomes an [`Api`].
pub(crate) fn api(endpoint: &Endpoint, model: &str) -> &'static dyn Api {
    match endpoint.kind {
        Kind::Anthropic => &anthropic::Anthropic,
        Kind::Openai => match endpoint.openai_api(model) {
            OpenaiApi::ChatCompletions => &openai::OpenAi,
            OpenaiApi::Responses => &responses::Responses,
        },
        Kind::Gemini => &gemini::Gemini,
    }
}

/// Starts one round against `model` on `endpoint`.
pub(crate) fn open(
    settings: &Settings,
    endpoint: &Endpoint,
    model: &str,
    req: &Request<'_>,
) -> anyhow::Result<ProviderStream> {
    let api = api(endpoint, model);
    let key = endpoint.key()?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    api.headers(key.as_deref(), &mut headers)?;
    let path = api.path_for(model);
    let prepared = Prepared {
        provider: endpoint.name.clone(),
        url: endpoint.url(&path),
        site: Site::of(endpoint, api.path()),
        headers,
        body: api.body(endpoint, model, req).to_string().into_bytes(),
        secret: key,
        api,
        model: format!("{}/{model}", endpoint.name),
    };
    let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
    let task = tokio::spawn(run(settings.clone(), prepared, tx));
    Ok(ProviderStream(Box::new(HttpRound { rx, task })))
}

/// The turn's end of a round task. Dropping it (on any path) aborts the
/// task, so a round can never outlive its turn.
struct HttpRound {
    rx: mpsc::Receiver<anyhow::Result<Event>>,
    task: JoinHandle<()>,
}

impl Drop for HttpRound {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Round for HttpRound {
    fn try_next(&mut self) -> Option<anyhow::Result<Event>> {
        self.rx.try_recv().ok()
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<anyhow::Result<Event>>> {
        self.rx.poll_recv(cx)
    }

    fn closed(&self) -> BoxFuture<'_, anyhow::Error> {
        Box::pin(async { anyhow!("the provider task ended without an answer") })
    }

    fn needs_idle_timeout(&self) -> bool {
        false
    }

    fn idle_failure(&self, secs: u64) -> String {
        format!("the provider sent nothing for {secs} s (--provider-idle-timeout) and was stopped")
    }

    fn abandon(&self, _why: &str) {
        self.task.abort();
    }

    fn cancel(self: Box<Self>) -> BoxFuture<'static, ()> {
        // Dropping the round aborts the task and with it the connection.
        drop(self);
        Box::pin(async {})
    }
}

/// The round task: attempts, retries announced as `Retry` events, streaming.
async fn run(settings: Settings, prepared: Prepared, tx: mpsc::Sender<anyhow::Result<Event>>) {
    let client = match client(&settings) {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(Err(e)).await;
            return;
        }
    };
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut forwarded = false;
        let failure = match attempt_once(client, &settings, &prepared, &tx, &mut forwarded).await {
            Ok(()) => return,
            Err(f) => f,
        };
        let message = scrub(&failure.message, prepared.secret.as_deref());
        let delay = failure
            .retry_after
            .unwrap_or_else(|| backoff(settings.base_delay, attempt));
        let can_retry = failure.retryable
            && !forwarded
            && attempt <= settings.max_retries
            && delay <= MAX_RETRY_AFTER
            && started.elapsed() + delay <= settings.max_retry_time;
        if !can_retry {
            let message = if forwarded {
                format!(
                    "{message} (the stream broke after part of the answer was shown; not retried)"
                )
            } else if failure.retryable && attempt > 1 {
                format!("{message} (gave up after {attempt} attempts)")
            } else {
                message
            };
            let _ = tx.send(Err(anyhow!(message))).await;
            return;
        }
        tracing::info!(
            "{}: attempt {attempt} failed ({message}); retrying in {delay:?}",
            prepared.provider
        );
        let retry = Event::Retry {
            attempt,
            delay_ms: delay.as_millis() as u64,
            reason: message,
        };
        if tx.send(Ok(retry)).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

/// One attempt: the request, its status, then its stream to the end.
async fn attempt_once(
    client: &reqwest::Client,
    settings: &Settings,
    prepared: &Prepared,
    tx: &mpsc::Sender<anyhow::Result<Event>>,
    forwarded: &mut bool,
) -> Result<(), AttemptFailure> {
    let response = send(client, settings, prepared).await?;
    let response = check_status(response, &prepared.site).await?;
    let mut stream = Stream {
        decoder: prepared.api.decoder(&prepared.model),
        events: Vec::new(),
        tx,
        forwarded,
        provider: &prepared.provider,
    };
    stream.read(response, settings.idle_timeout).await
}

/// Sends the request; waiting for the response head counts as idle time.
async fn send(
    client: &reqwest::Client,
    settings: &Settings,
    prepared: &Prepared,
) -> Result<reqwest::Response, AttemptFailure> {
    let send = client
        .post(&prepared.url)
        .headers(prepared.headers.clone())
        .body(prepared.body.clone())
        .send();
    match tokio::time::timeout(settings.idle_timeout, send).await {
        Err(_) => Err(AttemptFailure::retryable(format!(
            "{}: no response within {} s",
            prepared.provider,
            settings.idle_timeout.as_secs()
        ))),
        Ok(Err(e)) => Err(prepared.site.unreachable(e)),
        Ok(Ok(r)) => Ok(r),
    }
}

/// One attempt's body being decoded and sent on to the turn.
struct Stream<'a> {
    decoder: Box<dyn Decoder>,
    /// Reused for every SSE event, so decoding allocates no list per event.
    events: Vec<Event>,
    tx: &'a mpsc::Sender<anyhow::Result<Event>>,
    /// Set once anything the client sees was sent on.
    forwarded: &'a mut bool,
    provider: &'a str,
}

impl Stream<'_> {
    async fn read(
        &mut self,
        mut response: reqwest::Response,
        idle: Duration,
    ) -> Result<(), AttemptFailure> {
        let mut parser = sse::Parser::new();
        loop {
            let chunk = match tokio::time::timeout(idle, response.chunk()).await {
                Err(_) => {
                    return Err(AttemptFailure::retryable(format!(
                        "{}: the stream was silent for {} s (--provider-idle-timeout)",
                        self.provider,
                        idle.as_secs()
                    )))
                }
                Ok(Err(e)) => {
                    return Err(AttemptFailure::retryable(format!(
                        "{}: the stream broke: {}",
                        self.provider,
                        error_chain(&e)
                    )))
                }
                Ok(Ok(chunk)) => chunk,
            };
            let Some(chunk) = chunk else {
                let result = self.decoder.eof(&mut self.events);
                return self.finish(result.map(Some)).await.map(drop);
            };
            parser.push(&chunk);
            loop {
                let ev = match parser.next_event() {
                    Ok(Some(ev)) => ev,
                    Ok(None) => break,
                    Err(e) => return Err(AttemptFailure::fatal(format!("{}: {e}", self.provider))),
                };
                let result = self.decoder.event(&ev, &mut self.events);
                if let Some(done) = self.finish(result).await? {
                    return Ok(done);
                }
            }
        }
    }

    /// Sends what the decoder produced, then its verdict: `Some(())` once
    /// the final answer went out.
    async fn finish(
        &mut self,
        result: Result<Option<super::Completion>, ApiError>,
    ) -> Result<Option<()>, AttemptFailure> {
        self.forward().await?;
        match result {
            Ok(None) => Ok(None),
            Ok(Some(done)) => {
                let _ = self.tx.send(Ok(Event::Done(done))).await;
                Ok(Some(()))
            }
            Err(e) => Err(AttemptFailure::api(self.provider, e)),
        }
    }

    /// Sends decoded events on; marks the attempt as visible to the client.
    async fn forward(&mut self) -> Result<(), AttemptFailure> {
        for ev in self.events.drain(..) {
            if !matches!(ev, Event::Usage(_)) {
                *self.forwarded = true;
            }
            if self.tx.send(Ok(ev)).await.is_err() {
                // The turn is gone (aborted): stop quietly.
                return Err(AttemptFailure::fatal("the turn ended".into()));
            }
        }
        Ok(())
    }
}
