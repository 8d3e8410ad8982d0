//! Subagents: the `task` tool runs a child agent and hands its final
//! answer back to the parent's model as the tool result.
//!
//! A child is either another session of this process (an in-process
//! agent, defined in Markdown like Claude Code's `.claude/agents/*.md`) or
//! any ACP agent started as a child process (`[agents.<name>]` in the
//! config). Both stream what they do to the parent's client as it happens,
//! as [`Nested`] frames tagged with the parent's `task` call, and both are
//! cancelled with the parent's turn.
//!
//! - `definitions`: agent definitions from files and the config.
//! - `task`: the `task` tool and the tool source that offers it.
//! - `hub`: the process-wide registry of live children (caps, idle close).
//! - `inprocess`: a child session run by a host in this process.
//! - `external`: an ACP agent run as a child process.
//! - `nested`: a child host's sink, forwarding to the parent's call.

pub(crate) mod definitions;
pub(crate) mod external;
pub(crate) mod hub;
pub(crate) mod inprocess;
mod nested;
pub(crate) mod task;

use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::message::Usage;
use crate::protocol::Mode;
pub(crate) use crate::sink::Nested;
use crate::tools::{Backends, BoxFuture, Caller, ToolUpdate};

/// What the agents need of the session factory, which sits above them
/// (it builds their sessions' parts and cannot be named from here).
pub(crate) trait Children: Send + Sync {
    /// A subagent's session (`Factory::child_session`).
    fn child_session(
        &self,
        spec: &inprocess::ChildSpec<'_>,
    ) -> Result<crate::host::Parts, crate::error::Coded>;

    /// The process's open child sessions.
    fn hub(&self) -> &Arc<hub::Hub>;

    /// A model's prices, to cost a child's turn.
    fn price(&self, model: &str) -> Option<crate::provider::http::catalog::Price>;
}

/// What a session may delegate to: built by the factory for each session
/// that may (not for the children themselves).
pub(crate) struct Delegation {
    pub children: Arc<dyn Children>,
    /// The config's external agents (one process each, for the process).
    pub external: Vec<Arc<external::ExternalAgent>>,
    /// The in-process agents found for the session's directory.
    pub definitions: Vec<definitions::Definition>,
}

impl Delegation {
    /// The session's `task` tool source: the in-process agents (sharing
    /// the session's MCP servers), then the config's external ones, which
    /// win a name (the user's own config over a repository's file).
    pub(crate) fn source(self, mcp: Option<Arc<crate::mcp::Manager>>) -> task::TaskSource {
        let external = &self.external;
        let mut agents: Vec<task::Agent> = Vec::new();
        for def in self.definitions {
            if external.iter().any(|e| e.name() == def.name) {
                tracing::warn!(
                    "agent {}: [agents.{0}] in the config replaces its file",
                    def.name
                );
                continue;
            }
            agents.push(task::Agent {
                name: def.name.clone(),
                description: def.description.clone(),
                runner: Arc::new(inprocess::InProcess {
                    def,
                    children: self.children.clone(),
                    mcp: mcp.clone(),
                }),
            });
        }
        for agent in external {
            agents.push(task::Agent {
                name: agent.name().to_owned(),
                description: agent.description().to_owned(),
                runner: agent.clone(),
            });
        }
        task::TaskSource::new(agents, self.children.hub().limits().max_parallel)
    }
}

/// What one `task` call gives the child that runs it.
pub(crate) struct ChildRun<'a> {
    /// The task, as the parent's model wrote it.
    pub prompt: &'a str,
    /// The parent's working directory: the child works there too.
    pub cwd: &'a Path,
    /// The widest permission mode the child may use: the parent's now, or
    /// narrower when the agent's definition says so.
    pub mode: Mode,
    /// The parent's turn was aborted: stop the child now.
    pub cancel: &'a CancellationToken,
    /// Where [`Nested`] frames go, as `ToolUpdate::Subagent`. Sent with
    /// `send().await` (never dropped): the parent's client sees every one,
    /// in order, and a slow client slows the child.
    pub updates: &'a mpsc::Sender<ToolUpdate>,
    /// The parent session and its `task` call. A question the child asks
    /// is registered in the parent's gate (`parent.gate`), so the parent's
    /// client answers it with an ordinary `permission_response` (the
    /// request's frame goes out as a [`Nested::Frame`]).
    pub parent: &'a Caller,
    /// The parent's file system and processes (the editor's, under ACP),
    /// which an in-process child uses too.
    pub backends: Backends,
}

/// A child's final answer.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChildAnswer {
    /// The child's session: the parent's model continues it by this id.
    pub session_id: String,
    /// The child's last message, as the parent's model will read it.
    pub text: String,
    /// `end_turn`, `aborted`, `budget_exceeded`, `error`, … (an ACP
    /// agent's stop reason as it gave it).
    pub stop_reason: String,
    /// Tokens the child used in this call, when it reports them.
    pub usage: Usage,
    /// What this call cost, when the child's model has prices.
    pub cost_usd: Option<f64>,
}

/// An agent that can run a task: an in-process definition or an external
/// ACP agent.
pub(crate) trait Runner: Send + Sync {
    /// Runs `run.prompt` in the child session `session` (a new one when
    /// `None`) to the end of its turn, streaming what it does through
    /// `run.updates`. An error is a sentence for the parent's model (the
    /// agent failed to start, crashed, hung past its timeout, or the
    /// session cannot be continued).
    fn run<'a>(
        &'a self,
        session: Option<&'a str>,
        run: ChildRun<'a>,
    ) -> BoxFuture<'a, Result<ChildAnswer, String>>;
}
