//! Google's Gemini API (`streamGenerateContent`): request body and stream
//! decoding.
//!
//! The request is `contents` (turns of `user` and `model` role, each a list
//! of parts: `text`, `inlineData`, `functionCall`, `functionResponse`),
//! `systemInstruction`, `tools: [{functionDeclarations}]` and
//! `generationConfig` (with `thinkingConfig` for a thinking level).
//!
//! The stream (`?alt=sse`) is a series of `data:` events, each a whole
//! `GenerateContentResponse` holding the next parts of its one candidate;
//! the last carries `finishReason` and the final `usageMetadata`. There is
//! no terminal event: the body ends. A body that ends before any
//! `finishReason` was cut.
//!
//! Thought signatures: the model signs parts (a function call, the last
//! text, sometimes a thought) with an opaque `thoughtSignature` that must
//! come back on the same part of the same turn in the next request —
//! Gemini 3 refuses a function call sent back without its signature. A
//! signature is kept in the message as a reasoning item right after the
//! block it signed (see [`Signed`]), and put back on that part.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use reqwest::header::{HeaderMap, HeaderName};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::api::{Api, ApiError, Decoder};
use super::endpoints::{Endpoint, RequestOptions};
use super::failure::secret_header;
use super::sse;
use crate::message::{Block, Content, Message, ReasoningItem, Role, Usage};
use crate::protocol::ThinkingLevel;
use crate::provider::{Completion, Event, Request};

/// Tool call ids this host made up for calls the API sent without one
/// (older models); they are not sent back as the call's `id`.
const SYNTHETIC_ID_PREFIX: &str = "rpc-gemini-";

/// The Gemini API.
pub(crate) struct Gemini;

impl Api for Gemini {
    fn path(&self) -> &'static str {
        // For messages about a wrong base URL; the request uses `path_for`.
        "/v1beta/models/{model}:streamGenerateContent?alt=sse"
    }

    fn path_for(&self, model: &str) -> String {
        // The API names models `models/<id>`; either spelling is taken.
        let id = model.strip_prefix("models/").unwrap_or(model);
        format!("/v1beta/models/{id}:streamGenerateContent?alt=sse")
    }

    fn headers(&self, key: Option<&str>, headers: &mut HeaderMap) -> anyhow::Result<()> {
        // In a header, never in the URL (`?key=`), where it would reach
        // logs and error messages.
        if let Some(k) = key {
            headers.insert(HeaderName::from_static("x-goog-api-key"), secret_header(k)?);
        }
        Ok(())
    }

    fn body(&self, endpoint: &Endpoint, model: &str, req: &Request<'_>) -> Value {
        body(model, &endpoint.request_options(model, req.max_tokens), req)
    }

    fn decoder(&self, model: &str) -> Box<dyn Decoder> {
        Box::new(GeminiDecoder::new(model))
    }
}

/// Which part a kept signature belongs to, stored as the reasoning item's
/// one summary entry (`{"gemini_signature": "<on>"}`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Signed {
    /// The thought part whose text is the thinking block holding it.
    Thought,
    /// The text part just before it.
    Text,
    /// The function call just before it.
    FunctionCall,
}

impl Signed {
    fn as_str(self) -> &'static str {
        match self {
            Signed::Thought => "thought",
            Signed::Text => "text",
            Signed::FunctionCall => "functionCall",
        }
    }

    fn of(item: &ReasoningItem) -> Option<Signed> {
        match item.summary.first()?["gemini_signature"].as_str()? {
            "thought" => Some(Signed::Thought),
            "text" => Some(Signed::Text),
            "functionCall" => Some(Signed::FunctionCall),
            _ => None,
        }
    }
}

/// The request body for `model`.
pub(crate) fn body(model: &str, options: &RequestOptions, req: &Request<'_>) -> Value {
    let mut body = Map::new();
    if let Some(system) = req.system_prompt.filter(|s| !s.is_empty()) {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": system}]}),
        );
    }
    body.insert(
        "contents".into(),
        Value::Array(contents(req.history, &options.model_id)),
    );
    if !req.tools.is_empty() {
        let declarations: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let schema = t.get("input_schema").or(t.get("parameters"));
                let mut d = json!({"name": t["name"], "description": t["description"]});
                if let Some(s) = schema.map(openapi_schema).filter(has_properties) {
                    d["parameters"] = s;
                }
                d
            })
            .collect();
        body.insert(
            "tools".into(),
            json!([{ "functionDeclarations": declarations }]),
        );
    }
    let mut config = Map::new();
    if let Some(n) = options.max_output_tokens {
        config.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        config.insert("temperature".into(), json!(t));
    }
    // A thinking model takes a `thinkingConfig`.
    if options.reasoning {
        if let Some(t) = thinking_config(model, req.thinking) {
            config.insert("thinkingConfig".into(), t);
        }
    }
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Value::Object(body)
}

