//! Reading hooks files in Claude Code's shape:
//! `{"hooks": {"<Event>": [{"matcher": "<regex>", "hooks": [{"type":
//! "command", "command": "...", "timeout": 60}]}]}}`.
//!
//! The file is walked by hand rather than deserialised, so that an error
//! names the file and the JSON path of the bad value (`hooks.PreToolUse[0]
//! .matcher`): a hook silently dropped is a policy silently off. Other
//! top-level keys are allowed, since a Claude Code `settings.json` holds
//! much more than hooks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use regex_automata::meta::Regex;
use serde_json::Value;

use super::Event;

/// A hook's timeout when the file gives none, as in Claude Code.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// One command to run for an event.
#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub command: String,
    pub timeout: Duration,
}

/// A matcher and the commands it runs.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// `None`: matches everything (no matcher, `""` or `"*"`).
    pub matcher: Option<Regex>,
    pub commands: Vec<Command>,
}

impl Group {
    /// Whether the group applies to `target` (the tool's name, the
    /// session start's source, the compaction's trigger). Matched whole and
    /// ignoring case, so Claude Code's `Bash` or `Edit|Write` matches our
    /// `bash` or `edit`.
    pub(crate) fn matches(&self, target: Option<&str>) -> bool {
        match (&self.matcher, target) {
            (None, _) | (Some(_), None) => true,
            (Some(re), Some(t)) => re.is_match(t),
        }
    }
}

/// Every event's groups, from every file read, in the order read.
#[derive(Debug, Clone, Default)]
pub(crate) struct HookConfig {
    pub groups: Vec<(Event, Group)>,
}

impl HookConfig {
    /// Reads `path` and adds its hooks. `required`: a missing file is an
    /// error (a file named on purpose) rather than no hooks.
    pub(crate) fn add_file(&mut self, path: &Path, required: bool) -> anyhow::Result<()> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("hooks file {}", path.display())),
        };
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("hooks file {}: not JSON", path.display()))?;
        self.add_value(&value)
            .with_context(|| format!("hooks file {}", path.display()))
    }

    fn add_value(&mut self, value: &Value) -> anyhow::Result<()> {
        let root = value
            .as_object()
            .ok_or_else(|| anyhow!("(top level): not an object"))?;
        let Some(hooks) = root.get("hooks") else {
            return Ok(());
        };
        let events = hooks
            .as_object()
            .ok_or_else(|| anyhow!("hooks: not an object"))?;
        for (name, groups) in events {
            let at = format!("hooks.{name}");
            let event = Event::from_name(name).ok_or_else(|| {
                anyhow!(
                    "{at}: unknown event (known: {})",
                    Event::ALL.map(Event::name).join(", ")
                )
            })?;
            let groups = groups
                .as_array()
                .ok_or_else(|| anyhow!("{at}: not a list"))?;
            for (i, group) in groups.iter().enumerate() {
                self.groups
                    .push((event, group_at(group, &format!("{at}[{i}]"))?));
            }
        }
        Ok(())
    }
}

fn group_at(value: &Value, at: &str) -> anyhow::Result<Group> {
    let obj = value
        .as_object()
        .ok_or_else(|| anyhow!("{at}: not an object"))?;
    let matcher = match obj.get("matcher") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) if m.is_empty() || m == "*" => None,
        Some(Value::String(m)) => Some(matcher(m).with_context(|| format!("{at}.matcher"))?),
        Some(_) => bail!("{at}.matcher: not a string"),
    };
    let list = obj
        .get("hooks")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("{at}.hooks: missing or not a list"))?;
    let commands = list
        .iter()
        .enumerate()
        .map(|(j, h)| command_at(h, &format!("{at}.hooks[{j}]")))
        .collect::<anyhow::Result<_>>()?;
    Ok(Group { matcher, commands })
}

