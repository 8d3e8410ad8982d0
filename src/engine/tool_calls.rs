//! Executing the model's tool calls of one round: the `PreToolUse` hooks and
//! the permission gate first,
//! then the tool with its output streamed as `tool_execution_update`, and a
//! `tool_result` block for every call, whatever happened to it.
//!
//! Each call looks its tool up once in the tool table; from then on the
//! tool itself is at hand (its preview, its access, its run), so nothing
//! here depends on which tools exist.
//!
//! Calls run one after another in the order the model gave them, so a
//! permission prompt is never shown for a call whose predecessor has not
//! finished, and the results read in the order the model expects. The
//! exception is a run of calls to a tool that says it may run side by
//! side (`task`: subagents): those start together, and their results
//! still read in the model's order.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::mpsc;

use super::{TurnCtx, TurnMsg};
use crate::message::Block;
use crate::permissions::{Access, Cover, Verdict};
use crate::protocol::Decision;
use crate::protocol::{
    Frame, PermissionCancelledFrame, PermissionRequestFrame, PlanFrame, ToolExecutionEndFrame,
    ToolExecutionStartFrame, ToolExecutionUpdateFrame,
};
use crate::tools::{
    self, paths, Caller, Tool, ToolCtx, ToolImage, ToolOutput, ToolUpdate, Toolset,
};

/// The results of a round's calls, and whether the turn was aborted.
pub(super) struct Results {
    pub blocks: Vec<Block>,
    pub cancelled: bool,
    /// What the subagents the calls ran spent (`task`).
    pub children_usd: f64,
}

pub(super) async fn execute(
    prompt_id: &str,
    calls: &[Block],
    table: &Toolset,
    ctx: &TurnCtx,
) -> Results {
    let mut blocks = Vec::with_capacity(calls.len());
    let mut children_usd = 0.0;
    let mut rest = calls;
    while !rest.is_empty() {
        // Consecutive calls of a tool that may run side by side (`task`)
        // start together; any other call runs alone, in order.
        let together = rest
            .iter()
            .take_while(|c| concurrent(c, table))
            .count()
            .max(1);
        let (batch, after) = rest.split_at(together);
        rest = after;
        let runs = batch.iter().map(|call| whole(prompt_id, call, table, ctx));
        for (block, spent) in futures_util::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
        {
            blocks.push(block);
            children_usd += spent;
        }
    }
    Results {
        blocks,
        cancelled: ctx.cancel.is_cancelled(),
        children_usd,
    }
}

/// Whether `call` is to a tool whose calls may run side by side.
fn concurrent(call: &Block, table: &Toolset) -> bool {
    matches!(call, Block::ToolUse { name, .. } if table.get(name).is_some_and(|t| t.concurrent()))
}

/// One call from its start frame to its result block (and what a subagent
/// it ran spent); `None` for a block that is not a call.
async fn whole(
    prompt_id: &str,
    call: &Block,
    table: &Toolset,
    ctx: &TurnCtx,
) -> Option<(Block, f64)> {
    let Block::ToolUse { id, name, input } = call else {
        return None;
    };
    if ctx.cancel.is_cancelled() {
        // Every call still gets a result: providers reject a tool call
        // left unanswered in the history.
        let block = result(id, "not run: the turn was aborted".into(), Vec::new(), true);
        return Some((block, 0.0));
    }
    ctx.out
        .frame(&Frame::ToolExecutionStart(ToolExecutionStartFrame {
            prompt_id: prompt_id.to_owned(),
            tool_call_id: id.clone(),
            name: name.clone(),
            input: input.clone(),
            parent_tool_call_id: None,
        }))
        .await;
    let mut output = one(prompt_id, id, name, input, table, ctx).await;
    let images = std::mem::take(&mut output.images);
    // The output moves into the frame and back out into the result
    // block: a long tool output is never held twice.
    let end = Frame::ToolExecutionEnd(ToolExecutionEndFrame {
        prompt_id: prompt_id.to_owned(),
        tool_call_id: id.clone(),
        result: output.content,
        is_error: output.is_error,
        parent_tool_call_id: None,
    });
    ctx.out.frame(&end).await;
    let Frame::ToolExecutionEnd(end) = end else {
        unreachable!("built as a tool_execution_end above")
    };
    Some((
        result(id, end.result, images, end.is_error),
        output.cost_usd,
    ))
}

