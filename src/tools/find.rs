//! `find {pattern, path?}`: files whose path matches a glob, skipping what
//! `.gitignore` ignores.
//!
//! The glob is matched against each path relative to the search directory,
//! with `*` stopping at `/` (shell rules), so `*.rs` means the top level and
//! `**/*.rs` means everywhere. Results are sorted and shown relative to the
//! working directory, ready to pass to `read`.
//!
//! It walks the local disk directly, not the session's `FileSystem`
//! (`env.rs`): an editor's file system cannot list directories.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use globset::{GlobBuilder, GlobMatcher};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::args::Args;
use super::fsutil::open_error;
use super::tool::Builtin;
use super::{blocking, paths, walk, Access, FileSystem, Preview, ToolCtx, ToolOutput};

const MAX_RESULTS: usize = 1000;

/// A call's input, checked.
pub(crate) struct Input {
    pattern: String,
    glob: GlobMatcher,
    base: PathBuf,
    shown: String,
}

/// `find` as the tool table holds it.
pub(crate) struct FindTool;

impl Builtin for FindTool {
    type Input = Input;
    const NAME: &'static str = "find";
    const ACCESS: Access = Access::ReadOnly;
    const SUMMARY: &'static str = "Find files by glob pattern (`**/*.rs`), honouring .gitignore.";

    fn definition() -> Value {
        json!({
            "name": Self::NAME,
            "description": "Find files by glob pattern, e.g. `**/*.rs` or `src/*.toml`. The pattern is \
                matched against paths relative to `path` (default: the working directory); `*` does not \
                cross `/`, `**` does. Files ignored by .gitignore are skipped. Directories are shown \
                with a trailing /. Returns at most 1000 sorted paths.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Glob pattern, e.g. **/*.rs, src/**/mod.rs, *.{json,toml}."},
                    "path": {"type": "string", "description": "Directory to search in (default \".\")."}
                },
                "required": ["pattern"]
            }
        })
    }

    fn parse(input: &Value, cwd: &Path) -> Result<Self::Input> {
        let args = Args::new(Self::NAME, input)?;
        let raw_pattern = args.string("pattern")?;
        let raw_path = args.opt_string("path")?.unwrap_or(".");
        let pattern = raw_pattern.trim_start_matches("./");
        if pattern.is_empty() {
            bail!("find: `pattern` is empty; give a glob such as **/*.rs");
        }
        if pattern.starts_with('/') {
            bail!(
                "find: `pattern` is matched relative to `path`; put the directory in `path` and give \
                 a relative glob such as **/*.rs (got `{raw_pattern}`)"
            );
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| anyhow!("find: invalid glob `{raw_pattern}`: {e}"))?
            .compile_matcher();
        let base = paths::resolve(cwd, raw_path).context("find")?;
        let shown = paths::display(cwd, &base);
        Ok(Input {
            pattern: pattern.to_owned(),
            glob,
            base,
            shown,
        })
    }

    fn preview(i: Self::Input, _cwd: &Path, _fs: &dyn FileSystem) -> Result<Preview> {
        Ok(Preview {
            title: format!("Find {} in {}", i.pattern, i.shown),
            diff: None,
            paths: vec![i.base],
        })
    }

    async fn run(i: Self::Input, ctx: &ToolCtx) -> ToolOutput {
        let cwd = ctx.cwd.clone();
        blocking(ctx, move |cancel| find(&i, &cwd, &cancel)).await
    }
}

fn find(i: &Input, cwd: &Path, cancel: &CancellationToken) -> Result<String> {
    let meta = std::fs::metadata(&i.base).map_err(|e| open_error(e, &i.shown))?;
    if !meta.is_dir() {
        bail!("find: {} is not a directory", i.shown);
    }
    let mut found = Vec::new();
    let mut capped = false;
    for entry in walk::builder(&i.base).build() {
        if cancel.is_cancelled() {
            bail!("aborted");
        }
        let entry = match entry {
            Ok(e) => e,
            // An unreadable subdirectory should not hide everything else.
            Err(e) => {
                tracing::debug!(error = %e, "find: skipping an entry");
                continue;
            }
        };
        let Ok(rel) = entry.path().strip_prefix(&i.base) else {
            continue;
        };
        if rel.as_os_str().is_empty() || !i.glob.is_match(rel) {
            continue;
        }
        if found.len() == MAX_RESULTS {
            capped = true;
            break;
        }
        let mut shown = paths::display(cwd, entry.path());
        if entry.file_type().is_some_and(|t| t.is_dir()) {
            shown.push('/');
        }
        found.push(shown);
    }
    if found.is_empty() {
        let mut msg = format!("No files match {} in {}", i.pattern, i.shown);
        if !i.pattern.contains('/') {
            // `*` stops at `/`, which surprises anyone used to `find -name`.
            msg.push_str(&format!(
                " (use **/{} to search subdirectories too)",
                i.pattern
            ));
        }
        return Ok(msg);
    }
    found.sort();
    let mut out = found.join("\n");
    out.push('\n');
    if capped {
        out.push_str(&format!(
            "\n[Stopped at {MAX_RESULTS} results. Use a narrower pattern or path to see the rest.]"
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::test_util::ctx;
    use crate::tools::Tool;
    use std::fs;

    /// Through the table's interface, as the turn runs it.
    async fn run(input: &Value, c: &ToolCtx) -> ToolOutput {
        FindTool.run(input, c).await
    }

    fn tree(root: &Path) {
        for f in [
            "Cargo.toml",
            "src/lib.rs",
            "src/tools/mod.rs",
            "src/x.toml",
            "target/out.rs",
            "notes.log",
        ] {
            let p = root.join(f);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "").unwrap();
        }
        fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
    }

    #[tokio::test]
    async fn globs_relative_to_path_and_respects_gitignore() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        tree(&c.cwd);
        let out = run(&json!({"pattern": "**/*.rs"}), &c).await;
        assert_eq!(out, ToolOutput::ok("src/lib.rs\nsrc/tools/mod.rs\n"));
        let out = run(&json!({"pattern": "src/*.toml"}), &c).await;
        assert_eq!(out, ToolOutput::ok("src/x.toml\n"));
        let out = run(&json!({"pattern": "*.rs", "path": "src"}), &c).await;
        assert_eq!(out, ToolOutput::ok("src/lib.rs\n"));
        let out = run(&json!({"pattern": "*"}), &c).await;
        assert_eq!(out, ToolOutput::ok(".gitignore\nCargo.toml\nsrc/\n"));
        let out = run(&json!({"pattern": "*.log"}), &c).await;
        assert_eq!(
            out,
            ToolOutput::ok("No files match *.log in . (use **/*.log to search subdirectories too)")
        );
    }

    #[tokio::test]
    async fn bad_globs_and_caps() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let out = run(&json!({"pattern": "a[b"}), &c).await;
        assert!(
            out.is_error && out.content.contains("invalid glob"),
            "{}",
            out.content
        );
        let out = run(&json!({}), &c).await;
        assert!(out.is_error && out.content.contains("`pattern`"));
        for i in 0..1002 {
            fs::write(c.cwd.join(format!("f{i:04}.txt")), "").unwrap();
        }
        let out = run(&json!({"pattern": "*.txt"}), &c).await;
        assert_eq!(
            out.content.lines().filter(|l| l.ends_with(".txt")).count(),
            1000
        );
        assert!(out.content.ends_with(
            "[Stopped at 1000 results. Use a narrower pattern or path to see the rest.]"
        ));
    }
}
