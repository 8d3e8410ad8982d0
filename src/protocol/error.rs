//! The `error` frame and the codes a client can branch on.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::CommandName;

/// Error codes a client can branch on. The message beside each is for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The line is not UTF-8 or not JSON.
    ParseError,
    /// The line exceeds `--max-frame-bytes`.
    FrameTooLarge,
    /// Not a JSON object, `type` missing or not a string, or `id` of a wrong type.
    InvalidRequest,
    /// `type` names no command.
    UnknownCommand,
    /// A field is missing or of the wrong type.
    InvalidParams,
    /// A turn is running; abort first.
    Busy,
    /// `steer` with no turn running.
    NotStreaming,
    /// An unknown model, provider, session or permission request.
    NotFound,
    /// The session is in use by another `rpc` process.
    SessionLocked,
    /// `import_session`: a session with that id is already stored; pass
    /// `replace: true` to overwrite it or `new_id: true` for a copy.
    SessionExists,
    /// The model provider failed (in a failed prompt's response).
    ProviderError,
    /// Reserved for tool execution.
    ToolError,
    /// `compact`: the host kept the history as it was, since compacting
    /// would not help (nothing to compact, or the summary would not be
    /// smaller than what it replaces); not a provider failure.
    NotCompacted,
    /// The session reached its budget (`max_turns` or `budget_usd`): the
    /// turn stopped before its next provider round.
    BudgetExceeded,
    /// A policy hook refused it (`UserPromptSubmit` exiting 2): the message
    /// names the hook and gives its reason. Nothing was stored or sent.
    HookBlocked,
    /// The host could not do it; the message names the path and the OS error.
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
            ErrorCode::SessionExists => "session_exists",
            ErrorCode::ProviderError => "provider_error",
            ErrorCode::ToolError => "tool_error",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::NotCompacted => "not_compacted",
            ErrorCode::HookBlocked => "hook_blocked",
            ErrorCode::Internal => "internal",
        }
    }
}

/// `error` frame: a command was rejected and did nothing.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorFrame {
    /// The command's id; `null` only for lines that could not be decoded
    /// that far.
    #[schemars(schema_with = "super::schema::id")]
    pub id: Value,
    /// The command's `type`, when it was recognised.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "CommandName")]
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
