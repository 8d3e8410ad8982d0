//! Discovery and expansion against real folders.

use std::fs;
use std::path::Path;

use super::*;

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

/// A repository `repo/` with a nested working directory `repo/app/`.
fn tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    fs::create_dir_all(repo.join(".git")).unwrap();
    let cwd = repo.join("app");
    fs::create_dir_all(&cwd).unwrap();
    let user = dir.path().join("config/agent-rpc");
    (dir, cwd, user)
}

#[test]
fn the_nearest_definition_wins_then_the_users() {
    let (dir, cwd, user) = tree();
    let repo = cwd.parent().unwrap();
    write(&repo.join(".claude/commands/review.md"), "Outer review");
    write(&cwd.join(".agents/commands/review.md"), "Inner review");
    write(&cwd.join(".claude/commands/test.md"), "Run the tests");
    write(&user.join("commands/test.md"), "User test");
    write(&user.join("commands/mine.md"), "Mine");
    // Above the repository's root: never looked at.
    write(&dir.path().join(".claude/commands/outside.md"), "no");
    let c = Commands::discover(cwd, Some(user));
    assert_eq!(c.names(), ["compact", "mine", "review", "skills", "test"]);
    let body = |name: &str| match c.expand(&format!("/{name}")) {
        Expansion::Prompt { text, .. } => text,
        other => panic!("{other:?}"),
    };
    assert_eq!(body("review"), "Inner review");
    assert_eq!(body("test"), "Run the tests");
    let source = |name: &str| {
        c.entries()
            .into_iter()
            .find(|e| e.name == name)
            .unwrap()
            .source
    };
    assert_eq!(source("mine"), CommandSource::User);
    assert_eq!(source("review"), CommandSource::Project);
    assert_eq!(source("skills"), CommandSource::Builtin);
}

#[test]
fn front_matter_subfolders_and_bad_files() {
    let (_dir, cwd, user) = tree();
    let cmds = cwd.join(".claude/commands");
    write(
        &cmds.join("fix.md"),
        "---\ndescription: \"Fix an issue\"\nargument-hint: [issue] [priority]\nmodel: x\n---\n\nFix #$1 with priority $2.\n",
    );
    write(
        &cmds.join("frontend/build.md"),
        "Build the frontend\nthen test",
    );
    write(&cmds.join("notes.txt"), "not a command");
    write(&cmds.join("bad name.md"), "spaces");
    write(
        &cmds.join("bad folder/x.md"),
        "a folder name the user cannot type",
    );
    write(&cmds.join("huge.md"), &"x".repeat(300 * 1024));
    // A FIFO would block a read for ever: skipped, not opened.
    let fifo = std::ffi::CString::new(cmds.join("pipe.md").as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    write(
        &cmds.join("open.md"),
        "---\ndescription: never closed\nBody",
    );
    // Unreadable: a directory named like a file is walked, not read; a
    // file without read permission is skipped (unless running as root).
    write(&cmds.join("secret.md"), "x");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(cmds.join("secret.md"), fs::Permissions::from_mode(0o000)).unwrap();
    write(&cmds.join("compact.md"), "cannot replace a built-in");
    let c = Commands::discover(cwd, Some(user));
    let entries = c.entries();
    let fix = entries.iter().find(|e| e.name == "fix").unwrap();
    assert_eq!(fix.description, "Fix an issue");
    assert_eq!(fix.argument_hint.as_deref(), Some("[issue] [priority]"));
    let build = entries.iter().find(|e| e.name == "frontend:build").unwrap();
    assert_eq!(build.description, "Build the frontend");
    assert_eq!(build.argument_hint, None);
    let open = entries.iter().find(|e| e.name == "open").unwrap();
    assert_eq!(open.description, "---");
    assert!(!c.names().contains(&"bad name") && !c.names().contains(&"notes"));
    for skipped in ["bad folder:x", "huge", "pipe"] {
        assert!(!c.names().contains(&skipped), "{skipped}: {:?}", c.names());
    }
    let compact = entries.iter().find(|e| e.name == "compact").unwrap();
    assert_eq!(compact.source, CommandSource::Builtin);
    match c.expand("/fix 42 high") {
        Expansion::Prompt { text, line } => {
            assert_eq!(text, "Fix #42 with priority high.");
            assert_eq!(
                (line.name.as_str(), line.arguments.as_str()),
                ("fix", "42 high")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn builtins_and_unknown_words() {
    let c = Commands::discover(PathBuf::from("/nonexistent/dir"), None);
    assert_eq!(
        c.expand("/compact keep the API notes"),
        Expansion::Compact {
            instructions: Some("keep the API notes".into())
        }
    );
    assert_eq!(
        c.expand("/compact"),
        Expansion::Compact { instructions: None }
    );
    assert!(
        matches!(c.expand("/skills"), Expansion::Prompt { text, .. } if text.contains("Agent Skills"))
    );
    assert_eq!(c.expand("/nope do it"), Expansion::Plain);
    assert_eq!(c.expand("plain text"), Expansion::Plain);
}
