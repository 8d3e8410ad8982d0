//! The plan the model keeps with its `todo_write` tool: the entries that the
//! `plan` frame, `get_state.plan` and the session file carry (and ACP's
//! `plan` session update shows).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlanEntry {
    /// What the step is, in the model's words.
    pub content: String,
    pub status: PlanStatus,
    /// Absent when the model gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<PlanPriority>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    Pending,
    InProgress,
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlanPriority {
    High,
    Medium,
    Low,
}

/// The model replaced its plan (a `todo_write` call): the whole new list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanFrame {
    pub prompt_id: String,
    pub entries: Vec<PlanEntry>,
}
