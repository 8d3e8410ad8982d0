//! `edit {path, old_string, new_string, replace_all?}`: exact string
//! replacement in a text file.
//!
//! Matching is exact and, unless `replace_all` is set, must be unique: an
//! ambiguous edit is refused rather than guessed, and the message tells the
//! model how to disambiguate. The plan (new text and diff) is computed the
//! same way for the preview and for the run, so the prompt shows exactly
//! what will be written.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::args::Args;
use super::fsutil::read_text;
use super::tool::Builtin;
use super::{diff, let_write_finish, paths, Access, FileSystem, Preview, ToolCtx, ToolOutput};

/// The diff in the tool result is for the model to check its work; a
/// `replace_all` over a large file should not flood its context.
const MAX_RESULT_DIFF_BYTES: usize = 30 * 1024;

/// Why a replacement cannot be made.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Mismatch {
    Empty,
    Identical,
    NotFound,
    Ambiguous(usize),
}

/// Replaces `old` by `new` in `content`. Returns the new text and how many
/// occurrences were replaced.
pub(crate) fn replace(
    content: &str,
    old: &str,
    new: &str,
    replace_all: bool,
) -> Result<(String, usize), Mismatch> {
    if old.is_empty() {
        return Err(Mismatch::Empty);
    }
    if old == new {
        return Err(Mismatch::Identical);
    }
    match content.matches(old).count() {
        0 => {
            // `read` shows CRLF lines without their `\r`, so a model that
            // copies from it sends `\n`; match those files as it meant.
            if content.contains("\r\n") && old.contains('\n') && !old.contains("\r\n") {
                let crlf = |s: &str| s.replace('\n', "\r\n");
                return replace(content, &crlf(old), &crlf(new), replace_all);
            }
            Err(Mismatch::NotFound)
        }
        1 => Ok((content.replacen(old, new, 1), 1)),
        n if replace_all => Ok((content.replace(old, new), n)),
        n => Err(Mismatch::Ambiguous(n)),
    }
}

struct Plan {
    path: PathBuf,
    shown: String,
    new_text: String,
    count: usize,
    diff: String,
    added: usize,
    removed: usize,
}

/// A call's input, checked.
pub(crate) struct Input {
    path: PathBuf,
    shown: String,
    old: String,
    new: String,
    replace_all: bool,
}

/// Works the edit out, the same way for the preview and the run. It reads
/// the file, so the run calls it off the async threads.
fn plan(fs: &dyn FileSystem, i: Input) -> Result<Plan> {
    let Input {
        path,
        shown,
        old,
        new,
        replace_all,
    } = i;
    if fs.metadata(&path).is_err() {
        bail!("edit: {shown} does not exist; use write to create a new file");
    }
    let text = read_text(fs, &path, &shown).context("edit")?;
    let (new_text, count) = replace(&text, &old, &new, replace_all).map_err(|m| match m {
        Mismatch::Empty => anyhow!(
            "edit: `old_string` is empty; give the exact text to replace (use write to create a file)"
        ),
        Mismatch::Identical => {
            anyhow!("edit: `old_string` and `new_string` are identical; nothing would change")
        }
        Mismatch::NotFound => anyhow!(
            "edit: `old_string` was not found in {shown}. It must match the file exactly, \
             including whitespace and indentation; read the file again and copy the text."
        ),
        Mismatch::Ambiguous(n) => anyhow!(
            "edit: `old_string` occurs {n} times in {shown}; include more surrounding lines to \
             make it unique, or set `replace_all` to true to replace every occurrence."
        ),
    })?;
    let diff = diff::unified(&text, &new_text, &shown, &shown);
    let (added, removed) = diff::line_counts(&text, &new_text);
    Ok(Plan {
        path,
        shown,
        new_text,
        count,
        diff,
        added,
        removed,
    })
}

/// `edit` as the tool table holds it.
pub(crate) struct EditTool;

impl Builtin for EditTool {
    type Input = Input;
    const NAME: &'static str = "edit";
    const ACCESS: Access = Access::EditsFiles;
    const SUMMARY: &'static str =
        "Change part of an existing file by replacing exact text; the way to modify files.";

    fn definition() -> Value {
        json!({
            "name": Self::NAME,
            "description": "Replace exact text in a file. `old_string` must match the file exactly \
                (including whitespace and indentation) and occur exactly once, unless `replace_all` \
                is true. Include enough surrounding lines to make it unique. Returns a unified diff \
                of the change.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File to edit, absolute or relative to the working directory."},
                    "old_string": {"type": "string", "description": "The exact text to replace (not empty)."},
                    "new_string": {"type": "string", "description": "The text to put in its place (must differ from old_string)."},
                    "replace_all": {"type": "boolean", "description": "Replace every occurrence instead of requiring exactly one (default false)."}
                },
                "required": ["path", "old_string", "new_string"]
            }
        })
    }

    fn parse(input: &Value, cwd: &Path) -> Result<Self::Input> {
        let args = Args::new(Self::NAME, input)?;
        let raw = args.string("path")?;
        let old = args.string("old_string")?.to_owned();
        let new = args.string("new_string")?.to_owned();
        let replace_all = args.opt_bool("replace_all")?.unwrap_or(false);
        let path = paths::resolve(cwd, raw).context("edit")?;
        let shown = paths::display(cwd, &path);
        Ok(Input {
            path,
            shown,
            old,
            new,
            replace_all,
        })
    }

    fn preview(i: Self::Input, _cwd: &Path, fs: &dyn FileSystem) -> Result<Preview> {
        let p = plan(fs, i)?;
        Ok(Preview {
            title: format!("Edit {} ({})", p.shown, replacements(p.count)),
            diff: Some(p.diff),
            paths: vec![p.path],
        })
    }

    async fn run(i: Self::Input, ctx: &ToolCtx) -> ToolOutput {
        let fs = ctx.env.fs.clone();
        let sandbox = ctx.env.sandbox.clone();
        let_write_finish(ctx, move || {
            let p = plan(fs.as_ref(), i)?;
            if let Some(sandbox) = &sandbox {
                sandbox
                    .check_write(&p.path)
                    .map_err(|why| anyhow!("edit: {why}"))?;
            }
            fs.write(&p.path, p.new_text.as_bytes())
                .map_err(|e| anyhow!("edit: cannot write {}: {e}", p.shown))?;
            Ok(format!(
                "Edited {}: {} (+{} -{} lines)\n\n{}",
                p.shown,
                replacements(p.count),
                p.added,
                p.removed,
                diff::capped(p.diff, MAX_RESULT_DIFF_BYTES)
            ))
        })
        .await
    }
}

