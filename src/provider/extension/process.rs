//! One running provider extension: a subprocess speaking JSON-RPC 2.0 over
//! Content-Length frames.
//!
//! A [`Proc`] has three tasks, each owning one resource (helix-lsp style): a
//! writer task owns the child's stdin, a reader task owns its stdout and
//! routes responses by id (and stream events to the one streaming request),
//! and a supervisor owns the `Child` itself, killing it on request and
//! recording its exit status. A fourth task keeps a bounded tail of stderr
//! for error messages. When the child dies every pending request is failed
//! by dropping its sender, so no caller waits forever.

use std::collections::HashMap;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

use super::framing::{self, Decoder};
use super::manifest::Manifest;
use crate::message::Usage;
use crate::process::ChildBuilder;
use crate::protocol::StreamEvent;
use crate::provider::Event;

/// Events buffered between the reader task and the turn. When the turn is
/// slow (stdout blocked) the reader waits, the child's stdout pipe fills, and
/// the extension itself is paused: memory stays bounded end to end.
const STREAM_CAPACITY: usize = 256;

/// Frames queued for the child's stdin. Requests are few; this only smooths
/// bursts of cancels.
const STDIN_CAPACITY: usize = 16;

/// Bytes of the child's stderr kept for error messages.
const STDERR_TAIL: usize = 4096;

/// Environment variables an extension always inherits.
const BASE_ENV: [&str; 5] = ["PATH", "HOME", "LANG", "TERM", "XDG_RUNTIME_DIR"];

/// What a request's receiver gets.
#[derive(Debug)]
pub(crate) enum Incoming {
    Event(Event),
    /// An `error` stream event: the extension gave up on the request.
    Failed(String),
    Result(Value),
    Error(String),
}

#[derive(Default)]
struct Routes {
    pending: HashMap<u64, mpsc::Sender<Incoming>>,
    /// The request that stream events belong to. Events carry no request id
    /// in this protocol, so at most one stream is routed at a time and events
    /// arriving with none active are dropped.
    stream: Option<u64>,
    /// Why the process can no longer be used.
    dead: Option<String>,
}

impl Routes {
    fn die(&mut self, reason: String) {
        if self.dead.is_none() {
            self.dead = Some(reason);
        }
        self.pending.clear();
        self.stream = None;
    }
}

/// A running extension process.
pub(crate) struct Proc {
    plugin_id: String,
    stdin: mpsc::Sender<Vec<u8>>,
    routes: Arc<Mutex<Routes>>,
    next_id: AtomicU64,
    kill: mpsc::Sender<()>,
    exit: watch::Receiver<Option<ExitStatus>>,
    stderr: Arc<Mutex<String>>,
    /// One round at a time: stream events carry no request id, so a second
    /// concurrent stream (another ACP session's turn) would get the first
    /// one's events. A round holds the permit until it ends or is cancelled.
    rounds: Arc<tokio::sync::Semaphore>,
}

fn lock(routes: &Mutex<Routes>) -> std::sync::MutexGuard<'_, Routes> {
    // A panic while holding this lock cannot leave Routes inconsistent in a
    // way that matters more than losing the process, so poison is ignored.
    routes.lock().unwrap_or_else(|p| p.into_inner())
}

impl Proc {
    pub(super) fn spawn(manifest: &Manifest) -> anyhow::Result<Arc<Proc>> {
        let mut child = start(manifest)?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            bail!("extension {:?}: pipes were not set up", manifest.id);
        };

        let routes = Arc::new(Mutex::new(Routes::default()));
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        let (stdin_tx, stdin_rx) = mpsc::channel::<Vec<u8>>(STDIN_CAPACITY);
        let (kill_tx, kill_rx) = mpsc::channel::<()>(1);
        let (exit_tx, exit_rx) = watch::channel(None);

        tokio::spawn(write_stdin(stdin, stdin_rx));
        tokio::spawn(supervise(
            manifest.id.clone(),
            child,
            kill_rx,
            routes.clone(),
            exit_tx,
        ));

        // The reader holds the kill sender weakly: when the last `Proc` is
        // dropped every strong sender is gone, which the supervisor takes as
        // a kill. A strong clone here would keep a silent child alive forever.
        tokio::spawn(read_stdout(
            manifest.id.clone(),
            stdout,
            routes.clone(),
            stdin_tx.downgrade(),
            kill_tx.downgrade(),
        ));
        tokio::spawn(read_stderr(
            manifest.id.clone(),
            stderr,
            stderr_tail.clone(),
        ));

