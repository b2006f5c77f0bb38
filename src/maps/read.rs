//! Reads a whole map per scrape into buffers that persist across scrapes,
//! so a steady-state scrape allocates nothing here. Four ways, cheapest
//! first, chosen per map when the reader is made (see `ReadPolicy`):
//! - an mmapable array is copied out of its shared mapping (`mapped.rs`),
//!   with no syscall;
//! - maps the kernel can iterate are read through a map-element iterator
//!   (`elem_iter.rs`), tens of kilobytes of entries per `read()`;
//! - otherwise `BPF_MAP_LOOKUP_BATCH`, thousands of entries per syscall;
//! - and where batching is refused, next-key plus lookup per entry.
//!
//! A method that fails at run time (an iterator refused after privileges
//! are dropped, an old kernel) falls back to the next one for good, so a
//! map is never left unread because a faster way was unavailable.

use std::os::fd::{AsFd, AsRawFd};

use libbpf_rs::{MapCore, MapHandle, MapType};

use crate::object::map_types;

use super::elem_iter::{ElemIter, IterError};
use super::mapped::{Mapped, BPF_F_MMAPABLE};
use super::walk::{walk_batch, Batch, Cursor, Shape, Split, Walk, SPLIT_BUFFERS, WALK_BUDGET};

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
    #[error("map {map}: the global variable ends at byte {end}, past its section's {size} bytes (or the map is not a section)")]
    View {
        map: String,
        end: usize,
        size: usize,
    },
}

/// Which read methods a reader may use. `Auto` maps mmapable arrays, and
/// for other maps times the iterator against batch lookups on the first
/// reads and keeps the faster: which one wins depends on the kernel, the
/// map type and its size, so it is measured where it runs. The others force
/// one method (with the usual fallbacks), for the byte-identity tests and
/// for operators working around a kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadPolicy {
    #[default]
    Auto,
    /// Map-element iterators wherever the map type has one.
    Iterator,
    /// `BPF_MAP_LOOKUP_BATCH`, as before iterators and mappings.
    Batch,
    /// Next key plus lookup per entry, as the reference exporter reads.
    Keys,
}

impl ReadPolicy {
    /// Every policy by its name, as `--maps.read-method` takes them.
    pub const ALL: [(&'static str, ReadPolicy); 4] = [
        ("auto", ReadPolicy::Auto),
        ("iterator", ReadPolicy::Iterator),
        ("batch", ReadPolicy::Batch),
        ("keys", ReadPolicy::Keys),
    ];

    pub fn names() -> [&'static str; 4] {
        Self::ALL.map(|(name, _)| name)
    }
}

impl std::str::FromStr for ReadPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, p)| *p)
            .ok_or_else(|| {
                format!(
                    "unknown map read method {s:?}: expected one of {}",
                    Self::names().join(", ")
                )
            })
    }
}

/// How this reader reads now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Mapped,
    Iterator,
    Batch,
    Keys,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Mapped => "mmap",
            Method::Iterator => "iterator",
            Method::Batch => "batch",
            Method::Keys => "keys",
        }
    }
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
    method: Method,
    iter: Option<ElemIter>,
    /// Why the iterator is not used, when it was wanted.
    iter_refused: Option<IterError>,
    /// While `Auto` compares the iterator with batch lookups.
    trial: Option<Trial>,
    mapped: Option<Mapped>,
    keys: Vec<u8>,
    values: Vec<u8>,
    /// The buffers of a shared read (`read_each`), kept between scrapes
    /// for their allocations.
    spare: Vec<Batch>,
    /// This scrape's shared read, begun ahead of `read_each` (`begin_walk`).
    walk: Option<std::sync::Arc<Walk>>,
    /// Whether `read_each` may read the next batch on a second thread
    /// while the caller consumes this one (`host::cpus::spare`).
    overlap: bool,
    /// Iterator output: key and value bytes interleaved.
    records: Vec<u8>,
    count: usize,
    /// Entries the buffers hold from the last read: all of them after
    /// `read`, none after `read_each`, which consumed them batch by batch.
    held: usize,
    /// Set when the reader serves a global variable of the section this
    /// map holds, rather than the map's own entries.
    view: Option<GlobalView>,
    /// A global's elements, cut out of its section at each read.
    values_view: Vec<u8>,
}

