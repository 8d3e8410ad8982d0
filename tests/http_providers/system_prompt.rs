//! The system prompt each request carries (SPEC §5.8): the default one with
//! this session's cwd, platform, shell, date and tools; the context files in
//! order under their headers; `--system-prompt` / `--append-system-prompt`
//! and their config keys; rebuilt after `set_permission_mode` and
//! `new_session`; the same text for an extension.

use std::time::SystemTime;

use super::*;

/// A tree for context files: a global config dir, a directory above a git
/// repository (whose AGENTS.md must not be read), the repository with an
/// AGENTS.md and a CLAUDE.md, a subdirectory with only a CLAUDE.md, and the
/// working directory below it.
struct World {
    _tmp: TempDir,
    root: PathBuf,
    config_home: PathBuf,
    repo: PathBuf,
    cwd: PathBuf,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn world() -> World {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().canonicalize().expect("canonical tempdir");
    let config_home = root.join("config");
    write(&config_home.join("agent-rpc/AGENTS.md"), "global rules\n");
    write(
        &root.join("AGENTS.md"),
        "above the repository: never read\n",
    );
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir repo");
    let git = std::process::Command::new("git")
        .args(["init", "-q"])
        .arg(&repo)
        .status()
        .expect("run git init");
    assert!(git.success(), "git init failed");
    write(&repo.join("AGENTS.md"), "repo rules\n");
    write(
        &repo.join("CLAUDE.md"),
        "repo claude: not read beside AGENTS.md\n",
    );
    write(&repo.join("sub/CLAUDE.md"), "sub rules\n");
    let cwd = repo.join("sub/deep");
    std::fs::create_dir_all(&cwd).expect("mkdir cwd");
    World {
        _tmp: tmp,
        root,
        config_home,
        repo,
        cwd,
    }
}

/// A host for `api` working in `world.cwd` with the world's config home.
fn in_world(api: Api, srv: &FakeServer, world: &World) -> Spawn {
    spawn(api, srv)
        .env(
            "XDG_CONFIG_HOME",
            world.config_home.to_str().expect("utf-8"),
        )
        .env("SHELL", "/bin/test-shell")
        .arg("--cwd")
        .arg(world.cwd.to_str().expect("utf-8"))
}

/// The system prompt of the newest request the server saw.
fn last_system(api: Api, srv: &FakeServer) -> String {
    let reqs = srv.api_requests();
    let body = &reqs.last().expect("a request")["body"];
    let system = match api {
        Api::Anthropic => &body["system"],
        Api::OpenAi => {
            assert_eq!(body["messages"][0]["role"], "system", "{body}");
            &body["messages"][0]["content"]
        }
    };
    // Anthropic's is a list of text blocks (the last carries the prompt
    // cache breakpoint); OpenAI's a string.
    match system {
        Value::String(text) => text.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .map(|b| {
                b["text"]
                    .as_str()
                    .unwrap_or_else(|| panic!("a text block: {b}"))
            })
            .collect(),
        _ => panic!("no system prompt in {body}"),
    }
}

/// Runs a prompt that must succeed and returns the system prompt it sent.
fn system_of_prompt(api: Api, srv: &FakeServer, rpc: &mut Rpc, id: &str) -> String {
    let (_, resp) = run(rpc, id, "hi");
    assert_ok(&resp, rpc);
    last_system(api, srv)
}

fn today() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()[..10].to_owned()
}

/// The names in the prompt's tool list, in order.
fn tool_names(system: &str) -> Vec<String> {
    let start = system.find("# Tools\n\n").expect("a Tools section");
    system[start..]
        .lines()
        .skip(2)
        .map_while(|l| l.strip_prefix("- "))
        .map(|l| l.split(':').next().unwrap_or("").to_owned())
        .collect()
}

