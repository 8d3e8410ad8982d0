//! Portable sessions: the export stream (`rpc sessions export`,
//! `export_session`) and its checked, atomic import (`rpc sessions
//! import`, `import_session`).
//!
//! An export is one JSONL stream: an `agent_rpc_export` header line, then
//! the session file's complete lines exactly as stored (its `session`
//! header first). Exporting reads without the lock, so a session another
//! process is writing exports as a snapshot up to its last complete line
//! (entries are appended with one `write` each). Importing checks every
//! line before anything is written, then writes the whole file under a
//! temporary name and renames it: the session appears whole or not at all.

use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};

use super::file::{create_file, replace_file};
use super::{new_id, now, validate_id, Entry, Header, Store, FORMAT_VERSION};
use crate::error::{Coded, ErrorCode, WithCode};

/// The `type` of an export's first line.
pub const EXPORT_TYPE: &str = "agent_rpc_export";

/// Bumped when an export can no longer be read by an older host.
pub const EXPORT_FORMAT: u32 = 1;

/// The largest stream `rpc sessions import` reads (256 MiB): far above
/// any real session, low enough that a wrong file cannot exhaust memory.
pub const MAX_IMPORT_BYTES: u64 = 256 * 1024 * 1024;

/// The first line of an export.
#[derive(Debug, Serialize, Deserialize)]
struct ExportHeader {
    #[serde(rename = "type")]
    kind: String,
    format: u32,
    host_version: String,
    session_id: String,
    exported_at: String,
    /// Lines after this one: the session's header entry and the rest.
    entries: usize,
}

/// How an import stores the session.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Store a copy under a fresh id (`forked_from` names the original).
    pub new_id: bool,
    /// Overwrite a stored session of the same id (refused while held).
    pub replace: bool,
}

impl Store {
    /// Session `id` as an export stream. Reads without taking the lock, so
    /// it works for a session in use; a torn last line is left out, and
    /// any other line that is not a session entry makes it an error.
    pub fn export(&self, id: &str) -> Result<Vec<u8>, Coded> {
        let (path, mut file) = self.open_file(id, false)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))
            .code(ErrorCode::Internal)?;
        export_stream(id, &path, &bytes).code(ErrorCode::Internal)
    }

    /// Checks an export stream and stores its session; returns the id it
    /// was stored under. Nothing is written unless every line checks out.
    /// `in_use`: the session the calling process holds, refused (`busy`)
    /// since its own writer would go on appending to the replaced file.
    pub fn import(
        &self,
        stream: &[u8],
        options: ImportOptions,
        in_use: Option<&str>,
    ) -> Result<String, Coded> {
        let (mut header, body) = check_stream(stream)?;
        if options.new_id {
            header.forked_from = Some(header.id.clone());
            header.id = new_id();
        }
        if in_use == Some(header.id.as_str()) {
            return Err(Coded::new(
                ErrorCode::Busy,
                "that is the session in use by this process; switch to another (new_session) before replacing it, or import it with new_id for a copy",
            ));
        }
        let path = self.path_of(&header.id);
        let exists = path.symlink_metadata().is_ok();
        if exists && !options.replace {
            return Err(Coded::new(
                ErrorCode::SessionExists,
                format!(
                    "session {} is already stored in {}; pass --replace (replace: true) to overwrite it or --new-id (new_id: true) for a copy",
                    header.id,
                    self.dir().display()
                ),
            ));
        }
        let written = if exists {
            // Held while the new file is renamed over the old one, so a
            // session some process is using is never swapped under it.
            let _lock = self.open_locked(&header.id, false, |path| {
                format!(
                    "session {} is in use by an rpc process (lock on {}); it was not replaced",
                    header.id,
                    path.display()
                )
            })?;
            replace_file(&path, &header, body)
        } else {
            create_file(&path, &header, body)
        };
        written.code(ErrorCode::Internal)?;
        Ok(header.id)
    }
}

/// The export stream of session file `path` (session `id`): its complete
/// lines, each checked to be an entry, the first the header of `id`.
fn export_stream(id: &str, path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&bytes[..0], |end| &bytes[..=end]);
    let lines: Vec<&[u8]> = complete.split_inclusive(|&b| b == b'\n').collect();
    let damaged = |n: usize, why: String| {
        anyhow!(
            "session file {} is damaged: line {n}: {why}",
            path.display()
        )
    };
    if lines.is_empty() {
        return Err(damaged(1, "no complete line".into()));
    }
    for (index, line) in lines.iter().enumerate() {
        let entry = entry_of(line).map_err(|why| damaged(index + 1, why))?;
        if index == 0 {
            session_header(entry, id).map_err(|why| damaged(1, why))?;
        }
    }
    let header = ExportHeader {
        kind: EXPORT_TYPE.into(),
        format: EXPORT_FORMAT,
        host_version: env!("CARGO_PKG_VERSION").into(),
        session_id: id.into(),
        exported_at: now(),
        entries: lines.len(),
    };
    let mut out = serde_json::to_vec(&header)?;
    out.push(b'\n');
    out.extend_from_slice(complete);
    Ok(out)
}

/// One complete line as a session entry, or why it is not one.
fn entry_of(line: &[u8]) -> Result<Entry, String> {
    serde_json::from_slice(line).map_err(|e| format!("not a session entry: {e}"))
}

/// The header a session's first entry must be: a `session` entry for `id`,
/// in a file format this host reads.
fn session_header(entry: Entry, id: &str) -> Result<Header, String> {
    let Entry::Session(header) = entry else {
        return Err("the first entry is not the `session` header".into());
    };
    if header.id != id {
        return Err(format!(
            "the session header's id {:?} is not {id:?}",
            header.id
        ));
    }
    if header.version > FORMAT_VERSION {
        return Err(format!(
            "session format version {} is newer than this rpc understands ({FORMAT_VERSION}); upgrade rpc",
            header.version
        ));
    }
    Ok(header)
}

