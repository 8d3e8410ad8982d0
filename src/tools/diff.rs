//! Unified diffs for `write` and `edit`, built on the `similar` crate.
//!
//! The same diff goes to the permission prompt (through `preview`) and back
//! to the model in the tool result, so the user approves exactly what the
//! model is told it did.

use std::time::Duration;

use similar::{ChangeTag, TextDiff};

/// Myers' algorithm is quadratic in the worst case; past this it settles for
/// a correct but less minimal diff instead of stalling the tool.
const DIFF_TIMEOUT: Duration = Duration::from_millis(500);

/// Lines of unchanged context around each change, as `diff -u` uses.
const CONTEXT_LINES: usize = 3;

/// A unified diff with `---`/`+++` headers, empty when nothing changed.
/// `old_label` is `/dev/null` for a new file.
pub(crate) fn unified(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(old, new)
        .unified_diff()
        .context_radius(CONTEXT_LINES)
        .header(old_label, new_label)
        .to_string()
}

/// Lines added and removed, for a one-line summary.
pub(crate) fn line_counts(old: &str, new: &str) -> (usize, usize) {
    let diff = TextDiff::configure()
        .timeout(DIFF_TIMEOUT)
        .diff_lines(old, new);
    let mut added = 0;
    let mut removed = 0;
    for change in diff.iter_all_changes() {
        match change.tag() {
            ChangeTag::Insert => added += 1,
            ChangeTag::Delete => removed += 1,
            ChangeTag::Equal => {}
        }
    }
    (added, removed)
}

/// Shortens a diff for a tool result, cutting at a line boundary.
pub(crate) fn capped(diff: String, max_bytes: usize) -> String {
    if diff.len() <= max_bytes {
        return diff;
    }
    let mut cut = max_bytes;
    while !diff.is_char_boundary(cut) {
        cut -= 1;
    }
    let cut = diff[..cut].rfind('\n').map_or(cut, |i| i + 1);
    format!(
        "{}[diff truncated: {} more bytes not shown]\n",
        &diff[..cut],
        diff.len() - cut
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_diff_has_headers_hunks_and_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let d = unified(old, new, "x.txt", "x.txt");
        assert_eq!(
            d,
            "--- x.txt\n+++ x.txt\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
        assert_eq!(line_counts(old, new), (1, 1));
        assert_eq!(unified(old, old, "x", "x"), "");
    }

    #[test]
    fn new_file_diff_is_all_additions() {
        let d = unified("", "one\ntwo\n", "/dev/null", "n.txt");
        assert_eq!(d, "--- /dev/null\n+++ n.txt\n@@ -0,0 +1,2 @@\n+one\n+two\n");
    }

    #[test]
    fn missing_final_newline_is_marked() {
        let d = unified("a\n", "a\nb", "f", "f");
        assert!(d.contains("+b\n\\ No newline at end of file"), "{d}");
    }

    #[test]
    fn capped_cuts_at_a_line() {
        let d = "line1\nline2\nline3\n".to_owned();
        assert_eq!(capped(d.clone(), 100), d);
        assert_eq!(
            capped(d, 8),
            "line1\n[diff truncated: 12 more bytes not shown]\n"
        );
    }
}
