//! JSON-RPC 2.0 for ACP over the host's own stdio transport: the bounded
//! line reader in, the one stdout writer out. Requests from the client are
//! dispatched by `acp/mod.rs`; requests we send the client (permission
//! questions, its files and terminals) wait here for their response by id.
//! What the client said it can do in `initialize` is kept here too, since
//! it belongs to the connection.
//!
//! The same [`Connection`] and [`decode`] serve the other direction too:
//! the host as the ACP *client* of an external agent it runs as a child
//! process (`agents::external`), where "the client" below is that agent.
//!
//! Our own implementation rather than the `agent-client-protocol` crate:
//! that crate (and its schema crate) turn on serde_json's `preserve_order`
//! for the whole binary, which made the native path ~10% slower and ~2 MB
//! bigger (every `Value` map an IndexMap). The messages are plain JSON
//! built from the ACP schema's field names; the real-client tests (the
//! official TypeScript SDK, acpx) check them against the schema.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::transport::Outbox;

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    pub code: i32,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i32, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> Self {
        RpcError::new(-32602, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        RpcError::new(-32603, message)
    }

    pub(crate) fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The message with what the client put in `data` (clients often
    /// say there why: `{"details": "Permission denied"}`).
    pub(crate) fn describe(&self) -> String {
        let details = match &self.data {
            Some(Value::String(s)) => Some(s.clone()),
            Some(data) => match data.get("details").or_else(|| data.get("message")) {
                Some(Value::String(s)) => Some(s.clone()),
                _ => Some(data.to_string()),
            },
            None => None,
        };
        match details {
            Some(d) if !d.is_empty() && d != self.message => format!("{} ({d})", self.message),
            _ => self.message.clone(),
        }
    }

    fn to_json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

pub(crate) type RpcResult = Result<Value, RpcError>;

/// The client's methods we use, as its `initialize` advertised them
/// (`clientCapabilities`); all off until it says otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClientCapabilities {
    pub read_text_file: bool,
    pub write_text_file: bool,
    pub terminal: bool,
}

impl ClientCapabilities {
    /// From `initialize`'s params; anything but `true` is off.
    pub(crate) fn of(params: &Value) -> Self {
        let caps = params.get("clientCapabilities").unwrap_or(&Value::Null);
        let on = |v: &Value| v.as_bool() == Some(true);
        ClientCapabilities {
            read_text_file: on(&caps["fs"]["readTextFile"]),
            write_text_file: on(&caps["fs"]["writeTextFile"]),
            terminal: on(&caps["terminal"]),
        }
    }
}

/// The client's side of the connection: cheap to clone, shared by every
/// task that writes to it.
#[derive(Clone)]
pub(crate) struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    out: Outbox,
    next_id: AtomicU64,
    /// Our requests waiting for the client's response, by id.
    waiting: Mutex<HashMap<u64, oneshot::Sender<RpcResult>>>,
    client: Mutex<ClientCapabilities>,
    /// The client is gone: requests fail at once instead of waiting.
    gone: std::sync::atomic::AtomicBool,
}

