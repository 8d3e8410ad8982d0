//! The fast path for the frame a turn sends thousands of: a text or
//! thinking delta becomes an `agent_message_chunk` / `agent_thought_chunk`
//! line without building a `serde_json::Value` on either side (the general
//! path in `updates` parses every frame into one and builds another), and
//! the chunks of one burst from the host go out as one write.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A delta read from a native `message_update` line.
pub struct Delta<'a> {
    /// `agent_message_chunk` or `agent_thought_chunk`.
    kind: &'static str,
    text: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    event: Event<'a>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    delta: Option<Cow<'a, str>>,
}

/// The delta in `line` when it is a native text or thinking delta; `None`
/// for every other frame (the general path maps those).
pub fn delta(line: &[u8]) -> Option<Delta<'_>> {
    // The host writes `type` first: other frames are passed over unparsed.
    if !line.starts_with(br#"{"type":"message_update""#) {
        return None;
    }
    let frame: Frame = serde_json::from_slice(line).ok()?;
    let kind = match frame.event.kind.as_ref() {
        "text_delta" => "agent_message_chunk",
        "thinking_delta" => "agent_thought_chunk",
        _ => return None,
    };
    Some(Delta {
        kind,
        text: frame.event.delta?,
    })
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

/// Appends the `session/update` line of `delta` to `buf`.
pub fn encode(buf: &mut Vec<u8>, session_id: &str, delta: &Delta) {
    let line = Notification {
        jsonrpc: "2.0",
        method: "session/update",
        params: Params {
            session_id,
            update: Chunk {
                session_update: delta.kind,
                content: Text {
                    kind: "text",
                    text: &delta.text,
                },
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
    use crate::protocol::StreamEvent;
    use crate::transport::Outbox;
    use serde_json::{json, Value};

    /// The fast path writes what the general mapping (`updates::chunk`)
    /// would, and leaves every other frame to it. The lines are encoded as
    /// the host writes them.
    #[test]
    fn deltas_map_like_the_general_path() {
        let text = "a \"quoted\"\nline é";
        for (event, kind) in [
            (
                StreamEvent::TextDelta { delta: text.into() },
                "agent_message_chunk",
            ),
            (
                StreamEvent::ThinkingDelta { delta: text.into() },
                "agent_thought_chunk",
            ),
        ] {
            let mut line = Vec::new();
            Outbox::encode_update(&mut line, "p1", &event);
            line.pop();
            let d = delta(&line).expect("a delta");
            let mut buf = Vec::new();
            encode(&mut buf, "s1", &d);
            assert_eq!(buf.last(), Some(&b'\n'));
            let written: Value = serde_json::from_slice(&buf).unwrap();
            let expected = json!({"jsonrpc": "2.0", "method": "session/update", "params": {
                "sessionId": "s1",
                "update": super::super::updates::chunk(kind, text),
            }});
            assert_eq!(written, expected);
        }
        // A tool call's argument delta is a `message_update` too: not a chunk.
        let mut toolcall = Vec::new();
        let event = StreamEvent::ToolcallDelta {
            tool_call_id: "c".into(),
            delta: "{".into(),
        };
        Outbox::encode_update(&mut toolcall, "p1", &event);
        toolcall.pop();
        assert!(delta(&toolcall).is_none());
        for other in [
            br#"{"type":"agent_end","prompt_id":"p1"}"#.as_slice(),
            br#"{"type":"response","id":"x","ok":true}"#,
        ] {
            assert!(delta(other).is_none());
        }
    }
}
