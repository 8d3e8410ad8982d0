//! Finding command files: `.agents/commands/` then `.claude/commands/` of
//! each directory from the working directory up to the enclosing git
//! repository's root (else `/`), then the user's `commands/` in the global
//! config directory. The nearest definition of a name wins.
//!
//! A subfolder adds a namespace, as in Claude Code: `frontend/build.md` is
//! `/frontend:build`. Only `*.md` files count; hidden entries are skipped.
//! A file that cannot be read (or is too large, or has an unusable name)
//! is skipped with a warning naming it: it never stops a session.
//!
//! Front matter is the YAML block between `---` lines at the top. Only two
//! top-level keys are read, `description` and `argument-hint`, as plain or
//! quoted scalars; anything else is ignored. This is deliberately not a
//! full YAML parser: Claude Code's own files write hints such as
//! `argument-hint: [pr-number] [priority]`, which strict YAML rejects, and
//! are read here verbatim as Claude Code reads them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::Template;
use crate::protocol::CommandSource;

/// The project folders looked for in each directory, in this order.
const PROJECT_DIRS: [&str; 2] = [".agents/commands", ".claude/commands"];

/// Largest command file read; a bigger one is skipped.
const MAX_BYTES: u64 = 256 * 1024;

/// Subfolder depth followed below a commands folder.
const MAX_DEPTH: usize = 3;

/// Longest description taken from a body's first line.
const DESCRIPTION_CHARS: usize = 100;

/// Every command found for `cwd`, nearest first, one per name.
pub(super) fn discover(cwd: &Path, user_dir: Option<&Path>) -> Vec<Template> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (root, source) in roots(cwd, user_dir) {
        let mut files = Vec::new();
        walk(&root, "", 0, &mut files);
        // Sorted, so which of two same-named files in one folder tree wins
        // does not depend on the directory's order.
        files.sort();
        for (name, path) in files {
            if seen.contains(&name) {
                continue;
            }
            if let Some(template) = read(&path, &name, source) {
                seen.insert(name);
                out.push(template);
            }
        }
    }
    out
}

/// The commands folders that exist, nearest first.
fn roots(cwd: &Path, user_dir: Option<&Path>) -> Vec<(PathBuf, CommandSource)> {
    let mut roots = Vec::new();
    for dir in crate::context::files::chain(cwd).iter().rev() {
        for sub in PROJECT_DIRS {
            let root = dir.join(sub);
            if root.is_dir() {
                roots.push((root, CommandSource::Project));
            }
        }
    }
    if let Some(user) = user_dir.map(|d| d.join("commands")) {
        if user.is_dir() && !roots.iter().any(|(r, _)| *r == user) {
            roots.push((user, CommandSource::User));
        }
    }
    roots
}

/// The `*.md` files under `dir`, named with their subfolders as
/// `prefix:` namespaces.
fn walk(dir: &Path, prefix: &str, depth: usize, out: &mut Vec<(String, PathBuf)>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!("commands folder {} skipped: {e}", dir.display());
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            tracing::warn!(
                "command file {} skipped: its name is not UTF-8",
                path.display()
            );
            continue;
        };
        if file_name.starts_with('.') {
            continue;
        }
        // Followed through symlinks, as a user's dotfiles often are.
        let is_dir = path.is_dir();
        if is_dir && depth < MAX_DEPTH {
            if !usable_name(file_name) {
                tracing::warn!(
                    "command folder {} skipped: a command name cannot hold spaces or `:`",
                    path.display()
                );
                continue;
            }
            walk(&path, &format!("{prefix}{file_name}:"), depth + 1, out);
        } else if let Some(stem) = file_name.strip_suffix(".md").filter(|_| !is_dir) {
            match usable_name(stem) {
                true => out.push((format!("{prefix}{stem}"), path)),
                false => tracing::warn!(
                    "command file {} skipped: a command name cannot be empty or hold spaces",
                    path.display()
                ),
            }
        }
    }
}

/// A name the user can type after `/`: no whitespace, no `:` of its own.
fn usable_name(stem: &str) -> bool {
    !stem.is_empty() && !stem.chars().any(|c| c.is_whitespace() || c == ':')
}

/// One file as a command, or `None` (with a warning) when it cannot be read.
fn read(path: &Path, name: &str, source: CommandSource) -> Option<Template> {
    let text = match read_capped(path) {
        Ok(text) => text,
        Err(why) => {
            tracing::warn!("command file {} skipped: {why}", path.display());
            return None;
        }
    };
    let (front, body) = split_front_matter(&text);
    let body = body.trim_start_matches(['\n', '\r']).trim_end().to_owned();
    let field = |key: &str| front.and_then(|f| front_matter_value(f, key));
    let description = field("description")
        .or_else(|| first_line(&body))
        .unwrap_or_default();
    Some(Template {
        name: name.to_owned(),
        description,
        argument_hint: field("argument-hint"),
        source,
        body,
    })
}

/// The file's text (invalid UTF-8 replaced), refused past [`MAX_BYTES`].
/// Only a regular file is opened (a FIFO would block start-up for ever),
/// and no more than the cap and one byte is read.
pub(crate) fn read_capped(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a regular file".into());
    }
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read it: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!(
            "it has {} bytes, more than the {} KiB such a file may have",
            bytes.len(),
            MAX_BYTES / 1024
        ));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The front matter (between a first line `---` and the next `---` line)
/// and the body after it; no front matter when the file does not open
/// with `---` or never closes it.
pub(crate) fn split_front_matter(text: &str) -> (Option<&str>, &str) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (None, text);
    };
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return (Some(&rest[..offset]), &rest[offset + line.len()..]);
        }
        offset += line.len();
    }
    (None, text)
}

/// A top-level `key: value` of the front matter, unquoted; `None` when
/// absent or empty.
pub(crate) fn front_matter_value(front: &str, key: &str) -> Option<String> {
    front.lines().find_map(|line| {
        let value = line.strip_prefix(key)?.trim_start().strip_prefix(':')?;
        Some(unquote(value.trim())).filter(|v| !v.is_empty())
    })
}

/// A YAML scalar written in quotes loses them (`''` in single quotes and
/// the common backslash escapes in double quotes are undone); anything
/// else is taken as written.
fn unquote(value: &str) -> String {
    let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
    if quoted('\'') {
        return value[1..value.len() - 1].replace("''", "'");
    }
    if quoted('"') {
        let inner = &value[1..value.len() - 1];
        return inner
            .replace("\\\"", "\"")
            .replace("\\n", "\n")
            .replace("\\\\", "\\");
    }
    value.to_owned()
}

/// A description for a file without one: its body's first non-blank line,
/// shortened.
fn first_line(body: &str) -> Option<String> {
    let line = body.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut out: String = line.chars().take(DESCRIPTION_CHARS).collect();
    if line.chars().count() > DESCRIPTION_CHARS {
        out.push('…');
    }
    Some(out)
}
