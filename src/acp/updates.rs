//! Native frames → ACP `session/update` payloads (the table in SPEC.md,
//! "ACP mode"). Pure: the pump feeds it one decoded frame at a time and
//! sends what comes out, in order.
//!
//! A tool call is announced as `tool_call` (`pending`) when the model's call
//! is complete (`toolcall_end`), goes `in_progress` at
//! `tool_execution_start`, carries its output so far on each
//! `tool_execution_update`, and ends `completed` or `failed` with the
//! result (and, for `write` and `edit`, a `diff` content block).

use std::collections::HashMap;
use std::path::Path;

use serde_json::{json, Value};

/// Most tool output kept for the running `tool_call_update` (the tail).
const OUTPUT_TAIL: usize = 32 * 1024;

/// What is remembered of a tool call between its frames.
#[derive(Debug, Default)]
struct Call {
    name: String,
    input: Value,
    announced: bool,
    output: String,
}

/// The mapping state of one session.
#[derive(Debug)]
pub struct Mapper {
    cwd: String,
    calls: HashMap<String, Call>,
}

impl Mapper {
    pub fn new(cwd: String) -> Self {
        Mapper {
            cwd,
            calls: HashMap::new(),
        }
    }

    /// The `update` objects (the `update` field of `session/update`) for one
    /// native frame; empty for frames ACP has no place for.
    pub fn map(&mut self, frame: &Value) -> Vec<Value> {
        let field = |name: &str| frame.get(name).and_then(Value::as_str).unwrap_or("");
        match field("type") {
            "message_update" => self.stream_event(frame.get("event").unwrap_or(&Value::Null)),
            "tool_execution_start" => {
                let id = field("tool_call_id").to_owned();
                let mut out = Vec::new();
                let call = self.calls.entry(id.clone()).or_default();
                if !call.announced {
                    call.name = field("name").to_owned();
                    call.input = frame.get("input").cloned().unwrap_or(Value::Null);
                    call.announced = true;
                    out.push(tool_call(&self.cwd, &id, &call.name, &call.input));
                }
                out.push(json!({
                    "sessionUpdate": "tool_call_update",
                    "toolCallId": id,
                    "status": "in_progress",
                }));
                out
            }
            "tool_execution_update" => {
                let id = field("tool_call_id");
                let Some(call) = self.calls.get_mut(id) else {
                    return Vec::new();
                };
                if !call.output.is_empty() {
                    call.output.push('\n');
                }
                call.output.push_str(field("output"));
                if call.output.len() > OUTPUT_TAIL {
                    let mut cut = call.output.len() - OUTPUT_TAIL;
                    while !call.output.is_char_boundary(cut) {
                        cut += 1;
                    }
                    call.output.drain(..cut);
                }
                vec![json!({
                    "sessionUpdate": "tool_call_update",
                    "toolCallId": id,
                    "content": [text_content(&call.output)],
                })]
            }
            "tool_execution_end" => {
                let id = field("tool_call_id");
                let call = self.calls.remove(id).unwrap_or_default();
                let failed = frame
                    .get("is_error")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let result = field("result");
                let mut content = Vec::new();
                if !failed {
                    content.extend(diff(&self.cwd, &call.name, &call.input));
                }
                content.push(text_content(result));
                vec![json!({
                    "sessionUpdate": "tool_call_update",
                    "toolCallId": id,
                    "status": if failed { "failed" } else { "completed" },
                    "content": content,
                    "rawOutput": {"result": result, "is_error": failed},
                })]
            }
            _ => Vec::new(),
        }
    }

    fn stream_event(&mut self, event: &Value) -> Vec<Value> {
        let field = |name: &str| event.get(name).and_then(Value::as_str).unwrap_or("");
        match field("type") {
            "text_delta" => vec![chunk("agent_message_chunk", field("delta"))],
            "thinking_delta" => vec![chunk("agent_thought_chunk", field("delta"))],
            "toolcall_end" => {
                let id = field("tool_call_id").to_owned();
                let name = field("name").to_owned();
                let input = event.get("input").cloned().unwrap_or(Value::Null);
                let update = tool_call(&self.cwd, &id, &name, &input);
                self.calls.insert(
                    id,
                    Call {
                        name,
                        input,
                        announced: true,
                        output: String::new(),
                    },
                );
                vec![update]
            }
            _ => Vec::new(),
        }
    }
}

