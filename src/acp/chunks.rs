//! The fast path for the update a turn sends thousands of: a text or
//! thinking delta becomes an `agent_message_chunk` / `agent_thought_chunk`
//! line serialized straight from the borrowed text, without building a
//! `serde_json::Value`, and the chunks of one burst go out as one write.

use serde::Serialize;

use crate::protocol::StreamEvent;

/// The chunk kind of a text or thinking delta, and its text; `None` for
/// the events the general mapping (`updates.rs`) handles.
pub(super) fn chunk(event: &StreamEvent) -> Option<(&'static str, &str)> {
    match event {
        StreamEvent::TextDelta { delta } => Some(("agent_message_chunk", delta)),
        StreamEvent::ThinkingDelta { delta } => Some(("agent_thought_chunk", delta)),
        _ => None,
    }
}

#[derive(Serialize)]
struct Notification<'a> {
    jsonrpc: &'static str,
    method: &'static str,
    params: Params<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Params<'a> {
    session_id: &'a str,
    update: Chunk<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Chunk<'a> {
    session_update: &'static str,
    content: Text<'a>,
}

#[derive(Serialize)]
struct Text<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

/// Appends the `session/update` line of a chunk of `kind` to `buf`.
pub(super) fn encode(buf: &mut Vec<u8>, session_id: &str, kind: &'static str, text: &str) {
    let line = Notification {
        jsonrpc: "2.0",
        method: "session/update",
        params: Params {
            session_id,
            update: Chunk {
                session_update: kind,
                content: Text { kind: "text", text },
            },
        },
    };
    let mark = buf.len();
    // Serialising our own structs into a Vec cannot fail; if it ever did,
    // the half-written line is taken back.
    if serde_json::to_writer(&mut *buf, &line).is_err() {
        buf.truncate(mark);
        return;
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn the_fast_path_writes_what_the_general_path_would() {
        for (event, kind) in [
            (
                StreamEvent::TextDelta {
                    delta: "a \"q\" \u{e9}\n".into(),
                },
                "agent_message_chunk",
            ),
            (
                StreamEvent::ThinkingDelta { delta: "hm".into() },
                "agent_thought_chunk",
            ),
        ] {
            let (found, text) = chunk(&event).expect("a chunk");
            assert_eq!(found, kind);
            let mut line = Vec::new();
            encode(&mut line, "s1", found, text);
            assert_eq!(line.last(), Some(&b'\n'));
            let fast: Value = serde_json::from_slice(&line).expect("one JSON line");
            let general = json!({
                "jsonrpc": "2.0",
                "method": "session/update",
                "params": {"sessionId": "s1", "update": crate::acp::updates::chunk(kind, text)},
            });
            assert_eq!(fast, general);
        }
        let end = StreamEvent::ToolcallEnd {
            tool_call_id: "c".into(),
            name: "read".into(),
            input: json!({}),
        };
        assert!(chunk(&end).is_none());
    }
}
