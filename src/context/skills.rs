//! Agent Skills: folders holding a `SKILL.md` whose front matter names and
//! describes a skill (agentskills.io). The system prompt lists each one's
//! name, description and path; the model reads the body with `read` when a
//! task calls for it (progressive disclosure), so only the front matter is
//! read here.
//!
//! A skill is a direct subfolder of a skills directory: the user's
//! (`~/.agents/skills/`, then `$XDG_CONFIG_HOME/agent-rpc/skills/`), then
//! `.claude/skills/` and `.agents/skills/` in each directory of the chain
//! `files.rs` walks for AGENTS.md, outermost first. A later (nearer) level
//! replaces a skill of the same name. Only those directories are listed,
//! so start-up costs one `read_dir` per directory that exists and one
//! short read per skill. A `SKILL.md` that breaks a rule is skipped with a
//! warning and kept as an error to report; it never stops a session.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::front_matter;

/// Most bytes of a `SKILL.md` read to find its front matter.
const HEAD: u64 = 64 * 1024;

/// Where skills live inside a project directory, farther level first: in
/// one directory `.agents/skills` (the shared location) wins.
pub(crate) const PROJECT_DIRS: [&str; 2] = [".claude/skills", ".agents/skills"];

/// One valid skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skill {
    pub name: String,
    pub description: String,
    /// Its `SKILL.md`, as found (through any symlink).
    pub path: PathBuf,
    /// Its folder, canonical: reads inside it need no permission.
    pub root: PathBuf,
}

/// A `SKILL.md` that was skipped, and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SkillError {
    pub path: PathBuf,
    pub message: String,
}

/// What discovery found: the skills by name, and the skipped files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Found {
    pub skills: Vec<Skill>,
    pub errors: Vec<SkillError>,
}

/// The skills for a session in `chain` (the directories from the
/// repository root down to the cwd), after the user's `user_dirs` (skills
/// directories, farther first).
pub(crate) fn discover(chain: &[PathBuf], user_dirs: &[PathBuf]) -> Found {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let project = chain
        .iter()
        .flat_map(|d| PROJECT_DIRS.iter().map(move |p| d.join(p)));
    for dir in user_dirs.iter().cloned().chain(project) {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    let mut by_name = BTreeMap::new();
    let mut errors = Vec::new();
    for dir in &dirs {
        let entries = entries(dir);
        if entries.is_empty() {
            continue;
        }
        // Resolved once per directory, not once per skill: only a skill
        // that is itself a symlink needs resolving on its own.
        let canonical = dir.canonicalize().ok();
        for (folder, linked) in entries {
            let path = dir.join(&folder).join("SKILL.md");
            match load(&path, &folder, canonical.as_deref().filter(|_| !linked)) {
                Ok(Some(skill)) => {
                    by_name.insert(skill.name.clone(), skill);
                }
                Ok(None) => {}
                Err(message) => {
                    tracing::warn!("skill {} skipped: {message}", path.display());
                    errors.push(SkillError { path, message });
                }
            }
        }
    }
    Found {
        skills: by_name.into_values().collect(),
        errors,
    }
}

/// The names of `dir`'s entries that may be skill folders (directories, and
/// symlinks, marked `true`, which may point at one), sorted so the order
/// never depends on the disk.
fn entries(dir: &Path) -> Vec<(String, bool)> {
    // Missing is the common case; an unreadable directory has no skills.
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, bool)> = entries
        .flatten()
        .filter_map(|e| {
            let kind = e.file_type().ok()?;
            let folder = e.file_name().into_string().ok()?;
            (kind.is_dir() || kind.is_symlink()).then_some((folder, kind.is_symlink()))
        })
        .collect();
    found.sort();
    found
}

/// One skill from its `SKILL.md`; `None` when the folder has none, else
/// the rule it broke. `canonical_dir`: the skills directory resolved, when
/// the folder is not a symlink.
fn load(path: &Path, folder: &str, canonical_dir: Option<&Path>) -> Result<Option<Skill>, String> {
    let text = match head(path) {
        Ok(text) => text,
        // No SKILL.md, or a symlink to a file: not a skill folder.
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(None)
        }
        Err(e) => return Err(format!("cannot read it: {e}")),
    };
    let meta = front_matter::parse(&text, folder)?;
    let root = match canonical_dir {
        Some(dir) => dir.join(folder),
        None => path
            .parent()
            .unwrap_or(path)
            .canonicalize()
            .map_err(|e| format!("cannot resolve its folder: {e}"))?,
    };
    Ok(Some(Skill {
        name: meta.name,
        description: meta.description,
        path: path.to_path_buf(),
        root,
    }))
}

