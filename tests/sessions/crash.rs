//! Crash safety: SIGKILL at random moments never breaks resume or history; a
//! torn last line is ignored and the file stays valid JSONL.

use super::*;

/// Tiny deterministic generator (Knuth's MMIX LCG): reproducible delays
/// without a dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn sigkill_at_random_moments_never_breaks_resume_or_history() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    // Only the extension in use is loaded: fewer Python start-ups competing
    // for the CPU means more kills land mid-stream rather than before it.
    let host = |ext: &str, extra: &[&str]| {
        let mut s = Spawn::new().data(data).ext(ext);
        for a in extra {
            s = s.arg(a);
        }
        s.start()
    };

    // A completed first turn, so the session file exists whatever happens next.
    let mut h = host("flood", &["--model", "flood:flood:flood-1"]);
    let id = h.ready()["session_id"].as_str().unwrap().to_owned();
    assert_eq!(ok_prompt(&mut h, "0", "setup [[n=2]]"), "tok tok ");
    finish(h);

    // (user text, expected full reply) of every prompt known to be in history.
    let mut committed: Vec<(String, String)> = vec![("setup [[n=2]]".into(), "tok tok ".into())];
    // The prompt sent to the last killed process, and whether its agent_start
    // was seen (then its user message must be on disk).
    let mut pending: Option<(String, String, bool)> = None;
    let mut before_start = 0;
    // Kills that landed after `agent_start` and before the prompt's answer.
    let mut mid_turn = 0;

    for i in 0..21u64 {
        // Three kinds of kill, in turn: at once (before the prompt is even
        // read), 0-300 ms after the prompt, and 0-100 ms after its
        // `agent_start` into a slow stream that lasts at least 200 ms, so
        // those land mid-turn by construction. Streams alternate between
        // slow (deltas 50 ms apart) and a flood (thousands of deltas at
        // once), so kills land before, during and after writes.
        let kind = i % 3;
        let (ext, text, reply) = if kind == 2 || i % 2 == 0 {
            ("slow", format!("slow {i} [[n=4]]"), "tok ".repeat(4))
        } else {
            (
                "flood",
                format!("flood {i} [[n=1500]]"),
                "tok ".repeat(1500),
            )
        };
        let model = format!("{ext}:{ext}:{ext}-1");
        let mut h = host(ext, &["--model", &model, "--continue", &id]);
        let ready = h.ready();
        assert_eq!(ready["session_id"], id.as_str(), "iteration {i}");

        // Check the history left by the previous kill.
        let history = messages(&mut h, "msgs");
        assert_eq!(ready["message_count"], history.len(), "iteration {i}");
        let users: Vec<String> = history
            .iter()
            .filter(|m| m["role"] == "user")
            .map(|m| {
                m["content"]
                    .as_str()
                    .expect("string user content")
                    .to_owned()
            })
            .collect();
        let mut expected: Vec<String> = committed.iter().map(|(u, _)| u.clone()).collect();
        if let Some((u, r, seen_start)) = pending.take() {
            if users.len() == expected.len() + 1 {
                expected.push(u.clone());
                committed.push((u, r));
            } else {
                assert!(
                    !seen_start,
                    "iteration {i}: agent_start was sent for {u:?} but it is not on disk"
                );
            }
        }
        assert_eq!(
            users, expected,
            "iteration {i}: user messages must be exactly those sent"
        );
        let mut last_user: Option<&str> = None;
        for m in &history {
            match m["role"].as_str() {
                Some("user") => last_user = m["content"].as_str(),
                Some("assistant") => {
                    let u = last_user.expect("an assistant message follows a user message");
                    let full = &committed.iter().find(|(t, _)| t == u).unwrap().1;
                    let got = message_text(m);
                    assert!(
                        full.starts_with(&got),
                        "iteration {i}: assistant text for {u:?} is not a prefix of the reply ({} chars)",
                        got.len()
                    );
                }
                other => panic!("unexpected role {other:?}"),
            }
        }

        let r = Lcg(i + 1).next();
        let prompt_id = format!("p{i}");
        h.send(json!({"type": "prompt", "id": prompt_id, "message": text}));
        let mut frames = Vec::new();
        match kind {
            0 => {}
            1 => std::thread::sleep(Duration::from_millis(r % 301)),
            _ => {
                let (before, start) = h.until("agent_start", |f| f["type"] == "agent_start");
                frames.extend(before);
                frames.push(start);
                std::thread::sleep(Duration::from_millis(r % 101));
            }
        }
        h.signal("KILL");
        frames.extend(h.drain(Duration::from_secs(5)));
        h.wait(Duration::from_secs(5)).expect("killed host is gone");
        let seen_start = frames.iter().any(|f| f["type"] == "agent_start");
        let answered = frames.iter().any(|f| is_answer_to(f, &prompt_id));
        before_start += usize::from(!seen_start);
        mid_turn += usize::from(seen_start && !answered);
        pending = Some((text, reply, seen_start));
    }
    // The kills after `agent_start` into a 200 ms stream (7 of 21) must have
    // landed mid-turn, or this test checks only start-up and idle kills.
    assert!(
        mid_turn >= 4,
        "only {mid_turn} of 21 kills landed mid-turn ({before_start} before agent_start)"
    );

    // The last kill must be recoverable too, and the file is clean JSONL.
    let mut h = host(
        "flood",
        &["--model", "flood:flood:flood-1", "--continue", &id],
    );
    assert_eq!(h.ready()["session_id"], id.as_str());
    let history = messages(&mut h, "msgs");
    let (u, _, seen_start) = pending.unwrap();
    let present = history.iter().any(|m| m["content"] == u.as_str());
    assert!(present || !seen_start, "last prompt lost after agent_start");
    // How the kills landed, to show the delays cover the interesting range.
    let answered = history.iter().filter(|m| m["role"] == "assistant").count();
    let asked = history.iter().filter(|m| m["role"] == "user").count();
    ok_prompt(&mut h, "final", "after the storm [[n=1]]");
    finish(h);
    let path = session_file(data, &id);
    let lines = read_jsonl(&path);
    assert_eq!(lines[0]["type"], "session");
    eprintln!(
        "sigkill test: {asked} prompts kept, {answered} answered, {before_start} kills before agent_start, {mid_turn} mid-turn"
    );
}

