//! The Gemini request body and stream decoder, without a server.

use super::*;
use crate::message::AssistantBuilder;
use crate::protocol::StreamEvent as Wire;

fn feed(d: &mut GeminiDecoder, data: Value) -> Vec<Event> {
    let (out, done) = super::super::api::feed(d, "", &data.to_string());
    assert!(done.is_none(), "the end is the end of the body");
    out
}

fn history(items: &[Value]) -> Vec<Arc<Message>> {
    items
        .iter()
        .map(|v| Arc::new(serde_json::from_value(v.clone()).unwrap()))
        .collect()
}

/// Builds the assistant message the engine would from decoded events.
fn build(events: &[Event]) -> Message {
    let mut b = AssistantBuilder::default();
    for e in events {
        match e {
            Event::Delta(Wire::TextDelta { delta }) => b.text(delta),
            Event::Delta(Wire::ThinkingDelta { delta }) => b.thinking(delta),
            Event::Delta(Wire::ToolcallEnd {
                tool_call_id,
                name,
                input,
            }) => b.block(Block::ToolUse {
                id: tool_call_id.clone(),
                name: name.clone(),
                input: input.clone(),
            }),
            Event::Reasoning(item) => b.reasoning(item.clone()),
            _ => {}
        }
    }
    b.build()
}

#[test]
fn thoughts_text_and_a_call_stream_and_signatures_go_back_on_their_parts() {
    let mut d = GeminiDecoder::new("google/gemini-2.5-pro");
    let mut events = feed(
        &mut d,
        json!({"candidates":[{"content":{"role":"model","parts":[{"text":"think","thought":true}]},"index":0}]}),
    );
    assert!(matches!(&events[0], Event::Delta(Wire::ThinkingDelta { delta }) if delta == "think"));
    events.extend(feed(
        &mut d,
        json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Let me look."}]},"index":0}]}),
    ));
    let call = feed(
        &mut d,
        json!({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"read","args":{"path":"a"}},"thoughtSignature":"SIG1"}]},"finishReason":"STOP","index":0}],
               "usageMetadata":{"promptTokenCount":100,"cachedContentTokenCount":60,"candidatesTokenCount":10,"thoughtsTokenCount":20,"totalTokenCount":130}}),
    );
    let Event::Delta(Wire::ToolcallEnd {
        tool_call_id,
        input,
        ..
    }) = &call[2]
    else {
        panic!("{call:?}")
    };
    assert!(tool_call_id.starts_with(SYNTHETIC_ID_PREFIX));
    assert_eq!(input, &json!({"path":"a"}));
    assert!(matches!(&call[3], Event::Reasoning(r) if r.encrypted_content == "SIG1"));
    let id = tool_call_id.clone();
    events.extend(call);
    let mut tail = Vec::new();
    let done = d.eof(&mut tail).unwrap();
    assert_eq!(done.stop_reason.as_deref(), Some("tool_use"));
    let u = done.usage.unwrap();
    assert_eq!(
        (u.input_tokens, u.cache_read_input_tokens, u.output_tokens),
        (40, 60, 30)
    );

    // The next request: the call goes back with its signature and no id
    // (it had none), the result with the call's name.
    let assistant = serde_json::to_value(build(&events)).unwrap();
    let h = history(&[
        json!({"role":"user","content":"go"}),
        assistant,
        json!({"role":"user","content":[{"type":"tool_result","tool_use_id":id,"content":"file a"}]}),
    ]);
    let c = contents(&h, "google/gemini-2.5-pro");
    assert_eq!(c[1]["role"], "model");
    assert_eq!(
        c[1]["parts"],
        json!([{"text":"Let me look."},{"functionCall":{"name":"read","args":{"path":"a"}},"thoughtSignature":"SIG1"}])
    );
    assert_eq!(
        c[2]["parts"],
        json!([{"functionResponse":{"name":"read","response":{"output":"file a"}}}])
    );
    // Another model does not get the signature.
    let c = contents(&h, "google/gemini-2.5-flash");
    assert!(c[1]["parts"][1].get("thoughtSignature").is_none());
}

#[test]
fn ids_from_the_api_are_kept_and_sent_back() {
    let mut d = GeminiDecoder::new("google/gemini-3-pro-preview");
    let out = feed(
        &mut d,
        json!({"candidates":[{"content":{"parts":[{"functionCall":{"id":"fc-1","name":"ls","args":{}}}]}}]}),
    );
    assert!(
        matches!(&out[0], Event::Delta(Wire::ToolcallStart { tool_call_id, .. }) if tool_call_id == "fc-1")
    );
    let h = history(&[
        json!({"role":"assistant","content":[{"type":"tool_use","id":"fc-1","name":"ls","input":{}}]}),
        json!({"role":"user","content":[{"type":"tool_result","tool_use_id":"fc-1","is_error":true,"content":[{"type":"text","text":"a.png"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"QUJD"}}]}]}),
    ]);
    let c = contents(&h, "google/gemini-3-pro-preview");
    assert_eq!(c[0]["parts"][0]["functionCall"]["id"], "fc-1");
    assert_eq!(
        c[1]["parts"],
        json!([
            {"functionResponse":{"name":"ls","id":"fc-1","response":{"error":"a.png"}}},
            {"inlineData":{"mimeType":"image/png","data":"QUJD"}}
        ])
    );
}

