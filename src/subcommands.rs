//! The subcommands that do not serve a session: `rpc schema` and
//! `rpc sessions [rm|export|import]` (export and import in `portable`). Each writes to the streams it is given (the binary
//! passes stdout and stderr; the library itself never prints) and returns
//! the process exit code.

use std::io::{self, Write};

mod portable;

use crate::cli::{Cli, SessionsAction, SessionsArgs};
use crate::factory;
use crate::protocol::SessionSummary;
use crate::session::ImportOptions;

/// `rpc schema`: the protocol's JSON Schema, pretty-printed.
pub fn schema(out: &mut impl Write) -> io::Result<()> {
    let document = crate::protocol::schema::document();
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)?;
    out.flush()
}

/// `rpc sessions`: the stored sessions of the working directory (all of
/// them with `--all`), newest first; `rpc sessions rm <id>…` deletes,
/// `export <id>` writes one as a stream, `import [FILE]` stores one.
pub fn sessions(
    cli: &Cli,
    args: &SessionsArgs,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<i32> {
    let store = match factory::store(cli) {
        Ok(store) => store,
        Err(e) => {
            writeln!(err, "rpc sessions: {e}")?;
            return Ok(2);
        }
    };
    match &args.action {
        Some(SessionsAction::Rm { ids }) => return remove(&store, ids, out, err),
        Some(SessionsAction::Export { id }) => return portable::export(&store, id, out, err),
        Some(SessionsAction::Import {
            new_id,
            replace,
            file,
        }) => {
            let options = ImportOptions {
                new_id: *new_id,
                replace: *replace,
            };
            return portable::import(&store, file.as_deref(), options, out, err);
        }
        None => {}
    }
    let cwd = if args.all {
        None
    } else {
        match factory::working_dir(cli) {
            Ok(dir) => Some(dir.to_string_lossy().into_owned()),
            Err(e) => {
                writeln!(err, "rpc sessions: {e}")?;
                return Ok(2);
            }
        }
    };
    let mut listed = match store.list() {
        Ok(listed) => listed,
        Err(e) => {
            writeln!(err, "rpc sessions: {e:#}")?;
            return Ok(1);
        }
    };
    if let Some(cwd) = &cwd {
        listed.retain(|s| &s.cwd == cwd);
    }
    if args.json {
        serde_json::to_writer_pretty(&mut *out, &listed)?;
        writeln!(out)?;
    } else {
        table(&under_parents(listed), cwd.as_deref(), out)?;
    }
    out.flush()?;
    Ok(0)
}

/// `rpc sessions rm <id>…`: deletes each; exit 1 when any was refused.
fn remove(
    store: &crate::session::Store,
    ids: &[String],
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<i32> {
    let mut failed = false;
    for id in ids {
        match store.delete(id) {
            Ok(()) => writeln!(out, "deleted {id}")?,
            Err(e) => {
                failed = true;
                writeln!(err, "rpc sessions rm: {e}")?;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

/// The sessions in the table's order: each subagent's session right under
/// the session that started it (when that one is listed), newest first
/// within each.
fn under_parents(listed: Vec<SessionSummary>) -> Vec<SessionSummary> {
    let ids: std::collections::HashSet<String> =
        listed.iter().map(|s| s.session_id.clone()).collect();
    let listed_parent = |s: &SessionSummary| {
        s.parent_session_id
            .as_ref()
            .filter(|p| ids.contains(*p) && **p != s.session_id)
            .cloned()
    };
    let (children, top): (Vec<_>, Vec<_>) =
        listed.into_iter().partition(|s| listed_parent(s).is_some());
    let mut by_parent: std::collections::HashMap<String, Vec<SessionSummary>> = Default::default();
    for child in children {
        let parent = listed_parent(&child).unwrap_or_default();
        by_parent.entry(parent).or_default().push(child);
    }
    let mut out = Vec::new();
    for session in top {
        push_with_children(session, &mut by_parent, &mut out);
    }
    out
}

fn push_with_children(
    session: SessionSummary,
    by_parent: &mut std::collections::HashMap<String, Vec<SessionSummary>>,
    out: &mut Vec<SessionSummary>,
) {
    let children = by_parent.remove(&session.session_id).unwrap_or_default();
    out.push(session);
    for child in children {
        push_with_children(child, by_parent, out);
    }
}

/// One line per session, aligned; the working directory as a column only
/// when sessions of several directories are shown. A subagent's session
/// listed under its parent is marked `└`.
fn table(listed: &[SessionSummary], cwd: Option<&str>, out: &mut impl Write) -> io::Result<()> {
    match cwd {
        Some(cwd) if listed.is_empty() => {
            return writeln!(
                out,
                "No sessions in {cwd}. `rpc sessions --all` lists those of every directory."
            )
        }
        None if listed.is_empty() => return writeln!(out, "No sessions."),
        _ => {}
    }
    let model_width = listed
        .iter()
        .map(|s| s.model.as_deref().unwrap_or("-").chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let cwd_width = listed
        .iter()
        .map(|s| s.cwd.chars().count())
        .max()
        .unwrap_or(0)
        .max(3);
    let nested = |s: &SessionSummary| {
        s.parent_session_id
            .as_ref()
            .is_some_and(|p| listed.iter().any(|l| &l.session_id == p))
    };
    let id_width = if listed.iter().any(nested) { 38 } else { 36 };
    write!(
        out,
        "{:<id_width$}  {:<16}  {:>5}  {:<model_width$}  ",
        "ID", "UPDATED", "MSGS", "MODEL"
    )?;
    if cwd.is_none() {
        write!(out, "{:<cwd_width$}  ", "CWD")?;
    }
    writeln!(out, "TITLE")?;
    for s in listed {
        // `2026-11-30T14:05:01.123Z` → `2026-11-30 14:05`, in UTC like the file.
        let updated: String = s
            .updated_at
            .replacen('T', " ", 1)
            .chars()
            .take(16)
            .collect();
        let model = s.model.as_deref().unwrap_or("-");
        let id = match nested(s) {
            true => format!("└ {}", s.session_id),
            false => s.session_id.clone(),
        };
        write!(
            out,
            "{:<id_width$}  {:<16}  {:>5}  {:<model_width$}  ",
            id, updated, s.message_count, model
        )?;
        if cwd.is_none() {
            write!(out, "{:<cwd_width$}  ", s.cwd)?;
        }
        writeln!(out, "{}", s.title.as_deref().unwrap_or("(no prompt yet)"))?;
    }
    Ok(())
}
