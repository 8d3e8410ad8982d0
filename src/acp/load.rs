//! `session/load`'s history replay: the stored messages as the updates a
//! client would have seen live — `user_message_chunk`,
//! `agent_message_chunk`, `agent_thought_chunk`, and each tool call as
//! `tool_call` followed by the same closing `tool_call_update` as live
//! (its result, `rawOutput`, and the diff of a successful write or edit).
//! A slash command's expansion is replayed as the line the user typed, as
//! the editor showed it live.

use std::collections::{BTreeMap, HashMap};

use serde_json::{json, Value};

use super::updates::{chunk, result_update, tool_call};
use crate::message::{Block, Content, Message, Role};
use crate::session::CommandLine;

/// The updates replaying `messages`, in order; `typed` holds the slash
/// commands by the index of the message each expanded into.
pub(super) fn replay(
    cwd: &str,
    messages: &[std::sync::Arc<Message>],
    typed: &BTreeMap<usize, CommandLine>,
) -> Vec<Value> {
    let mut out = Vec::new();
    // Each call's name and input, for its result's diff.
    let mut calls: HashMap<&str, (&str, &Value)> = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        let text_kind = match message.role {
            Role::User => "user_message_chunk",
            Role::Assistant => "agent_message_chunk",
        };
        // The typed line stands for the expansion (the message's first
        // text); its attachments follow as usual.
        let mut expanded = false;
        if let Some(line) = typed.get(&index) {
            out.push(chunk("user_message_chunk", &line.text));
            expanded = true;
        }
        match &message.content {
            Content::Text(_) if expanded => {}
            Content::Text(text) => out.push(chunk(text_kind, text)),
            Content::Blocks(blocks) => {
                for block in blocks {
                    match block {
                        Block::Text { .. } if std::mem::take(&mut expanded) => {}
                        Block::Text { text } => out.push(chunk(text_kind, text)),
                        Block::Thinking { thinking, .. } if thinking.is_empty() => {}
                        Block::Thinking { thinking, .. } => {
                            out.push(chunk("agent_thought_chunk", thinking))
                        }
                        Block::ToolUse { id, name, input } => {
                            calls.insert(id, (name, input));
                            out.push(tool_call(cwd, id, name, input));
                        }
                        Block::ToolResult {
                            tool_use_id,
                            content,
                            is_error,
                        } => {
                            let (name, input) = calls
                                .get(tool_use_id.as_str())
                                .copied()
                                .unwrap_or(("", &Value::Null));
                            out.push(result_update(
                                cwd,
                                tool_use_id,
                                name,
                                input,
                                &result_text(content),
                                *is_error,
                            ));
                        }
                        Block::Image { source } => {
                            if let Some(image) = image(source) {
                                out.push(json!({"sessionUpdate": text_kind, "content": image}));
                            }
                        }
                    }
                }
            }
        }
    }
    out
}

/// A tool result's content as text: a string, or the text of its blocks.
fn result_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    }
}

/// An Anthropic base64 image source as an ACP image block.
fn image(source: &Value) -> Option<Value> {
    let data = source.get("data")?.as_str()?;
    let media = source.get("media_type")?.as_str()?;
    Some(json!({"type": "image", "data": data, "mimeType": media}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_history_with_tools_replays_in_order() {
        let messages = vec![
            Arc::new(Message::user_text("hello")),
            Arc::new(Message::new(
                Role::Assistant,
                Content::Blocks(vec![
                    Block::Thinking {
                        thinking: "hmm".into(),
                        signature: None,
                        reasoning: None,
                    },
                    Block::Text { text: "ok".into() },
                    Block::ToolUse {
                        id: "c1".into(),
                        name: "bash".into(),
                        input: json!({"command": "ls"}),
                    },
                ]),
            )),
            Arc::new(Message::new(
                Role::User,
                Content::Blocks(vec![Block::ToolResult {
                    tool_use_id: "c1".into(),
                    content: json!("a\nb"),
                    is_error: false,
                }]),
            )),
        ];
        let out = replay("/w", &messages, &BTreeMap::new());
        let kinds: Vec<&str> = out
            .iter()
            .map(|u| u["sessionUpdate"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "user_message_chunk",
                "agent_thought_chunk",
                "agent_message_chunk",
                "tool_call",
                "tool_call_update"
            ]
        );
        assert_eq!(out[4]["status"], "completed");
        assert_eq!(out[4]["content"][0]["content"]["text"], "a\nb");
        assert_eq!(out[3]["toolCallId"], "c1");
        assert_eq!(out[4]["toolCallId"], "c1");
    }

    /// A replayed call closes exactly as the live one did.
    #[test]
    fn a_replayed_write_carries_its_diff_and_raw_output_as_live() {
        let input = json!({"path": "a.txt", "content": "new\n"});
        let messages = vec![
            Arc::new(Message::new(
                Role::Assistant,
                Content::Blocks(vec![Block::ToolUse {
                    id: "c1".into(),
                    name: "write".into(),
                    input: input.clone(),
                }]),
            )),
            Arc::new(Message::new(
                Role::User,
                Content::Blocks(vec![Block::ToolResult {
                    tool_use_id: "c1".into(),
                    content: json!("Created a.txt"),
                    is_error: false,
                }]),
            )),
        ];
        let out = replay("/w", &messages, &BTreeMap::new());
        let live = result_update("/w", "c1", "write", &input, "Created a.txt", false);
        assert_eq!(out[1], live);
        assert_eq!(out[1]["content"][0]["type"], "diff");
        assert_eq!(out[1]["rawOutput"]["result"], "Created a.txt");
        assert_eq!(out[1]["rawOutput"]["is_error"], false);
    }

    #[test]
    fn a_slash_command_replays_as_typed_with_its_attachments() {
        let message = Message::new(
            Role::User,
            Content::Blocks(vec![
                Block::Text {
                    text: "Review src/a.rs carefully".into(),
                },
                Block::Text {
                    text: "attached".into(),
                },
            ]),
        );
        let line = CommandLine {
            name: "review".into(),
            arguments: "src/a.rs".into(),
            text: "/review src/a.rs".into(),
        };
        let out = replay("/w", &[Arc::new(message)], &BTreeMap::from([(0, line)]));
        let texts: Vec<&str> = out
            .iter()
            .map(|u| u["content"]["text"].as_str().unwrap())
            .collect();
        assert_eq!(texts, ["/review src/a.rs", "attached"]);
    }
}