/// A call's result block: its text as a plain string, or, when the tool
/// returned images, Anthropic's list of a text block and image blocks
/// (the OpenAI API is sent the images in a user message after the tool
/// messages, `provider/http/openai.rs`).
fn result(id: &str, content: String, images: Vec<ToolImage>, is_error: bool) -> Block {
    let content = if images.is_empty() {
        Value::String(content)
    } else {
        let mut blocks = Vec::with_capacity(images.len() + 1);
        if !content.is_empty() {
            blocks.push(serde_json::json!({"type": "text", "text": content}));
        }
        for image in images {
            blocks.push(serde_json::json!({
                "type": "image",
                "source": {"type": "base64", "media_type": image.media_type, "data": image.data},
            }));
        }
        Value::Array(blocks)
    };
    Block::ToolResult {
        tool_use_id: id.to_owned(),
        content,
        is_error,
    }
}

/// What the call would do. On a blocking thread: a preview reads through
/// the session's file system, whose calls block (`tools/env.rs`), and a
/// remote one waits there for an answer that this runtime's one thread
/// must be free to read.
async fn preview(
    tool: &Arc<dyn Tool>,
    input: &Value,
    ctx: &TurnCtx,
) -> anyhow::Result<crate::tools::Preview> {
    let (tool, input, cwd) = (tool.clone(), input.clone(), ctx.cwd.clone());
    let fs = ctx.backends.fs.clone();
    tokio::task::spawn_blocking(move || tool.preview(&input, &cwd, fs.as_ref()))
        .await
        .map_err(|e| anyhow::anyhow!("the preview stopped: {e}"))?
}

/// One call: decide, maybe ask, then run.
async fn one(
    prompt_id: &str,
    id: &str,
    name: &str,
    input: &Value,
    table: &Toolset,
    ctx: &TurnCtx,
) -> ToolOutput {
    let Some(tool) = table.get(name) else {
        return table.unknown(name);
    };
    // An abort does not wait for a preview blocked on a remote backend.
    let previewed = tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => return ToolOutput::error("not run: the turn was aborted"),
        p = preview(tool, input, ctx) => p,
    };
    let preview = match previewed {
        Ok(p) => p,
        Err(e) => return ToolOutput::failed(&e),
    };
    // A write the sandbox's writable roots refuse would be refused when it
    // runs (the tool checks again): nobody is asked about it first.
    if tool.access() == Access::EditsFiles {
        if let Some(sandbox) = &ctx.backends.sandbox {
            if let Some(why) = preview
                .paths
                .iter()
                .find_map(|p| sandbox.check_write(p).err())
            {
                return ToolOutput::error(format!("{name}: {why}"));
            }
        }
    }
    // A read-only call inside a skill's folder counts as inside: the
    // system prompt lists the skills for the model to read.
    let outside = preview.paths.iter().any(|p| {
        let in_skill = tool.access() == Access::ReadOnly && paths::is_inside(p, &ctx.skill_roots);
        !paths::is_inside(p, ctx.gate.roots()) && !in_skill
    });
    // bash runs in the sandbox when its backend enforces one.
    let sandboxed =
        tool.access() == Access::Unrestricted && ctx.backends.processes.sandbox().is_some();
    let cover = match (sandboxed, tool.leaves_sandbox(input)) {
        (false, _) => Cover::None,
        (true, true) => Cover::Leaves,
        (true, false) => Cover::Enforced,
    };
    let verdict = ctx.gate.verdict(name, tool.access(), outside, cover);
    let verdict = match super::hooks::pre_tool_use(ctx, prompt_id, id, name, input, verdict).await {
        Ok(v) => v,
        Err(denied) => return denied,
    };
    match verdict {
        Verdict::Run => {}
        Verdict::Refuse(why) => return ToolOutput::error(why),
        Verdict::Ask => {
            let (request_id, answer) = match ctx.gate.ask(name) {
                Ok(q) => q,
                Err(why) => return ToolOutput::failed(&why),
            };
            ctx.out
                .frame(&Frame::PermissionRequest(PermissionRequestFrame {
                    request_id: request_id.clone(),
                    prompt_id: prompt_id.to_owned(),
                    tool_call_id: id.to_owned(),
                    tool: name.to_owned(),
                    input: input.clone(),
                    title: preview.title,
                    diff: preview.diff,
                    outside_cwd: outside,
                    parent_tool_call_id: None,
                }))
                .await;
            let answer = tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => {
                    ctx.gate.cancel(&request_id);
                    ctx.out
                        .frame(&Frame::PermissionCancelled(PermissionCancelledFrame {
                            request_id,
                            reason: "the turn was aborted".into(),
                        }))
                        .await;
                    return ToolOutput::error("not run: the turn was aborted");
                }
                a = answer => a,
            };
            match answer {
                Ok(a) if a.decision != Decision::Deny => {}
                Ok(a) => {
                    return ToolOutput::error(match a.message {
                        // Nobody denied it: nobody could answer.
                        Some(m) if m == crate::permissions::NO_CLIENT => m,
                        Some(m) if !m.trim().is_empty() => {
                            format!("the user denied this {name} call: {m}")
                        }
                        _ => format!("the user denied this {name} call"),
                    });
                }
                Err(_) => {
                    return ToolOutput::error(format!(
                        "the permission request for this {name} call was dropped"
                    ))
                }
            }
        }
    }
    ctx.out.tool_running(id).await;
    let mut output = run(prompt_id, id, tool.as_ref(), input, ctx).await;
    if tool.access() == Access::Delegates {
        super::hooks::subagent_stop(ctx, prompt_id, id, input, &mut output).await;
    }
    super::hooks::post_tool_use(ctx, prompt_id, id, name, input, &mut output).await;
    output
}

