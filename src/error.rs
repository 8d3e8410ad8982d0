//! The crate's one error style: `anyhow::Error` inside, and [`Coded`] where
//! a client sees an error code.
//!
//! Most failures are only ever read by people (a log line, a tool result, a
//! start-up message), so they are `anyhow::Error`s with context added on the
//! way up. A failure that becomes an `error` frame or a failed response needs
//! one of the wire's [`ErrorCode`]s: it is a [`Coded`], chosen once where the
//! cause is known, and carried unchanged to the place that writes the frame.

use std::fmt;

use serde_json::Value;

pub(crate) use crate::protocol::ErrorCode;
use crate::protocol::{CommandName, ErrorFrame};

/// An error a client will see with a code: what failed, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coded {
    pub code: ErrorCode,
    pub message: String,
}

impl Coded {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Coded {
            code,
            message: message.into(),
        }
    }

    /// The `error` frame answering command `command` sent with `id`.
    pub fn frame(self, id: Value, command: CommandName) -> ErrorFrame {
        ErrorFrame::new(id, self.code, self.message).for_command(command)
    }
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

/// Gives any error a code, keeping its whole message (for an
/// `anyhow::Error`, the chain of contexts).
pub(crate) trait WithCode<T> {
    fn code(self, code: ErrorCode) -> Result<T, Coded>;
}

impl<T, E: fmt::Display> WithCode<T> for Result<T, E> {
    fn code(self, code: ErrorCode) -> Result<T, Coded> {
        self.map_err(|e| Coded::new(code, format!("{e:#}")))
    }
}

/// An error with its causes, each said once ("error sending request:
/// connection refused"); an HTTP status often sits in a source.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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

/// A URL as messages and logs show it: without `user:password@`, query or
/// fragment, which often carry tokens (`?api_key=…`); `?…` marks a removed
/// query or fragment.
pub(crate) fn redact_url(url: &str) -> String {
    let (base, cut) = match url.find(['?', '#']) {
        Some(i) => (&url[..i], true),
        None => (url, false),
    };
    let mut shown = match (base.find("://"), base.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !base[scheme + 3..at].contains('/') => {
            format!("{}{}", &base[..scheme + 3], &base[at + 1..])
        }
        _ => base.to_owned(),
    };
    if cut {
        shown.push_str("?…");
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_credentials_query_or_fragment() {
        assert_eq!(redact_url("https://u:p@h/x"), "https://h/x");
        assert_eq!(redact_url("https://h/x@y"), "https://h/x@y");
        assert_eq!(
            redact_url("https://user:secret@mcp.example.com/mcp?api_key=k#x"),
            "https://mcp.example.com/mcp?…"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:9/mcp"),
            "http://127.0.0.1:9/mcp"
        );
        assert_eq!(redact_url("https://h/x#frag"), "https://h/x?…");
    }

    #[test]
    fn with_code_keeps_the_context_chain() {
        let r: anyhow::Result<()> = Err(anyhow::anyhow!("EACCES").context("writing x"));
        let c = r.code(ErrorCode::Internal).unwrap_err();
        assert_eq!(c.message, "writing x: EACCES");
    }
}
