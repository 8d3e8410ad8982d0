//! `response` frames: the one successful (or turn-ending) answer to each
//! command, with a typed body per command.
//!
//! A response is `{type, id, command, ok}` with the command's own fields
//! beside them at the top level (SPEC §2); [`ResponseFrame`] flattens its
//! [`Response`] body to get that shape.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{CommandName, ErrorCode, Mode, ModelEntry, SandboxMode, SandboxState, ThinkingLevel};
use crate::message::{Message, Usage};

/// `response`: the single answer to a command.
#[derive(Debug, Serialize)]
pub struct ResponseFrame {
    pub id: Value,
    pub command: CommandName,
    pub ok: bool,
    #[serde(flatten)]
    pub body: Response,
}

/// The command-specific fields of a response.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    /// `permission_response`, `shutdown`: nothing beyond `ok`.
    Empty(Empty),
    /// `prompt`, `follow_up`: how the turn ended.
    Turn(TurnResponse),
    /// `prompt`, `follow_up`: it never ran (dropped by an abort, or the
    /// host exited first).
    NotRun(NotRun),
    Abort(AbortResponse),
    Steer(SteerResponse),
    SetModel(SetModelResponse),
    SetPermissionMode(SetPermissionModeResponse),
    SetThinkingLevel(SetThinkingLevelResponse),
    SetBudget(BudgetResponse),
    SetSandbox(SetSandboxResponse),
    GetState(StateResponse),
    GetSessionStats(SessionStatsResponse),
    GetMessages(MessagesResponse),
    GetAvailableModels(ModelsResponse),
    NewSession(NewSessionResponse),
    ListSessions(SessionsResponse),
    DeleteSession(DeleteSessionResponse),
    Fork(ForkResponse),
    SwitchSession(SwitchSessionResponse),
    ExportSession(ExportSessionResponse),
    ImportSession(ImportSessionResponse),
    Compact(CompactionResult),
    SetAutoCompaction(SetAutoCompactionResponse),
    GetCommands(CommandsResponse),
}

impl Response {
    /// The `ok` of the response frame: false only for a turn that failed
    /// (its `code` and `error` say why).
    pub fn ok(&self) -> bool {
        !matches!(self, Response::Turn(turn) if turn.code.is_some())
    }
}

/// `compact`: what the compaction did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CompactionResult {
    pub summary: String,
    /// The estimated input the model would have been sent, before and after.
    pub tokens_before: u64,
    pub tokens_after: u64,
    /// Messages of the whole history the summary now stands for (the
    /// index of the first message kept verbatim).
    pub messages_summarized: usize,
}

/// The response to `compact`: what it did, or `cancelled: true` alone when
/// an `abort` stopped it (the history is as before).
// Only shapes the schema; the host builds a `Response`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum CompactOutcome {
    Compact(CompactionResult),
    NotRun(NotRun),
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SetAutoCompactionResponse {
    pub enabled: bool,
}

#[derive(Debug, Default, Serialize, JsonSchema)]
pub struct Empty {}

/// The end of a turn, in the response to the command that started it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TurnResponse {
    pub prompt_id: String,
    pub stop_reason: String,
    pub usage: Usage,
    /// The turn was aborted.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// Why the turn failed (`ok: false`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Steers the turn could not deliver because it failed first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<Dropped>,
    /// The turn's messages could not all be saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persist_error: Option<String>,
    /// The failure was the `--max-rounds` limit or the session's budget.
    /// Not on the native wire (its `code` and `error` say so); in-process
    /// front ends map it, as ACP does to its `max_turn_requests` stop
    /// reason.
    #[serde(skip)]
    pub round_limit: bool,
}

/// The response to a `prompt` or `follow_up`: how its turn ended, or
/// `cancelled: true` alone when it never ran (an abort dropped it, or the
/// host exited first), or, for a `/compact` message, what `compact` says.
// Only shapes the schema; the host builds a `Response`.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum PromptOutcome {
    Turn(TurnResponse),
    NotRun(NotRun),
    // A `/compact` message: no turn ran (the enum's doc says so; a doc
    // here would wrap the reference, which the bindings' generators read).
    Compact(CompactionResult),
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct NotRun {
    #[schemars(schema_with = "super::schema::always_true")]
    pub cancelled: bool,
}

