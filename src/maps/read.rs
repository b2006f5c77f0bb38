//! Reads a whole map per scrape with `BPF_MAP_LOOKUP_BATCH`: thousands of
//! entries per syscall instead of two syscalls per entry. Kernels or map
//! types that refuse batching fall back to key iteration. Buffers persist
//! across scrapes, so a steady-state scrape allocates nothing here.

use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::{MapCore, MapHandle, MapType};

/// Entries fetched per batch syscall. Hash maps return ENOSPC when one bucket
/// holds more entries than fit, so the count starts well above bucket sizes
/// and doubles on ENOSPC.
const BATCH: usize = 4096;
const MIN_BATCH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("reading map {map}: {op}: {err}")]
    Syscall {
        map: String,
        op: &'static str,
        err: std::io::Error,
    },
}

pub struct MapReader {
    handle: MapHandle,
    name: String,
    map_type: MapType,
    key_size: usize,
    /// Bytes one entry's value occupies in the buffer: for per-CPU maps the
    /// value rounded up to 8 bytes, once per possible CPU.
    stride: usize,
    value_size: usize,
    ncpus: usize,
    max_entries: usize,
    batch_supported: bool,
    keys: Vec<u8>,
    values: Vec<u8>,
    count: usize,
}

impl MapReader {
    pub fn new(handle: MapHandle, name: &str) -> Self {
        let map_type = handle.map_type();
        let key_size = handle.key_size() as usize;
        let value_size = handle.value_size() as usize;
        let ncpus = if map_type.is_percpu() {
            crate::host::cpus::possible()
        } else {
            1
        };
        let stride = if map_type.is_percpu() {
            value_size.div_ceil(8) * 8 * ncpus
        } else {
            value_size
        };
        Self {
            max_entries: handle.max_entries() as usize,
            handle,
            name: name.to_string(),
            map_type,
            key_size,
            stride,
            value_size,
            ncpus,
            batch_supported: true,
            keys: Vec::new(),
            values: Vec::new(),
            count: 0,
        }
    }

    pub fn map_type(&self) -> MapType {
        self.map_type
    }
    pub fn key_size(&self) -> usize {
        self.key_size
    }
    pub fn value_size(&self) -> usize {
        self.value_size
    }
    pub fn is_percpu(&self) -> bool {
        self.map_type.is_percpu()
    }
    /// The map's capacity.
    pub fn max_entries(&self) -> u32 {
        use libbpf_rs::MapCore;
        self.handle.max_entries()
    }

