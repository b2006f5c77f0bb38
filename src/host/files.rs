//! Reads the files an operator names (configs, BPF objects, web configs,
//! certificates). Only regular files are read, and never more than a cap:
//! a FIFO would block start-up forever and `/dev/zero` would be read until
//! memory ran out, and a daemon that reads whatever path it is given must
//! survive both.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Caps, named in the error so that an operator knows what was refused.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
pub const MAX_OBJECT_BYTES: u64 = 64 << 20;
pub const MAX_PEM_BYTES: u64 = 1 << 20;

#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    NotRegular(&'static str),
    TooLarge { cap: u64 },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::NotRegular(kind) => write!(f, "not a regular file (it is a {kind})"),
            Self::TooLarge { cap } => write!(f, "larger than the {} limit", human(*cap)),
        }
    }
}

impl std::error::Error for ReadError {}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} byte")
    }
}

/// The whole of `path`, which must be a regular file of at most `cap`
/// bytes. Symlinks are followed, as operators (and Kubernetes ConfigMaps)
/// use them.
/// A file's identity and version as `stat` gives them, following
/// symlinks: a different stamp means the file was written, replaced or
/// renamed over. One definition for every watcher of operator files (the
/// config directory, the web config, TLS certificates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    pub fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        })
    }

    /// Which file it is, without its version: for a directory, whose times
    /// change with every file created in it.
    pub fn identity(self) -> Self {
        Self {
            size: 0,
            mtime_ns: 0,
            ctime_ns: 0,
            ..self
        }
    }
}

pub fn read_regular(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    // O_NONBLOCK so that opening a FIFO with no writer returns at once
    // instead of waiting for one; the type check below then refuses it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(if kind.is_dir() {
            "directory"
        } else if kind.is_fifo() {
            "FIFO"
        } else if kind.is_char_device() {
            "character device"
        } else if kind.is_block_device() {
            "block device"
        } else if kind.is_socket() {
            "socket"
        } else {
            "special file"
        }));
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge { cap });
    }
    // The size can change between fstat and read (a file being written), so
    // the read itself is bounded too.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    read_capped(file, cap, &mut bytes)?;
    Ok(bytes)
}

fn read_capped(file: File, cap: u64, out: &mut Vec<u8>) -> Result<(), ReadError> {
    let mut limited = file.take(cap + 1);
    limited.read_to_end(out).map_err(ReadError::Io)?;
    if out.len() as u64 > cap {
        return Err(ReadError::TooLarge { cap });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_bounded_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("no NUL");
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular(&fifo, 10).expect_err("fifo");
        assert_eq!(e.to_string(), "not a regular file (it is a FIFO)");
        let e = read_regular(Path::new("/dev/zero"), 10).expect_err("device");
        assert_eq!(
            e.to_string(),
            "not a regular file (it is a character device)"
        );
        let e = read_regular(dir.path(), 10).expect_err("dir");
        assert_eq!(e.to_string(), "not a regular file (it is a directory)");

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 11]).expect("write");
        let e = read_regular(&big, 10).expect_err("too big");
        assert!(matches!(e, ReadError::TooLarge { cap: 10 }), "{e}");
        assert_eq!(
            read_regular(&big, 11).expect("at the cap").len(),
            11,
            "a file exactly at the cap is read"
        );
        let e = read_regular(&big, MAX_CONFIG_BYTES).map(|_| ());
        assert!(e.is_ok());
        assert_eq!(
            ReadError::TooLarge {
                cap: MAX_CONFIG_BYTES
            }
            .to_string(),
            "larger than the 1 MiB limit"
        );
    }
}