/// A global variable within its section's one value: `count` elements of
/// `elem` bytes from `offset`, served as entries keyed by their index
/// (a u32), so that everything that reads map entries reads it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalView {
    pub offset: usize,
    pub elem: usize,
    pub count: usize,
}

/// A value's size rounded up to 8 bytes: how the kernel lays out each
/// CPU's copy of a per-CPU value, and each element of an mmapable array.
pub(crate) fn padded(value_size: usize) -> usize {
    value_size.div_ceil(8) * 8
}

impl MapReader {
    /// A reader choosing its method by `ReadPolicy::Auto`.
    pub fn new(handle: MapHandle, name: &str) -> Self {
        Self::with_policy(handle, name, ReadPolicy::Auto)
    }

    pub fn with_policy(handle: MapHandle, name: &str, policy: ReadPolicy) -> Self {
        let map_type = handle.map_type();
        let per_cpu = map_types::of(map_type).is_some_and(|t| t.per_cpu);
        let key_size = handle.key_size() as usize;
        let value_size = handle.value_size() as usize;
        let ncpus = if per_cpu {
            crate::host::cpus::possible()
        } else {
            1
        };
        let stride = if per_cpu {
            padded(value_size) * ncpus
        } else {
            value_size
        };
        let max_entries = handle.max_entries() as usize;
        let mut reader = Self {
            max_entries,
            handle,
            name: name.to_string(),
            map_type,
            key_size,
            stride,
            value_size,
            ncpus,
            method: Method::Batch,
            iter: None,
            iter_refused: None,
            trial: None,
            mapped: None,
            keys: Vec::new(),
            values: Vec::new(),
            spare: Vec::new(),
            walk: None,
            overlap: crate::host::cpus::spare(),
            records: Vec::new(),
            count: 0,
            held: 0,
            view: None,
            values_view: Vec::new(),
        };
        reader.choose(policy);
        reader
    }

    /// A reader of one global variable in the section map `handle`: read
    /// from the section's mapping where the kernel maps it (no syscall),
    /// else by looking up its one value.
    pub fn global(handle: MapHandle, name: &str, view: GlobalView) -> Result<Self, ReadError> {
        let mut reader = Self::with_policy(handle, name, ReadPolicy::Auto);
        if reader.method == Method::Iterator {
            reader.iter = None;
            reader.trial = None;
            reader.method = Method::Batch;
        }
        let end = view.offset + view.elem * view.count;
        if end > reader.value_size || reader.max_entries != 1 {
            return Err(ReadError::View {
                map: name.to_string(),
                end,
                size: reader.value_size,
            });
        }
        reader.view = Some(view);
        Ok(reader)
    }

    fn choose(&mut self, policy: ReadPolicy) {
        self.choose_method(policy);
        log::debug!("map {}: read by {}", self.name, self.method.as_str());
    }

