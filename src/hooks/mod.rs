//! Policy hooks in Claude Code's shape (SPEC §9.6): commands the user
//! configures for an event (`PreToolUse`, `Stop`, ...), given the event as
//! JSON on stdin, whose exit code and stdout let the session go on, block
//! it, decide a permission or add context for the model.
//!
//! [`Hooks`] is one session's: the configured commands (read once at
//! start-up, `config.rs`) with what every event's input names (the
//! session's id, file and cwd) and where a command runs (its sandbox).
//! [`Hooks::fire`] runs the matching commands side by side (`run.rs`),
//! shows each as a `hook` frame, and folds their answers into one
//! [`Outcome`] the caller applies.

pub(crate) mod config;
mod run;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::protocol::{Frame, HookFrame};
use crate::sandbox::SessionSandbox;
use crate::sink::Sink;
pub(crate) use config::HookConfig;

/// The events a hook can be configured for, named as in Claude Code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    SessionStart,
    UserPromptSubmit,
    PreToolUse,
    PostToolUse,
    Stop,
    PreCompact,
    SubagentStop,
}

impl Event {
    pub(crate) const ALL: [Event; 7] = [
        Event::SessionStart,
        Event::UserPromptSubmit,
        Event::PreToolUse,
        Event::PostToolUse,
        Event::Stop,
        Event::PreCompact,
        Event::SubagentStop,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Event::SessionStart => "SessionStart",
            Event::UserPromptSubmit => "UserPromptSubmit",
            Event::PreToolUse => "PreToolUse",
            Event::PostToolUse => "PostToolUse",
            Event::Stop => "Stop",
            Event::PreCompact => "PreCompact",
            Event::SubagentStop => "SubagentStop",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether a plain stdout of a successful run is context for the
    /// model (Claude Code does this for these two only).
    fn stdout_is_context(self) -> bool {
        matches!(self, Event::UserPromptSubmit | Event::SessionStart)
    }
}

/// A hook's answer to the permission gate (`PreToolUse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Permission {
    // Ordered by strength: of several hooks, the strictest answer wins.
    Allow,
    Ask,
    Deny,
}

/// What the hooks of one event decided together.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Blocked (exit 2, `decision: "block"` or `continue: false`), with
    /// the reason for the model or the user.
    pub block: Option<String>,
    /// The commands that blocked, for a message naming them.
    pub blocked_by: Vec<String>,
    /// `PreToolUse`: the strictest `permissionDecision`, with its reason.
    pub permission: Option<(Permission, Option<String>)>,
    /// Text for the model's context (stdout of `UserPromptSubmit` and
    /// `SessionStart`, `additionalContext` of any event).
    pub context: Vec<String>,
    /// `continue: false`: the session must not go on (`Stop`: the turn
    /// ends even if another hook blocked the stop).
    pub halt: bool,
}

/// One session's hooks.
pub(crate) struct Hooks {
    config: Arc<HookConfig>,
    env_remove: Arc<Vec<String>>,
    cwd: PathBuf,
    session_id: String,
    transcript_path: PathBuf,
    /// Applied to every command while it is enforced, as to bash.
    sandbox: Option<Arc<SessionSandbox>>,
    /// A subagent's session: its parent fires `SubagentStop` for it, and
    /// its prompt comes from the model, so it fires neither `SessionStart`,
    /// `UserPromptSubmit` nor `Stop` itself (as in Claude Code).
    subagent: bool,
}

/// Where one session's hook commands run and what they are told.
pub(crate) struct SessionInfo {
    pub cwd: PathBuf,
    pub session_id: String,
    pub transcript_path: PathBuf,
    pub env_remove: Arc<Vec<String>>,
    pub sandbox: Option<Arc<SessionSandbox>>,
    pub subagent: bool,
}

impl Hooks {
    pub(crate) fn new(config: Arc<HookConfig>, info: SessionInfo) -> Self {
        Hooks {
            config,
            env_remove: info.env_remove,
            cwd: info.cwd,
            session_id: info.session_id,
            transcript_path: info.transcript_path,
            sandbox: info.sandbox,
            subagent: info.subagent,
        }
    }

    /// Whether any command is configured for `event` (callers skip
    /// building the input when none is).
    pub(crate) fn any(&self, event: Event) -> bool {
        let own = [Event::SessionStart, Event::UserPromptSubmit, Event::Stop];
        if self.subagent && own.contains(&event) {
            return false;
        }
        self.config.groups.iter().any(|(e, _)| *e == event)
    }

