//! `grep {pattern, path?, glob?, ignore_case?}`: regex search over files,
//! built from ripgrep's own crates.
//!
//! The walk skips what `.gitignore` ignores (see [`super::walk`]), binary
//! files are skipped at their first NUL byte, and `glob` filters files the
//! way `rg -g` does (a glob without `/` matches the file name at any depth).
//! Output is `path:line:text`, with paths relative to the working directory.
//!
//! It walks the local disk directly, not the session's `FileSystem`
//! (`env.rs`): an editor's file system cannot list directories.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::overrides::OverrideBuilder;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::args::Args;
use super::fsutil::open_error;
use super::tool::Builtin;
use super::{blocking, paths, walk, Access, FileSystem, Preview, ToolCtx, ToolOutput};

const MAX_MATCHES: usize = 500;
const MAX_OUTPUT_BYTES: usize = 50 * 1024;
/// A matching line of minified code should not use up the whole budget.
const MAX_LINE_CHARS: usize = 500;

/// A call's input, checked.
pub(crate) struct Input {
    pattern: String,
    matcher: RegexMatcher,
    glob: Option<String>,
    base: PathBuf,
    shown: String,
}

/// `grep` as the tool table holds it.
pub(crate) struct GrepTool;

impl Builtin for GrepTool {
    type Input = Input;
    const NAME: &'static str = "grep";
    const ACCESS: Access = Access::ReadOnly;
    const SUMMARY: &'static str =
        "Search file contents with a regular expression, to locate code before reading it.";

    fn definition() -> Value {
        json!({
            "name": Self::NAME,
            "description": "Search file contents with a regular expression (Rust regex syntax, like \
                ripgrep). Files ignored by .gitignore and binary files are skipped. Prints \
                `path:line:text` for each matching line, at most 500 matches.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression to search for."},
                    "path": {"type": "string", "description": "File or directory to search (default \".\")."},
                    "glob": {"type": "string", "description": "Only search files matching this glob, e.g. *.rs or src/**/*.ts."},
                    "ignore_case": {"type": "boolean", "description": "Match case-insensitively (default false)."}
                },
                "required": ["pattern"]
            }
        })
    }

    fn parse(input: &Value, cwd: &Path) -> Result<Self::Input> {
        let args = Args::new(Self::NAME, input)?;
        let pattern = args.string("pattern")?;
        if pattern.is_empty() {
            bail!("grep: `pattern` is empty");
        }
        let raw_path = args.opt_string("path")?.unwrap_or(".");
        let glob = args.opt_string("glob")?.filter(|g| !g.is_empty());
        let ignore_case = args.opt_bool("ignore_case")?.unwrap_or(false);
        // Matching line by line needs a matcher that never spans lines; a
        // pattern with a literal `\n` is refused here with a clear message.
        let matcher = RegexMatcherBuilder::new()
            .case_insensitive(ignore_case)
            .line_terminator(Some(b'\n'))
            .build(pattern)
            .map_err(|e| anyhow!("grep: invalid regex in `pattern`: {e}"))?;
        let base = paths::resolve(cwd, raw_path).context("grep")?;
        let shown = paths::display(cwd, &base);
        Ok(Input {
            pattern: pattern.to_owned(),
            matcher,
            glob: glob.map(str::to_owned),
            base,
            shown,
        })
    }

    fn preview(i: Self::Input, _cwd: &Path, _fs: &dyn FileSystem) -> Result<Preview> {
        Ok(Preview {
            title: format!("Search for /{}/ in {}", i.pattern, i.shown),
            diff: None,
            paths: vec![i.base],
        })
    }

    async fn run(i: Self::Input, ctx: &ToolCtx) -> ToolOutput {
        let cwd = ctx.cwd.clone();
        blocking(ctx, move |cancel| search(&i, &cwd, &cancel)).await
    }
}

