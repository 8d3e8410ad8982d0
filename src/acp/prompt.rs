//! `session/prompt` in host terms: the ACP content blocks as a typed
//! `prompt` command (text → the message; images, embedded resources and
//! resource links → attachments), and the host's typed answer as a
//! `stopReason` or a JSON-RPC error.

use serde_json::{json, Value};

use super::host_error;
use super::rpc::{RpcError, RpcResult};
use crate::host::Answer;
use crate::protocol::{Attachment, ErrorCode, PromptParams, Response};

/// The `prompt` command's fields for ACP prompt content.
pub(super) fn params(blocks: &[Value]) -> PromptParams {
    let mut message: Vec<&str> = Vec::new();
    let mut attachments = Vec::new();
    for block in blocks {
        let field = |k: &str| block.get(k).and_then(Value::as_str);
        match field("type").unwrap_or("") {
            "text" => message.push(field("text").unwrap_or("")),
            "image" => {
                if let (Some(data), Some(media)) = (field("data"), field("mimeType")) {
                    attachments.push(Attachment::Image {
                        media_type: media.to_owned(),
                        data: data.to_owned(),
                    });
                }
            }
            "resource" => attachments.push(resource(block.get("resource"))),
            "resource_link" => {
                let uri = field("uri").unwrap_or("");
                let name = field("name").unwrap_or(uri);
                attachments.push(Attachment::Text {
                    text: format!("[resource link: {name} <{uri}>]"),
                });
            }
            other => tracing::warn!("prompt content of type {other:?} skipped"),
        }
    }
    PromptParams {
        message: message.join("\n\n"),
        attachments,
    }
}

/// An embedded resource: its text inline, or a note that a binary one was
/// attached.
fn resource(resource: Option<&Value>) -> Attachment {
    let resource = resource.unwrap_or(&Value::Null);
    let uri = resource.get("uri").and_then(Value::as_str).unwrap_or("");
    let text = match resource.get("text").and_then(Value::as_str) {
        Some(text) => format!("<resource uri=\"{uri}\">\n{text}\n</resource>"),
        None => format!("[binary resource {uri} attached; its content is not shown]"),
    };
    Attachment::Text { text }
}

/// The `session/prompt` result for the host's answer.
pub(super) fn outcome(answer: Answer) -> RpcResult {
    let turn = match answer {
        Err(e) if e.code == ErrorCode::Busy => {
            return Err(RpcError::new(
                -32000,
                "a prompt is already running in this session; send session/cancel first",
            )
            .with_data(json!({"code": "busy"})));
        }
        Err(e) => return Err(host_error(&e)),
        Ok(Response::Turn(turn)) => turn,
        // `/compact`: the compaction is done (its message was sent).
        Ok(Response::Compact(_)) => return Ok(json!({"stopReason": "end_turn"})),
        // Never run: dropped by an abort or by the host's exit.
        Ok(_) => return Ok(json!({"stopReason": "cancelled"})),
    };
    let stop = if turn.cancelled {
        "cancelled"
    } else if turn.round_limit {
        // The one failure ACP has a stop reason for.
        "max_turn_requests"
    } else if let Some(code) = turn.code {
        let error = turn.error.unwrap_or_default();
        return Err(RpcError::internal(error).with_data(json!({"code": code.as_str()})));
    } else {
        match turn.stop_reason.as_str() {
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
    use crate::error::Coded;
    use crate::protocol::TurnResponse;

    #[test]
    fn text_images_and_resources_become_a_prompt() {
        let p = params(&[
            json!({"type":"text","text":"look"}),
            json!({"type":"image","data":"AAA","mimeType":"image/png"}),
            json!({"type":"resource","resource":{"uri":"file:///w/a.rs","text":"fn a() {}"}}),
            json!({"type":"resource_link","uri":"file:///w/b.rs","name":"b.rs"}),
        ]);
        assert_eq!(p.message, "look");
        assert!(
            matches!(&p.attachments[0], Attachment::Image { media_type, .. } if media_type == "image/png")
        );
        assert!(
            matches!(&p.attachments[1], Attachment::Text { text } if text.contains("fn a() {}"))
        );
        assert!(
            matches!(&p.attachments[2], Attachment::Text { text } if text.contains("file:///w/b.rs"))
        );
    }

    fn turn(stop_reason: &str) -> TurnResponse {
        TurnResponse {
            prompt_id: "p1".into(),
            stop_reason: stop_reason.into(),
            usage: Default::default(),
            cancelled: false,
            code: None,
            error: None,
            dropped: Vec::new(),
            persist_error: None,
            round_limit: false,
        }
    }

    #[test]
    fn answers_map_to_stop_reasons() {
        let stop = |t: TurnResponse| outcome(Ok(Response::Turn(t))).unwrap()["stopReason"].clone();
        assert_eq!(stop(turn("end_turn")), "end_turn");
        assert_eq!(stop(turn("max_tokens")), "max_tokens");
        let aborted = TurnResponse {
            cancelled: true,
            ..turn("aborted")
        };
        assert_eq!(stop(aborted), "cancelled");
        let rounds = TurnResponse {
            code: Some(ErrorCode::ProviderError),
            error: Some("the turn reached its limit of 2 provider rounds (--max-rounds)".into()),
            round_limit: true,
            ..turn("error")
        };
        assert_eq!(stop(rounds), "max_turn_requests");
        let failed = TurnResponse {
            code: Some(ErrorCode::ProviderError),
            error: Some("boom".into()),
            ..turn("error")
        };
        assert_eq!(
            outcome(Ok(Response::Turn(failed))).unwrap_err().message,
            "boom"
        );
        let busy = Coded::new(ErrorCode::Busy, "another prompt is in flight; abort first");
        let err = outcome(Err(busy)).unwrap_err();
        assert!(err.message.contains("session/cancel"), "{err:?}");
    }
}