    fn choose_method(&mut self, policy: ReadPolicy) {
        match policy {
            ReadPolicy::Batch => return,
            ReadPolicy::Keys => {
                self.method = Method::Keys;
                return;
            }
            ReadPolicy::Auto | ReadPolicy::Iterator => {}
        }
        let fd = self.handle.as_fd();
        let flags = self.handle.info().map(|i| i.info.map_flags).unwrap_or(0);
        let kind = map_types::of(self.map_type);
        if policy == ReadPolicy::Auto
            && kind.is_some_and(|t| t.mmapable)
            && flags & BPF_F_MMAPABLE != 0
        {
            match Mapped::new(fd, self.value_size, self.max_entries) {
                Ok(m) => {
                    // Array keys are the indices, the same every scrape.
                    self.keys = (0..self.max_entries as u32)
                        .flat_map(u32::to_ne_bytes)
                        .collect();
                    self.mapped = Some(m);
                    self.method = Method::Mapped;
                    return;
                }
                Err(e) => log::debug!("map {}: mmap refused ({e}), reading by syscall", self.name),
            }
        }
        if kind.is_some_and(|t| t.iterable) {
            match ElemIter::attach(fd, self.key_size, self.stride) {
                Ok(it) => {
                    self.iter = Some(it);
                    self.method = Method::Iterator;
                    if policy == ReadPolicy::Auto {
                        self.trial = Some(Trial::default());
                    }
                }
                Err(e) => {
                    log::debug!("map {}: {e}; reading in batches", self.name);
                    self.iter_refused = Some(e);
                }
            }
        }
    }

    /// Lets go of snapshot buffers larger than `entries` entries, so that
    /// a map read whole once (read ahead before it grew) does not keep a
    /// whole-map buffer for good.
    pub fn trim(&mut self, entries: usize) {
        // A mapped array's keys are its indices, made once and kept.
        if self.method == Method::Mapped {
            return;
        }
        if self.keys.len() > entries * self.key_size.max(1) {
            self.keys = Vec::new();
            self.values = Vec::new();
            self.held = 0;
        }
    }

    /// Why a wanted iterator could not be attached (an older kernel, or
    /// one that refuses tracing programs), for the benches and tests.
    pub fn iterator_refused(&self) -> Option<&IterError> {
        self.iter_refused.as_ref()
    }

    /// The method the next read uses.
    pub fn method(&self) -> Method {
        self.method
    }

    pub fn map_type(&self) -> MapType {
        self.map_type
    }
    pub fn key_size(&self) -> usize {
        if self.view.is_some() {
            4
        } else {
            self.key_size
        }
    }
    pub fn value_size(&self) -> usize {
        self.view.map_or(self.value_size, |v| v.elem)
    }
    pub fn is_percpu(&self) -> bool {
        map_types::of(self.map_type).is_some_and(|t| t.per_cpu)
    }
    /// The map's capacity.
    pub fn max_entries(&self) -> u32 {
        match self.view {
            Some(v) => v.count as u32,
            None => self.handle.max_entries(),
        }
    }

    /// CPUs each value is repeated for (1 for shared maps).
    pub fn ncpus(&self) -> usize {
        self.ncpus
    }
    /// Bytes per CPU slot within an entry's value.
    pub fn cpu_stride(&self) -> usize {
        if let Some(v) = self.view {
            return v.elem;
        }
        if self.is_percpu() {
            padded(self.value_size)
        } else {
            self.value_size
        }
    }

