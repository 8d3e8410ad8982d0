//! The sessions directory: finding, listing, opening (locked), forking and
//! deleting `<id>.jsonl` files. The writer of the open one is `file.rs`.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};

use super::file::create_file;
use super::{new_id, now, parse, read_header, validate_id, Entry, Header, Session, SessionFile};
use crate::error::{Coded, ErrorCode, WithCode};
use crate::protocol::SessionSummary;
use crate::protocol::ThinkingLevel;

/// Where sessions live: the directory of `<id>.jsonl` files. It finds,
/// lists and loads them, and hands out the one `SessionFile` writer for the
/// session in use (`open` for an existing one, `create` for a new one); it
/// holds no open file itself.
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: PathBuf) -> Self {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.jsonl"))
    }

    /// The id of the most recently written session whose working directory
    /// is `cwd`. Reads only each file's first line (its header).
    pub fn latest_in(&self, cwd: &str) -> Result<Option<String>> {
        let mut best: Option<(SystemTime, String)> = None;
        for (id, path) in self.session_files()? {
            let Ok(modified) = fs::metadata(&path).and_then(|m| m.modified()) else {
                continue;
            };
            if best.as_ref().is_some_and(|(t, _)| modified <= *t) {
                continue;
            }
            if read_header(&path).is_some_and(|h| h.cwd == cwd) {
                best = Some((modified, id));
            }
        }
        Ok(best.map(|(_, id)| id))
    }

    /// Deletes a stored session. Refused while any process holds it (its
    /// lock), so a session in use is never pulled from under its writer.
    pub fn delete(&self, id: &str) -> Result<(), Coded> {
        let (path, _locked) = self.open_locked(id, false, |_| {
            format!("session {id} is in use by an rpc process; it was not deleted")
        })?;
        // Removed while locked: a process that opens it now finds it gone.
        fs::remove_file(&path)
            .with_context(|| format!("cannot delete {}", path.display()))
            .code(ErrorCode::Internal)
    }

    /// Opens session `id`'s file (for appending when `write`) and takes its
    /// exclusive lock, with the codes a client sees: a malformed id, no such
    /// session, or (`in_use` words it) held by another process.
    pub(super) fn open_locked(
        &self,
        id: &str,
        write: bool,
        in_use: impl FnOnce(&Path) -> String,
    ) -> Result<(PathBuf, File), Coded> {
        let (path, file) = self.open_file(id, write)?;
        match file.try_lock() {
            Ok(()) => Ok((path, file)),
            Err(TryLockError::WouldBlock) => {
                Err(Coded::new(ErrorCode::SessionLocked, in_use(&path)))
            }
            Err(TryLockError::Error(e)) => {
                Err(anyhow!(e).context(format!("cannot lock {}", path.display())))
                    .code(ErrorCode::Internal)
            }
        }
    }

    /// Opens session `id`'s file without locking it: a malformed id or no
    /// such session is an error with its code.
    pub(super) fn open_file(&self, id: &str, write: bool) -> Result<(PathBuf, File), Coded> {
        validate_id(id)?;
        let path = self.path_of(id);
        // O_NOFOLLOW: a session file that is a symlink could point anywhere;
        // the host writes only real files inside its sessions directory.
        let file = match OpenOptions::new()
            .read(true)
            .append(write)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Coded::new(
                    ErrorCode::NotFound,
                    format!(
                        "no session {id:?} in {} (`rpc sessions --all` lists them)",
                        self.dir.display()
                    ),
                ))
            }
            Err(e) => {
                return Err(anyhow!(e).context(format!("cannot open {}", path.display())))
                    .code(ErrorCode::Internal)
            }
        };
        Ok((path, file))
    }

    fn session_files(&self) -> Result<Vec<(String, PathBuf)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", self.dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if let Some(id) = name.strip_suffix(".jsonl") {
                if validate_id(id).is_ok() {
                    out.push((id.to_owned(), path));
                }
            }
        }
        Ok(out)
    }

    /// Opens an existing session for writing: locks it, loads it, and cuts
    /// off a torn last line. The error's code says why it could not be
    /// opened: a bad id, no such session, in use, or anything else.
    pub fn open(&self, id: &str) -> Result<(Session, SessionFile), Coded> {
        let (path, mut file) = self.open_locked(id, true, |path| {
            format!(
                "session {id} is in use by another rpc process (lock on {})",
                path.display()
            )
        })?;
        // A file deleted (`Store::delete`) between our open and our lock is
        // gone from the directory: writing to it would lose the session.
        if file.metadata().map(|m| m.nlink() == 0).unwrap_or(false) {
            return Err(Coded::new(
                ErrorCode::NotFound,
                format!("session {id:?} was deleted while it was being opened"),
            ));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .with_context(|| format!("cannot read {}", path.display()))
            .code(ErrorCode::Internal)?;
        let (session, valid) = parse(&bytes)
            .with_context(|| format!("session file {} is damaged", path.display()))
            .code(ErrorCode::Internal)?;
        if valid < bytes.len() {
            file.set_len(valid as u64)
                .and_then(|()| file.sync_data())
                .with_context(|| format!("cannot repair {}", path.display()))
                .code(ErrorCode::Internal)?;
        }
        file.seek(SeekFrom::End(0)).code(ErrorCode::Internal)?;
        let writer = SessionFile::opened(path, session.header.clone(), file, valid as u64);
        Ok((session, writer))
    }

    /// A writer for a new session; the file appears with its first entry.
    pub fn create(&self, header: Header) -> SessionFile {
        SessionFile::lazy(self.path_of(&header.id), header)
    }

    /// Writes a fork of `source` holding its first `upto` messages, under
    /// a new id, and returns it open for writing. The file is complete
    /// (header and history) and synced before it appears under its name, so
    /// a crash right after leaves the whole fork or nothing. The fork keeps
    /// the model, permission mode and thinking level; its token totals
    /// start at zero (they count what this session's own turns used).
    pub fn fork(&self, source: &Session, upto: usize) -> Result<(Session, SessionFile)> {
        let messages = source.messages[..upto.min(source.messages.len())].to_vec();
        let mut session = Session::new(new_id(), source.header.cwd.clone(), source.model.clone());
        session.header.permission_mode = source.permission_mode;
        session.header.thinking_level =
            Some(source.thinking_level).filter(|l| *l != ThinkingLevel::Off);
        session.header.forked_from = Some(source.header.id.clone());
        session.permission_mode = source.permission_mode;
        session.thinking_level = source.thinking_level;
        session.auto_compaction = source.auto_compaction;
        let ts = now();
        let mut body = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            // The fork remembers what was typed, as the original does.
            let command = source.commands.get(&index).cloned();
            if let Some(command) = &command {
                session.commands.insert(index, command.clone());
            }
            let entry = Entry::Message {
                ts: ts.clone(),
                message: message.clone(),
                command,
            };
            serde_json::to_writer(&mut body, &entry).context("cannot encode a session entry")?;
            body.push(b'\n');
        }
        // A fork past the latest compaction keeps it, so the model goes on
        // seeing the summary rather than the whole history again. (A fork
        // before it holds only messages the summary had not replaced.)
        if let Some(c) = source.compaction.as_ref().filter(|c| c.first_kept <= upto) {
            let entry = Entry::Compaction {
                ts: ts.clone(),
                summary: c.summary.clone(),
                first_kept: c.first_kept,
                // Not kept in memory; the counts describe the original's
                // compaction, not anything the fork did.
                tokens_before: 0,
                tokens_after: 0,
            };
            serde_json::to_writer(&mut body, &entry).context("cannot encode a session entry")?;
            body.push(b'\n');
            session.compaction = Some(c.clone());
        }
        // The fork keeps the original's own auto-compaction choice.
        if let Some(enabled) = source.auto_compaction {
            let entry = Entry::AutoCompaction {
                ts: ts.clone(),
                enabled,
            };
            serde_json::to_writer(&mut body, &entry).context("cannot encode a session entry")?;
            body.push(b'\n');
        }
        // A fork of the whole history goes on with the plan; one from an
        // earlier message has no way to know the plan as it was then.
        if upto >= source.messages.len() && !source.plan.is_empty() {
            let entry = Entry::Plan {
                ts: ts.clone(),
                entries: source.plan.clone(),
            };
            serde_json::to_writer(&mut body, &entry).context("cannot encode a session entry")?;
            body.push(b'\n');
            session.plan = source.plan.clone();
        }
        session.messages = messages;
        let path = self.path_of(&session.header.id);
        let (file, len) = create_file(&path, &session.header, &body)?;
        let writer = SessionFile::opened(path, session.header.clone(), file, len);
        Ok((session, writer))
    }

    /// Summaries of every session, newest first.
    pub fn list(&self) -> Result<Vec<SessionSummary>> {
        let mut out = Vec::new();
        for (id, path) in self.session_files()? {
            let Ok(bytes) = fs::read(&path) else { continue };
            let Ok((session, _)) = parse(&bytes) else {
                continue;
            };
            let modified = fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            // A file's time comes from the kernel's coarse clock, a few ms
            // behind the one `created_at` is read from: a file written at
            // once (a fork) would look older than the session it holds.
            let created = humantime::parse_rfc3339(&session.header.created_at)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let updated = modified.max(created);
            let summary = SessionSummary {
                session_id: id,
                created_at: session.header.created_at.clone(),
                updated_at: humantime::format_rfc3339_millis(updated).to_string(),
                message_count: session.messages.len(),
                model: session.model.clone(),
                title: session.title(),
                cwd: session.header.cwd.clone(),
                forked_from: session.header.forked_from.clone(),
                parent_session_id: session.header.parent_session_id.clone(),
            };
            out.push((updated, summary));
        }
        out.sort_by_key(|(updated, _)| std::cmp::Reverse(*updated));
        Ok(out.into_iter().map(|(_, summary)| summary).collect())
    }
}
