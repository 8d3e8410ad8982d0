//! File helpers shared by the tools: the binary check, loading a file that
//! must be text (through the session's [`FileSystem`]), and error messages
//! that say what to do next.

use std::io::{self, Read};
use std::path::Path;

use anyhow::{anyhow, bail, Result};

use super::env::{FileKind, FileSystem};

/// How much of a file is looked at to decide whether it is binary; the same
/// window git and grep use for their NUL-byte check.
pub(crate) const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// True when the first bytes hold a NUL, the usual sign of a binary file.
pub(crate) fn looks_binary(head: &[u8]) -> bool {
    head.iter().take(BINARY_SNIFF_BYTES).any(|&b| b == 0)
}

/// Loads a file that a text tool (edit, write's diff) works on. `shown` is
/// how the path is named in messages.
pub(crate) fn read_text(fs: &dyn FileSystem, path: &Path, shown: &str) -> Result<String> {
    let meta = fs.metadata(path).map_err(|e| open_error(e, shown))?;
    match meta.kind {
        FileKind::Dir => bail!("{shown} is a directory"),
        // Opening a FIFO or a device could block forever or never end.
        FileKind::Other => bail!("{shown} is not a regular file"),
        FileKind::File => {}
    }
    let mut bytes = Vec::new();
    let mut file = fs.open(path).map_err(|e| open_error(e, shown))?;
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
