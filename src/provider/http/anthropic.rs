//! Anthropic Messages API: request body and SSE event decoding.
//!
//! Stream shape: `message_start` (input usage) → per content block
//! `content_block_start` / `content_block_delta`* / `content_block_stop` →
//! `message_delta` (stop reason, output usage) → `message_stop`. A body that
//! ends before `message_stop` was cut and fails the round.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Map, Value};

use super::api::{Api, ApiError, Decoder};
use super::endpoints::Endpoint;
use super::failure::secret_header;
use super::sse;
use crate::message::{Block, Content, Message, Role, Usage};
use crate::provider::{Completion, Event, Request};

/// The API version header sent with every request.
pub(crate) const API_VERSION: &str = "2023-06-01";

/// `max_tokens` is required by the API; used when the catalogue has none.
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 8192;

/// The Messages API.
pub(crate) struct Anthropic;

impl Api for Anthropic {
    fn path(&self) -> &'static str {
        "/v1/messages"
    }

    fn headers(&self, key: Option<&str>, headers: &mut HeaderMap) -> anyhow::Result<()> {
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        if let Some(k) = key {
            headers.insert("x-api-key", secret_header(k)?);
        }
        Ok(())
    }

    fn body(&self, endpoint: &Endpoint, model: &str, req: &Request<'_>) -> Value {
        let spec = endpoint.model(model);
        let options = Options {
            max_tokens: spec
                .and_then(|s| s.max_tokens)
                .unwrap_or(DEFAULT_MAX_TOKENS),
            prompt_caching: endpoint.prompt_caching,
            thinking: endpoint.reasoning(model),
        };
        body(model, &options, req)
    }

    fn decoder(&self, _model: &str) -> Box<dyn Decoder> {
        Box::new(AnthropicDecoder::new())
    }
}

/// What the endpoint and the catalogue decide about a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// The model's output limit, used when the request sets none.
    pub max_tokens: u64,
    /// Set `cache_control` breakpoints (config `prompt_caching`, default on).
    pub prompt_caching: bool,
    /// The model takes `thinking` (catalogue or config `reasoning`).
    pub thinking: bool,
}

/// The `cache_control` value of a breakpoint: the default 5-minute cache.
fn ephemeral() -> Value {
    json!({"type": "ephemeral"})
}

/// The request body for `model`.
pub(crate) fn body(model: &str, options: &Options, req: &Request<'_>) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    let mut max_tokens = req.max_tokens.unwrap_or(options.max_tokens);
    let budget = req.thinking.anthropic_budget().filter(|_| options.thinking);
    if let Some(budget) = budget {
        // The budget must stay below max_tokens, with room left for the
        // answer itself.
        max_tokens = max_tokens.max(budget + DEFAULT_MAX_TOKENS);
    }
    body.insert("max_tokens".into(), json!(max_tokens));
    body.insert("stream".into(), json!(true));
    let caching = options.prompt_caching;
    let system = req.system_prompt.filter(|s| !s.is_empty());
    if let Some(system) = system {
        if caching {
            // Only a block list can carry cache_control.
            body.insert(
                "system".into(),
                json!([{"type": "text", "text": system, "cache_control": ephemeral()}]),
            );
        } else {
            body.insert("system".into(), json!(system));
        }
    }
    let mut messages = messages(req.history);
    if caching {
        mark_newest(&mut messages);
    }
    body.insert("messages".into(), Value::Array(messages));
    if !req.tools.is_empty() {
        let mut tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "name": t["name"],
                    "description": t["description"],
                    "input_schema": t.get("input_schema").or(t.get("parameters")).cloned()
                        .unwrap_or_else(|| json!({"type": "object"})),
                })
            })
            .collect();
        if caching {
            if let Some(last) = tools.last_mut() {
                last["cache_control"] = ephemeral();
            }
        }
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(budget) = budget {
        body.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": budget}),
        );
    } else if let Some(t) = req.temperature {
        // The API refuses a temperature together with thinking.
        body.insert("temperature".into(), json!(t));
    }
    Value::Object(body)
}

