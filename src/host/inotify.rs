//! The one inotify wrapper of the process, shared by the cgroup monitor and
//! the config directory watcher, so that the raw event format is parsed in
//! one place.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

pub struct Inotify {
    fd: OwnedFd,
}

/// One event as the kernel reported it; `name` is empty for events on the
/// watched path itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub wd: i32,
    pub mask: u32,
    pub name: Vec<u8>,
}

impl Inotify {
    pub fn new() -> std::io::Result<Self> {
        // SAFETY: no pointers; returns a new fd or -1 with errno set.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just returned to us and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd })
    }

    /// Adds (or updates) a watch; returns its descriptor.
    pub fn add(&self, path: &Path, mask: u32) -> std::io::Result<i32> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: c is a valid NUL-terminated path for the call.
        let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c.as_ptr(), mask) };
        if wd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(wd)
    }

    /// Removes a watch. The kernel drops a watch by itself only when its
    /// inode is freed, and a watch pins its inode: on kernfs (cgroup2) a
    /// removed directory's watch would stay, and count against
    /// `fs.inotify.max_user_watches`, until it is removed here.
    pub fn remove(&self, wd: i32) -> std::io::Result<()> {
        // SAFETY: no pointers; an unknown wd gives EINVAL.
        if unsafe { libc::inotify_rm_watch(self.fd.as_raw_fd(), wd) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` for events and reads what is queued; an empty
    /// list when nothing came or the wait was interrupted.
    pub fn read(&self, buf: &mut [u8], timeout: Duration) -> std::io::Result<Vec<Event>> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: pfd is one valid pollfd for the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ready < 0 {
            let e = std::io::Error::last_os_error();
            return if e.kind() == std::io::ErrorKind::Interrupted {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
        if ready == 0 {
            return Ok(Vec::new());
        }
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            ) {
                Ok(Vec::new())
            } else {
                Err(e)
            };
        }
        Ok(parse_events(&buf[..n as usize]))
    }
}

pub fn parse_events(mut bytes: &[u8]) -> Vec<Event> {
    let mut out = Vec::new();
    // struct inotify_event { int wd; u32 mask; u32 cookie; u32 len; char name[len]; }
    while bytes.len() >= 16 {
        let word = |i: usize| [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        let wd = i32::from_ne_bytes(word(0));
        let mask = u32::from_ne_bytes(word(4));
        let len = u32::from_ne_bytes(word(12)) as usize;
        let Some(name) = bytes.get(16..16 + len) else {
            break;
        };
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        out.push(Event {
            wd,
            mask,
            name: name[..end].to_vec(),
        });
        bytes = &bytes[16 + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inotify_records() {
        let mut raw = Vec::new();
        for (wd, mask, name) in [
            (1i32, libc::IN_CREATE | libc::IN_ISDIR, "a"),
            (2, libc::IN_IGNORED, ""),
        ] {
            let padded = if name.is_empty() { 0 } else { 16 };
            raw.extend_from_slice(&wd.to_ne_bytes());
            raw.extend_from_slice(&mask.to_ne_bytes());
            raw.extend_from_slice(&0u32.to_ne_bytes());
            raw.extend_from_slice(&(padded as u32).to_ne_bytes());
            let mut n = name.as_bytes().to_vec();
            n.resize(padded, 0);
            raw.extend_from_slice(&n);
        }
        raw.extend_from_slice(&[1, 2, 3]); // a torn tail is ignored
        let events = parse_events(&raw);
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].wd, events[0].name.as_slice()),
            (1, b"a".as_slice())
        );
        assert_eq!((events[1].wd, events[1].mask), (2, libc::IN_IGNORED));
    }
}