/// `thinkingConfig` for a level: Gemini 3 takes a `thinkingLevel` (low or
/// high), 2.5 a token `thinkingBudget` (flash at most 24,576). Off sends
/// nothing: the model's own default, as for the other APIs.
fn thinking_config(model: &str, level: ThinkingLevel) -> Option<Value> {
    let budget = level.anthropic_budget()?;
    let id = model.strip_prefix("models/").unwrap_or(model);
    if id.starts_with("gemini-2") {
        let cap = if id.contains("pro") { 32_768 } else { 24_576 };
        return Some(json!({"thinkingBudget": budget.min(cap), "includeThoughts": true}));
    }
    let named = match level {
        ThinkingLevel::Off | ThinkingLevel::Minimal | ThinkingLevel::Low => "low",
        ThinkingLevel::Medium | ThinkingLevel::High | ThinkingLevel::Xhigh => "high",
    };
    Some(json!({"thinkingLevel": named, "includeThoughts": true}))
}

/// A JSON Schema as the OpenAPI 3.0 subset `parameters` takes: keywords it
/// does not know (`additionalProperties`, `$schema`, `$ref`, …) make the
/// whole request fail, so only the known ones are kept.
fn openapi_schema(schema: &Value) -> Value {
    const KEPT: &[&str] = &[
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    ];
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        if !KEPT.contains(&k.as_str()) {
            continue;
        }
        let v = match (k.as_str(), v) {
            ("properties", Value::Object(props)) => Value::Object(
                props
                    .iter()
                    .map(|(name, s)| (name.clone(), openapi_schema(s)))
                    .collect(),
            ),
            ("items", s) => openapi_schema(s),
            ("anyOf", Value::Array(options)) => {
                Value::Array(options.iter().map(openapi_schema).collect())
            }
            // `"type": ["string", "null"]`: one type, nullable.
            ("type", Value::Array(types)) => {
                if types.iter().any(|t| t == "null") {
                    out.insert("nullable".into(), json!(true));
                }
                types
                    .iter()
                    .find(|t| *t != "null")
                    .cloned()
                    .unwrap_or(json!("string"))
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// An object schema with no properties is sent as no `parameters` at all:
/// the API refuses an `OBJECT` without properties.
fn has_properties(schema: &Value) -> bool {
    schema["type"] != "object"
        || schema["properties"]
            .as_object()
            .is_some_and(|p| !p.is_empty())
}

/// History → `contents`. A tool result needs its call's name (a
/// `functionResponse` is matched by name), looked up from the calls.
/// Messages that come to no parts (thinking only) are left out.
fn contents(history: &[Arc<Message>], model_id: &str) -> Vec<Value> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut out: Vec<Value> = Vec::new();
    for m in history {
        let parts = match &m.content {
            Content::Text(t) if t.is_empty() => continue,
            Content::Text(t) => vec![json!({"text": t})],
            Content::Blocks(blocks) => match m.role {
                Role::User => user_parts(blocks, &names),
                Role::Assistant => {
                    for b in blocks {
                        if let Block::ToolUse { id, name, .. } = b {
                            names.insert(id, name);
                        }
                    }
                    model_parts(blocks, model_id)
                }
            },
        };
        if parts.is_empty() {
            continue;
        }
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        // Neighbours of one role (a prompt after an aborted answer) are one
        // turn: the API expects the roles to alternate.
        match out.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(list) = last["parts"].as_array_mut() {
                    list.extend(parts);
                }
            }
            _ => out.push(json!({"role": role, "parts": parts})),
        }
    }
    out
}

/// An Anthropic base64 image source as an `inlineData` part.
fn inline_data(source: &Value) -> Value {
    json!({"inlineData": {
        "mimeType": source["media_type"].as_str().unwrap_or("image/png"),
        "data": source["data"].as_str().unwrap_or_default(),
    }})
}

/// A user message: function responses first (they answer the calls of the
/// turn before), then the images of tool results, then its own text and
/// images.
fn user_parts(blocks: &[Block], names: &HashMap<&str, &str>) -> Vec<Value> {
    let mut responses = Vec::new();
    let mut images = Vec::new();
    let mut own = Vec::new();
    for b in blocks {
        match b {
            Block::Text { text } if !text.is_empty() => own.push(json!({"text": text})),
            Block::Image { source } => own.push(inline_data(source)),
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let (text, result_images) = tool_output(content);
                let key = if *is_error { "error" } else { "output" };
                let mut response = json!({
                    "name": names.get(tool_use_id.as_str()).copied().unwrap_or("unknown"),
                    "response": { key: text },
                });
                if !tool_use_id.starts_with(SYNTHETIC_ID_PREFIX) {
                    response["id"] = json!(tool_use_id);
                }
                responses.push(json!({ "functionResponse": response }));
                images.extend(result_images);
            }
            _ => {}
        }
    }
    responses.extend(images);
    responses.extend(own);
    responses
}