/// A message chunk update of `kind` with one text block.
pub fn chunk(kind: &str, text: &str) -> Value {
    json!({"sessionUpdate": kind, "content": {"type": "text", "text": text}})
}

fn text_content(text: &str) -> Value {
    json!({"type": "content", "content": {"type": "text", "text": text}})
}

/// The `tool_call` announcing a call, `pending` until it runs.
pub fn tool_call(cwd: &str, id: &str, name: &str, input: &Value) -> Value {
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
pub fn kind(name: &str) -> &'static str {
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
pub fn title(name: &str, input: &Value) -> String {
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

    #[test]
    fn deltas_become_chunks() {
        let mut m = Mapper::new("/w".into());
        let out = m.map(&json!({"type":"message_update","prompt_id":"p1","event":{"type":"text_delta","delta":"hi"}}));
        assert_eq!(out, vec![chunk("agent_message_chunk", "hi")]);
        let out = m.map(&json!({"type":"message_update","prompt_id":"p1","event":{"type":"thinking_delta","delta":"hm"}}));
        assert_eq!(out[0]["sessionUpdate"], "agent_thought_chunk");
        typed(&out);
        assert!(m
            .map(&json!({"type":"agent_start","prompt_id":"p1"}))
            .is_empty());
    }

    #[test]
    fn a_write_goes_pending_in_progress_completed_with_a_diff() {
        let mut m = Mapper::new("/w".into());
        let input = json!({"path":"a.txt","content":"new\n"});
        let out = m.map(&json!({"type":"message_update","prompt_id":"p1","event":{"type":"toolcall_end","tool_call_id":"c1","name":"write","input":input}}));
        assert_eq!(out[0]["status"], "pending");
        assert_eq!(out[0]["kind"], "edit");
        assert_eq!(out[0]["title"], "a.txt");
        assert_eq!(out[0]["locations"][0]["path"], "/w/a.txt");
        assert_eq!(out[0]["rawInput"], input);
        typed(&out);
        let out = m.map(&json!({"type":"tool_execution_start","prompt_id":"p1","tool_call_id":"c1","name":"write","input":input}));
        assert_eq!(out.len(), 1, "already announced");
        assert_eq!(out[0]["status"], "in_progress");
        typed(&out);
        let out = m.map(&json!({"type":"tool_execution_end","prompt_id":"p1","tool_call_id":"c1","result":"Created a.txt","is_error":false}));
        assert_eq!(out[0]["status"], "completed");
        assert_eq!(out[0]["content"][0]["type"], "diff");
        assert_eq!(out[0]["content"][0]["newText"], "new\n");
        assert_eq!(out[0]["content"][1]["content"]["text"], "Created a.txt");
        typed(&out);
    }

    #[test]
    fn bash_output_accumulates_and_failure_is_failed() {
        let mut m = Mapper::new("/w".into());
        let start = json!({"type":"tool_execution_start","prompt_id":"p1","tool_call_id":"c2","name":"bash","input":{"command":"make"}});
        let out = m.map(&start);
        assert_eq!(out[0]["title"], "make");
        assert_eq!(out[0]["kind"], "execute");
        assert_eq!(out[1]["status"], "in_progress");
        m.map(&json!({"type":"tool_execution_update","tool_call_id":"c2","output":"one"}));
        let out =
            m.map(&json!({"type":"tool_execution_update","tool_call_id":"c2","output":"two"}));
        assert_eq!(out[0]["content"][0]["content"]["text"], "one\ntwo");
        typed(&out);
        let out = m.map(&json!({"type":"tool_execution_end","tool_call_id":"c2","result":"exit code 2","is_error":true}));
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