impl NotRun {
    pub fn cancelled() -> Self {
        NotRun { cancelled: true }
    }
}

/// Something queued for a turn that an abort (or a failure) dropped.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Dropped {
    /// A queued follow-up; `id` is the follow-up command's own.
    FollowUp {
        #[schemars(schema_with = "super::schema::id")]
        id: Value,
        message: String,
    },
    /// A prompt still waiting for a `set_model` sent before it.
    Prompt {
        #[schemars(schema_with = "super::schema::id")]
        id: Value,
        message: String,
    },
    /// A steer the turn never delivered to the model.
    Steer { message: String },
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AbortResponse {
    pub dropped: Vec<Dropped>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SteerResponse {
    pub queued: bool,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SetModelResponse {
    pub model: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SetPermissionModeResponse {
    pub mode: Mode,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SetSandboxResponse {
    pub mode: SandboxMode,
}

/// A session's budget; `null` where there is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, JsonSchema)]
pub struct BudgetResponse {
    pub max_turns: Option<u64>,
    pub budget_usd: Option<f64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SetThinkingLevelResponse {
    pub level: ThinkingLevel,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct StateResponse {
    pub streaming: bool,
    pub prompt_id: Option<String>,
    pub model: Option<String>,
    pub session_id: String,
    pub message_count: usize,
    /// Follow-ups waiting to run.
    pub queued: usize,
    pub cwd: String,
    pub permission_mode: Mode,
    /// Applies from the next turn (`set_thinking_level`).
    pub thinking_level: ThinkingLevel,
    /// The AGENTS.md / CLAUDE.md files in the system prompt, outermost first.
    pub context_files: Vec<String>,
    /// The Agent Skills listed in the system prompt, by name.
    pub skills: Vec<SkillEntry>,
    /// The `SKILL.md` files skipped because they break a rule.
    pub skill_errors: Vec<SkillError>,
    /// A compaction is running (`compact`, or the running turn's own).
    pub compacting: bool,
    /// The host compacts on its own (`set_auto_compaction`).
    pub auto_compaction: bool,
    /// The MCP servers configured for this host, in configuration order.
    pub mcp_servers: Vec<McpServerState>,
    /// The plan the model keeps (its last `todo_write`); empty before one.
    pub plan: Vec<super::PlanEntry>,
    /// The kernel sandbox of this session's commands.
    pub sandbox: SandboxState,
}

/// One MCP server as `get_state` shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct McpServerState {
    pub name: String,
    pub status: super::McpStatus,
    /// The names the model calls its tools by (empty until it is ready).
    pub tools: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionStatsResponse {
    pub session_id: String,
    pub model: Option<String>,
    pub message_count: usize,
    pub turns: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_input_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct MessagesResponse {
    pub messages: Vec<Arc<Message>>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ModelsResponse {
    pub models: Vec<ModelEntry>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct NewSessionResponse {
    pub session_id: String,
}

/// The fork the host switched to.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ForkResponse {
    /// The new session's id.
    pub session_id: String,
    /// The session it was forked from (the one in use before).
    pub forked_from: String,
    /// Messages in the fork: the `message_index` it was cut at.
    pub message_count: usize,
    /// The text of the user message at `message_index` (left out of the
    /// fork), for an editor to put back in its input box; absent when the
    /// whole history was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The session switched to, described like `ready`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SwitchSessionResponse {
    pub session_id: String,
    /// The model the next prompt will use.
    pub model: Option<String>,
    /// Where tools now run: the session's own directory (see SPEC).
    pub cwd: String,
    pub message_count: usize,
    /// The session's token totals so far.
    pub usage: Usage,
    pub permission_mode: Mode,
    pub thinking_level: ThinkingLevel,
    /// The AGENTS.md / CLAUDE.md files in the system prompt, outermost first.
    pub context_files: Vec<String>,
    /// The Agent Skills listed in the system prompt, by name.
    pub skills: Vec<SkillEntry>,
}

/// One Agent Skill in the system prompt: the model reads `path` (its
/// `SKILL.md`) when a task matches `description`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SkillEntry {
    pub name: String,
    pub description: String,
    pub path: String,
}

/// A `SKILL.md` left out of the system prompt, and the rule it breaks.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SkillError {
    pub path: String,
    pub message: String,
}

/// `export_session`: the session as one export stream.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExportSessionResponse {
    pub session_id: String,
    /// JSONL: the `agent_rpc_export` header line, then the session's lines.
    pub data: String,
}

/// `import_session`: the id the session was stored under.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ImportSessionResponse {
    pub session_id: String,
}

/// The session that was deleted.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DeleteSessionResponse {
    pub session_id: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionsResponse {
    pub sessions: Vec<SessionSummary>,
}

/// One stored session, as `list_sessions` lists it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SessionSummary {
    pub session_id: String,
    pub created_at: String,
    /// When the file was last written.
    pub updated_at: String,
    pub message_count: usize,
    pub model: Option<String>,
    /// The first non-blank line of the first user message, trimmed, cut at
    /// 80 characters (with `…` when cut).
    pub title: Option<String>,
    /// The directory the session was started in.
    pub cwd: String,
    /// The session this one was forked from, if it is a fork.
    pub forked_from: Option<String>,
    /// The session whose `task` call started this one, if it is a
    /// subagent's.
    pub parent_session_id: Option<String>,
}

/// `get_commands`: the slash commands a `prompt` may start with.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CommandsResponse {
    /// Sorted by name; built-ins included.
    pub commands: Vec<CommandEntry>,
}

/// One slash command, invoked as `/<name> [arguments]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CommandEntry {
    /// Without the `/`; a subfolder is a `folder:` prefix.
    pub name: String,
    /// The front matter's `description`, else the body's first line.
    pub description: String,
    /// The front matter's `argument-hint` (e.g. `[file] [focus]`).
    pub argument_hint: Option<String>,
    pub source: CommandSource,
}

/// Where a command comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandSource {
    /// `.agents/commands/` or `.claude/commands/` of the project.
    Project,
    /// The user's `$XDG_CONFIG_HOME/agent-rpc/commands/`.
    User,
    /// Built into the host: `/compact`, `/skills`.
    Builtin,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(command: CommandName, ok: bool, body: Response) -> Value {
        let frame = ResponseFrame {
            id: json!(1),
            command,
            ok,
            body,
        };
        serde_json::to_value(&frame).unwrap()
    }

    #[test]
    fn bodies_sit_beside_ok() {
        assert_eq!(
            line(CommandName::Shutdown, true, Response::Empty(Empty {})),
            json!({"id":1,"command":"shutdown","ok":true})
        );
        let abort = Response::Abort(AbortResponse {
            dropped: vec![
                Dropped::FollowUp {
                    id: json!("f1"),
                    message: "and then?".into(),
                },
                Dropped::Steer {
                    message: "be brief".into(),
                },
            ],
        });
        assert_eq!(
            line(CommandName::Abort, true, abort),
            json!({"id":1,"command":"abort","ok":true,"dropped":[
                {"type":"follow_up","id":"f1","message":"and then?"},
                {"type":"steer","message":"be brief"}]})
        );
    }

    #[test]
    fn a_turn_response_shows_only_what_happened() {
        let turn = TurnResponse {
            prompt_id: "p1".into(),
            stop_reason: "error".into(),
            usage: Usage::default(),
            cancelled: false,
            code: Some(ErrorCode::ProviderError),
            error: Some("boom".into()),
            dropped: Vec::new(),
            persist_error: None,
            round_limit: true,
        };
        let v = line(CommandName::Prompt, false, Response::Turn(turn));
        assert_eq!(v["code"], "provider_error");
        assert_eq!(v["error"], "boom");
        for absent in ["cancelled", "dropped", "persist_error", "round_limit"] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
    }
}
