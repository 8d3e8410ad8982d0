//! The host's permission question asked as `session/request_permission`.
//!
//! The answer is awaited in its own task (never in the sink, whose waiting
//! would hold the turn, nor in a handler, whose waiting would hold the
//! connection's dispatch loop). The client's choice goes back to the host
//! as `permission_response`: `allow_once` / `allow_always` as such,
//! `reject_once` as `deny` (that call only: the turn goes on and the model
//! is told), and a `cancelled` outcome aborts the turn.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{json, Value};

use super::sessions::AcpSession;
use super::updates::tool_call;
use crate::protocol::Decision as HostDecision;
use crate::protocol::{Command, PermissionRequestFrame, PermissionResponseParams};

/// A request open on the client.
struct Asking {
    task: tokio::task::AbortHandle,
    request: u64,
}

/// A session's `session/request_permission` requests open on the client,
/// by the host's request id: what the front end needs to map the host's
/// question to its wire and back (the question itself is the gate's).
#[derive(Default)]
pub(super) struct Questions(Mutex<HashMap<String, Asking>>);

impl Questions {
    fn insert(&self, request_id: String, asking: Asking) {
        self.lock().insert(request_id, asking);
    }

    fn take(&self, request_id: &str) -> Option<Asking> {
        self.lock().remove(request_id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Asking>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The host no longer needs the answer (the turn was aborted): tell the
    /// client with `$/cancel_request` and stop waiting.
    pub(super) async fn withdraw(&self, request_id: &str, cx: &super::rpc::Connection) {
        if let Some(asking) = self.take(request_id) {
            asking.task.abort();
            cx.cancel_request(asking.request).await;
        }
    }
}

/// What the host is told for the client's choice.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    Answer(HostDecision),
    AbortTurn,
}

/// The client's `RequestPermissionResponse` as a decision: a selected
/// option by its id; `cancelled` (or anything else) aborts the turn.
pub(super) fn decision(response: &Value) -> Decision {
    let outcome = response.get("outcome").unwrap_or(&Value::Null);
    if outcome.get("outcome").and_then(Value::as_str) != Some("selected") {
        return Decision::AbortTurn;
    }
    match outcome.get("optionId").and_then(Value::as_str) {
        Some("allow_once") => Decision::Answer(HostDecision::AllowOnce),
        Some("allow_always") => Decision::Answer(HostDecision::AllowAlways),
        _ => Decision::Answer(HostDecision::Deny),
    }
}

/// The `session/request_permission` params for the host's question.
pub(super) fn request(session_id: &str, cwd: &str, frame: &PermissionRequestFrame) -> Value {
    let tool = frame.tool.as_str();
    // The call as announced (same title, still `pending`): a client that
    // merges the request into its tool call must not see it renamed.
    let mut call = tool_call(cwd, &frame.tool_call_id, tool, &frame.input);
    if let Some(map) = call.as_object_mut() {
        map.remove("sessionUpdate");
    }
    if let Some(parent) = &frame.parent_tool_call_id {
        call["_meta"] = json!({"parentToolCallId": parent});
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

/// Asks the client and hands its answer to the host from a task.
pub(super) async fn ask(
    session: Arc<AcpSession>,
    open: Arc<Questions>,
    frame: &PermissionRequestFrame,
) {
    let params = request(&session.id, &session.cwd, frame);
    let (sent, answer) = session
        .cx
        .request("session/request_permission", params)
        .await;
    let owner = session.clone();
    let id = frame.request_id.clone();
    let questions = open.clone();
    let task = tokio::spawn(async move {
        let answer = answer.await;
        questions.take(&id);
        let command = match answer {
            Ok(Ok(response)) => match decision(&response) {
                Decision::Answer(decision) => respond(id, decision, None),
                Decision::AbortTurn => Command::Abort,
            },
            Ok(Err(e)) => respond(
                id,
                HostDecision::Deny,
                Some(format!(
                    "the editor did not answer the permission request: {}",
                    e.message
                )),
            ),
            // The connection is gone: the host is being shut down anyway.
            Err(_) => return,
        };
        let _ = owner.call(command).await;
    });
    // The task cannot have finished yet: this runtime has one thread and
    // nothing here yields before the entry is in.
    open.insert(
        frame.request_id.clone(),
        Asking {
            task: task.abort_handle(),
            request: sent,
        },
    );
}

fn respond(request_id: String, decision: HostDecision, message: Option<String>) -> Command {
    Command::PermissionResponse(PermissionResponseParams {
        request_id,
        decision,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_fits_the_schema_and_offers_three_options() {
        let frame = PermissionRequestFrame {
            request_id: "perm-1".into(),
            prompt_id: "p1".into(),
            tool_call_id: "c1".into(),
            tool: "write".into(),
            input: json!({"path":"a.txt","content":"x"}),
            title: "Create a.txt (1 bytes)".into(),
            diff: Some("…".into()),
            outside_cwd: false,
            parent_tool_call_id: None,
        };
        let v = request("s1", "/w", &frame);
        assert_eq!(v["sessionId"], "s1");
        assert_eq!(v["toolCall"]["toolCallId"], "c1");
        assert_eq!(v["toolCall"]["kind"], "edit");
        assert!(v["toolCall"].get("sessionUpdate").is_none());
        let kinds: Vec<&str> = v["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["allow_once", "allow_always", "reject_once"]);
        assert_eq!(
            v["toolCall"]["title"], "a.txt",
            "the call's title, unchanged"
        );
        assert_eq!(v["toolCall"]["status"], "pending");
        assert_eq!(v["toolCall"]["content"][0]["type"], "diff");
    }

    #[test]
    fn outcomes_map_to_decisions() {
        let pick = |id: &str| json!({"outcome": {"outcome": "selected", "optionId": id}});
        assert_eq!(
            decision(&pick("allow_once")),
            Decision::Answer(HostDecision::AllowOnce)
        );
        assert_eq!(
            decision(&pick("allow_always")),
            Decision::Answer(HostDecision::AllowAlways)
        );
        assert_eq!(
            decision(&pick("reject_once")),
            Decision::Answer(HostDecision::Deny)
        );
        let cancelled = json!({"outcome": {"outcome": "cancelled"}});
        assert_eq!(decision(&cancelled), Decision::AbortTurn);
    }
}
