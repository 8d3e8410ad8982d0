//! Where a host's output goes: the typed half of the host boundary.
//!
//! The host, its turns and its background tasks hand every frame they
//! produce to a [`Sink`] as a typed [`Frame`] (or, for the deltas a turn
//! streams by the thousand, a burst of typed [`StreamEvent`]s). Each front
//! end implements [`FrameSink`] for its own wire: the native one serializes
//! to stdout (`native.rs`), the ACP one maps to `session/update`s
//! (`acp/sink.rs`), and tests collect the frames in memory
//! (`host::memory`). Nothing in this process encodes JSON only for another
//! part of it to parse again (style.md, example 18).
//!
//! Answers to commands do not travel here: the host delivers each through
//! the command's own [`crate::host::Reply`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::protocol::{Frame, StreamEvent};

/// A future a sink method returns; boxed so that [`FrameSink`] can be a
/// trait object shared by every task that emits.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One front end's way of writing a host's frames.
///
/// Calls made one after another by one task are delivered in that order; a
/// call returns once its output is queued (so a slow client pushes back on
/// the caller, and an answer sent after it cannot overtake it).
pub(crate) trait FrameSink: Send + Sync + 'static {
    /// One frame, after everything sent before it.
    fn frame<'a>(&'a self, frame: &'a Frame) -> BoxFuture<'a, ()>;

    /// A burst of events streamed by the turn `prompt_id`, in order, written
    /// as one unit.
    fn updates<'a>(&'a self, prompt_id: &'a str, events: &'a [StreamEvent]) -> BoxFuture<'a, ()>;

    /// The tool call `tool_call_id` (announced by `tool_execution_start`)
    /// was let through the permission gate and starts running now. No
    /// native frame says so (the native wire's client answered the
    /// question itself); ACP's tool status needs it, to go `in_progress`
    /// only once a call no longer waits for approval.
    fn tool_running<'a>(&'a self, _tool_call_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    /// A burst of events a subagent streamed, on its way to the client of
    /// the turn `prompt_id`, inside that turn's `task` call `parent`.
    fn nested_updates<'a>(
        &'a self,
        prompt_id: &'a str,
        parent: &'a str,
        events: &'a [StreamEvent],
    ) -> BoxFuture<'a, ()>;

    /// The tool call `tool_call_id` runs in the editor's terminal
    /// `terminal_id` (ACP's `terminal/create`), which the editor shows
    /// live. Only the ACP front end starts such terminals.
    fn tool_terminal<'a>(
        &'a self,
        _tool_call_id: &'a str,
        _terminal_id: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// Something a child did, on its way to the parent's client: the frame is
/// shown there tagged with the parent's `task` call
/// (`parent_tool_call_id`), in the order the child produced it.
#[derive(Debug)]
pub(crate) enum Nested {
    /// `tool_execution_start` / `_update` / `_end`, `permission_request`,
    /// `permission_cancelled` of the child.
    Frame(Box<Frame>),
    /// A burst of the child's `message_update` events.
    Events(Vec<StreamEvent>),
    /// The child's tool call passed its gate and runs now (ACP's
    /// `in_progress`; see `FrameSink::tool_running`).
    Running(String),
}

/// A cheap handle to a front end's sink, cloned into every task that emits.
#[derive(Clone)]
pub(crate) struct Sink(Arc<dyn FrameSink>);

impl Sink {
    pub(crate) fn new(sink: impl FrameSink) -> Self {
        Sink(Arc::new(sink))
    }

    pub(crate) async fn frame(&self, frame: &Frame) {
        self.0.frame(frame).await;
    }

    /// One streamed event on its own (a burst of one).
    pub(crate) async fn update(&self, prompt_id: &str, event: &StreamEvent) {
        self.0.updates(prompt_id, std::slice::from_ref(event)).await;
    }

    pub(crate) async fn updates(&self, prompt_id: &str, events: &[StreamEvent]) {
        self.0.updates(prompt_id, events).await;
    }

    /// What a subagent did (`agents::Nested`), shown inside the turn
    /// `prompt_id`'s `task` call `parent`: its frames carry the parent's
    /// prompt id and `parent_tool_call_id`.
    pub(crate) async fn nested(&self, prompt_id: &str, parent: &str, nested: Nested) {
        match nested {
            Nested::Frame(frame) => {
                let mut frame = *frame;
                frame.nest(prompt_id, parent);
                self.0.frame(&frame).await;
            }
            Nested::Events(events) => self.0.nested_updates(prompt_id, parent, &events).await,
            Nested::Running(id) => self.0.tool_running(&id).await,
        }
    }

    pub(crate) async fn tool_running(&self, tool_call_id: &str) {
        self.0.tool_running(tool_call_id).await;
    }

    pub(crate) async fn tool_terminal(&self, tool_call_id: &str, terminal_id: &str) {
        self.0.tool_terminal(tool_call_id, terminal_id).await;
    }
}
