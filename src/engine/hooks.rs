//! The hooks a turn fires (SPEC §9.6): `PreToolUse` before the gate
//! decides a call, `PostToolUse` after it ran, `Stop` when the model ends
//! its turn. Each waits for its hooks unless the turn is aborted, which
//! drops them (and so kills their process groups).

use serde_json::Value;

use super::TurnCtx;
use crate::hooks::{fields, Event, Outcome, Permission};
use crate::permissions::Verdict;
use crate::tools::ToolOutput;

/// How many times `Stop` hooks may send the model back to work in one
/// turn, so that a hook that always blocks cannot keep a turn alive.
pub(super) const MAX_STOP_CONTINUATIONS: u32 = 3;

/// Runs `event`'s hooks unless the turn is aborted first (`None`).
async fn fire(
    ctx: &TurnCtx,
    prompt_id: &str,
    event: Event,
    target: Option<&str>,
    input: serde_json::Map<String, Value>,
) -> Option<Outcome> {
    tokio::select! {
        biased;
        _ = ctx.cancel.cancelled() => None,
        o = ctx.hooks.fire(event, target, input, &ctx.out, Some(prompt_id)) => Some(o),
    }
}

/// `PreToolUse` for a call: the gate's verdict as the hooks change it, or
/// the call's error result when they deny it. A hook's `allow` lets a
/// call run unasked but never runs one the gate refuses (read-only mode);
/// its `ask` asks about one the gate would run.
pub(super) async fn pre_tool_use(
    ctx: &TurnCtx,
    prompt_id: &str,
    id: &str,
    name: &str,
    input: &Value,
    verdict: Verdict,
) -> Result<Verdict, ToolOutput> {
    if !ctx.hooks.any(Event::PreToolUse) {
        return Ok(verdict);
    }
    let fields = fields([
        ("tool_name", Value::from(name)),
        ("tool_input", hook_input(ctx, input)),
        ("tool_use_id", Value::from(id)),
        ("permission_mode", Value::from(ctx.gate.mode().as_str())),
    ]);
    let Some(outcome) = fire(ctx, prompt_id, Event::PreToolUse, Some(name), fields).await else {
        return Err(ToolOutput::error("not run: the turn was aborted"));
    };
    if let Some(reason) = outcome.block {
        return Err(ToolOutput::error(format!(
            "a PreToolUse hook blocked this {name} call: {reason}"
        )));
    }
    Ok(match (outcome.permission, verdict) {
        (Some((Permission::Deny, reason)), _) => {
            let reason = reason.unwrap_or_else(|| "no reason given".into());
            return Err(ToolOutput::error(format!(
                "a PreToolUse hook denied this {name} call: {reason}"
            )));
        }
        (_, Verdict::Refuse(why)) => Verdict::Refuse(why),
        (Some((Permission::Allow, _)), _) => Verdict::Run,
        (Some((Permission::Ask, _)), _) => Verdict::Ask,
        (None, verdict) => verdict,
    })
}

/// A call's input as a hook reads it: a file tool's `path` also as
/// `file_path`, absolute, the name Claude Code's Read, Write and Edit
/// inputs use, so a script that guards paths works unchanged.
fn hook_input(ctx: &TurnCtx, input: &Value) -> Value {
    let mut input = input.clone();
    if let Some(map) = input.as_object_mut() {
        let path = map
            .get("path")
            .and_then(Value::as_str)
            .map(|p| ctx.cwd.join(p));
        if let (Some(path), false) = (path, map.contains_key("file_path")) {
            map.insert(
                "file_path".into(),
                Value::from(path.to_string_lossy().into_owned()),
            );
        }
    }
    input
}

/// `PostToolUse` after a call ran: a block's reason and any added
/// context reach the model after the tool's own result.
pub(super) async fn post_tool_use(
    ctx: &TurnCtx,
    prompt_id: &str,
    id: &str,
    name: &str,
    input: &Value,
    output: &mut ToolOutput,
) {
    if !ctx.hooks.any(Event::PostToolUse) {
        return;
    }
    let fields = fields([
        ("tool_name", Value::from(name)),
        ("tool_input", hook_input(ctx, input)),
        ("tool_use_id", Value::from(id)),
        ("tool_response", Value::from(output.content.clone())),
    ]);
    let Some(outcome) = fire(ctx, prompt_id, Event::PostToolUse, Some(name), fields).await else {
        return;
    };
    let notes = outcome.block.into_iter().chain(outcome.context);
    for note in notes {
        output.content.push_str("\n\n[PostToolUse hook] ");
        output.content.push_str(&note);
    }
}

/// `Stop` (`SubagentStop` for a subagent's session would be fired by its
/// parent) when the model ended its turn: the message that sends it back
/// to work, if a hook blocked the stop. `continued`: how many times this
/// turn already did (`stop_hook_active` for the hook).
pub(super) async fn stop(ctx: &TurnCtx, prompt_id: &str, continued: u32) -> Option<String> {
    if continued >= MAX_STOP_CONTINUATIONS || !ctx.hooks.any(Event::Stop) {
        return None;
    }
    let fields = fields([("stop_hook_active", Value::from(continued > 0))]);
    let outcome = fire(ctx, prompt_id, Event::Stop, None, fields).await?;
    if outcome.halt {
        return None;
    }
    outcome.block
}

/// `PreCompact` before the turn compacts on its own (trigger `auto`);
/// the `compact` command fires it with `manual` (`host/hooks.rs`). Only
/// seen, not obeyed: a compaction the context needs cannot be skipped.
pub(super) async fn pre_compact(ctx: &TurnCtx, prompt_id: &str) {
    if !ctx.hooks.any(Event::PreCompact) {
        return;
    }
    let fields = fields([
        ("trigger", Value::from("auto")),
        ("custom_instructions", Value::from("")),
    ]);
    fire(ctx, prompt_id, Event::PreCompact, Some("auto"), fields).await;
}

/// `SubagentStop` in the parent when a `task` call's subagent finished:
/// a block's reason and any added context reach the model after the
/// subagent's answer.
pub(super) async fn subagent_stop(
    ctx: &TurnCtx,
    prompt_id: &str,
    id: &str,
    input: &Value,
    output: &mut ToolOutput,
) {
    if !ctx.hooks.any(Event::SubagentStop) {
        return;
    }
    let fields = fields([
        ("stop_hook_active", Value::from(false)),
        ("tool_use_id", Value::from(id)),
        ("tool_input", input.clone()),
    ]);
    let Some(outcome) = fire(ctx, prompt_id, Event::SubagentStop, None, fields).await else {
        return;
    };
    for note in outcome.block.into_iter().chain(outcome.context) {
        output.content.push_str("\n\n[SubagentStop hook] ");
        output.content.push_str(&note);
    }
}
