//! The `error` frame and the codes a client can branch on.

use serde::Serialize;
use serde_json::Value;

use super::CommandName;

/// Error codes a client can branch on. The message beside each is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ParseError,
    FrameTooLarge,
    InvalidRequest,
    UnknownCommand,
    InvalidParams,
    Busy,
    NotStreaming,
    NotFound,
    SessionLocked,
    ProviderError,
    ToolError,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "parse_error",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::Busy => "busy",
            ErrorCode::NotStreaming => "not_streaming",
            ErrorCode::NotFound => "not_found",
            ErrorCode::SessionLocked => "session_locked",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::ToolError => "tool_error",
            ErrorCode::Internal => "internal",
        }
    }
}

/// `error` frame: a command was rejected and did nothing.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorFrame {
    pub id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandName>,
    pub code: ErrorCode,
    pub message: String,
}

impl ErrorFrame {
    pub fn new(id: Value, code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorFrame {
            id,
            command: None,
            code,
            message: message.into(),
        }
    }

    pub fn for_command(mut self, command: CommandName) -> Self {
        self.command = Some(command);
        self
    }
}
