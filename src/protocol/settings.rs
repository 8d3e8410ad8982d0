//! The session settings the wire names: the permission mode, the client's
//! answer to a permission request, the thinking level, and a model entry
//! of `get_available_models`. Only the vocabulary lives here; what each
//! means is decided where it is used (the gate in `permissions.rs`, the
//! APIs' thinking fields in `provider/thinking.rs`), so `protocol/` imports
//! nothing above it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How much the host may do without asking.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Read-only tools run; write, edit and bash ask.
    Ask,
    /// Edits inside the working directory run; bash and anything outside ask.
    AcceptEdits,
    /// Nothing asks.
    AllowAll,
    /// Mutating tools are refused.
    ReadOnly,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Ask => "ask",
            Mode::AcceptEdits => "accept-edits",
            Mode::AllowAll => "allow-all",
            Mode::ReadOnly => "read-only",
        }
    }
}

/// The kernel sandbox `bash` (and MCP servers marked `sandbox = true`) run
/// in: what they may read, write and reach (SPEC §10).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxMode {
    /// Reads everywhere but the denied paths; writes only in a private
    /// temp dir; no network.
    ReadOnly,
    /// As read-only, plus writes in the working directory, the temp dir and
    /// the configured writable roots.
    WorkspaceWrite,
    /// No sandbox.
    Off,
}

impl SandboxMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::ReadOnly => "read-only",
            SandboxMode::WorkspaceWrite => "workspace-write",
            SandboxMode::Off => "off",
        }
    }
}

/// The sandbox in force, as `ready` and `get_state` report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SandboxState {
    pub mode: SandboxMode,
    /// The kernel enforces `mode` (false for `off`, and where the kernel
    /// lacks Landlock: then every sandboxed command fails instead of
    /// running unguarded).
    pub enforced: bool,
}

/// The client's answer to a permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    AllowOnce,
    AllowAlways,
    Deny,
}

/// How hard the model thinks before answering.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum ThinkingLevel {
    /// No thinking field is sent.
    #[default]
    Off,
    Minimal,
    Low,
    Medium,
    High,
    /// The most the model takes.
    Xhigh,
}

impl ThinkingLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ThinkingLevel::Off => "off",
            ThinkingLevel::Minimal => "minimal",
            ThinkingLevel::Low => "low",
            ThinkingLevel::Medium => "medium",
            ThinkingLevel::High => "high",
            ThinkingLevel::Xhigh => "xhigh",
        }
    }
}

impl std::fmt::Display for ThinkingLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entry of `get_available_models`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ModelEntry {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub context_window: Option<u64>,
    /// The model takes a thinking level (`set_thinking_level`); for an
    /// extension's model, whether it declares `reasoning`.
    pub reasoning: bool,
    pub available: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
