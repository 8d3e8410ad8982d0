//! The system prompt a session's model is sent: the default one (the
//! template `system_prompt.md`, filled with this session's tools, permission
//! mode and environment) or the user's replacement, the user's addition,
//! then the project's context files (`files.rs`) and the list of Agent
//! Skills (`skills.rs`, their front matter checked in `front_matter.rs`).
//!
//! [`build`] is pure, so the exact text is unit-tested; [`SessionPrompt`] is what
//! the host holds: it reads the context files and finds the skills when a
//! session starts and rebuilds the text when the permission mode (and with
//! it the tool list) changes.

pub(crate) mod files;
pub(crate) mod front_matter;
pub(crate) mod skills;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::permissions::{self, Access, Verdict};
use crate::protocol::Mode;
use crate::tools::Toolset;
pub(crate) use files::ContextFile;
pub(crate) use skills::{Found, Skill};

/// The default prompt; `{name}` placeholders are filled by [`build`].
const TEMPLATE: &str = include_str!("system_prompt.md");

/// What the prompt is made of besides the defaults, from flags and config.
#[derive(Debug, Clone, Default)]
pub(crate) struct PromptConfig {
    /// Replaces the default prompt (`--system-prompt`, `system_prompt`).
    pub replace: Option<String>,
    /// Added after it (`--append-system-prompt`, `append_system_prompt`).
    pub append: Option<String>,
    /// Whether context files are read (`--no-context-files` and
    /// `context_files = false` turn it off).
    pub context_files: bool,
    /// The global config directory, whose AGENTS.md comes first.
    pub global_dir: Option<PathBuf>,
    /// Whether skills are looked for (`--no-skills` and `skills = false`
    /// turn it off).
    pub skills: bool,
    /// The user's skills directories, farther level first.
    pub skill_dirs: Vec<PathBuf>,
}

/// Where the session runs, as the default prompt states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Environment {
    pub cwd: String,
    /// OS and architecture, e.g. `linux x86_64`.
    pub platform: String,
    /// The user's shell: `$SHELL`, else `/bin/sh`.
    pub shell: String,
    /// Today in UTC, `YYYY-MM-DD`.
    pub date: String,
}

impl Environment {
    /// The environment of this process now, for a session in `cwd`.
    pub(crate) fn current(cwd: &Path) -> Self {
        let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        Environment {
            cwd: cwd.to_string_lossy().into_owned(),
            platform: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            shell: crate::config::env_nonempty("SHELL").unwrap_or_else(|| "/bin/sh".to_owned()),
            date: now.get(..10).unwrap_or(&now).to_owned(),
        }
    }
}

/// Everything the prompt is built from.
pub(crate) struct Inputs<'a> {
    pub config: &'a PromptConfig,
    pub tools: &'a Toolset,
    pub mode: Mode,
    /// bash runs in an enforced kernel sandbox, which the gate counts as
    /// a guard (it runs unasked in accept-edits).
    pub sandboxed: bool,
    pub env: &'a Environment,
    pub files: &'a [ContextFile],
    pub skills: &'a [Skill],
}

/// The text sent as the system prompt, and the context files it includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SystemPrompt {
    pub text: String,
    pub context_files: Vec<String>,
}

/// The system prompt: the default one or the replacement, the addition,
/// the context files, then the skills; the parts joined by a blank line.
pub(crate) fn build(i: &Inputs) -> SystemPrompt {
    let base = match &i.config.replace {
        Some(text) => text.clone(),
        None => default_prompt(i),
    };
    let parts = [
        Some(base),
        i.config.append.clone(),
        (!i.files.is_empty()).then(|| context_section(i.files)),
        (!i.skills.is_empty()).then(|| skills_section(i.skills)),
    ];
    let text = parts
        .iter()
        .flatten()
        .map(|p| p.trim_end())
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    SystemPrompt {
        text,
        context_files: i
            .files
            .iter()
            .map(|f| f.path.to_string_lossy().into_owned())
            .collect(),
    }
}

/// The template, filled in.
fn default_prompt(i: &Inputs) -> String {
    let (tools, permissions) = tools_and_permissions(i.tools, i.mode, i.sandboxed);
    fill(
        TEMPLATE,
        &[
            ("tools", &tools),
            ("permissions", &permissions),
            ("cwd", &i.env.cwd),
            ("platform", &i.env.platform),
            ("shell", &i.env.shell),
            ("date", &i.env.date),
        ],
    )
}

