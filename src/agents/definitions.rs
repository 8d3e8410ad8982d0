//! Agent definitions: the agents a session's `task` tool can run.
//!
//! In-process agents are Markdown files, as Claude Code writes them:
//! `.agents/agents/*.md` then `.claude/agents/*.md` of each directory from
//! the working directory up to the enclosing git repository's root, then
//! `agents/` in the global config directory; the nearest definition of a
//! name wins. The front matter gives `name` (default: the file's stem),
//! `description`, `tools` (`read, grep` or a YAML list; default: all but
//! `task`), `model` (default, or `inherit`: the parent's), `permission_mode`,
//! `max_turns` and `budget_usd`; the body is added to the child's system
//! prompt. A built-in `general` agent is always there.
//!
//! A file that cannot be used is skipped with a warning naming it and why;
//! it never stops a session.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use crate::commands::{front_matter_value, read_capped, split_front_matter};
use crate::protocol::Mode;

/// The project folders looked for in each directory, in this order.
const PROJECT_DIRS: [&str; 2] = [".agents/agents", ".claude/agents"];

/// The built-in agent's name.
pub(crate) const GENERAL: &str = "general";

/// One in-process agent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Definition {
    pub name: String,
    pub description: String,
    /// The tools it may use, by our names; `None`: all but `task`.
    pub tools: Option<Vec<String>>,
    /// Its model; `None`: the parent's.
    pub model: Option<String>,
    /// Narrows the parent's mode (never widens it).
    pub permission_mode: Option<Mode>,
    pub max_turns: Option<u64>,
    pub budget_usd: Option<f64>,
    /// Added to the default system prompt.
    pub prompt: String,
    /// The file it came from; `None` for the built-in one.
    pub path: Option<PathBuf>,
}

impl Definition {
    /// The built-in agent: the parent's tools (but `task`), model and mode.
    pub(crate) fn general() -> Self {
        Definition {
            name: GENERAL.into(),
            description: "A general-purpose agent for research and multi-step tasks: searching code, reading files, running commands, making changes. Use it to work on a part of a task in its own context and report back.".into(),
            tools: None,
            model: None,
            permission_mode: None,
            max_turns: None,
            budget_usd: None,
            prompt: "You are a subagent: another agent gave you the task below. Work on it with your tools, then end with a complete, self-contained answer: it is all the other agent will see of your work.".into(),
            path: None,
        }
    }
}

/// Every definition for `cwd`: the files, nearest first, then `general`
/// unless a file redefines it.
pub(crate) fn discover(cwd: &Path, user_dir: Option<&Path>) -> Vec<Definition> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for dir in roots(cwd, user_dir) {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect(),
            Err(e) => {
                tracing::warn!("agents folder {} skipped: {e}", dir.display());
                continue;
            }
        };
        files.sort();
        for path in files {
            match read(&path) {
                Ok(def) if seen.insert(def.name.clone()) => out.push(def),
                Ok(_) => {}
                Err(why) => tracing::warn!("agent file {} skipped: {why}", path.display()),
            }
        }
    }
    if !seen.contains(GENERAL) {
        out.push(Definition::general());
    }
    out
}

/// The agents folders that exist, nearest first.
fn roots(cwd: &Path, user_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut roots = Vec::new();
    for dir in crate::context::files::chain(cwd).iter().rev() {
        for sub in PROJECT_DIRS {
            let root = dir.join(sub);
            if root.is_dir() {
                roots.push(root);
            }
        }
    }
    if let Some(user) = user_dir.map(|d| d.join("agents")) {
        if user.is_dir() && !roots.contains(&user) {
            roots.push(user);
        }
    }
    roots
}

/// One file as a definition, or why it cannot be one.
fn read(path: &Path) -> Result<Definition, String> {
    // Capped like a command file (which an agent file is much like).
    let text = read_capped(path)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or("its name is not UTF-8")?;
    parse(&text, stem).map(|mut def| {
        def.path = Some(path.to_owned());
        def
    })
}