        Ok(Arc::new(Proc {
            plugin_id: manifest.id.clone(),
            stdin: stdin_tx,
            routes,
            next_id: AtomicU64::new(1),
            kill: kill_tx,
            exit: exit_rx,
            stderr: stderr_tail,
            rounds: Arc::new(tokio::sync::Semaphore::new(1)),
        }))
    }

    pub(crate) fn is_alive(&self) -> bool {
        lock(&self.routes).dead.is_none()
    }

    /// Waits for this process to be free for a round (see `rounds`).
    pub(crate) async fn round_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.rounds.clone().acquire_owned().await.ok()
    }

    /// Sends a request; its response (and, for a stream, its events) arrive
    /// on the returned receiver, which closes if the process dies.
    pub(crate) async fn request(
        &self,
        method: &str,
        params: Value,
        stream: bool,
    ) -> anyhow::Result<(u64, mpsc::Receiver<Incoming>)> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(STREAM_CAPACITY);
        {
            let mut routes = lock(&self.routes);
            if routes.dead.is_some() {
                drop(routes);
                return Err(anyhow!(self.failure_now()));
            }
            routes.pending.insert(id, tx);
            if stream {
                routes.stream = Some(id);
            }
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let frame = framing::encode(body.to_string().as_bytes());
        if self.stdin.send(frame).await.is_err() {
            return Err(anyhow!(self.failure().await));
        }
        Ok((id, rx))
    }

    /// A request whose only answer is its result.
    pub(crate) async fn call(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let (_, mut rx) = self.request(method, params, false).await?;
        let waited = tokio::time::timeout(timeout, async {
            loop {
                match rx.recv().await {
                    Some(Incoming::Result(v)) => return Ok(v),
                    Some(Incoming::Error(e)) => {
                        return Err(anyhow!(self.with_stderr(format!(
                            "extension {:?} answered {method} with an error: {e}",
                            self.plugin_id
                        ))))
                    }
                    Some(Incoming::Event(_) | Incoming::Failed(_)) => continue,
                    // Already names the extension and carries its stderr.
                    None => return Err(anyhow!(self.failure().await)),
                }
            }
        })
        .await;
        match waited {
            Ok(r) => r,
            Err(_) => Err(anyhow!(self.with_stderr(format!(
                "extension {:?} did not answer {method} within {} s",
                self.plugin_id,
                timeout.as_secs_f32()
            )))),
        }
    }

    /// Fire-and-forget notification (e.g. `$/cancel_request`).
    pub(crate) fn notify(&self, method: &str, params: Value) {
        let body = json!({"jsonrpc": "2.0", "method": method, "params": params});
        let _ = self
            .stdin
            .try_send(framing::encode(body.to_string().as_bytes()));
    }

    /// Kills the process now; callers see it dead at once.
    pub(crate) fn kill(&self, why: &str) {
        lock(&self.routes).die(why.to_owned());
        let _ = self.kill.try_send(());
    }

    /// Stops routing events to a request that is being abandoned, so stray
    /// events it still sends never reach a later turn.
    pub(crate) fn forget(&self, id: u64) {
        let mut routes = lock(&self.routes);
        routes.pending.remove(&id);
        if routes.stream == Some(id) {
            routes.stream = None;
        }
    }

    /// Asks the extension to exit, then makes sure it does.
    pub(crate) async fn shutdown(&self, grace: Duration) {
        if self.is_alive() {
            let _ = self.call("shutdown", Value::Null, grace).await;
        }
        self.kill("shut down");
    }

    /// A message that says what happened to the process: why it died, its
    /// exit status when known within a moment, and its stderr tail.
    pub(crate) async fn failure(&self) -> String {
        let mut exit = self.exit.clone();
        let _ =
            tokio::time::timeout(Duration::from_millis(300), exit.wait_for(|s| s.is_some())).await;
        self.failure_now()
    }

    fn failure_now(&self) -> String {
        let reason = lock(&self.routes)
            .dead
            .clone()
            .unwrap_or_else(|| "stopped answering".into());
        // The exit status says more than "closed its stdout" when known.
        let what = match *self.exit.borrow() {
            Some(s) if !reason.contains("exited") => format!("exited ({s}) after it {reason}"),
            _ => reason,
        };
        self.with_stderr(format!("extension {:?} {what}", self.plugin_id))
    }

    /// "extension <id> <what>", with the stderr tail.
    pub(crate) fn describe(&self, what: &str) -> String {
        self.with_stderr(format!("extension {:?} {what}", self.plugin_id))
    }

    /// Appends the stderr tail, if there is one.
    pub(crate) fn with_stderr(&self, message: String) -> String {
        let tail = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        let tail = tail.trim();
        if tail.is_empty() {
            message
        } else {
            format!("{message}; its stderr ends with: {tail}")
        }
    }
}

