//! Inbound commands: the one list of every command, their fields, and the
//! decoder that turns a line into a command or an error under its `id`.
//!
//! Commands are decoded in two steps so that a bad command can still be
//! answered under its own `id`: first the line becomes a JSON object whose
//! `id` and `type` are read, then the command's own fields are checked (with
//! `serde_path_to_error`, so a message names the field that is wrong). Every
//! failure is an [`ErrorFrame`] carrying the best `id` known at that point.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{
    AbortResponse, BudgetResponse, CommandsResponse, CompactOutcome, DeleteSessionResponse, Empty,
    ErrorCode, ErrorFrame, ExportSessionResponse, ForkResponse, ImportSessionResponse,
    MessagesResponse, ModelsResponse, NewSessionResponse, PromptOutcome, SandboxMode,
    SessionStatsResponse, SessionsResponse, SetAutoCompactionResponse, SetModelResponse,
    SetPermissionModeResponse, SetSandboxResponse, SetThinkingLevelResponse, StateResponse,
    SteerResponse, SwitchSessionResponse,
};
use super::{Decision, Mode, ThinkingLevel};

/// Declares every command once: its variant, its fields and its wire name.
/// From this one list come [`Command`], [`CommandName`] (with the names a
/// client writes in `type`) and the decoder, so a new command is one line
/// here plus its handler.
macro_rules! commands {
    ($( $(#[doc = $doc:literal])* $variant:ident $(($params:ty))? => $response:ty = $wire:literal, )*) => {
        /// A command that passed validation.
        #[derive(Debug, Clone)]
        pub enum Command {
            $( $(#[doc = $doc])* $variant $(($params))?, )*
        }

        /// A command's name: its `type` on the wire, echoed as `command` on
        /// its answer.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CommandName {
            $( $variant, )*
        }

        impl CommandName {
            /// Every command, in the order SPEC.md lists them.
            pub const ALL: &'static [CommandName] = &[$(CommandName::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $( CommandName::$variant => $wire, )*
                }
            }

            pub fn from_wire(name: &str) -> Option<Self> {
                match name {
                    $( $wire => Some(CommandName::$variant), )*
                    _ => None,
                }
            }
        }

        impl Command {
            pub fn name(&self) -> CommandName {
                match self {
                    $( Command::$variant { .. } => CommandName::$variant, )*
                }
            }

            /// Every command's schema parts, for `protocol::schema`: the
            /// fields as the host reads them (`reads`, a deserialize-contract
            /// generator) and the response as it writes it (`writes`).
            pub(super) fn schemas(
                reads: &mut SchemaGenerator,
                writes: &mut SchemaGenerator,
            ) -> Vec<CommandSchema> {
                vec![$(
                    CommandSchema {
                        name: CommandName::$variant,
                        variant: stringify!($variant),
                        doc: concat!($($doc, "\n",)* ""),
                        params: commands!(@params reads $(, $params)?),
                        response: <$response as JsonSchema>::json_schema(writes),
                    },
                )*]
            }

            /// Reads the fields of command `name` from the rest of its object.
            fn decode(name: CommandName, id: &Value, fields: Map<String, Value>) -> Result<Self, ErrorFrame> {
                // Commands without fields ignore whatever else was sent.
                let _ = (id, &fields);
                Ok(match name {
                    $( CommandName::$variant => commands!(@build $variant, id, name, fields $(, $params)?), )*
                })
            }
        }
    };
    (@build $variant:ident, $id:ident, $name:ident, $fields:ident, $params:ty) => {
        Command::$variant(fields::<$params>($id, $name, $fields)?)
    };
    (@build $variant:ident, $id:ident, $name:ident, $fields:ident) => {
        Command::$variant
    };
    (@params $generator:ident, $params:ty) => {
        <$params as JsonSchema>::json_schema($generator)
    };
    (@params $generator:ident) => {
        schemars::json_schema!({ "type": "object" })
    };
}

/// What the schema says of one command: its fields, and the fields of its
/// response (both as object schemas, without `type`, `id` and the rest of
/// the envelope, which `protocol::schema` adds).
pub(super) struct CommandSchema {
    pub name: CommandName,
    pub variant: &'static str,
    pub doc: &'static str,
    pub params: Schema,
    pub response: Schema,
}

commands! {
    /// Starts a turn; answered when the turn ends (`busy` while one runs).
    Prompt(PromptParams) => PromptOutcome = "prompt",
    /// Aborts the running turn and drops the queued follow-ups; answered
    /// after the turn's `agent_end` and response.
    Abort => AbortResponse = "abort",
    /// A message for the model at the next safe point of the running turn.
    Steer(MessageParams) => SteerResponse = "steer",
    /// A prompt that runs as the next turn after the current one (at once
    /// when idle); answered when that turn ends.
    FollowUp(PromptParams) => PromptOutcome = "follow_up",
    /// Switches the model for the next provider request.
    SetModel(SetModelParams) => SetModelResponse = "set_model",
    /// Answers a `permission_request`.
    PermissionResponse(PermissionResponseParams) => Empty = "permission_response",
    /// Changes what tools may do without asking; persisted in the session.
    SetPermissionMode(SetPermissionModeParams) => SetPermissionModeResponse = "set_permission_mode",
    /// Sets how hard the model thinks, from the next turn; persisted in the session.
    SetThinkingLevel(SetThinkingLevelParams) => SetThinkingLevelResponse = "set_thinking_level",
    /// Sets the session's budget (a field left out stays as it is; `null`
    /// lifts that limit); checked before every provider round.
    SetBudget(SetBudgetParams) => BudgetResponse = "set_budget",
    /// Changes the kernel sandbox of this session's commands, from the
    /// next one started.
    SetSandbox(SetSandboxParams) => SetSandboxResponse = "set_sandbox",
    /// The host's state; never waits for a turn.
    GetState => StateResponse = "get_state",
    /// Token and cost totals of the session.
    GetSessionStats => SessionStatsResponse = "get_session_stats",
    /// What the model sees of the session's history (after a compaction:
    /// the summary, marked, then the kept messages); `all: true` for all of it.
    GetMessages(GetMessagesParams) => MessagesResponse = "get_messages",
    /// Every model the host can use, and whether it is available now.
    GetAvailableModels => ModelsResponse = "get_available_models",
    /// Starts a new session in this process (`busy` while a turn runs).
    NewSession => NewSessionResponse = "new_session",
    /// The stored sessions, newest first.
    ListSessions => SessionsResponse = "list_sessions",
    /// Deletes a stored session: not the one in use (`busy`), nor one
    /// another process holds (`session_locked`).
    DeleteSession(DeleteSessionParams) => DeleteSessionResponse = "delete_session",
    /// Copies the first `message_index` messages (default: all) into a new
    /// session and switches to it; the original is not modified (`busy`
    /// while a turn runs).
    Fork(ForkParams) => ForkResponse = "fork",
    /// Switches this process to another stored session, releasing the
    /// current one (`busy` while a turn runs).
    SwitchSession(SwitchSessionParams) => SwitchSessionResponse = "switch_session",
    /// A stored session (the one in use too: a snapshot of its complete
    /// entries) as one export stream, the `data` string (SPEC.md,
    /// "Portable sessions").
    ExportSession(ExportSessionParams) => ExportSessionResponse = "export_session",
    /// Stores an export stream: under its own id (`session_exists` when
    /// that is taken, unless `replace`), or a fresh one with `new_id`. Not
    /// over the session in use (`busy`) nor one another process holds
    /// (`session_locked`); a torn or foreign stream is `invalid_params`.
    ImportSession(ImportSessionParams) => ImportSessionResponse = "import_session",
    /// Summarises the older history so the model sees the summary and the
    /// recent messages (`busy` while a turn runs); `abort` stops it.
    Compact(CompactParams) => CompactOutcome = "compact",
    /// Turns compaction at the threshold and on overflow on or off;
    /// persisted in the session.
    SetAutoCompaction(SetAutoCompactionParams) => SetAutoCompactionResponse = "set_auto_compaction",
    /// Answers, then ends the host (SPEC §6).
    Shutdown => Empty = "shutdown",
    /// The slash commands a `prompt` or `follow_up` may start with: the
    /// project's, the user's and the built-ins.
    GetCommands => CommandsResponse = "get_commands",
}

impl JsonSchema for CommandName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CommandName".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = CommandName::ALL.iter().map(|c| c.as_str()).collect();
        schemars::json_schema!({
            "description": "A command's `type`, echoed as `command` on its answer.",
            "type": "string",
            "enum": names,
        })
    }
}

