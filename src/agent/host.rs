//! Bounded, non-blocking reads of files under the host root.
//!
//! Everything here treats the host's files as hostile: every read has a size limit, a FIFO or a
//! device is refused before a single byte is read (the file is opened with `O_NONBLOCK` and
//! checked with `fstat`), and symbolic links are resolved inside the host root, never in the
//! agent's own filesystem. These are blocking system calls: callers run them off the async
//! runtime (see `agent::observe_blocking`).

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// How many symbolic links one path may go through before it is refused.
const MAX_SYMLINK_HOPS: usize = 16;

/// What a bounded read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bytes {
    pub data: Vec<u8>,
    /// The file held more than the limit; `data` is its first `limit` bytes.
    pub truncated: bool,
}

/// Why a read failed, in words fit for a log line and the evidence.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path} does not exist")]
    Missing { path: String },
    #[error("{path}: permission denied")]
    Denied { path: String },
    #[error("{path} is not a regular file ({what})")]
    NotRegular { path: String, what: &'static str },
    #[error("{path} is larger than {limit} bytes")]
    TooLarge { path: String, limit: usize },
    #[error("{path}: symbolic links nest deeper than {MAX_SYMLINK_HOPS}")]
    SymlinkLoop { path: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

impl ReadError {
    pub fn is_missing(&self) -> bool {
        matches!(self, ReadError::Missing { .. })
    }

    pub fn is_denied(&self) -> bool {
        matches!(self, ReadError::Denied { .. })
    }

    fn from_io(path: &Path, source: io::Error) -> ReadError {
        let path = path.display().to_string();
        match source.kind() {
            io::ErrorKind::NotFound => ReadError::Missing { path },
            io::ErrorKind::PermissionDenied => ReadError::Denied { path },
            _ => match source.raw_os_error() {
                // ESRCH: the process behind a /proc entry went away while it was being read.
                Some(libc::ESRCH) => ReadError::Missing { path },
                Some(libc::EPERM) => ReadError::Denied { path },
                Some(libc::ELOOP) => ReadError::SymlinkLoop { path },
                _ => ReadError::Io { path, source },
            },
        }
    }
}

/// Reads at most `limit` bytes of the regular file at `path`. With `allow_truncate` a longer
/// file yields its first `limit` bytes and `truncated`; without it, an error.
pub fn read_regular(path: &Path, limit: usize, allow_truncate: bool) -> Result<Bytes, ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| ReadError::from_io(path, e))?;
    let meta = file.metadata().map_err(|e| ReadError::from_io(path, e))?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular { path: path.display().to_string(), what: file_kind(&meta) });
    }
    read_capped(file, path, limit, allow_truncate)
}

fn read_capped(file: File, path: &Path, limit: usize, allow_truncate: bool) -> Result<Bytes, ReadError> {
    let mut data = Vec::with_capacity(limit.min(8192));
    // One byte over the limit tells a file of exactly `limit` bytes from a longer one.
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    file.take(cap).read_to_end(&mut data).map_err(|e| ReadError::from_io(path, e))?;
    if data.len() > limit {
        if !allow_truncate {
            return Err(ReadError::TooLarge { path: path.display().to_string(), limit });
        }
        data.truncate(limit);
        return Ok(Bytes { data, truncated: true });
    }
    Ok(Bytes { data, truncated: false })
}

fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

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
