//! An MCP server's tool as an entry of the tool table: named
//! `mcp__<server>__<tool>` (Claude Code's naming), its description and
//! input schema passed on unchanged, its results mapped from MCP content.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};
use rmcp::model::{CallToolResult, ContentBlock, Tool as McpToolInfo};
use serde_json::{json, Value};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::permissions::Access;
use crate::tools::{
    BoxFuture, FileSystem, Preview, Tool, ToolCtx, ToolImage, ToolOutput, ToolUpdate,
};

/// What a server tool needs of its server (`server.rs`): its name, and one
/// `tools/call`. A trait, so that the server, which makes its tools, and
/// the tools, which call their server, do not import each other.
pub(super) trait Remote: Send + Sync {
    fn name(&self) -> &str;

    /// Calls `tool` (the server's own name for it); progress goes to
    /// `updates`; `cancel` (abort) drops the request.
    fn call<'a>(
        self: Arc<Self>,
        tool: &'a str,
        arguments: serde_json::Map<String, Value>,
        updates: &'a mpsc::Sender<ToolUpdate>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, ToolOutput>;
}

pub(super) struct McpTool {
    server: Arc<dyn Remote>,
    /// The name the server knows it by.
    remote: String,
    /// `mcp__<server>__<tool>`.
    name: String,
    definition: Value,
    read_only_hint: bool,
}

/// Providers accept `[A-Za-z0-9_-]` in tool names; anything else becomes
/// `_` (the call still goes out under the server's own name).
fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The longest tool name the Anthropic and OpenAI APIs accept; a longer
/// one would make every request of the session fail.
const MAX_NAME: usize = 64;

/// `mcp__<server>__<tool>`, cut to [`MAX_NAME`] when longer: the first 55
/// characters, `_` and 8 hex digits of a hash of the whole name, so two
/// long names that share a beginning stay apart (and the same name is cut
/// the same way in every process, as the history refers to it).
fn full_name(server: &str, tool: &str) -> String {
    let name = format!("mcp__{server}__{}", sanitise(tool));
    if name.len() <= MAX_NAME {
        return name;
    }
    // FNV-1a: tiny and stable across builds, unlike std's hasher.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    // Only ASCII remains after `sanitise` and the server name check.
    format!("{}_{hash:08x}", &name[..MAX_NAME - 9])
}

impl McpTool {
    pub(super) fn new(server: Arc<dyn Remote>, info: McpToolInfo) -> McpTool {
        let name = full_name(server.name(), &info.name);
        let definition = json!({
            "name": name,
            "description": info.description.as_deref().unwrap_or_default(),
            "input_schema": Value::Object((*info.input_schema).clone()),
        });
        McpTool {
            server,
            remote: info.name.into_owned(),
            name,
            definition,
            read_only_hint: info
                .annotations
                .and_then(|a| a.read_only_hint)
                .unwrap_or(false),
        }
    }
}

impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn definition(&self) -> Value {
        self.definition.clone()
    }

    fn access(&self) -> Access {
        Access::Foreign {
            read_only_hint: self.read_only_hint,
        }
    }

    fn preview(&self, input: &Value, cwd: &Path, _fs: &dyn FileSystem) -> Result<Preview> {
        if !input.is_object() {
            bail!("{}: the input must be a JSON object", self.name);
        }
        let _ = cwd;
        Ok(Preview {
            title: format!("{} (MCP server {})", self.remote, self.server.name()),
            diff: None,
            // What it touches is unknown: it always asks instead.
            paths: Vec::new(),
        })
    }

    fn run<'a>(&'a self, input: &'a Value, ctx: &'a ToolCtx) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let Some(arguments) = input.as_object() else {
                return ToolOutput::error(format!(
                    "{}: the input must be a JSON object",
                    self.name
                ));
            };
            self.server
                .clone()
                .call(
                    &self.remote,
                    arguments.clone(),
                    &ctx.env.updates,
                    &ctx.cancel,
                )
                .await
        })
    }
}

/// The image types both HTTP APIs accept.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];
/// Anthropic refuses images over 5 MB; base64 is 4/3 of that.
const MAX_IMAGE_BASE64: usize = 5 * 1024 * 1024 * 4 / 3;
/// The text a result keeps, as for the built-in tools' output.
const MAX_TEXT_BYTES: usize = 50 * 1024;

/// Cuts a result's text to [`MAX_TEXT_BYTES`] (on a character boundary),
/// saying so: a server's output goes into every later request.
fn cap_text(text: &mut String) {
    if text.len() <= MAX_TEXT_BYTES {
        return;
    }
    let total = text.len();
    let mut cut = MAX_TEXT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    text.push_str(&format!(
        "\n[output capped at {} KB of {} KB]",
        MAX_TEXT_BYTES / 1024,
        total / 1024
    ));
}