fn command_at(value: &Value, at: &str) -> anyhow::Result<Command> {
    let obj = value
        .as_object()
        .ok_or_else(|| anyhow!("{at}: not an object"))?;
    match obj.get("type").and_then(Value::as_str) {
        Some("command") => {}
        Some(other) => bail!("{at}.type: {other:?} is not supported (only \"command\")"),
        None => bail!("{at}.type: missing (\"command\")"),
    }
    let command = obj
        .get("command")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| anyhow!("{at}.command: missing or empty"))?
        .to_owned();
    let timeout = match obj.get("timeout") {
        None | Some(Value::Null) => DEFAULT_TIMEOUT,
        Some(t) => {
            let secs = t
                .as_f64()
                .filter(|s| *s > 0.0 && s.is_finite() && *s <= 86_400.0)
                .ok_or_else(|| anyhow!("{at}.timeout: not a number of seconds in (0, 86400]"))?;
            Duration::from_secs_f64(secs)
        }
    };
    Ok(Command { command, timeout })
}

/// The matcher as a whole-name, case-insensitive regex.
fn matcher(pattern: &str) -> anyhow::Result<Regex> {
    Regex::builder()
        .syntax(regex_automata::util::syntax::Config::new().case_insensitive(true))
        .build(&format!("^(?:{pattern})$"))
        .map_err(|e| anyhow!("not a valid regex: {e}"))
}

/// The files hooks are read from: `--hooks`, else `[hooks] file`, else
/// `$XDG_CONFIG_HOME/agent-rpc/hooks.json` (missing: none); and the
/// project's `.claude/settings.json` in `cwd` only when trusted, since a
/// repository's own files must not choose what runs on the user's machine.
pub(crate) fn load(
    flag: Option<&Path>,
    config: Option<&Path>,
    cwd: &Path,
    trust_project: bool,
) -> anyhow::Result<HookConfig> {
    let mut hooks = HookConfig::default();
    match flag.or(config) {
        Some(file) => hooks.add_file(file, true)?,
        None => {
            if let Some(dir) = crate::config::default_dir() {
                hooks.add_file(&dir.join("hooks.json"), false)?;
            }
        }
    }
    if trust_project {
        hooks.add_file(&project_file(cwd), false)?;
    }
    Ok(hooks)
}

/// Claude Code's project settings file.
pub(crate) fn project_file(cwd: &Path) -> PathBuf {
    cwd.join(".claude").join("settings.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> anyhow::Result<HookConfig> {
        let mut c = HookConfig::default();
        c.add_value(&v).map(|()| c)
    }

    #[test]
    fn claude_codes_shape_is_read() {
        let c = parse(json!({"permissions": {}, "hooks": {
            "PreToolUse": [{"matcher": "Bash|Write", "hooks": [
                {"type": "command", "command": "a", "timeout": 5}]}],
            "Stop": [{"hooks": [{"type": "command", "command": "b"}]}]}}))
        .expect("valid");
        assert_eq!(c.groups.len(), 2);
        let (event, group) = &c.groups[0];
        assert_eq!(*event, Event::PreToolUse);
        assert!(group.matches(Some("bash")) && group.matches(Some("write")));
        assert!(!group.matches(Some("bash_extra")) && !group.matches(Some("read")));
        assert_eq!(group.commands[0].timeout, Duration::from_secs(5));
        assert_eq!(c.groups[1].1.commands[0].timeout, DEFAULT_TIMEOUT);
        assert!(c.groups[1].1.matches(Some("anything")));
    }

    #[test]
    fn an_error_names_the_json_path() {
        let bad = [
            (
                json!({"hooks": {"PreToolUse": [{"matcher": "(", "hooks": []}]}}),
                "hooks.PreToolUse[0].matcher",
            ),
            (json!({"hooks": {"Nope": []}}), "hooks.Nope: unknown event"),
            (
                json!({"hooks": {"Stop": [{"hooks": [{"type": "command"}]}]}}),
                "hooks.Stop[0].hooks[0].command",
            ),
            (
                json!({"hooks": {"Stop": [{"hooks": [{"type": "prompt", "command": "x"}]}]}}),
                "hooks.Stop[0].hooks[0].type",
            ),
            (
                json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "x", "timeout": -1}]}]}}),
                "hooks.Stop[0].hooks[0].timeout",
            ),
        ];
        for (value, want) in bad {
            let err = format!("{:#}", parse(value).expect_err("invalid"));
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }
}
