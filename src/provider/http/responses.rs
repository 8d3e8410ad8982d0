//! OpenAI's Responses API: request body and SSE event decoding.
//!
//! A stateless client: every request carries the whole conversation as
//! `input` items with `store: false`, and asks for the model's reasoning
//! back encrypted (`include: ["reasoning.encrypted_content"]`), so that the
//! reasoning items can be kept in the session and sent back on the next
//! request: a reasoning model that loses them between tool calls reasons
//! again from scratch.
//!
//! Stream shape: `response.created` → per output item
//! `response.output_item.added`, its deltas (`response.output_text.delta`,
//! `response.reasoning_summary_text.delta`,
//! `response.function_call_arguments.delta`), `response.output_item.done`
//! (the whole item) → one terminal event: `response.completed`,
//! `response.incomplete` or `response.failed`. An `error` event fails the
//! round; a body that ends before a terminal event was cut.

use std::borrow::Cow;
use std::sync::Arc;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::api::{Api, ApiError, Decoder};
use super::endpoints::{Endpoint, RequestOptions};
use super::failure::bearer;
use super::sse;
use crate::message::{Block, Content, Message, ReasoningItem, Role, Usage};
use crate::provider::{Completion, Event, Request};

/// The Responses API.
pub(crate) struct Responses;

impl Api for Responses {
    fn path(&self) -> &'static str {
        "/responses"
    }

    fn headers(&self, key: Option<&str>, headers: &mut HeaderMap) -> anyhow::Result<()> {
        bearer(key, headers)
    }

    fn body(&self, endpoint: &Endpoint, model: &str, req: &Request<'_>) -> Value {
        body(model, &endpoint.request_options(model, req.max_tokens), req)
    }

    fn decoder(&self, model: &str) -> Box<dyn Decoder> {
        Box::new(ResponsesDecoder::new(model))
    }
}

/// The request body for `model`.
pub(crate) fn body(model: &str, options: &RequestOptions, req: &Request<'_>) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(model));
    body.insert("stream".into(), json!(true));
    // Nothing is kept on OpenAI's side: the session is the only record,
    // and it is sent whole each time.
    body.insert("store".into(), json!(false));
    if let Some(system) = req.system_prompt.filter(|s| !s.is_empty()) {
        body.insert("instructions".into(), json!(system));
    }
    body.insert(
        "input".into(),
        Value::Array(input(req.history, &options.model_id)),
    );
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": "function",
                    "name": t["name"],
                    "description": t["description"],
                    "parameters": t.get("input_schema").or(t.get("parameters")).cloned()
                        .unwrap_or_else(|| json!({"type": "object"})),
                    // The API's default is strict, which refuses schemas
                    // with optional properties (most of ours).
                    "strict": false,
                })
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    // A reasoning model takes `reasoning` and returns reasoning items; the
    // others reject both the field and the `include`.
    if options.reasoning {
        body.insert("include".into(), json!(["reasoning.encrypted_content"]));
        if let Some(effort) = req.thinking.openai_effort() {
            body.insert(
                "reasoning".into(),
                json!({"effort": effort, "summary": "auto"}),
            );
        }
    } else if let Some(t) = req.temperature {
        // Reasoning models refuse a temperature.
        body.insert("temperature".into(), json!(t));
    }
    if let Some(key) = req.session_id {
        // One session's requests share a prefix: routed to one cache.
        body.insert("prompt_cache_key".into(), json!(key));
    }
    if let Some(n) = options.max_output_tokens {
        body.insert("max_output_tokens".into(), json!(n));
    }
    Value::Object(body)
}

/// History → `input` items, in order: messages, `function_call`s and their
/// `function_call_output`s, and the reasoning items `model_id` wrote.
/// Item ids are not sent: with `store: false` the server has no items to
/// refer to, and an id would make it look for one.
fn input(history: &[Arc<Message>], model_id: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for m in history {
        match &m.content {
            Content::Text(t) if t.is_empty() => {}
            Content::Text(t) => out.push(message(m.role, vec![text_part(m.role, t)])),
            Content::Blocks(blocks) => match m.role {
                Role::User => user_items(blocks, &mut out),
                Role::Assistant => assistant_items(blocks, model_id, &mut out),
            },
        }
    }
    out
}

