//! `rpc sessions export <ID>` and `rpc sessions import [FILE|-]`: a session
//! as one stream on stdout, and that stream stored back (SPEC.md,
//! "Portable sessions"). The format and its checks are `session::portable`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::session::{ImportOptions, Store, MAX_IMPORT_BYTES};

/// Writes session `id`'s export stream to `out`; exit 1 when it cannot.
pub(super) fn export(
    store: &Store,
    id: &str,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<i32> {
    match store.export(id) {
        Ok(stream) => {
            out.write_all(&stream)?;
            out.flush()?;
            Ok(0)
        }
        Err(e) => {
            writeln!(err, "rpc sessions export: {e}")?;
            Ok(1)
        }
    }
}

/// Stores the stream read from `file` (stdin when `None` or `-`) and
/// prints the id it was stored under; exit 1 when refused.
pub(super) fn import(
    store: &Store,
    file: Option<&Path>,
    options: ImportOptions,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<i32> {
    let stream = match read_capped(file) {
        Ok(stream) => stream,
        Err(e) => {
            writeln!(err, "rpc sessions import: {e}")?;
            return Ok(1);
        }
    };
    match store.import(&stream, options, None) {
        Ok(id) => {
            writeln!(out, "{id}")?;
            out.flush()?;
            Ok(0)
        }
        Err(e) => {
            writeln!(err, "rpc sessions import: {e}")?;
            Ok(1)
        }
    }
}

/// The whole input, refused past [`MAX_IMPORT_BYTES`] so that a wrong file
/// (a disk image, /dev/zero) cannot exhaust memory.
fn read_capped(file: Option<&Path>) -> Result<Vec<u8>, String> {
    let (name, reader): (String, Box<dyn Read>) = match file {
        None => ("stdin".into(), Box::new(io::stdin())),
        Some(p) if p == Path::new("-") => ("stdin".into(), Box::new(io::stdin())),
        Some(p) => {
            let f = File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?;
            (p.display().to_string(), Box::new(f))
        }
    };
    let mut bytes = Vec::new();
    reader
        .take(MAX_IMPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name}: {e}"))?;
    if bytes.len() as u64 > MAX_IMPORT_BYTES {
        return Err(format!(
            "{name} is larger than the import limit of {MAX_IMPORT_BYTES} bytes; nothing was stored"
        ));
    }
    Ok(bytes)
}