    /// Runs the commands configured for `event` whose matcher takes
    /// `target` (each command once, side by side), with Claude Code's
    /// common fields added to `fields`; shows each run as a `hook` frame.
    pub(crate) async fn fire(
        &self,
        event: Event,
        target: Option<&str>,
        mut fields: Map<String, Value>,
        out: &Sink,
        prompt_id: Option<&str>,
    ) -> Outcome {
        let mut commands: Vec<&config::Command> = Vec::new();
        for (_, group) in self
            .config
            .groups
            .iter()
            .filter(|(e, g)| *e == event && g.matches(target))
        {
            for c in &group.commands {
                if !commands.iter().any(|d| d.command == c.command) {
                    commands.push(c);
                }
            }
        }
        if commands.is_empty() {
            return Outcome::default();
        }
        let common = [
            ("session_id", Value::from(self.session_id.clone())),
            (
                "transcript_path",
                Value::from(self.transcript_path.to_string_lossy().into_owned()),
            ),
            ("cwd", Value::from(self.cwd.to_string_lossy().into_owned())),
            ("hook_event_name", Value::from(event.name())),
        ];
        for (k, v) in common {
            fields.insert(k.to_owned(), v);
        }
        let input = serde_json::to_vec(&fields).unwrap_or_default();
        let sandbox = self
            .sandbox
            .clone()
            .filter(|s| s.enforced().is_some())
            .map(|s| s as Arc<dyn crate::process::Sandbox>);
        let place = run::Place {
            cwd: &self.cwd,
            env_remove: &self.env_remove,
            sandbox,
        };
        let runs = commands
            .iter()
            .map(|c| run::run(&c.command, c.timeout, &input, &place));
        let ran = futures_util::future::join_all(runs).await;
        let mut outcome = Outcome::default();
        for (command, ran) in commands.iter().zip(ran) {
            let (decision, warning) = read_answer(event, &command.command, &ran, &mut outcome);
            if let Some(w) = &warning {
                tracing::warn!("{} hook `{}`: {w}", event.name(), command.command);
            }
            let frame = Frame::Hook(HookFrame {
                prompt_id: prompt_id.map(str::to_owned),
                event: event.name().to_owned(),
                command: command.command.clone(),
                exit_code: ran.exit_code,
                duration_ms: u64::try_from(ran.duration.as_millis()).unwrap_or(u64::MAX),
                decision,
                warning,
            });
            out.frame(&frame).await;
        }
        outcome
    }
}

/// Folds one run's answer into `outcome`; returns the frame's `decision`
/// and `warning`.
fn read_answer(
    event: Event,
    command: &str,
    ran: &run::Ran,
    outcome: &mut Outcome,
) -> (Option<String>, Option<String>) {
    if let Some(failure) = &ran.failure {
        return (None, Some(failure.clone()));
    }
    match ran.exit_code {
        Some(0) => {}
        Some(2) => {
            let reason = match ran.stderr.trim() {
                "" => format!("blocked by the {} hook `{command}`", event.name()),
                text => text.to_owned(),
            };
            block(outcome, command, reason);
            return (Some("block".into()), None);
        }
        code => {
            let code = code.map_or_else(|| "no exit code".into(), |c| format!("exit code {c}"));
            let stderr = ran.stderr.trim();
            let warning = if stderr.is_empty() {
                code
            } else {
                format!("{code}: {stderr}")
            };
            return (None, Some(warning));
        }
    }
    let stdout = ran.stdout.trim();
    let json = stdout
        .starts_with('{')
        .then(|| serde_json::from_str::<Map<String, Value>>(stdout).ok())
        .flatten();
    let Some(json) = json else {
        if event.stdout_is_context() && !stdout.is_empty() {
            outcome.context.push(stdout.to_owned());
        }
        return (None, None);
    };
    read_json(event, command, &json, outcome)
}

/// Claude Code's JSON output: `continue`, `decision`/`reason` and
/// `hookSpecificOutput` (`permissionDecision`, `additionalContext`).
fn read_json(
    event: Event,
    command: &str,
    json: &Map<String, Value>,
    outcome: &mut Outcome,
) -> (Option<String>, Option<String>) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let specific = json.get("hookSpecificOutput").and_then(Value::as_object);
    if let Some(context) = text(specific.and_then(|s| s.get("additionalContext"))) {
        if !context.trim().is_empty() {
            outcome.context.push(context);
        }
    }
    if json.get("continue") == Some(&Value::Bool(false)) {
        let reason = text(json.get("stopReason")).unwrap_or_else(|| "a hook stopped it".into());
        outcome.halt = true;
        block(outcome, command, reason);
        return (Some("stop".into()), None);
    }
    if event == Event::PreToolUse {
        // `permissionDecision`, else the older `decision: approve|block`.
        let (decision, reason) = match specific.and_then(|s| s.get("permissionDecision")) {
            Some(d) => (
                d.as_str(),
                text(specific.and_then(|s| s.get("permissionDecisionReason"))),
            ),
            None => (
                json.get("decision").and_then(Value::as_str),
                text(json.get("reason")),
            ),
        };
        let permission = match decision {
            Some("allow" | "approve") => Permission::Allow,
            Some("ask") => Permission::Ask,
            Some("deny" | "block") => Permission::Deny,
            Some(other) => {
                return (None, Some(format!("unknown permissionDecision {other:?}")));
            }
            None => return (None, None),
        };
        if outcome
            .permission
            .as_ref()
            .is_none_or(|(p, _)| permission > *p)
        {
            outcome.permission = Some((permission, reason));
        }
        let name = match permission {
            Permission::Allow => "allow",
            Permission::Ask => "ask",
            Permission::Deny => "deny",
        };
        return (Some(name.into()), None);
    }
    if json.get("decision").and_then(Value::as_str) == Some("block") {
        let reason = text(json.get("reason"))
            .unwrap_or_else(|| format!("blocked by a {} hook", event.name()));
        block(outcome, command, reason);
        return (Some("block".into()), None);
    }
    (None, None)
}

/// Records a block; several blocking hooks' reasons are all given.
fn block(outcome: &mut Outcome, command: &str, reason: String) {
    outcome.blocked_by.push(command.to_owned());
    match &mut outcome.block {
        Some(all) => {
            all.push('\n');
            all.push_str(&reason);
        }
        None => outcome.block = Some(reason),
    }
}

/// The input fields of an event beyond the common ones.
pub(crate) fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}
