//! An in-process child's sink: what the child host emits goes to the
//! parent's running `task` call as [`Nested`] updates, which the parent's
//! turn shows to its client tagged with that call.
//!
//! Only what the client needs to follow the child is passed on: its
//! streamed text and tool calls, its tools' output, and its permission
//! questions. The child's own turn bookkeeping (`agent_start`,
//! `agent_end`, …) stays inside: the parent's client would take a second
//! `agent_end` for the end of its own turn. Between two `task` calls
//! (a child kept for later) there is no call to pass anything to, and
//! nothing is sent.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

use super::Nested;
use crate::protocol::{Frame, StreamEvent};
use crate::sink::{BoxFuture, FrameSink};
use crate::tools::ToolUpdate;

/// The `task` call a child is working for now, if any; shared between the
/// child's sink and the hub, which points it at each new call.
#[derive(Clone, Default)]
pub(crate) struct Target(Arc<Mutex<Option<mpsc::Sender<ToolUpdate>>>>);

impl Target {
    pub(crate) fn set(&self, updates: Option<mpsc::Sender<ToolUpdate>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = updates;
    }

    /// Sends in order, waiting for room: a child's frames are never
    /// dropped, and a slow client slows the child.
    async fn send(&self, nested: Nested) {
        let updates = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(updates) = updates {
            let _ = updates.send(ToolUpdate::Subagent(nested)).await;
        }
    }
}

pub(crate) struct ChildSink {
    pub target: Target,
}

impl FrameSink for ChildSink {
    fn frame<'a>(&'a self, frame: &'a Frame) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let passed = match frame {
                Frame::ToolExecutionStart(f) => Frame::ToolExecutionStart(f.clone()),
                Frame::ToolExecutionUpdate(f) => Frame::ToolExecutionUpdate(f.clone()),
                Frame::ToolExecutionEnd(f) => Frame::ToolExecutionEnd(f.clone()),
                Frame::PermissionRequest(f) => Frame::PermissionRequest(f.clone()),
                Frame::PermissionCancelled(f) => Frame::PermissionCancelled(f.clone()),
                _ => return,
            };
            self.target.send(Nested::Frame(Box::new(passed))).await;
        })
    }

    fn updates<'a>(&'a self, _prompt_id: &'a str, events: &'a [StreamEvent]) -> BoxFuture<'a, ()> {
        Box::pin(self.target.send(Nested::Events(events.to_vec())))
    }

    fn nested_updates<'a>(
        &'a self,
        prompt_id: &'a str,
        _parent: &'a str,
        events: &'a [StreamEvent],
    ) -> BoxFuture<'a, ()> {
        self.updates(prompt_id, events)
    }

    fn tool_running<'a>(&'a self, tool_call_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.target.send(Nested::Running(tool_call_id.to_owned())))
    }
}
