//! Wire types of protocol v1: inbound commands, outbound frames, error codes.
//!
//! Commands are decoded in two steps so that a bad command can still be
//! answered under its own `id`: first the line becomes a JSON object whose
//! `id` and `type` are read, then the command's own fields are checked. Every
//! failure is an [`ErrorFrame`] carrying the best `id` known at that point.
//! Outbound frames are `#[serde(tag = "type")]` enums so the JSON shape is
//! readable here; the hot `message_update` frame has its own borrowed struct
//! so forwarding a delta allocates nothing but the output line.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version announced in `ready`.
pub const PROTOCOL_VERSION: u32 = 1;

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

/// A command that passed validation, with the `id` it came with.
#[derive(Debug)]
pub struct Envelope {
    /// Echoed verbatim on the answer; `Value::Null` when the client sent none.
    pub id: Value,
    pub command: Command,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PromptParams {
    pub message: String,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// Extra content sent with a prompt. Images travel as base64, Anthropic style.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawAttachment")]
pub enum Attachment {
    Text { text: String },
    Image { media_type: String, data: String },
}

/// The wire shape of an attachment: a plain struct, so a mistyped field is
/// reported with its own path (`attachments[0].data`), which an internally
/// tagged enum would hide.
#[derive(Deserialize)]
struct RawAttachment {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default, alias = "mime_type")]
    media_type: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

impl TryFrom<RawAttachment> for Attachment {
    type Error = String;

