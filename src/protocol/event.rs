//! Outbound frames other than `response` and `error`: `ready`, the turn's
//! events and the permission round trip.
//!
//! Frames are `#[serde(tag = "type")]` enums so the JSON shape is readable
//! here; the hot `message_update` frame has its own borrowed struct so
//! forwarding a delta allocates nothing but the output line.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{CommandName, ErrorFrame, ResponseFrame, ThinkingLevel};
use crate::message::Usage;

/// The payload of a `message_update` frame.
#[derive(Debug, Clone, Serialize, JsonSchema)]
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
    /// Set on a subagent's events: the parent's `task` call that runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_tool_call_id: Option<&'a str>,
}

/// Every frame other than `message_update`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    Ready(ReadyFrame),
    /// Each command's response has its own schema (`protocol::schema`).
    #[schemars(skip)]
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
    ModelError(ModelErrorFrame),
    ModelChanged(ModelChangedFrame),
    CompactionStart(CompactionStartFrame),
    CompactionEnd(CompactionEndFrame),
    McpServerStatus(McpServerStatusFrame),
    Plan(super::PlanFrame),
    Hook(HookFrame),
}

impl Frame {
    /// Makes a subagent's frame one of the turn `prompt_id` of its parent,
    /// inside that turn's `task` call `parent`. Frames a subagent does not
    /// pass on are left as they are.
    pub(crate) fn nest(&mut self, prompt_id: &str, parent: &str) {
        let (prompt, tag) = match self {
            Frame::ToolExecutionStart(f) => (&mut f.prompt_id, &mut f.parent_tool_call_id),
            Frame::ToolExecutionUpdate(f) => (&mut f.prompt_id, &mut f.parent_tool_call_id),
            Frame::ToolExecutionEnd(f) => (&mut f.prompt_id, &mut f.parent_tool_call_id),
            Frame::PermissionRequest(f) => (&mut f.prompt_id, &mut f.parent_tool_call_id),
            _ => return,
        };
        prompt_id.clone_into(prompt);
        *tag = Some(parent.to_owned());
    }
}

/// One hook command ran (SPEC §9.6): for which event, how it ended, and
/// what it decided.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HookFrame {
    /// The turn it ran in; absent outside a turn (`compact`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    /// Claude Code's event name: `PreToolUse`, `Stop`, ...
    pub event: String,
    /// The command as the hooks file gives it.
    pub command: String,
    /// Absent when it did not exit on its own (timed out, killed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    /// What it decided: `block` (exit 2, or `decision: "block"`),
    /// `allow`/`deny`/`ask` (`permissionDecision`), `stop`
    /// (`continue: false`); absent when it only let things go on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Why it counts as a non-blocking failure: an exit other than 0 and
    /// 2 (with its stderr), a timeout, a start that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Where an MCP server is (`get_state.mcp_servers`, `mcp_server_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum McpStatus {
    /// Connecting and listing its tools (at start-up, or restarting).
    Starting,
    /// Its tools are offered to the model.
    Ready,
    /// It could not start, or crashed; `error` says why.
    Failed,
}

/// An MCP server's status changed: it became ready (with its tools), its
/// tool list changed, or it failed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct McpServerStatusFrame {
    pub name: String,
    pub status: McpStatus,
    /// The names the model calls its tools by (`mcp__<server>__<tool>`);
    /// absent while they are not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Why a compaction runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CompactionReason {
    /// The `compact` command.
    Manual,
    /// The next request would have left less than the reserve free.
    Threshold,
    /// The provider rejected the request as too long.
    Overflow,
}

/// A compaction began (inside `agent_start`…`agent_end` when part of a turn).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CompactionStartFrame {
    /// The turn it is part of; absent for `compact`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    pub reason: CompactionReason,
}

/// A compaction ended. With `ok: false` the history is exactly as before.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CompactionEndFrame {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_id: Option<String>,
    pub reason: CompactionReason,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The estimated input before and after (equal when it failed).
    pub tokens_before: u64,
    pub tokens_after: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The model in use (from `--model`, the config's `default_model` or the
/// resumed session) turned out unusable once its extension answered
/// `initialize`: the extension does not offer it. Sent at most once per
/// model, after `ready`; the next prompt will be refused with `not_found`
/// until `set_model` picks another.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ModelErrorFrame {
    pub model: String,
    /// What is wrong and what the extension offers instead.
    pub message: String,
}