fn replacements(n: usize) -> String {
    if n == 1 {
        "1 replacement".to_owned()
    } else {
        format!("{n} replacements")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_util::ctx;
    use crate::tools::Tool;
    use std::fs;

    /// Through the table's interface, as the turn runs it.
    async fn run(input: &Value, c: &ToolCtx) -> ToolOutput {
        EditTool.run(input, c).await
    }

    fn preview(input: &Value, cwd: &Path) -> Result<Preview> {
        EditTool.preview(input, cwd, &crate::tools::local::LocalFs)
    }

    #[test]
    fn matcher_unique_none_multiple_replace_all_empty() {
        assert_eq!(
            replace("a b c", "b", "B", false),
            Ok(("a B c".to_owned(), 1))
        );
        assert_eq!(replace("a b c", "x", "X", false), Err(Mismatch::NotFound));
        assert_eq!(
            replace("b b b", "b", "B", false),
            Err(Mismatch::Ambiguous(3))
        );
        assert_eq!(
            replace("b b b", "b", "B", true),
            Ok(("B B B".to_owned(), 3))
        );
        assert_eq!(replace("abc", "", "x", false), Err(Mismatch::Empty));
        assert_eq!(replace("abc", "b", "b", false), Err(Mismatch::Identical));
        // Occurrences are counted without overlap, as they are replaced.
        assert_eq!(replace("aaa", "aa", "b", false), Ok(("ba".to_owned(), 1)));
    }

    #[test]
    fn crlf_files_match_lf_old_string() {
        let (out, n) = replace("one\r\ntwo\r\nthree\r\n", "one\ntwo", "1\n2", false).unwrap();
        assert_eq!((out.as_str(), n), ("1\r\n2\r\nthree\r\n", 1));
    }

    #[tokio::test]
    async fn edits_the_file_and_returns_a_diff() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        fs::write(c.cwd.join("f.rs"), "fn a() {}\nfn b() {}\nfn c() {}\n").unwrap();
        let input = json!({"path": "f.rs", "old_string": "fn b() {}", "new_string": "fn b() {\n    todo!()\n}"});
        let p = preview(&input, &c.cwd).unwrap();
        assert_eq!(p.title, "Edit f.rs (1 replacement)");
        assert_eq!(p.paths, vec![c.cwd.join("f.rs")]);
        let out = run(&input, &c).await;
        assert_eq!(
            out,
            ToolOutput::ok(
                "Edited f.rs: 1 replacement (+3 -1 lines)\n\n--- f.rs\n+++ f.rs\n@@ -1,3 +1,5 @@\n \
                 fn a() {}\n-fn b() {}\n+fn b() {\n+    todo!()\n+}\n fn c() {}\n"
            )
        );
        assert_eq!(
            fs::read_to_string(c.cwd.join("f.rs")).unwrap(),
            "fn a() {}\nfn b() {\n    todo!()\n}\nfn c() {}\n"
        );
    }

    #[tokio::test]
    async fn errors_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        fs::write(c.cwd.join("f.txt"), "x\nx\n").unwrap();
        let run_err = |input: Value| {
            let c = &c;
            async move {
                let out = run(&input, c).await;
                assert!(out.is_error);
                let previewed = preview(&input, &c.cwd).map_err(|e| format!("{e:#}"));
                assert_eq!(previewed, Err(out.content.clone()));
                out.content
            }
        };
        let e = run_err(json!({"path": "f.txt", "old_string": "y", "new_string": "z"})).await;
        assert!(e.contains("was not found in f.txt"), "{e}");
        let e = run_err(json!({"path": "f.txt", "old_string": "x", "new_string": "z"})).await;
        assert!(
            e.contains("occurs 2 times") && e.contains("replace_all"),
            "{e}"
        );
        let e = run_err(json!({"path": "f.txt", "old_string": "", "new_string": "z"})).await;
        assert!(e.contains("`old_string` is empty"), "{e}");
        let e = run_err(json!({"path": "nope.txt", "old_string": "a", "new_string": "b"})).await;
        assert!(e.contains("does not exist; use write"), "{e}");
        let e = run_err(json!({"path": "f.txt", "old_string": "x"})).await;
        assert!(e.contains("`new_string`"), "{e}");
        assert_eq!(fs::read_to_string(c.cwd.join("f.txt")).unwrap(), "x\nx\n");

        let out = run(
            &json!({"path": "f.txt", "old_string": "x", "new_string": "z", "replace_all": true}),
            &c,
        )
        .await;
        assert!(
            out.content.starts_with("Edited f.txt: 2 replacements"),
            "{}",
            out.content
        );
        assert_eq!(fs::read_to_string(c.cwd.join("f.txt")).unwrap(), "z\nz\n");
    }
}