    fn try_from(raw: RawAttachment) -> Result<Self, String> {
        match raw.kind.as_str() {
            "text" => Ok(Attachment::Text {
                text: raw.text.ok_or("a text attachment needs a string `text`")?,
            }),
            "image" => Ok(Attachment::Image {
                media_type: raw
                    .media_type
                    .ok_or("an image attachment needs a string `media_type`")?,
                data: raw.data.ok_or("an image attachment needs base64 `data`")?,
            }),
            other => Err(format!(
                "unknown attachment type {other:?}; use \"text\" or \"image\""
            )),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct MessageParams {
    pub message: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SetModelParams {
    pub model: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PermissionResponseParams {
    pub request_id: String,
    pub decision: crate::permissions::Decision,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SetPermissionModeParams {
    pub mode: crate::permissions::Mode,
}

#[derive(Debug, Clone)]
pub enum Command {
    Prompt(PromptParams),
    Abort,
    Steer(MessageParams),
    FollowUp(PromptParams),
    SetModel(SetModelParams),
    PermissionResponse(PermissionResponseParams),
    SetPermissionMode(SetPermissionModeParams),
    GetState,
    GetSessionStats,
    GetMessages,
    GetAvailableModels,
    NewSession,
    ListSessions,
    Shutdown,
}

impl Command {
    /// The `command` name echoed on responses.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Prompt(_) => "prompt",
            Command::Abort => "abort",
            Command::Steer(_) => "steer",
            Command::FollowUp(_) => "follow_up",
            Command::SetModel(_) => "set_model",
            Command::PermissionResponse(_) => "permission_response",
            Command::SetPermissionMode(_) => "set_permission_mode",
            Command::GetState => "get_state",
            Command::GetSessionStats => "get_session_stats",
            Command::GetMessages => "get_messages",
            Command::GetAvailableModels => "get_available_models",
            Command::NewSession => "new_session",
            Command::ListSessions => "list_sessions",
            Command::Shutdown => "shutdown",
        }
    }
}

/// Every command name, for the `unknown_command` message.
const COMMAND_NAMES: &str = "prompt, abort, steer, follow_up, set_model, permission_response, \
set_permission_mode, get_state, get_session_stats, get_messages, get_available_models, \
new_session, list_sessions, shutdown";

/// Decodes one inbound line (without its newline) into a command.
pub fn decode_command(line: &[u8]) -> Result<Envelope, ErrorFrame> {
    let text = std::str::from_utf8(line).map_err(|e| {
        ErrorFrame::new(
            Value::Null,
            ErrorCode::ParseError,
            format!("line is not valid UTF-8 (byte {})", e.valid_up_to()),
        )
    })?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ErrorFrame::new(
            Value::Null,
            ErrorCode::ParseError,
            format!("line is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(mut obj) = value else {
        return Err(ErrorFrame::new(
            Value::Null,
            ErrorCode::InvalidRequest,
            "a command must be a JSON object with a \"type\" field",
        ));
    };
    let id = match obj.remove("id") {
        None | Some(Value::Null) => Value::Null,
        Some(id @ (Value::String(_) | Value::Number(_))) => id,
        Some(_) => {
            return Err(ErrorFrame::new(
                Value::Null,
                ErrorCode::InvalidRequest,
                "\"id\" must be a string or a number",
            ))
        }
    };
    let kind = match obj.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(_) => {
            return Err(ErrorFrame::new(
                id,
                ErrorCode::InvalidRequest,
                "\"type\" must be a string naming the command",
            ))
        }
        None => {
            return Err(ErrorFrame::new(
                id,
                ErrorCode::InvalidRequest,
                "missing \"type\": every command needs one",
            ))
        }
    };
    let command = match kind.as_str() {
        "prompt" => Command::Prompt(params(&id, "prompt", obj)?),
        "follow_up" => Command::FollowUp(params(&id, "follow_up", obj)?),
        "steer" => Command::Steer(params(&id, "steer", obj)?),
        "set_model" => Command::SetModel(params(&id, "set_model", obj)?),
        "permission_response" => {
            Command::PermissionResponse(params(&id, "permission_response", obj)?)
        }
        "set_permission_mode" => {
            Command::SetPermissionMode(params(&id, "set_permission_mode", obj)?)
        }
        "abort" => Command::Abort,
        "get_state" => Command::GetState,
        "get_session_stats" => Command::GetSessionStats,
        "get_messages" => Command::GetMessages,
        "get_available_models" => Command::GetAvailableModels,
        "new_session" => Command::NewSession,
        "list_sessions" => Command::ListSessions,
        "shutdown" => Command::Shutdown,
        other => {
            let shown: String = other.chars().take(64).collect();
            return Err(ErrorFrame::new(
                id,
                ErrorCode::UnknownCommand,
                format!("unknown command type \"{shown}\"; known: {COMMAND_NAMES}"),
            ));
        }
    };
    Ok(Envelope { id, command })
}

/// The command's own fields. Errors name the field (`attachments[0].data:
/// invalid type: …`), since serde's own message often does not.
fn params<T: serde::de::DeserializeOwned>(
    id: &Value,
    kind: &'static str,
    obj: Map<String, Value>,
) -> Result<T, ErrorFrame> {
    serde_path_to_error::deserialize(Value::Object(obj)).map_err(|e| {
        let path = e.path().to_string();
        let message = if path == "." {
            format!("invalid {kind} command: {}", e.inner())
        } else {
            format!("invalid {kind} command: field `{path}`: {}", e.inner())
        };
        ErrorFrame::new(id.clone(), ErrorCode::InvalidParams, message).for_command(kind)
    })
}

/// `error` frame: a command was rejected and did nothing.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorFrame {
    pub id: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<&'static str>,
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

    pub fn for_command(mut self, command: &'static str) -> Self {
        self.command = Some(command);
        self
    }
}

pub use crate::message::Usage;

/// The payload of a `message_update` frame.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    TextDelta {
        delta: String,
    },
    ThinkingDelta {
        delta: String,
    },
    ToolcallStart {
        tool_call_id: String,
        name: String,
    },
    ToolcallDelta {
        tool_call_id: String,
        delta: String,
    },
    ToolcallEnd {
        tool_call_id: String,
        name: String,
        input: Value,
    },
}

/// `message_update`, borrowed so the hot path serialises without cloning.
#[derive(Serialize)]
pub struct MessageUpdate<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub prompt_id: &'a str,
    pub event: &'a StreamEvent,
}

/// Every frame other than `message_update`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    Ready(ReadyFrame),
    Response(ResponseFrame),
    Error(ErrorFrame),
    AgentStart(AgentStartFrame),
    AgentEnd(AgentEndFrame),
    AutoRetry(AutoRetryFrame),
    ToolExecutionStart(ToolExecutionStartFrame),
    ToolExecutionUpdate(ToolExecutionUpdateFrame),
    ToolExecutionEnd(ToolExecutionEndFrame),
    PermissionRequest(PermissionRequestFrame),
    PermissionCancelled(PermissionCancelledFrame),
}

#[derive(Debug, Serialize)]
pub struct ToolExecutionStartFrame {
    pub prompt_id: String,
    pub tool_call_id: String,
    pub name: String,
    pub input: Value,
}

/// Incremental tool output (one line of bash output, without its newline).
#[derive(Debug, Serialize)]
pub struct ToolExecutionUpdateFrame {
    pub prompt_id: String,
    pub tool_call_id: String,
    pub output: String,
}

