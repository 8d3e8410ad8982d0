//! Host frames → ACP `session/update` payloads (the table in SPEC.md,
//! "ACP mode"). Pure: the session's sink (`sink.rs`) feeds it one typed
//! frame or streamed event at a time and sends what comes out, in order.
//!
//! A tool call is announced as `tool_call` (`pending`) when the model's call
//! is complete (`toolcall_end`), stays `pending` while it waits for
//! approval, goes `in_progress` when it starts running (the sink's
//! `tool_running`, after the gate let it through), carries its output so
//! far on each `tool_execution_update` (or, when it runs in the editor's
//! terminal, that terminal, which the editor shows live), and ends
//! `completed` or `failed` with the result (and, for `write` and `edit`, a
//! `diff` content block; for a terminal, the terminal again).
//! `session/load` replays a finished call with the same closing update
//! ([`result_update`]). The model's plan (`plan` frame) is a `plan` update
//! ([`plan_update`]), which `session/load` sends once for the stored plan.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::protocol::{
    Frame, PlanEntry, PlanPriority, StreamEvent, ToolExecutionEndFrame, ToolExecutionStartFrame,
    ToolExecutionUpdateFrame,
};

/// Most tool output kept for the running `tool_call_update` (the tail).
const OUTPUT_TAIL: usize = 32 * 1024;

/// How often a `task` call's content shows its subagent's text: ACP's
/// `tool_call_update` replaces the content whole, so one per delta would
/// send the text again for every token.
const CHILD_TEXT_EVERY: Duration = Duration::from_millis(50);

/// What is remembered of a tool call between its frames.
#[derive(Debug, Default)]
struct Call {
    name: String,
    input: Value,
    announced: bool,
    output: String,
    /// The editor terminal the call runs in.
    terminal: Option<String>,
    /// A `task` call: when its subagent's text was last shown.
    shown_at: Option<Instant>,
    /// A `task` call: the subagent ran a tool since its last text, so the
    /// next text starts a new paragraph.
    break_due: bool,
    /// A subagent's call: the parent's `task` call it runs under, which
    /// every update of it names in `_meta.parentToolCallId`.
    parent: Option<String>,
}

impl Call {
    /// `update` as one of this call's: a subagent's names its parent.
    fn tagged(&self, mut update: Value) -> Value {
        if let Some(parent) = &self.parent {
            update["_meta"] = json!({"parentToolCallId": parent});
        }
        update
    }

    /// Adds to the output kept, keeping only its tail.
    fn append(&mut self, text: &str) {
        self.output.push_str(text);
        if self.output.len() > OUTPUT_TAIL {
            let mut cut = self.output.len() - OUTPUT_TAIL;
            while !self.output.is_char_boundary(cut) {
                cut += 1;
            }
            self.output.drain(..cut);
        }
    }
}

/// The mapping state of one session.
#[derive(Debug)]
pub(super) struct Mapper {
    cwd: String,
    calls: HashMap<String, Call>,
}

impl Mapper {
    pub(super) fn new(cwd: String) -> Self {
        Mapper {
            cwd,
            calls: HashMap::new(),
        }
    }

    /// The `update` objects (the `update` field of `session/update`) for
    /// one host frame; empty for frames ACP has no place for here.
    pub(super) fn frame(&mut self, frame: &Frame) -> Vec<Value> {
        match frame {
            Frame::ToolExecutionStart(start) => self.started(start),
            Frame::ToolExecutionUpdate(update) => self.output(update),
            Frame::ToolExecutionEnd(end) => self.ended(end),
            Frame::Plan(plan) => vec![plan_update(&plan.entries)],
            _ => Vec::new(),
        }
    }

    /// The call is about to be decided on: announced if the stream did not
    /// (still `pending`: it may wait for approval first).
    fn started(&mut self, start: &ToolExecutionStartFrame) -> Vec<Value> {
        if let Some(parent) = &start.parent_tool_call_id {
            self.child_call(parent);
        }
        let id = &start.tool_call_id;
        let call = self.calls.entry(id.clone()).or_default();
        if call.announced {
            return Vec::new();
        }
        call.name.clone_from(&start.name);
        call.input = start.input.clone();
        call.announced = true;
        call.parent.clone_from(&start.parent_tool_call_id);
        vec![call.tagged(tool_call(&self.cwd, id, &call.name, &call.input))]
    }

    /// The call was let through and runs now.
    pub(super) fn running(&mut self, id: &str) -> Vec<Value> {
        let Some(call) = self.calls.get(id) else {
            return Vec::new();
        };
        vec![call.tagged(json!({
            "sessionUpdate": "tool_call_update",
            "toolCallId": id,
            "status": "in_progress",
        }))]
    }