/// A tool result's text, and its images as `inlineData` parts (sent after
/// the responses in the same turn: every Gemini model reads them there).
fn tool_output(content: &Value) -> (String, Vec<Value>) {
    match content {
        Value::String(s) => (s.clone(), Vec::new()),
        Value::Array(items) => {
            let text = items
                .iter()
                .filter_map(|i| i["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n");
            let images = items
                .iter()
                .filter(|i| i["type"] == "image")
                .map(|i| inline_data(&i["source"]))
                .collect();
            (text, images)
        }
        other => (other.to_string(), Vec::new()),
    }
}

/// A model message: text and function calls in order, each signature back
/// on the part it signed. Thought text is sent back only where it carried
/// a signature: the API does not need the rest.
fn model_parts(blocks: &[Block], model_id: &str) -> Vec<Value> {
    let mut parts: Vec<Value> = Vec::new();
    for b in blocks {
        match b {
            Block::Text { text } if !text.is_empty() => parts.push(json!({"text": text})),
            Block::ToolUse { id, name, input } => {
                let mut call = json!({"name": name, "args": input});
                if !id.starts_with(SYNTHETIC_ID_PREFIX) {
                    call["id"] = json!(id);
                }
                parts.push(json!({ "functionCall": call }));
            }
            Block::Thinking {
                thinking,
                reasoning: Some(item),
                ..
            } if item.model == model_id => {
                let sig = json!(item.encrypted_content);
                match Signed::of(item) {
                    Some(Signed::Thought) => parts
                        .push(json!({"text": thinking, "thought": true, "thoughtSignature": sig})),
                    Some(on) => {
                        let key = match on {
                            Signed::FunctionCall => "functionCall",
                            _ => "text",
                        };
                        if let Some(last) = parts.last_mut().filter(|p| p.get(key).is_some()) {
                            last["thoughtSignature"] = sig;
                        }
                    }
                    None => {}
                }
            }
            _ => {}
        }
    }
    parts
}

/// One streamed `GenerateContentResponse`, read with borrowed text: the
/// hot chunks (text deltas) copy their text once, into the round event.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    #[serde(default, borrow)]
    candidates: Vec<Candidate<'a>>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    prompt_feedback: Option<Value>,
    /// An error reported inside the stream.
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(default, borrow)]
    content: Option<CandidateContent<'a>>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    finish_message: Option<String>,
}

#[derive(Deserialize)]
struct CandidateContent<'a> {
    #[serde(default, borrow)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default)]
    thought: bool,
    #[serde(default)]
    thought_signature: Option<String>,
    #[serde(default)]
    function_call: Option<FunctionCall>,
}

#[derive(Deserialize)]
struct FunctionCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
}

impl UsageMetadata {
    /// In the host's terms: `input_tokens` is the uncached part of the
    /// prompt (the API's count includes the cached tokens), the output
    /// includes the thoughts (billed as output).
    fn usage(self) -> Usage {
        let prompt = self.prompt_token_count + self.tool_use_prompt_token_count;
        Usage {
            input_tokens: prompt.saturating_sub(self.cached_content_token_count),
            output_tokens: self.candidates_token_count + self.thoughts_token_count,
            cache_read_input_tokens: self.cached_content_token_count,
            cache_creation_input_tokens: 0,
        }
    }
}

pub(crate) struct GeminiDecoder {
    /// `provider/model`, stored with each signature.
    model: String,
    started: bool,
    /// A function call arrived: the stop reason is `tool_use`.
    called: bool,
    finish: Option<String>,
    usage: Option<UsageMetadata>,
}

impl GeminiDecoder {
    pub(crate) fn new(model: &str) -> Self {
        GeminiDecoder {
            model: model.to_owned(),
            started: false,
            called: false,
            finish: None,
            usage: None,
        }
    }

    fn signature(&self, sig: String, on: Signed) -> Event {
        Event::Reasoning(ReasoningItem {
            model: self.model.clone(),
            encrypted_content: sig,
            summary: vec![json!({"gemini_signature": on.as_str()})],
        })
    }

