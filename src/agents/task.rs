//! The `task` tool: the model hands a part of its work to a subagent and
//! gets the subagent's final answer back as the tool result.
//!
//! Offered through its own tool source, so only sessions that may delegate
//! (not the children themselves) have it. Its description lists the agents
//! available, which is how the model learns of them. Calls of one round run
//! side by side (`Tool::concurrent`), at most `max_parallel` of one session
//! at a time; the rest wait for a slot.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::{ChildAnswer, ChildRun, Runner};
use crate::permissions::Access;
use crate::tools::{BoxFuture, FileSystem, Preview, Tool, ToolCtx, ToolOutput, ToolSource};

/// One agent the model may pick.
pub(crate) struct Agent {
    pub name: String,
    pub description: String,
    pub runner: Arc<dyn Runner>,
}

/// The source offering the `task` tool to one session.
pub(crate) struct TaskSource {
    tool: Arc<dyn Tool>,
}

impl TaskSource {
    /// The tool for these agents; at most `max_parallel` of this
    /// session's calls run at once.
    pub(crate) fn new(agents: Vec<Agent>, max_parallel: usize) -> Self {
        let definition = definition(&agents);
        TaskSource {
            tool: Arc::new(TaskTool {
                agents,
                slots: Arc::new(Semaphore::new(max_parallel.max(1))),
                definition,
            }),
        }
    }
}

impl ToolSource for TaskSource {
    fn name(&self) -> &str {
        "subagents"
    }

    fn version(&self) -> u64 {
        0
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        vec![self.tool.clone()]
    }
}

struct TaskTool {
    agents: Vec<Agent>,
    slots: Arc<Semaphore>,
    definition: Value,
}

/// A call's input, checked.
struct Input {
    description: String,
    prompt: String,
    agent: usize,
    session_id: Option<String>,
}

impl TaskTool {
    fn parse(&self, input: &Value) -> anyhow::Result<Input> {
        let text = |key: &str| -> anyhow::Result<Option<String>> {
            match input.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => bail!("task: `{key}` must be a string"),
            }
        };
        let prompt = text("prompt")?.filter(|p| !p.is_empty()).context(
            "task: `prompt` is required: the whole task, as the subagent should read it",
        )?;
        let name = text("agent")?.unwrap_or_else(|| super::definitions::GENERAL.to_owned());
        let agent = self
            .agents
            .iter()
            .position(|a| a.name == name)
            .with_context(|| {
                let known: Vec<&str> = self.agents.iter().map(|a| a.name.as_str()).collect();
                format!(
                    "task: there is no agent {name:?}; the agents are {}",
                    known.join(", ")
                )
            })?;
        let session_id = text("session_id")?.filter(|s| !s.is_empty());
        if let Some(id) = &session_id {
            crate::session::validate_id(id).map_err(|e| anyhow::anyhow!("task: {}", e.message))?;
        }
        Ok(Input {
            description: text("description")?.unwrap_or_default(),
            prompt,
            agent,
            session_id,
        })
    }
}

impl Tool for TaskTool {
    fn name(&self) -> &str {
        "task"
    }

    fn definition(&self) -> Value {
        self.definition.clone()
    }

    fn access(&self) -> Access {
        Access::Delegates
    }

    fn concurrent(&self) -> bool {
        true
    }

    fn summary(&self) -> String {
        "hand a self-contained part of the work to a subagent, which reports back".into()
    }

    fn preview(&self, input: &Value, cwd: &Path, _: &dyn FileSystem) -> anyhow::Result<Preview> {
        let input = self.parse(input)?;
        let agent = &self.agents[input.agent].name;
        Ok(Preview {
            title: format!("Task ({agent}): {}", input.description),
            diff: None,
            paths: vec![cwd.to_owned()],
        })
    }

    fn run<'a>(&'a self, input: &'a Value, ctx: &'a ToolCtx) -> BoxFuture<'a, ToolOutput> {
        Box::pin(async move {
            let input = match self.parse(input) {
                Ok(input) => input,
                Err(e) => return ToolOutput::failed(&e),
            };
            // A slot first: calls past `max_parallel` wait here.
            let _slot = tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => return ToolOutput::error("not run: the turn was aborted"),
                slot = self.slots.clone().acquire_owned() => slot,
            };
            let agent = &self.agents[input.agent];
            let run = ChildRun {
                prompt: &input.prompt,
                cwd: &ctx.cwd,
                mode: ctx.caller.gate.mode(),
                cancel: &ctx.cancel,
                updates: &ctx.env.updates,
                parent: &ctx.caller,
                // The child works in the parent's sandbox too.
                backends: crate::tools::Backends {
                    fs: ctx.env.fs.clone(),
                    processes: ctx.env.processes.clone(),
                    sandbox: ctx.env.sandbox.clone(),
                },
            };
            match agent.runner.run(input.session_id.as_deref(), run).await {
                Ok(answer) => output(&agent.name, answer),
                Err(why) => ToolOutput::error(format!("the {} subagent failed: {why}", agent.name)),
            }
        })
    }
}

/// The tool result: the subagent's answer, then how to continue it and
/// what it used.
fn output(agent: &str, answer: ChildAnswer) -> ToolOutput {
    let ChildAnswer {
        session_id,
        text,
        stop_reason,
        usage,
        cost_usd,
    } = answer;
    let body = if text.trim().is_empty() {
        "(the subagent gave no answer)".to_owned()
    } else {
        text
    };
    let cost = cost_usd.map_or_else(String::new, |c| format!(", ${c:.4}"));
    let content = format!(
        "{body}\n\n---\nsubagent {agent}, session_id {session_id} (give it as session_id to continue this subagent)\nstop_reason {stop_reason}; {} input tokens, {} output tokens{cost}",
        usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens,
        usage.output_tokens,
    );
    let mut out = match stop_reason.as_str() {
        "error" | "aborted" => ToolOutput::error(content),
        _ => ToolOutput::ok(content),
    };
    out.cost_usd = cost_usd.unwrap_or(0.0);
    out
}

/// The tool's definition, with the agents the model may pick.
fn definition(agents: &[Agent]) -> Value {
    let mut description = String::from(
        "Run a subagent: another agent with its own context works on a task and returns its final answer (only that answer comes back; the subagent cannot see this conversation, so give it everything it needs in `prompt`). Several task calls in one message run at the same time. To continue a subagent's work with what it already knows, pass the session_id its result named.\n\nAgents:",
    );
    for agent in agents {
        description.push_str(&format!("\n- {}: {}", agent.name, agent.description));
    }
    let names: Vec<&str> = agents.iter().map(|a| a.name.as_str()).collect();
    json!({
        "name": "task",
        "description": description,
        "input_schema": {
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "The task in 3-6 words, for the user."},
                "prompt": {"type": "string", "description": "The whole task for the subagent, with the context it needs."},
                "agent": {"type": "string", "enum": names, "description": "Which agent runs it (default: general)."},
                "session_id": {"type": "string", "description": "Continue that earlier subagent session (its result named it) instead of starting a new one."}
            },
            "required": ["description", "prompt"]
        }
    })
}
