//! JSONL session store: one file per session, one writer per file.
//!
//! `sessions/<id>.jsonl` holds a header line then one entry per line, each
//! appended with a single `write` as it happens, so a crash loses at most the
//! line being written. Loading ignores a torn last line and truncates it away
//! before appending again, so the file never carries garbage in the middle.
//! The file is created lazily (on the first entry) so that a host started and
//! closed without a prompt leaves nothing behind, and it is held under an
//! exclusive OS lock (`flock`) for as long as this process uses it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::{Coded, ErrorCode, WithCode};
use crate::message::{Message, Role, Usage};
use crate::protocol::SessionSummary;
use crate::provider::ThinkingLevel;

/// Bumped when an incompatible change is made to the file format.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub version: u32,
    pub id: String,
    pub created_at: String,
    pub cwd: String,
    #[serde(default)]
    pub model: Option<String>,
    /// The permission mode the session was started with, when one was
    /// given; later changes are `permission_mode` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<crate::permissions::Mode>,
    /// The thinking level the session was started with, when not `off`;
    /// later changes are `thinking_level` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<ThinkingLevel>,
}

/// One line of a session file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Entry {
    Session(Header),
    /// Shared with the history in memory: a message is written, kept and
    /// sent to providers without being copied.
    Message {
        ts: String,
        message: Arc<Message>,
    },
    ModelChange {
        ts: String,
        model: String,
    },
    /// `set_permission_mode`: the mode from here on.
    PermissionMode {
        ts: String,
        mode: crate::permissions::Mode,
    },
    /// `set_thinking_level` (or `--thinking` on resume): the level from here on.
    ThinkingLevel {
        ts: String,
        level: ThinkingLevel,
    },
    /// Written when a turn ends: its outcome and the tokens it used.
    TurnEnd {
        ts: String,
        prompt_id: String,
        stop_reason: String,
        usage: Usage,
        /// What the turn cost, when the model's prices are known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cost_usd: Option<f64>,
    },
    /// A compaction: from here on the model sees `summary` then the
    /// messages from index `first_kept` (of the whole history) on. The
    /// messages before stay in the file and in `get_messages {all: true}`.
    Compaction {
        ts: String,
        summary: String,
        first_kept: usize,
        tokens_before: u64,
        tokens_after: u64,
    },
    /// `set_auto_compaction`: whether the host compacts on its own.
    AutoCompaction {
        ts: String,
        enabled: bool,
    },
}

/// The latest compaction of a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Compacted {
    pub summary: String,
    /// Index in the whole history of the first message kept verbatim.
    pub first_kept: usize,
}

/// RFC 3339 UTC timestamp with milliseconds.
pub fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A new session id: time-ordered (UUIDv7), so ids sort by creation.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Session ids become file names, so only a safe alphabet is accepted.
pub fn validate_id(id: &str) -> Result<(), Coded> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id != "."
        && !id.contains("..")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Coded::new(
            ErrorCode::InvalidParams,
            format!(
                "invalid session id {:?}: use 1-128 letters, digits, '-', '_' or '.', without '..'",
                id.chars().take(140).collect::<String>()
            ),
        ))
    }
}

/// Creates a directory (and parents) readable only by the owner.
pub fn create_private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("cannot create directory {}", path.display()))
}

/// The loaded state of a session.
#[derive(Debug, Clone)]
pub struct Session {
    pub header: Header,
    pub model: Option<String>,
    pub messages: Vec<Arc<Message>>,
    pub usage: Usage,
    pub turns: u64,
    /// Sum of the priced turns; `None` while no turn had a known price.
    pub cost_usd: Option<f64>,
    /// The last permission mode set in this session.
    pub permission_mode: Option<crate::permissions::Mode>,
    /// The last thinking level set in this session (`off` when none was).
    pub thinking_level: ThinkingLevel,
    /// The latest compaction, from which the model's context is rebuilt.
    pub compaction: Option<Compacted>,
    /// The last `set_auto_compaction` of this session, if any.
    pub auto_compaction: Option<bool>,
}

impl Session {
    pub fn new(id: String, cwd: String, model: Option<String>) -> Self {
        Session {
            header: Header {
                version: FORMAT_VERSION,
                id,
                created_at: now(),
                cwd,
                model: model.clone(),
                permission_mode: None,
                thinking_level: None,
            },
            model,
            messages: Vec::new(),
            usage: Usage::default(),
            turns: 0,
            cost_usd: None,
            permission_mode: None,
            thinking_level: ThinkingLevel::Off,
            compaction: None,
            auto_compaction: None,
        }
    }

