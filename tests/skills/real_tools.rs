//! The ecosystem's own tools, pinned in `tests/skills/node/package.json`:
//! skills installed by the real `skills` CLI are found, and the real
//! `skills-ref` validator agrees with ours on every skill of
//! `fixtures/skills/` (`valid/` and `invalid/`). The `skills` CLI needs
//! Node >= 22.20, so it runs on the `node` package's Node 22, not the
//! machine's.

use std::process::Command;
use std::time::Duration;

use super::*;
use common::bounded::run_bounded;
use common::node::{ensure_node_modules, Install};

/// `tests/skills/node`, its packages installed.
fn node_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/skills/node");
    ensure_node_modules(&dir, "skills-npm.lock", Install::Ci);
    dir
}

/// The pinned Node 22 running `script` (a path under `node_modules`) with
/// `args` in `cwd`; fails the test unless it exits 0 within a minute.
fn node(script: &str, args: &[&str], cwd: &Path, home: &Path) -> String {
    let (ok, out) = node_status(script, args, cwd, home);
    assert!(ok, "{script} {args:?} failed:\n{out}");
    out
}

/// As [`node`], returning whether it exited 0 and its output.
fn node_status(script: &str, args: &[&str], cwd: &Path, home: &Path) -> (bool, String) {
    let modules = node_dir().join("node_modules");
    let mut cmd = Command::new(modules.join("node/bin/node"));
    cmd.arg(modules.join(script))
        .args(args)
        .current_dir(cwd)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        // No telemetry call from a test run.
        .env("DISABLE_TELEMETRY", "1")
        .env("DO_NOT_TRACK", "1");
    let (status, stdout, stderr) = run_bounded(&mut cmd, b"", Duration::from_secs(60));
    (status.is_some_and(|s| s.success()), stdout + &stderr)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/skills")
}

/// `skills add` from a local folder (no network): a project install for
/// Codex (`.agents/skills`) and Claude Code (`.claude/skills`, linked to
/// it), a global one (`~/.agents/skills`), and one that breaks the
/// specification, which the CLI installs anyway and we report.
#[test]
fn skills_installed_by_the_skills_cli_are_found() {
    let w = World::new();
    let src = fixtures();
    let (valid, invalid) = (src.join("valid"), src.join("invalid"));
    let add = |from: &Path, skill: &str, extra: &[&str]| {
        let from = from.to_str().expect("utf-8");
        let mut args = vec!["add", from, "--skill", skill, "-y"];
        args.extend_from_slice(extra);
        node("skills/bin/cli.mjs", &args, &w.repo, &w.home);
    };
    add(&valid, "minimal", &["-a", "codex", "claude-code"]);
    add(&valid, "all-fields", &["-a", "codex", "claude-code"]);
    add(&valid, "folded-description", &["-g", "-a", "codex"]);
    add(&invalid, "unknown-field", &["-a", "codex"]);
    let project = w.repo.join(".agents/skills");
    assert!(w.repo.join(".claude/skills/minimal/SKILL.md").is_file());
    assert!(w.home.join(".agents/skills/folded-description").is_dir());

    let mut rpc = w.spawn(&w.repo).start();
    let ready = rpc.ready();
    let folded = w.home.join(".agents/skills/folded-description/SKILL.md");
    let want = entries(&[
        (
            "all-fields",
            "Uses every optional field.",
            &project.join("all-fields/SKILL.md"),
        ),
        (
            "folded-description",
            "A description folded over two lines.",
            &folded,
        ),
        (
            "minimal",
            "The smallest valid skill.",
            &project.join("minimal/SKILL.md"),
        ),
    ]);
    assert_eq!(ready["skills"], want, "{ready}");
    let state = get_state(&mut rpc, "s");
    let errors = state["skill_errors"].as_array().expect("skill_errors");
    assert_eq!(errors.len(), 1, "{state}");
    let broken = project.join("unknown-field/SKILL.md");
    assert_eq!(errors[0]["path"], broken.to_str().expect("utf-8"));
    let message = errors[0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("unknown front matter field `version`"),
        "{message}"
    );
    finish(rpc);
}

/// Every fixture skill, through `skills-ref validate` and through `rpc`
/// (all copied into one project): both must call it what its folder
/// (`valid/` or `invalid/`) says.
#[test]
fn skills_ref_agrees_with_our_validator() {
    let w = World::new();
    let skills = w.repo.join(".agents/skills");
    let mut cases = Vec::new();
    for kind in ["valid", "invalid"] {
        let dir = fixtures().join(kind);
        for entry in std::fs::read_dir(&dir).expect("read fixtures") {
            let from = entry.expect("fixture entry").path();
            let folder = from.file_name().expect("name").to_owned();
            let to = skills.join(&folder);
            std::fs::create_dir_all(&to).expect("mkdir");
            std::fs::copy(from.join("SKILL.md"), to.join("SKILL.md")).expect("copy fixture");
            cases.push((kind == "valid", folder.to_string_lossy().into_owned(), from));
        }
    }
    assert!(cases.len() >= 20, "{} fixtures", cases.len());
    let mut rpc = w.spawn(&w.repo).start();
    let listed = names(&rpc.ready()["skills"]);
    let state = get_state(&mut rpc, "s");
    finish(rpc);
    let errors = state["skill_errors"].as_array().expect("skill_errors");
    let mut disagreements = Vec::new();
    for (want, folder, from) in &cases {
        let (theirs, why) = node_status(
            "skills-ref/dist/cli.js",
            &["validate", from.to_str().expect("utf-8")],
            &w.root,
            &w.home,
        );
        let ours = listed.contains(folder);
        let error = errors.iter().find(|e| {
            e["path"]
                .as_str()
                .is_some_and(|p| p.contains(&format!("/{folder}/")))
        });
        // Listed or reported, never both nor neither.
        assert_eq!(ours, error.is_none(), "{folder}: {state}");
        if theirs != *want || ours != *want {
            disagreements.push(format!(
                "{folder}: expected valid={want}, skills-ref {theirs} ({}), rpc {ours} ({error:?})",
                why.trim()
            ));
        }
    }
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}
