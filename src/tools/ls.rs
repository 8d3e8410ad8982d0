//! `ls {path?}`: the entries of one directory, sorted, directories marked
//! with a trailing `/`.
//!
//! This is a plain listing of what is on disk, hidden and git-ignored
//! entries included: the model asked what is in this directory. `find` and
//! `grep` are the tools that skip ignored files.
//!
//! It reads the local disk directly, not the session's `FileSystem`
//! (`env.rs`): an editor's file system cannot list directories.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::args::Args;
use super::fsutil::open_error;
use super::tool::Builtin;
use super::{blocking, paths, Access, FileSystem, Preview, ToolCtx, ToolOutput};

const MAX_ENTRIES: usize = 1000;

/// `ls` as the tool table holds it.
pub(crate) struct LsTool;

impl Builtin for LsTool {
    type Input = (PathBuf, String);
    const NAME: &'static str = "ls";
    const ACCESS: Access = Access::ReadOnly;
    const SUMMARY: &'static str = "List a directory's entries.";

    fn definition() -> Value {
        json!({
            "name": Self::NAME,
            "description": "List the entries of a directory (default: the working directory), sorted, \
                with a trailing / on directories. Hidden and git-ignored entries are included. At most \
                1000 entries are shown.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "Directory to list, absolute or relative to the working directory (default \".\")."}
                }
            }
        })
    }

    fn parse(input: &Value, cwd: &Path) -> Result<Self::Input> {
        let args = Args::new(Self::NAME, input)?;
        let raw = args.opt_string("path")?.unwrap_or(".");
        let path = paths::resolve(cwd, raw).context("ls")?;
        let shown = paths::display(cwd, &path);
        Ok((path, shown))
    }

    fn preview((path, shown): Self::Input, _cwd: &Path, _fs: &dyn FileSystem) -> Result<Preview> {
        Ok(Preview {
            title: format!("List {shown}"),
            diff: None,
            paths: vec![path],
        })
    }

    async fn run((path, shown): Self::Input, ctx: &ToolCtx) -> ToolOutput {
        blocking(ctx, move |cancel| list(&path, &shown, &cancel)).await
    }
}

fn list(path: &Path, shown: &str, cancel: &CancellationToken) -> Result<String> {
    let meta = fs::metadata(path).map_err(|e| open_error(e, shown))?;
    if !meta.is_dir() {
        bail!("{shown} is a file, not a directory; use read to read it");
    }
    let entries = fs::read_dir(path).map_err(|e| open_error(e, shown))?;
    let mut names = Vec::new();
    for entry in entries {
        if cancel.is_cancelled() {
            bail!("aborted");
        }
        let entry = entry.map_err(|e| anyhow!("cannot list {shown}: {e}"))?;
        let mut name = entry.file_name().to_string_lossy().into_owned();
        // Follow symlinks so a link to a directory reads as one.
        if fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            name.push('/');
        }
        names.push(name);
    }
    if names.is_empty() {
        return Ok(format!("({shown} is empty)"));
    }
    names.sort();
    let total = names.len();
    names.truncate(MAX_ENTRIES);
    let mut out = names.join("\n");
    out.push('\n');
    if total > MAX_ENTRIES {
        out.push_str(&format!(
            "\n[Showing {MAX_ENTRIES} of {total} entries. Use find with a pattern to narrow the listing.]"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_util::ctx;
    use crate::tools::Tool;

    /// Through the table's interface, as the turn runs it.
    async fn run(input: &Value, c: &ToolCtx) -> ToolOutput {
        LsTool.run(input, c).await
    }

    #[tokio::test]
    async fn lists_sorted_with_dirs_marked_and_ignored_files_included() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        fs::create_dir(c.cwd.join("src")).unwrap();
        fs::write(c.cwd.join("src/lib.rs"), "").unwrap();
        fs::write(c.cwd.join("b.txt"), "").unwrap();
        fs::write(c.cwd.join("secret.log"), "").unwrap();
        fs::write(c.cwd.join(".gitignore"), "*.log\n").unwrap();
        let out = run(&json!({}), &c).await;
        assert_eq!(out, ToolOutput::ok(".gitignore\nb.txt\nsecret.log\nsrc/\n"));
        let out = run(&json!({"path": "src"}), &c).await;
        assert_eq!(out, ToolOutput::ok("lib.rs\n"));
        let out = run(&json!({"path": "b.txt"}), &c).await;
        assert!(out.is_error && out.content.contains("use read"));
        let out = run(&json!({"path": "missing"}), &c).await;
        assert_eq!(out, ToolOutput::error("missing does not exist"));
    }

    #[tokio::test]
    async fn caps_long_listings() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        for i in 0..1005 {
            fs::write(c.cwd.join(format!("f{i:04}")), "").unwrap();
        }
        let out = run(&json!({"path": "."}), &c).await;
        assert_eq!(
            out.content.lines().filter(|l| l.starts_with('f')).count(),
            1000
        );
        assert!(out.content.ends_with(
            "[Showing 1000 of 1005 entries. Use find with a pattern to narrow the listing.]"
        ));
    }
}