    /// What the model sees: after a compaction the summary (a marked user
    /// message) and the kept messages, else the whole history.
    pub fn model_messages(&self) -> Vec<Arc<Message>> {
        match &self.compaction {
            Some(c) => crate::compaction::model_view(&self.messages, &c.summary, c.first_kept),
            None => self.messages.clone(),
        }
    }

    pub fn apply(&mut self, entry: Entry) {
        match entry {
            Entry::Session(_) => {}
            Entry::Message { message, .. } => self.messages.push(message),
            Entry::ModelChange { model, .. } => self.model = Some(model),
            Entry::PermissionMode { mode, .. } => self.permission_mode = Some(mode),
            Entry::ThinkingLevel { level, .. } => self.thinking_level = level,
            Entry::TurnEnd {
                usage, cost_usd, ..
            } => self.add_turn(&usage, cost_usd),
            Entry::Compaction {
                summary,
                first_kept,
                ..
            } => {
                self.compaction = Some(Compacted {
                    summary,
                    first_kept: first_kept.min(self.messages.len()),
                })
            }
            Entry::AutoCompaction { enabled, .. } => self.auto_compaction = Some(enabled),
        }
    }

    pub fn add_turn(&mut self, usage: &Usage, cost_usd: Option<f64>) {
        self.usage.add(usage);
        self.turns += 1;
        if let Some(c) = cost_usd {
            *self.cost_usd.get_or_insert(0.0) += c;
        }
    }

    /// The first user message's text, shortened, for `list_sessions`.
    pub fn title(&self) -> Option<String> {
        let first = self.messages.iter().find(|m| m.role == Role::User)?;
        let text = first.text();
        let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let mut title: String = line.trim().chars().take(80).collect();
        if line.trim().chars().count() > 80 {
            title.push('…');
        }
        Some(title)
    }
}

/// The header of a session file, from its first line (bounded, so a
/// damaged file with no newline is not read whole).
fn read_header(path: &Path) -> Option<Header> {
    use std::io::BufRead;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let mut line = Vec::new();
    std::io::BufReader::new(file)
        .take(64 * 1024)
        .read_until(b'\n', &mut line)
        .ok()?;
    match serde_json::from_slice(&line).ok()? {
        Entry::Session(header) => Some(header),
        _ => None,
    }
}

/// Parses a session file's bytes. Returns the session and the length of the
/// valid prefix (everything up to the last complete, parseable line).
pub fn parse(bytes: &[u8]) -> Result<(Session, usize)> {
    let mut lines = bytes.split_inclusive(|&b| b == b'\n');
    let first = lines.next().ok_or_else(|| anyhow!("the file is empty"))?;
    if first.last() != Some(&b'\n') {
        return Err(anyhow!("the header line is incomplete"));
    }
    let header = match serde_json::from_slice::<Entry>(first) {
        Ok(Entry::Session(h)) => h,
        Ok(_) => return Err(anyhow!("the first line is not a session header")),
        Err(e) => return Err(anyhow!("the header line is not valid: {e}")),
    };
    if header.version > FORMAT_VERSION {
        return Err(anyhow!(
            "format version {} is newer than this rpc understands ({FORMAT_VERSION}); upgrade rpc",
            header.version
        ));
    }
    let mut session = Session {
        model: header.model.clone(),
        permission_mode: header.permission_mode,
        thinking_level: header.thinking_level.unwrap_or_default(),
        header,
        messages: Vec::new(),
        usage: Usage::default(),
        turns: 0,
        cost_usd: None,
        compaction: None,
        auto_compaction: None,
    };
    let mut valid = first.len();
    for (n, line) in lines.enumerate() {
        if line.last() != Some(&b'\n') {
            // A torn write from a crash: everything before it is intact.
            tracing::warn!(
                "ignoring an incomplete last line ({} bytes) in session {}",
                line.len(),
                session.header.id
            );
            break;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => session.apply(entry),
            // A complete but unreadable line (written by a newer version, or
            // damaged by hand) is skipped rather than losing the whole session.
            Err(e) => tracing::warn!(
                "skipping unreadable line {} of session {}: {e}",
                n + 2,
                session.header.id
            ),
        }
        valid += line.len();
    }
    Ok((session, valid))
}

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
        validate_id(id)?;
        let path = self.path_of(id);
        let file = match OpenOptions::new()
            .read(true)
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
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Coded::new(
                    ErrorCode::SessionLocked,
                    format!("session {id} is in use by an rpc process; it was not deleted"),
                ))
            }
            Err(TryLockError::Error(e)) => {
                return Err(anyhow!(e).context(format!("cannot lock {}", path.display())))
                    .code(ErrorCode::Internal)
            }
        }
        // Removed while locked: a process that opens it now finds it gone.
        fs::remove_file(&path)
            .with_context(|| format!("cannot delete {}", path.display()))
            .code(ErrorCode::Internal)
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
        validate_id(id)?;
        let path = self.path_of(id);
        // O_NOFOLLOW: a session file that is a symlink could point anywhere;
        // the host writes only real files inside its sessions directory.
        let mut file = match OpenOptions::new()
            .read(true)
            .append(true)
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
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(Coded::new(
                    ErrorCode::SessionLocked,
                    format!(
                        "session {id} is in use by another rpc process (lock on {})",
                        path.display()
                    ),
                ))
            }
            Err(TryLockError::Error(e)) => {
                return Err(anyhow!(e).context(format!("cannot lock {}", path.display())))
                    .code(ErrorCode::Internal)
            }
        }
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
        let writer = SessionFile {
            path,
            header: session.header.clone(),
            file: Some(file),
            len: valid as u64,
            dirty: false,
        };
        Ok((session, writer))
    }

    /// A writer for a new session; the file appears with its first entry.
    pub fn create(&self, header: Header) -> SessionFile {
        SessionFile {
            path: self.path_of(&header.id),
            header,
            file: None,
            len: 0,
            dirty: false,
        }
    }

    /// Summaries of every session, newest first.
    pub fn list(&self) -> Result<Vec<SessionSummary>> {
        let mut out = Vec::new();
        for (id, path) in self.session_files()? {
            let Ok(bytes) = fs::read(&path) else { continue };
            let Ok((session, _)) = parse(&bytes) else {
                continue;
            };
            let updated = fs::metadata(&path)
                .and_then(|m| m.modified())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            let summary = SessionSummary {
                session_id: id,
                created_at: session.header.created_at.clone(),
                updated_at: humantime::format_rfc3339_millis(updated).to_string(),
                message_count: session.messages.len(),
                model: session.model.clone(),
                title: session.title(),
                cwd: session.header.cwd.clone(),
            };
            out.push((updated, summary));
        }
        out.sort_by_key(|(updated, _)| std::cmp::Reverse(*updated));
        Ok(out.into_iter().map(|(_, summary)| summary).collect())
    }
}