    fn part(&mut self, part: Part<'_>, out: &mut Vec<Event>) {
        if let Some(call) = part.function_call {
            let id = match call.id.filter(|i| !i.is_empty()) {
                Some(id) => id,
                // Older models send no id: one is made, unique in the
                // session, and kept with the call and its result.
                None => format!("{SYNTHETIC_ID_PREFIX}{}", uuid::Uuid::now_v7().simple()),
            };
            let args = call.args.unwrap_or_else(|| json!({}));
            out.push(Event::tool_start(id.clone(), call.name.clone()));
            out.push(Event::tool_delta(id.clone(), args.to_string()));
            out.push(Event::tool_end(id, call.name, args));
            self.called = true;
            if let Some(sig) = part.thought_signature {
                out.push(self.signature(sig, Signed::FunctionCall));
            }
            return;
        }
        let text = part.text.filter(|t| !t.is_empty());
        let on = if part.thought {
            Signed::Thought
        } else {
            Signed::Text
        };
        match text {
            Some(t) if part.thought => out.push(Event::thinking(t.into_owned())),
            Some(t) => out.push(Event::text(t.into_owned())),
            None => {}
        }
        if let Some(sig) = part.thought_signature.filter(|s| !s.is_empty()) {
            out.push(self.signature(sig, on));
        }
    }

    /// The stop reason for a finished stream.
    fn stop_reason(&self, finish: &str) -> Result<String, ApiError> {
        Ok(match finish {
            "STOP" | "FINISH_REASON_UNSPECIFIED" if self.called => "tool_use".into(),
            "STOP" | "FINISH_REASON_UNSPECIFIED" => "end_turn".into(),
            "MAX_TOKENS" => "max_tokens".into(),
            "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
            | "IMAGE_SAFETY" | "LANGUAGE" => "refusal".into(),
            "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" => {
                return Err(ApiError {
                    message: format!("the model made an invalid function call ({finish})"),
                    // Nothing usable came; a new attempt usually succeeds.
                    retryable: true,
                });
            }
            other => other.to_lowercase(),
        })
    }
}

/// An error object (`{code, message, status}`) as the turn's error. The
/// status is kept in the message (`RESOURCE_EXHAUSTED: …`); an overflow
/// is recognised by its wording ("exceeds the maximum number of tokens").
fn api_error(err: &Value) -> ApiError {
    let message = err["message"].as_str().unwrap_or("no message");
    let status = err["status"].as_str().unwrap_or("ERROR");
    ApiError {
        message: format!("{status}: {message}"),
        retryable: matches!(
            status,
            "RESOURCE_EXHAUSTED" | "UNAVAILABLE" | "INTERNAL" | "DEADLINE_EXCEEDED"
        ),
    }
}

impl Decoder for GeminiDecoder {
    fn event(
        &mut self,
        ev: &sse::Event,
        out: &mut Vec<Event>,
    ) -> Result<Option<Completion>, ApiError> {
        let chunk: Chunk<'_> = serde_json::from_str(&ev.data).map_err(|e| {
            ApiError::fatal(format!(
                "malformed stream event {:?}: {e}",
                ev.data.chars().take(120).collect::<String>()
            ))
        })?;
        self.started = true;
        if let Some(err) = chunk.error {
            return Err(api_error(&err));
        }
        if chunk.usage_metadata.is_some() {
            // Each chunk's counts are the totals so far: the last one wins.
            self.usage = chunk.usage_metadata;
        }
        if let Some(reason) = chunk
            .prompt_feedback
            .as_ref()
            .and_then(|f| f["blockReason"].as_str())
        {
            return Err(ApiError::fatal(format!(
                "the prompt was blocked ({reason})"
            )));
        }
        // One candidate is asked for (`candidateCount` defaults to 1).
        if let Some(candidate) = chunk.candidates.into_iter().next() {
            for part in candidate.content.into_iter().flat_map(|c| c.parts) {
                self.part(part, out);
            }
            if let Some(finish) = candidate.finish_reason {
                if let Some(m) = candidate.finish_message {
                    tracing::debug!("gemini finish {finish}: {m}");
                }
                self.finish = Some(finish);
            }
        }
        Ok(None)
    }

    fn eof(&mut self, out: &mut Vec<Event>) -> Result<Completion, ApiError> {
        let Some(finish) = self.finish.clone() else {
            return Err(ApiError {
                message: if self.started {
                    "the stream ended before a finishReason (cut off)".into()
                } else {
                    "the response ended without any stream event".into()
                },
                retryable: true,
            });
        };
        let stop_reason = self.stop_reason(&finish)?;
        let usage = self.usage.map(UsageMetadata::usage);
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

#[cfg(test)]
mod tests;