/// A definition from a file's text; `stem` names it when the front matter
/// does not.
pub(crate) fn parse(text: &str, stem: &str) -> Result<Definition, String> {
    let (front, body) = split_front_matter(text);
    let fields = Fields::of(front.unwrap_or_default())?;
    let name = fields.string("name").unwrap_or_else(|| stem.to_owned());
    if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
        return Err(format!("its name {name:?} is empty or holds spaces"));
    }
    let description = fields
        .string("description")
        .ok_or("its front matter has no description (the model picks an agent by it)")?;
    let model = fields
        .string("model")
        .filter(|m| m != "inherit" && !m.is_empty());
    let permission_mode = match fields
        .string("permission_mode")
        .or(fields.string("permissionMode"))
    {
        None => None,
        Some(m) => Some(parse_mode(&m)?),
    };
    Ok(Definition {
        name,
        description,
        tools: fields.list("tools").map(|names| tool_names(&names)),
        model,
        permission_mode,
        max_turns: fields.number("max_turns")?.map(|n| n as u64),
        budget_usd: fields.number("budget_usd")?,
        prompt: body.trim().to_owned(),
        path: None,
    })
}

/// A mode as a definition may write it: ours, or Claude Code's names.
fn parse_mode(text: &str) -> Result<Mode, String> {
    Ok(match text {
        "ask" | "default" => Mode::Ask,
        "accept-edits" | "acceptEdits" => Mode::AcceptEdits,
        "allow-all" | "bypassPermissions" => Mode::AllowAll,
        "read-only" | "plan" => Mode::ReadOnly,
        other => {
            return Err(format!(
                "permission_mode {other:?} is not one of ask, accept-edits, allow-all, read-only"
            ))
        }
    })
}

/// Claude Code's tool names as ours (`Read` → `read`, `Glob` → `find`);
/// MCP tools (`mcp__server__tool`) and our own names pass as they are.
fn tool_names(names: &[String]) -> Vec<String> {
    names
        .iter()
        .filter_map(|n| {
            let ours = match n.as_str() {
                "Read" => "read",
                "Write" => "write",
                "Edit" | "MultiEdit" => "edit",
                "Bash" => "bash",
                "Grep" => "grep",
                "Glob" => "find",
                "LS" => "ls",
                "TodoWrite" => "todo_write",
                "Task" => "task",
                other if other.starts_with("mcp__") => other,
                other => {
                    let lower = other.to_ascii_lowercase();
                    return Some(lower).filter(|l| !l.is_empty());
                }
            };
            Some(ours.to_owned())
        })
        .collect()
}

/// The front matter's fields: parsed as YAML, or, when it is not valid
/// YAML (Claude Code's files often hold descriptions with `: ` in them,
/// which strict YAML refuses), read line by line as Claude Code reads it.
enum Fields<'a> {
    Yaml(yaml_rust2::yaml::Hash),
    Lines(&'a str),
}