/// The context-file section as the host writes it, for `(path, text)`s.
fn context_section(files: &[(&Path, &str)]) -> String {
    let mut out = "# Project instructions\n\nInstructions from the user's AGENTS.md / CLAUDE.md \
        files, outermost first. Follow them; where they disagree, the later (more specific) \
        file wins."
        .to_owned();
    for (path, text) in files {
        out.push_str(&format!("\n\n## {}\n\n{text}", path.display()));
    }
    out
}

fn strs(paths: &[PathBuf]) -> Value {
    json!(paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect::<Vec<_>>())
}

// ---- the default prompt ---------------------------------------------------

both!(default_prompt_states_the_environment_and_tools);

fn default_prompt_states_the_environment_and_tools(api: Api) {
    let srv = FakeServer::start();
    let cwd = tempfile::tempdir().expect("cwd");
    let cwd = cwd.path().canonicalize().expect("canonical");
    let before = today();
    let mut rpc = spawn(api, &srv)
        .env("SHELL", "/bin/test-shell")
        .arg("--cwd")
        .arg(cwd.to_str().expect("utf-8"))
        .start();
    let ready = rpc.ready();
    assert_eq!(ready["context_files"], json!([]), "{ready}");
    let system = system_of_prompt(api, &srv, &mut rpc, "1");
    let after = today();
    assert!(
        system.starts_with(
            "You are a coding agent. An editor or another program drives you over a pipe"
        ),
        "{system}"
    );
    let env = |date: &str| {
        format!(
            "# Environment\n\n- Working directory: {}\n- Platform: {} {}\n- Shell: /bin/test-shell\n- Today's date (UTC): {date}",
            cwd.display(),
            std::env::consts::OS,
            std::env::consts::ARCH
        )
    };
    assert!(
        system.ends_with(&env(&before)) || system.ends_with(&env(&after)),
        "the environment section ends the prompt (no context files here):\n{system}"
    );
    assert_eq!(
        tool_names(&system),
        [
            "read",
            "write",
            "edit",
            "bash",
            "ls",
            "find",
            "grep",
            "todo_write"
        ]
    );
    assert!(
        system.contains(
            "\n\nCalls to write, edit and bash ask the user for approval first, and so does any \
             call that touches a path outside the working directory. A call the user denies \
             returns an error with their reason: do not repeat it unchanged.\n\n# How to work\n\n"
        ),
        "{system}"
    );
    assert!(
        system.contains("\n- Change existing files with `edit`"),
        "{system}"
    );
    assert_eq!(get_state(&mut rpc, "s")["context_files"], json!([]));
    finish(rpc);
}

#[test]
fn read_only_mode_lists_only_the_read_tools() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let mut rpc = spawn(api, &srv)
        .arg("--permission-mode")
        .arg("read-only")
        .start();
    rpc.ready();
    let system = system_of_prompt(api, &srv, &mut rpc, "1");
    assert_eq!(
        tool_names(&system),
        ["read", "ls", "find", "grep", "todo_write"]
    );
    // The request offers the same five tools, not the ones that are off,
    // and `task`: a subagent runs in read-only mode too (SPEC §9.5).
    let reqs = srv.api_requests();
    let offered: Vec<&str> = reqs.last().expect("a request")["body"]["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        offered,
        ["read", "ls", "find", "grep", "todo_write", "task"]
    );
    assert!(
        system.contains(
            "\n\nThe permission mode is read-only, so write, edit and bash are turned off: when a \
             change or a command is needed, say what you would do instead. Any call that touches \
             a path outside the working directory asks the user for approval first."
        ),
        "{system}"
    );
    finish(rpc);
}

// ---- context files --------------------------------------------------------

both!(context_files_come_outermost_first_under_their_paths);

