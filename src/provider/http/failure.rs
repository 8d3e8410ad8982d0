//! How an HTTP attempt fails: the message (worded from the error body, with
//! keys and URL passwords hidden, and a hint where the cause is usually a
//! setting: a local server not running, a base URL with or without `/v1`),
//! whether it may be retried, and after how long.

use crate::error::{error_chain, redact_url};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, RETRY_AFTER};
use reqwest::StatusCode;

use super::api::ApiError;
use super::endpoints::{Endpoint, UrlSource};
use crate::config::Kind;

/// Bytes of an error body kept for the message.
const ERROR_BODY_CAP: usize = 2048;

/// Longest `retry-after` honoured; a server asking for more is treated as
/// "not now" and the turn fails with its message.
pub(super) const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// What went wrong with one attempt.
pub(super) struct AttemptFailure {
    pub message: String,
    pub retryable: bool,
    pub retry_after: Option<Duration>,
}

impl AttemptFailure {
    pub(super) fn retryable(message: String) -> Self {
        AttemptFailure {
            message,
            retryable: true,
            retry_after: None,
        }
    }

    pub(super) fn fatal(message: String) -> Self {
        AttemptFailure {
            message,
            retryable: false,
            retry_after: None,
        }
    }

    pub(super) fn api(provider: &str, e: ApiError) -> Self {
        AttemptFailure {
            message: format!("{provider}: {}", e.message),
            retryable: e.retryable,
            retry_after: None,
        }
    }
}

/// Where a request goes, and what set it up that way: what the failure
/// messages need to point at the setting to change.
#[derive(Debug, Clone)]
pub(super) struct Site {
    /// `anthropic`, `openai`, or the configured name.
    pub provider: String,
    pub kind: Kind,
    /// The full request URL, passwords removed.
    pub url: String,
    /// What the client appends to the base URL (`Api::path`).
    pub path: &'static str,
    /// The base URL, passwords removed.
    pub base_url: String,
    pub source: UrlSource,
}

impl Site {
    /// `path`: the API's (`Api::path`).
    pub(super) fn of(endpoint: &Endpoint, path: &'static str) -> Self {
        Site {
            provider: endpoint.name.clone(),
            kind: endpoint.kind,
            url: redact_url(&endpoint.url(path)),
            path,
            base_url: redact_url(&endpoint.base_url),
            source: endpoint.base_url_source.clone(),
        }
    }

    /// The failure of a request that got no response.
    pub(super) fn unreachable(&self, e: reqwest::Error) -> AttemptFailure {
        let refused = is_refused(&e);
        let cause = if refused {
            "connection refused".to_owned()
        } else {
            // Without the URL: the message names it once, before the cause.
            error_chain(&e.without_url())
        };
        let mut message = format!("{}: cannot reach {}: {cause}", self.provider, self.url);
        if refused {
            message.push_str("; ");
            message.push_str(&self.refused_hint());
        }
        AttemptFailure {
            message,
            // Nothing listens on that port of this machine: it will not
            // start listening within a backoff, so waiting only delays the
            // hint. A remote host may be restarting, and is retried.
            retryable: !(refused && is_loopback(&self.url)),
            retry_after: None,
        }
    }

    /// What to check when nothing listens at the base URL.
    fn refused_hint(&self) -> String {
        let root = self
            .base_url
            .strip_suffix("/v1")
            .unwrap_or(&self.base_url)
            .to_owned();
        let p = &self.provider;
        let (server, start) = match p.as_str() {
            "ollama" => ("Ollama", "start it (`ollama serve`)"),
            "lmstudio" => (
                "LM Studio's server",
                "start it (`lms server start`, or Developer → Start Server in LM Studio)",
            ),
            "vllm" => ("vLLM", "start it (`vllm serve <model>`)"),
            "llamacpp" => (
                "llama.cpp's server",
                "start it (`llama-server -m <model.gguf>`)",
            ),
            _ => {
                return format!(
                    "is the server for {p:?} running at {}? the base URL is {}",
                    self.base_url,
                    self.source_phrase()
                )
            }
        };
        let set = match (p.as_str(), &self.source) {
            (_, UrlSource::Config { file: Some(file), .. }) => {
                format!("or correct [providers.{p}] base_url in {}", file.display())
            }
            (_, UrlSource::Config { file: None, .. }) => {
                format!("or correct [providers.{p}] base_url in the config file")
            }
            ("ollama", UrlSource::Env(var)) => {
                format!("or correct {var}, or set [providers.{p}] base_url in the config file")
            }
            ("ollama", _) => format!(
                "or set OLLAMA_HOST or [providers.{p}] base_url in the config file if it runs elsewhere"
            ),
            _ => format!("or set [providers.{p}] base_url in the config file if it runs elsewhere"),
        };
        format!("is {server} running at {root}? {start}, {set}")
    }

