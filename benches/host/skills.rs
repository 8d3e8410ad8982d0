//! Group 1c (`skills`): spawn → `ready` in a git repository holding 200
//! Agent Skills (100 in the repo root's `.agents/skills`, 50 in a
//! subfolder's `.claude/skills` on the way to the cwd, 50 in
//! `~/.agents/skills`) and 200 slash commands (100 in the root's
//! `.agents/commands`, 100 in the subfolder's `.claude/commands`, a third
//! of them in namespace folders), against the same tree without them, the
//! runs interleaved so both see the same machine. Discovery must stay
//! within a few milliseconds of 1a.

use std::fs;
use std::path::{Path, PathBuf};

use crate::driver::Host;
use crate::fixtures::{data_dir_args, tmpdir};
use crate::table::{Table, Target};
use crate::Res;

const SKILLS: usize = 200;

pub fn bench_skills(t: &mut Table, runs: usize) {
    let g = "1c";
    let (mut none, mut many) = (Vec::new(), Vec::new());
    for i in 0..runs + 1 {
        for (count, out) in [(0, &mut none), (SKILLS, &mut many)] {
            match ready_ms(count) {
                // run 0 only warms the page cache
                Ok(ms) if i > 0 => out.push(ms),
                Ok(_) => {}
                Err(e) => return t.fail(g, "spawn → ready with skills", &e),
            }
        }
    }
    let row = |t: &mut Table, name: &str, v: &[f64], target, text| {
        t.add(g, name, "ms", v, 2, target, text);
    };
    row(
        t,
        "spawn → `ready`, cwd two levels into a git repo, no skills",
        &none,
        Target::None,
        "—",
    );
    row(
        t,
        "… the same with 200 skills and 200 commands (repo root, a parent of the cwd, ~/.agents/skills)",
        &many,
        Target::AtMost(8.0),
        "within a few ms of the row above",
    );
}

/// One spawn → `ready` in a fresh tree with `count` skills, in ms.
fn ready_ms(count: usize) -> Res<f64> {
    let dir = tmpdir("skills");
    let cwd = tree(dir.path(), count)?;
    let mut args = data_dir_args(dir.path());
    args.extend(["--cwd".into(), cwd.display().to_string()]);
    let mut h = Host::spawn(&args, &[], dir.path(), "skills")?;
    let (dt, ready) = h.wait_ready()?;
    let listed = ready["skills"].as_array().map_or(0, Vec::len);
    let commands = h.command(serde_json::json!({"type": "get_commands", "id": "c"}), 5.0)?;
    // The built-in ones (/compact, /skills) come on top.
    let files = commands["commands"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|c| c["source"] == "project").count());
    h.close(5.0)?;
    if listed != count || files != count {
        return Err(format!(
            "ready lists {listed} skills and get_commands {files} project commands, want {count} each"
        ));
    }
    Ok(dt * 1e3)
}

/// The repository (`<dir>/cwd`, the driver's current directory) and its
/// skills; returns the session's cwd, `<repo>/a/b`.
fn tree(dir: &Path, count: usize) -> Res<PathBuf> {
    let repo = dir.join("cwd");
    let cwd = repo.join("a/b");
    fs::create_dir_all(repo.join(".git")).map_err(|e| e.to_string())?;
    fs::create_dir_all(&cwd).map_err(|e| e.to_string())?;
    let places = [
        repo.join(".agents/skills"),
        repo.join("a/.claude/skills"),
        dir.join("home/.agents/skills"),
    ];
    for i in 0..count {
        let place = &places[match i % 4 {
            0 | 1 => 0,
            2 => 1,
            _ => 2,
        }];
        write_skill(place, &format!("skill-{i:03}"))?;
        let commands = if i % 2 == 0 {
            repo.join(".agents/commands")
        } else {
            repo.join("a/.claude/commands")
        };
        let folder = if i % 3 == 0 {
            commands.join(format!("ns{}", i % 5))
        } else {
            commands
        };
        write_command(&folder, &format!("cmd-{i:03}"))?;
    }
    Ok(cwd)
}

fn write_command(dir: &Path, name: &str) -> Res<()> {
    fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let text = format!(
        "---\ndescription: Runs {name}\nargument-hint: <file> [focus]\n---\n\
         Do {name} with $1, focusing on $ARGUMENTS.\n{}",
        "More instructions.\n".repeat(20)
    );
    fs::write(dir.join(format!("{name}.md")), text).map_err(|e| e.to_string())
}

fn write_skill(dir: &Path, name: &str) -> Res<()> {
    let folder = dir.join(name);
    fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
    let text = format!(
        "---\nname: {name}\ndescription: Does {name} things when the user asks for {name}.\n\
         license: MIT\nmetadata:\n  author: bench\n  version: \"1.0\"\n---\n\n# {name}\n\n{}\n",
        "Step by step instructions. ".repeat(40)
    );
    fs::write(folder.join("SKILL.md"), text).map_err(|e| e.to_string())
}
