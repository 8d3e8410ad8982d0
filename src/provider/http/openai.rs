//! OpenAI-compatible Chat Completions: request body and SSE chunk decoding.
//!
//! One body serves OpenAI itself and the compatible servers (OpenRouter,
//! Groq, Together, DeepSeek, Mistral, xAI, Ollama, vLLM, llama.cpp, LM
//! Studio). Chunks are `data: {choices: [{delta, finish_reason}]}` ending
//! with `data: [DONE]`; usage comes in a last chunk when the server honours
//! `stream_options.include_usage`, and is simply absent when it does not.

use std::borrow::Cow;
use std::collections::BTreeMap;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::api::{Api, ApiError, Decoder};
use super::endpoints::Endpoint;
use super::failure::bearer;
use super::sse;
use crate::message::{Block, Content, Role, Usage};
use crate::provider::{Completion, Event, Request};

/// Chat Completions, as OpenAI and the compatible servers speak it.
pub(crate) struct OpenAi;

impl Api for OpenAi {
    fn path(&self) -> &'static str {
        "/chat/completions"
    }

    fn headers(&self, key: Option<&str>, headers: &mut HeaderMap) -> anyhow::Result<()> {
        bearer(key, headers)
    }

    fn body(&self, endpoint: &Endpoint, model: &str, req: &Request<'_>) -> Value {
        let field = if endpoint.name == "openai" {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        let mut req = *req;
        req.max_tokens = endpoint.max_output_tokens(model, req.max_tokens);
        let effort = req
            .thinking
            .openai_effort()
            .filter(|_| endpoint.reasoning(model));
        body(model, &req, field, effort)
    }

    fn decoder(&self, _model: &str) -> Box<dyn Decoder> {
        Box::new(OpenAiDecoder::new())
    }
}

/// The request body. `max_tokens_field` is `max_completion_tokens` for
/// OpenAI itself (its reasoning models refuse `max_tokens`) and `max_tokens`
/// for compatible servers, which mostly know only the older name.
/// `reasoning_effort` is given only for a reasoning model: the others
/// reject the field.
pub(crate) fn body(
    model: &str,
    req: &Request<'_>,
    max_tokens_field: &str,
    reasoning_effort: Option<&str>,
) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("stream".into(), json!(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    body.insert("messages".into(), Value::Array(messages(req)));
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t.get("input_schema").or(t.get("parameters")).cloned()
                        .unwrap_or_else(|| json!({"type": "object"})),
                }})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if let Some(n) = req.max_tokens {
        body.insert(max_tokens_field.into(), json!(n));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if let Some(effort) = reasoning_effort {
        body.insert("reasoning_effort".into(), json!(effort));
    }
    Value::Object(body)
}

/// Anthropic-shaped history → chat messages: tool results become `tool`
/// messages, tool calls become `tool_calls`, thinking is not sent back.
fn messages(req: &Request<'_>) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(system) = req.system_prompt.filter(|s| !s.is_empty()) {
        out.push(json!({"role": "system", "content": system}));
    }
    for m in req.history {
        let blocks = match &m.content {
            Content::Text(s) => {
                if !s.is_empty() {
                    out.push(json!({"role": m.role, "content": s}));
                }
                continue;
            }
            Content::Blocks(b) => b,
        };
        let mut text = String::new();
        let mut parts = Vec::new();
        let mut calls = Vec::new();
        for b in blocks {
            match b {
                Block::Text { text: t } => {
                    crate::message::push_paragraph(&mut text, t);
                    parts.push(json!({"type": "text", "text": t}));
                }
                Block::Image { source } => parts.push(image_url(source)),
                Block::ToolUse { id, name, input } => calls.push(json!({
                    "id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()},
                })),
                Block::ToolResult {
                    tool_use_id,
                    content,
                    ..
                } => {
                    let content = match content {
                        Value::String(s) => s.clone(),
                        Value::Array(items) => {
                            // A `tool` message carries text only: the
                            // images follow in one user message after the
                            // round's tool messages.
                            for source in items.iter().filter(|i| i["type"] == "image") {
                                if !parts.iter().any(|p| p["type"] == "image_url") {
                                    parts.push(json!({"type": "text", "text": "Images returned by the tool calls above:"}));
                                }
                                parts.push(image_url(&source["source"]));
                            }
                            items
                                .iter()
                                .filter_map(|i| i["text"].as_str())
                                .collect::<Vec<_>>()
                                .join("\n")
                        }
                        other => other.to_string(),
                    };
                    out.push(
                        json!({"role": "tool", "tool_call_id": tool_use_id, "content": content}),
                    );
                }
                Block::Thinking { .. } => {}
            }
        }
        if m.role == Role::Assistant {
            if text.is_empty() && calls.is_empty() {
                continue;
            }
            let mut msg = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
            if !calls.is_empty() {
                msg["tool_calls"] = Value::Array(calls);
            }
            out.push(msg);
        } else if parts.iter().any(|p| p["type"] == "image_url") {
            out.push(json!({"role": m.role, "content": parts}));
        } else if !text.is_empty() {
            out.push(json!({"role": m.role, "content": text}));
        }
    }
    out
}