#[test]
fn neighbours_of_one_role_are_one_turn() {
    let h = history(&[
        json!({"role":"user","content":"first"}),
        json!({"role":"assistant","content":[{"type":"thinking","thinking":"only thought"}]}),
        json!({"role":"user","content":"second"}),
    ]);
    assert_eq!(
        contents(&h, "google/gemini-2.5-pro"),
        json!([{"role":"user","parts":[{"text":"first"},{"text":"second"}]}])
            .as_array()
            .unwrap()
            .clone()
    );
}

#[test]
fn finish_reasons_errors_and_cut_streams() {
    let finish = |reason: &str| {
        let mut d = GeminiDecoder::new("m");
        feed(
            &mut d,
            json!({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":reason}]}),
        );
        d.eof(&mut Vec::new())
    };
    assert_eq!(
        finish("MAX_TOKENS").unwrap().stop_reason.as_deref(),
        Some("max_tokens")
    );
    assert_eq!(
        finish("SAFETY").unwrap().stop_reason.as_deref(),
        Some("refusal")
    );
    assert_eq!(
        finish("STOP").unwrap().stop_reason.as_deref(),
        Some("end_turn")
    );
    assert!(finish("MALFORMED_FUNCTION_CALL").unwrap_err().retryable);

    let mut d = GeminiDecoder::new("m");
    feed(
        &mut d,
        json!({"candidates":[{"content":{"parts":[{"text":"x"}]}}]}),
    );
    assert!(d.eof(&mut Vec::new()).unwrap_err().retryable, "cut off");

    let e = GeminiDecoder::new("m")
        .event(
            &sse::Event {
                event: String::new(),
                data: json!({"error":{"code":400,"message":"The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}).to_string(),
            },
            &mut Vec::new(),
        )
        .unwrap_err();
    assert!(crate::compaction::is_overflow(&e.message), "{}", e.message);
    assert!(!e.retryable);
}

#[test]
fn body_fields_and_schemas() {
    let h = history(&[json!({"role":"user","content":"hi"})]);
    let tools = [
        json!({"name":"read","description":"read a file","input_schema":{
            "$schema":"http://json-schema.org/draft-07/schema#","type":"object","additionalProperties":false,
            "properties":{"path":{"type":"string"},"limit":{"type":["integer","null"]},
                          "opts":{"type":"object","additionalProperties":{"type":"string"},"properties":{"a":{"type":"string"}}}},
            "required":["path"]}}),
        json!({"name":"ls","description":"list","input_schema":{"type":"object","properties":{}}}),
    ];
    let req = Request {
        history: &h,
        system_prompt: Some("sys"),
        tools: &tools,
        max_tokens: Some(100),
        temperature: None,
        thinking: ThinkingLevel::High,
        session_id: Some("s1"),
    };
    let options = RequestOptions {
        model_id: "google/gemini-2.5-flash".into(),
        reasoning: true,
        max_output_tokens: req.max_tokens,
    };
    let b = body("gemini-2.5-flash", &options, &req);
    assert_eq!(b["systemInstruction"], json!({"parts":[{"text":"sys"}]}));
    assert_eq!(
        b["contents"],
        json!([{"role":"user","parts":[{"text":"hi"}]}])
    );
    let decl = &b["tools"][0]["functionDeclarations"];
    assert_eq!(
        decl[0]["parameters"],
        json!({"type":"object","properties":{"path":{"type":"string"},"limit":{"type":"integer","nullable":true},
               "opts":{"type":"object","properties":{"a":{"type":"string"}}}},"required":["path"]})
    );
    assert!(decl[1].get("parameters").is_none());
    assert_eq!(
        b["generationConfig"],
        json!({"maxOutputTokens":100,"thinkingConfig":{"thinkingBudget":24_000,"includeThoughts":true}})
    );
    let b = body("gemini-3-pro-preview", &options, &req);
    assert_eq!(
        b["generationConfig"]["thinkingConfig"],
        json!({"thinkingLevel":"high","includeThoughts":true})
    );
    assert_eq!(
        Gemini.path_for("models/gemini-2.5-pro"),
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
}