    /// CPUs each value is repeated for (1 for shared maps).
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }
    /// Bytes per CPU slot within an entry's value.
    pub fn cpu_stride(&self) -> usize {
        if self.is_percpu() {
            self.value_size.div_ceil(8) * 8
        } else {
            self.value_size
        }
    }

    /// Entries from the last `read`, as (key, value) byte slices.
    pub fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let ks = self.key_size.max(1);
        self.keys
            .chunks_exact(ks)
            .zip(self.values.chunks_exact(self.stride.max(1)))
            .take(self.count)
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Snapshots the whole map into this reader's buffers.
    pub fn read(&mut self) -> Result<(), ReadError> {
        self.count = 0;
        if self.batch_supported {
            match self.read_batched() {
                Ok(()) => return Ok(()),
                Err(BatchError::Unsupported) => {
                    log::debug!(
                        "map {}: batch lookups unsupported, iterating keys",
                        self.name
                    );
                    self.batch_supported = false;
                    self.count = 0;
                }
                Err(BatchError::Io(err)) => {
                    return Err(ReadError::Syscall {
                        map: self.name.clone(),
                        op: "lookup batch",
                        err,
                    })
                }
            }
        }
        self.read_iterating()
    }

    fn reserve(&mut self, entries: usize) {
        let need_k = entries * self.key_size;
        let need_v = entries * self.stride;
        if self.keys.len() < need_k {
            self.keys.resize(need_k, 0);
        }
        if self.values.len() < need_v {
            self.values.resize(need_v, 0);
        }
    }

    fn read_batched(&mut self) -> Result<(), BatchError> {
        let fd = self.handle.as_fd().as_raw_fd();
        let mut chunk = BATCH.min(self.max_entries.max(MIN_BATCH)).max(MIN_BATCH);
        // The batch cursor is opaque: u32 for hash maps, a key for others.
        let token_size = self.key_size.max(8);
        let mut in_token = vec![0u8; token_size];
        let mut out_token = vec![0u8; token_size];
        let mut first = true;
        let opts = libbpf_sys::bpf_map_batch_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
            elem_flags: 0,
            flags: 0,
        };
        loop {
            self.reserve(self.count + chunk);
            let mut n = chunk as u32;
            let keys = self.keys[self.count * self.key_size..].as_mut_ptr();
            let values = self.values[self.count * self.stride..].as_mut_ptr();
            let in_ptr = if first {
                std::ptr::null_mut()
            } else {
                in_token.as_mut_ptr()
            };
            // SAFETY: key/value buffers hold at least `chunk` entries past
            // `count` (reserve above); tokens hold at least key_size bytes.
            let rc = unsafe {
                libbpf_sys::bpf_map_lookup_batch(
                    fd,
                    in_ptr.cast(),
                    out_token.as_mut_ptr().cast(),
                    keys.cast(),
                    values.cast(),
                    &mut n,
                    &opts,
                )
            };
            let errno = if rc < 0 { -rc } else { 0 };
            self.count += n as usize;
            match errno {
                0 => {}
                libc::ENOENT => return Ok(()),
                libc::ENOSPC if n == 0 => {
                    chunk *= 2;
                    continue;
                }
                libc::EINVAL | libc::ENOTSUP | libc::EPERM | libc::ENOSYS if first && n == 0 => {
                    return Err(BatchError::Unsupported)
                }
                e => return Err(BatchError::Io(std::io::Error::from_raw_os_error(e))),
            }
            first = false;
            std::mem::swap(&mut in_token, &mut out_token);
            // Arrays report ENOENT only on the call after the last index.
            if self.count >= self.max_entries && !self.map_type.is_hash_map() {
                return Ok(());
            }
        }
    }

    fn read_iterating(&mut self) -> Result<(), ReadError> {
        let fd = self.handle.as_fd().as_raw_fd();
        let mut prev: Option<Vec<u8>> = None;
        let mut next = vec![0u8; self.key_size];
        loop {
            let prev_ptr = prev
                .as_mut()
                .map_or(std::ptr::null_mut(), |p| p.as_mut_ptr());
            // SAFETY: key buffers are key_size bytes.
            let rc = unsafe {
                libbpf_sys::bpf_map_get_next_key(fd, prev_ptr.cast(), next.as_mut_ptr().cast())
            };
            if rc < 0 {
                if -rc == libc::ENOENT {
                    return Ok(());
                }
                return Err(self.io_error("get next key", -rc));
            }
            self.reserve(self.count + 1);
            let k = self.count * self.key_size;
            let v = self.count * self.stride;
            self.keys[k..k + self.key_size].copy_from_slice(&next);
            // SAFETY: the value slot holds `stride` bytes, the kernel's size
            // for this map (per-CPU values included).
            let rc = unsafe {
                libbpf_sys::bpf_map_lookup_elem(
                    fd,
                    next.as_ptr().cast(),
                    self.values[v..].as_mut_ptr().cast(),
                )
            };
            if rc == 0 {
                self.count += 1;
            } else if -rc != libc::ENOENT {
                // ENOENT: deleted between the two calls; anything else is real.
                return Err(self.io_error("lookup", -rc));
            }
            prev = Some(next.clone());
        }
    }

    fn io_error(&self, op: &'static str, errno: i32) -> ReadError {
        ReadError::Syscall {
            map: self.name.clone(),
            op,
            err: std::io::Error::from_raw_os_error(errno),
        }
    }
}

enum BatchError {
    Unsupported,
    Io(std::io::Error),
}

/// Whether map reads through `fd` are allowed to this thread as it is now.
/// Kernels before 6.5 with `kernel.unprivileged_bpf_disabled` refuse every
/// bpf() call without CAP_BPF, even on an fd the process holds; later ones
/// check only the fd. Used before capabilities are dropped for good.
/// The native-endian unsigned integer of `width` (1, 2, 4 or 8) bytes at
/// `offset` of a map value, zero-extended; 0 when the value is too short.
/// The one place map value bytes become numbers.
pub fn read_uint(value: &[u8], offset: usize, width: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = value.get(offset..offset.saturating_add(width.min(8))) {
        if cfg!(target_endian = "little") {
            b[..src.len()].copy_from_slice(src);
        } else {
            b[8 - src.len()..].copy_from_slice(src);
        }
    }
    u64::from_ne_bytes(b)
}

pub fn can_read(fd: std::os::fd::BorrowedFd<'_>, key_size: usize) -> bool {
    let mut key = vec![0u8; key_size.max(1)];
    // SAFETY: `key` has room for one key of the map's size; a null current
    // key asks for the first one.
    let rc = unsafe {
        libbpf_sys::bpf_map_get_next_key(fd.as_raw_fd(), std::ptr::null(), key.as_mut_ptr().cast())
    };
    rc == 0 || rc == -libc::ENOENT
}

#[cfg(test)]
mod uint_tests {
    use super::*;

    #[test]
    fn reads_integers_of_each_width() {
        let bytes: Vec<u8> = (1u8..=16).collect();
        let v = read_uint(&bytes, 2, 2);
        assert_eq!(v, u64::from(u16::from_ne_bytes([3, 4])));
        assert_eq!(read_uint(&bytes, 15, 4), 0, "past the end reads nothing");
        assert_eq!(
            read_uint(&bytes, 8, 8),
            u64::from_ne_bytes([9, 10, 11, 12, 13, 14, 15, 16])
        );
    }
}
