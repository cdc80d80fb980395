//! The `-f` arguments resolved into an ordered list of sources: files as
//! named, folders walked recursively for `*.yaml`, `*.yml` and `*.json`
//! (sorted by name, so reports are stable), and `-` for stdin. Every path is
//! checked for readability before anything is judged, so an unusable argument
//! stops the run (exit 2) before any report is written.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Where a source's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Stdin,
    File(PathBuf),
}

/// One input stream of manifests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub origin: Origin,
    /// The name reports use: the path as given (a folder's files joined to
    /// the folder as given), or `<stdin>`.
    pub display: String,
    /// The relative name under `--mutated-out DIR`: a folder's files relative
    /// to that folder, a named file by its file name, stdin as `stdin.yaml`.
    pub mirror: PathBuf,
}

/// How stdin is shown in reports.
pub const STDIN_DISPLAY: &str = "<stdin>";
/// Stdin's name under `--mutated-out DIR`.
pub const STDIN_MIRROR: &str = "stdin.yaml";

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read {}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: not a file or folder", path.display())]
    NotAFile { path: PathBuf },
    #[error("`-f -` (stdin) is given more than once")]
    StdinTwice,
}

/// Whether a file found while walking a folder is a manifest.
pub fn is_manifest_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["yaml", "yml", "json"].iter().any(|m| e.eq_ignore_ascii_case(m)))
}

/// Resolves the `-f` arguments in order. A file reached twice (named twice,
/// or named and inside a named folder) is checked once, where first reached.
pub fn resolve(args: &[PathBuf]) -> Result<Vec<Source>, InputError> {
    let mut sources = Vec::new();
    let mut seen_files: HashSet<PathBuf> = HashSet::new();
    let mut stdin = false;
    for arg in args {
        if arg.as_os_str() == "-" {
            if stdin {
                return Err(InputError::StdinTwice);
            }
            stdin = true;
            sources.push(Source {
                origin: Origin::Stdin,
                display: STDIN_DISPLAY.to_owned(),
                mirror: PathBuf::from(STDIN_MIRROR),
            });
            continue;
        }
        let meta = fs::metadata(arg).map_err(|source| InputError::Unreadable { path: arg.clone(), source })?;
        if meta.is_dir() {
            let mut visited = HashSet::new();
            walk(arg, Path::new(""), &mut visited, &mut |path, rel| {
                if seen_files.insert(canonical(&path)) {
                    sources.push(Source {
                        display: path.display().to_string(),
                        origin: Origin::File(path),
                        mirror: rel,
                    });
                }
            })?;
        } else if meta.is_file() {
            File::open(arg).map_err(|source| InputError::Unreadable { path: arg.clone(), source })?;
            if seen_files.insert(canonical(arg)) {
                let name = arg.file_name().map(PathBuf::from).unwrap_or_else(|| arg.clone());
                sources.push(Source {
                    origin: Origin::File(arg.clone()),
                    display: arg.display().to_string(),
                    mirror: name,
                });
            }
        } else {
            return Err(InputError::NotAFile { path: arg.clone() });
        }
    }
    Ok(sources)
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Walks `dir` depth-first in name order. Symbolic links are followed; a
/// folder already being walked (a link cycle) is not entered again.
fn walk(
    dir: &Path,
    rel: &Path,
    visited: &mut HashSet<PathBuf>,
    found: &mut dyn FnMut(PathBuf, PathBuf),
) -> Result<(), InputError> {
    if !visited.insert(canonical(dir)) {
        return Ok(());
    }
    let unreadable = |path: &Path| {
        let path = path.to_path_buf();
        move |source| InputError::Unreadable { path, source }
    };
    let mut entries: Vec<(std::ffi::OsString, PathBuf)> = fs::read_dir(dir)
        .map_err(unreadable(dir))?
        .map(|e| e.map(|e| (e.file_name(), e.path())))
        .collect::<Result<_, _>>()
        .map_err(unreadable(dir))?;
    entries.sort();
    for (name, path) in entries {
        let child_rel = rel.join(&name);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            // A dangling link inside a folder names nothing to check.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(source) => return Err(InputError::Unreadable { path, source }),
        };
        if meta.is_dir() {
            walk(&path, &child_rel, visited, found)?;
        } else if meta.is_file() && is_manifest_name(&path) {
            File::open(&path).map_err(unreadable(&path))?;
            found(path, child_rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_folders_in_order_and_filters_extensions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("b/nested")).unwrap();
        for f in ["z.yaml", "a.YML", "b/nested/c.json", "b/readme.md", "notes.txt", "b/x.yaml"] {
            fs::write(root.join(f), "a: 1\n").unwrap();
        }
        let sources = resolve(&[root.to_path_buf()]).unwrap();
        let mirrors: Vec<String> = sources.iter().map(|s| s.mirror.display().to_string()).collect();
        assert_eq!(mirrors, ["a.YML", "b/nested/c.json", "b/x.yaml", "z.yaml"]);
        assert_eq!(sources[0].display, root.join("a.YML").display().to_string());
    }

    #[test]
    fn named_file_keeps_any_extension_and_is_checked_once() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pod.txt");
        fs::write(&file, "a: 1\n").unwrap();
        let sources = resolve(&[file.clone(), dir.path().to_path_buf(), file.clone()]).unwrap();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].mirror, PathBuf::from("pod.txt"));
    }

    #[test]
    fn missing_path_and_double_stdin_fail() {
        let err = resolve(&[PathBuf::from("/nonexistent/manifests")]).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/manifests"), "{err}");
        let err = resolve(&[PathBuf::from("-"), PathBuf::from("-")]).unwrap_err();
        assert!(matches!(err, InputError::StdinTwice));
        let one = resolve(&[PathBuf::from("-")]).unwrap();
        assert_eq!((one[0].origin.clone(), one[0].mirror.clone()), (Origin::Stdin, PathBuf::from(STDIN_MIRROR)));
    }

    #[cfg(unix)]
    #[test]
    fn link_cycles_are_walked_once() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("a")).unwrap();
        fs::write(dir.path().join("a/p.yaml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink("..", dir.path().join("a/up")).unwrap();
        let sources = resolve(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(sources.len(), 1);
    }
}