fn context_files_come_outermost_first_under_their_paths(api: Api) {
    let srv = FakeServer::start();
    let w = world();
    let mut rpc = in_world(api, &srv, &w).start();
    let files = [
        w.config_home.join("agent-rpc/AGENTS.md"),
        w.repo.join("AGENTS.md"),
        w.repo.join("sub/CLAUDE.md"),
    ];
    let ready = rpc.ready();
    assert_eq!(ready["context_files"], strs(&files), "{ready}");
    let system = system_of_prompt(api, &srv, &mut rpc, "1");
    let section = context_section(&[
        (&files[0], "global rules"),
        (&files[1], "repo rules"),
        (&files[2], "sub rules"),
    ]);
    let (default, tail) = system
        .split_once("\n\n# Project instructions")
        .unwrap_or_else(|| panic!("no context section:\n{system}"));
    assert_eq!(format!("# Project instructions{tail}"), section);
    assert!(
        default.ends_with(&format!("- Working directory: {}", w.cwd.display()))
            || default.contains(&format!("- Working directory: {}\n", w.cwd.display())),
        "{default}"
    );
    // Above the repository root, and CLAUDE.md beside an AGENTS.md: not read.
    assert!(!system.contains("never read"), "{system}");
    assert!(!system.contains("repo claude"), "{system}");
    assert_eq!(
        get_state(&mut rpc, "s")["context_files"],
        strs(&files),
        "get_state"
    );
    finish(rpc);
}

#[test]
fn a_long_context_file_is_cut_at_64_kib_with_a_note() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let w = world();
    let long = "abcdefgh".repeat(70_000 / 8);
    write(&w.repo.join("sub/deep/AGENTS.md"), &long);
    let mut rpc = in_world(api, &srv, &w).start();
    rpc.ready();
    let system = system_of_prompt(api, &srv, &mut rpc, "1");
    let expected = format!(
        "## {}\n\n{}\n\n[truncated: only the first 64 KiB of this file's 70000 bytes are shown]",
        w.cwd.join("AGENTS.md").display(),
        &long[..65536]
    );
    assert!(
        system.ends_with(&expected),
        "tail: {:?}",
        &system[system.len().saturating_sub(200)..]
    );
    finish(rpc);
}

#[test]
fn an_unreadable_context_file_is_skipped_with_a_warning() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let w = world();
    // A directory named AGENTS.md opens but cannot be read (even by root);
    // the directory still "has" one, so its CLAUDE.md is not used instead.
    std::fs::create_dir(w.cwd.join("AGENTS.md")).expect("mkdir");
    write(&w.cwd.join("CLAUDE.md"), "deep claude\n");
    let mut rpc = in_world(api, &srv, &w).start();
    let ready = rpc.ready();
    assert_eq!(ready["context_files"].as_array().map(Vec::len), Some(3));
    let system = system_of_prompt(api, &srv, &mut rpc, "1");
    assert!(!system.contains("deep claude"), "{system}");
    let warning = format!("context file {} skipped", w.cwd.join("AGENTS.md").display());
    assert!(rpc.stderr().contains(&warning), "stderr:\n{}", rpc.stderr());
    finish(rpc);
}

#[test]
fn no_context_files_turns_them_off_by_flag_or_config() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let w = world();
    let (_cfg, config) = config_file("context_files = false\n");
    for extra in [["--no-context-files", ""], ["--config", config.as_str()]] {
        let mut spawn = in_world(api, &srv, &w).arg(extra[0]);
        if !extra[1].is_empty() {
            spawn = spawn.arg(extra[1]);
        }
        let mut rpc = spawn.start();
        let ready = rpc.ready();
        assert_eq!(ready["context_files"], json!([]), "{extra:?}: {ready}");
        let system = system_of_prompt(api, &srv, &mut rpc, "1");
        assert!(!system.contains("# Project instructions"), "{extra:?}");
        assert!(!system.contains("rules"), "{extra:?}: {system}");
        assert!(system.starts_with("You are a coding agent."), "{system}");
        finish(rpc);
    }
}

// ---- replacing and adding -------------------------------------------------