#[test]
fn torn_last_line_is_ignored_and_the_file_stays_valid_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path();
    let mut h = echo_spawn_in(data).model(ECHO).start();
    let id = h.ready()["session_id"].as_str().unwrap().to_owned();
    ok_prompt(&mut h, "1", "before the tear");
    let before = messages(&mut h, "msgs");
    finish(h);

    // What a crash in the middle of a write leaves behind.
    let path = session_file(data, &id);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(br#"{"type":"message","ts":"2024-01-01T00:00:00Z","message":{"role":"user","cont"#)
        .unwrap();
    drop(f);

    let mut h = echo_spawn_in(data).arg("--continue").arg(&id).start();
    let ready = h.ready();
    assert_eq!(
        ready["message_count"],
        2,
        "{ready}; stderr:\n{}",
        h.stderr()
    );
    assert_eq!(messages(&mut h, "msgs"), before);
    ok_prompt(&mut h, "2", "after the tear");
    finish(h);

    // Every line parses: the new entries were not glued onto the torn one.
    let lines = read_jsonl(&path);
    let users: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "message" && l["message"]["role"] == "user")
        .map(|l| &l["message"]["content"])
        .collect();
    assert_eq!(users, [&json!("before the tear"), &json!("after the tear")]);

    let mut h = echo_spawn_in(data).arg("--continue").arg(&id).start();
    assert_eq!(h.ready()["message_count"], 4);
    finish(h);
}
