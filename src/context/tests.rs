//! The exact prompt `build` makes, per permission mode and source.

use super::*;

/// A directory name holding a placeholder shows that filling is one pass.
fn env() -> Environment {
    Environment {
        cwd: "/home/me/{date}/project".into(),
        platform: "linux x86_64".into(),
        shell: "/bin/zsh".into(),
        date: "2026-11-30".into(),
    }
}

fn built(config: &PromptConfig, mode: Mode, files: &[ContextFile]) -> SystemPrompt {
    with_skills(config, mode, files, &[])
}

fn with_skills(
    config: &PromptConfig,
    mode: Mode,
    files: &[ContextFile],
    skills: &[Skill],
) -> SystemPrompt {
    build(&Inputs {
        config,
        tools: Toolset::builtin(),
        mode,
        sandboxed: false,
        env: &env(),
        files,
        skills,
    })
}

fn default_text(mode: Mode) -> String {
    built(&PromptConfig::default(), mode, &[]).text
}

/// From "# Tools" up to the next section.
fn tools_section(text: &str) -> &str {
    let start = text.find("# Tools\n\n").expect("a Tools section");
    let end = text
        .find("\n\n# How to work")
        .expect("a How to work section");
    &text[start..end]
}

const ASK: &str = "\
You are a coding agent. An editor or another program drives you over a pipe on a user's behalf: it passes on the user's requests, shows them your replies and tool calls, and asks them before the calls that need approval. You work in the user's project with the tools below.

# Tools

- read: Read a file, with line numbers; read a file before you edit it.
- write: Create a new file, or replace one whose content changes almost entirely.
- edit: Change part of an existing file by replacing exact text; the way to modify files.
- bash: Run a shell command (`bash -c`) in the working directory: builds, tests, git, anything the other tools do not cover.
- ls: List a directory's entries.
- find: Find files by glob pattern (`**/*.rs`), honouring .gitignore.
- grep: Search file contents with a regular expression, to locate code before reading it.
- todo_write: Keep a visible plan for a task of several steps: the whole list each time, one step in_progress.

Calls to write, edit and bash ask the user for approval first, and so does any call that touches a path outside the working directory. A call the user denies returns an error with their reason: do not repeat it unchanged.

# How to work

- For a task of three or more steps, keep a plan with `todo_write` (the user sees it): the whole list each time, exactly one step `in_progress`, each marked `completed` as soon as it is done.
- Look before you act: find code with grep, find and ls rather than guessing, and read a file before you change it.
- Change existing files with `edit` (exact, small replacements); use `write` only for new files or when almost all of a file changes.
- Keep changes minimal and focused on the request, in the style of the code around them; do not reformat, rename or refactor what you were not asked to touch.
- If the request is unclear in a way that matters, ask before changing anything.
- Check your work when you can (build, run the relevant tests); if you could not, say so.
- When you are done, report briefly what you changed, file by file, and anything left undone. Be concise; refer to code as `path:line`.

# Environment

- Working directory: /home/me/{date}/project
- Platform: linux x86_64
- Shell: /bin/zsh
- Today's date (UTC): 2026-11-30";

#[test]
fn the_default_prompt_in_ask_mode_is_exactly_this() {
    let prompt = built(&PromptConfig::default(), Mode::Ask, &[]);
    assert_eq!(prompt.text, ASK);
    assert!(prompt.context_files.is_empty());
}

#[test]
fn the_tools_and_what_asks_follow_the_mode() {
    let read_tools = "\
- read: Read a file, with line numbers; read a file before you edit it.
- ls: List a directory's entries.
- find: Find files by glob pattern (`**/*.rs`), honouring .gitignore.
- grep: Search file contents with a regular expression, to locate code before reading it.
- todo_write: Keep a visible plan for a task of several steps: the whole list each time, one step in_progress.";
    assert_eq!(
        tools_section(&default_text(Mode::ReadOnly)),
        format!(
            "# Tools\n\n{read_tools}\n\nThe permission mode is read-only, so write, edit and bash \
             are turned off: when a change or a command is needed, say what you would do instead. \
             Any call that touches a path outside the working directory asks the user for approval \
             first. A call the user denies returns an error with their reason: do not repeat it \
             unchanged."
        )
    );
    let accept = default_text(Mode::AcceptEdits);
    assert!(
        tools_section(&accept).ends_with(
            "- todo_write: Keep a visible plan for a task of several steps: the whole list each time, \
             one step in_progress.\n\n\
             Calls to bash ask the user for approval first, and so does any call that touches a path \
             outside the working directory. A call the user denies returns an error with their \
             reason: do not repeat it unchanged."
        ),
        "{accept}"
    );
    // With the sandbox enforced bash runs unasked in accept-edits, as the
    // gate lets it.
    let sandboxed = build(&Inputs {
        config: &PromptConfig::default(),
        tools: Toolset::builtin(),
        mode: Mode::AcceptEdits,
        sandboxed: true,
        env: &env(),
        files: &[],
        skills: &[],
    })
    .text;
    assert!(
        tools_section(&sandboxed).ends_with(
            "one step in_progress.\n\nAny call that touches a path outside the working directory \
             asks the user for approval first. A call the user denies returns an error with their \
             reason: do not repeat it unchanged."
        ),
        "{sandboxed}"
    );
    let all = default_text(Mode::AllowAll);
    assert!(
        tools_section(&all).ends_with(
            "one step in_progress.\n\nThe permission mode is allow-all, so no call asks for approval: take \
             care with anything that deletes or overwrites."
        ),
        "{all}"
    );
    // Only the Tools section differs between modes.
    for mode in [Mode::AcceptEdits, Mode::AllowAll, Mode::ReadOnly] {
        let text = default_text(mode);
        assert_eq!(
            text.replace(tools_section(&text), ""),
            ASK.replace(tools_section(ASK), "")
        );
    }
}

