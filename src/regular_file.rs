//! Bounded, non-blocking reads of regular files: the one reader for files
//! this program does not control (the serving certificate pair, a node's
//! `/proc` and unit files).
//!
//! Every read has a size limit, and a FIFO, socket, device or directory in
//! the file's place is refused before a single byte is read: the file is
//! opened with `O_NONBLOCK` (opening a FIFO would otherwise wait for a
//! writer) and checked with `fstat`. These are blocking system calls: callers
//! run them off the async runtime.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// How many symbolic links one path may go through before it is refused.
pub const MAX_SYMLINK_HOPS: usize = 16;

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

    pub fn from_io(path: &Path, source: io::Error) -> ReadError {
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
    // A file already known to be too long is refused without reading it (files under /proc
    // report size 0, so the capped read below still decides for them).
    if !allow_truncate && meta.len() > u64::try_from(limit).unwrap_or(u64::MAX) {
        return Err(ReadError::TooLarge { path: path.display().to_string(), limit });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_truncation_and_non_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_regular(&path, 10, false).unwrap(), Bytes { data: b"0123456789".to_vec(), truncated: false });
        assert!(matches!(read_regular(&path, 9, false), Err(ReadError::TooLarge { limit: 9, .. })));
        assert_eq!(read_regular(&path, 4, true).unwrap(), Bytes { data: b"0123".to_vec(), truncated: true });
        assert!(read_regular(&dir.path().join("none"), 10, false).unwrap_err().is_missing());
        let err = read_regular(dir.path(), 10, false).unwrap_err().to_string();
        assert!(err.contains("not a regular file (a directory)"), "{err}");
        let err = read_regular(Path::new("/dev/zero"), 10, true).unwrap_err().to_string();
        assert!(err.contains("a character device"), "{err}");
    }
}
