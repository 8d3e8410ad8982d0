//! Project context files: the `AGENTS.md` (or, where a directory has none,
//! `CLAUDE.md`) of the global config directory and of every directory from
//! the enclosing git repository's root (else the filesystem root) down to
//! the working directory, outermost first.
//!
//! Only the ancestor chain is looked at, never a directory's other entries:
//! a few `open` calls, cheap enough to do before `ready`. A file that cannot
//! be read is skipped with a warning; the session starts without it.

use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

/// The names looked for in each directory, the first found wins.
pub(crate) const NAMES: [&str; 2] = ["AGENTS.md", "CLAUDE.md"];

/// Most bytes of one file that reach the prompt.
pub(crate) const CAP: usize = 64 * 1024;

/// One file as it goes into the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContextFile {
    pub path: PathBuf,
    /// At most [`CAP`] bytes of it (invalid UTF-8 replaced).
    pub text: String,
    /// The file's full size when `text` was cut.
    pub cut_from: Option<u64>,
}

/// The context files for a session in `cwd` (canonical), outermost first:
/// `global_dir`'s, then the chain's. A directory met twice counts once.
pub(crate) fn discover(cwd: &Path, global_dir: Option<&Path>) -> Vec<ContextFile> {
    let mut dirs: Vec<PathBuf> = global_dir.map(Path::to_path_buf).into_iter().collect();
    for dir in chain(cwd) {
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs.iter().filter_map(|dir| in_dir(dir)).collect()
}

/// The directories from the nearer of the git repository's root (the
/// nearest ancestor holding `.git`, a directory or, in worktrees and
/// submodules, a file) and the filesystem root, down to `cwd`.
pub(crate) fn chain(cwd: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for dir in cwd.ancestors() {
        dirs.push(dir.to_path_buf());
        if dir.join(".git").symlink_metadata().is_ok() {
            break;
        }
    }
    dirs.reverse();
    dirs
}

/// The directory's `AGENTS.md`, else its `CLAUDE.md`. An `AGENTS.md` that
/// exists but cannot be read (or is blank) still means the directory has
/// one: `CLAUDE.md` is only the fallback for directories without it.
fn in_dir(dir: &Path) -> Option<ContextFile> {
    for name in NAMES {
        let path = dir.join(name);
        match read_capped(&path) {
            Ok((text, _)) if text.trim().is_empty() => return None,
            Ok((text, cut_from)) => {
                return Some(ContextFile {
                    path,
                    text,
                    cut_from,
                })
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(
                    "context file {} skipped: cannot read it: {e}",
                    path.display()
                );
                return None;
            }
        }
    }
    None
}

/// At most [`CAP`] bytes of the file, cut at a character boundary, and its
/// size when it was longer. Never reads more than the cap (plus one byte).
fn read_capped(path: &Path) -> std::io::Result<(String, Option<u64>)> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(CAP as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() <= CAP {
        return Ok((String::from_utf8_lossy(&bytes).into_owned(), None));
    }
    let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
    bytes.truncate(CAP);
    // Drop a character the cut split in two rather than show U+FFFD for it.
    if let Err(e) = std::str::from_utf8(&bytes) {
        if e.error_len().is_none() {
            bytes.truncate(e.valid_up_to());
        }
    }
    Ok((String::from_utf8_lossy(&bytes).into_owned(), Some(size)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn the_chain_stops_at_the_repository_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let sub = root.join("repo/a/b");
        std::fs::create_dir_all(&sub).unwrap();
        std::fs::create_dir(root.join("repo/.git")).unwrap();
        assert_eq!(
            chain(&sub),
            [root.join("repo"), root.join("repo/a"), sub.clone()]
        );
        // A worktree's `.git` is a file.
        std::fs::remove_dir(root.join("repo/.git")).unwrap();
        write(&root.join("repo/a/.git"), "gitdir: elsewhere\n");
        assert_eq!(chain(&sub), [root.join("repo/a"), sub.clone()]);
        // No repository: from the filesystem root.
        std::fs::remove_file(root.join("repo/a/.git")).unwrap();
        let all = chain(&sub);
        assert_eq!(all.first().map(PathBuf::as_path), Some(Path::new("/")));
        assert_eq!(all.last(), Some(&sub));
    }

    #[test]
    fn agents_md_wins_and_claude_md_is_the_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let global = root.join("config/agent-rpc");
        let repo = root.join("repo");
        let sub = repo.join("sub");
        std::fs::create_dir_all(repo.join(".git")).unwrap();
        write(&global.join("CLAUDE.md"), "global\n");
        write(&repo.join("AGENTS.md"), "repo agents\n");
        write(&repo.join("CLAUDE.md"), "repo claude\n");
        write(&sub.join("CLAUDE.md"), "sub claude\n");
        let found = discover(&sub, Some(&global));
        let got: Vec<(&Path, &str)> = found
            .iter()
            .map(|f| (f.path.as_path(), f.text.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (global.join("CLAUDE.md").as_path(), "global\n"),
                (repo.join("AGENTS.md").as_path(), "repo agents\n"),
                (sub.join("CLAUDE.md").as_path(), "sub claude\n"),
            ]
        );
        // The global directory inside the chain is read once.
        assert_eq!(discover(&repo, Some(&repo)).len(), 1);
    }

    #[test]
    fn blank_and_unreadable_files_are_skipped_without_falling_back() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(repo.join(".git")).unwrap();
        write(&repo.join("AGENTS.md"), " \n\n");
        write(&repo.join("CLAUDE.md"), "not used\n");
        assert_eq!(discover(&repo, None), []);
        std::fs::remove_file(repo.join("AGENTS.md")).unwrap();
        // A directory named AGENTS.md opens but cannot be read (even as root).
        std::fs::create_dir(repo.join("AGENTS.md")).unwrap();
        assert_eq!(discover(&repo, None), []);
    }

    #[test]
    fn long_files_are_cut_at_the_cap_on_a_character_boundary() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().canonicalize().unwrap();
        std::fs::create_dir(repo.join(".git")).unwrap();
        // 'é' is two bytes: the cap falls in the middle of one.
        let text = format!("a{}", "é".repeat(CAP));
        write(&repo.join("AGENTS.md"), &text);
        let found = discover(&repo, None);
        let file = &found[0];
        assert_eq!(file.cut_from, Some(text.len() as u64));
        assert_eq!(file.text.len(), CAP - 1);
        assert!(text.starts_with(&file.text));
        write(&repo.join("AGENTS.md"), &"x".repeat(CAP));
        let found = discover(&repo, None);
        assert_eq!((found[0].text.len(), found[0].cut_from), (CAP, None));
    }
}