/// One line per tool the mode lets run (`- name: when to use it`), and
/// what the permission gate will do, both asked of the gate's own rule
/// table so the prompt cannot disagree with it. Nothing is allowed always
/// yet when a session's prompt is written; `sandboxed`: bash runs in an
/// enforced sandbox (the gate's `Cover::Enforced`).
fn tools_and_permissions(tools: &Toolset, mode: Mode, sandboxed: bool) -> (String, String) {
    let none = HashSet::new();
    let verdict = |name, access, outside| {
        let cover = if sandboxed && access == Access::Unrestricted {
            permissions::Cover::Enforced
        } else {
            permissions::Cover::None
        };
        permissions::verdict(mode, name, access, outside, cover, &none)
    };
    let mut lines = Vec::new();
    let (mut asking, mut refused) = (Vec::new(), Vec::new());
    for tool in tools.iter() {
        let name = tool.name();
        match verdict(name, tool.access(), false) {
            Verdict::Refuse(_) => {
                refused.push(name);
                continue;
            }
            Verdict::Ask => asking.push(name),
            Verdict::Run => {}
        }
        lines.push(format!("- {name}: {}", tool.summary()));
    }
    let outside_asks = verdict("read", Access::ReadOnly, true) == Verdict::Ask;
    let outside = "any call that touches a path outside the working directory";
    let mut notes = Vec::new();
    if !refused.is_empty() {
        notes.push(format!(
            "The permission mode is {}, so {} {} turned off: when a change or a command is needed, say what you would do instead.",
            mode.as_str(),
            in_words(&refused),
            if refused.len() == 1 { "is" } else { "are" },
        ));
    }
    notes.push(match (asking.is_empty(), outside_asks) {
        (false, true) => format!(
            "Calls to {} ask the user for approval first, and so does {outside}.",
            in_words(&asking)
        ),
        (false, false) => format!(
            "Calls to {} ask the user for approval first.",
            in_words(&asking)
        ),
        (true, true) => format!("{} asks the user for approval first.", capitalized(outside)),
        (true, false) => format!(
            "The permission mode is {}, so no call asks for approval: take care with anything that deletes or overwrites.",
            mode.as_str()
        ),
    });
    if !asking.is_empty() || outside_asks {
        notes.push(
            "A call the user denies returns an error with their reason: do not repeat it unchanged."
                .to_owned(),
        );
    }
    (lines.join("\n"), notes.join(" "))
}

/// The context files, each under a header naming its path.
fn context_section(files: &[ContextFile]) -> String {
    let mut out = String::from(
        "# Project instructions\n\n\
         Instructions from the user's AGENTS.md / CLAUDE.md files, outermost first. \
         Follow them; where they disagree, the later (more specific) file wins.",
    );
    for f in files {
        out.push_str(&format!(
            "\n\n## {}\n\n{}",
            f.path.display(),
            f.text.trim_end()
        ));
        if let Some(size) = f.cut_from {
            out.push_str(&format!(
                "\n\n[truncated: only the first {} KiB of this file's {size} bytes are shown]",
                files::CAP / 1024
            ));
        }
    }
    out
}

/// The skills, one line each (a description's line breaks become spaces):
/// the model reads a body when it needs it.
fn skills_section(skills: &[Skill]) -> String {
    let mut out = String::from(
        "# Skills\n\n\
         Skills are instructions for particular tasks, each in a folder with a SKILL.md file. \
         When a task matches a skill's description, read its SKILL.md with `read` before you start \
         and follow it; paths in it are relative to its folder. Reading inside a skill's folder \
         needs no approval.\n",
    );
    for s in skills {
        let description: Vec<&str> = s.description.split_whitespace().collect();
        out.push_str(&format!(
            "\n- {}: {} ({})",
            s.name,
            description.join(" "),
            s.path.display()
        ));
    }
    out
}

