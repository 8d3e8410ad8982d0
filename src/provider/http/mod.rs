//! The HTTP side shared by the Anthropic and OpenAI-compatible providers:
//! one streaming request with retries, SSE decoding and idle timeouts.
//!
//! A round runs as its own task that sends [`StreamMsg`]s to the turn, so
//! abort is just dropping the task: the connection closes at once. Retries
//! happen only while nothing of the attempt has reached the client; after
//! the first forwarded delta a failure ends the turn (the partial answer is
//! kept by the engine), because a retry would show the user a second,
//! different answer glued to the first.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;
use tokio::sync::mpsc;

use super::{Completion, ProviderEvent, StreamMsg};

pub mod anthropic;
pub mod catalog;
pub mod endpoints;
pub mod openai;
pub mod sse;

/// Bytes of an error body kept for the message.
const ERROR_BODY_CAP: usize = 2048;

/// Longest `retry-after` honoured; a server asking for more is treated as
/// "not now" and the turn fails with its message.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
pub struct Settings {
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_retries: u32,
    pub max_retry_time: Duration,
    pub base_delay: Duration,
}

/// The process-wide client, built on first use so start-up pays nothing
/// for TLS setup when no HTTP provider is used.
pub fn client(settings: &Settings) -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let built = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .user_agent(concat!("agent-rpc/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
    Ok(CLIENT.get_or_init(|| built))
}

/// A request ready to send (and re-send on retry).
pub struct Prepared {
    /// For messages: `anthropic`, `openai`, or the configured name.
    pub provider: String,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// The key, so that it can be scrubbed from anything echoed back.
    pub secret: Option<String>,
}

/// Turns SSE events into provider events for one API.
pub trait Decoder: Send {
    /// Handles one event. `Ok(Some(_))` when it was the terminal event.
    fn event(
        &mut self,
        ev: &sse::Event,
        out: &mut Vec<ProviderEvent>,
    ) -> Result<Option<Completion>, ApiError>;

    /// The body ended. A complete stream yields its completion; a stream
    /// cut before its terminal event is an error, never a success.
    fn eof(&mut self, out: &mut Vec<ProviderEvent>) -> Result<Completion, ApiError>;
}

/// An error reported inside a stream or by a response.
#[derive(Debug)]
pub struct ApiError {
    pub message: String,
    pub retryable: bool,
}

impl ApiError {
    pub fn fatal(message: impl Into<String>) -> Self {
        ApiError {
            message: message.into(),
            retryable: false,
        }
    }
}

/// What went wrong with one attempt.
struct Failure {
    message: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

/// Runs the round: attempts, retries with `auto_retry` events, streaming.
pub async fn run(
    settings: Settings,
    prepared: Prepared,
    mut make_decoder: impl FnMut() -> Box<dyn Decoder>,
    tx: mpsc::Sender<StreamMsg>,
) {
    let client = match client(&settings) {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(StreamMsg::Failed(e)).await;
            return;
        }
    };
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let mut forwarded = false;
        let failure = match attempt_once(
            client,
            &settings,
            &prepared,
            make_decoder(),
            &tx,
            &mut forwarded,
        )
        .await
        {
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
            let _ = tx.send(StreamMsg::Failed(message)).await;
            return;
        }
        tracing::info!(
            "{}: attempt {attempt} failed ({message}); retrying in {delay:?}",
            prepared.provider
        );
        let retry = ProviderEvent::Retry {
            attempt,
            delay_ms: delay.as_millis() as u64,
            reason: message,
        };
        if tx.send(StreamMsg::Event(retry)).await.is_err() {
            return;
        }
        tokio::time::sleep(delay).await;
    }
}

async fn attempt_once(
    client: &reqwest::Client,
    settings: &Settings,
    prepared: &Prepared,
    mut decoder: Box<dyn Decoder>,
    tx: &mpsc::Sender<StreamMsg>,
    forwarded: &mut bool,
) -> Result<(), Failure> {
    let send = client
        .post(&prepared.url)
        .headers(prepared.headers.clone())
        .body(prepared.body.clone())
        .send();
    // Waiting for the response head counts as idle time too.
    let response = match tokio::time::timeout(settings.idle_timeout, send).await {
        Err(_) => {
            return Err(Failure {
                message: format!(
                    "{}: no response within {} s",
                    prepared.provider,
                    settings.idle_timeout.as_secs()
                ),
                retryable: true,
                retry_after: None,
            })
        }
        Ok(Err(e)) => {
            return Err(Failure {
                message: format!(
                    "{}: cannot reach {}: {}",
                    prepared.provider,
                    redact_url(&prepared.url),
                    error_chain(&e)
                ),
                retryable: true,
                retry_after: None,
            })
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if !status.is_success() {
        let retry_after = retry_after(response.headers());
        let body = read_capped(response, ERROR_BODY_CAP).await;
        let (kind, message) = error_fields(&body);
        let retryable = matches!(status.as_u16(), 408 | 409 | 429 | 500..=599)
            || kind.as_deref() == Some("overloaded_error");
        return Err(Failure {
            message: format!(
                "{}: HTTP {}{}: {}",
                prepared.provider,
                status.as_u16(),
                kind.map(|k| format!(" {k}")).unwrap_or_default(),
                message.unwrap_or_else(|| reason(status))
            ),
            retryable,
            retry_after,
        });
    }

    let mut response = response;
    let mut parser = sse::Parser::new();
    let mut events = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(settings.idle_timeout, response.chunk()).await {
            Err(_) => {
                return Err(Failure {
                    message: format!(
                        "{}: the stream was silent for {} s (--provider-idle-timeout)",
                        prepared.provider,
                        settings.idle_timeout.as_secs()
                    ),
                    retryable: true,
                    retry_after: None,
                })
            }
            Ok(Err(e)) => {
                return Err(Failure {
                    message: format!(
                        "{}: the stream broke: {}",
                        prepared.provider,
                        error_chain(&e)
                    ),
                    retryable: true,
                    retry_after: None,
                })
            }
            Ok(Ok(chunk)) => chunk,
        };
        let Some(chunk) = chunk else {
            let result = decoder.eof(&mut events);
            forward(&mut events, tx, forwarded).await?;
            return match result {
                Ok(done) => {
                    let _ = tx.send(StreamMsg::Done(done)).await;
                    Ok(())
                }
                Err(e) => Err(api_failure(&prepared.provider, e)),
            };
        };
        parser.push(&chunk);
        loop {
            let ev = match parser.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    return Err(Failure {
                        message: format!("{}: {e}", prepared.provider),
                        retryable: false,
                        retry_after: None,
                    })
                }
            };
            let result = decoder.event(&ev, &mut events);
            forward(&mut events, tx, forwarded).await?;
            match result {
                Ok(None) => {}
                Ok(Some(done)) => {
                    let _ = tx.send(StreamMsg::Done(done)).await;
                    return Ok(());
                }
                Err(e) => return Err(api_failure(&prepared.provider, e)),
            }
        }
    }
}