impl Connection {
    pub(crate) fn new(out: Outbox) -> Self {
        Connection {
            inner: Arc::new(Inner {
                out,
                next_id: AtomicU64::new(0),
                waiting: Mutex::new(HashMap::new()),
                client: Mutex::new(ClientCapabilities::default()),
                gone: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    pub(crate) fn client(&self) -> ClientCapabilities {
        *self
            .inner
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_client(&self, caps: ClientCapabilities) {
        *self
            .inner
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = caps;
    }

    async fn write(&self, message: &Value) {
        self.inner.out.message(message).await;
    }

    /// Sends complete lines (already encoded messages) as one write.
    pub(crate) async fn lines(&self, lines: Vec<u8>) {
        self.inner.out.lines(lines).await;
    }

    /// Sends a notification. Messages go out in the order of these calls.
    pub(crate) async fn notify(&self, method: &str, params: Value) {
        self.write(&json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// Answers a request of the client.
    pub(crate) async fn respond(&self, id: Value, result: RpcResult) {
        let message = match result {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(error) => json!({"jsonrpc": "2.0", "id": id, "error": error.to_json()}),
        };
        self.write(&message).await;
    }

    /// Sends a request; returns its id and where its response will arrive.
    pub(crate) async fn request(
        &self,
        method: &str,
        params: Value,
    ) -> (u64, oneshot::Receiver<RpcResult>) {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if self.inner.gone.load(Ordering::Acquire) {
            // Nobody will answer: the receiver sees the sender dropped.
            return (id, rx);
        }
        self.waiting().insert(id, tx);
        self.write(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        (id, rx)
    }

    /// Sends a request and waits for its answer, at most `timeout`; a
    /// request not answered by then is withdrawn and is an error saying so.
    pub(crate) async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: std::time::Duration,
    ) -> RpcResult {
        let (id, answer) = self.request(method, params).await;
        // A caller that stops waiting (it is dropped: a kill's wait given
        // up, an aborted tool) leaves no entry behind.
        let _forget = Forget { cx: self, id };
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(RpcError::internal(format!(
                "the connection closed before the client answered {method}"
            ))),
            Err(_) => {
                self.cancel_request(id).await;
                Err(RpcError::internal(format!(
                    "the client did not answer {method} within {} s",
                    timeout.as_secs()
                )))
            }
        }
    }

    /// Withdraws a request of ours (`$/cancel_request`); its answer, if one
    /// still comes, is dropped.
    pub(crate) async fn cancel_request(&self, id: u64) {
        self.waiting().remove(&id);
        self.notify("$/cancel_request", json!({"requestId": id}))
            .await;
    }

    /// The client is gone: every request of ours still waiting fails now
    /// (a tool waiting on the editor's file or terminal ends at once)
    /// rather than at its timeout.
    pub(crate) fn client_gone(&self) {
        self.inner.gone.store(true, Ordering::Release);
        self.waiting().clear();
    }

    /// A response from the client to one of our requests.
    pub(crate) fn on_response(&self, message: &Value) {
        let Some(id) = message.get("id").and_then(Value::as_u64) else {
            tracing::debug!("a response to no request of ours: {message}");
            return;
        };
        let Some(tx) = self.waiting().remove(&id) else {
            return;
        };
        let result = match message.get("error") {
            Some(error) => Err(RpcError {
                code: error
                    .get("code")
                    .and_then(Value::as_i64)
                    .and_then(|c| i32::try_from(c).ok())
                    .unwrap_or(-32603),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                data: error.get("data").cloned(),
            }),
            None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
        };
        let _ = tx.send(result);
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<RpcResult>>> {
        self.inner
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Removes a request of ours from the waiting ones when its caller stops
/// waiting, answered or not (a second removal does nothing).
struct Forget<'a> {
    cx: &'a Connection,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.cx.waiting().remove(&self.id);
    }
}

/// One decoded incoming message.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    Request {
        id: Value,
        method: String,
        params: Value,
    },
    Notification {
        method: String,
        params: Value,
    },
    Response(Value),
    /// Not a JSON-RPC message: answered with this error under this id.
    Invalid {
        id: Value,
        error: RpcError,
    },
}

/// Classifies one line from the client.
pub(crate) fn decode(line: &[u8]) -> Incoming {
    let message: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            return Incoming::Invalid {
                id: Value::Null,
                error: RpcError::new(-32700, format!("not JSON: {e}")),
            }
        }
    };
    let id = message.get("id").cloned();
    match (message.get("method").and_then(Value::as_str), id) {
        (Some(method), Some(id)) if id.is_string() || id.is_number() => Incoming::Request {
            method: method.to_owned(),
            params: message.get("params").cloned().unwrap_or(Value::Null),
            id,
        },
        (Some(method), None) => Incoming::Notification {
            method: method.to_owned(),
            params: message.get("params").cloned().unwrap_or(Value::Null),
        },
        (None, Some(_)) if message.get("result").is_some() || message.get("error").is_some() => {
            Incoming::Response(message)
        }
        (_, id) => Incoming::Invalid {
            id: id
                .filter(|id| id.is_string() || id.is_number())
                .unwrap_or(Value::Null),
            error: RpcError::new(
                -32600,
                "not a JSON-RPC 2.0 request, notification or response",
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified() {
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#),
            Incoming::Request { method, .. } if method == "initialize"
        ));
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","method":"session/cancel","params":{"sessionId":"s"}}"#),
            Incoming::Notification { method, .. } if method == "session/cancel"
        ));
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","id":3,"result":{}}"#),
            Incoming::Response(_)
        ));
        let Incoming::Invalid { id, error } = decode(b"{oops") else {
            panic!()
        };
        assert_eq!((id, error.code), (Value::Null, -32700));
        let Incoming::Invalid { id, error } = decode(br#"{"jsonrpc":"2.0","id":7}"#) else {
            panic!()
        };
        assert_eq!((id, error.code), (json!(7), -32600));
    }

    #[test]
    fn an_error_says_what_the_client_put_in_data() {
        let e = RpcError::internal("Internal error")
            .with_data(json!({"details": "Permission denied for terminal/create"}));
        assert_eq!(
            e.describe(),
            "Internal error (Permission denied for terminal/create)"
        );
        assert_eq!(RpcError::internal("x").describe(), "x");
        let e = RpcError::internal("x").with_data(json!({"path": "/a"}));
        assert_eq!(e.describe(), r#"x ({"path":"/a"})"#);
    }

    #[tokio::test]
    async fn a_call_given_up_leaves_nothing_and_a_gone_client_fails_at_once() {
        let (out, _frames) = Outbox::channel();
        let cx = Connection::new(out);
        let waiting = cx.call("x", json!({}), std::time::Duration::from_secs(60));
        let given_up = tokio::time::timeout(std::time::Duration::from_millis(20), waiting).await;
        assert!(given_up.is_err());
        assert!(cx.waiting().is_empty(), "the dropped call's entry is gone");
        cx.client_gone();
        let started = std::time::Instant::now();
        let e = cx
            .call("y", json!({}), std::time::Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(e.message.contains("connection closed"), "{e:?}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_response_reaches_its_request() {
        let (out, mut frames) = Outbox::channel();
        let cx = Connection::new(out);
        let (id, rx) = cx.request("session/request_permission", json!({})).await;
        let sent: Value =
            serde_json::from_slice(frames.next().await.unwrap().trim_ascii()).unwrap();
        assert_eq!(sent["id"], json!(id));
        cx.on_response(&json!({"jsonrpc": "2.0", "id": id, "result": {"ok": 1}}));
        assert_eq!(rx.await.unwrap(), Ok(json!({"ok": 1})));
        let (id, rx) = cx.request("x", json!({})).await;
        cx.on_response(
            &json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": "no"}}),
        );
        assert_eq!(rx.await.unwrap().unwrap_err().code, -32000);
    }
}
