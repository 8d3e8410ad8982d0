//! An ACP session's sink: the host's typed frames become `session/update`
//! notifications (and permission questions) as they are emitted, with no
//! JSON between the host and this mapping.
//!
//! Text and thinking deltas take `chunks.rs`'s borrowed fast path, and a
//! burst of them is one write; every other frame goes through the
//! session's [`Mapper`], which keeps what it must remember of tool calls.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use serde_json::{json, Value};

use super::chunks;
use super::permissions::{self, Questions};
use super::sessions::AcpSession;
use super::updates::Mapper;
use crate::protocol::{AgentEndFrame, Frame, StreamEvent};
use crate::sink::{BoxFuture, FrameSink};

pub(super) struct AcpSink {
    session: Weak<AcpSession>,
    /// Locked only while a frame is mapped, never across a write.
    mapper: Mutex<Mapper>,
    /// Permission requests open on the client.
    questions: Arc<Questions>,
}

impl AcpSink {
    pub(super) fn new(session: Weak<AcpSession>, cwd: String) -> Self {
        AcpSink {
            session,
            mapper: Mutex::new(Mapper::new(cwd)),
            questions: Arc::default(),
        }
    }

    fn map(&self, map: impl FnOnce(&mut Mapper) -> Vec<Value>) -> Vec<Value> {
        map(&mut self.mapper.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl FrameSink for AcpSink {
    fn frame<'a>(&'a self, frame: &'a Frame) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // A session already closed has nobody left to tell. (A
            // permission question dropped here does not hang its turn:
            // the session held the host's last handle, so the host has
            // seen its input end and closed the gate, which denies it.)
            if let Some(session) = self.session.upgrade() {
                self.on_frame(session, frame).await;
            }
        })
    }

    fn updates<'a>(&'a self, _prompt_id: &'a str, events: &'a [StreamEvent]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(session) = self.session.upgrade() else {
                return;
            };
            let mut burst = Vec::new();
            for event in events {
                match chunks::chunk(event) {
                    Some((kind, text)) => chunks::encode(&mut burst, &session.id, kind, text),
                    None => {
                        for update in self.map(|m| m.event(event)) {
                            encode_update(&mut burst, &session.id, update);
                        }
                    }
                }
            }
            if !burst.is_empty() {
                session.cx.lines(burst).await;
            }
        })
    }

    fn nested_updates<'a>(
        &'a self,
        _prompt_id: &'a str,
        parent: &'a str,
        events: &'a [StreamEvent],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(session) = self.session.upgrade() else {
                return;
            };
            // Only the subagent's text has a place (the `task` call's
            // content); its tool calls come as their own frames.
            let now = std::time::Instant::now();
            let updates = self.map(|m| {
                let text = events.iter().filter_map(|e| match e {
                    StreamEvent::TextDelta { delta } => Some(delta.as_str()),
                    _ => None,
                });
                text.flat_map(|delta| m.child_text(parent, delta, now))
                    .collect()
            });
            for update in updates {
                session.notify(update).await;
            }
        })
    }

    fn tool_running<'a>(&'a self, tool_call_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(session) = self.session.upgrade() else {
                return;
            };
            for update in self.map(|m| m.running(tool_call_id)) {
                session.notify(update).await;
            }
        })
    }

    fn tool_terminal<'a>(
        &'a self,
        tool_call_id: &'a str,
        terminal_id: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let Some(session) = self.session.upgrade() else {
                return;
            };
            for update in self.map(|m| m.terminal(tool_call_id, terminal_id)) {
                session.notify(update).await;
            }
        })
    }
}

impl AcpSink {
    async fn on_frame(&self, session: Arc<AcpSession>, frame: &Frame) {
        match frame {
            Frame::PermissionRequest(request) => {
                permissions::ask(session, self.questions.clone(), request).await
            }
            Frame::PermissionCancelled(cancelled) => {
                self.questions
                    .withdraw(&cancelled.request_id, &session.cx)
                    .await
            }
            // The host changed its settings before it said so: the options
            // read now carry the new model.
            Frame::ModelChanged(_) => {
                let update = json!({"sessionUpdate": "config_option_update", "configOptions": session.config_options()});
                session.notify(update).await;
            }
            Frame::AgentEnd(end) => {
                if let Some(update) = usage_update(&session, end) {
                    session.notify(update).await;
                }
            }
            other => {
                for update in self.map(|m| m.frame(other)) {
                    session.notify(update).await;
                }
            }
        }
    }
}

/// `usage_update` after a turn: the context in use after its last
/// provider call against the model's window (when the listing knows the
/// window), and the session's cost so far when its prices are known.
fn usage_update(session: &AcpSession, end: &AgentEndFrame) -> Option<Value> {
    let size = session.context_window()?;
    usage_value(end, size)
}

/// The `usage_update` for a turn's end and the model's window `size`;
/// none when no provider call reported usage.
fn usage_value(end: &AgentEndFrame, size: u64) -> Option<Value> {
    let last = end.last_call.as_ref()?;
    let used = last.input_tokens
        + last.cache_read_input_tokens
        + last.cache_creation_input_tokens
        + last.output_tokens;
    let mut update = json!({"sessionUpdate": "usage_update", "used": used, "size": size});
    if let Some(amount) = end.session_cost_usd {
        update["cost"] = json!({"amount": amount, "currency": "USD"});
    }
    Some(update)
}

/// Appends one `session/update` notification line to `buf`.
fn encode_update(buf: &mut Vec<u8>, session_id: &str, update: Value) {
    let line = json!({
        "jsonrpc": "2.0",
        "method": "session/update",
        "params": {"sessionId": session_id, "update": update},
    });
    let mark = buf.len();
    if serde_json::to_writer(&mut *buf, &line).is_err() {
        buf.truncate(mark);
        return;
    }
    buf.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Usage;

    fn end(last_call: Option<Usage>, session_cost_usd: Option<f64>) -> AgentEndFrame {
        let call = Usage {
            input_tokens: 100,
            output_tokens: 50,
            cache_read_input_tokens: 0,
            cache_creation_input_tokens: 0,
        };
        AgentEndFrame {
            prompt_id: "p1".into(),
            stop_reason: "end_turn".into(),
            // Five calls of 150: the sum is not the context.
            usage: Usage {
                input_tokens: 500,
                output_tokens: 250,
                ..call
            },
            last_call,
            session_cost_usd,
        }
    }

    #[test]
    fn used_is_the_last_calls_context_and_cost_is_the_sessions() {
        let last = Usage {
            input_tokens: 100,
            output_tokens: 50,
            cache_read_input_tokens: 20,
            cache_creation_input_tokens: 30,
        };
        let v = usage_value(&end(Some(last), Some(0.25)), 200_000).unwrap();
        assert_eq!(v["sessionUpdate"], "usage_update");
        assert_eq!(v["used"], 200);
        assert_eq!(v["size"], 200_000);
        assert_eq!(v["cost"], json!({"amount": 0.25, "currency": "USD"}));
        let v = usage_value(&end(Some(last), None), 10).unwrap();
        assert!(v.get("cost").is_none(), "{v}");
        assert!(usage_value(&end(None, None), 10).is_none());
    }
}