    /// The call runs in the editor's terminal `terminal_id`: embedded in
    /// the call, which the editor then shows live.
    pub(super) fn terminal(&mut self, id: &str, terminal_id: &str) -> Vec<Value> {
        let Some(call) = self.calls.get_mut(id) else {
            return Vec::new();
        };
        call.terminal = Some(terminal_id.to_owned());
        vec![call.tagged(json!({
            "sessionUpdate": "tool_call_update",
            "toolCallId": id,
            "content": [terminal_content(terminal_id)],
        }))]
    }

    fn output(&mut self, update: &ToolExecutionUpdateFrame) -> Vec<Value> {
        let id = &update.tool_call_id;
        let Some(call) = self.calls.get_mut(id) else {
            return Vec::new();
        };
        // The terminal shows it already; text would replace the terminal.
        if call.terminal.is_some() {
            return Vec::new();
        }
        if !call.output.is_empty() {
            call.output.push('\n');
        }
        call.append(&update.output);
        vec![call.tagged(json!({
            "sessionUpdate": "tool_call_update",
            "toolCallId": id,
            "content": [text_content(&call.output)],
        }))]
    }

    /// A subagent's text, inside its parent's `task` call `parent` (ACP
    /// has no nested messages): the call's content becomes the text so far
    /// (its tail), shown at most every [`CHILD_TEXT_EVERY`]; the call's
    /// closing update shows the final answer.
    pub(super) fn child_text(&mut self, parent: &str, delta: &str, now: Instant) -> Vec<Value> {
        let Some(call) = self.calls.get_mut(parent) else {
            return Vec::new();
        };
        if std::mem::take(&mut call.break_due) && !call.output.is_empty() {
            call.append("\n\n");
        }
        call.append(delta);
        if call.shown_at.is_some_and(|at| now < at + CHILD_TEXT_EVERY) {
            return Vec::new();
        }
        call.shown_at = Some(now);
        vec![json!({
            "sessionUpdate": "tool_call_update",
            "toolCallId": parent,
            "content": [text_content(&call.output)],
        })]
    }

    /// A subagent's tool call began inside the `task` call `parent`.
    fn child_call(&mut self, parent: &str) {
        if let Some(call) = self.calls.get_mut(parent) {
            call.break_due = true;
        }
    }

    fn ended(&mut self, end: &ToolExecutionEndFrame) -> Vec<Value> {
        let id = &end.tool_call_id;
        let call = self.calls.remove(id).unwrap_or_default();
        let mut update = result_update(
            &self.cwd,
            id,
            &call.name,
            &call.input,
            &end.result,
            end.is_error,
        );
        // The released terminal stays on screen (ACP: a client keeps showing
        // an embedded terminal's output after `terminal/release`); the
        // result text is in `rawOutput`.
        if let Some(terminal_id) = &call.terminal {
            update["content"] = json!([terminal_content(terminal_id)]);
        }
        vec![call.tagged(update)]
    }

    /// The updates for one streamed event other than a text or thinking
    /// delta (those always take `chunks.rs`'s borrowed path): a finished
    /// tool call is announced; the rest show nothing.
    pub(super) fn event(&mut self, event: &StreamEvent) -> Vec<Value> {
        match event {
            StreamEvent::ToolcallEnd {
                tool_call_id,
                name,
                input,
            } => {
                let update = tool_call(&self.cwd, tool_call_id, name, input);
                self.calls.insert(
                    tool_call_id.clone(),
                    Call {
                        name: name.clone(),
                        input: input.clone(),
                        announced: true,
                        ..Call::default()
                    },
                );
                vec![update]
            }
            _ => Vec::new(),
        }
    }
}

/// The `plan` update for the model's whole plan (ACP entries need a
/// priority: `medium` where the model gave none).
pub(super) fn plan_update(entries: &[PlanEntry]) -> Value {
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "content": e.content,
                "priority": e.priority.unwrap_or(PlanPriority::Medium),
                "status": e.status,
            })
        })
        .collect();
    json!({"sessionUpdate": "plan", "entries": entries})
}

/// A message chunk update of `kind` with one text block.
pub(super) fn chunk(kind: &str, text: &str) -> Value {
    json!({"sessionUpdate": kind, "content": {"type": "text", "text": text}})
}

