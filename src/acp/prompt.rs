//! `session/prompt` in native terms: the ACP content blocks as a native
//! `prompt` (text → the message; images, embedded resources and resource
//! links → attachments), and the native answer as a `stopReason` or a
//! JSON-RPC error.

use serde_json::{json, Value};

use super::native_error;
use super::rpc::{RpcError, RpcResult};

/// The native `prompt` command for ACP prompt content (as JSON).
pub fn command(blocks: &[Value]) -> Value {
    let mut message: Vec<&str> = Vec::new();
    let mut attachments: Vec<Value> = Vec::new();
    for block in blocks {
        let field = |k: &str| block.get(k).and_then(Value::as_str);
        match field("type").unwrap_or("") {
            "text" => message.push(field("text").unwrap_or("")),
            "image" => {
                if let (Some(data), Some(media)) = (field("data"), field("mimeType")) {
                    attachments.push(json!({"type": "image", "media_type": media, "data": data}));
                }
            }
            "resource" => {
                let resource = block.get("resource").unwrap_or(&Value::Null);
                let uri = resource.get("uri").and_then(Value::as_str).unwrap_or("");
                match resource.get("text").and_then(Value::as_str) {
                    Some(text) => attachments.push(json!({
                        "type": "text",
                        "text": format!("<resource uri=\"{uri}\">\n{text}\n</resource>"),
                    })),
                    None => attachments.push(json!({
                        "type": "text",
                        "text": format!("[binary resource {uri} attached; its content is not shown]"),
                    })),
                }
            }
            "resource_link" => {
                let uri = field("uri").unwrap_or("");
                let name = field("name").unwrap_or(uri);
                attachments.push(json!({
                    "type": "text",
                    "text": format!("[resource link: {name} <{uri}>]"),
                }));
            }
            other => tracing::warn!("prompt content of type {other:?} skipped"),
        }
    }
    let mut command = json!({"type": "prompt", "message": message.join("\n\n")});
    if !attachments.is_empty() {
        command["attachments"] = Value::Array(attachments);
    }
    command
}

/// The `session/prompt` result for the native answer frame.
pub fn outcome(answer: &Value) -> RpcResult {
    let field = |k: &str| answer.get(k).and_then(Value::as_str).unwrap_or("");
    if field("type") == "error" {
        if field("code") == "busy" {
            return Err(RpcError::new(
                -32000,
                "a prompt is already running in this session; send session/cancel first",
            )
            .with_data(json!({"code": "busy"})));
        }
        return Err(native_error(answer));
    }
    let flag = |k: &str| answer.get(k).and_then(Value::as_bool).unwrap_or(false);
    let stop = if flag("cancelled") || field("stop_reason") == "aborted" {
        "cancelled"
    } else if !flag("ok") {
        // The one failure ACP has a stop reason for: the --max-rounds limit
        // (the engine's message names the flag).
        if field("error").contains("--max-rounds") {
            "max_turn_requests"
        } else {
            return Err(
                RpcError::internal(field("error")).with_data(json!({"code": field("code")}))
            );
        }
    } else {
        match field("stop_reason") {
            "max_tokens" => "max_tokens",
            "refusal" => "refusal",
            _ => "end_turn",
        }
    };
    Ok(json!({"stopReason": stop}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_images_and_resources_become_a_native_prompt() {
        let c = command(&[
            json!({"type":"text","text":"look"}),
            json!({"type":"image","data":"AAA","mimeType":"image/png"}),
            json!({"type":"resource","resource":{"uri":"file:///w/a.rs","text":"fn a() {}"}}),
            json!({"type":"resource_link","uri":"file:///w/b.rs","name":"b.rs"}),
        ]);
        assert_eq!(c["message"], "look");
        assert_eq!(c["attachments"][0]["media_type"], "image/png");
        assert!(c["attachments"][1]["text"]
            .as_str()
            .unwrap()
            .contains("fn a() {}"));
        assert!(c["attachments"][2]["text"]
            .as_str()
            .unwrap()
            .contains("file:///w/b.rs"));
    }

    #[test]
    fn answers_map_to_stop_reasons() {
        let ok = |extra: Value| {
            let mut v = json!({"type":"response","command":"prompt","ok":true});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            outcome(&v).unwrap()["stopReason"].clone()
        };
        assert_eq!(ok(json!({"stop_reason":"end_turn"})), "end_turn");
        assert_eq!(ok(json!({"stop_reason":"max_tokens"})), "max_tokens");
        assert_eq!(
            ok(json!({"cancelled":true,"stop_reason":"aborted"})),
            "cancelled"
        );
        let rounds = json!({"type":"response","ok":false,"code":"provider_error","error":"the turn reached its limit of 2 provider rounds (--max-rounds)"});
        assert_eq!(outcome(&rounds).unwrap()["stopReason"], "max_turn_requests");
        let busy = json!({"type":"error","code":"busy","message":"another prompt is in flight; abort first"});
        let err = outcome(&busy).unwrap_err();
        assert!(err.message.contains("session/cancel"), "{err:?}");
    }
}