/// `template` with each `{name}` of `values` replaced in one pass, so a
/// value that itself holds `{…}` (a directory name, say) stays as it is.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + 1024);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let known = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match known {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// "a, b and c".
fn in_words(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn capitalized(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The current session's system prompt, as the host holds it.
pub(crate) struct SessionPrompt {
    config: PromptConfig,
    cwd: PathBuf,
    mode: Mode,
    /// Whether bash runs in an enforced sandbox ([`Inputs::sandboxed`]).
    sandboxed: bool,
    env: Environment,
    files: Vec<ContextFile>,
    found: Found,
    prompt: SystemPrompt,
}

impl SessionPrompt {
    /// Reads the context files and finds the skills of a session in `cwd`,
    /// and builds its prompt.
    pub(crate) fn start(config: PromptConfig, cwd: PathBuf, mode: Mode) -> Self {
        let env = Environment::current(&cwd);
        let files = read_files(&config, &cwd);
        let found = find_skills(&config, &cwd);
        let prompt = build(&Inputs {
            config: &config,
            tools: Toolset::builtin(),
            mode,
            sandboxed: false,
            env: &env,
            files: &files,
            skills: &found.skills,
        });
        SessionPrompt {
            config,
            cwd,
            mode,
            sandboxed: false,
            env,
            files,
            found,
            prompt,
        }
    }

    /// A new session: the context files are read again, the date is today's.
    pub(crate) fn restart(&mut self) {
        let config = std::mem::take(&mut self.config);
        let sandboxed = self.sandboxed;
        *self = SessionPrompt::start(config, std::mem::take(&mut self.cwd), self.mode);
        self.set_sandboxed(sandboxed);
    }

    /// Another session, in `cwd` with `mode`: rebuilt as at start-up.
    pub(crate) fn restart_in(&mut self, cwd: PathBuf, mode: Mode) {
        let config = std::mem::take(&mut self.config);
        let sandboxed = self.sandboxed;
        *self = SessionPrompt::start(config, cwd, mode);
        self.set_sandboxed(sandboxed);
    }

    /// The tool list and permission notes follow the mode; the files are
    /// not read again.
    pub(crate) fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
        self.rebuild();
    }

    /// What bash asks follows whether the sandbox is enforced (it runs
    /// unasked in accept-edits when it is); the files are not read again.
    pub(crate) fn set_sandboxed(&mut self, sandboxed: bool) {
        if self.sandboxed != sandboxed {
            self.sandboxed = sandboxed;
            self.rebuild();
        }
    }

    fn rebuild(&mut self) {
        self.prompt = build(&Inputs {
            config: &self.config,
            tools: Toolset::builtin(),
            mode: self.mode,
            sandboxed: self.sandboxed,
            env: &self.env,
            files: &self.files,
            skills: &self.found.skills,
        });
    }

    /// What a turn sends; nothing when the text is empty.
    pub(crate) fn text(&self) -> Option<String> {
        Some(self.prompt.text.clone()).filter(|t| !t.is_empty())
    }

    /// The context files in the prompt, outermost first.
    pub(crate) fn files(&self) -> &[String] {
        &self.prompt.context_files
    }

    /// The skills as `ready`, `get_state` and `switch_session` list them.
    pub(crate) fn skill_entries(&self) -> Vec<crate::protocol::SkillEntry> {
        let entry = |s: &Skill| crate::protocol::SkillEntry {
            name: s.name.clone(),
            description: s.description.clone(),
            path: s.path.to_string_lossy().into_owned(),
        };
        self.found.skills.iter().map(entry).collect()
    }

    /// The skipped `SKILL.md` files, as `get_state` lists them.
    pub(crate) fn skill_errors(&self) -> Vec<crate::protocol::SkillError> {
        let error = |e: &skills::SkillError| crate::protocol::SkillError {
            path: e.path.to_string_lossy().into_owned(),
            message: e.message.clone(),
        };
        self.found.errors.iter().map(error).collect()
    }

    /// The skills' folders (canonical), where reads need no permission.
    pub(crate) fn skill_roots(&self) -> Vec<PathBuf> {
        self.found.skills.iter().map(|s| s.root.clone()).collect()
    }
}

fn read_files(config: &PromptConfig, cwd: &Path) -> Vec<ContextFile> {
    if !config.context_files {
        return Vec::new();
    }
    files::discover(cwd, config.global_dir.as_deref())
}

/// The skills along the same chain of directories as the context files.
fn find_skills(config: &PromptConfig, cwd: &Path) -> Found {
    if !config.skills {
        return Found::default();
    }
    skills::discover(&files::chain(cwd), &config.skill_dirs)
}

#[cfg(test)]
mod tests;
