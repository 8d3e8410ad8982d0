//! The subcommands that do not serve a session: `rpc schema` and
//! `rpc sessions [rm]`. Each writes to the streams it is given (the binary
//! passes stdout and stderr; the library itself never prints) and returns
//! the process exit code.

use std::io::{self, Write};

use crate::cli::{Cli, SessionsAction, SessionsArgs};
use crate::factory;
use crate::protocol::SessionSummary;

/// `rpc schema`: the protocol's JSON Schema, pretty-printed.
pub fn schema(out: &mut impl Write) -> io::Result<()> {
    let document = crate::protocol::schema::document();
    serde_json::to_writer_pretty(&mut *out, &document)?;
    writeln!(out)?;
    out.flush()
}

/// `rpc sessions`: the stored sessions of the working directory (all of
/// them with `--all`), newest first; `rpc sessions rm <id>…` deletes.
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
    if let Some(SessionsAction::Rm { ids }) = &args.action {
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
        return Ok(if failed { 1 } else { 0 });
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
        table(&listed, cwd.as_deref(), out)?;
    }
    out.flush()?;
    Ok(0)
}

/// One line per session, aligned; the working directory as a column only
/// when sessions of several directories are shown.
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
    write!(
        out,
        "{:<36}  {:<16}  {:>5}  {:<model_width$}  ",
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
        write!(
            out,
            "{:<36}  {:<16}  {:>5}  {:<model_width$}  ",
            s.session_id, updated, s.message_count, model
        )?;
        if cwd.is_none() {
            write!(out, "{:<cwd_width$}  ", s.cwd)?;
        }
        writeln!(out, "{}", s.title.as_deref().unwrap_or("(no prompt yet)"))?;
    }
    Ok(())
}
