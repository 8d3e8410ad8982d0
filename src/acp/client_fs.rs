//! The editor's files as a session's [`FileSystem`]: when the client
//! advertises `fs.readTextFile` / `fs.writeTextFile`, the file tools read
//! and write text through `fs/read_text_file` / `fs/write_text_file`, so
//! the model sees the buffer as the user sees it (unsaved changes
//! included) and its edits land in the editor (its buffers, undo history
//! and review) instead of behind its back.
//!
//! What an editor does not serve stays local: metadata (the editor has no
//! such method; a file must exist on disk to be read or edited), binary
//! files (the protocol carries text only: the first bytes on disk are
//! looked at, as `read` does), and a write that is not UTF-8.
//!
//! The trait's methods are blocking and called on blocking threads (see
//! `tools/env.rs`); each request is sent and awaited on the runtime
//! through its handle, so the runtime's one thread never waits.

use std::io::{self, Read};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::runtime::Handle;

use super::rpc::{ClientCapabilities, Connection, RpcError};
use crate::tools::fsutil::{looks_binary, BINARY_SNIFF_BYTES};
use crate::tools::{FileMeta, FileSystem, LocalFs};

/// How long a file request may wait for the editor (which may ask its
/// user first) before the tool fails; a tool call's own default limit.
const CLIENT_FS_TIMEOUT: Duration = Duration::from_secs(120);

/// A session's files, read and written through the editor where it offers.
pub(super) struct ClientFs {
    cx: Connection,
    session_id: String,
    runtime: Handle,
    caps: ClientCapabilities,
}

impl ClientFs {
    /// `None` when the client offers neither method: the local disk then.
    /// Must be called on the runtime.
    pub(super) fn new(cx: Connection, session_id: String) -> Option<Self> {
        let caps = cx.client();
        (caps.read_text_file || caps.write_text_file).then(|| ClientFs {
            cx,
            session_id,
            runtime: Handle::current(),
            caps,
        })
    }

    /// Sends `method` and blocks this (blocking) thread for the answer.
    fn call(&self, method: &str, params: Value) -> io::Result<Value> {
        let answer = self
            .runtime
            .block_on(self.cx.call(method, params, CLIENT_FS_TIMEOUT));
        answer.map_err(|e| client_error(method, &e))
    }

    /// `fs/read_text_file` for `path`, a window of lines when given.
    fn read_text(&self, path: &Path, window: Option<(u64, u64)>) -> io::Result<String> {
        let mut params = json!({"sessionId": self.session_id, "path": path});
        if let Some((line, limit)) = window {
            params["line"] = json!(line);
            params["limit"] = json!(limit);
        }
        let answer = self.call("fs/read_text_file", params)?;
        match answer.get("content").and_then(Value::as_str) {
            Some(content) => Ok(content.to_owned()),
            None => Err(io::Error::other(
                "the editor's answer to fs/read_text_file has no `content` string",
            )),
        }
    }

    /// True when reads of `path` go to the editor: it reads text, and the
    /// file on disk does not look binary.
    fn reads_from_editor(&self, path: &Path) -> bool {
        self.caps.read_text_file && !binary_on_disk(path)
    }
}

impl FileSystem for ClientFs {
    fn metadata(&self, path: &Path) -> io::Result<FileMeta> {
        LocalFs.metadata(path)
    }

    fn open(&self, path: &Path) -> io::Result<Box<dyn Read + Send>> {
        if !self.reads_from_editor(path) {
            return LocalFs.open(path);
        }
        let text = self.read_text(path, None)?;
        Ok(Box::new(io::Cursor::new(text.into_bytes())))
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> io::Result<bool> {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) if self.caps.write_text_file => text,
            _ => return LocalFs.write(path, bytes),
        };
        let created = match LocalFs.metadata(path) {
            Ok(_) => false,
            Err(e) if e.kind() == io::ErrorKind::NotFound => true,
            Err(e) => return Err(e),
        };
        let params = json!({"sessionId": self.session_id, "path": path, "content": text});
        self.call("fs/write_text_file", params)?;
        Ok(created)
    }

    fn read_lines(&self, path: &Path, line: u64, limit: u64) -> Option<io::Result<String>> {
        self.reads_from_editor(path)
            .then(|| self.read_text(path, Some((line, limit))))
    }
}

/// Whether the first bytes of `path` on disk hold a NUL. A file that cannot
/// be read here is not called binary: the editor may still serve it.
fn binary_on_disk(path: &Path) -> bool {
    let mut head = Vec::with_capacity(BINARY_SNIFF_BYTES);
    match std::fs::File::open(path) {
        Ok(file) => match file.take(BINARY_SNIFF_BYTES as u64).read_to_end(&mut head) {
            Ok(_) => looks_binary(&head),
            Err(_) => false,
        },
        Err(_) => false,
    }
}

/// The client's error as the tool reports it: its message, and the method
/// that failed (a "not found" keeps its kind, so the tool says so).
fn client_error(method: &str, e: &RpcError) -> io::Error {
    let kind = if e.code == -32002 || e.describe().contains("ENOENT") {
        io::ErrorKind::NotFound
    } else {
        io::ErrorKind::Other
    };
    io::Error::new(
        kind,
        format!(
            "the editor answered {method} with an error: {}",
            e.describe()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_files_stay_local_and_unreadable_ones_go_to_the_editor() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("a.txt");
        let bin = dir.path().join("a.bin");
        std::fs::write(&text, "hello\n").unwrap();
        std::fs::write(&bin, b"\x7fELF\0\0").unwrap();
        assert!(!binary_on_disk(&text));
        assert!(binary_on_disk(&bin));
        assert!(!binary_on_disk(&dir.path().join("unsaved.txt")));
    }

    #[test]
    fn the_clients_not_found_keeps_its_kind() {
        let e = client_error("fs/read_text_file", &RpcError::new(-32002, "no such file"));
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let e = client_error("fs/read_text_file", &RpcError::internal("boom"));
        assert_eq!(e.kind(), io::ErrorKind::Other);
        assert!(e.to_string().contains("boom"), "{e}");
    }
}