#[test]
fn system_prompt_replaces_and_append_adds_as_text_or_file() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let w = world();
    write(&w.root.join("prompts/mine.md"), "You are terse.\n");
    write(&w.root.join("prompts/extra.md"), "Answer in French.\n");
    let context = context_section(&[
        (&w.config_home.join("agent-rpc/AGENTS.md"), "global rules"),
        (&w.repo.join("AGENTS.md"), "repo rules"),
        (&w.repo.join("sub/CLAUDE.md"), "sub rules"),
    ]);
    let sent = |args: &[&str]| {
        let mut spawn = in_world(api, &srv, &w).current_dir(&w.root.join("prompts"));
        for a in args {
            spawn = spawn.arg(a);
        }
        let mut rpc = spawn.start();
        rpc.ready();
        let system = system_of_prompt(api, &srv, &mut rpc, "1");
        finish(rpc);
        system
    };

    assert_eq!(
        sent(&["--system-prompt", "You are terse.", "--no-context-files"]),
        "You are terse."
    );
    // Context files are added to a replacement too; `@file` is relative to
    // the process's directory.
    assert_eq!(
        sent(&["--system-prompt", "@mine.md"]),
        format!("You are terse.\n\n{context}")
    );
    let with_append = sent(&["--append-system-prompt", "@extra.md"]);
    let (default, tail) = with_append
        .split_once("\n\nAnswer in French.\n\n")
        .unwrap_or_else(|| panic!("the addition is not between prompt and files:\n{with_append}"));
    assert!(default.starts_with("You are a coding agent."), "{default}");
    assert!(default.contains("- Today's date (UTC): "), "{default}");
    assert_eq!(tail, context);
    assert_eq!(
        sent(&[
            "--system-prompt",
            "You are terse.",
            "--append-system-prompt",
            "Answer in French.",
            "--no-context-files"
        ]),
        "You are terse.\n\nAnswer in French."
    );
}

#[test]
fn config_keys_set_the_prompt_and_flags_win() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let cfg = tempfile::tempdir().expect("config dir");
    write(
        &cfg.path().join("prompts/sys.md"),
        "From the config's file.\n",
    );
    let config = cfg.path().join("config.toml");
    write(
        &config,
        "system_prompt = \"@prompts/sys.md\"\nappend_system_prompt = \"Appended by config.\"\ncontext_files = false\n",
    );
    let config = config.to_str().expect("utf-8");
    let sent = |args: &[&str]| {
        let mut spawn = spawn(api, &srv).arg("--config").arg(config);
        for a in args {
            spawn = spawn.arg(a);
        }
        let mut rpc = spawn.start();
        rpc.ready();
        let system = system_of_prompt(api, &srv, &mut rpc, "1");
        finish(rpc);
        system
    };
    assert_eq!(sent(&[]), "From the config's file.\n\nAppended by config.");
    assert_eq!(
        sent(&["--system-prompt", "From the flag."]),
        "From the flag.\n\nAppended by config."
    );
    assert_eq!(
        sent(&["--append-system-prompt", "Flag addition."]),
        "From the config's file.\n\nFlag addition."
    );
}

/// A start-up that must fail with exit 2 and an error naming `needle`.
fn fails_naming(spawn: Spawn, needle: &str) {
    let mut rpc = spawn.start();
    let frames = rpc.drain(Duration::from_secs(10));
    let status = rpc.wait(Duration::from_secs(3)).and_then(|s| s.code());
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["type"], "error", "{frames:?}");
    assert_eq!(frames[0]["code"], "invalid_params", "{frames:?}");
    let message = frames[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message}");
    assert_eq!(status, Some(2), "stderr:\n{}", rpc.stderr());
}

#[test]
fn a_missing_prompt_file_stops_start_up_naming_it() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let dir = tempfile::tempdir().expect("dir");
    let dir = dir.path().canonicalize().expect("canonical");
    fails_naming(
        spawn(api, &srv)
            .current_dir(&dir)
            .arg("--append-system-prompt")
            .arg("@gone.md"),
        &format!(
            "--append-system-prompt: cannot read {}",
            dir.join("gone.md").display()
        ),
    );
    let config = dir.join("config.toml");
    write(&config, "system_prompt = \"@missing.md\"\n");
    fails_naming(
        spawn(api, &srv)
            .arg("--config")
            .arg(config.to_str().expect("utf-8")),
        &dir.join("missing.md").display().to_string(),
    );
}