fn message(role: Role, content: Vec<Value>) -> Value {
    json!({"type": "message", "role": role, "content": content})
}

/// A text part: what the user wrote is input, what the model wrote output.
fn text_part(role: Role, text: &str) -> Value {
    match role {
        Role::User => json!({"type": "input_text", "text": text}),
        Role::Assistant => json!({"type": "output_text", "text": text, "annotations": []}),
    }
}

/// An Anthropic base64 image source as an `input_image` (a data URL).
fn input_image(source: &Value) -> Value {
    let url = format!(
        "data:{};base64,{}",
        source["media_type"].as_str().unwrap_or("image/png"),
        source["data"].as_str().unwrap_or_default()
    );
    json!({"type": "input_image", "image_url": url, "detail": "auto"})
}

/// A user message: its tool results first (each answers a call of the
/// message before), then its own text and images as one message.
fn user_items(blocks: &[Block], out: &mut Vec<Value>) {
    let mut parts = Vec::new();
    for b in blocks {
        match b {
            Block::Text { text } if !text.is_empty() => parts.push(text_part(Role::User, text)),
            Block::Image { source } => parts.push(input_image(source)),
            Block::ToolResult {
                tool_use_id,
                content,
                ..
            } => out.push(json!({
                "type": "function_call_output",
                "call_id": tool_use_id,
                "output": tool_output(content),
            })),
            _ => {}
        }
    }
    if !parts.is_empty() {
        out.push(message(Role::User, parts));
    }
}