impl Serialize for CommandName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for CommandName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PromptParams {
    /// The user's message.
    pub message: String,
    /// Extra content: with attachments the user message's content is a
    /// block list, the `message` text first.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::attachments")]
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

/// Why an attachment was refused; serde shows it as the field's error.
#[derive(Debug)]
struct BadAttachment(String);

impl std::fmt::Display for BadAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<RawAttachment> for Attachment {
    type Error = BadAttachment;

    fn try_from(raw: RawAttachment) -> Result<Self, BadAttachment> {
        let missing = |what: &str| BadAttachment(what.to_owned());
        match raw.kind.as_str() {
            "text" => Ok(Attachment::Text {
                text: raw
                    .text
                    .ok_or_else(|| missing("a text attachment needs a string `text`"))?,
            }),
            "image" => Ok(Attachment::Image {
                media_type: raw
                    .media_type
                    .ok_or_else(|| missing("an image attachment needs a string `media_type`"))?,
                data: raw
                    .data
                    .ok_or_else(|| missing("an image attachment needs base64 `data`"))?,
            }),
            other => Err(BadAttachment(format!(
                "unknown attachment type {other:?}; use \"text\" or \"image\""
            ))),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct MessageParams {
    pub message: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct SetModelParams {
    pub model: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PermissionResponseParams {
    pub request_id: String,
    pub decision: Decision,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DeleteSessionParams {
    pub session_id: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ForkParams {
    /// Keep the messages before this index: the index of a user message
    /// (which is left out and returned as `message`) or the history length.
    #[serde(default)]
    pub message_index: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct SwitchSessionParams {
    pub session_id: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ExportSessionParams {
    pub session_id: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ImportSessionParams {
    /// An export stream, as `export_session` or `rpc sessions export` wrote it.
    pub data: String,
    /// Store a copy under a fresh id (`forked_from` names the original).
    #[serde(default)]
    pub new_id: bool,
    /// Overwrite a stored session of the same id.
    #[serde(default)]
    pub replace: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct SetPermissionModeParams {
    pub mode: Mode,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct GetMessagesParams {
    /// The whole history, compacted messages included.
    pub all: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CompactParams {
    /// Added to the summarisation request (what to keep, what to focus on).
    pub instructions: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct SetAutoCompactionParams {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct SetThinkingLevelParams {
    pub level: ThinkingLevel,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSandboxParams {
    pub mode: SandboxMode,
}

/// `set_budget`: absent leaves a limit as it is, `null` lifts it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetBudgetParams {
    /// Most provider rounds over the session's turns (at least 1).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<u64>")]
    pub max_turns: Option<Option<u64>>,
    /// Most the session may cost in USD, from the catalogue's prices
    /// (more than 0).
    #[serde(default, deserialize_with = "present")]
    #[schemars(with = "Option<f64>")]
    pub budget_usd: Option<Option<f64>>,
}

/// Tells a field sent as `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A command that passed validation, with the `id` it came with.
#[derive(Debug)]
pub struct Envelope {
    /// Echoed verbatim on the answer; `Value::Null` when the client sent none.
    pub id: Value,
    pub command: Command,
}

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
    let Some(name) = CommandName::from_wire(&kind) else {
        let shown: String = kind.chars().take(64).collect();
        let known: Vec<&str> = CommandName::ALL.iter().map(|c| c.as_str()).collect();
        return Err(ErrorFrame::new(
            id,
            ErrorCode::UnknownCommand,
            format!(
                "unknown command type \"{shown}\"; known: {}",
                known.join(", ")
            ),
        ));
    };
    let command = Command::decode(name, &id, obj)?;
    Ok(Envelope { id, command })
}

/// The command's own fields. Errors name the field (`attachments[0].data:
/// invalid type: …`), since serde's own message often does not.
fn fields<T: serde::de::DeserializeOwned>(
    id: &Value,
    name: CommandName,
    obj: Map<String, Value>,
) -> Result<T, ErrorFrame> {
    serde_path_to_error::deserialize(Value::Object(obj)).map_err(|e| {
        let path = e.path().to_string();
        let message = if path == "." {
            format!("invalid {name} command: {}", e.inner())
        } else {
            format!("invalid {name} command: field `{path}`: {}", e.inner())
        };
        ErrorFrame::new(id.clone(), ErrorCode::InvalidParams, message).for_command(name)
    })
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
    fn every_name_round_trips_and_the_unknown_message_lists_them_all() {
        for name in CommandName::ALL {
            assert_eq!(CommandName::from_wire(name.as_str()), Some(*name));
        }
        let e = err(r#"{"type":"nope"}"#);
        for name in CommandName::ALL {
            assert!(e.message.contains(name.as_str()), "{}", e.message);
        }
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
}
