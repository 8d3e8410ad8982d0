//! A native `permission_request` asked as `session/request_permission`.
//!
//! The request is sent from its own task (never from a handler, whose
//! waiting would hold the connection's dispatch loop). The client's choice
//! goes back as `permission_response`: `allow_once` / `allow_always` as
//! such, `reject_once` as `deny` (that call only: the turn goes on and the
//! model is told), and a `cancelled` outcome aborts the turn.

use std::sync::Arc;

use agent_client_protocol::v1::schema::{RequestPermissionOutcome, RequestPermissionRequest};
use agent_client_protocol::RequestCancellationHandle;
use serde_json::{json, Value};

use super::sessions::{AcpSession, Connection};
use super::typed;
use super::updates::{kind, tool_call};

/// A request open on the client.
pub struct Asking {
    task: tokio::task::AbortHandle,
    request: RequestCancellationHandle,
}

impl Asking {
    /// The host no longer needs the answer (the turn was aborted): tell the
    /// client with `$/cancel_request` and stop waiting.
    pub fn cancel(self) {
        if let Err(e) = self.request.cancel() {
            tracing::debug!("$/cancel_request not sent: {e}");
        }
        self.task.abort();
    }
}

/// What the native side is told for the client's choice.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Answer(&'static str),
    AbortTurn,
}

pub fn decision(outcome: &RequestPermissionOutcome) -> Decision {
    match outcome {
        RequestPermissionOutcome::Selected(selected) => match selected.option_id.0.as_ref() {
            "allow_once" => Decision::Answer("allow_once"),
            "allow_always" => Decision::Answer("allow_always"),
            _ => Decision::Answer("deny"),
        },
        _ => Decision::AbortTurn,
    }
}

/// The `session/request_permission` params for a native request.
pub fn request(session_id: &str, cwd: &str, frame: &Value) -> Value {
    let field = |k: &str| frame.get(k).and_then(Value::as_str).unwrap_or("");
    let tool = field("tool");
    let input = frame.get("input").cloned().unwrap_or(Value::Null);
    let mut call = tool_call(cwd, field("tool_call_id"), tool, &input);
    // The host's title says what the call would do ("Create a.txt (6 bytes)").
    call["title"] = json!(field("title"));
    call["kind"] = json!(kind(tool));
    if let Some(map) = call.as_object_mut() {
        map.remove("sessionUpdate");
    }
    json!({
        "sessionId": session_id,
        "toolCall": call,
        "options": [
            {"optionId": "allow_once", "name": "Allow", "kind": "allow_once"},
            {"optionId": "allow_always", "name": format!("Always allow {tool}"), "kind": "allow_always"},
            {"optionId": "reject_once", "name": "Reject", "kind": "reject_once"},
        ],
    })
}

/// Asks the client in a task and hands its answer to the host.
pub fn ask(session: Arc<AcpSession>, cx: Connection, frame: Value) {
    let Some(request_id) = frame
        .get("request_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let params = match typed::<RequestPermissionRequest>(request(&session.id, &session.cwd, &frame))
    {
        Ok(params) => params,
        Err(e) => {
            tracing::error!("permission request did not fit the ACP schema: {e:?}");
            return;
        }
    };
    let sent = cx.send_request(params);
    let cancel = sent.cancellation_handle();
    let owner = session.clone();
    let id = request_id.clone();
    let task = tokio::spawn(async move {
        let answer = sent.block_task().await;
        owner.asking_done(&id);
        let command = match answer {
            Ok(response) => match decision(&response.outcome) {
                Decision::Answer(decision) => {
                    json!({"type": "permission_response", "request_id": id, "decision": decision})
                }
                Decision::AbortTurn => json!({"type": "abort"}),
            },
            Err(e) => json!({
                "type": "permission_response",
                "request_id": id,
                "decision": "deny",
                "message": format!("the editor did not answer the permission request: {e}"),
            }),
        };
        let _ = owner.call(command).await;
    });
    // The task cannot have finished yet: this runtime has one thread and
    // nothing here yields before the entry is in.
    session.asking_insert(
        request_id,
        Asking {
            task: task.abort_handle(),
            request: cancel,
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_fits_the_schema_and_offers_three_options() {
        let frame = json!({"type":"permission_request","request_id":"perm-1","prompt_id":"p1","tool_call_id":"c1","tool":"write","input":{"path":"a.txt","content":"x"},"title":"Create a.txt (1 bytes)","diff":"…","outside_cwd":false});
        let v = request("s1", "/w", &frame);
        let typed: RequestPermissionRequest = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(typed.options.len(), 3);
        assert_eq!(v["toolCall"]["title"], "Create a.txt (1 bytes)");
        assert_eq!(v["toolCall"]["content"][0]["type"], "diff");
    }

    #[test]
    fn outcomes_map_to_decisions() {
        let pick = |id: &str| -> RequestPermissionOutcome {
            serde_json::from_value(json!({"outcome": "selected", "optionId": id})).unwrap()
        };
        assert_eq!(
            decision(&pick("allow_once")),
            Decision::Answer("allow_once")
        );
        assert_eq!(
            decision(&pick("allow_always")),
            Decision::Answer("allow_always")
        );
        assert_eq!(decision(&pick("reject_once")), Decision::Answer("deny"));
        let cancelled: RequestPermissionOutcome =
            serde_json::from_value(json!({"outcome": "cancelled"})).unwrap();
        assert_eq!(decision(&cancelled), Decision::AbortTurn);
    }
}
