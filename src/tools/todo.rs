//! `todo_write {todos: [{content, status, priority?}]}`: the model's plan,
//! replaced whole on every call.
//!
//! The tool only reports: the list goes out as a [`ToolUpdate::Plan`],
//! which the turn turns into a `plan` frame (an ACP `plan` update) and the
//! host stores in the session, so a resumed session still knows it. It
//! touches nothing else, so it never asks and is offered in every mode.
//! A malformed list is the call's error result; the plan stays as it was.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

use super::tool::Builtin;
use super::{Access, FileSystem, Preview, ToolCtx, ToolOutput, ToolUpdate};
use crate::protocol::{PlanEntry, PlanPriority, PlanStatus};

/// More steps than anyone reads; a longer list is a mistake to report.
const MAX_ENTRIES: usize = 100;
/// One step is a line, not a document.
const MAX_CONTENT_CHARS: usize = 1000;

/// `todo_write` as the tool table holds it.
pub(crate) struct TodoWriteTool;

impl Builtin for TodoWriteTool {
    type Input = Vec<PlanEntry>;
    const NAME: &'static str = "todo_write";
    const ACCESS: Access = Access::SessionState;
    const SUMMARY: &'static str =
        "Keep a visible plan for a task of several steps: the whole list each time, one step in_progress.";

    fn definition() -> Value {
        json!({
            "name": Self::NAME,
            "description": "Create or update your plan for the current task: a list of steps the user \
                sees. Use it when the task takes three or more distinct steps, or when the user gives \
                you several things to do; skip it for a single quick change. Send the whole list each \
                time (it replaces the last one). Mark a step in_progress before you start it and keep \
                exactly one in_progress at a time; mark it completed as soon as it is done, and add \
                steps you discover as you go.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "todos": {
                        "type": "array",
                        "description": "The whole plan, in order.",
                        "maxItems": MAX_ENTRIES,
                        "items": {
                            "type": "object",
                            "properties": {
                                "content": {"type": "string", "minLength": 1, "description": "The step, in a few words."},
                                "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                                "priority": {"type": "string", "enum": ["high", "medium", "low"]}
                            },
                            "required": ["content", "status"]
                        }
                    }
                },
                "required": ["todos"]
            }
        })
    }

    fn parse(input: &Value, _cwd: &Path) -> Result<Self::Input> {
        let todos = input
            .get("todos")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("todo_write: `todos` (an array of steps) is required"))?;
        if todos.len() > MAX_ENTRIES {
            bail!(
                "todo_write: {} steps is more than {MAX_ENTRIES}; keep the plan short",
                todos.len()
            );
        }
        todos
            .iter()
            .enumerate()
            .map(|(i, todo)| entry(todo).map_err(|e| anyhow!("todo_write: todos[{i}]: {e}")))
            .collect()
    }

    fn preview(entries: Self::Input, _cwd: &Path, _fs: &dyn FileSystem) -> Result<Preview> {
        Ok(Preview {
            title: format!("Update the plan ({} steps)", entries.len()),
            diff: None,
            paths: Vec::new(),
        })
    }

    async fn run(entries: Self::Input, ctx: &ToolCtx) -> ToolOutput {
        let text = summary(&entries);
        // Awaited, not skipped like output lines: the plan is the call's
        // whole effect.
        if ctx
            .env
            .updates
            .send(ToolUpdate::Plan(entries))
            .await
            .is_err()
        {
            tracing::debug!("nobody takes the plan update");
        }
        ToolOutput::ok(text)
    }
}

/// One step, checked.
fn entry(todo: &Value) -> Result<PlanEntry> {
    let content = todo
        .get("content")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| anyhow!("`content` must be a non-empty string"))?;
    if content.chars().count() > MAX_CONTENT_CHARS {
        bail!("`content` is over {MAX_CONTENT_CHARS} characters; one step is one line");
    }
    let status = match todo.get("status").and_then(Value::as_str) {
        Some("pending") => PlanStatus::Pending,
        Some("in_progress") => PlanStatus::InProgress,
        Some("completed") => PlanStatus::Completed,
        other => bail!("`status` must be pending, in_progress or completed, not {other:?}"),
    };
    let priority = match todo.get("priority") {
        None | Some(Value::Null) => None,
        Some(p) => Some(match p.as_str() {
            Some("high") => PlanPriority::High,
            Some("medium") => PlanPriority::Medium,
            Some("low") => PlanPriority::Low,
            _ => bail!("`priority` must be high, medium or low, not {p}"),
        }),
    };
    Ok(PlanEntry {
        content: content.to_owned(),
        status,
        priority,
    })
}

/// What the model reads back: the counts, and the step to work on.
fn summary(entries: &[PlanEntry]) -> String {
    let count = |s| entries.iter().filter(|e| e.status == s).count();
    let (done, doing, todo) = (
        count(PlanStatus::Completed),
        count(PlanStatus::InProgress),
        count(PlanStatus::Pending),
    );
    let mut text = format!(
        "Plan updated: {} steps ({done} completed, {doing} in progress, {todo} pending).",
        entries.len()
    );
    match entries.iter().find(|e| e.status == PlanStatus::InProgress) {
        Some(current) => text.push_str(&format!(" Now: {}", current.content)),
        None if todo > 0 => text.push_str(" Mark the next step in_progress when you start it."),
        None => {}
    }
    if doing > 1 {
        text.push_str(" Keep only one step in_progress.");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_util::ctx;
    use crate::tools::Tool;

    #[tokio::test]
    async fn the_whole_list_goes_out_as_a_plan_update() {
        let dir = tempfile::tempdir().unwrap();
        let (c, mut rx) = ctx(dir.path());
        let input = json!({"todos": [
            {"content": "read the code", "status": "completed"},
            {"content": " fix the bug ", "status": "in_progress", "priority": "high"},
            {"content": "run the tests", "status": "pending"},
        ]});
        let out = TodoWriteTool.run(&input, &c).await;
        assert!(!out.is_error, "{out:?}");
        assert_eq!(
            out.content,
            "Plan updated: 3 steps (1 completed, 1 in progress, 1 pending). Now: fix the bug"
        );
        let Ok(ToolUpdate::Plan(entries)) = rx.try_recv() else {
            panic!("no plan update")
        };
        assert_eq!(entries[1].content, "fix the bug");
        assert_eq!(entries[1].priority, Some(PlanPriority::High));
        assert_eq!(entries[2].priority, None);
    }

    #[tokio::test]
    async fn a_malformed_list_is_the_calls_error_and_sends_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (c, mut rx) = ctx(dir.path());
        for (input, says) in [
            (json!({}), "`todos` (an array of steps) is required"),
            (
                json!({"todos": [{"content": "", "status": "pending"}]}),
                "todos[0]: `content`",
            ),
            (
                json!({"todos": [{"content": "a", "status": "done"}]}),
                "todos[0]: `status`",
            ),
            (
                json!({"todos": [{"content": "a", "status": "pending"}, {"content": "b", "status": "pending", "priority": 1}]}),
                "todos[1]: `priority`",
            ),
        ] {
            let out = TodoWriteTool.run(&input, &c).await;
            assert!(out.is_error && out.content.contains(says), "{out:?}");
        }
        assert!(rx.try_recv().is_err());
        let empty = TodoWriteTool.run(&json!({"todos": []}), &c).await;
        assert_eq!(
            empty.content,
            "Plan updated: 0 steps (0 completed, 0 in progress, 0 pending)."
        );
    }
}