    /// Entries from the last `read`, as (key, value) byte slices, in the
    /// order the kernel gave them.
    pub fn entries(&self) -> Entries<'_> {
        if let Some(v) = self.view {
            return Entries {
                keys: &self.records,
                key_step: 4,
                values: &self.values_view,
                value_step: v.elem,
                value_at: 0,
                key_len: 4,
                value_len: v.elem,
                next: 0,
                count: self.held,
            };
        }
        let (ks, vlen) = (self.key_size, self.stride);
        // Where keys and values sit: interleaved in the iterator's records,
        // or in two arrays, a mapped array's values at their padded size.
        let (keys, values, key_step, value_step, value_at) = match self.method {
            Method::Iterator => (&self.records, &self.records, ks + vlen, ks + vlen, ks),
            Method::Mapped => (&self.keys, &self.values, ks, padded(self.value_size), 0),
            Method::Batch | Method::Keys => (&self.keys, &self.values, ks, vlen, 0),
        };
        Entries {
            keys,
            key_step,
            values,
            value_step,
            value_at,
            key_len: ks,
            value_len: vlen,
            next: 0,
            count: self.held,
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Removes one entry from the map (the exporter forgetting a key whose
    /// entity is gone). Maps whose entries cannot be deleted (arrays)
    /// refuse with the kernel's errno.
    pub fn delete(&self, key: &[u8]) -> Result<(), ReadError> {
        if key.len() != self.key_size {
            return Err(self.io_error("delete", libc::EINVAL));
        }
        // SAFETY: the key holds key_size bytes (checked above) and outlives
        // the call; the fd is this reader's map.
        let rc = unsafe {
            libbpf_sys::bpf_map_delete_elem(self.handle.as_fd().as_raw_fd(), key.as_ptr().cast())
        };
        match rc {
            0 => Ok(()),
            rc => Err(self.io_error("delete", -rc)),
        }
    }

    /// Heap bytes of this reader's buffers (kept between reads for their
    /// allocation).
    pub fn buffer_bytes(&self) -> usize {
        self.keys.capacity()
            + self.values.capacity()
            + self
                .spare
                .iter()
                .map(|b| b.keys.capacity() + b.values.capacity())
                .sum::<usize>()
            + self.records.capacity()
            + self.values_view.capacity()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Snapshots the whole map into this reader's buffers.
    pub fn read(&mut self) -> Result<(), ReadError> {
        if let Some(walk) = self.walk.take() {
            walk.close();
        }
        let read = self.read_timed();
        self.held = self.count;
        if read.is_ok() {
            self.serve_view();
        }
        read
    }

    /// For a global: cuts its elements out of the section's value just
    /// read, keyed by index.
    fn serve_view(&mut self) {
        let Some(v) = self.view else {
            return;
        };
        let section = match self.method {
            Method::Iterator => self.records.get(self.key_size..),
            _ => Some(&self.values[..]),
        };
        let bytes = section
            .filter(|_| self.held > 0)
            .and_then(|b| b.get(v.offset..v.offset + v.elem * v.count));
        self.values_view.clear();
        match bytes {
            Some(b) => self.values_view.extend_from_slice(b),
            None => {
                self.held = 0;
                self.count = 0;
                return;
            }
        }
        if self.records.len() != 4 * v.count || self.method == Method::Iterator {
            self.records = (0..v.count as u32).flat_map(u32::to_ne_bytes).collect();
        }
        self.count = v.count;
        self.held = v.count;
    }

    /// Reads the map and hands every entry to `consume` with its position,
    /// as (key, value) bytes. Batch reads are consumed a batch at a time
    /// into buffers of one batch, so a million-entry map costs its
    /// decoding no more than a batch of memory, and each batch is still in
    /// cache when it is decoded. `entries()` is empty afterwards.
    pub fn read_each(
        &mut self,
        mut consume: impl FnMut(usize, &[u8], &[u8]),
    ) -> Result<(), ReadError> {
        // A map that took more than one batch last time is read a batch
        // ahead on a second thread: the scrape then costs about the larger
        // of reading and consuming, not their sum.
        if self.walk.is_some() || self.reads_ahead() {
            let read = self.read_batches_shared(&mut consume);
            self.held = 0;
            if let Some(done) = self.after_batches(read) {
                return done;
            }
        } else if self.batches_settled() {
            self.count = 0;
            let read = self.read_batches(Some(&mut consume));
            self.held = 0;
            // Refused batching is refused on the first call, before anything
            // was consumed; then every entry is read again below.
            if let Some(done) = self.after_batches(read) {
                return done;
            }
        }
        self.read()?;
        for (position, (key, value)) in self.entries().enumerate() {
            consume(position, key, value);
        }
        Ok(())
    }

    /// A shared read of this map from its start, with the reader's buffers.
    fn new_walk(&mut self) -> Option<Walk> {
        let shape = Shape {
            key_size: self.key_size,
            stride: self.stride,
            max_entries: self.max_entries,
            hash: self.map_type.is_hash_map(),
        };
        let chunk = walk_batch(self.count);
        // A walked map's entries live in the walk's buffers: the plain ones
        // would sit idle beside them, past the budget of two batches.
        self.keys = Vec::new();
        self.values = Vec::new();
        self.held = 0;
        // A split walk is read by both threads at once while the consumer
        // decodes a third batch, so it keeps four at least.
        let split = Split::of(&shape);
        let least = if split.is_some() { SPLIT_BUFFERS } else { 1 };
        let count = (WALK_BUDGET / chunk).max(least);
        let mut buffers = std::mem::take(&mut self.spare);
        buffers.resize_with(count, Batch::default);
        Walk::new(self.handle.as_fd(), shape, chunk, buffers, split)
    }

    /// Begins the next `read_each` as a shared read, when it would be one,
    /// for a helper thread of the caller's to start on at once (`Walk::
    /// help`): the helper can then read this map while the caller is still
    /// decoding the maps before it. The caller closes it if `read_each`
    /// never comes; a plain `read` closes it too.
    pub fn begin_walk(&mut self) -> Option<std::sync::Arc<Walk>> {
        if !self.reads_ahead() {
            return None;
        }
        let walk = std::sync::Arc::new(self.new_walk()?);
        self.walk = Some(walk.clone());
        Some(walk)
    }

    /// Whether a walk begun by `begin_walk` waits for `read_each`.
    pub fn walking(&self) -> bool {
        self.walk.is_some()
    }

    /// Whether the next `read_each` reads a batch ahead on a second thread:
    /// by batches, with a CPU to spare, and the last read took more than one.
    pub fn reads_ahead(&self) -> bool {
        self.overlap && self.batches_settled() && self.count > BATCH
    }

    /// Whether this map is read by batch lookups for good: chosen, not on
    /// trial, and not a view of a global.
    fn batches_settled(&self) -> bool {
        self.method == Method::Batch && self.trial.is_none() && self.view.is_none()
    }

    fn read_timed(&mut self) -> Result<(), ReadError> {
        let Some(mut trial) = self.trial.take() else {
            return self.read_once();
        };
        self.method = trial.next();
        let started = std::time::Instant::now();
        let read = self.read_once();
        if self.method == Method::Keys && self.iter.is_some() {
            // Batch lookups were refused: the iterator wins unopposed.
            self.method = Method::Iterator;
            return read;
        }
        if read.is_ok() && self.iter.is_some() {
            match trial.record(self.method, started.elapsed(), self.count) {
                Some(Method::Batch) => {
                    log::debug!("map {}: batch lookups beat the iterator here", self.name);
                    self.iter = None;
                    self.records = Vec::new();
                    self.method = Method::Batch;
                }
                Some(winner) => self.method = winner,
                None => self.trial = Some(trial),
            }
        }
        read
    }

    fn read_once(&mut self) -> Result<(), ReadError> {
        self.count = 0;
        if self.method == Method::Mapped {
            if let Some(m) = &self.mapped {
                m.copy_into(&mut self.values);
                self.count = self.max_entries;
                return Ok(());
            }
        }
        if self.method == Method::Iterator {
            if let Some(it) = &self.iter {
                match it.read_into(&mut self.records) {
                    Ok(bytes) => {
                        self.count = bytes / it.record();
                        return Ok(());
                    }
                    Err(e) => {
                        log::debug!("map {}: {e}; reading in batches from now on", self.name);
                        self.iter = None;
                        self.records = Vec::new();
                        self.method = Method::Batch;
                    }
                }
            }
        }
        if self.method == Method::Batch {
            let read = self.read_batches(None);
            if let Some(done) = self.after_batches(read) {
                return done;
            }
        }
        self.read_iterating()
    }

    /// What batch reads came to: `Some` when the read is over (done or
    /// failed), `None` when the kernel refuses batching and the reader has
    /// switched to key iteration for good.
    fn after_batches(&mut self, read: Result<(), BatchError>) -> Option<Result<(), ReadError>> {
        match read {
            Ok(()) => Some(Ok(())),
            Err(BatchError::Unsupported) => {
                log::debug!(
                    "map {}: batch lookups unsupported, iterating keys",
                    self.name
                );
                self.method = Method::Keys;
                self.count = 0;
                None
            }
            Err(BatchError::Io(err)) => Some(Err(ReadError::Syscall {
                map: self.name.clone(),
                op: "lookup batch",
                err,
            })),
        }
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

    /// Batch lookups. With `each`, every batch is handed over as soon as it
    /// is read and the next one overwrites it, so the buffers hold one
    /// batch, not the map; without, the buffers end up holding the map.
    fn read_batches(&mut self, mut each: Option<Consume<'_>>) -> Result<(), BatchError> {
        let mut cursor = Cursor::new(self.handle.as_fd().as_raw_fd(), self.key_size, self.stride);
        let mut chunk = first_chunk(self.max_entries);
        loop {
            let at = if each.is_some() { 0 } else { self.count };
            let (n, errno) = cursor.fetch(&mut self.keys, &mut self.values, at, &mut chunk);
            // Nothing of a refused call may be consumed.
            if cursor.first && refuses_batching(errno) {
                return Err(BatchError::Unsupported);
            }
            if let Some(f) = each.as_mut() {
                let (ks, vs) = (self.key_size, self.stride);
                for i in 0..n {
                    let key = &self.keys[(at + i) * ks..(at + i + 1) * ks];
                    let value = &self.values[(at + i) * vs..(at + i + 1) * vs];
                    f(self.count + i, key, value);
                }
            }
            self.count += n;
            self.held = at + n;
            match errno {
                0 => {}
                libc::ENOENT => return Ok(()),
                e => return Err(BatchError::Io(std::io::Error::from_raw_os_error(e))),
            }
            cursor.advance();
            // Arrays report ENOENT only on the call after the last index.
            if self.count >= self.max_entries && !self.map_type.is_hash_map() {
                return Ok(());
            }
        }
    }

    /// `read_batches` with `each`, shared with a helper thread: whichever
    /// of the two is free reads the next batch, so the helper reads ahead
    /// while `each` works, and the caller never waits for the helper to
    /// start (`walk.rs`). The end of the map and errors are acted on in
    /// order, as in `read_batches`.
    fn read_batches_shared(&mut self, each: Consume<'_>) -> Result<(), BatchError> {
        let walk = match self.walk.take() {
            // Handed to the helper already.
            Some(walk) => walk,
            None => {
                let Some(walk) = self.new_walk() else {
                    self.count = 0;
                    return self.read_batches(Some(each));
                };
                let walk = std::sync::Arc::new(walk);
                super::walk::hand_over(vec![walk.clone()]);
                walk
            }
        };
        let ended = walk.consume(each);
        self.count = ended.count;
        self.spare = ended.buffers;
        match ended.errno {
            0 | libc::ENOENT => Ok(()),
            e if ended.count == 0 && refuses_batching(e) => Err(BatchError::Unsupported),
            e => Err(BatchError::Io(std::io::Error::from_raw_os_error(e))),
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

/// Alternating iterator and batch reads, timed per entry, until each has
/// `TRIAL_READS` reads of a non-empty map; then the faster median wins.
#[derive(Default)]
struct Trial {
    iterator: Vec<f64>,
    batch: Vec<f64>,
}

const TRIAL_READS: usize = 3;

impl Trial {
    fn next(&self) -> Method {
        if self.iterator.len() <= self.batch.len() {
            Method::Iterator
        } else {
            Method::Batch
        }
    }

    /// Records one read; the winner once both have enough samples.
    fn record(
        &mut self,
        method: Method,
        took: std::time::Duration,
        entries: usize,
    ) -> Option<Method> {
        if entries == 0 {
            return None;
        }
        let per = took.as_secs_f64() / entries as f64;
        match method {
            Method::Iterator => self.iterator.push(per),
            Method::Batch => self.batch.push(per),
            Method::Mapped | Method::Keys => return None,
        }
        if self.iterator.len() < TRIAL_READS || self.batch.len() < TRIAL_READS {
            return None;
        }
        let median = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (i, b) = (median(&mut self.iterator), median(&mut self.batch));
        Some(if i <= b {
            Method::Iterator
        } else {
            Method::Batch
        })
    }
}

/// Takes each entry of a read as it comes: position, key, value.
pub(super) type Consume<'a> = &'a mut dyn FnMut(usize, &[u8], &[u8]);

/// The entries of one read, over whichever buffer layout the method left.
pub struct Entries<'a> {
    keys: &'a [u8],
    key_step: usize,
    values: &'a [u8],
    value_step: usize,
    value_at: usize,
    key_len: usize,
    value_len: usize,
    next: usize,
    count: usize,
}

impl<'a> Iterator for Entries<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.count {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let k = i * self.key_step;
        let v = i * self.value_step + self.value_at;
        let key = self.keys.get(k..k + self.key_len)?;
        let value = self.values.get(v..v + self.value_len)?;
        Some((key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.next.min(self.count);
        (0, Some(left))
    }
}

/// The kernel's own "not supported" (ENOTSUPP, not the POSIX EOPNOTSUPP),
/// which bpf() returns for a command a map type lacks: batch lookups on
/// the per-CPU arrays of 5.10, for one.
const ENOTSUPP: i32 = 524;

/// Errors with which the kernel refuses batch lookups on a map outright
/// (an old kernel, a map type without them, a policy), as opposed to a
/// read that failed partway.
/// Entries asked of the first batch lookup: a batch, or the whole of a
/// smaller map, and never fewer than `MIN_BATCH` (a hash bucket can hold
/// more entries than a small map's size; ENOSPC then doubles it).
fn first_chunk(max_entries: usize) -> usize {
    BATCH.min(max_entries.max(MIN_BATCH)).max(MIN_BATCH)
}

pub(super) fn refuses_batching(errno: i32) -> bool {
    matches!(
        errno,
        libc::EINVAL | libc::ENOTSUP | ENOTSUPP | libc::EPERM | libc::ENOSYS
    )
}

enum BatchError {
    Unsupported,
    Io(std::io::Error),
}

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

/// Whether map reads through `fd` are allowed to this thread as it is now.
/// Kernels before 6.5 with `kernel.unprivileged_bpf_disabled` refuse every
/// bpf() call without CAP_BPF, even on an fd the process holds; later ones
/// check only the fd. Used before capabilities are dropped for good.
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

#[cfg(test)]
mod trial_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn alternates_then_keeps_the_faster_median() {
        let mut t = Trial::default();
        let mut winner = None;
        // Iterator reads take 2 ms, batch reads 3 ms, one outlier each.
        let times = [(2, 30), (3, 3), (2, 2), (3, 1), (2, 2), (3, 3)];
        for (i, (it_ms, b_ms)) in times.into_iter().enumerate() {
            let method = t.next();
            let ms = if method == Method::Iterator {
                it_ms
            } else {
                b_ms
            };
            assert_eq!(
                method,
                if i % 2 == 0 {
                    Method::Iterator
                } else {
                    Method::Batch
                }
            );
            winner = t.record(method, Duration::from_millis(ms), 1000);
        }
        assert_eq!(winner, Some(Method::Iterator), "2 ms median beats 3 ms");
    }

    #[test]
    fn empty_reads_do_not_count() {
        let mut t = Trial::default();
        for _ in 0..10 {
            let m = t.next();
            assert_eq!(t.record(m, Duration::from_millis(1), 0), None);
        }
        assert_eq!(t.next(), Method::Iterator, "still at the first sample");
    }
}