fn search(i: &Input, cwd: &Path, cancel: &CancellationToken) -> Result<String> {
    std::fs::metadata(&i.base).map_err(|e| open_error(e, &i.shown))?;
    let mut walker = walk::builder(&i.base);
    if let Some(glob) = &i.glob {
        let mut ob = OverrideBuilder::new(&i.base);
        ob.add(glob)
            .map_err(|e| anyhow!("grep: invalid `glob` {glob}: {e}"))?;
        let overrides = ob
            .build()
            .map_err(|e| anyhow!("grep: invalid `glob` {glob}: {e}"))?;
        walker.overrides(overrides);
    }
    let mut searcher = SearcherBuilder::new()
        .binary_detection(BinaryDetection::quit(0))
        .line_number(true)
        .build();

    let mut out = String::new();
    let mut matches = 0;
    let mut full = false;
    for entry in walker.build() {
        if full || cancel.is_cancelled() {
            break;
        }
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(error = %e, "grep: skipping an entry");
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let shown = paths::display(cwd, entry.path());
        let sink = Lossy(|line_no, line| {
            if matches >= MAX_MATCHES || out.len() >= MAX_OUTPUT_BYTES {
                full = true;
                return Ok(false);
            }
            let text = line.trim_end_matches(['\n', '\r']);
            let text = match text.char_indices().nth(MAX_LINE_CHARS) {
                Some((at, _)) => format!("{}…", &text[..at]),
                None => text.to_owned(),
            };
            out.push_str(&format!("{shown}:{line_no}:{text}\n"));
            matches += 1;
            Ok(!cancel.is_cancelled())
        });
        if let Err(e) = searcher.search_path(&i.matcher, entry.path(), sink) {
            tracing::debug!(error = %e, path = %shown, "grep: cannot search a file");
        }
    }
    if cancel.is_cancelled() {
        bail!("aborted");
    }
    if matches == 0 {
        return Ok(format!("No matches for /{}/ in {}", i.pattern, i.shown));
    }
    if full {
        out.push_str(&format!(
            "\n[Stopped after {matches} matches ({} KB). Narrow the pattern, path or glob to see the rest.]",
            out.len() / 1024
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
        GrepTool.run(input, c).await
    }

    fn setup(root: &Path) {
        fs::create_dir_all(root.join("src")).unwrap();
        fs::write(
            root.join("src/a.rs"),
            "fn main() {}\n// TODO fix\nlet todo = 1;\n",
        )
        .unwrap();
        fs::write(root.join("notes.md"), "TODO: docs\n").unwrap();
        fs::write(root.join("debug.log"), "TODO ignored\n").unwrap();
        fs::write(root.join("blob.bin"), b"TODO\0binary").unwrap();
        fs::write(root.join(".gitignore"), "*.log\n").unwrap();
    }

    #[tokio::test]
    async fn finds_matches_skipping_ignored_and_binary() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        setup(&c.cwd);
        let out = run(&json!({"pattern": "TODO"}), &c).await;
        assert_eq!(
            out,
            ToolOutput::ok("notes.md:1:TODO: docs\nsrc/a.rs:2:// TODO fix\n")
        );
        let out = run(
            &json!({"pattern": "todo", "ignore_case": true, "glob": "*.rs"}),
            &c,
        )
        .await;
        assert_eq!(
            out,
            ToolOutput::ok("src/a.rs:2:// TODO fix\nsrc/a.rs:3:let todo = 1;\n")
        );
        let out = run(&json!({"pattern": "fn \\w+", "path": "src/a.rs"}), &c).await;
        assert_eq!(out, ToolOutput::ok("src/a.rs:1:fn main() {}\n"));
        let out = run(&json!({"pattern": "nothing here"}), &c).await;
        assert_eq!(out, ToolOutput::ok("No matches for /nothing here/ in ."));
    }

    #[tokio::test]
    async fn invalid_regex_and_caps() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _rx) = ctx(dir.path());
        let out = run(&json!({"pattern": "a(b"}), &c).await;
        assert!(
            out.is_error && out.content.starts_with("grep: invalid regex in `pattern`"),
            "{}",
            out.content
        );
        fs::write(c.cwd.join("many.txt"), "hit\n".repeat(600)).unwrap();
        let out = run(&json!({"pattern": "hit"}), &c).await;
        assert_eq!(
            out.content
                .lines()
                .filter(|l| l.starts_with("many.txt:"))
                .count(),
            500
        );
        assert!(
            out.content.contains("[Stopped after 500 matches"),
            "{}",
            out.content
        );
    }
}