fn api_failure(provider: &str, e: ApiError) -> Failure {
    Failure {
        message: format!("{provider}: {}", e.message),
        retryable: e.retryable,
        retry_after: None,
    }
}

/// Sends decoded events on; marks the attempt as visible to the client.
async fn forward(
    events: &mut Vec<ProviderEvent>,
    tx: &mpsc::Sender<StreamMsg>,
    forwarded: &mut bool,
) -> Result<(), Failure> {
    for ev in events.drain(..) {
        if !matches!(ev, ProviderEvent::Usage(_)) {
            *forwarded = true;
        }
        if tx.send(StreamMsg::Event(ev)).await.is_err() {
            // The turn is gone (aborted): stop quietly.
            return Err(Failure {
                message: "the turn ended".into(),
                retryable: false,
                retry_after: None,
            });
        }
    }
    Ok(())
}

/// Exponential backoff with jitter: a random delay in [d/2, d] where d
/// doubles each attempt, capped at 30 s.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1 << attempt.saturating_sub(1).min(16));
    let cap = exp.min(Duration::from_secs(30));
    let half = cap / 2;
    half + half.mul_f64(jitter())
}

/// A number in [0, 1) that differs between calls; no crypto needed.
fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `retry-after` (seconds, possibly fractional) or `retry-after-ms`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
    {
        return Duration::try_from_secs_f64(ms / 1000.0).ok();
    }
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

async fn read_capped(mut response: reqwest::Response, cap: usize) -> String {
    let mut body = Vec::new();
    while body.len() < cap {
        match tokio::time::timeout(Duration::from_secs(5), response.chunk()).await {
            Ok(Ok(Some(c))) => body.extend_from_slice(&c),
            _ => break,
        }
    }
    let mut text = String::from_utf8_lossy(&body[..body.len().min(cap)]).into_owned();
    if body.len() > cap {
        text.push('…');
    }
    text
}

/// `(type, message)` from the usual error bodies: Anthropic
/// `{"error": {"type", "message"}}` and OpenAI `{"error": {"message", "type"|"code"}}`.
pub fn error_fields(body: &str) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        let trimmed = body.trim();
        return (None, (!trimmed.is_empty()).then(|| trimmed.to_owned()));
    };
    let err = v.get("error").unwrap_or(&v);
    let kind = err
        .get("type")
        .and_then(|t| t.as_str())
        .or_else(|| err.get("code").and_then(|t| t.as_str()))
        .map(str::to_owned);
    let message = err
        .get("message")
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .or_else(|| err.as_str().map(str::to_owned));
    (kind, message)
}

fn reason(status: StatusCode) -> String {
    status.canonical_reason().unwrap_or("no message").to_owned()
}

/// A reqwest error with its causes ("error sending request: connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Drops `user:password@` from a URL before it is shown.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !url[scheme + 3..at].contains('/') => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Removes a secret from text that may echo it back (error bodies).
pub fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if s.len() >= 4 && text.contains(s) => text.replace(s, "[redacted]"),
        _ => text.to_owned(),
    }
}

/// A header value that hyper and h2 never print in debug output.
pub fn secret_header(value: &str) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| "the API key contains characters not allowed in a header".to_owned())?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(500);
        for attempt in 1..20 {
            let d = backoff(base, attempt);
            let full = base
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(Duration::from_secs(30));
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
        }
    }

    #[test]
    fn error_bodies_are_read() {
        let (k, m) = error_fields(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        );
        assert_eq!(
            (k.as_deref(), m.as_deref()),
            (Some("overloaded_error"), Some("Overloaded"))
        );
        let (k, m) =
            error_fields(r#"{"error":{"message":"slow down","type":"rate_limit_exceeded"}}"#);
        assert_eq!(
            (k.as_deref(), m.as_deref()),
            (Some("rate_limit_exceeded"), Some("slow down"))
        );
        assert_eq!(
            error_fields("Bad Gateway").1.as_deref(),
            Some("Bad Gateway")
        );
    }

    #[test]
    fn secrets_and_userinfo_are_hidden() {
        assert_eq!(redact_url("https://u:p@h/x"), "https://h/x");
        assert_eq!(redact_url("https://h/x@y"), "https://h/x@y");
        assert_eq!(
            scrub("bad key sk-123456", Some("sk-123456")),
            "bad key [redacted]"
        );
    }
}