/// Puts the moving breakpoint on the newest message's last block, so the
/// whole history up to it is written to the cache and read back by the
/// next round (which adds its messages after it). Thinking blocks cannot
/// carry cache_control, so the last other block is marked.
fn mark_newest(messages: &mut [Value]) {
    let Some(content) = messages
        .last_mut()
        .and_then(|m| m.get_mut("content"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let markable =
        |b: &Value| !matches!(b["type"].as_str(), Some("thinking" | "redacted_thinking"));
    if let Some(block) = content.iter_mut().rev().find(|b| markable(b)) {
        block["cache_control"] = ephemeral();
    }
}

/// History → API messages. The API wants alternating roles and no empty
/// content, while the history may hold two user messages in a row (after a
/// failed turn) or an aborted empty answer; neighbours with the same role are
/// merged and empty ones dropped. Thinking without a signature cannot be sent
/// back (the API rejects it), so it is left out.
fn messages(history: &[Arc<Message>]) -> Vec<Value> {
    let mut out: Vec<(Role, Vec<Value>)> = Vec::new();
    for m in history {
        let blocks = blocks(m);
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last, existing)) if *last == m.role => existing.extend(blocks),
            _ => out.push((m.role, blocks)),
        }
    }
    out.into_iter()
        .map(|(role, blocks)| json!({"role": role, "content": blocks}))
        .collect()
}

/// The content blocks of one message that the API accepts.
fn blocks(m: &Message) -> Vec<Value> {
    let text = |t: &str| {
        if t.is_empty() {
            Vec::new()
        } else {
            vec![json!({"type": "text", "text": t})]
        }
    };
    match &m.content {
        Content::Text(t) => text(t),
        // Text-only blocks go as one text block, as they always have, the
        // pieces a blank line apart: the provider shape
        // (`Message::to_provider`) joins them the same way.
        Content::Blocks(bs)
            if !bs.is_empty() && bs.iter().all(|b| matches!(b, Block::Text { .. })) =>
        {
            text(&m.text())
        }
        Content::Blocks(bs) => bs
            .iter()
            .filter(|b| match b {
                Block::Thinking { signature, .. } => signature.is_some(),
                Block::Text { text } => !text.is_empty(),
                _ => true,
            })
            .filter_map(|b| serde_json::to_value(b).ok())
            .collect(),
    }
}

/// A tool call being streamed.
struct ToolCall {
    id: String,
    name: String,
    json: String,
}

#[derive(Default)]
pub(crate) struct AnthropicDecoder {
    usage: Usage,
    stop_reason: Option<String>,
    tools: HashMap<u64, ToolCall>,
    started: bool,
}

impl AnthropicDecoder {
    pub(crate) fn new() -> Self {
        AnthropicDecoder::default()
    }
}

fn read_usage(into: &mut Usage, u: &Value) {
    let get = |k: &str| u.get(k).and_then(Value::as_u64);
    if let Some(v) = get("input_tokens") {
        into.input_tokens = v;
    }
    if let Some(v) = get("output_tokens") {
        into.output_tokens = v;
    }
    if let Some(v) = get("cache_read_input_tokens") {
        into.cache_read_input_tokens = v;
    }
    if let Some(v) = get("cache_creation_input_tokens") {
        into.cache_creation_input_tokens = v;
    }
}

impl AnthropicDecoder {
    /// A content block opens: a tool call is remembered by its index; a
    /// text block may carry its first text.
    fn block_start(&mut self, data: &Value, out: &mut Vec<Event>) {
        let index = data["index"].as_u64().unwrap_or(0);
        let block = &data["content_block"];
        match block["type"].as_str() {
            Some("tool_use") => {
                let id = block["id"].as_str().unwrap_or_default().to_owned();
                let name = block["name"].as_str().unwrap_or_default().to_owned();
                out.push(Event::tool_start(id.clone(), name.clone()));
                self.tools.insert(
                    index,
                    ToolCall {
                        id,
                        name,
                        json: String::new(),
                    },
                );
            }
            Some("text") => {
                if let Some(t) = block["text"].as_str().filter(|t| !t.is_empty()) {
                    out.push(Event::text(t.to_owned()));
                }
            }
            _ => {}
        }
    }

    /// A piece of a block: text, thinking, its signature, or a tool call's
    /// input JSON (kept whole for the end of the call).
    fn block_delta(&mut self, data: &Value, out: &mut Vec<Event>) {
        let index = data["index"].as_u64().unwrap_or(0);
        let delta = &data["delta"];
        let text = |k: &str| delta[k].as_str().unwrap_or_default().to_owned();
        match delta["type"].as_str() {
            Some("text_delta") => out.push(Event::text(text("text"))),
            Some("thinking_delta") => out.push(Event::thinking(text("thinking"))),
            Some("signature_delta") => out.push(Event::ThinkingSignature(text("signature"))),
            Some("input_json_delta") => {
                if let Some(call) = self.tools.get_mut(&index) {
                    let piece = text("partial_json");
                    call.json.push_str(&piece);
                    out.push(Event::tool_delta(call.id.clone(), piece));
                }
            }
            _ => {}
        }
    }
}