/// An Anthropic base64 image source as a chat `image_url` part (a data URL).
fn image_url(source: &Value) -> Value {
    let url = format!(
        "data:{};base64,{}",
        source["media_type"].as_str().unwrap_or("image/png"),
        source["data"].as_str().unwrap_or_default()
    );
    json!({"type": "image_url", "image_url": {"url": url}})
}

/// One streamed chunk, read with borrowed strings: a delta's text is
/// copied once (into its event) and nothing else is allocated, where a
/// generic `Value` would build a map per object.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    #[serde(default)]
    usage: Option<ChunkUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Default, Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    tool_calls: Option<Vec<ToolCallChunk<'a>>>,
}

#[derive(Deserialize)]
struct ToolCallChunk<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    function: Option<FunctionChunk<'a>>,
}

#[derive(Default, Deserialize)]
struct FunctionChunk<'a> {
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ChunkUsage {
    // Optional throughout: some compatible servers send nulls here.
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

struct ToolCall {
    id: String,
    name: String,
    args: String,
    started: bool,
}

#[derive(Default)]
pub(crate) struct OpenAiDecoder {
    usage: Option<Usage>,
    finish: Option<String>,
    /// Tool calls by their `index`, in order.
    tools: BTreeMap<u64, ToolCall>,
    any_chunk: bool,
}

impl OpenAiDecoder {
    /// A piece of the `n`th tool call of a chunk: its id and name (shown as
    /// the call's start once both are known, which may take several
    /// chunks), then pieces of its arguments.
    fn tool_call_chunk(&mut self, n: usize, c: ToolCallChunk<'_>, out: &mut Vec<Event>) {
        let index = c.index.unwrap_or(n as u64);
        let call = self.tools.entry(index).or_insert_with(|| ToolCall {
            id: String::new(),
            name: String::new(),
            args: String::new(),
            started: false,
        });
        if let Some(id) = c.id.filter(|s| !s.is_empty()) {
            call.id = id.into_owned();
        }
        let function = c.function.unwrap_or_default();
        if let Some(name) = function.name.filter(|s| !s.is_empty()) {
            call.name.push_str(&name);
        }
        if !call.started && !call.id.is_empty() && !call.name.is_empty() {
            call.started = true;
            out.push(Event::tool_start(call.id.clone(), call.name.clone()));
        }
        if let Some(args) = function.arguments.filter(|s| !s.is_empty()) {
            call.args.push_str(&args);
            if call.started {
                out.push(Event::tool_delta(call.id.clone(), args.into_owned()));
            }
        }
    }

    pub(crate) fn new() -> Self {
        OpenAiDecoder::default()
    }

    fn complete(&mut self, out: &mut Vec<Event>) -> Result<Completion, ApiError> {
        for (_, call) in std::mem::take(&mut self.tools) {
            if !call.started {
                out.push(Event::tool_start(call.id.clone(), call.name.clone()));
            }
            let input = if call.args.trim().is_empty() {
                json!({})
            } else {
                serde_json::from_str(&call.args).map_err(|e| {
                    ApiError::fatal(format!(
                        "tool call {} ({}) has invalid JSON arguments: {e}",
                        call.id, call.name
                    ))
                })?
            };
            out.push(Event::tool_end(call.id, call.name, input));
        }
        if let Some(u) = self.usage {
            out.push(Event::Usage(u));
        }
        Ok(Completion {
            content: Vec::new(),
            stop_reason: self.finish.take().map(|f| stop_reason(&f)),
            usage: self.usage,
        })
    }
}

/// Chat Completions finish reasons in the host's (Anthropic) vocabulary.
fn stop_reason(finish: &str) -> String {
    match finish {
        "stop" => "end_turn",
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        other => other,
    }
    .to_owned()
}

impl Decoder for OpenAiDecoder {
    fn event(
        &mut self,
        ev: &sse::Event,
        out: &mut Vec<Event>,
    ) -> Result<Option<Completion>, ApiError> {
        if ev.data.trim() == "[DONE]" {
            return self.complete(out).map(Some);
        }
        let chunk: Chunk<'_> = serde_json::from_str(&ev.data).map_err(|e| {
            ApiError::fatal(format!(
                "malformed stream chunk {:?}: {e}",
                ev.data.chars().take(120).collect::<String>()
            ))
        })?;
        self.any_chunk = true;
        if let Some(err) = chunk.error {
            let message = err["message"].as_str().unwrap_or("no message");
            let kind = err["type"]
                .as_str()
                .or(err["code"].as_str())
                .unwrap_or("error");
            return Err(ApiError::fatal(format!("{kind}: {message}")));
        }
        if let Some(u) = chunk.usage {
            let cached = u
                .prompt_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0);
            self.usage = Some(Usage {
                input_tokens: u.prompt_tokens.unwrap_or(0).saturating_sub(cached),
                output_tokens: u.completion_tokens.unwrap_or(0),
                cache_read_input_tokens: cached,
                cache_creation_input_tokens: 0,
            });
        }
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(None);
        };
        let delta = choice.delta.unwrap_or_default();
        for t in [delta.reasoning_content, delta.reasoning]
            .into_iter()
            .flatten()
        {
            if !t.is_empty() {
                out.push(Event::thinking(t.into_owned()));
            }
        }
        if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
            out.push(Event::text(t.into_owned()));
        }
        for (n, c) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
            self.tool_call_chunk(n, c, out);
        }
        if let Some(f) = choice.finish_reason {
            self.finish = Some(f.into_owned());
        }
        Ok(None)
    }

    fn eof(&mut self, out: &mut Vec<Event>) -> Result<Completion, ApiError> {
        // Some servers close without `[DONE]` after a finish reason; that is
        // a complete answer. Without a finish reason the stream was cut.
        if self.finish.is_some() {
            return self.complete(out);
        }
        Err(ApiError {
            message: if self.any_chunk {
                "the stream ended without a finish reason or [DONE] (cut off)".into()
            } else {
                "the response ended without any stream chunk".into()
            },
            retryable: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::protocol::StreamEvent;
    use std::sync::Arc;

    fn feed(d: &mut OpenAiDecoder, data: &str) -> (Vec<Event>, Option<Completion>) {
        super::super::api::feed(d, "", data)
    }

    #[test]
    fn assembles_interleaved_tool_calls() {
        let mut d = OpenAiDecoder::new();
        feed(
            &mut d,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"read","arguments":""}}]}}]}"#,
        );
        feed(
            &mut d,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":1,"id":"c2","function":{"name":"ls","arguments":"{}"}}]}}]}"#,
        );
        feed(
            &mut d,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"path\":"}}]}}]}"#,
        );
        feed(
            &mut d,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"a\"}"}}]},"finish_reason":"tool_calls"}]}"#,
        );
        feed(
            &mut d,
            r#"{"choices":[],"usage":{"prompt_tokens":10,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#,
        );
        let (out, done) = feed(&mut d, "[DONE]");
        let ends: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                Event::Delta(StreamEvent::ToolcallEnd {
                    tool_call_id,
                    input,
                    ..
                }) => Some((tool_call_id.clone(), input.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(
            ends,
            vec![("c1".into(), json!({"path":"a"})), ("c2".into(), json!({}))]
        );
        let done = done.unwrap();
        assert_eq!(done.stop_reason.as_deref(), Some("tool_use"));
        let u = done.usage.unwrap();
        assert_eq!(
            (u.input_tokens, u.cache_read_input_tokens, u.output_tokens),
            (6, 4, 3)
        );
    }

    #[test]
    fn a_cut_stream_is_an_error() {
        let mut d = OpenAiDecoder::new();
        feed(&mut d, r#"{"choices":[{"delta":{"content":"hi"}}]}"#);
        assert!(d.eof(&mut Vec::new()).is_err());
    }

    #[test]
    fn history_maps_to_chat_messages() {
        let history: Vec<Arc<Message>> = [
            json!({"role":"user","content":"hi"}),
            json!({"role":"assistant","content":[{"type":"thinking","thinking":"x"},{"type":"text","text":"ok"},{"type":"tool_use","id":"c1","name":"ls","input":{}}]}),
            json!({"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":"a.txt","is_error":false}]}),
        ]
        .into_iter()
        .map(|v| Arc::new(serde_json::from_value(v).unwrap()))
        .collect();
        let req = Request {
            history: &history,
            system_prompt: Some("be nice"),
            tools: &[],
            max_tokens: None,
            temperature: None,
            thinking: crate::protocol::ThinkingLevel::Off,
            session_id: None,
        };
        let m = messages(&req);
        assert_eq!(m[0], json!({"role":"system","content":"be nice"}));
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{}");
        assert_eq!(
            m[3],
            json!({"role":"tool","tool_call_id":"c1","content":"a.txt"})
        );
    }
}
