//! Where skills are found, which one wins, where they are reported, what
//! the model is sent, how they are turned off, and that the model may read
//! them without asking.

use super::*;
use common::fake_http::{Api, FakeServer};

/// Skills at every level, one name at several; a broken one; one above
/// the repository (never looked at). Returns (world, cwd, the broken
/// file, the expected `skills`).
fn levels() -> (World, PathBuf, PathBuf, Value) {
    let w = World::new();
    let cwd = w.repo.join("sub");
    let home = w.home.join(".agents/skills");
    let own = w.config.join("agent-rpc/skills");
    valid(&w.root.join(".agents/skills"), "above", "above the repo");
    let user_only = valid(&home, "user-only", "only the user's");
    valid(&home, "shared", "from home");
    valid(&own, "shared", "from the config dir");
    let repo_skill = valid(&w.repo.join(".claude/skills"), "repo-skill", "the repo's");
    valid(&w.repo.join(".agents/skills"), "shared", "from the repo");
    let nearest = valid(&cwd.join(".claude/skills"), "shared", "nearest");
    let broken = skill(
        &cwd.join(".agents/skills"),
        "broken-one",
        "name: another-name\ndescription: misnamed\n",
        "",
    );
    let want = entries(&[
        ("repo-skill", "the repo's", &repo_skill),
        ("shared", "nearest", &nearest),
        ("user-only", "only the user's", &user_only),
    ]);
    (w, cwd, broken, want)
}

