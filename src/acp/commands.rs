//! Slash commands over ACP: the session's commands announced as
//! `available_commands_update` (right after `session/new`, `session/load`,
//! `session/resume` and `session/fork` are answered — the list is found
//! when a session opens and does not change while it is open), and what
//! the editor is shown for a `/compact` prompt, which runs a compaction
//! instead of a turn. A prompt's `/name` is expanded by the host itself,
//! exactly as for a native `prompt`.

use serde_json::{json, Value};

use super::sessions::AcpSession;
use super::updates::chunk;
use crate::protocol::{Command, CommandEntry, CompactionResult, Response};

/// Announces the session's commands (asked of its host, so the list is
/// the one its prompts are expanded against).
pub(super) async fn announce(session: &AcpSession) {
    let Ok(Ok(Response::GetCommands(list))) = session.call(Command::GetCommands).await else {
        return;
    };
    session.notify(update(&list.commands)).await;
}

/// `available_commands_update` for `commands`. ACP requires a
/// description; `input.hint` is there only for a command that has one.
fn update(commands: &[CommandEntry]) -> Value {
    let available: Vec<Value> = commands
        .iter()
        .map(|c| {
            let mut entry = json!({"name": c.name, "description": c.description});
            if let Some(hint) = &c.argument_hint {
                entry["input"] = json!({"hint": hint});
            }
            entry
        })
        .collect();
    json!({"sessionUpdate": "available_commands_update", "availableCommands": available})
}

/// The agent message a finished `/compact` shows before its `end_turn`.
pub(super) fn compacted(result: &CompactionResult) -> Value {
    let text = format!(
        "Compacted the conversation: {} earlier messages are now a summary ({} → {} tokens).",
        result.messages_summarized, result.tokens_before, result.tokens_after
    );
    chunk("agent_message_chunk", &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::CommandSource;

    #[test]
    fn hints_become_input_and_descriptions_stay() {
        let entry = |name: &str, hint: Option<&str>| CommandEntry {
            name: name.into(),
            description: format!("{name} it"),
            argument_hint: hint.map(str::to_owned),
            source: CommandSource::Project,
        };
        let u = update(&[entry("fix", Some("[issue]")), entry("test", None)]);
        assert_eq!(
            u,
            json!({"sessionUpdate": "available_commands_update", "availableCommands": [
                {"name": "fix", "description": "fix it", "input": {"hint": "[issue]"}},
                {"name": "test", "description": "test it"},
            ]})
        );
    }
}
