//! The crate's one error style: `anyhow::Error` inside, and [`Coded`] where
//! a client sees an error code.
//!
//! Most failures are only ever read by people (a log line, a tool result, a
//! start-up message), so they are `anyhow::Error`s with context added on the
//! way up. A failure that becomes an `error` frame or a failed response needs
//! one of the wire's [`ErrorCode`]s: it is a [`Coded`], chosen once where the
//! cause is known, and carried unchanged (also inside an `anyhow::Error`, from
//! which [`code_of`] gets it back) to the place that writes the frame.

use std::fmt;

use serde_json::Value;

pub use crate::protocol::ErrorCode;
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

/// The code `err` was given where it arose, else `default`.
pub fn code_of(err: &anyhow::Error, default: ErrorCode) -> ErrorCode {
    err.downcast_ref::<Coded>().map_or(default, |c| c.code)
}

/// Gives any error a code, keeping its whole message (for an
/// `anyhow::Error`, the chain of contexts).
pub trait WithCode<T> {
    fn code(self, code: ErrorCode) -> Result<T, Coded>;
}

impl<T, E: fmt::Display> WithCode<T> for Result<T, E> {
    fn code(self, code: ErrorCode) -> Result<T, Coded> {
        self.map_err(|e| Coded::new(code, format!("{e:#}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_survives_a_trip_through_anyhow() {
        let err = anyhow::Error::new(Coded::new(ErrorCode::NotFound, "no such session"));
        let err = err.context("resuming");
        assert_eq!(code_of(&err, ErrorCode::Internal), ErrorCode::NotFound);
        let plain = anyhow::anyhow!("disk full");
        assert_eq!(code_of(&plain, ErrorCode::Internal), ErrorCode::Internal);
    }

    #[test]
    fn with_code_keeps_the_context_chain() {
        let r: anyhow::Result<()> = Err(anyhow::anyhow!("EACCES").context("writing x"));
        let c = r.code(ErrorCode::Internal).unwrap_err();
        assert_eq!(c.message, "writing x: EACCES");
    }
}