/// The model's view of a result: text as is, images as image blocks (and
/// a line naming each, which is what clients' `tool_execution_end` shows),
/// audio as a note, embedded resources as JSON, structured content as JSON
/// text.
pub(super) fn output(result: CallToolResult) -> ToolOutput {
    let mut parts: Vec<String> = Vec::new();
    let mut images = Vec::new();
    for block in &result.content {
        parts.push(match block {
            ContentBlock::Text(t) => t.text.clone(),
            ContentBlock::Image(i) => {
                // The image is stored in the history and sent with every
                // later request: one the providers refuse (a type they do
                // not take, over their size limit) would fail them all.
                if !IMAGE_TYPES.contains(&i.mime_type.as_str()) {
                    format!(
                        "[image: {}, not shown: the model takes {}]",
                        i.mime_type,
                        IMAGE_TYPES.join(", ")
                    )
                } else if i.data.len() > MAX_IMAGE_BASE64 {
                    format!(
                        "[image: {}, not shown: {} KB of base64, over the {} KB limit]",
                        i.mime_type,
                        i.data.len() / 1024,
                        MAX_IMAGE_BASE64 / 1024
                    )
                } else {
                    images.push(ToolImage {
                        media_type: i.mime_type.clone(),
                        data: i.data.clone(),
                    });
                    format!("[image: {}]", i.mime_type)
                }
            }
            ContentBlock::Audio(a) => format!("[audio {}, not passed on]", a.mime_type),
            other => serde_json::to_string(other).unwrap_or_default(),
        });
    }
    // Servers that return structured content also send it as text (the
    // spec asks them to); it is given as JSON text only when they did not.
    if let Some(structured) = result
        .structured_content
        .as_ref()
        .filter(|_| parts.is_empty())
    {
        parts.push(structured.to_string());
    }
    let mut content = parts.join("\n");
    cap_text(&mut content);
    let mut output = if result.is_error == Some(true) {
        ToolOutput::error(content)
    } else {
        ToolOutput::ok(content)
    };
    output.images = images;
    output
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitise("get-sum_2"), "get-sum_2");
        assert_eq!(sanitise("a.b/c d"), "a_b_c_d");
    }

    #[test]
    fn long_names_are_cut_to_64_and_stay_distinct() {
        assert_eq!(full_name("fx", "echo"), "mcp__fx__echo");
        let long = "x".repeat(80);
        let a = full_name("server", &format!("{long}_a"));
        let b = full_name("server", &format!("{long}_b"));
        assert_eq!(a.len(), MAX_NAME);
        assert_eq!(b.len(), MAX_NAME);
        assert_ne!(a, b);
        assert!(a.starts_with("mcp__server__xxx"), "{a}");
        // The same name is cut the same way every time.
        assert_eq!(a, full_name("server", &format!("{long}_a")));
    }

    #[test]
    fn results_map_text_structured_and_errors() {
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "text", "text": "{\"n\": 1}"}],
            "structuredContent": {"n": 1}
        }))
        .unwrap();
        assert_eq!(output(r), ToolOutput::ok("{\"n\": 1}"));
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [], "structuredContent": {"n": 1}
        }))
        .unwrap();
        assert_eq!(output(r), ToolOutput::ok("{\"n\":1}"));
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "text", "text": "bad"}], "isError": true
        }))
        .unwrap();
        assert_eq!(output(r), ToolOutput::error("bad"));
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "image", "data": "AAAA", "mimeType": "image/png"}]
        }))
        .unwrap();
        let out = output(r);
        assert_eq!(out.content, "[image: image/png]");
        // A type the providers refuse stays out of the history.
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "image", "data": "AAAA", "mimeType": "image/svg+xml"}]
        }))
        .unwrap();
        let svg = output(r);
        assert!(svg.images.is_empty());
        assert!(svg.content.contains("not shown"), "{}", svg.content);
        // Text is capped like the built-in tools' output.
        let r: CallToolResult = serde_json::from_value(json!({
            "content": [{"type": "text", "text": "é".repeat(40_000)}]
        }))
        .unwrap();
        let long = output(r);
        assert!(long.content.len() < MAX_TEXT_BYTES + 100);
        assert!(
            long.content.ends_with("of 78 KB]"),
            "{}",
            &long.content[long.content.len() - 40..]
        );
        assert_eq!(
            out.images,
            [ToolImage {
                media_type: "image/png".into(),
                data: "AAAA".into()
            }]
        );
    }
}
