//! `write {path, content}`: create or overwrite a whole file.
//!
//! Parent directories are created as needed and the file is replaced
//! whole, through the session's `FileSystem` (locally a temporary file
//! renamed over it, `local.rs`). The preview diffs the
//! old text against the new so the user sees what an overwrite loses.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::args::Args;
use super::fsutil::read_text;
use super::tool::Builtin;
use super::{
    diff, let_write_finish, paths, Access, FileKind, FileSystem, Preview, ToolCtx, ToolOutput,
};

/// Past this size an existing file is not diffed for the prompt; the title
/// still says it is being overwritten.
const MAX_DIFF_INPUT_BYTES: u64 = 4 * 1024 * 1024;

/// A call's input, checked.
pub(crate) struct Input {
    path: PathBuf,
    shown: String,
    content: String,
}

/// `write` as the tool table holds it.
pub(crate) struct WriteTool;

impl Builtin for WriteTool {
    type Input = Input;
    const NAME: &'static str = "write";
    const ACCESS: Access = Access::EditsFiles;
    const SUMMARY: &'static str =
        "Create a new file, or replace one whose content changes almost entirely.";

    fn definition() -> Value {
        json!({
            "name": Self::NAME,
            "description": "Write a file, replacing it entirely if it exists. Parent directories are \
                created. Prefer edit for changing part of an existing file.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File to write, absolute or relative to the working directory."},
                    "content": {"type": "string", "description": "The complete new content of the file."}
                },
                "required": ["path", "content"]
            }
        })
    }

    fn parse(input: &Value, cwd: &Path) -> Result<Self::Input> {
        let args = Args::new(Self::NAME, input)?;
        let raw = args.string("path")?;
        let content = args.string("content")?.to_owned();
        let path = paths::resolve(cwd, raw).context("write")?;
        let shown = paths::display(cwd, &path);
        Ok(Input {
            path,
            shown,
            content,
        })
    }

    fn preview(i: Self::Input, _cwd: &Path, fs: &dyn FileSystem) -> Result<Preview> {
        let bytes = i.content.len();
        let (title, diff) = match fs.metadata(&i.path) {
            Ok(meta) if meta.kind == FileKind::Dir => {
                bail!("write: {} is a directory", i.shown);
            }
            Ok(meta) if meta.len > MAX_DIFF_INPUT_BYTES => (
                format!(
                    "Overwrite {} ({bytes} bytes; the old file is too large to diff)",
                    i.shown
                ),
                None,
            ),
            Ok(_) => match read_text(fs, &i.path, &i.shown) {
                Ok(old) => (
                    format!("Overwrite {} ({bytes} bytes)", i.shown),
                    Some(diff::unified(&old, &i.content, &i.shown, &i.shown)),
                ),
                Err(why) => (
                    format!("Overwrite {} ({bytes} bytes; {why:#})", i.shown),
                    None,
                ),
            },
            Err(_) => (
                format!("Create {} ({bytes} bytes)", i.shown),
                Some(diff::unified("", &i.content, "/dev/null", &i.shown)),
            ),
        };
        Ok(Preview {
            title,
            diff,
            paths: vec![i.path],
        })
    }

    async fn run(i: Self::Input, ctx: &ToolCtx) -> ToolOutput {
        let fs = ctx.env.fs.clone();
        let sandbox = ctx.env.sandbox.clone();
        let_write_finish(ctx, move || {
            if let Some(sandbox) = &sandbox {
                sandbox
                    .check_write(&i.path)
                    .map_err(|why| anyhow!("write: {why}"))?;
            }
            write_file(fs.as_ref(), &i)
        })
        .await
    }
}

fn write_file(fs: &dyn FileSystem, i: &Input) -> Result<String> {
    let created = fs
        .write(&i.path, i.content.as_bytes())
        .map_err(|e| anyhow!("cannot write {}: {e}", i.shown))?;
    let verb = if created { "Created" } else { "Replaced" };
    Ok(format!(
        "{verb} {} ({} bytes written)",
        i.shown,
        i.content.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_util::ctx;
    use crate::tools::Tool;
    use std::fs;

    /// Through the table's interface, as the turn runs it.
    async fn run(input: &Value, c: &ToolCtx) -> ToolOutput {
        WriteTool.run(input, c).await
    }

    fn preview(input: &Value, cwd: &Path) -> Result<Preview> {
        WriteTool.preview(input, cwd, &crate::tools::local::LocalFs)
    }

    #[tokio::test]
    async fn creates_parents_then_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let input = json!({"path": "a/b/new.txt", "content": "hello\n"});
        let p = preview(&input, &c.cwd).unwrap();
        assert_eq!(p.title, "Create a/b/new.txt (6 bytes)");
        assert_eq!(p.paths, vec![c.cwd.join("a/b/new.txt")]);
        assert_eq!(
            p.diff.as_deref(),
            Some("--- /dev/null\n+++ a/b/new.txt\n@@ -0,0 +1 @@\n+hello\n")
        );
        let out = run(&input, &c).await;
        assert_eq!(out, ToolOutput::ok("Created a/b/new.txt (6 bytes written)"));
        assert_eq!(
            fs::read_to_string(c.cwd.join("a/b/new.txt")).unwrap(),
            "hello\n"
        );

        let input = json!({"path": "a/b/new.txt", "content": "bye\n"});
        let p = preview(&input, &c.cwd).unwrap();
        assert_eq!(p.title, "Overwrite a/b/new.txt (4 bytes)");
        assert!(p.diff.unwrap().contains("-hello\n+bye\n"));
        let out = run(&input, &c).await;
        assert_eq!(
            out,
            ToolOutput::ok("Replaced a/b/new.txt (4 bytes written)")
        );
        assert_eq!(
            fs::read_to_string(c.cwd.join("a/b/new.txt")).unwrap(),
            "bye\n"
        );
    }

    #[tokio::test]
    async fn refuses_directories_and_names_missing_fields() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        fs::create_dir(c.cwd.join("d")).unwrap();
        let out = run(&json!({"path": "d", "content": "x"}), &c).await;
        assert!(
            out.is_error && out.content.contains("directory"),
            "{}",
            out.content
        );
        assert!(preview(&json!({"path": "d", "content": "x"}), &c.cwd).is_err());
        let out = run(&json!({"path": "x.txt"}), &c).await;
        assert_eq!(
            out,
            ToolOutput::error("write: missing required field `content` (a string)")
        );
    }
}
