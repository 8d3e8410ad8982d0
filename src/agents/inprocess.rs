//! An in-process agent: a child session of this process, run by a host of
//! its own and driven through the typed host boundary, as a front end
//! drives one (a prompt, an abort, reading its last message).
//!
//! The child is a real session: stored with its parent's ids in its
//! header, listed under its parent, resumable. It works in the parent's
//! directory with the parent's file system and processes (the editor's,
//! under ACP), shares the parent's MCP servers, and asks its permission
//! questions through the parent's client (`Gate::child`). Its mode is the
//! parent's, or narrower when its definition says so.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::definitions::Definition;
use super::hub::{Child, Hub, Refusal};
use super::nested::{ChildSink, Target};
use super::{ChildAnswer, ChildRun, Children, Runner};
use crate::host::{self, Host, Parts, Signals};
use crate::message::Role;
use crate::protocol::{Command, GetMessagesParams, Mode, PromptParams, Response, TurnResponse};
use crate::sink::Sink;
use crate::tools::BoxFuture;

/// What a child session is opened with ([`Children::child_session`]).
pub(crate) struct ChildSpec<'a> {
    pub def: &'a Definition,
    /// Continue this stored child session instead of starting one.
    pub resume: Option<&'a str>,
    pub run: &'a ChildRun<'a>,
    /// The parent's MCP servers, which the child's tools come from too.
    pub mcp: Option<Arc<crate::mcp::Manager>>,
}

pub(crate) struct InProcess {
    pub def: Definition,
    pub children: Arc<dyn Children>,
    pub mcp: Option<Arc<crate::mcp::Manager>>,
}

impl Runner for InProcess {
    fn run<'a>(
        &'a self,
        session: Option<&'a str>,
        run: ChildRun<'a>,
    ) -> BoxFuture<'a, Result<ChildAnswer, String>> {
        Box::pin(async move {
            let hub = self.children.hub().clone();
            let (id, child) = self.child(&hub, session, &run)?;
            child.target.set(Some(run.updates.clone()));
            let answer = drive(&child, &id, &run).await;
            child.target.set(None);
            match &answer {
                Err(_) if child.running.is_finished() => hub.forget(&id),
                _ => hub.release(&id),
            }
            let (turn, text) = answer?;
            let model = child.settings.borrow().model.clone();
            let price = model.as_deref().and_then(|m| self.children.price(m));
            Ok(answer_of(&id, turn, text, price))
        })
    }
}

impl InProcess {
    /// The child session for this call: `session` if open (and idle), else
    /// opened from disk, else a new one.
    fn child(
        &self,
        hub: &Arc<Hub>,
        session: Option<&str>,
        run: &ChildRun<'_>,
    ) -> Result<(String, Arc<Child>), String> {
        let parent = &run.parent.session_id;
        if let Some(id) = session {
            match hub.take(id, parent) {
                Ok(Some(child)) => return Ok((id.to_owned(), child)),
                Ok(None) => {}
                Err(Refusal::Busy) => {
                    return Err(format!(
                        "subagent session {id} is running another task now; wait for that task's result, or start a new subagent"
                    ))
                }
                Err(Refusal::NotYours) => {
                    return Err(format!("session {id} is not a subagent of this session"))
                }
            }
        }
        hub.make_room()?;
        let spec = ChildSpec {
            def: &self.def,
            resume: session,
            run,
            mcp: self.mcp.clone(),
        };
        let parts = self.children.child_session(&spec).map_err(|e| e.message)?;
        let id = parts.session.header.id.clone();
        let child = Arc::new(start(parts, parent.clone()));
        hub.insert(id.clone(), child.clone());
        Ok((id, child))
    }
}

/// Starts a child's host; its frames go wherever its [`Target`] points.
fn start(parts: Parts, parent: String) -> Child {
    let target = Target::default();
    let sink = Sink::new(ChildSink {
        target: target.clone(),
    });
    let (handle, submissions) = host::channel();
    let (host, channels) = Host::new(parts, sink);
    let settings = host.settings();
    let (_never, closed) = oneshot::channel();
    let running = tokio::spawn(host.run(submissions, channels, closed, Signals::none()));
    Child {
        handle,
        target,
        settings,
        parent,
        running,
    }
}

/// Runs one prompt to its end (aborting it when the parent's turn is
/// aborted): how the turn ended, and the child's last message.
async fn drive(
    child: &Child,
    id: &str,
    run: &ChildRun<'_>,
) -> Result<(TurnResponse, String), String> {
    let gone =
        || format!("subagent session {id} stopped unexpectedly (see the log); start a new one");
    let prompt = child.handle.call(Command::Prompt(PromptParams {
        message: run.prompt.to_owned(),
        attachments: Vec::new(),
    }));
    tokio::pin!(prompt);
    let answer = tokio::select! {
        answer = &mut prompt => answer,
        _ = run.cancel.cancelled() => {
            // The abort is answered once the child's turn has ended, which
            // is also when the prompt's answer comes.
            let _ = child.handle.call(Command::Abort).await;
            prompt.await
        }
    };
    let turn = match answer.map_err(|_| gone())? {
        Ok(Response::Turn(turn)) => turn,
        Ok(Response::NotRun(_)) => {
            return Err("the subagent's task was dropped before it ran (aborted)".into())
        }
        Ok(other) => {
            return Err(format!(
                "the subagent answered the prompt unexpectedly: {other:?}"
            ))
        }
        Err(e) => {
            return Err(format!(
                "the subagent could not run the task: {}",
                e.message
            ))
        }
    };
    Ok((turn, last_answer(child).await))
}

/// The text of the child's last assistant message.
async fn last_answer(child: &Child) -> String {
    let messages = child
        .handle
        .call(Command::GetMessages(GetMessagesParams { all: false }))
        .await;
    let Ok(Ok(Response::GetMessages(list))) = messages else {
        return String::new();
    };
    list.messages
        .iter()
        .rev()
        .find(|m| m.role == Role::Assistant)
        .map(|m| m.text())
        .unwrap_or_default()
}

fn answer_of(
    id: &str,
    turn: TurnResponse,
    text: String,
    price: Option<crate::provider::http::catalog::Price>,
) -> ChildAnswer {
    let text = match (&turn.error, text.is_empty()) {
        (Some(error), true) => format!("(the subagent's turn failed: {error})"),
        (Some(error), false) => format!("{text}\n\n(the subagent's turn then failed: {error})"),
        (None, _) => text,
    };
    ChildAnswer {
        session_id: id.to_owned(),
        text,
        stop_reason: turn.stop_reason,
        cost_usd: price.map(|p| p.cost(&turn.usage)),
        usage: turn.usage,
    }
}

/// The child's mode: the parent's now, narrowed by the definition.
pub(crate) fn child_mode(parent: Mode, def: Option<Mode>) -> Mode {
    let width = |m: Mode| match m {
        Mode::ReadOnly => 0,
        Mode::Ask => 1,
        Mode::AcceptEdits => 2,
        Mode::AllowAll => 3,
    };
    match def {
        Some(d) if width(d) < width(parent) => d,
        _ => parent,
    }
}