#[derive(Debug, Serialize)]
pub struct ToolExecutionEndFrame {
    pub prompt_id: String,
    pub tool_call_id: String,
    pub result: String,
    pub is_error: bool,
}

/// The host asks the client whether a tool call may run.
#[derive(Debug, Serialize)]
pub struct PermissionRequestFrame {
    pub request_id: String,
    pub prompt_id: String,
    pub tool_call_id: String,
    pub tool: String,
    pub input: Value,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// A path the call touches resolves outside the working directory.
    pub outside_cwd: bool,
}

/// A permission request that no longer needs an answer (the turn was aborted).
#[derive(Debug, Serialize)]
pub struct PermissionCancelledFrame {
    pub request_id: String,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct ReadyFrame {
    pub protocol_version: u32,
    pub version: &'static str,
    pub session_id: String,
    pub model: Option<String>,
    pub cwd: String,
    pub message_count: usize,
    pub usage: Usage,
}

/// `response`: the single answer to a command. Command-specific fields are
/// flattened next to `ok`.
#[derive(Debug, Serialize)]
pub struct ResponseFrame {
    pub id: Value,
    pub command: &'static str,
    pub ok: bool,
    #[serde(flatten)]
    pub body: Map<String, Value>,
}

#[derive(Debug, Serialize)]
pub struct AgentStartFrame {
    pub prompt_id: String,
    /// The id of the `prompt` / `follow_up` command that started this turn.
    pub id: Value,
    pub command: &'static str,
}

/// An HTTP provider attempt failed before anything was shown; the host waits
/// `delay_ms` and tries again.
#[derive(Debug, Serialize)]
pub struct AutoRetryFrame {
    pub prompt_id: String,
    pub attempt: u32,
    pub delay_ms: u64,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct AgentEndFrame {
    pub prompt_id: String,
    pub stop_reason: String,
    pub usage: Usage,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(line: &str) -> ErrorFrame {
        decode_command(line.as_bytes()).unwrap_err()
    }

    #[test]
    fn decodes_commands_with_ids() {
        let env = decode_command(br#"{"type":"prompt","id":7,"message":"hi","extra":1}"#).unwrap();
        assert_eq!(env.id, json!(7));
        assert!(matches!(env.command, Command::Prompt(ref p) if p.message == "hi"));
        let env = decode_command(br#"{"type":"get_state"}"#).unwrap();
        assert_eq!(env.id, Value::Null);
    }

    #[test]
    fn errors_keep_the_id_when_there_is_one() {
        let e = err(r#"{"type":"nope","id":"a"}"#);
        assert_eq!((e.code, e.id), (ErrorCode::UnknownCommand, json!("a")));
        let e = err(r#"{"type":"prompt","id":"b"}"#);
        assert_eq!((e.code, e.id), (ErrorCode::InvalidParams, json!("b")));
        let e = err(r#"{"type":"prompt","id":"c","message":5}"#);
        assert_eq!((e.code, e.id), (ErrorCode::InvalidParams, json!("c")));
        let e = err(r#"{"id":"d"}"#);
        assert_eq!((e.code, e.id), (ErrorCode::InvalidRequest, json!("d")));
        let e = err(r#"{"type":3,"id":"e"}"#);
        assert_eq!((e.code, e.id), (ErrorCode::InvalidRequest, json!("e")));
    }

    #[test]
    fn undecodable_lines_have_null_ids() {
        assert_eq!(err("not json").code, ErrorCode::ParseError);
        let e = decode_command(b"{\"type\":\"get_state\",\"id\":\"\xff\"}").unwrap_err();
        assert_eq!((e.code, e.id), (ErrorCode::ParseError, Value::Null));
        assert_eq!(err("[1,2]").code, ErrorCode::InvalidRequest);
        let e = err(r#"{"type":"get_state","id":{"x":1}}"#);
        assert_eq!((e.code, e.id), (ErrorCode::InvalidRequest, Value::Null));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let line = "[".repeat(100_000);
        assert_eq!(err(&line).code, ErrorCode::ParseError);
    }

    #[test]
    fn message_update_is_compact() {
        let ev = StreamEvent::TextDelta {
            delta: "tok ".into(),
        };
        let frame = MessageUpdate {
            kind: "message_update",
            prompt_id: "p1",
            event: &ev,
        };
        let line = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            line,
            r#"{"type":"message_update","prompt_id":"p1","event":{"type":"text_delta","delta":"tok "}}"#
        );
    }
}