    /// "from OPENAI_BASE_URL", "the built-in default", …
    fn source_phrase(&self) -> String {
        self.source.to_string()
    }

    /// For a 404 that is not about the model: which base URL produced the
    /// path, where it was set, and the convention it should follow.
    fn not_found_hint(&self) -> String {
        let base = &self.base_url;
        let (convention, suggestion) = match self.kind {
            Kind::Openai => (
                format!(
                    "{} conventionally ends in /v1 (rpc appends {})",
                    self.setting_name(),
                    self.path
                ),
                (!base.ends_with("/v1")).then(|| format!("{base}/v1")),
            ),
            Kind::Anthropic => (
                format!(
                    "{} does not end in /v1 (rpc appends {})",
                    self.setting_name(),
                    self.path
                ),
                base.strip_suffix("/v1").map(str::to_owned),
            ),
            Kind::Gemini => (
                format!(
                    "{} does not end in /v1beta (rpc appends {})",
                    self.setting_name(),
                    self.path
                ),
                base.strip_suffix("/v1beta").map(str::to_owned),
            ),
        };
        let mut hint = format!(
            "the base URL {base} ({}) may be wrong: {convention}",
            self.source_phrase()
        );
        if let Some(s) = suggestion {
            hint.push_str(&format!("; try {s}"));
        }
        hint
    }

    /// The variable or key the convention is about.
    fn setting_name(&self) -> String {
        match (&self.source, self.kind) {
            (UrlSource::Env(var), _) => (*var).to_owned(),
            (_, Kind::Openai) if self.provider == "openai" => "OPENAI_BASE_URL".to_owned(),
            (_, Kind::Anthropic) if self.provider == "anthropic" => "ANTHROPIC_BASE_URL".to_owned(),
            (_, Kind::Openai) => "an OpenAI-compatible base_url".to_owned(),
            (_, Kind::Anthropic) => "an Anthropic base_url".to_owned(),
            (_, Kind::Gemini) => "a Gemini base_url".to_owned(),
        }
    }
}

/// Whether the request failed because nothing listens at the address.
fn is_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        source = s.source();
    }
    false
}

/// `localhost`, `127.x.x.x`, `::1`: this machine.
fn is_loopback(url: &str) -> bool {
    let Some(host) = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
    else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => bare == "localhost" || bare.ends_with(".localhost"),
    }
}

/// A failed status becomes a failure worded from the error body.
pub(super) async fn check_status(
    response: reqwest::Response,
    site: &Site,
) -> Result<reqwest::Response, AttemptFailure> {
    let provider = &site.provider;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let header_delay = retry_after(response.headers());
    let body = read_capped(response, ERROR_BODY_CAP).await;
    let retry_after = header_delay.or_else(|| retry_delay(&body));
    let (kind, message) = error_fields(&body);
    let retryable = matches!(status.as_u16(), 408 | 409 | 429 | 500..=599)
        || kind.as_deref() == Some("overloaded_error");
    let message = message.unwrap_or_else(|| reason(status));
    let kind = kind.map(|k| format!(" {k}")).unwrap_or_default();
    let code = status.as_u16();
    // A 404 that does not speak of a model means the path does not exist:
    // almost always a base URL with /v1 where none belongs, or without it.
    let message = if code == 404 && !message.to_lowercase().contains("model") {
        format!(
            "{provider}: HTTP 404{kind} from {}: {message}; {}",
            site.url,
            site.not_found_hint()
        )
    } else {
        format!("{provider}: HTTP {code}{kind}: {message}")
    };
    Err(AttemptFailure {
        message,
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

/// Google's `RetryInfo` in an error body (`"retryDelay": "3s"` in
/// `error.details`), which Gemini sends with a 429 instead of a header.
fn retry_delay(body: &str) -> Option<Duration> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["error"]["details"]
        .as_array()?
        .iter()
        .find_map(|d| d["retryDelay"].as_str())
        .and_then(|s| s.trim().strip_suffix('s'))
        .and_then(|s| s.parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
}

/// `(type, message)` from the usual error bodies: Anthropic
/// `{"error": {"type", "message"}}`, OpenAI `{"error": {"message", "type"|"code"}}`
/// and Google `{"error": {"code": 429, "message", "status"}}`.
pub(crate) fn error_fields(body: &str) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        let trimmed = body.trim();
        return (None, (!trimmed.is_empty()).then(|| trimmed.to_owned()));
    };
    let err = v.get("error").unwrap_or(&v);
    let kind = err
        .get("type")
        .and_then(|t| t.as_str())
        .or_else(|| err.get("code").and_then(|t| t.as_str()))
        .or_else(|| err.get("status").and_then(|t| t.as_str()))
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

/// Removes a secret from text that may echo it back (error bodies).
pub(super) fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if s.len() >= 4 && text.contains(s) => text.replace(s, "[redacted]"),
        _ => text.to_owned(),
    }
}