impl Decoder for AnthropicDecoder {
    fn event(
        &mut self,
        ev: &sse::Event,
        out: &mut Vec<Event>,
    ) -> Result<Option<Completion>, ApiError> {
        let data: Value = serde_json::from_str(&ev.data).map_err(|e| {
            ApiError::fatal(format!(
                "malformed stream event {:?}: {e}",
                ev.data.chars().take(120).collect::<String>()
            ))
        })?;
        let kind = data["type"].as_str().unwrap_or(ev.event.as_str());
        match kind {
            "message_start" => {
                self.started = true;
                read_usage(&mut self.usage, &data["message"]["usage"]);
                // Reported as it arrives, so an aborted or failed round
                // still counts the input it was charged for.
                out.push(Event::Usage(self.usage));
            }
            "content_block_start" => self.block_start(&data, out),
            "content_block_delta" => self.block_delta(&data, out),
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap_or(0);
                if let Some(call) = self.tools.remove(&index) {
                    out.push(finish_tool_call(call)?);
                }
            }
            "message_delta" => {
                if let Some(r) = data["delta"]["stop_reason"].as_str() {
                    self.stop_reason = Some(r.to_owned());
                }
                read_usage(&mut self.usage, &data["usage"]);
                out.push(Event::Usage(self.usage));
            }
            "message_stop" => {
                out.push(Event::Usage(self.usage));
                return Ok(Some(Completion {
                    content: Vec::new(),
                    stop_reason: self.stop_reason.take(),
                    usage: Some(self.usage),
                }));
            }
            "error" => {
                let err = &data["error"];
                let kind = err["type"].as_str().unwrap_or("error");
                let message = err["message"].as_str().unwrap_or("no message");
                return Err(ApiError {
                    message: format!("{kind}: {message}"),
                    retryable: matches!(
                        kind,
                        "overloaded_error" | "api_error" | "rate_limit_error"
                    ),
                });
            }
            // `ping` and event types added later are ignored.
            _ => {}
        }
        Ok(None)
    }

    fn eof(&mut self, _out: &mut Vec<Event>) -> Result<Completion, ApiError> {
        Err(ApiError {
            message: if self.started {
                "the stream ended before message_stop (cut off)".into()
            } else {
                "the response ended without any stream event".into()
            },
            retryable: true,
        })
    }
}

