//! What a session shows an ACP client as settable: its permission mode
//! (`modes`, `session/set_mode`) and its config options (`mode`, `model`,
//! `thinking`, `sandbox`, `session/set_config_option`), built from the settings the
//! host publishes and the model listing. The mode is both: clients that
//! prefer config options (as ACP says they should) find it there too.

use serde_json::{json, Value};

use crate::host::SessionSettings;
use crate::protocol::{Mode, ModelEntry, SandboxMode, ThinkingLevel};

/// The four native permission modes, in their usual order.
const MODES: [(Mode, &str, &str); 4] = [
    (
        Mode::Ask,
        "Ask",
        "Reads run; writes, edits and commands ask first",
    ),
    (
        Mode::AcceptEdits,
        "Accept edits",
        "Edits inside the working directory run; commands ask",
    ),
    (Mode::AllowAll, "Allow all", "Nothing asks"),
    (
        Mode::ReadOnly,
        "Read only",
        "Only reading tools; writes, edits and commands are refused",
    ),
];

/// The kernel sandbox's modes (SPEC §10.1), the safest first.
const SANDBOXES: [(SandboxMode, &str, &str); 3] = [
    (
        SandboxMode::ReadOnly,
        "Read only",
        "Commands read but write only a private temp dir; no network",
    ),
    (
        SandboxMode::WorkspaceWrite,
        "Workspace write",
        "Commands write only in the working directory and the temp dir; no network",
    ),
    (SandboxMode::Off, "Off", "Commands run without a sandbox"),
];

/// A sandbox mode id from the client: the native names.
pub(super) fn parse_sandbox(id: &str) -> Option<SandboxMode> {
    SANDBOXES
        .iter()
        .find(|(mode, ..)| mode.as_str() == id)
        .map(|(mode, ..)| *mode)
}

const LEVELS: [ThinkingLevel; 6] = [
    ThinkingLevel::Off,
    ThinkingLevel::Minimal,
    ThinkingLevel::Low,
    ThinkingLevel::Medium,
    ThinkingLevel::High,
    ThinkingLevel::Xhigh,
];

/// A mode id from the client: the native names.
pub(super) fn parse_mode(id: &str) -> Option<Mode> {
    MODES
        .iter()
        .find(|(mode, ..)| mode.as_str() == id)
        .map(|(mode, ..)| *mode)
}

/// A thinking level id from the client: the native names.
pub(super) fn parse_level(id: &str) -> Option<ThinkingLevel> {
    LEVELS.iter().copied().find(|level| level.as_str() == id)
}

/// `modes` of `session/new` and `session/load`: the current one first, so a
/// client that shows the list in order shows it at the top.
pub(super) fn modes(current: Mode) -> Value {
    let mut available: Vec<Value> = MODES
        .iter()
        .map(|(mode, name, description)| {
            json!({"id": mode.as_str(), "name": name, "description": description})
        })
        .collect();
    if let Some(at) = MODES.iter().position(|(mode, ..)| *mode == current) {
        let entry = available.remove(at);
        available.insert(0, entry);
    }
    json!({"currentModeId": current.as_str(), "availableModes": available})
}

/// `configOptions`: the permission mode (the same four as `modes`), the
/// model (a select over the models known so far; the current one is always
/// among them), the thinking level and the sandbox.
pub(super) fn config_options(state: &SessionSettings, models: &[ModelEntry]) -> Value {
    let modes: Vec<Value> = MODES
        .iter()
        .map(|(mode, name, description)| {
            json!({"value": mode.as_str(), "name": name, "description": description})
        })
        .collect();
    let mut choices: Vec<Value> = models
        .iter()
        .filter(|m| m.available)
        .map(|m| json!({"value": m.id, "name": m.name, "description": m.id}))
        .collect();
    let current_model = state.model.clone().unwrap_or_default();
    if !current_model.is_empty() && !models.iter().any(|m| m.id == current_model) {
        choices.insert(0, json!({"value": current_model, "name": current_model}));
    }
    let mut options = vec![json!({
        "id": "mode",
        "name": "Mode",
        "category": "mode",
        "type": "select",
        "currentValue": state.mode.as_str(),
        "options": modes,
    })];
    if !choices.is_empty() {
        options.push(json!({
            "id": "model",
            "name": "Model",
            "category": "model",
            "type": "select",
            "currentValue": current_model,
            "options": choices,
        }));
    }
    let levels: Vec<Value> = LEVELS
        .iter()
        .map(|l| json!({"value": l.as_str(), "name": l.as_str()}))
        .collect();
    options.push(json!({
        "id": "thinking",
        "name": "Thinking",
        "category": "thought_level",
        "type": "select",
        "currentValue": state.thinking.as_str(),
        "options": levels,
    }));
    let sandboxes: Vec<Value> = SANDBOXES
        .iter()
        .map(|(mode, name, description)| {
            json!({"value": mode.as_str(), "name": name, "description": description})
        })
        .collect();
    options.push(json!({
        "id": "sandbox",
        "name": "Sandbox",
        "type": "select",
        "currentValue": state.sandbox.as_str(),
        "options": sandboxes,
    }));
    Value::Array(options)
}

/// The context window of `model`, when the listing knows it.
pub(super) fn context_window(models: &[ModelEntry], model: Option<&str>) -> Option<u64> {
    let model = model?;
    models
        .iter()
        .find(|m| m.id == model)
        .and_then(|m| m.context_window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_mode_comes_first_and_all_four_are_listed() {
        let v = modes(Mode::ReadOnly);
        assert_eq!(v["currentModeId"], "read-only");
        let ids: Vec<&str> = v["availableModes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["read-only", "ask", "accept-edits", "allow-all"]);
    }

    #[test]
    fn config_options_hold_the_current_model_and_level() {
        let state = SessionSettings {
            mode: Mode::Ask,
            model: Some("x:y:z".into()),
            thinking: ThinkingLevel::High,
            sandbox: SandboxMode::WorkspaceWrite,
        };
        let v = config_options(&state, &[]);
        assert_eq!(v[0]["id"], "mode");
        assert_eq!(v[0]["category"], "mode");
        assert_eq!(v[0]["type"], "select");
        assert_eq!(v[0]["currentValue"], "ask");
        let modes: Vec<&str> = v[0]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap())
            .collect();
        assert_eq!(modes, ["ask", "accept-edits", "allow-all", "read-only"]);
        assert_eq!(v[1]["id"], "model");
        assert_eq!(v[1]["category"], "model");
        assert_eq!(v[1]["currentValue"], "x:y:z");
        assert_eq!(v[2]["id"], "thinking");
        assert_eq!(v[2]["category"], "thought_level");
        assert_eq!(v[2]["currentValue"], "high");
        assert_eq!(v[2]["options"].as_array().unwrap().len(), 6);
        assert_eq!(v[1]["type"], "select");
        assert_eq!(v[1]["options"][0]["value"], "x:y:z");
        assert_eq!(v[3]["id"], "sandbox");
        assert_eq!(v[3]["currentValue"], "workspace-write");
        assert_eq!(parse_sandbox("off"), Some(SandboxMode::Off));
        assert_eq!(parse_sandbox("loose"), None);
        assert_eq!(parse_level("xhigh"), Some(ThinkingLevel::Xhigh));
        assert_eq!(parse_mode("accept-edits"), Some(Mode::AcceptEdits));
        assert_eq!(parse_mode("bogus"), None);
    }
}
