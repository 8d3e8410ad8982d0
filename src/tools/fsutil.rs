//! File helpers shared by the tools: the atomic write, and loading a file
//! that must be text.
//!
//! Writes go to a temporary file in the target's own directory and are then
//! renamed over it. A rename within one file system is atomic, so a crash or
//! a kill leaves either the old file or the new one, never half of either.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{anyhow, bail, Result};

/// How much of a file is looked at to decide whether it is binary; the same
/// window git and grep use for their NUL-byte check.
pub(crate) const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// Keeps temporary names unique within this process; the pid keeps them
/// unique between processes.
static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically, creating parent directories.
/// Returns true when the file did not exist before. An existing file keeps
/// its permission bits.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let (dir, name) = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) => (dir, name),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the path names no file",
            ))
        }
    };
    let existing = match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a directory",
            ))
        }
        Ok(meta) => Some(meta.permissions()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    fs::create_dir_all(dir)?;
    let tmp = tmp_path(dir, name);
    let result = write_then_rename(&tmp, path, bytes, existing.clone());
    if result.is_err() {
        // The temp file is ours and useless now; a failure to remove it
        // changes nothing for the caller.
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| existing.is_none())
}

fn tmp_path(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.{n}.tmp", std::process::id()));
    dir.join(tmp_name)
}

fn write_then_rename(
    tmp: &Path,
    path: &Path,
    bytes: &[u8],
    perms: Option<fs::Permissions>,
) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(tmp)?;
    file.write_all(bytes)?;
    if let Some(perms) = perms {
        file.set_permissions(perms)?;
    }
    file.sync_all()?;
    drop(file);
    fs::rename(tmp, path)?;
    // Make the rename itself durable. Some file systems refuse to sync a
    // directory; the data is already safe, so that is not an error.
    if let Some(dir) = path.parent() {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// True when the first bytes hold a NUL, the usual sign of a binary file.
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    head.iter().take(BINARY_SNIFF_BYTES).any(|&b| b == 0)
}

/// Loads a file that a text tool (edit, write's diff) works on. `shown` is
/// how the path is named in messages.
pub(crate) fn read_text(path: &Path, shown: &str) -> Result<String> {
    let meta = fs::metadata(path).map_err(|e| open_error(e, shown))?;
    if meta.is_dir() {
        bail!("{shown} is a directory");
    }
    // Opening a FIFO or a device could block forever or never end.
    if !meta.is_file() {
        bail!("{shown} is not a regular file");
    }
    let mut bytes = Vec::new();
    let mut file = File::open(path).map_err(|e| open_error(e, shown))?;
    file.read_to_end(&mut bytes)
        .map_err(|e| anyhow!("cannot read {shown}: {e}"))?;
    if looks_binary(&bytes) {
        bail!("{shown} is a binary file");
    }
    String::from_utf8(bytes).map_err(|_| anyhow!("{shown} is not valid UTF-8 text"))
}

/// Turns an open error into a message that says what to do next.
pub(crate) fn open_error(e: io::Error, shown: &str) -> anyhow::Error {
    match e.kind() {
        io::ErrorKind::NotFound => anyhow!("{shown} does not exist"),
        io::ErrorKind::PermissionDenied => anyhow!("permission denied: {shown}"),
        _ => anyhow!("cannot open {shown}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_creates_replaces_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/c.txt");
        assert!(atomic_write(&p, b"one").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"one");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o751)).unwrap();
        assert!(!atomic_write(&p, b"two").unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"two");
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o751);
        // No temp files left behind.
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(atomic_write(dir.path(), b"x").is_err());
    }
}
