//! The `-f` arguments resolved into an ordered list of sources: files as
//! named, folders walked recursively for `*.yaml`, `*.yml` and `*.json`
//! (sorted by name, so reports are stable), and `-` for stdin. A path that
//! cannot be read (missing, a symbolic link loop, a dangling link, a folder
//! that cannot be listed) becomes a [`Origin::Unreadable`] source of its own,
//! reported where it was found, and the run goes on, so every output format
//! still gets a whole report. Named paths that are not folders are read as
//! streams whatever they are (regular files, `/dev/stdin`, FIFOs); inside
//! folders only regular files are read.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// Where a source's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Stdin,
    File(PathBuf),
    /// A path that cannot be read, and why. `named`: given with `-f` (an
    /// unusable argument, exit 2), rather than found inside a folder.
    Unreadable {
        message: String,
        named: bool,
    },
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
    #[error("`-f -` (stdin) is given more than once")]
    StdinTwice,
}

/// Why a path cannot be read, in words.
fn describe(e: &io::Error) -> String {
    // ELOOP: too many levels of symbolic links.
    if e.raw_os_error() == Some(40) {
        return "a symbolic link loop".to_owned();
    }
    e.to_string()
}

fn unreadable(path: &Path, rel: PathBuf, message: String, named: bool) -> Source {
    Source {
        origin: Origin::Unreadable { message: format!("cannot read: {message}"), named },
        display: path.display().to_string(),
        mirror: rel,
    }
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
        let name = arg.file_name().map(PathBuf::from).unwrap_or_else(|| arg.clone());
        let meta = match fs::metadata(arg) {
            Ok(meta) => meta,
            Err(e) => {
                sources.push(unreadable(arg, name, describe(&e), true));
                continue;
            }
        };
        if meta.is_dir() {
            let mut visited = HashSet::new();
            walk(arg, Path::new(""), &mut visited, &mut |found| match found {
                Found::File(path, rel) => {
                    if seen_files.insert(canonical(&path)) {
                        sources.push(Source {
                            display: path.display().to_string(),
                            origin: Origin::File(path),
                            mirror: rel,
                        });
                    }
                }
                Found::Problem(path, rel, message) => sources.push(unreadable(&path, rel, message, false)),
            });
        } else if meta.is_file() {
            if let Err(e) = File::open(arg) {
                sources.push(unreadable(arg, name, describe(&e), true));
            } else if seen_files.insert(canonical(arg)) {
                sources.push(Source {
                    origin: Origin::File(arg.clone()),
                    display: arg.display().to_string(),
                    mirror: name,
                });
            }
        } else {
            // `/dev/stdin`, a FIFO, a character device: read as a stream when
            // its turn comes (opening a FIFO waits for its writer, as `cat`
            // does). Such a stream can be read once only.
            sources.push(Source {
                origin: Origin::File(arg.clone()),
                display: arg.display().to_string(),
                mirror: name,
            });
        }
    }
    Ok(sources)
}

/// What a folder walk finds.
enum Found {
    File(PathBuf, PathBuf),
    /// A path that cannot be read, its name under the folder, and why.
    Problem(PathBuf, PathBuf, String),
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Walks `dir` depth-first in name order. Symbolic links are followed; a
/// folder already being walked (a link cycle) is not entered again. What
/// cannot be read is handed over as a problem and the walk goes on: a link
/// loop anywhere, a dangling link named like a manifest, a folder that
/// cannot be listed, a manifest that cannot be opened or is not a regular file.
fn walk(dir: &Path, rel: &Path, visited: &mut HashSet<PathBuf>, found: &mut dyn FnMut(Found)) {
    if !visited.insert(canonical(dir)) {
        return;
    }
    let listed: io::Result<Vec<(std::ffi::OsString, PathBuf)>> =
        fs::read_dir(dir).and_then(|d| d.map(|e| e.map(|e| (e.file_name(), e.path()))).collect());
    let mut entries = match listed {
        Ok(entries) => entries,
        Err(e) => return found(Found::Problem(dir.to_path_buf(), rel.to_path_buf(), describe(&e))),
    };
    entries.sort();
    for (name, path) in entries {
        let child_rel = rel.join(&name);
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                // A dangling link: worth saying only when it names a manifest.
                if is_manifest_name(&path) {
                    let target = fs::read_link(&path).map(|t| t.display().to_string()).unwrap_or_default();
                    found(Found::Problem(path, child_rel, format!("a dangling symbolic link (to {target:?})")));
                }
                continue;
            }
            Err(e) => {
                found(Found::Problem(path, child_rel, describe(&e)));
                continue;
            }
        };
        if meta.is_dir() {
            walk(&path, &child_rel, visited, found);
        } else if is_manifest_name(&path) {
            if !meta.is_file() {
                found(Found::Problem(
                    path,
                    child_rel,
                    "not a regular file (inside a folder only files are read)".into(),
                ));
            } else if let Err(e) = File::open(&path) {
                found(Found::Problem(path, child_rel, describe(&e)));
            } else {
                found(Found::File(path, child_rel));
            }
        }
    }
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
        let missing = resolve(&[PathBuf::from("/nonexistent/manifests")]).unwrap();
        assert!(
            matches!(&missing[0].origin, Origin::Unreadable { named: true, message } if message.contains("No such file")),
            "{missing:?}"
        );
        assert_eq!(missing[0].display, "/nonexistent/manifests");
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

    #[cfg(unix)]
    #[test]
    fn link_loops_and_dangling_links_are_reported_per_path_and_the_walk_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/deep")).unwrap();
        fs::write(root.join("a/deep/p.yaml"), "a: 1\n").unwrap();
        fs::write(root.join("z.yaml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink("loop1", root.join("a/loop2")).unwrap();
        std::os::unix::fs::symlink("loop2", root.join("a/loop1")).unwrap();
        std::os::unix::fs::symlink("gone.yaml", root.join("a/x.yaml")).unwrap();
        std::os::unix::fs::symlink("gone", root.join("a/notes")).unwrap();
        let sources = resolve(&[root.to_path_buf()]).unwrap();
        let got: Vec<(String, Option<String>)> = sources
            .iter()
            .map(|s| {
                let problem = match &s.origin {
                    Origin::Unreadable { message, named: false } => Some(message.clone()),
                    Origin::Unreadable { named: true, .. } => panic!("found in a folder, not named"),
                    _ => None,
                };
                (s.mirror.display().to_string(), problem)
            })
            .collect();
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a/deep/p.yaml", "a/loop1", "a/loop2", "a/x.yaml", "z.yaml"], "{got:?}");
        assert!(got[1].1.as_deref().unwrap().contains("loop"), "{got:?}");
        assert!(got[3].1.as_deref().unwrap().contains("dangling"), "{got:?}");
        assert!(got[0].1.is_none() && got[4].1.is_none());
    }

    #[cfg(unix)]
    #[test]
    fn named_streams_that_are_not_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(status.success());
        let sources = resolve(&[fifo.clone(), PathBuf::from("/dev/null")]).unwrap();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[0].origin, Origin::File(fifo));
        assert_eq!(sources[1].origin, Origin::File(PathBuf::from("/dev/null")));
    }
}
