//! How an HTTP attempt fails: the message (worded from the error body, with
//! keys and URL passwords hidden), whether it may be retried, and after how
//! long.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::StatusCode;

use super::api::ApiError;

/// Bytes of an error body kept for the message.
const ERROR_BODY_CAP: usize = 2048;

/// Longest `retry-after` honoured; a server asking for more is treated as
/// "not now" and the turn fails with its message.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// What went wrong with one attempt.
pub(super) struct Failure {
    pub message: String,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub fn retryable(message: String) -> Self {
        Failure {
            message,
            retryable: true,
            retry_after: None,
        }
    }

    pub fn fatal(message: String) -> Self {
        Failure {
            message,
            retryable: false,
            retry_after: None,
        }
    }

    pub fn api(provider: &str, e: ApiError) -> Self {
        Failure {
            message: format!("{provider}: {}", e.message),
            retryable: e.retryable,
            retry_after: None,
        }
    }
}

/// A failed status becomes a failure worded from the error body.
pub(super) async fn check_status(
    response: reqwest::Response,
    provider: &str,
) -> Result<reqwest::Response, Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = retry_after(response.headers());
    let body = read_capped(response, ERROR_BODY_CAP).await;
    let (kind, message) = error_fields(&body);
    let retryable = matches!(status.as_u16(), 408 | 409 | 429 | 500..=599)
        || kind.as_deref() == Some("overloaded_error");
    Err(Failure {
        message: format!(
            "{provider}: HTTP {}{}: {}",
            status.as_u16(),
            kind.map(|k| format!(" {k}")).unwrap_or_default(),
            message.unwrap_or_else(|| reason(status))
        ),
        retryable,
        retry_after,
    })
}

/// Exponential backoff with jitter: a random delay in [d/2, d] where d
/// doubles each attempt, capped at 30 s.
pub(super) fn backoff(base: Duration, attempt: u32) -> Duration {
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
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
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
pub fn secret_header(value: &str) -> anyhow::Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| anyhow!("the API key contains characters not allowed in a header"))?;
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