/// Runs the tool, forwarding its incremental output as it comes.
async fn run(
    prompt_id: &str,
    id: &str,
    tool: &dyn Tool,
    input: &Value,
    ctx: &TurnCtx,
) -> ToolOutput {
    let (tx, mut rx) = mpsc::channel(tools::UPDATE_CAPACITY);
    let output = {
        let tctx = tool_ctx(ctx, id, tx);
        let running = async {
            // An abort that came while the call was being let through
            // wins: the tool is not started at all.
            if tctx.cancel.is_cancelled() {
                return ToolOutput::error("aborted");
            }
            tracing::debug!(tool = tool.name(), "running tool");
            tool.run(input, &tctx).await
        };
        tokio::pin!(running);
        loop {
            tokio::select! {
                out = &mut running => break out,
                Some(u) = rx.recv() => update(prompt_id, id, u, ctx).await,
            }
        }
    };
    // What the tool sent after its last select is the tail. Not awaited:
    // a sender a tool left in a task must not hold the turn.
    while let Ok(u) = rx.try_recv() {
        update(prompt_id, id, u, ctx).await;
    }
    output
}

/// Forwards one update of a running tool: output and plans as frames (a
/// plan also to the host, to be stored), the editor terminal it runs in to
/// the sink (only ACP has a place for it).
async fn update(prompt_id: &str, id: &str, update: ToolUpdate, ctx: &TurnCtx) {
    let output = match update {
        ToolUpdate::Output(text) => text,
        ToolUpdate::Terminal(terminal_id) => {
            ctx.out.tool_terminal(id, &terminal_id).await;
            return;
        }
        // Shown at once, in order with the call's frames; stored by the
        // host, which owns the session file.
        ToolUpdate::Plan(entries) => {
            let frame = Frame::Plan(PlanFrame {
                prompt_id: prompt_id.to_owned(),
                entries: entries.clone(),
            });
            ctx.out.frame(&frame).await;
            ctx.host.send(TurnMsg::Plan(entries));
            return;
        }
        // The subagent's own frames, tagged with this call.
        ToolUpdate::Subagent(nested) => {
            ctx.out.nested(prompt_id, id, nested).await;
            return;
        }
    };
    ctx.out
        .frame(&Frame::ToolExecutionUpdate(ToolExecutionUpdateFrame {
            prompt_id: prompt_id.to_owned(),
            tool_call_id: id.to_owned(),
            output,
            parent_tool_call_id: None,
        }))
        .await;
}

fn tool_ctx(ctx: &TurnCtx, id: &str, updates: mpsc::Sender<ToolUpdate>) -> ToolCtx {
    ToolCtx {
        cwd: ctx.cwd.clone(),
        cancel: ctx.cancel.child_token(),
        env: ctx.backends.env(updates),
        caller: Caller {
            session_id: ctx.session_id.clone(),
            tool_call_id: id.to_owned(),
            model: ctx.model.borrow().clone(),
            gate: ctx.gate.clone(),
        },
    }
}
