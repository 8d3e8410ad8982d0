//! Turning a path from the wire into the real location it names.
//!
//! Confinement checks compare real locations, so resolution has to see
//! through symlinks even for files that do not exist yet: `link/new.txt`,
//! where `link` points outside the project, must resolve outside too. The
//! walk goes component by component (as `realpath` does), following each
//! symlink it meets, and keeps the missing tail as written once a component
//! does not exist.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Result};

/// How many symlinks one resolution may follow before it gives up; the
/// same limit the kernel uses (`MAXSYMLINKS`), which also stops loops.
const MAX_SYMLINKS: usize = 40;

/// Resolve a wire path against cwd: relative -> cwd.join; then normalise
/// `..` lexically and resolve symlinks of the longest existing ancestor (so
/// a not-yet-existing file under a symlinked dir resolves to its real
/// location).
pub(crate) fn resolve(cwd: &Path, path: &str) -> Result<PathBuf> {
    if path.is_empty() {
        bail!("the path is empty");
    }
    if path.contains('\0') {
        bail!("the path contains a NUL byte");
    }
    let joined = cwd.join(path);
    if !joined.is_absolute() {
        bail!(
            "cannot resolve `{path}`: the working directory `{}` is not absolute",
            cwd.display()
        );
    }
    let mut pending = normalize(&joined);
    let mut followed = 0;
    'restart: loop {
        let mut real = PathBuf::from("/");
        let parts: Vec<OsString> = pending
            .components()
            .filter_map(|c| match c {
                Component::Normal(s) => Some(s.to_os_string()),
                _ => None,
            })
            .collect();
        for (i, part) in parts.iter().enumerate() {
            let candidate = real.join(part);
            match fs::symlink_metadata(&candidate) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    followed += 1;
                    if followed > MAX_SYMLINKS {
                        bail!("cannot resolve `{path}`: too many levels of symbolic links");
                    }
                    let target = fs::read_link(&candidate).map_err(|e| {
                        anyhow!("cannot read the link `{}`: {e}", candidate.display())
                    })?;
                    // `real` holds no symlinks, so the target's `..` can be
                    // applied lexically against it.
                    let mut next = real.join(target);
                    for rest in &parts[i + 1..] {
                        next.push(rest);
                    }
                    pending = normalize(&next);
                    continue 'restart;
                }
                Ok(_) => real = candidate,
                Err(e) if is_missing(&e) => {
                    // Nothing below a missing component can be a symlink.
                    for rest in &parts[i..] {
                        real.push(rest);
                    }
                    return Ok(real);
                }
                Err(e) => bail!("cannot resolve `{path}`: {e}"),
            }
        }
        return Ok(real);
    }
}

/// True when `path` (already resolved) is inside one of `roots` (canonical).
pub(crate) fn is_inside(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|root| path.starts_with(root))
}

/// How a resolved path is shown to the model: relative to cwd when inside
/// it (so it can be passed straight back), absolute otherwise.
pub(crate) fn display(cwd: &Path, path: &Path) -> String {
    match path.strip_prefix(cwd) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_owned(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Drops `.` and applies `..` without touching the disk; `..` at the root
/// stays at the root, as the kernel does.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A component that does not exist, or a "directory" that is really a file:
/// either way nothing further down exists, and the tool that opens the path
/// reports the real error.
fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(p: &Path) -> PathBuf {
        p.canonicalize().unwrap()
    }

    #[test]
    fn relative_paths_join_cwd_and_dotdot_is_lexical() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = canon(dir.path());
        fs::create_dir(cwd.join("src")).unwrap();
        assert_eq!(resolve(&cwd, "src/../a.txt").unwrap(), cwd.join("a.txt"));
        assert_eq!(resolve(&cwd, "./src/./x/y").unwrap(), cwd.join("src/x/y"));
        assert_eq!(resolve(&cwd, ".").unwrap(), cwd);
        let up = resolve(&cwd, "../outside.txt").unwrap();
        assert_eq!(up, cwd.parent().unwrap().join("outside.txt"));
        assert!(!is_inside(&up, std::slice::from_ref(&cwd)));
        assert_eq!(
            resolve(&cwd, "/etc/../tmp").unwrap(),
            canon(Path::new("/tmp"))
        );
        assert!(resolve(&cwd, "").is_err());
    }

    #[test]
    fn symlink_pointing_outside_resolves_outside() {
        let inside = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let cwd = canon(inside.path());
        let out = canon(outside.path());
        std::os::unix::fs::symlink(&out, cwd.join("link")).unwrap();
        let roots = vec![cwd.clone()];

        // Existing and not-yet-existing files under the link.
        fs::write(out.join("f.txt"), "x").unwrap();
        let f = resolve(&cwd, "link/f.txt").unwrap();
        assert_eq!(f, out.join("f.txt"));
        assert!(!is_inside(&f, &roots));
        let new = resolve(&cwd, "link/new/deeper.txt").unwrap();
        assert_eq!(new, out.join("new/deeper.txt"));
        assert!(!is_inside(&new, &roots));

        // A dangling link still resolves to where a write would land.
        std::os::unix::fs::symlink(out.join("missing.txt"), cwd.join("dangling")).unwrap();
        assert_eq!(resolve(&cwd, "dangling").unwrap(), out.join("missing.txt"));

        // A relative link inside the project stays inside.
        fs::create_dir(cwd.join("real")).unwrap();
        std::os::unix::fs::symlink("real", cwd.join("alias")).unwrap();
        let a = resolve(&cwd, "alias/x.txt").unwrap();
        assert_eq!(a, cwd.join("real/x.txt"));
        assert!(is_inside(&a, &roots));
    }

    #[test]
    fn symlink_loops_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cwd = canon(dir.path());
        std::os::unix::fs::symlink("b", cwd.join("a")).unwrap();
        std::os::unix::fs::symlink("a", cwd.join("b")).unwrap();
        let err = resolve(&cwd, "a/x").unwrap_err().to_string();
        assert!(err.contains("symbolic links"), "{err}");
    }

    #[test]
    fn is_inside_compares_whole_components() {
        let roots = vec![PathBuf::from("/work/proj")];
        assert!(is_inside(Path::new("/work/proj"), &roots));
        assert!(is_inside(Path::new("/work/proj/a/b"), &roots));
        assert!(!is_inside(Path::new("/work/project2/a"), &roots));
        assert!(!is_inside(Path::new("/work"), &roots));
    }

    #[test]
    fn display_is_relative_inside_cwd() {
        let cwd = Path::new("/p");
        assert_eq!(display(cwd, Path::new("/p/a/b.rs")), "a/b.rs");
        assert_eq!(display(cwd, Path::new("/p")), ".");
        assert_eq!(display(cwd, Path::new("/q/x")), "/q/x");
    }
}
