//! Reads an array map created with `BPF_F_MMAPABLE` from a shared mapping of
//! its values: no syscall per scrape, only a copy of the value area. The
//! copy is made word by word with volatile loads, because programs keep
//! writing the array while it is read; a snapshot in our own buffer is what
//! the rest of the scrape decodes, exactly as from a batch read.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// `BPF_F_MMAPABLE` from the kernel's uapi.
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

pub struct Mapped {
    base: NonNull<u64>,
    /// Bytes mapped (the value area rounded up to whole pages).
    mapped: usize,
    /// Bytes of values: max_entries × value size rounded up to 8.
    values: usize,
}

// SAFETY: the mapping is read-only shared memory owned by this value; it
// is only read (through volatile loads), from whichever thread holds it.
unsafe impl Send for Mapped {}
// SAFETY: as above: no method mutates through the pointer.
unsafe impl Sync for Mapped {}

impl Mapped {
    /// Maps the value area of an mmapable array of `max_entries` values of
    /// `value_size` bytes.
    pub fn new(fd: BorrowedFd<'_>, value_size: usize, max_entries: usize) -> std::io::Result<Self> {
        let stride = super::read::padded(value_size);
        let values = stride
            .checked_mul(max_entries)
            .filter(|&v| v > 0)
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: a plain getter.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .ok()
            .filter(|&p| p > 0)
            .unwrap_or(4096);
        let len = values.div_ceil(page) * page;
        // SAFETY: maps `len` bytes of the map's value area read-only and
        // shared; the kernel checks `len` against the map's size and fails
        // with an error rather than mapping past it.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u64>())
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EFAULT))?;
        Ok(Self {
            base,
            mapped: len,
            values,
        })
    }

    /// Bytes `copy_into` writes.
    pub fn len(&self) -> usize {
        self.values
    }

    pub fn is_empty(&self) -> bool {
        self.values == 0
    }

    /// Copies every value into `out` (resized to `len()`), in index order,
    /// each value taking its size rounded up to 8 bytes.
    pub fn copy_into(&self, out: &mut Vec<u8>) {
        out.resize(self.values, 0);
        for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
            // SAFETY: `values` is a multiple of 8 within the `mapped` bytes
            // mapped at `base`, which is page-aligned, so word i is in
            // bounds and aligned. Volatile, because BPF programs write the
            // array concurrently and the compiler must not assume it stable.
            let word = unsafe { self.base.as_ptr().add(i).read_volatile() };
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the region `new` mapped, once.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.mapped);
        }
    }
}