#[derive(Deserialize)]
struct RpcIn {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Value>,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

/// The one writer of the extension's stdin: frames in order, until the
/// `Proc` is gone or the pipe breaks.
async fn write_stdin(mut stdin: ChildStdin, mut frames: mpsc::Receiver<Vec<u8>>) {
    while let Some(frame) = frames.recv().await {
        if stdin.write_all(&frame).await.is_err() || stdin.flush().await.is_err() {
            break;
        }
    }
    // Dropping stdin closes the pipe: the extension sees EOF.
}

/// Owns the child: kills it when asked (or when every kill sender is
/// gone), and on its exit fails whatever still waits on it and publishes
/// the exit status.
async fn supervise(
    id: String,
    mut child: Child,
    mut kill: mpsc::Receiver<()>,
    routes: Arc<Mutex<Routes>>,
    exit: watch::Sender<Option<ExitStatus>>,
) {
    let status = tokio::select! {
        status = child.wait() => status,
        _ = kill.recv() => {
            let _ = child.start_kill();
            child.wait().await
        }
    };
    match status {
        Ok(status) => {
            tracing::debug!("extension {id} exited: {status}");
            lock(&routes).die(format!("exited ({status})"));
            let _ = exit.send(Some(status));
        }
        Err(e) => lock(&routes).die(format!("could not be waited for: {e}")),
    }
}

/// Starts the extension's process with its three pipes.
fn start(manifest: &Manifest) -> anyhow::Result<tokio::process::Child> {
    // Only the base variables and those the manifest names: an extension
    // is third-party code and never sees the host's keys.
    let env = BASE_ENV
        .iter()
        .copied()
        .chain(manifest.pass_env.iter().map(String::as_str));
    ChildBuilder::new(&manifest.command)
        .args(&manifest.args)
        .current_dir(&manifest.root)
        .env_only(env)
        .envs(&manifest.env)
        .stdio(Stdio::piped(), Stdio::piped(), Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow!(
                "extension {:?} could not start {}: {e}",
                manifest.id,
                manifest.command.display()
            )
        })
}

async fn read_stdout(
    plugin: String,
    mut stdout: ChildStdout,
    routes: Arc<Mutex<Routes>>,
    stdin: mpsc::WeakSender<Vec<u8>>,
    kill: mpsc::WeakSender<()>,
) {
    let mut decoder = Decoder::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let reason = 'read: loop {
        let n = match stdout.read(&mut chunk).await {
            Ok(0) => break "closed its stdout".to_owned(),
            Ok(n) => n,
            Err(e) => break format!("stdout could not be read: {e}"),
        };
        decoder.push(&chunk[..n]);
        loop {
            let body = match decoder.next_frame() {
                Ok(Some(body)) => body,
                Ok(None) => break,
                Err(e) => break 'read format!("sent a broken frame: {e}"),
            };
            let msg: RpcIn = match serde_json::from_slice(&body) {
                Ok(m) => m,
                Err(e) => break 'read format!("sent a frame that is not JSON-RPC: {e}"),
            };
            route(&plugin, msg, &routes, &stdin).await;
        }
    };
    tracing::debug!("extension {plugin} reader ends: {reason}");
    lock(&routes).die(reason);
    // A process whose output cannot be framed any more is useless.
    if let Some(kill) = kill.upgrade() {
        let _ = kill.try_send(());
    }
}

async fn route(
    plugin: &str,
    msg: RpcIn,
    routes: &Mutex<Routes>,
    stdin: &mpsc::WeakSender<Vec<u8>>,
) {
    match (msg.method, msg.id) {
        (Some(method), None) => {
            if method != "provider.stream.event" {
                tracing::debug!("extension {plugin}: ignoring notification {method}");
                return;
            }
            let Some(event) = msg.params.and_then(parse_event) else {
                return;
            };
            let target = {
                let routes = lock(routes);
                routes
                    .stream
                    .and_then(|id| routes.pending.get(&id).cloned())
            };
            let Some(tx) = target else { return };
            // A tool call arrives whole; the client is shown the same
            // start/end pair an HTTP stream gives.
            if let Incoming::Event(Event::Delta(StreamEvent::ToolcallEnd {
                tool_call_id,
                name,
                ..
            })) = &event
            {
                let start = StreamEvent::ToolcallStart {
                    tool_call_id: tool_call_id.clone(),
                    name: name.clone(),
                };
                let _ = tx.send(Incoming::Event(Event::Delta(start))).await;
            }
            let _ = tx.send(event).await;
        }
        (Some(method), Some(id)) => {
            // The host offers no methods to extensions yet.
            let body = json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": -32601, "message": format!("method not found: {method}")}});
            if let Some(stdin) = stdin.upgrade() {
                let _ = stdin.try_send(framing::encode(body.to_string().as_bytes()));
            }
        }
        (None, Some(id)) => {
            let Some(id) = id.as_u64() else { return };
            let tx = {
                let mut routes = lock(routes);
                if routes.stream == Some(id) {
                    routes.stream = None;
                }
                routes.pending.remove(&id)
            };
            let Some(tx) = tx else { return };
            let answer = match (msg.result, msg.error) {
                (_, Some(err)) => Incoming::Error(rpc_error_text(&err)),
                (Some(result), None) => Incoming::Result(result),
                (None, None) => Incoming::Result(Value::Null),
            };
            let _ = tx.send(answer).await;
        }
        (None, None) => {
            tracing::debug!("extension {plugin}: ignoring a frame with no id or method")
        }
    }
}

