//! JSONL session store: one file per session, one writer per file.
//!
//! This file holds the format (header, entries) and loading (`parse`);
//! `store.rs` finds, lists, opens, forks and deletes session files,
//! `file.rs` is the one writer of the session in use, and `portable.rs`
//! exports a session as one stream and imports it on another machine.
//!
//! `sessions/<id>.jsonl` holds a header line then one entry per line, each
//! appended with a single `write` as it happens, so a crash loses at most the
//! line being written. Loading ignores a torn last line and truncates it away
//! before appending again, so the file never carries garbage in the middle.
//! The file is created lazily (on the first entry) so that a host started and
//! closed without a prompt leaves nothing behind, and it is held under an
//! exclusive OS lock (`flock`) for as long as this process uses it.

mod file;
mod portable;
mod store;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::{Coded, ErrorCode};
use crate::message::{Message, Role, Usage};
use crate::protocol::ThinkingLevel;

pub use file::SessionFile;
pub use portable::{ImportOptions, EXPORT_FORMAT, EXPORT_TYPE, MAX_IMPORT_BYTES};
pub use store::Store;

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
    pub permission_mode: Option<crate::protocol::Mode>,
    /// The thinking level the session was started with, when not `off`;
    /// later changes are `thinking_level` entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<ThinkingLevel>,
    /// The session this one was forked from (`fork`, `--continue --fork`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
    /// A subagent's session: the session whose `task` call started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<String>,
    /// … and that `task` call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_tool_call_id: Option<String>,
    /// … and the agent it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
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
        /// The slash command the user typed, when the message is its
        /// expansion; absent otherwise (and in files written before).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<CommandLine>,
    },
    ModelChange {
        ts: String,
        model: String,
    },
    /// `set_permission_mode`: the mode from here on.
    PermissionMode {
        ts: String,
        mode: crate::protocol::Mode,
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
        /// Its provider rounds (for a budget's `max_turns`); absent in
        /// files written before budgets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rounds: Option<u64>,
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
    /// The model replaced its plan (`todo_write`): the whole new list.
    Plan {
        ts: String,
        entries: Vec<crate::protocol::PlanEntry>,
    },
}

/// A slash command as the user typed it (`/review src/a.rs`): kept in the
/// `message` entry of its expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandLine {
    /// The command's name, without the `/`.
    pub name: String,
    /// Everything after the name, trimmed.
    pub arguments: String,
    /// The message text exactly as it was sent.
    pub text: String,
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
    pub permission_mode: Option<crate::protocol::Mode>,
    /// The last thinking level set in this session (`off` when none was).
    pub thinking_level: ThinkingLevel,
    /// The latest compaction, from which the model's context is rebuilt.
    pub compaction: Option<Compacted>,
    /// The last `set_auto_compaction` of this session, if any.
    pub auto_compaction: Option<bool>,
    /// The model's plan as its last `todo_write` left it.
    pub plan: Vec<crate::protocol::PlanEntry>,
    /// Provider rounds over the session's turns (its budget's `max_turns`).
    pub rounds: u64,
    /// The slash commands typed, by the index of the message each
    /// expanded into.
    pub commands: BTreeMap<usize, CommandLine>,
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
                forked_from: None,
                parent_session_id: None,
                parent_tool_call_id: None,
                agent: None,
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
            plan: Vec::new(),
            rounds: 0,
            commands: BTreeMap::new(),
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
            Entry::Message {
                message, command, ..
            } => {
                if let Some(command) = command {
                    self.commands.insert(self.messages.len(), command);
                }
                self.messages.push(message)
            }
            Entry::ModelChange { model, .. } => self.model = Some(model),
            Entry::PermissionMode { mode, .. } => self.permission_mode = Some(mode),
            Entry::ThinkingLevel { level, .. } => self.thinking_level = level,
            Entry::TurnEnd {
                usage,
                cost_usd,
                rounds,
                ..
            } => {
                self.add_turn(&usage, cost_usd);
                self.rounds += rounds.unwrap_or(0);
            }
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
            Entry::Plan { entries, .. } => self.plan = entries,
        }
    }

    pub fn add_turn(&mut self, usage: &Usage, cost_usd: Option<f64>) {
        self.usage.add(usage);
        self.turns += 1;
        if let Some(c) = cost_usd {
            *self.cost_usd.get_or_insert(0.0) += c;
        }
    }

    /// The first user message's text (as typed, for a slash command),
    /// shortened, for `list_sessions`.
    pub fn title(&self) -> Option<String> {
        let index = self.messages.iter().position(|m| m.role == Role::User)?;
        let text = match self.commands.get(&index) {
            Some(command) => command.text.clone(),
            None => self.messages[index].text(),
        };
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
pub(super) fn read_header(path: &Path) -> Option<Header> {
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
        plan: Vec::new(),
        rounds: 0,
        commands: BTreeMap::new(),
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

/// A resumed session works where it was started, unless `--cwd` says
/// otherwise; if that directory is gone, in the current one (and says so).
pub fn resumed_cwd(session: &Session, current: PathBuf) -> PathBuf {
    let stored = Path::new(&session.header.cwd);
    match stored.canonicalize() {
        Ok(dir) if dir.is_dir() => dir,
        _ => {
            tracing::warn!(
                "session {} was started in {}, which is no longer a directory; working in {} instead",
                session.header.id,
                stored.display(),
                current.display()
            );
            current
        }
    }
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
                command: None,
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
            rounds: None,
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
            command: None,
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
