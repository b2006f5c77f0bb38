//! Reads a map through a BPF map-element iterator (`iter/bpf_map_elem`,
//! kernel 5.9 and later): the exporter's own program (`bpf/reader/`) writes
//! each entry's key and value bytes into the iterator's seq_file, and one
//! `read()` returns tens of kilobytes of them. Against `BPF_MAP_LOOKUP_BATCH`
//! this saves the kernel's per-entry copy into its batch buffer and the
//! per-call bucket walk restarts; `benches/scaling.rs` prints what that is
//! worth per map type, and `MapReader` uses it only where it wins.
//!
//! One program is loaded per distinct (key size, value size) pair, because
//! the verifier must see both sizes as constants and the kernel refuses to
//! attach a program whose accesses exceed the map's; maps of equal sizes
//! share it, each through its own link.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use libbpf_rs::{Iter, Link, Object, ObjectBuilder};

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/reader_map_dump.bpf.o"));
const PROGRAM: &str = "dump_entries";
/// Bytes asked of each `read()`. The kernel fills at most its seq_file
/// buffer (8 pages) per call, so more than that buys nothing.
const CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IterError {
    #[error("map-element iterator: {op}: {source}")]
    Setup {
        op: &'static str,
        #[source]
        source: libbpf_rs::Error,
    },
    #[error("map-element iterator: read: {0}")]
    Read(#[source] std::io::Error),
    #[error("map-element iterator: {got} bytes is not a whole number of {record}-byte entries")]
    Torn { got: usize, record: usize },
}

impl IterError {
    /// A setup step that failed with a plain errno rather than a libbpf error.
    fn errno(op: &'static str, errno: i32) -> Self {
        IterError::Setup {
            op,
            source: libbpf_rs::Error::from(std::io::Error::from_raw_os_error(errno)),
        }
    }
}

/// Loaded dumper programs by (key size, value bytes), shared while any
/// link holds them, so a removed config's sizes do not keep a program.
type Loaded = Mutex<BTreeMap<(u32, u32), Weak<Object>>>;
static LOADED: Loaded = Mutex::new(BTreeMap::new());

/// The errno of a refused load, once one was refused for good: the
/// kernel's answer to a program it does not allow or understand does not
/// change with the map, so later maps do not ask again.
static REFUSED: AtomicI32 = AtomicI32::new(0);

/// Whether a load failing with `errno` would fail the same way every time:
/// tracing programs not allowed (EPERM, EACCES), not understood (EINVAL,
/// E2BIG, ENOTSUP, ENOSYS). Running short of memory or being interrupted
/// is not remembered, so the next map asks again.
fn refused_for_good(errno: i32) -> bool {
    matches!(
        errno,
        libc::EPERM | libc::EACCES | libc::EINVAL | libc::E2BIG | libc::EOPNOTSUPP | libc::ENOSYS
    ) || errno == ENOTSUPP
}

/// The kernel's internal "not supported" (524), which BPF calls can leak.
const ENOTSUPP: i32 = 524;

fn program_for(key_size: u32, value_bytes: u32) -> Result<Arc<Object>, IterError> {
    let refused = REFUSED.load(Ordering::Relaxed);
    if refused != 0 {
        return Err(IterError::errno("load", refused));
    }
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(obj) = loaded.get(&(key_size, value_bytes)).and_then(Weak::upgrade) {
        return Ok(obj);
    }
    let setup = |op| move |source| IterError::Setup { op, source };
    let mut builder = ObjectBuilder::default();
    // Named, so that libbpf's messages and its map names say what it is
    // rather than a heap address.
    let mut open = builder
        .name("map_reader")
        .map_err(setup("name"))?
        .open_memory(OBJECT)
        .map_err(setup("open"))?;
    let rodata = open
        .maps_mut()
        .find(|m| m.name().to_string_lossy().ends_with(".rodata"))
        .and_then(|mut m| {
            let data = m.initial_value_mut()?;
            // The two `const volatile __u32` sizes, in declaration order.
            if data.len() < 8 {
                return None;
            }
            data[0..4].copy_from_slice(&key_size.to_ne_bytes());
            data[4..8].copy_from_slice(&value_bytes.to_ne_bytes());
            Some(())
        });
    if rodata.is_none() {
        return Err(IterError::errno("set sizes", libc::EINVAL));
    }
    // libbpf's complaints about a refused load are this module's to
    // report (once, at debug level), not warnings for every map.
    let (loaded_obj, _log) = crate::object::libbpf_log::capture_quietly(|| open.load());
    let obj = match loaded_obj {
        Ok(obj) => Arc::new(obj),
        Err(source) => {
            // libbpf leaves the kernel's errno behind a failed load.
            let errno = std::io::Error::last_os_error()
                .raw_os_error()
                .filter(|&e| e > 0)
                .unwrap_or(libc::EINVAL);
            if refused_for_good(errno) {
                REFUSED.store(errno, Ordering::Relaxed);
            }
            return Err(IterError::Setup { op: "load", source });
        }
    };
    loaded.retain(|_, w| w.strong_count() > 0);
    loaded.insert((key_size, value_bytes), Arc::downgrade(&obj));
    Ok(obj)
}

/// A dumper attached to one map.
pub struct ElemIter {
    link: Link,
    record: usize,
    _program: Arc<Object>,
}

impl ElemIter {
    /// Attaches a dumper to `map`. `value_bytes` is what one entry's value
    /// occupies: for per-CPU maps every possible CPU's value, each padded
    /// to 8 bytes.
    pub fn attach(
        map: BorrowedFd<'_>,
        key_size: usize,
        value_bytes: usize,
    ) -> Result<Self, IterError> {
        let (k, v) = (
            u32::try_from(key_size).unwrap_or(u32::MAX),
            u32::try_from(value_bytes).unwrap_or(u32::MAX),
        );
        let program = program_for(k, v)?;
        let link = program
            .progs_mut()
            .find(|p| p.name() == PROGRAM)
            .ok_or_else(|| IterError::errno("find program", libc::ENOENT))?
            .attach_iter(map)
            .map_err(|source| IterError::Setup {
                op: "attach",
                source,
            })?;
        Ok(Self {
            link,
            record: key_size + value_bytes,
            _program: program,
        })
    }

    /// Fills `buf` from its start with every entry as key bytes followed
    /// by value bytes, `record()` bytes per entry, and returns the bytes
    /// used. `buf` keeps its length between reads (grown, never shrunk or
    /// re-zeroed), so a steady-state read allocates and clears nothing.
    pub fn read_into(&self, buf: &mut Vec<u8>) -> Result<usize, IterError> {
        let mut iter = Iter::new(&self.link).map_err(|source| IterError::Setup {
            op: "create",
            source,
        })?;
        let mut used = 0;
        loop {
            if buf.len() - used < CHUNK {
                let grown = (buf.len() * 2).max(used + CHUNK);
                buf.resize(grown, 0);
            }
            match iter.read(&mut buf[used..]) {
                Ok(0) => break,
                Ok(n) => used += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(IterError::Read(e)),
            }
        }
        if used % self.record != 0 {
            return Err(IterError::Torn {
                got: used,
                record: self.record,
            });
        }
        Ok(used)
    }

    /// Bytes per entry in what `read_into` writes.
    pub fn record(&self) -> usize {
        self.record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_that_would_repeat_are_remembered() {
        for errno in [
            libc::EPERM,
            libc::EACCES,
            libc::EINVAL,
            libc::E2BIG,
            libc::EOPNOTSUPP,
            libc::ENOSYS,
            ENOTSUPP,
        ] {
            assert!(refused_for_good(errno), "errno {errno}");
        }
        for errno in [
            libc::ENOMEM,
            libc::EAGAIN,
            libc::EINTR,
            libc::EBUSY,
            libc::EMFILE,
        ] {
            assert!(!refused_for_good(errno), "errno {errno}");
        }
    }
}