/// A tool result's content: a string, or (when it holds images) a list of
/// `input_text` and `input_image` parts, which the API takes as an output.
fn tool_output(content: &Value) -> Value {
    match content {
        Value::String(s) => json!(s),
        Value::Array(items) if items.iter().any(|i| i["type"] == "image") => Value::Array(
            items
                .iter()
                .filter_map(|i| match i["type"].as_str() {
                    Some("image") => Some(input_image(&i["source"])),
                    _ => i["text"]
                        .as_str()
                        .map(|t| json!({"type": "input_text", "text": t})),
                })
                .collect(),
        ),
        Value::Array(items) => json!(items
            .iter()
            .filter_map(|i| i["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n")),
        other => json!(other.to_string()),
    }
}

/// An assistant message: its reasoning items (those of `model_id` only),
/// text and function calls, in the order the model produced them.
fn assistant_items(blocks: &[Block], model_id: &str, out: &mut Vec<Value>) {
    let mut text = Vec::new();
    let flush = |text: &mut Vec<Value>, out: &mut Vec<Value>| {
        if !text.is_empty() {
            out.push(message(Role::Assistant, std::mem::take(text)));
        }
    };
    for b in blocks {
        match b {
            Block::Text { text: t } if !t.is_empty() => text.push(text_part(Role::Assistant, t)),
            Block::Thinking {
                reasoning: Some(item),
                ..
            } if item.model == model_id => {
                flush(&mut text, out);
                out.push(json!({
                    "type": "reasoning",
                    "summary": item.summary,
                    "encrypted_content": item.encrypted_content,
                }));
            }
            Block::ToolUse { id, name, input } => {
                flush(&mut text, out);
                out.push(json!({
                    "type": "function_call",
                    "call_id": id,
                    "name": name,
                    "arguments": input.to_string(),
                }));
            }
            _ => {}
        }
    }
    flush(&mut text, out);
}

/// One stream event, read with borrowed strings: the hot events (text
/// deltas) copy their text once, into the round event, and build no map.
#[derive(Deserialize)]
struct StreamEvent<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    delta: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    item_id: Option<Cow<'a, str>>,
    #[serde(default)]
    summary_index: Option<u64>,
    /// The whole item, on `output_item.added` / `.done`.
    #[serde(default)]
    item: Option<Value>,
    /// The response, on `response.*` lifecycle events.
    #[serde(default)]
    response: Option<Value>,
    /// On `error` events: the code and message (some servers nest them
    /// in an `error` object).
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// A function call being streamed, by its item id.
struct ToolCall {
    item_id: String,
    call_id: String,
    name: String,
    args: String,
}

pub(crate) struct ResponsesDecoder {
    /// `provider/model`, stored with each reasoning item.
    model: String,
    started: bool,
    calls: Vec<ToolCall>,
    /// A function call was completed: the stop reason is `tool_use`.
    called: bool,
    /// The reasoning item and summary part the last summary delta was in,
    /// to put a blank line between parts.
    summary_at: Option<(String, u64)>,
    /// Finished reasoning items not passed on yet. They go out just before
    /// the next thing the client sees (or the completion): a stream cut
    /// after one but before any delta is still retried (nothing was
    /// shown), and no item of a failed attempt is left in the message.
    pending: Vec<ReasoningItem>,
}

impl ResponsesDecoder {
    pub(crate) fn new(model: &str) -> Self {
        ResponsesDecoder {
            model: model.to_owned(),
            started: false,
            calls: Vec::new(),
            called: false,
            summary_at: None,
            pending: Vec::new(),
        }
    }

    /// Passes on the reasoning items that came before what is next shown.
    fn flush(&mut self, out: &mut Vec<Event>) {
        out.extend(self.pending.drain(..).map(Event::Reasoning));
    }

    fn item_added(&mut self, item: &Value, out: &mut Vec<Event>) {
        if item["type"] != "function_call" {
            return;
        }
        let call = ToolCall {
            item_id: str_of(&item["id"]),
            call_id: str_of(&item["call_id"]),
            name: str_of(&item["name"]),
            args: String::new(),
        };
        self.flush(out);
        out.push(Event::tool_start(call.call_id.clone(), call.name.clone()));
        self.calls.push(call);
    }

    fn item_done(&mut self, item: &Value, out: &mut Vec<Event>) -> Result<(), ApiError> {
        match item["type"].as_str() {
            Some("function_call") => {
                let id = item["id"].as_str().unwrap_or_default();
                let Some(pos) = self.calls.iter().position(|c| c.item_id == id) else {
                    // Never announced: shown now, whole.
                    self.item_added(item, out);
                    return self.item_done(item, out);
                };
                let mut call = self.calls.remove(pos);
                // The item's arguments are the whole text; the deltas were
                // for display.
                if let Some(args) = item["arguments"].as_str() {
                    call.args = args.to_owned();
                }
                out.push(finish_call(call)?);
                self.called = true;
            }
            Some("reasoning") => {
                if let Some(encrypted) = item["encrypted_content"].as_str() {
                    self.pending.push(ReasoningItem {
                        model: self.model.clone(),
                        encrypted_content: encrypted.to_owned(),
                        summary: item["summary"].as_array().cloned().unwrap_or_default(),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// A piece of a reasoning summary; parts of one item a blank line
    /// apart, as they are separate paragraphs.
    fn summary_delta(&mut self, ev: StreamEvent<'_>, out: &mut Vec<Event>) {
        let Some(delta) = ev.delta.filter(|d| !d.is_empty()) else {
            return;
        };
        self.flush(out);
        let item = ev.item_id.unwrap_or_default();
        let index = ev.summary_index.unwrap_or(0);
        let (same_item, same_part) = match &self.summary_at {
            Some((i, n)) if *i == *item => (true, *n == index),
            _ => (false, false),
        };
        if same_item && !same_part {
            out.push(Event::thinking("\n\n".into()));
        }
        if !same_part {
            self.summary_at = Some((item.into_owned(), index));
        }
        out.push(Event::thinking(delta.into_owned()));
    }

    /// The terminal event: usage and the stop reason, or the failure.
    fn terminal(
        &mut self,
        kind: &str,
        response: &Value,
        out: &mut Vec<Event>,
    ) -> Result<Completion, ApiError> {
        if kind == "response.failed" {
            return Err(api_error(&response["error"]));
        }
        self.flush(out);
        let stop_reason = if kind == "response.incomplete" {
            // Calls the limit cut short are incomplete: dropped.
            self.calls.clear();
            match response["incomplete_details"]["reason"].as_str() {
                Some("max_output_tokens") | None => "max_tokens".to_owned(),
                Some(other) => other.to_owned(),
            }
        } else {
            // Calls never closed by their `output_item.done`: finished
            // with what arrived.
            for call in std::mem::take(&mut self.calls) {
                out.push(finish_call(call)?);
                self.called = true;
            }
            if self.called { "tool_use" } else { "end_turn" }.to_owned()
        };
        let usage = read_usage(&response["usage"]);
        if let Some(u) = usage {
            out.push(Event::Usage(u));
        }
        Ok(Completion {
            content: Vec::new(),
            stop_reason: Some(stop_reason),
            usage,
        })
    }
}

fn str_of(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn finish_call(call: ToolCall) -> Result<Event, ApiError> {
    let input = if call.args.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(&call.args).map_err(|e| {
            ApiError::fatal(format!(
                "tool call {} ({}) has invalid JSON arguments: {e}",
                call.call_id, call.name
            ))
        })?
    };
    Ok(Event::tool_end(call.call_id, call.name, input))
}

/// The usage of a finished response in the host's terms: `input_tokens`
/// is only the uncached part, `output_tokens` includes the reasoning.
fn read_usage(u: &Value) -> Option<Usage> {
    let input = u["input_tokens"].as_u64()?;
    let cached = u["input_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap_or(0);
    Some(Usage {
        input_tokens: input.saturating_sub(cached),
        output_tokens: u["output_tokens"].as_u64().unwrap_or(0),
        cache_read_input_tokens: cached,
        cache_creation_input_tokens: 0,
    })
}

/// An error object (`{code, message}`) as the turn's error. The code is
/// kept in the message: the turn recognises an overflow
/// (`context_length_exceeded`) by it.
fn api_error(err: &Value) -> ApiError {
    let message = err["message"].as_str().unwrap_or("no message");
    let code = err["code"]
        .as_str()
        .or(err["type"].as_str())
        .unwrap_or("error");
    ApiError {
        message: format!("{code}: {message}"),
        retryable: matches!(
            code,
            "server_error" | "rate_limit_exceeded" | "server_is_overloaded" | "slow_down"
        ),
    }
}

impl Decoder for ResponsesDecoder {
    fn event(
        &mut self,
        ev: &sse::Event,
        out: &mut Vec<Event>,
    ) -> Result<Option<Completion>, ApiError> {
        let data: StreamEvent<'_> = serde_json::from_str(&ev.data).map_err(|e| {
            ApiError::fatal(format!(
                "malformed stream event {:?}: {e}",
                ev.data.chars().take(120).collect::<String>()
            ))
        })?;
        self.started = true;
        match &*data.kind {
            "response.output_text.delta" | "response.refusal.delta" => {
                if let Some(t) = data.delta.filter(|t| !t.is_empty()) {
                    self.flush(out);
                    out.push(Event::text(t.into_owned()));
                }
            }
            "response.reasoning_summary_text.delta" => self.summary_delta(data, out),
            "response.function_call_arguments.delta" => {
                let id = data.item_id.unwrap_or_default();
                let delta = data.delta.unwrap_or_default();
                if let Some(call) = self.calls.iter_mut().find(|c| c.item_id == *id) {
                    if !delta.is_empty() {
                        call.args.push_str(&delta);
                        out.push(Event::tool_delta(call.call_id.clone(), delta.into_owned()));
                    }
                }
            }
            "response.output_item.added" => {
                if let Some(item) = &data.item {
                    self.item_added(item, out);
                }
            }
            "response.output_item.done" => {
                if let Some(item) = &data.item {
                    self.item_done(item, out)?;
                }
            }
            kind @ ("response.completed" | "response.incomplete" | "response.failed") => {
                let response = data.response.unwrap_or(Value::Null);
                return self.terminal(kind, &response, out).map(Some);
            }
            "error" => {
                let err = match data.error {
                    Some(e) if e.is_object() => e,
                    _ => json!({"code": data.code, "message": data.message}),
                };
                return Err(api_error(&err));
            }
            // Lifecycle and `.done` events repeat what the deltas said;
            // event types added later are ignored.
            _ => {}
        }
        Ok(None)
    }

    fn eof(&mut self, _out: &mut Vec<Event>) -> Result<Completion, ApiError> {
        Err(ApiError {
            message: if self.started {
                "the stream ended before response.completed (cut off)".into()
            } else {
                "the response ended without any stream event".into()
            },
            retryable: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{StreamEvent as Wire, ThinkingLevel};

    /// Named like the API names its events: by their `type`.
    fn feed(d: &mut ResponsesDecoder, data: Value) -> (Vec<Event>, Option<Completion>) {
        super::super::api::feed(
            d,
            data["type"].as_str().unwrap_or_default(),
            &data.to_string(),
        )
    }

    fn history(items: &[Value]) -> Vec<Arc<Message>> {
        items
            .iter()
            .map(|v| Arc::new(serde_json::from_value(v.clone()).unwrap()))
            .collect()
    }

    #[test]
    fn a_tool_call_with_reasoning_streams_and_completes() {
        let mut d = ResponsesDecoder::new("openai/o3");
        feed(&mut d, json!({"type":"response.created","response":{}}));
        feed(
            &mut d,
            json!({"type":"response.output_item.added","item":{"type":"reasoning","id":"rs_1","summary":[]}}),
        );
        let (out, _) = feed(
            &mut d,
            json!({"type":"response.reasoning_summary_text.delta","item_id":"rs_1","summary_index":0,"delta":"a"}),
        );
        assert!(matches!(&out[0], Event::Delta(Wire::ThinkingDelta { delta }) if delta == "a"));
        let (out, _) = feed(
            &mut d,
            json!({"type":"response.reasoning_summary_text.delta","item_id":"rs_1","summary_index":1,"delta":"b"}),
        );
        assert_eq!(out.len(), 2, "a blank line between summary parts");
        let (out, _) = feed(
            &mut d,
            json!({"type":"response.output_item.done","item":{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"a"}],"encrypted_content":"ENC"}}),
        );
        assert!(out.is_empty(), "held until something is shown");
        let (out, _) = feed(
            &mut d,
            json!({"type":"response.output_item.added","item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"read","arguments":""}}),
        );
        assert!(
            matches!(&out[0], Event::Reasoning(r) if r.encrypted_content == "ENC" && r.model == "openai/o3")
        );
        assert!(matches!(&out[1], Event::Delta(Wire::ToolcallStart { .. })));
        for piece in ["{\"pa", "th\":\"a\"}"] {
            let (out, _) = feed(
                &mut d,
                json!({"type":"response.function_call_arguments.delta","item_id":"fc_1","delta":piece}),
            );
            assert!(matches!(&out[0], Event::Delta(Wire::ToolcallDelta { .. })));
        }
        let (out, _) = feed(
            &mut d,
            json!({"type":"response.output_item.done","item":{"type":"function_call","id":"fc_1","call_id":"call_1","name":"read","arguments":"{\"path\":\"a\"}"}}),
        );
        assert!(
            matches!(&out[0], Event::Delta(Wire::ToolcallEnd { tool_call_id, input, .. }) if tool_call_id == "call_1" && input == &json!({"path":"a"}))
        );
        let (_, done) = feed(
            &mut d,
            json!({"type":"response.completed","response":{"status":"completed","usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":60},"output_tokens":30,"output_tokens_details":{"reasoning_tokens":20}}}}),
        );
        let done = done.unwrap();
        assert_eq!(done.stop_reason.as_deref(), Some("tool_use"));
        let u = done.usage.unwrap();
        assert_eq!(
            (u.input_tokens, u.cache_read_input_tokens, u.output_tokens),
            (40, 60, 30)
        );
    }

    #[test]
    fn incomplete_failed_and_error_events() {
        let mut d = ResponsesDecoder::new("openai/o3");
        let (_, done) = feed(
            &mut d,
            json!({"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}}),
        );
        assert_eq!(done.unwrap().stop_reason.as_deref(), Some("max_tokens"));
        let mut d = ResponsesDecoder::new("openai/o3");
        let failed = json!({"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"boom"}}});
        let e = d
            .event(
                &sse::Event {
                    event: String::new(),
                    data: failed.to_string(),
                },
                &mut Vec::new(),
            )
            .unwrap_err();
        assert_eq!(e.message, "server_error: boom");
        assert!(e.retryable);
        let error = json!({"type":"error","code":"context_length_exceeded","message":"too long","param":null});
        let e = d
            .event(
                &sse::Event {
                    event: String::new(),
                    data: error.to_string(),
                },
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(crate::compaction::is_overflow(&e.message), "{}", e.message);
        assert!(!e.retryable);
        assert!(ResponsesDecoder::new("m").eof(&mut Vec::new()).is_err());
    }

    #[test]
    fn history_becomes_input_items_with_this_models_reasoning_only() {
        let reasoning = |model: &str, enc: &str| json!({"type":"thinking","thinking":"t","reasoning":{"model":model,"encrypted_content":enc,"summary":[]}});
        let h = history(&[
            json!({"role":"user","content":"go"}),
            json!({"role":"assistant","content":[reasoning("openai/o3","E1"),{"type":"text","text":"ok"},{"type":"tool_use","id":"c1","name":"ls","input":{}}]}),
            json!({"role":"user","content":[{"type":"tool_result","tool_use_id":"c1","content":[{"type":"text","text":"a.png"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"QUJD"}}]}]}),
            json!({"role":"assistant","content":[reasoning("openai/gpt-5.5","E2"),{"type":"text","text":"done"}]}),
        ]);
        let items = input(&h, "openai/o3");
        let kinds: Vec<&str> = items.iter().filter_map(|i| i["type"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "message",
                "reasoning",
                "message",
                "function_call",
                "function_call_output",
                "message"
            ]
        );
        assert_eq!(
            items[1],
            json!({"type":"reasoning","summary":[],"encrypted_content":"E1"})
        );
        assert_eq!(items[3]["arguments"], "{}");
        assert_eq!(
            items[4]["output"][1],
            json!({"type":"input_image","image_url":"data:image/png;base64,QUJD","detail":"auto"})
        );
        assert_eq!(items[5]["content"][0]["type"], "output_text");
    }

    #[test]
    fn body_fields() {
        let h = history(&[json!({"role":"user","content":"hi"})]);
        let tools = [json!({"name":"ls","description":"list","input_schema":{"type":"object"}})];
        let req = Request {
            history: &h,
            system_prompt: Some("sys"),
            tools: &tools,
            max_tokens: Some(100),
            temperature: Some(0.5),
            thinking: ThinkingLevel::High,
            session_id: Some("s1"),
        };
        let options = RequestOptions {
            model_id: "openai/o3".into(),
            reasoning: true,
            max_output_tokens: req.max_tokens,
        };
        let b = body("o3", &options, &req);
        assert_eq!(b["store"], false);
        assert_eq!(b["instructions"], "sys");
        assert_eq!(b["include"], json!(["reasoning.encrypted_content"]));
        assert_eq!(b["reasoning"], json!({"effort":"high","summary":"auto"}));
        assert_eq!(b["prompt_cache_key"], "s1");
        assert_eq!(b["max_output_tokens"], 100);
        assert_eq!(b["tools"][0]["strict"], false);
        assert!(b.get("temperature").is_none());
        let plain = RequestOptions {
            reasoning: false,
            ..options
        };
        let b = body("gpt-4.1", &plain, &req);
        assert!(b.get("include").is_none() && b.get("reasoning").is_none());
        assert_eq!(b["temperature"], 0.5);
    }
}