/// The file's first [`HEAD`] bytes, invalid UTF-8 replaced. Only a
/// regular file is opened: a FIFO would block start-up for ever.
fn head(path: &Path) -> std::io::Result<String> {
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(HEAD)
        .read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skill(dir: &Path, name: &str, description: &str) -> PathBuf {
        let path = dir.join(name).join("SKILL.md");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = format!("---\nname: {name}\ndescription: {description}\n---\nbody\n");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn nearer_levels_win_and_errors_are_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let (user, repo) = (root.join("user/skills"), root.join("repo"));
        let sub = repo.join("sub");
        skill(&user, "shared", "from the user");
        skill(&user, "mine", "only mine");
        skill(&repo.join(".claude/skills"), "shared", "from claude");
        let agents = skill(&repo.join(".agents/skills"), "shared", "from agents");
        let near = skill(&sub.join(".claude/skills"), "near", "nearest");
        let broken = skill(&sub.join(".agents/skills"), "Broken", "bad name");
        // A folder without SKILL.md is not a skill, and no error.
        std::fs::create_dir_all(sub.join(".agents/skills/empty")).unwrap();
        let found = discover(&[repo.clone(), sub.clone()], std::slice::from_ref(&user));
        let got: Vec<(&str, &str, &Path)> = found
            .skills
            .iter()
            .map(|s| (s.name.as_str(), s.description.as_str(), s.path.as_path()))
            .collect();
        let mine = user.join("mine/SKILL.md");
        assert_eq!(
            got,
            [
                ("mine", "only mine", mine.as_path()),
                ("near", "nearest", near.as_path()),
                ("shared", "from agents", agents.as_path()),
            ]
        );
        assert_eq!(found.errors.len(), 1);
        assert_eq!(found.errors[0].path, broken);
        assert!(found.errors[0].message.contains("lowercase"));
    }

    #[test]
    fn symlinked_skills_count_and_their_root_is_the_target() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let store = root.join("store");
        skill(&store, "linked", "through a link");
        let skills = root.join("repo/.agents/skills");
        std::fs::create_dir_all(&skills).unwrap();
        std::os::unix::fs::symlink(store.join("linked"), skills.join("linked")).unwrap();
        let found = discover(&[root.join("repo")], &[]);
        assert_eq!(found.skills.len(), 1);
        assert_eq!(found.skills[0].path, skills.join("linked/SKILL.md"));
        assert_eq!(found.skills[0].root, store.join("linked"));
    }

    #[test]
    fn an_unreadable_skill_is_an_error_not_a_failure() {
        let tmp = tempfile::tempdir().unwrap();
        let skills = tmp.path().canonicalize().unwrap().join(".agents/skills");
        // A directory named SKILL.md cannot be read: an error, no panic.
        let odd = skills.join("odd/SKILL.md");
        std::fs::create_dir_all(&odd).unwrap();
        let bad = skills.join("bin/SKILL.md");
        std::fs::create_dir_all(bad.parent().unwrap()).unwrap();
        std::fs::write(&bad, b"---\nname: bin\ndescription: \xff\xfe\n---\n").unwrap();
        // A file beside the folders is not a skill, nor a link to one.
        std::fs::write(skills.join("README.md"), "not a skill").unwrap();
        std::os::unix::fs::symlink(skills.join("README.md"), skills.join("link")).unwrap();
        let found = discover(&[tmp.path().canonicalize().unwrap()], &[]);
        // Invalid UTF-8 is replaced, so this one is valid.
        assert_eq!(found.skills.len(), 1, "{found:?}");
        assert_eq!(found.errors.len(), 1, "{found:?}");
        assert_eq!(found.errors[0].path, odd);
        assert!(found.errors[0].message.starts_with("cannot read it: "));
    }
}