/// The `tool_call_update` closing a call, live or replayed: `completed`
/// or `failed`, the result text (after the diff of a successful write or
/// edit) and `rawOutput`.
pub(super) fn result_update(
    cwd: &str,
    id: &str,
    name: &str,
    input: &Value,
    result: &str,
    failed: bool,
) -> Value {
    let mut content = Vec::new();
    if !failed {
        content.extend(diff(cwd, name, input));
    }
    content.push(text_content(result));
    json!({
        "sessionUpdate": "tool_call_update",
        "toolCallId": id,
        "status": if failed { "failed" } else { "completed" },
        "content": content,
        "rawOutput": {"result": result, "is_error": failed},
    })
}

fn terminal_content(terminal_id: &str) -> Value {
    json!({"type": "terminal", "terminalId": terminal_id})
}

fn text_content(text: &str) -> Value {
    json!({"type": "content", "content": {"type": "text", "text": text}})
}

/// The `tool_call` announcing a call, `pending` until it runs.
pub(super) fn tool_call(cwd: &str, id: &str, name: &str, input: &Value) -> Value {
    let mut update = json!({
        "sessionUpdate": "tool_call",
        "toolCallId": id,
        "title": title(name, input),
        "kind": kind(name),
        "status": "pending",
        "rawInput": input,
        "locations": locations(cwd, name, input),
    });
    let diff = diff(cwd, name, input);
    if !diff.is_empty() {
        update["content"] = Value::Array(diff);
    }
    update
}

/// The ACP tool kind of a built-in tool.
pub(super) fn kind(name: &str) -> &'static str {
    match name {
        "read" | "ls" => "read",
        "write" | "edit" => "edit",
        "bash" => "execute",
        "find" | "grep" => "search",
        _ => "other",
    }
}

/// A human title: the command for bash, the path for file tools, the
/// pattern for searches.
pub(super) fn title(name: &str, input: &Value) -> String {
    let field = |key: &str| input.get(key).and_then(Value::as_str);
    let text = match name {
        "bash" => field("command"),
        "read" | "write" | "edit" => field("path"),
        "ls" => field("path").or(Some(".")),
        "find" | "grep" => field("pattern"),
        _ => None,
    };
    match text {
        Some(text) => text.to_owned(),
        None => name.to_owned(),
    }
}

/// The file a file tool touches, absolute.
fn locations(cwd: &str, name: &str, input: &Value) -> Vec<Value> {
    if !matches!(name, "read" | "write" | "edit" | "ls" | "find" | "grep") {
        return Vec::new();
    }
    let Some(path) = input.get("path").and_then(Value::as_str) else {
        return Vec::new();
    };
    let mut location = json!({"path": absolute(cwd, path)});
    if name == "read" {
        if let Some(line) = input.get("offset").and_then(Value::as_u64) {
            location["line"] = json!(line);
        }
    }
    vec![location]
}

fn absolute(cwd: &str, path: &str) -> String {
    Path::new(cwd).join(path).to_string_lossy().into_owned()
}