/// A header value that hyper and h2 never print in debug output.
/// `Authorization: Bearer <key>`, as OpenAI's APIs (and the servers
/// compatible with them) take the key; nothing without one.
pub(crate) fn bearer(key: Option<&str>, headers: &mut HeaderMap) -> anyhow::Result<()> {
    if let Some(k) = key {
        headers.insert(AUTHORIZATION, secret_header(&format!("Bearer {k}"))?);
    }
    Ok(())
}

pub(crate) fn secret_header(value: &str) -> anyhow::Result<HeaderValue> {
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
        let gemini = r#"{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}"#;
        let (k, m) = error_fields(gemini);
        assert_eq!(
            (k.as_deref(), m.as_deref()),
            (Some("RESOURCE_EXHAUSTED"), Some("Quota exceeded"))
        );
        assert_eq!(retry_delay(gemini), Some(Duration::from_millis(1500)));
        assert_eq!(retry_delay("{}"), None);
        assert_eq!(
            error_fields("Bad Gateway").1.as_deref(),
            Some("Bad Gateway")
        );
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in [
            "http://localhost:11434/v1/chat/completions",
            "http://127.0.0.1:1/x",
            "http://127.3.4.5/x",
            "http://[::1]:8080/v1",
        ] {
            assert!(is_loopback(url), "{url}");
        }
        for url in [
            "http://gpu-box:11434/v1",
            "https://api.openai.com/v1",
            "http://10.0.0.1/",
        ] {
            assert!(!is_loopback(url), "{url}");
        }
    }

    #[test]
    fn hints_name_the_setting() {
        let site = |provider: &str, kind, base: &str, source| Site {
            provider: provider.into(),
            kind,
            url: format!("{base}/chat/completions"),
            path: if kind == Kind::Anthropic {
                "/v1/messages"
            } else {
                "/chat/completions"
            },
            base_url: base.into(),
            source,
        };
        let ollama = site(
            "ollama",
            Kind::Openai,
            "http://localhost:11434/v1",
            UrlSource::Default,
        );
        assert_eq!(
            ollama.refused_hint(),
            "is Ollama running at http://localhost:11434? start it (`ollama serve`), or set \
             OLLAMA_HOST or [providers.ollama] base_url in the config file if it runs elsewhere"
        );
        let openai = site(
            "openai",
            Kind::Openai,
            "http://x",
            UrlSource::Env("OPENAI_BASE_URL"),
        );
        assert_eq!(
            openai.not_found_hint(),
            "the base URL http://x (from OPENAI_BASE_URL) may be wrong: OPENAI_BASE_URL \
             conventionally ends in /v1 (rpc appends /chat/completions); try http://x/v1"
        );
        let anthropic = site(
            "anthropic",
            Kind::Anthropic,
            "http://x/v1",
            UrlSource::Env("ANTHROPIC_BASE_URL"),
        );
        assert!(anthropic.not_found_hint().ends_with(
            "ANTHROPIC_BASE_URL does not end in /v1 (rpc appends /v1/messages); try http://x"
        ));
    }

    #[test]
    fn secrets_are_scrubbed() {
        assert_eq!(
            scrub("bad key sk-123456", Some("sk-123456")),
            "bad key [redacted]"
        );
    }
}
