//! Slash commands: prompt templates the user invokes as `/name arguments`
//! at the start of a `prompt` or `follow_up` (native or ACP).
//!
//! - `discovery.rs`: the Markdown files of `.agents/commands/` and
//!   `.claude/commands/` from the working directory up to the repository's
//!   root (nearest first), then the user's `$XDG_CONFIG_HOME/agent-rpc/commands/`;
//!   their front matter (`description`, `argument-hint`).
//! - `expand.rs`: reading `/name arguments` off a message and filling
//!   `$ARGUMENTS` and `$1`…`$9` into the template.
//!
//! [`Commands`] is what a host holds: discovered when a session starts
//! (like the context files) and asked for each prompt. Two commands are
//! built in: `/compact [instructions]`, which runs the `compact` command
//! instead of a turn, and `/skills`, a fixed prompt asking the model to
//! list the Agent Skills its system prompt names.

mod discovery;
pub(crate) use discovery::{front_matter_value, read_capped, split_front_matter};
mod expand;

use std::path::PathBuf;

use crate::protocol::{CommandEntry, CommandSource};
use crate::session::CommandLine;

/// The `/skills` prompt: the skills are listed in the system prompt, so
/// the model can answer without the host knowing them.
const SKILLS_PROMPT: &str =
    "List the Agent Skills available to you (they are named in your system prompt), \
each with one line on when to use it. If none are available, say so.";

/// One command the user can invoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub name: String,
    pub description: String,
    pub argument_hint: Option<String>,
    pub source: CommandSource,
    /// The prompt, before `$ARGUMENTS` and `$1`…`$9` are filled in.
    pub body: String,
}

/// What a message becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expansion {
    /// Not a known command: sent to the model as it is.
    Plain,
    /// A template (or `/skills`): the model is sent `text` instead.
    Prompt { text: String, line: CommandLine },
    /// `/compact [instructions]`: a compaction, not a turn.
    Compact { instructions: Option<String> },
}

/// A session's commands: the built-ins, then the files found for its
/// working directory, sorted by name.
pub(crate) struct Commands {
    user_dir: Option<PathBuf>,
    cwd: PathBuf,
    list: Vec<Template>,
}

impl Commands {
    /// Reads the command files of a session in `cwd` (canonical);
    /// `user_dir` is the global config directory (`…/agent-rpc`).
    pub(crate) fn discover(cwd: PathBuf, user_dir: Option<PathBuf>) -> Self {
        let mut list = builtins();
        let found = discovery::discover(&cwd, user_dir.as_deref());
        for template in found {
            if list.iter().any(|b| b.name == template.name) {
                // Built-ins keep their meaning: a file cannot turn
                // `/compact` into a model turn.
                tracing::warn!(
                    "command file for /{} ignored: /{} is built in",
                    template.name,
                    template.name
                );
                continue;
            }
            list.push(template);
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Commands {
            user_dir,
            cwd,
            list,
        }
    }

    /// Another session (or a new one): the files are read again, in `cwd`.
    pub(crate) fn restart_in(&mut self, cwd: PathBuf) {
        *self = Commands::discover(cwd, self.user_dir.take());
    }

    /// A new session in the same directory.
    pub(crate) fn restart(&mut self) {
        let cwd = std::mem::take(&mut self.cwd);
        self.restart_in(cwd);
    }

    /// The commands as `get_commands` lists them.
    pub(crate) fn entries(&self) -> Vec<CommandEntry> {
        self.list
            .iter()
            .map(|t| CommandEntry {
                name: t.name.clone(),
                description: t.description.clone(),
                argument_hint: t.argument_hint.clone(),
                source: t.source,
            })
            .collect()
    }

    /// What `message` becomes: a known `/name` at its start is expanded.
    pub(crate) fn expand(&self, message: &str) -> Expansion {
        let Some(line) = expand::parse(message) else {
            return Expansion::Plain;
        };
        let Some(template) = self.list.iter().find(|t| t.name == line.name) else {
            return Expansion::Plain;
        };
        if template.source == CommandSource::Builtin && template.name == "compact" {
            let instructions = Some(line.arguments).filter(|a| !a.is_empty());
            return Expansion::Compact { instructions };
        }
        let text = expand::fill(&template.body, &line.arguments);
        Expansion::Prompt { text, line }
    }

    #[cfg(test)]
    pub(crate) fn names(&self) -> Vec<&str> {
        self.list.iter().map(|t| t.name.as_str()).collect()
    }
}

fn builtins() -> Vec<Template> {
    let builtin = |name: &str, description: &str, hint: Option<&str>, body: &str| Template {
        name: name.to_owned(),
        description: description.to_owned(),
        argument_hint: hint.map(str::to_owned),
        source: CommandSource::Builtin,
        body: body.to_owned(),
    };
    vec![
        builtin(
            "compact",
            "Summarise the older conversation to free context",
            Some("[instructions]"),
            "",
        ),
        builtin(
            "skills",
            "List the Agent Skills available in this session",
            None,
            SKILLS_PROMPT,
        ),
    ]
}

#[cfg(test)]
mod tests;