/// The append-only writer of one session file.
pub struct SessionFile {
    path: PathBuf,
    header: Header,
    file: Option<File>,
    /// Bytes of complete lines in the file: where a failed append is cut
    /// back to, so a half-written line never stays in the middle.
    len: u64,
    dirty: bool,
}

impl SessionFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a model chosen by default rather than by the user: in the
    /// header while the file does not exist yet (so a host closed without a
    /// prompt still leaves nothing behind), else as a `model_change` entry.
    pub fn record_default_model(&mut self, model: &str) -> Result<()> {
        if self.file.is_none() {
            self.header.model = Some(model.to_owned());
            return Ok(());
        }
        self.append(&Entry::ModelChange {
            ts: now(),
            model: model.to_owned(),
        })
    }

    /// Appends one entry as one line with one write.
    pub fn append(&mut self, entry: &Entry) -> Result<()> {
        let mut line = serde_json::to_vec(entry).context("cannot encode a session entry")?;
        line.push(b'\n');
        let path = &self.path;
        let file = match &mut self.file {
            Some(f) => f,
            None => {
                let (f, len) = create_file(path, &self.header)?;
                self.len = len;
                self.file.insert(f)
            }
        };
        if let Err(e) = file.write_all(&line) {
            // Disk full or a file-size limit can leave part of the line:
            // cut it off so the next append starts on a line boundary. The
            // file is opened for append, so the offset follows the length.
            if let Err(cut) = file.set_len(self.len) {
                tracing::error!("cannot cut a partial line off {}: {cut}", path.display());
            }
            return Err(e).with_context(|| format!("cannot write session file {}", path.display()));
        }
        self.len += line.len() as u64;
        self.dirty = true;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<()> {
        if let (true, Some(file)) = (self.dirty, &self.file) {
            file.sync_data()
                .with_context(|| format!("cannot sync session file {}", self.path.display()))?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Creates the file with its header atomically: written to a temporary name,
/// synced, then renamed, so no reader ever sees a file without a header.
fn create_file(path: &Path, header: &Header) -> Result<(File, u64)> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("session path {} has no directory", path.display()))?;
    create_private_dir(dir)?;
    let mut line = serde_json::to_vec(&Entry::Session(header.clone()))?;
    line.push(b'\n');
    // A fresh name, created exclusively and never through a symlink, so a
    // planted link cannot redirect the write outside the data dir.
    let tmp = dir.join(format!(".{}.{}.tmp", header.id, std::process::id()));
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create session file {}", tmp.display()))?;
    file.try_lock()
        .map_err(|e| anyhow!("cannot lock {}: {e}", tmp.display()))?;
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .with_context(|| format!("cannot write session file {}", tmp.display()))?;
    if path.symlink_metadata().is_ok() {
        let _ = fs::remove_file(&tmp);
        return Err(anyhow!(
            "session file {} already exists; not replacing it",
            path.display()
        ));
    }
    fs::rename(&tmp, path).with_context(|| format!("cannot create {}", path.display()))?;
    // The rename must itself be durable before entries are appended.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((file, line.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;

    fn sample() -> Vec<u8> {
        let mut s = Session::new("s1".into(), "/tmp".into(), Some("a:b:c".into()));
        let mut out = Vec::new();
        let mut push = |e: &Entry| {
            out.extend(serde_json::to_vec(e).unwrap());
            out.push(b'\n');
        };
        push(&Entry::Session(s.header.clone()));
        for i in 0..3 {
            push(&Entry::Message {
                ts: now(),
                message: Message::user_text(format!("m{i}")).into(),
            });
        }
        push(&Entry::TurnEnd {
            ts: now(),
            prompt_id: "p1".into(),
            stop_reason: "end_turn".into(),
            usage: Usage {
                input_tokens: 3,
                ..Usage::default()
            },
            cost_usd: None,
        });
        s.messages.clear();
        out
    }

    #[test]
    fn ids_are_validated() {
        for good in ["abc", "a-b_c.d", "0192f0e4-7c2a-7b4e-9d1e-3f5a6b7c8d9e"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../x",
            "a..b",
            "x y",
            "é",
            &"a".repeat(129),
        ] {
            assert!(validate_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn truncation_at_any_byte_keeps_every_complete_line() {
        let bytes = sample();
        let (full, len) = parse(&bytes).unwrap();
        assert_eq!((full.messages.len(), full.turns, len), (3, 1, bytes.len()));
        let header_len = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        for cut in header_len..bytes.len() {
            let (s, valid) = parse(&bytes[..cut]).unwrap();
            let complete = bytes[..cut].iter().filter(|&&b| b == b'\n').count() - 1;
            let expected_msgs = complete.min(3);
            assert_eq!(s.messages.len(), expected_msgs, "cut at {cut}");
            // `valid` is the end of the last complete line before the cut:
            // everything up to it is kept, the torn rest is what `open` cuts.
            let last_line_end = bytes[..cut].iter().rposition(|&b| b == b'\n').unwrap() + 1;
            assert_eq!(valid, last_line_end, "valid prefix, cut at {cut}");
            // And that prefix alone loads to the same session, wholly valid.
            let (again, again_valid) = parse(&bytes[..valid]).unwrap();
            assert_eq!(again_valid, valid, "prefix reparsed, cut at {cut}");
            assert_eq!(again.messages, s.messages, "prefix messages, cut at {cut}");
            assert_eq!(again.turns, s.turns, "prefix turns, cut at {cut}");
        }
        for cut in 0..header_len {
            assert!(parse(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn open_repairs_a_torn_tail_and_locks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        let mut bytes = sample();
        bytes.extend_from_slice(b"{\"type\":\"message\",\"ts\":\"x\",\"mess");
        fs::write(store.path_of("s1"), &bytes).unwrap();
        let (s, mut w) = store.open("s1").unwrap();
        assert_eq!(s.messages.len(), 3);
        assert_eq!(
            store.open("s1").err().map(|e| e.code),
            Some(ErrorCode::SessionLocked)
        );
        w.append(&Entry::ModelChange {
            ts: now(),
            model: "x:y:z".into(),
        })
        .unwrap();
        w.sync().unwrap();
        drop(w);
        let (s, _) = store.open("s1").unwrap();
        assert_eq!(s.model.as_deref(), Some("x:y:z"));
        assert_eq!(
            store.open("nope").err().map(|e| e.code),
            Some(ErrorCode::NotFound)
        );
        assert_eq!(
            store.open("../x").err().map(|e| e.code),
            Some(ErrorCode::InvalidParams)
        );
    }

    #[test]
    fn new_files_are_private_and_created_on_first_entry() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("sessions"));
        let s = Session::new("n1".into(), "/".into(), None);
        let mut w = store.create(s.header.clone());
        assert!(!store.path_of("n1").exists());
        w.append(&Entry::Message {
            ts: now(),
            message: Message::user_text("hi").into(),
        })
        .unwrap();
        let meta = fs::metadata(store.path_of("n1")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dmeta = fs::metadata(store.dir()).unwrap();
        assert_eq!(dmeta.permissions().mode() & 0o777, 0o700);
        let list = store.list().unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].title.as_deref(), Some("hi"));
    }
}
