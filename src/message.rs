//! Conversation history: the shapes stored on disk, returned by
//! `get_messages`, and (stripped of host markers) sent to providers.
//!
//! Messages are Anthropic-shaped because that is what extensions expect: a
//! text-only message has a plain string `content`, anything else a list of
//! typed blocks. The host's own markers (`aborted`, `error`, `stop_reason`)
//! ride beside `role`/`content` and are dropped by [`Message::to_provider`].

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    Thinking {
        thinking: String,
        /// Providers that sign thinking need it sent back verbatim.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
        /// OpenAI Responses: the reasoning item this block summarises, sent
        /// back on later requests so the model keeps its reasoning.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reasoning: Option<ReasoningItem>,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        content: Value,
        #[serde(default)]
        is_error: bool,
    },
    Image {
        source: Value,
    },
}

/// A reasoning item of OpenAI's Responses API, kept with the assistant
/// message it belongs to. Only the model that wrote it can read it (it is
/// encrypted for that model), so it is sent back to that model only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReasoningItem {
    /// The `provider/model` that produced it.
    pub model: String,
    /// The model's reasoning, encrypted by the API (`store: false` keeps
    /// nothing on the server, so this is the only copy).
    pub encrypted_content: String,
    /// The item's summary parts as the API sent them.
    #[serde(default)]
    pub summary: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub role: Role,
    pub content: Content,
    /// Why the provider ended this assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// The turn was aborted while this message was streaming: it is partial.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub aborted: bool,
    /// The turn failed while this message was streaming: it is partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Message {
    pub fn user_text(text: impl Into<String>) -> Self {
        Message::new(Role::User, Content::Text(text.into()))
    }

    pub fn new(role: Role, content: Content) -> Self {
        Message {
            role,
            content,
            stop_reason: None,
            aborted: false,
            error: None,
        }
    }

    /// The `{role, content}` object a provider is sent. Text-only content
    /// becomes a plain string, as extensions expect for either role.
    pub fn to_provider(&self) -> Value {
        if let Content::Blocks(blocks) = &self.content {
            if !blocks.is_empty() && blocks.iter().all(|b| matches!(b, Block::Text { .. })) {
                return json!({ "role": self.role, "content": self.text() });
            }
        }
        json!({ "role": self.role, "content": self.content })
    }

    /// All the text of the message, for titles, directives and the APIs
    /// that take a user message as one string. Text blocks are separate
    /// pieces (a prompt and its text attachments), so a blank line
    /// separates them: glued, the prompt's last word ran into the first.
    pub fn text(&self) -> String {
        match &self.content {
            Content::Text(t) => t.clone(),
            Content::Blocks(blocks) => {
                let mut out = String::new();
                for b in blocks {
                    if let Block::Text { text } = b {
                        push_paragraph(&mut out, text);
                    }
                }
                out
            }
        }
    }
}

/// Appends `text` to `out` after a blank line (none before the first
/// piece; an empty piece adds nothing).
pub(crate) fn push_paragraph(out: &mut String, text: &str) {
    if text.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push_str("\n\n");
    }
    out.push_str(text);
}

/// Token counts, summed per provider round and per session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
}

impl Usage {
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
    }
}

/// Collects one assistant message from streamed pieces, merging consecutive
/// deltas of the same kind into one block.
#[derive(Debug, Default)]
pub struct AssistantBuilder {
    blocks: Vec<Block>,
}

impl AssistantBuilder {
    pub fn text(&mut self, delta: &str) {
        if let Some(Block::Text { text }) = self.blocks.last_mut() {
            text.push_str(delta);
        } else {
            self.blocks.push(Block::Text {
                text: delta.to_owned(),
            });
        }
    }

    pub fn thinking(&mut self, delta: &str) {
        // A block that already has its reasoning item is complete: the
        // next item's summary starts a block of its own.
        if let Some(Block::Thinking {
            thinking,
            reasoning: None,
            ..
        }) = self.blocks.last_mut()
        {
            thinking.push_str(delta);
        } else {
            self.blocks.push(Block::Thinking {
                thinking: delta.to_owned(),
                signature: None,
                reasoning: None,
            });
        }
    }

    /// Closes the current thinking block with its reasoning item (or adds
    /// one with no summary text: a reasoning item often has none).
    pub fn reasoning(&mut self, item: ReasoningItem) {
        if let Some(Block::Thinking {
            reasoning: slot @ None,
            ..
        }) = self.blocks.last_mut()
        {
            *slot = Some(item);
        } else {
            self.blocks.push(Block::Thinking {
                thinking: String::new(),
                signature: None,
                reasoning: Some(item),
            });
        }
    }

    /// Attaches a signature to the thinking block being built.
    pub fn signature(&mut self, sig: &str) {
        if let Some(Block::Thinking { signature, .. }) = self.blocks.last_mut() {
            signature.get_or_insert_with(String::new).push_str(sig);
        }
    }

    pub fn block(&mut self, block: Block) {
        self.blocks.push(block);
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The tool calls the message asked for, in order.
    pub fn tool_uses(&self) -> impl Iterator<Item = &Block> {
        self.blocks
            .iter()
            .filter(|b| matches!(b, Block::ToolUse { .. }))
    }

    pub fn build(self) -> Message {
        Message::new(Role::Assistant, Content::Blocks(self.blocks))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_only_user_message_has_string_content() {
        let m = Message::user_text("hi");
        assert_eq!(
            serde_json::to_value(&m).unwrap(),
            json!({"role":"user","content":"hi"})
        );
    }

    #[test]
    fn builder_merges_deltas_and_markers_stay_off_the_provider_shape() {
        let mut b = AssistantBuilder::default();
        b.thinking("a");
        b.thinking("b");
        b.text("he");
        b.text("llo");
        let mut m = b.build();
        m.aborted = true;
        assert_eq!(
            m.to_provider(),
            json!({"role":"assistant","content":[
                {"type":"thinking","thinking":"ab"},{"type":"text","text":"hello"}]})
        );
        let stored = serde_json::to_value(&m).unwrap();
        assert_eq!(stored["aborted"], json!(true));
        let back: Message = serde_json::from_value(stored).unwrap();
        assert_eq!(back, m);
    }
}
