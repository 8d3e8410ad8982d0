//! The append-only writer of the session in use: one line per entry, one
//! `write` per line, a torn line cut back, fsync per turn.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use super::{create_private_dir, now, Entry, Header};

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
    /// The writer of a file that exists, open and locked, `len` bytes of
    /// complete lines long.
    pub(super) fn opened(path: PathBuf, header: Header, file: File, len: u64) -> Self {
        SessionFile {
            path,
            header,
            file: Some(file),
            len,
            dirty: false,
        }
    }

    /// The writer of a session whose file appears with its first entry.
    pub(super) fn lazy(path: PathBuf, header: Header) -> Self {
        SessionFile {
            path,
            header,
            file: None,
            len: 0,
            dirty: false,
        }
    }

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
                let (f, len) = create_file(path, &self.header, &[])?;
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

/// Creates the file with its header (and `body`, complete entry lines)
/// atomically: written to a temporary name, synced, then renamed, so no
/// reader ever sees a file without a header or with half a fork.
pub(super) fn create_file(path: &Path, header: &Header, body: &[u8]) -> Result<(File, u64)> {
    write_atomically(path, header, body, false)
}

/// As [`create_file`], but an existing file at `path` is replaced (an
/// import with `--replace`; the caller holds that file's lock). The rename
/// swaps the whole file at once: a reader sees the old session or the new.
pub(super) fn replace_file(path: &Path, header: &Header, body: &[u8]) -> Result<(File, u64)> {
    write_atomically(path, header, body, true)
}

fn write_atomically(
    path: &Path,
    header: &Header,
    body: &[u8],
    replace: bool,
) -> Result<(File, u64)> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("session path {} has no directory", path.display()))?;
    create_private_dir(dir)?;
    let mut line = serde_json::to_vec(&Entry::Session(header.clone()))?;
    line.push(b'\n');
    line.extend_from_slice(body);
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
    let written = file
        .try_lock()
        .map_err(|e| anyhow!("cannot lock {}: {e}", tmp.display()))
        .and_then(|()| {
            file.write_all(&line)
                .and_then(|()| file.sync_data())
                .with_context(|| format!("cannot write session file {}", tmp.display()))
        });
    // A failed write (disk full) must not leave a temporary file behind.
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    if !replace && path.symlink_metadata().is_ok() {
        let _ = fs::remove_file(&tmp);
        return Err(anyhow!(
            "session file {} already exists; not replacing it",
            path.display()
        ));
    }
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot create {}", path.display()));
    }
    // The rename must itself be durable before entries are appended.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok((file, line.len() as u64))
}
