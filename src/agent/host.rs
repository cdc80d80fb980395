//! Bounded, non-blocking reads of files under the host root.
//!
//! Everything here treats the host's files as hostile: every read is one of
//! [`crate::regular_file`]'s (a size limit; a FIFO or a device refused before a single byte is
//! read), and symbolic links are resolved inside the host root, never in the agent's own
//! filesystem. These are blocking system calls: callers run them off the async
//! runtime (see `agent::observe_blocking`).

use std::io;
use std::path::{Component, Path, PathBuf};

pub use crate::regular_file::{read_regular, Bytes, ReadError, MAX_SYMLINK_HOPS};

/// Where a host path leads once its symbolic links are followed inside the host root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A path under the host root (which may or may not exist).
    Path(PathBuf),
    /// A link to `/dev/null`: systemd's way of masking a unit or a drop-in.
    DevNull,
}

/// Follows `host_path` (absolute, as the host sees it) inside `root`: every symbolic link met on
/// the way is read and re-rooted, so an absolute link target `/usr/lib/x` means
/// `<root>/usr/lib/x`, and `..` never climbs above the root.
pub fn resolve(root: &Path, host_path: &str) -> Result<Resolved, ReadError> {
    let mut pending: Vec<String> = components(host_path).into_iter().rev().collect();
    let mut host: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            host.pop();
            continue;
        }
        host.push(part);
        let on_disk = join(root, &host);
        match std::fs::symlink_metadata(&on_disk) {
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(ReadError::SymlinkLoop { path: host_path.to_owned() });
                }
                let target = std::fs::read_link(&on_disk).map_err(|e| ReadError::from_io(&on_disk, e))?;
                let target = target.to_string_lossy().into_owned();
                host.pop();
                if target.starts_with('/') {
                    host.clear();
                }
                if pending.is_empty()
                    && (target == "/dev/null" || (host.is_empty() && components(&target) == ["dev", "null"]))
                {
                    return Ok(Resolved::DevNull);
                }
                pending.extend(components(&target).into_iter().rev());
            }
            Ok(_) => {}
            // A missing component: the rest cannot be links either.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                host.extend(pending.drain(..).rev().filter(|p| p != ".."));
                return Ok(Resolved::Path(join(root, &host)));
            }
            Err(e) => return Err(ReadError::from_io(&on_disk, e)),
        }
    }
    Ok(Resolved::Path(join(root, &host)))
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_owned()),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in parts {
        p.push(part);
    }
    p
}

/// The names in a directory (at most `limit`; more is an error), sorted. A missing directory is
/// an empty list.
pub fn list_dir(dir: &Path, limit: usize) -> Result<Vec<String>, ReadError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ReadError::from_io(dir, e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| ReadError::from_io(dir, e))?;
        if names.len() == limit {
            return Err(ReadError::TooLarge { path: dir.display().to_string(), limit });
        }
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// The target of a symbolic link such as `/proc/<pid>/exe`, at most `limit` bytes long.
pub fn read_link(path: &Path, limit: usize) -> Result<String, ReadError> {
    let target = std::fs::read_link(path).map_err(|e| ReadError::from_io(path, e))?;
    let s = target.to_string_lossy().into_owned();
    if s.len() > limit {
        return Err(ReadError::TooLarge { path: path.display().to_string(), limit });
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pid");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_regular(&fifo, 64, false).unwrap_err();
        assert!(matches!(err, ReadError::NotRegular { what: "a FIFO", .. }), "{err}");
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"0123456789").unwrap();
        assert_eq!(read_regular(&f, 10, false).unwrap(), Bytes { data: b"0123456789".to_vec(), truncated: false });
        assert!(matches!(read_regular(&f, 9, false), Err(ReadError::TooLarge { limit: 9, .. })));
        assert_eq!(read_regular(&f, 4, true).unwrap(), Bytes { data: b"0123".to_vec(), truncated: true });
        assert!(read_regular(&dir.path().join("nope"), 4, true).unwrap_err().is_missing());
        assert!(matches!(read_regular(dir.path(), 4, true), Err(ReadError::NotRegular { what: "a directory", .. })));
    }

    #[test]
    fn links_resolve_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/systemd/system")).unwrap();
        std::fs::create_dir_all(root.join("etc/systemd/system")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        std::fs::write(root.join("usr/lib/systemd/system/a.service"), "x").unwrap();
        // An absolute target means the host's path, not the agent's.
        std::os::unix::fs::symlink("/lib/systemd/system/a.service", root.join("etc/systemd/system/a.service")).unwrap();
        std::os::unix::fs::symlink("/dev/null", root.join("etc/systemd/system/masked.service")).unwrap();
        std::os::unix::fs::symlink("../../../../../../etc/passwd", root.join("etc/systemd/system/escape")).unwrap();
        std::os::unix::fs::symlink("loop", root.join("etc/loop")).unwrap();
        let want = Resolved::Path(root.join("usr/lib/systemd/system/a.service"));
        assert_eq!(resolve(root, "/etc/systemd/system/a.service").unwrap(), want);
        assert_eq!(resolve(root, "/lib/systemd/system/a.service").unwrap(), want);
        assert_eq!(resolve(root, "/etc/systemd/system/masked.service").unwrap(), Resolved::DevNull);
        assert_eq!(resolve(root, "/etc/systemd/system/escape").unwrap(), Resolved::Path(root.join("etc/passwd")));
        assert!(matches!(resolve(root, "/etc/loop"), Err(ReadError::SymlinkLoop { .. })));
        assert_eq!(resolve(root, "/no/such/file").unwrap(), Resolved::Path(root.join("no/such/file")));
    }
}