// ---- when the prompt changes ----------------------------------------------

#[test]
fn a_mode_change_rebuilds_the_tools_and_new_session_rereads_the_files() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let w = world();
    let mut rpc = in_world(api, &srv, &w).start();
    rpc.ready();
    let first = system_of_prompt(api, &srv, &mut rpc, "1");
    assert_eq!(tool_names(&first).len(), 8);

    call_ok(
        &mut rpc,
        json!({"type": "set_permission_mode", "mode": "read-only"}),
        "m",
    );
    let read_only = system_of_prompt(api, &srv, &mut rpc, "2");
    assert_eq!(
        tool_names(&read_only),
        ["read", "ls", "find", "grep", "todo_write"]
    );
    assert!(read_only.contains("The permission mode is read-only"));
    // Only the tool section changed; the files were not read again.
    let files_part = |s: &str| s[s.find("# Project instructions").expect("files")..].to_owned();
    assert_eq!(files_part(&read_only), files_part(&first));

    // An edit is seen by the next session, not by the current one.
    write(&w.repo.join("sub/AGENTS.md"), "sub agents, new\n");
    let unchanged = system_of_prompt(api, &srv, &mut rpc, "3");
    assert_eq!(unchanged, read_only);
    call_ok(&mut rpc, json!({"type": "new_session"}), "n");
    let renewed = system_of_prompt(api, &srv, &mut rpc, "4");
    assert_eq!(
        tool_names(&renewed),
        ["read", "ls", "find", "grep", "todo_write"],
        "the mode carries over"
    );
    assert!(renewed.ends_with(&format!(
        "## {}\n\nsub agents, new",
        w.repo.join("sub/AGENTS.md").display()
    )));
    assert!(!renewed.contains("sub rules"), "{renewed}");
    assert_eq!(
        get_state(&mut rpc, "s")["context_files"],
        strs(&[
            w.config_home.join("agent-rpc/AGENTS.md"),
            w.repo.join("AGENTS.md"),
            w.repo.join("sub/AGENTS.md"),
        ])
    );
    finish(rpc);
}

#[test]
fn a_resumed_session_reads_the_files_again() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let w = world();
    let data = tempfile::tempdir().expect("data");
    let mut rpc = in_world(api, &srv, &w).data(data.path()).start();
    rpc.ready();
    system_of_prompt(api, &srv, &mut rpc, "1");
    finish(rpc);
    write(&w.cwd.join("AGENTS.md"), "deep rules\n");
    let mut rpc = in_world(api, &srv, &w)
        .data(data.path())
        .arg("--continue")
        .start();
    let ready = rpc.ready();
    assert_eq!(ready["message_count"], 2, "{ready}");
    assert_eq!(
        ready["context_files"][3],
        json!(w.cwd.join("AGENTS.md").to_string_lossy()),
        "{ready}"
    );
    let system = system_of_prompt(api, &srv, &mut rpc, "2");
    assert!(system.ends_with("\n\ndeep rules"), "{system}");
    finish(rpc);
}

// ---- extensions -----------------------------------------------------------

#[test]
fn an_extension_receives_the_same_system_prompt() {
    let api = Api::Anthropic;
    let srv = FakeServer::start();
    let w = world();
    let mut rpc = in_world(api, &srv, &w).ext("echo").start();
    rpc.ready();
    let http = system_of_prompt(api, &srv, &mut rpc, "1");
    call_ok(&mut rpc, json!({"type": "set_model", "model": ECHO}), "m");
    let (frames, resp) = run(&mut rpc, "2", "[[show=params]]");
    assert_ok(&resp, &rpc);
    let params: Value = serde_json::from_str(&text_of(&frames)).expect("params JSON");
    assert_eq!(params["system_prompt"], json!(http));
    assert!(http.contains("## "), "context files included: {http}");
    finish(rpc);
}