/// The model the next prompt will use changed after `ready`: `set_model`,
/// or the default once the extensions it depends on reported (or a turn
/// chose it). Not sent for the model `ready` already named.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ModelChangedFrame {
    pub model: String,
}

/// A tool call starts: its permission request (if one is asked) and its
/// output follow.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ToolExecutionStartFrame {
    pub prompt_id: String,
    pub tool_call_id: String,
    pub name: String,
    pub input: Value,
    /// Set when a subagent made this call: the parent's `task` call that
    /// runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub parent_tool_call_id: Option<String>,
}

/// Incremental tool output (one line of bash output, without its newline).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ToolExecutionUpdateFrame {
    pub prompt_id: String,
    pub tool_call_id: String,
    pub output: String,
    /// Set when a subagent made this call: the parent's `task` call that
    /// runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub parent_tool_call_id: Option<String>,
}

/// A tool call ended; `result` is what the model is given.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ToolExecutionEndFrame {
    pub prompt_id: String,
    pub tool_call_id: String,
    pub result: String,
    pub is_error: bool,
    /// Set when a subagent made this call: the parent's `task` call that
    /// runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub parent_tool_call_id: Option<String>,
}

/// The host asks the client whether a tool call may run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PermissionRequestFrame {
    pub request_id: String,
    pub prompt_id: String,
    pub tool_call_id: String,
    pub tool: String,
    pub input: Value,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub diff: Option<String>,
    /// A path the call touches resolves outside the working directory.
    pub outside_cwd: bool,
    /// Set when a subagent made this call: the parent's `task` call that
    /// runs it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub parent_tool_call_id: Option<String>,
}

/// A permission request that no longer needs an answer (the turn was aborted).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PermissionCancelledFrame {
    pub request_id: String,
    pub reason: String,
}

/// The first line the host writes: the session is loaded and commands
/// are read from now on.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReadyFrame {
    pub protocol_version: u32,
    pub version: &'static str,
    pub session_id: String,
    /// The model the next prompt will use; `null` while that depends on
    /// extensions still starting (a `model_changed` follows).
    pub model: Option<String>,
    pub cwd: String,
    pub message_count: usize,
    pub usage: Usage,
    pub thinking_level: ThinkingLevel,
    /// The AGENTS.md / CLAUDE.md files in the system prompt, outermost first.
    pub context_files: Vec<String>,
    /// The Agent Skills listed in the system prompt, by name.
    pub skills: Vec<super::SkillEntry>,
    /// The kernel sandbox of this session's commands.
    pub sandbox: super::SandboxState,
}

/// A turn starts (for a `prompt` or `follow_up`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentStartFrame {
    pub prompt_id: String,
    /// The id of the `prompt` / `follow_up` command that started this turn.
    #[schemars(schema_with = "super::schema::id")]
    pub id: Value,
    #[schemars(schema_with = "super::schema::turn_command")]
    pub command: CommandName,
}

/// An HTTP provider attempt failed before anything was shown; the host waits
/// `delay_ms` and tries again.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AutoRetryFrame {
    pub prompt_id: String,
    pub attempt: u32,
    pub delay_ms: u64,
    pub reason: String,
}

/// A turn ended, after every other event of it; its command's response
/// follows.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AgentEndFrame {
    pub prompt_id: String,
    pub stop_reason: String,
    pub usage: Usage,
    /// The turn's last provider call's usage: the context in use after it.
    /// Not on the native wire (its clients have `get_session_stats`);
    /// in-process front ends report it, as ACP's `usage_update` does.
    #[serde(skip)]
    pub last_call: Option<Usage>,
    /// The session's cost so far (this turn included), when its model's
    /// prices are known. Not on the native wire, like `last_call`.
    #[serde(skip)]
    pub session_cost_usd: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_update_is_compact() {
        let ev = StreamEvent::TextDelta {
            delta: "tok ".into(),
        };
        let frame = MessageUpdate {
            kind: "message_update",
            prompt_id: "p1",
            event: &ev,
            parent_tool_call_id: None,
        };
        let line = serde_json::to_string(&frame).unwrap();
        assert_eq!(
            line,
            r#"{"type":"message_update","prompt_id":"p1","event":{"type":"text_delta","delta":"tok "}}"#
        );
    }
}