fn rpc_error_text(err: &Value) -> String {
    let text = match err.get("message").and_then(Value::as_str) {
        Some(m) => match err.get("code") {
            Some(code) => format!("{m} (code {code})"),
            None => m.to_owned(),
        },
        None => err.to_string(),
    };
    // A named error code (`data.code`, e.g. `context_overflow`) is kept in
    // the message: the turn recognises an overflow by it.
    match err.pointer("/data/code").and_then(Value::as_str) {
        Some(named) => format!("{text} [{named}]"),
        None => text,
    }
}

/// Reads a stream event, flat (`{type, delta}`) or wrapped (`{event: {...}}`).
/// `done` carries nothing the final result does not, so it is dropped here.
pub(crate) fn parse_event(params: Value) -> Option<Incoming> {
    let mut ev = match params {
        Value::Object(mut m) if !m.contains_key("type") && m.contains_key("event") => {
            m.remove("event")?
        }
        other => other,
    };
    let obj = ev.as_object_mut()?;
    let kind = obj.get("type")?.as_str()?.to_owned();
    let mut take_str = |key: &str| match obj.remove(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let delta = match kind.as_str() {
        "text" | "text_delta" => StreamEvent::TextDelta {
            delta: take_str("delta").or_else(|| take_str("text"))?,
        },
        "thinking" | "thinking_delta" => StreamEvent::ThinkingDelta {
            delta: take_str("delta").or_else(|| take_str("thinking"))?,
        },
        "tool_use" => StreamEvent::ToolcallEnd {
            tool_call_id: take_str("id")?,
            name: take_str("name")?,
            input: obj.remove("input").unwrap_or_else(|| json!({})),
        },
        "usage" => {
            let usage = obj.remove("usage").unwrap_or(ev);
            let usage = serde_json::from_value::<Usage>(usage).ok()?;
            return Some(Incoming::Event(Event::Usage(usage)));
        }
        "error" => {
            return Some(Incoming::Failed(
                take_str("message").unwrap_or_else(|| "the extension reported an error".into()),
            ))
        }
        _ => return None,
    };
    Some(Incoming::Event(Event::Delta(delta)))
}

async fn read_stderr(plugin: String, mut stderr: ChildStderr, tail: Arc<Mutex<String>>) {
    let mut chunk = vec![0u8; 8192];
    loop {
        let n = match stderr.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&chunk[..n]);
        tracing::debug!(target: "extension_stderr", "{plugin}: {}", text.trim_end());
        let mut tail = tail.lock().unwrap_or_else(|p| p.into_inner());
        tail.push_str(&text);
        if tail.len() > STDERR_TAIL {
            let mut cut = tail.len() - STDERR_TAIL;
            while !tail.is_char_boundary(cut) {
                cut += 1;
            }
            tail.drain(..cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(i: Option<Incoming>) -> Option<StreamEvent> {
        match i {
            Some(Incoming::Event(Event::Delta(d))) => Some(d),
            _ => None,
        }
    }

    #[test]
    fn events_flat_and_wrapped() {
        let e = delta(parse_event(json!({"type":"text","delta":"hi"})));
        assert!(matches!(e, Some(StreamEvent::TextDelta { ref delta }) if delta == "hi"));
        let e = delta(parse_event(
            json!({"event":{"type":"thinking","delta":"h"}}),
        ));
        assert!(matches!(e, Some(StreamEvent::ThinkingDelta { ref delta }) if delta == "h"));
        let e = parse_event(json!({"type":"usage","input_tokens":3,"output_tokens":4}));
        assert!(
            matches!(e, Some(Incoming::Event(Event::Usage(u))) if u.input_tokens == 3 && u.output_tokens == 4)
        );
        let e = parse_event(json!({"type":"usage","usage":{"input_tokens":1}}));
        assert!(matches!(e, Some(Incoming::Event(Event::Usage(u))) if u.input_tokens == 1));
        assert!(parse_event(json!({"type":"text"})).is_none());
        assert!(parse_event(json!("x")).is_none());
        assert!(parse_event(json!({"type":"done"})).is_none());
        assert!(matches!(
            parse_event(json!({"type":"error","message":"m"})),
            Some(Incoming::Failed(ref m)) if m == "m"
        ));
    }
}
