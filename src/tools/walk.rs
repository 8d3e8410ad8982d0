//! The directory walk shared by `find` and `grep`: ripgrep's rules for what
//! to skip, made deterministic.
//!
//! `.gitignore`, `.ignore` and git's exclude files are honoured even when
//! the directory is not inside a git repository (`require_git(false)`): a
//! project that has a `.gitignore` but no `.git` yet still means it. Hidden
//! files are searched (an agent often needs `.github/` or `.env.example`),
//! but `.git` itself never is. Entries are visited in name order so the
//! same tree always gives the same output.

use std::path::Path;

use ignore::WalkBuilder;

pub(crate) fn builder(base: &Path) -> WalkBuilder {
    let mut b = WalkBuilder::new(base);
    b.hidden(false)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|entry| entry.file_name() != ".git")
        .sort_by_file_name(|a, b| a.cmp(b));
    b
}