/// Checks a whole export stream: the session's header and the bytes of the
/// entries after it (complete lines, to store verbatim). Every refusal is
/// `invalid_params` naming the line.
fn check_stream(stream: &[u8]) -> Result<(Header, &[u8]), Coded> {
    let refused = |n: usize, why: String| {
        Coded::new(
            ErrorCode::InvalidParams,
            format!("not a complete agent-rpc session export: line {n}: {why}"),
        )
    };
    if stream.is_empty() {
        return Err(refused(1, "the input is empty".into()));
    }
    let mut lines: Vec<&[u8]> = stream.split_inclusive(|&b| b == b'\n').collect();
    let last = lines.len();
    if stream.last() != Some(&b'\n') {
        return Err(refused(last, "no final newline: the stream was cut".into()));
    }
    let export = export_header(lines[0]).map_err(|why| refused(1, why))?;
    let entries = lines.split_off(1);
    if entries.len() != export.entries {
        let n = if entries.len() < export.entries {
            last
        } else {
            export.entries + 2
        };
        return Err(refused(
            n,
            format!(
                "the export header says {} entries, the stream has {}: it was cut or joined",
                export.entries,
                entries.len()
            ),
        ));
    }
    let mut header = None;
    for (index, line) in entries.iter().enumerate() {
        let n = index + 2;
        let entry = entry_of(line).map_err(|why| refused(n, why))?;
        if index == 0 {
            header =
                Some(session_header(entry, &export.session_id).map_err(|why| refused(n, why))?);
        }
    }
    let header = header.ok_or_else(|| refused(2, "no session header entry".into()))?;
    // The id becomes a file name: one that could leave the sessions
    // directory (`../x`, `/etc/x`) is refused before anything is written.
    validate_id(&header.id).map_err(|e| refused(2, e.message))?;
    let body_start = lines[0].len() + entries[0].len();
    Ok((header, &stream[body_start..]))
}

/// The export header on line 1, or why line 1 is not one.
fn export_header(line: &[u8]) -> Result<ExportHeader, String> {
    let value: serde_json::Value = serde_json::from_slice(line)
        .map_err(|e| format!("not JSON, so not an agent-rpc export: {e}"))?;
    if value.get("type").and_then(|t| t.as_str()) != Some(EXPORT_TYPE) {
        return Err(format!(
            "not an agent-rpc export (its first line must have \"type\":\"{EXPORT_TYPE}\")"
        ));
    }
    let header: ExportHeader = serde_json::from_value(value)
        .map_err(|e| format!("the export header is not valid: {e}"))?;
    if header.format > EXPORT_FORMAT {
        return Err(format!(
            "export format {} is newer than this rpc understands ({EXPORT_FORMAT}); upgrade rpc",
            header.format
        ));
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Message;
    use crate::session::Session;

    fn session_bytes(id: &str) -> Vec<u8> {
        let s = Session::new(id.into(), "/tmp".into(), None);
        let mut out = serde_json::to_vec(&Entry::Session(s.header)).unwrap();
        out.push(b'\n');
        for text in ["one", "two"] {
            let entry = Entry::Message {
                ts: now(),
                message: Message::user_text(text).into(),
                command: None,
            };
            out.extend(serde_json::to_vec(&entry).unwrap());
            out.push(b'\n');
        }
        out
    }

    fn store_with(id: &str) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("sessions"));
        super::super::create_private_dir(store.dir()).unwrap();
        std::fs::write(store.path_of(id), session_bytes(id)).unwrap();
        (dir, store)
    }

    #[test]
    fn an_export_round_trips_and_leaves_a_torn_tail_out() {
        let (_dir, store) = store_with("a");
        let mut torn = session_bytes("a");
        torn.extend_from_slice(b"{\"type\":\"mess");
        std::fs::write(store.path_of("a"), &torn).unwrap();
        let stream = store.export("a").unwrap();
        let (header, body) = check_stream(&stream).unwrap();
        assert_eq!(header.id, "a");
        assert_eq!(body.iter().filter(|&&b| b == b'\n').count(), 2);
        let other = tempfile::tempdir().unwrap();
        let target = Store::new(other.path().join("sessions"));
        assert_eq!(
            target.import(&stream, ImportOptions::default(), None),
            Ok("a".into())
        );
        assert_eq!(
            std::fs::read(target.path_of("a")).unwrap(),
            session_bytes_of(&torn)
        );
    }

    /// The complete lines of `bytes`.
    fn session_bytes_of(bytes: &[u8]) -> Vec<u8> {
        let end = bytes.iter().rposition(|&b| b == b'\n').unwrap() + 1;
        bytes[..end].to_vec()
    }

    #[test]
    fn every_cut_of_a_stream_is_refused_with_a_line() {
        let (_dir, store) = store_with("a");
        let stream = store.export("a").unwrap();
        for cut in 0..stream.len() {
            let e = check_stream(&stream[..cut]).expect_err("refused");
            assert_eq!(e.code, ErrorCode::InvalidParams, "cut at {cut}");
            assert!(e.message.contains("line "), "{}", e.message);
        }
    }

    #[test]
    fn a_damaged_file_does_not_export() {
        let (_dir, store) = store_with("a");
        let mut bytes = session_bytes("a");
        bytes.extend_from_slice(b"garbage\n");
        std::fs::write(store.path_of("a"), &bytes).unwrap();
        let e = store.export("a").unwrap_err();
        assert!(e.message.contains("line 4"), "{}", e.message);
    }
}