fn finish_tool_call(call: ToolCall) -> Result<Event, ApiError> {
    let input = if call.json.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&call.json).map_err(|e| {
            ApiError::fatal(format!(
                "tool call {} ({}) has invalid JSON input: {e}",
                call.id, call.name
            ))
        })?
    };
    Ok(Event::tool_end(call.id, call.name, input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::StreamEvent;

    fn feed(d: &mut AnthropicDecoder, data: Value) -> (Vec<Event>, Option<Completion>) {
        super::super::api::feed(d, "", &data.to_string())
    }

    #[test]
    fn assembles_tool_input_and_usage() {
        let mut d = AnthropicDecoder::new();
        feed(
            &mut d,
            json!({"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":4}}}),
        );
        let (out, _) = feed(
            &mut d,
            json!({"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"read"}}),
        );
        assert!(
            matches!(&out[0], Event::Delta(StreamEvent::ToolcallStart { tool_call_id, .. }) if tool_call_id == "t1")
        );
        for piece in ["{\"pa", "th\": \"a", ".txt\"}"] {
            feed(
                &mut d,
                json!({"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":piece}}),
            );
        }
        let (out, _) = feed(&mut d, json!({"type":"content_block_stop","index":1}));
        assert!(
            matches!(&out[0], Event::Delta(StreamEvent::ToolcallEnd { input, .. }) if input == &json!({"path":"a.txt"}))
        );
        feed(
            &mut d,
            json!({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":7}}),
        );
        let (_, done) = feed(&mut d, json!({"type":"message_stop"}));
        let done = done.unwrap();
        assert_eq!(done.stop_reason.as_deref(), Some("tool_use"));
        let u = done.usage.unwrap();
        assert_eq!(
            (u.input_tokens, u.output_tokens, u.cache_read_input_tokens),
            (10, 7, 4)
        );
    }

    #[test]
    fn merges_same_role_neighbours_and_drops_unsigned_thinking() {
        let history: Vec<Arc<Message>> = [
            json!({"role":"user","content":"a"}),
            json!({"role":"user","content":"b"}),
            json!({"role":"assistant","content":[{"type":"thinking","thinking":"x"},{"type":"text","text":""}]}),
            json!({"role":"assistant","content":[{"type":"thinking","thinking":"y","signature":"s"},{"type":"text","text":"ok"}]}),
        ]
        .into_iter()
        .map(|v| Arc::new(serde_json::from_value(v).unwrap()))
        .collect();
        let m = messages(&history);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0]["content"].as_array().unwrap().len(), 2);
        assert_eq!(m[1]["content"][0]["signature"], "s");
    }

    /// Pins the shape the engine's old `Value` history gave: a message of
    /// text blocks only goes as one text block, the pieces a blank line
    /// apart (SPEC §2: a prompt's text attachments are not glued to it).
    #[test]
    fn text_only_blocks_go_as_one_block() {
        let history: Vec<Arc<Message>> = [
            json!({"role":"user","content":"q"}),
            json!({"role":"assistant","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}),
        ]
        .into_iter()
        .map(|v| Arc::new(serde_json::from_value(v).unwrap()))
        .collect();
        assert_eq!(
            messages(&history)[1],
            json!({"role":"assistant","content":[{"type":"text","text":"a\n\nb"}]})
        );
    }
    fn tool_loop_history() -> Vec<Arc<Message>> {
        [
            json!({"role":"user","content":"go"}),
            json!({"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"s"},{"type":"tool_use","id":"t1","name":"ls","input":{}}]}),
            json!({"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"a.txt"}]}),
        ]
        .into_iter()
        .map(|v| Arc::new(serde_json::from_value(v).unwrap()))
        .collect()
    }

    fn marked(body: &Value) -> Vec<String> {
        let mut out = Vec::new();
        let mut visit = |place: &str, list: &Value| {
            for (i, b) in list.as_array().into_iter().flatten().enumerate() {
                if b.get("cache_control").is_some() {
                    out.push(format!("{place}[{i}]"));
                }
            }
        };
        visit("tools", &body["tools"]);
        visit("system", &body["system"]);
        for (n, m) in body["messages"].as_array().unwrap().iter().enumerate() {
            visit(&format!("messages[{n}]"), &m["content"]);
        }
        out
    }

    #[test]
    fn breakpoints_on_tools_system_and_the_newest_message() {
        static TOOLS: std::sync::LazyLock<Vec<Value>> = std::sync::LazyLock::new(|| {
            vec![
                json!({"name":"a","description":"","input_schema":{"type":"object"}}),
                json!({"name":"b","description":"","input_schema":{"type":"object"}}),
            ]
        });
        let history = tool_loop_history();
        let mut req = Request {
            history: &history,
            system_prompt: Some("sys"),
            tools: &TOOLS,
            max_tokens: None,
            temperature: Some(0.5),
            thinking: crate::protocol::ThinkingLevel::Off,
            session_id: None,
        };
        let on = Options {
            max_tokens: 1000,
            prompt_caching: true,
            thinking: true,
        };
        let b = body("m", &on, &req);
        assert_eq!(marked(&b), ["tools[1]", "system[0]", "messages[2][0]"]);
        assert_eq!(b["temperature"], 0.5);
        assert!(b.get("thinking").is_none());
        // Without tools the system prompt carries the first breakpoint.
        req.tools = &[];
        assert_eq!(
            marked(&body("m", &on, &req)),
            ["system[0]", "messages[2][0]"]
        );
        let off = Options {
            prompt_caching: false,
            ..on
        };
        let b = body("m", &off, &req);
        assert!(marked(&b).is_empty());
        assert_eq!(b["system"], "sys");
    }

    #[test]
    fn thinking_sets_a_budget_below_max_tokens_and_drops_temperature() {
        let history = tool_loop_history();
        let req = Request {
            history: &history,
            system_prompt: None,
            tools: &[],
            max_tokens: None,
            temperature: Some(0.5),
            thinking: crate::protocol::ThinkingLevel::High,
            session_id: None,
        };
        let options = Options {
            max_tokens: 8192,
            prompt_caching: false,
            thinking: true,
        };
        let b = body("m", &options, &req);
        assert_eq!(
            b["thinking"],
            json!({"type":"enabled","budget_tokens":24000})
        );
        assert!(b["max_tokens"].as_u64().unwrap() > 24000);
        assert!(b.get("temperature").is_none());
        let plain = Options {
            thinking: false,
            ..options
        };
        assert!(body("m", &plain, &req).get("thinking").is_none());
    }
}