impl<'a> Fields<'a> {
    fn of(front: &'a str) -> Result<Self, String> {
        // Aliases can grow a few bytes into gigabytes (see skills).
        match crate::context::front_matter::has_alias(front) {
            Ok(true) => return Err("the front matter uses a YAML alias (`*name`)".into()),
            Ok(false) => {}
            Err(_) => return Ok(Fields::Lines(front)),
        }
        match YamlLoader::load_from_str(front) {
            Ok(docs) => match docs.into_iter().next() {
                Some(Yaml::Hash(map)) => Ok(Fields::Yaml(map)),
                None | Some(Yaml::Null) => Ok(Fields::Yaml(Default::default())),
                Some(_) => Err("the front matter is not a YAML mapping".into()),
            },
            Err(_) => Ok(Fields::Lines(front)),
        }
    }

    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Fields::Yaml(map) => map.get(&Yaml::String(key.to_owned())),
            Fields::Lines(_) => None,
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        match self {
            Fields::Lines(front) => front_matter_value(front, key),
            Fields::Yaml(_) => match self.get(key)? {
                Yaml::String(s) => Some(s.trim().to_owned()),
                Yaml::Integer(i) => Some(i.to_string()),
                Yaml::Real(r) => Some(r.clone()),
                Yaml::Boolean(b) => Some(b.to_string()),
                _ => None,
            },
        }
    }

    /// A list written as a YAML sequence or as `a, b, c`.
    fn list(&self, key: &str) -> Option<Vec<String>> {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect()
        };
        if let Some(Yaml::Array(items)) = self.get(key) {
            return Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(|s| s.trim().to_owned()))
                    .collect(),
            );
        }
        self.string(key).map(|s| split(&s))
    }

    fn number(&self, key: &str) -> Result<Option<f64>, String> {
        let Some(text) = self.string(key) else {
            return Ok(None);
        };
        match text.parse::<f64>() {
            Ok(n) if n >= 0.0 && n.is_finite() => Ok(Some(n)),
            _ => Err(format!("{key} {text:?} is not a number of 0 or more")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_code_files_read_as_claude_code_reads_them() {
        let text = "---\nname: reviewer\ndescription: Reviews code. Use when: a diff is ready\ntools: Read, Grep, Glob, WebFetch\nmodel: inherit\n---\nYou review.\n";
        let def = parse(text, "x").unwrap();
        assert_eq!(def.name, "reviewer");
        assert_eq!(def.description, "Reviews code. Use when: a diff is ready");
        assert_eq!(
            def.tools.unwrap(),
            ["read", "grep", "find", "webfetch"].map(String::from)
        );
        assert_eq!(def.model, None);
        assert_eq!(def.prompt, "You review.");
    }

    #[test]
    fn yaml_lists_modes_and_budgets() {
        let text = "---\ndescription: d\ntools: [read, mcp__git__log]\npermission_mode: read-only\nmax_turns: 3\nbudget_usd: 0.5\nmodel: fake/small\n---\nbody";
        let def = parse(text, "stem").unwrap();
        assert_eq!(def.name, "stem");
        assert_eq!(
            def.tools.unwrap(),
            ["read", "mcp__git__log"].map(String::from)
        );
        assert_eq!(def.permission_mode, Some(Mode::ReadOnly));
        assert_eq!(def.max_turns, Some(3));
        assert_eq!(def.budget_usd, Some(0.5));
        assert_eq!(def.model.as_deref(), Some("fake/small"));
    }

    #[test]
    fn a_file_without_a_description_or_with_a_bad_mode_says_why() {
        assert!(parse("---\nname: a\n---\n", "a")
            .unwrap_err()
            .contains("no description"));
        assert!(
            parse("---\ndescription: d\npermission_mode: root\n---\n", "a")
                .unwrap_err()
                .contains("permission_mode")
        );
        assert!(parse("---\ndescription: d\nmax_turns: -1\n---\n", "a")
            .unwrap_err()
            .contains("max_turns"));
    }

    #[test]
    fn the_nearest_definition_wins_and_general_is_always_there() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join(".git")).unwrap();
        let sub = root.join("a/b");
        std::fs::create_dir_all(sub.join(".claude/agents")).unwrap();
        std::fs::create_dir_all(root.join(".agents/agents")).unwrap();
        std::fs::write(
            sub.join(".claude/agents/x.md"),
            "---\ndescription: near\n---\n",
        )
        .unwrap();
        std::fs::write(
            root.join(".agents/agents/x.md"),
            "---\ndescription: far\n---\n",
        )
        .unwrap();
        std::fs::write(root.join(".agents/agents/bad.md"), "no front matter").unwrap();
        let defs = discover(&sub, None);
        let names: Vec<_> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["x", GENERAL]);
        assert_eq!(defs[0].description, "near");
    }
}
