//! Agent Skills (SPEC §5.12) against the real `rpc` binary: `discovery`
//! (the levels and which wins, `ready` / `get_state` / `switch_session`,
//! what the model is sent, `--no-skills`, reads inside a skill's folder)
//! and `real_tools` (skills installed by the real `skills` CLI, and the
//! real `skills-ref` validator agreeing with ours on `fixtures/skills/`).
//!
//! Every host gets its own `HOME` and `XDG_CONFIG_HOME`, so the user's own
//! skills never leak in.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod discovery;
mod real_tools;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};
use tempfile::TempDir;

/// A scratch tree: `home` (the user's `HOME`), `config` (their
/// `XDG_CONFIG_HOME`), and `repo`, a git repository.
struct World {
    _tmp: TempDir,
    root: PathBuf,
    home: PathBuf,
    config: PathBuf,
    repo: PathBuf,
}

impl World {
    fn new() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().canonicalize().expect("canonical tempdir");
        let (home, config, repo) = (root.join("home"), root.join("config"), root.join("repo"));
        for dir in [&home, &config, &repo.join(".git")] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        World {
            _tmp: tmp,
            root,
            home,
            config,
            repo,
        }
    }

    /// A host started in `cwd` (its current directory, not `--cwd`, so a
    /// resumed session moves to its own) with this world's home and config.
    fn base(&self, cwd: &Path) -> Spawn {
        Spawn::new()
            .env("HOME", self.home.to_str().expect("utf-8"))
            .env("XDG_CONFIG_HOME", self.config.to_str().expect("utf-8"))
            .current_dir(cwd)
    }

    /// [`World::base`] on the echo model.
    fn spawn(&self, cwd: &Path) -> Spawn {
        self.base(cwd).ext("echo").model(ECHO)
    }
}

/// Writes `<dir>/<folder>/SKILL.md` with this front matter and body;
/// returns its path.
fn skill(dir: &Path, folder: &str, front: &str, body: &str) -> PathBuf {
    let path = dir.join(folder).join("SKILL.md");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, format!("---\n{front}---\n{body}")).expect("write SKILL.md");
    path
}

/// A valid skill whose folder is its name.
fn valid(dir: &Path, name: &str, description: &str) -> PathBuf {
    let front = format!("name: {name}\ndescription: {description}\n");
    skill(dir, name, &front, "# Steps\n\nDo it well.\n")
}

/// `skills` as `ready` lists them, for (name, description, SKILL.md).
fn entries(list: &[(&str, &str, &Path)]) -> Value {
    json!(list
        .iter()
        .map(|(name, description, path)| json!({
            "name": name,
            "description": description,
            "path": path.to_str().expect("utf-8"),
        }))
        .collect::<Vec<_>>())
}

/// The skill names in a `skills` list.
fn names(skills: &Value) -> Vec<String> {
    skills
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {skills}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}