#[test]
fn skills_are_found_at_every_level_and_the_nearest_wins() {
    let (w, cwd, broken, want) = levels();
    let mut rpc = w.spawn(&cwd).start();
    let ready = rpc.ready();
    assert_eq!(ready["skills"], want, "{ready}");
    let state = get_state(&mut rpc, "s");
    assert_eq!(state["skills"], want, "{state}");
    let errors = state["skill_errors"].as_array().expect("skill_errors");
    assert_eq!(errors.len(), 1, "{state}");
    assert_eq!(errors[0]["path"], broken.to_str().expect("utf-8"));
    let message = errors[0]["message"].as_str().expect("message");
    assert!(
        message.contains("`name` `another-name` is not the name of its folder `broken-one`"),
        "{message}"
    );
    rpc.close_stdin();
    let status = rpc.wait(std::time::Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    let warning = format!("skill {} skipped: {message}", broken.display());
    let stderr = rpc.stderr();
    assert!(stderr.contains(&warning), "{warning:?} not in:\n{stderr}");
}

#[test]
fn the_model_is_sent_each_skills_name_description_and_path() {
    let (w, cwd, _, _) = levels();
    let srv = FakeServer::start();
    let api = Api::Anthropic;
    let mut rpc = w
        .base(&cwd)
        .env(api.base_var(), &api.base_url(srv.port))
        .env(api.key_var(), "sk-ant-test")
        .model(api.model())
        .start();
    rpc.ready();
    let (_, resp) = prompt(&mut rpc, "1", "hi");
    assert_ok(&resp, &rpc);
    let reqs = srv.api_requests();
    let body = &reqs.last().expect("a request")["body"];
    let system: String = body["system"]
        .as_array()
        .expect("system blocks")
        .iter()
        .map(|b| b["text"].as_str().expect("text"))
        .collect();
    let line = |name: &str, description: &str, path: &Path| {
        format!("- {name}: {description} ({})", path.display())
    };
    let section = [
        "# Skills\n\nSkills are instructions for particular tasks, each in a folder with a SKILL.md \
         file. When a task matches a skill's description, read its SKILL.md with `read` before \
         you start and follow it; paths in it are relative to its folder. Reading inside a \
         skill's folder needs no approval.\n"
            .to_owned(),
        line(
            "repo-skill",
            "the repo's",
            &w.repo.join(".claude/skills/repo-skill/SKILL.md"),
        ),
        line(
            "shared",
            "nearest",
            &cwd.join(".claude/skills/shared/SKILL.md"),
        ),
        line(
            "user-only",
            "only the user's",
            &w.home.join(".agents/skills/user-only/SKILL.md"),
        ),
    ]
    .join("\n");
    assert!(system.ends_with(&section), "{system}");
    assert!(!system.contains("Do it well."), "bodies are not sent");
    finish(rpc);
}

#[test]
fn new_session_switch_session_and_resume_look_again() {
    let w = World::new();
    let (a, b) = (w.repo.join("a"), w.repo.join("b"));
    let a_skills = a.join(".agents/skills");
    valid(&a_skills, "first", "one");
    valid(&b.join(".agents/skills"), "in-b", "b's");
    let data = tempfile::tempdir().expect("data dir");
    // A stored session working in b.
    let mut rpc = w.spawn(&b).data(data.path()).start();
    let b_id = rpc.ready()["session_id"].clone();
    ok_prompt(&mut rpc, "1", "hello");
    finish(rpc);

    let mut rpc = w.spawn(&a).data(data.path()).start();
    assert_eq!(names(&rpc.ready()["skills"]), ["first"]);
    valid(&a_skills, "second", "two");
    call_ok(&mut rpc, json!({"type": "new_session"}), "n");
    assert_eq!(
        names(&get_state(&mut rpc, "s")["skills"]),
        ["first", "second"]
    );
    let switched = call_ok(
        &mut rpc,
        json!({"type": "switch_session", "session_id": b_id}),
        "w",
    );
    assert_eq!(names(&switched["skills"]), ["in-b"], "{switched}");
    assert_eq!(names(&get_state(&mut rpc, "s2")["skills"]), ["in-b"]);
    finish(rpc);

    // Resumed from elsewhere, the session works in b and lists b's skills.
    let mut rpc = w
        .spawn(&a)
        .data(data.path())
        .arg("--continue")
        .arg(b_id.as_str().expect("id"))
        .start();
    assert_eq!(names(&rpc.ready()["skills"]), ["in-b"]);
    finish(rpc);
}

#[test]
fn no_skills_turns_discovery_off_by_flag_or_config() {
    let (w, cwd, _, _) = levels();
    let config = w.root.join("config.toml");
    std::fs::write(&config, "skills = false\n").expect("write config");
    let by_flag = w.spawn(&cwd).arg("--no-skills");
    let by_config = w
        .spawn(&cwd)
        .arg("--config")
        .arg(config.to_str().expect("utf-8"));
    for spawn in [by_flag, by_config] {
        let mut rpc = spawn.start();
        assert_eq!(rpc.ready()["skills"], json!([]));
        let state = get_state(&mut rpc, "s");
        assert_eq!(state["skills"], json!([]), "{state}");
        assert_eq!(state["skill_errors"], json!([]), "{state}");
        let params = ok_prompt(&mut rpc, "1", "[[show=params]]");
        assert!(!params.contains("# Skills"), "{params}");
        finish(rpc);
    }
}

/// A read-only call inside a skill's folder runs unasked in `ask` mode
/// even outside the cwd; a read next to it still asks, and a write
/// inside it too.
#[test]
fn reads_inside_a_skills_folder_need_no_permission() {
    let w = World::new();
    let cwd = w.repo.join("sub");
    std::fs::create_dir_all(&cwd).expect("mkdir cwd");
    let guide = valid(&w.home.join(".agents/skills"), "guide", "how we work");
    let folder = guide.parent().expect("folder");
    std::fs::write(folder.join("notes.md"), "skill notes\n").expect("write notes");
    std::fs::write(w.home.join("private.txt"), "private\n").expect("write private");
    let mut rpc = w.spawn(&cwd).arg("--permission-mode").arg("ask").start();
    rpc.ready();
    let read = |path: &Path| format!("[[tool=read input={}]]", json!({"path": path}));
    let ls = format!("[[tool=ls input={}]]", json!({"path": folder}));
    for (id, message) in [
        ("1", read(&guide)),
        ("2", read(&folder.join("notes.md"))),
        ("3", ls),
    ] {
        let (frames, resp) = prompt(&mut rpc, id, &message);
        assert_ok(&resp, &rpc);
        assert!(
            !frames.iter().any(|f| f["type"] == "permission_request"),
            "{message}: {frames:#?}"
        );
        let end = frames
            .iter()
            .find(|f| f["type"] == "tool_execution_end")
            .expect("a tool end");
        assert_eq!(end["is_error"], false, "{end}");
    }
    for (id, message) in [
        ("4", read(&w.home.join("private.txt"))),
        (
            "5",
            format!(
                "[[tool=write input={}]]",
                json!({"path": folder.join("new.md"), "content": "x"})
            ),
        ),
    ] {
        rpc.send(json!({"type": "prompt", "id": id, "message": message}));
        let (_, req) = rpc.until("permission_request", |f| {
            f["type"] == "permission_request" || f["type"] == "response"
        });
        assert_eq!(req["type"], "permission_request", "{message}: {req}");
        assert_eq!(req["outside_cwd"], true, "{req}");
        rpc.send(
            json!({"type": "permission_response", "id": format!("r{id}"),
            "request_id": req["request_id"], "decision": "deny"}),
        );
        let id = id.to_owned();
        rpc.until("prompt answer", move |f| is_answer_to(f, &id));
    }
    finish(rpc);
}