/// The `diff` content of a write (the new content; the old one is not known
/// without reading the file, which may change meanwhile) or an edit (the
/// replaced text and its replacement), from the call's input alone.
fn diff(cwd: &str, name: &str, input: &Value) -> Vec<Value> {
    let field = |key: &str| input.get(key).and_then(Value::as_str);
    let Some(path) = field("path") else {
        return Vec::new();
    };
    let path = absolute(cwd, path);
    match name {
        "write" => match field("content") {
            Some(new) => {
                vec![json!({"type": "diff", "path": path, "oldText": null, "newText": new})]
            }
            None => Vec::new(),
        },
        "edit" => match (field("old_string"), field("new_string")) {
            (Some(old), Some(new)) => {
                vec![json!({"type": "diff", "path": path, "oldText": old, "newText": new})]
            }
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape every update shares (the TypeScript SDK test checks the
    /// rest against the schema).
    fn typed(updates: &[Value]) {
        for u in updates {
            assert!(u["sessionUpdate"].is_string(), "{u}");
            if u["sessionUpdate"] != "agent_message_chunk"
                && u["sessionUpdate"] != "agent_thought_chunk"
            {
                assert!(u["toolCallId"].is_string(), "{u}");
            }
        }
    }

    fn start(id: &str, name: &str, input: Value) -> Frame {
        Frame::ToolExecutionStart(ToolExecutionStartFrame {
            prompt_id: "p1".into(),
            tool_call_id: id.into(),
            name: name.into(),
            input,
            parent_tool_call_id: None,
        })
    }

    fn update(id: &str, output: &str) -> Frame {
        Frame::ToolExecutionUpdate(ToolExecutionUpdateFrame {
            prompt_id: "p1".into(),
            tool_call_id: id.into(),
            output: output.into(),
            parent_tool_call_id: None,
        })
    }

    fn end(id: &str, result: &str, is_error: bool) -> Frame {
        Frame::ToolExecutionEnd(ToolExecutionEndFrame {
            prompt_id: "p1".into(),
            tool_call_id: id.into(),
            result: result.into(),
            is_error,
            parent_tool_call_id: None,
        })
    }

    #[test]
    fn a_call_in_the_editors_terminal_shows_the_terminal_not_text() {
        let mut m = Mapper::new("/w".into());
        m.frame(&start("c1", "bash", json!({"command": "make"})));
        let shown = m.terminal("c1", "t1");
        assert_eq!(
            shown[0]["content"],
            json!([{"type": "terminal", "terminalId": "t1"}])
        );
        assert!(m.frame(&update("c1", "building")).is_empty());
        let done = m.frame(&end("c1", "built\n\nexit code 0", false));
        assert_eq!(
            done[0]["content"],
            json!([{"type": "terminal", "terminalId": "t1"}])
        );
        assert_eq!(done[0]["rawOutput"]["result"], "built\n\nexit code 0");
        assert!(m.terminal("gone", "t2").is_empty());
    }

    #[test]
    fn frames_acp_has_no_place_for_map_to_nothing() {
        let mut m = Mapper::new("/w".into());
        let piece = StreamEvent::ToolcallDelta {
            tool_call_id: "c".into(),
            delta: "{".into(),
        };
        assert!(m.event(&piece).is_empty());
        let started = Frame::AgentStart(crate::protocol::AgentStartFrame {
            prompt_id: "p1".into(),
            id: Value::Null,
            command: crate::protocol::CommandName::Prompt,
        });
        assert!(m.frame(&started).is_empty());
    }

    #[test]
    fn a_write_goes_pending_in_progress_completed_with_a_diff() {
        let mut m = Mapper::new("/w".into());
        let input = json!({"path":"a.txt","content":"new\n"});
        let out = m.event(&StreamEvent::ToolcallEnd {
            tool_call_id: "c1".into(),
            name: "write".into(),
            input: input.clone(),
        });
        assert_eq!(out[0]["status"], "pending");
        assert_eq!(out[0]["kind"], "edit");
        assert_eq!(out[0]["title"], "a.txt");
        assert_eq!(out[0]["locations"][0]["path"], "/w/a.txt");
        assert_eq!(out[0]["rawInput"], input);
        typed(&out);
        let out = m.frame(&start("c1", "write", input));
        assert!(out.is_empty(), "already announced, and not running yet");
        let out = m.running("c1");
        assert_eq!(out[0]["status"], "in_progress");
        typed(&out);
        let out = m.frame(&end("c1", "Created a.txt", false));
        assert_eq!(out[0]["status"], "completed");
        assert_eq!(out[0]["content"][0]["type"], "diff");
        assert_eq!(out[0]["content"][0]["newText"], "new\n");
        assert_eq!(out[0]["content"][1]["content"]["text"], "Created a.txt");
        typed(&out);
    }

    #[test]
    fn bash_output_accumulates_and_failure_is_failed() {
        let mut m = Mapper::new("/w".into());
        let out = m.frame(&start("c2", "bash", json!({"command":"make"})));
        assert_eq!(out[0]["title"], "make");
        assert_eq!(out[0]["kind"], "execute");
        assert_eq!(out[0]["status"], "pending");
        assert_eq!(out.len(), 1);
        assert_eq!(m.running("c2")[0]["status"], "in_progress");
        assert!(m.running("unknown").is_empty());
        m.frame(&update("c2", "one"));
        let out = m.frame(&update("c2", "two"));
        assert_eq!(out[0]["content"][0]["content"]["text"], "one\ntwo");
        typed(&out);
        let out = m.frame(&end("c2", "exit code 2", true));
        assert_eq!(out[0]["status"], "failed");
        assert_eq!(out[0]["content"].as_array().unwrap().len(), 1);
        typed(&out);
    }

    #[test]
    fn kinds_and_titles() {
        assert_eq!(kind("grep"), "search");
        assert_eq!(kind("ls"), "read");
        assert_eq!(kind("mystery"), "other");
        assert_eq!(title("find", &json!({"pattern":"*.rs"})), "*.rs");
        assert_eq!(title("mystery", &json!({})), "mystery");
        let edit = tool_call(
            "/w",
            "c",
            "edit",
            &json!({"path":"/abs/b.rs","old_string":"a","new_string":"b"}),
        );
        assert_eq!(edit["content"][0]["path"], "/abs/b.rs");
        assert_eq!(edit["content"][0]["oldText"], "a");
    }
}