fn file(path: &str, text: &str, cut_from: Option<u64>) -> ContextFile {
    ContextFile {
        path: PathBuf::from(path),
        text: text.into(),
        cut_from,
    }
}

#[test]
fn replacement_addition_and_context_files_join_in_order() {
    let files = [
        file("/cfg/agent-rpc/AGENTS.md", "global rules\n", None),
        file("/repo/AGENTS.md", "repo rules\n\n", None),
        file("/repo/sub/CLAUDE.md", "sub rules", Some(70000)),
    ];
    let config = PromptConfig {
        replace: Some("You are terse.\n".into()),
        append: Some("Also be kind.".into()),
        ..PromptConfig::default()
    };
    let prompt = built(&config, Mode::Ask, &files);
    assert_eq!(
        prompt.text,
        "You are terse.\n\nAlso be kind.\n\n# Project instructions\n\n\
         Instructions from the user's AGENTS.md / CLAUDE.md files, outermost first. Follow them; \
         where they disagree, the later (more specific) file wins.\n\n\
         ## /cfg/agent-rpc/AGENTS.md\n\nglobal rules\n\n\
         ## /repo/AGENTS.md\n\nrepo rules\n\n\
         ## /repo/sub/CLAUDE.md\n\nsub rules\n\n\
         [truncated: only the first 64 KiB of this file's 70000 bytes are shown]"
    );
    assert_eq!(
        prompt.context_files,
        [
            "/cfg/agent-rpc/AGENTS.md",
            "/repo/AGENTS.md",
            "/repo/sub/CLAUDE.md"
        ]
    );

    // Appended to the default prompt; an empty replacement leaves nothing.
    let append = PromptConfig {
        append: Some("Also be kind.".into()),
        ..PromptConfig::default()
    };
    assert_eq!(
        built(&append, Mode::Ask, &[]).text,
        format!("{ASK}\n\nAlso be kind.")
    );
    let empty = PromptConfig {
        replace: Some(String::new()),
        ..PromptConfig::default()
    };
    assert_eq!(built(&empty, Mode::Ask, &[]).text, "");
    assert!(built(&empty, Mode::Ask, &files[..1])
        .text
        .starts_with("# Project instructions\n\n"));
}

#[test]
fn every_placeholder_in_the_template_is_filled() {
    let names = ["tools", "permissions", "cwd", "platform", "shell", "date"];
    let values: Vec<(&str, &str)> = names.iter().map(|n| (*n, "X")).collect();
    let filled = fill(TEMPLATE, &values);
    assert!(!filled.contains('{') && !filled.contains('}'), "{filled}");
    assert_eq!(fill("{a}{b}{", &[("a", "{b}")]), "{b}{b}{");
}

#[test]
fn the_environment_is_this_process() {
    let env = Environment::current(Path::new("/somewhere"));
    assert_eq!(env.cwd, "/somewhere");
    assert!(env.platform.starts_with(std::env::consts::OS));
    let d = env.date.as_bytes();
    assert!(
        d.len() == 10 && d[4] == b'-' && d[7] == b'-',
        "{}",
        env.date
    );
}

#[test]
fn the_context_follows_mode_changes() {
    let mut ctx = SessionPrompt::start(
        PromptConfig {
            context_files: false,
            ..PromptConfig::default()
        },
        PathBuf::from("/"),
        Mode::Ask,
    );
    assert!(ctx.text().unwrap().contains("- write: "));
    ctx.set_mode(Mode::ReadOnly);
    assert!(!ctx.text().unwrap().contains("- write: "));
    ctx.restart();
    assert!(
        !ctx.text().unwrap().contains("- write: "),
        "the mode is kept"
    );
}

#[test]
fn skills_come_last_one_line_each() {
    let skill = |name: &str, description: &str| Skill {
        name: name.into(),
        description: description.into(),
        path: PathBuf::from(format!("/repo/.agents/skills/{name}/SKILL.md")),
        root: PathBuf::from(format!("/repo/.agents/skills/{name}")),
    };
    let skills = [
        skill("pdf", "Fill PDF\nforms."),
        skill("deploy", "Ship it."),
    ];
    let config = PromptConfig {
        replace: Some("You are terse.".into()),
        ..PromptConfig::default()
    };
    let files = [file("/repo/AGENTS.md", "rules", None)];
    let prompt = with_skills(&config, Mode::Ask, &files, &skills);
    let want = "# Skills\n\n\
        Skills are instructions for particular tasks, each in a folder with a SKILL.md file. \
        When a task matches a skill's description, read its SKILL.md with `read` before you start \
        and follow it; paths in it are relative to its folder. Reading inside a skill's folder \
        needs no approval.\n\n\
        - pdf: Fill PDF forms. (/repo/.agents/skills/pdf/SKILL.md)\n\
        - deploy: Ship it. (/repo/.agents/skills/deploy/SKILL.md)";
    assert!(
        prompt.text.ends_with(&format!("rules\n\n{want}")),
        "{}",
        prompt.text
    );
}
