//! Turns one map's entries into samples on each scrape.

use crate::decode::chain::Row;
use crate::decode::RowDecoder;
use crate::maps::MapReader;

use super::bits::Bits;
use super::buckets::BucketLayout;
use super::cache::{CachedRow, KeyCache};
use super::collector::{Collected, Collector, MapStats, MetricId};
use super::layout::ValueRead;
use super::sink::{expand_values, join_values, render_labels, Kind, Sink};
use crate::maps::read::read_uint;

pub enum MetricKind {
    /// With an optional multiplier for the exported value.
    Counter(Option<f64>),
    Gauge(Option<f64>),
    Histogram(BucketLayout),
}

impl MetricKind {
    fn filter_bucket(&self, bucket_in_key: bool) -> Option<&BucketLayout> {
        match self {
            MetricKind::Histogram(b) if bucket_in_key => Some(b),
            _ => None,
        }
    }
}

pub struct MetricCollector {
    id: MetricId,
    pub kind: MetricKind,
    pub reader: MapReader,
    rows: RowDecoder,
    label_names: Vec<String>,
    cache: KeyCache,
    /// Per-CPU map with a `cpu` label: one sample per CPU instead of a sum.
    split_cpus: bool,
    /// Per-slot accumulators, kept between scrapes for their allocation.
    acc: Vec<u64>,
    /// Slots given a value in this scrape.
    seen: Bits,
    cpu_names: Vec<String>,
    /// What each value holds for this metric.
    value: ValueRead,
    limit: SeriesLimit,
    /// Scrape-time problems are logged at most once per WARN_EVERY.
    warned: Warned,
    /// The overflow row's label text, and its accumulators.
    overflow_labels: String,
    overflow_acc: Vec<u64>,
    /// A whole-map read made ahead of `collect` (`prefetch`), which it
    /// then decodes instead of reading.
    prefetched: Option<Result<(), crate::maps::ReadError>>,
    /// Rows whose every value is 0 are left out (`omit_zero`).
    omit_zero: bool,
    /// Keys whose rows name something gone are deleted from the map once
    /// this scrape has exported them (`delete_gone`).
    delete_gone: bool,
    /// This scrape's such keys, end to end.
    gone_keys: Vec<u8>,
    /// The decoders' `changes()` at the last scrape.
    changes_seen: u64,
    /// Label sets naming nothing known to exist, watched for silence
    /// (`stale_after`).
    stale: Stale,
    /// Whether rows are written as the map is read; settled on the first
    /// scrape, once the builder options are set.
    direct: std::sync::OnceLock<bool>,
}

/// Label sets whose rows name nothing known to exist now (an unknown or
/// gone value), each with a fingerprint of its entries and since when
/// that has held. One that has held for `after` is stale: left out of the
/// scrape, its entries deleted. Only such label sets are tracked, so the
/// cost is nothing while everything named exists.
#[derive(Default)]
struct Stale {
    after: Option<std::time::Duration>,
    /// By label text: slots are reused, texts are not.
    quiet: std::collections::HashMap<String, (u64, std::time::Instant)>,
    /// This scrape's absent entries: their slots, fingerprints and keys.
    slots: Vec<u32>,
    fingerprints: Vec<u64>,
    keys: Vec<u8>,
    /// Keys to delete after this scrape, end to end.
    due: Vec<u8>,
}

impl Stale {
    /// Forgets what a scrape that ended early noted.
    fn begin(&mut self) {
        self.slots.clear();
        self.fingerprints.clear();
        self.keys.clear();
    }

    /// Notes an entry of an absent label set.
    fn note(&mut self, slot: u32, key: &[u8], value: &[u8]) {
        use std::hash::{BuildHasher, Hasher};
        let mut h = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
        h.write(key);
        h.write(value);
        self.slots.push(slot);
        self.fingerprints.push(h.finish());
        self.keys.extend_from_slice(key);
    }

    /// After a read: which noted slots are stale now. Their keys go to
    /// `due`; label sets no longer absent are forgotten.
    fn settle(&mut self, key_size: usize, text: impl Fn(u32) -> String) -> Vec<u32> {
        let Some(after) = self.after else {
            return Vec::new();
        };
        let mut by_slot: std::collections::BTreeMap<u32, u64> = Default::default();
        for (slot, f) in self.slots.iter().zip(&self.fingerprints) {
            let sum = by_slot.entry(*slot).or_default();
            *sum = sum.wrapping_add(*f);
        }
        let now = std::time::Instant::now();
        let mut kept = std::collections::HashMap::with_capacity(by_slot.len());
        let mut stale = Vec::new();
        for (slot, fingerprint) in by_slot {
            let label = text(slot);
            let since = match self.quiet.remove(&label) {
                Some((f, since)) if f == fingerprint => since,
                _ => now,
            };
            if now.duration_since(since) >= after {
                stale.push(slot);
            } else {
                kept.insert(label, (fingerprint, since));
            }
        }
        self.quiet = kept;
        // `stale` is in slot order, as `by_slot` was.
        for (i, slot) in self.slots.iter().enumerate() {
            if stale.binary_search(slot).is_ok() {
                self.due
                    .extend_from_slice(&self.keys[i * key_size..(i + 1) * key_size]);
            }
        }
        self.slots.clear();
        self.fingerprints.clear();
        self.keys.clear();
        stale
    }
}

/// Maps whose last read came to at most this many bytes are read ahead
/// whole; larger ones are read by `collect` a batch at a time, so their
/// buffers stay one batch (per-CPU values on a large host are kilobytes
/// per entry, so the bound is in bytes, not entries).
const PREFETCH_BYTES: usize = 2 << 20;

/// At most `max_series` label sets per scrape; the rest are folded into
/// one row whose every label reads [`OVERFLOW_VALUE`], or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesLimit {
    pub max_series: usize,
    pub fold: bool,
}

impl Default for SeriesLimit {
    fn default() -> Self {
        Self {
            max_series: usize::MAX,
            fold: true,
        }
    }
}

/// A rate limit for scrape-time warnings: a map that fails to decode fails
/// every scrape, and one line a minute says so as well as a thousand.
#[derive(Default)]
struct Warned {
    at: Option<std::time::Instant>,
    suppressed: u64,
}

const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Warned {
    /// Whether to log now; `n` problems happened.
    fn due(&mut self, n: u64) -> Option<u64> {
        self.suppressed += n;
        if self.at.is_some_and(|t| t.elapsed() < WARN_EVERY) {
            return None;
        }
        self.at = Some(std::time::Instant::now());
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The value every label of the overflow series has.
pub const OVERFLOW_VALUE: &str = "__overflow__";

impl MetricCollector {
    pub fn new(
        id: MetricId,
        kind: MetricKind,
        reader: MapReader,
        rows: RowDecoder,
        split_cpus: bool,
        cache_max_idle: u32,
    ) -> Self {
        let label_names = rows.label_names().map(str::to_string).collect();
        let pure = rows.pure();
        let cpu_names = (0..reader.ncpus()).map(|c| c.to_string()).collect();
        Self {
            id,
            kind,
            reader,
            rows,
            label_names,
            cache: KeyCache::new(cache_max_idle).pure(pure),
            split_cpus,
            acc: Vec::new(),
            seen: Bits::default(),
            cpu_names,
            value: ValueRead::Whole,
            limit: SeriesLimit::default(),
            warned: Warned::default(),
            overflow_labels: String::new(),
            overflow_acc: Vec::new(),
            prefetched: None,
            omit_zero: false,
            delete_gone: false,
            gone_keys: Vec::new(),
            changes_seen: 0,
            stale: Stale::default(),
            direct: std::sync::OnceLock::new(),
        }
    }

    /// Leaves out, and deletes, label sets naming nothing known to exist
    /// whose entries have not changed for `after`.
    pub fn deleting_stale(mut self, after: Option<std::time::Duration>) -> Self {
        self.stale.after = after;
        self
    }

    /// Deletes keys whose rows name something gone, once exported.
    pub fn deleting_gone(mut self, delete: bool) -> Self {
        self.delete_gone = delete;
        self
    }

    /// Leaves out label sets whose every value is 0.
    pub fn omitting_zero(mut self, omit: bool) -> Self {
        self.omit_zero = omit;
        self
    }

    /// Caps the label sets exported per scrape.
    pub fn limited(mut self, limit: SeriesLimit) -> Self {
        let names = self.row_names();
        let values = vec![OVERFLOW_VALUE.to_string(); names.len()];
        self.overflow_labels = render_labels(names.iter().map(String::as_str), &values);
        self.limit = limit;
        self
    }

    /// The names of a row's labels: a histogram's last label is its
    /// bucket, not a label of the row, unless the buckets are in the value.
    fn row_names(&self) -> &[String] {
        let names = &self.label_names[..];
        match (&self.kind, self.value) {
            (MetricKind::Histogram(_), ValueRead::Array { .. })
            | (MetricKind::Counter(_) | MetricKind::Gauge(_), _) => names,
            (MetricKind::Histogram(_), _) => &names[..names.len().saturating_sub(1)],
        }
    }

    /// Reads a member of struct values instead of whole u64 values.
    pub fn reading(mut self, value: ValueRead) -> Self {
        self.value = value;
        self
    }

    /// Entries of this map that fit in `PREFETCH_BYTES`.
    fn prefetch_max(&self) -> usize {
        prefetch_max(&self.reader)
    }

    fn stats(&self, read_failed: bool) -> Option<MapStats> {
        Some(MapStats {
            entries: self.reader.len(),
            cached_keys: self.cache.len(),
            memory: {
                let (keys, labels) = self.cache.memory();
                let rows = (self.acc.capacity() + self.overflow_acc.capacity())
                    * std::mem::size_of::<u64>()
                    + self.seen.bytes();
                [keys, labels, rows, self.reader.buffer_bytes()]
            },
            read_failed,
            max_entries: self.reader.max_entries(),
        })
    }
}

impl Collector for MetricCollector {
    fn id(&self) -> &MetricId {
        &self.id
    }

    fn prefetch(&mut self) {
        // A map read in shared batches is read as it is decoded, by this
        // thread and a helper of its own; reading it whole ahead would
        // leave its decoding to follow the read instead of overlapping it.
        if self.reader.len() <= self.prefetch_max() && !self.reader.reads_ahead() {
            self.prefetched = Some(self.reader.read());
        }
    }

    fn begin_walk(&mut self) -> Option<std::sync::Arc<crate::maps::Walk>> {
        self.reader.begin_walk()
    }

    fn walking(&self) -> bool {
        self.reader.walking()
    }

    fn last_entries(&self) -> usize {
        self.reader.len()
    }

    /// Reads the map and writes this metric's family into `out`, in three
    /// steps: each entry is resolved to its label set's slot and
    /// accumulated there as the map is read, then one row per slot is
    /// emitted. A decode error leaves the whole family out of this scrape,
    /// as in the reference (a partial sum would look valid but be wrong).
    fn collect(&mut self, out: &mut dyn Sink) -> Collected {
        if self.direct() {
            return self.collect_direct(out);
        }
        let mut result = Collected::default();
        let mut failures = Failures::default();
        if let Err(e) = self.read_into_slots(&mut failures) {
            self.warn_read(&e);
            result.map = self.stats(true);
            return result;
        }
        result.map = self.stats(false);
        result.decode_errors = failures.count;
        self.cache.end_scrape();
        if let Some(first) = failures.first {
            if let Some(n) = self.warned.due(failures.count) {
                log::warn!(
                    "config {}: metric {} left out of the scrape: {n} key(s) failed to decode since the last warning, the first {first}",
                    self.id.config,
                    self.id.name
                );
            }
            return result;
        }
        let size = self.reader.key_size().max(1);
        let cache = &self.cache;
        for slot in self
            .stale
            .settle(size, |slot| cache.slot_text(slot).to_string())
        {
            self.seen.unset(slot as usize);
        }
        self.emit(out, &mut result);
        let gone = std::mem::take(&mut self.gone_keys);
        result.gone_deleted = self.delete_keys(&gone, "a gone entry");
        self.gone_keys = gone;
        self.gone_keys.clear();
        let stale = std::mem::take(&mut self.stale.due);
        result.stale_deleted = self.delete_keys(&stale, "a stale entry");
        self.stale.due = stale;
        self.stale.due.clear();
        result
    }
}

impl MetricCollector {
    /// Whether rows are written as the map is read (`collect_direct`):
    /// every key is its own label set (`RowDecoder::distinct`), summed over
    /// CPUs at most, and nothing needs the label sets across the map (a
    /// series limit keeps the oldest; deletions and staleness track them).
    /// Not for maps read key by key: a key deleted under the walk restarts
    /// it, and a key read twice must not be two series.
    fn direct(&self) -> bool {
        self.reader.method() != crate::maps::Method::Keys
            && *self.direct.get_or_init(|| {
                matches!(self.kind, MetricKind::Counter(_) | MetricKind::Gauge(_))
                    && !self.split_cpus
                    && !matches!(self.value, ValueRead::Array { .. })
                    && self.limit.max_series == usize::MAX
                    && !self.delete_gone
                    && self.stale.after.is_none()
                    && self.rows.distinct()
            })
    }

    /// Reads the map and writes each entry's row as it comes, with no key
    /// cache and no sums to hold: a key is its own label set, so its row is
    /// known when it is read. Where a map takes several batches, the next
    /// batch is read while this one is written (`MapReader::read_each`).
    /// The decoders cannot fail on keys of the map's size (`distinct`
    /// decoded the zero key), so no family is left half written.
    fn collect_direct(&mut self, out: &mut dyn Sink) -> Collected {
        let mut result = Collected::default();
        let kind = match self.kind {
            MetricKind::Gauge(_) => Kind::Gauge,
            _ => Kind::Counter,
        };
        let multiplier = match self.kind {
            MetricKind::Counter(m) | MetricKind::Gauge(m) => m,
            MetricKind::Histogram(_) => None,
        };
        let (percpu, stride, value) = (
            self.reader.is_percpu(),
            self.reader.cpu_stride(),
            self.value,
        );
        let (rows, id, omit_zero) = (&self.rows, &self.id, self.omit_zero);
        let mut labels = String::new();
        let (mut started, mut series, mut failures) = (false, 0usize, Failures::default());
        let mut each = |_position: usize, key: &[u8], bytes: &[u8]| {
            let total = cpu_chunks(bytes, percpu, stride).fold(0u64, |sum, chunk| {
                sum.wrapping_add(scalar(value, chunk).unwrap_or(0))
            });
            if omit_zero && total == 0 {
                return;
            }
            labels.clear();
            if let Err(e) = rows.write_labels(key, &mut labels) {
                failures.add(key, e);
                return;
            }
            if !started {
                out.family(&id.name, &id.help, kind);
                started = true;
            }
            match multiplier {
                Some(m) => out.sample_f64(&labels, None, total as f64 * m),
                None => out.sample_u64(&labels, None, total),
            }
            series += 1;
        };
        let read = read_through(&mut self.prefetched, &mut self.reader, &mut each);
        result.series = series;
        result.decode_errors = failures.count;
        if let Some(first) = failures.first {
            if let Some(n) = self.warned.due(failures.count) {
                log::warn!(
                    "config {}: metric {}: {n} key(s) failed to decode since the last warning, the first {first}",
                    self.id.config,
                    self.id.name
                );
            }
        }
        if let Err(e) = &read {
            self.warn_read(e);
        }
        result.map = self.stats(read.is_err());
        result
    }

    /// Logs a failed read, at most once per `WARN_EVERY`.
    fn warn_read(&mut self, e: &crate::maps::ReadError) {
        if let Some(n) = self.warned.due(1) {
            log::warn!(
                "config {}: metric {}: reading map {}: {e} ({n} failed read(s) since the last warning)",
                self.id.config,
                self.id.name,
                self.id.map_name
            );
        }
    }

    /// Deletes `keys` (end to end) from the map; how many went.
    fn delete_keys(&mut self, keys: &[u8], what: &str) -> u64 {
        let size = self.reader.key_size().max(1);
        let mut deleted = 0;
        for key in keys.chunks_exact(size) {
            match self.reader.delete(key) {
                Ok(()) => deleted += 1,
                Err(e) => {
                    if let Some(n) = self.warned.due(1) {
                        log::warn!(
                            "config {}: metric {}: forgetting {what}: {e} ({n} problem(s) since the last warning)",
                            self.id.config,
                            self.id.name
                        );
                    }
                }
            }
        }
        deleted
    }
}

/// A map value split per CPU (one chunk each in a per-CPU value, the
/// whole value otherwise).
fn cpu_chunks(value: &[u8], percpu: bool, stride: usize) -> std::slice::ChunksExact<'_, u8> {
    if percpu {
        value.chunks_exact(stride.max(1))
    } else {
        value.chunks_exact(value.len().max(1))
    }
}

/// The one integer a counter or gauge reads from a value's chunk; `None`
/// for a histogram's bucket array.
fn scalar(read: ValueRead, chunk: &[u8]) -> Option<u64> {
    match read {
        ValueRead::Whole => Some(read_uint(chunk, 0, 8)),
        ValueRead::Field { offset, width } => Some(read_uint(chunk, offset, width)),
        ValueRead::Array { .. } => None,
    }
}

/// Entries of `reader`'s map that fit in `PREFETCH_BYTES`.
fn prefetch_max(reader: &MapReader) -> usize {
    let entry = reader.key_size() + reader.cpu_stride() * reader.ncpus();
    PREFETCH_BYTES / entry.max(1)
}

/// Hands every entry of this scrape's read to `each`: the whole map read
/// ahead (`prefetched`), or a batch at a time as it is read.
fn read_through(
    prefetched: &mut Option<Result<(), crate::maps::ReadError>>,
    reader: &mut MapReader,
    each: &mut impl FnMut(usize, &[u8], &[u8]),
) -> Result<(), crate::maps::ReadError> {
    match prefetched.take() {
        Some(read) => {
            let read = read.map(|()| {
                for (position, (key, value)) in reader.entries().enumerate() {
                    each(position, key, value);
                }
            });
            reader.trim(prefetch_max(reader));
            read
        }
        None => reader.read_each(each),
    }
}

/// Keys that failed to decode in one scrape.
#[derive(Default)]
struct Failures {
    count: u64,
    first: Option<String>,
}

impl Failures {
    fn add(&mut self, key: &[u8], e: impl std::fmt::Display) {
        self.first
            .get_or_insert_with(|| format!("key {key:02x?}: {e}"));
        self.count += 1;
    }
}

/// What turns a key into its label set's slot: the key cache, and on a
/// miss the decoders and the label text they render to.
struct Resolver<'a> {
    cache: &'a mut KeyCache,
    rows: &'a mut RowDecoder,
    label_names: &'a [String],
    kind: &'a MetricKind,
    value: ValueRead,
    /// Where keys of gone rows go, when the metric deletes them.
    gone: Option<&'a mut Vec<u8>>,
    /// Whether the last key resolved names nothing known to exist now.
    absent: bool,
}

impl Resolver<'_> {
    /// The key's slot, decoding it only on a cache miss; `None` for keys
    /// whose row is dropped, and for keys that fail to decode.
    #[inline]
    fn resolve(&mut self, key: &[u8], failures: &mut Failures) -> Option<CachedRow> {
        // Rows of unknown and gone things are never cached across
        // scrapes: a hit is of a row that names what exists.
        self.absent = false;
        if let Some(cached) = self.cache.get(key) {
            return cached;
        }
        match self.rows.decode(key) {
            Ok(Row::Drop) => self.cache.put(key, None, false),
            Ok(Row::Labels {
                values,
                unknown,
                gone,
            }) => {
                let in_key = !matches!(self.value, ValueRead::Array { .. });
                self.absent = unknown || gone;
                if let (true, Some(keys)) = (gone, self.gone.as_deref_mut()) {
                    keys.extend_from_slice(key);
                }
                match render(self.label_names, &values, self.kind, in_key) {
                    // A gone row is decoded again next time: by then its
                    // key is deleted, or its name forgotten.
                    Ok(rendered) => self.cache.put(key, Some(rendered), unknown || gone),
                    Err(e) => {
                        failures.add(key, e);
                        None
                    }
                }
            }
            Err(e) => {
                failures.add(key, e);
                None
            }
        }
    }
}

/// Per-slot accumulators: `ncols` columns (one per CPU when split, else
/// one) of `width` values (a histogram's buckets and its sum, else one).
struct Accumulator<'a> {
    acc: &'a mut Vec<u64>,
    seen: &'a mut Bits,
    kind: &'a MetricKind,
    value: ValueRead,
    ncols: usize,
    width: usize,
    /// Bytes per CPU in a per-CPU value, which has one per possible CPU.
    stride: usize,
    percpu: bool,
    split_cpus: bool,
}

impl Accumulator<'_> {
    /// Adds one entry's value into its row's slot.
    #[inline]
    fn add(&mut self, row: CachedRow, value: &[u8]) {
        // Histogram rows carry their bucket's position (the sum after the
        // buckets); rows outside the configured range are ignored.
        if row.extra == IGNORED_BUCKET {
            return;
        }
        let (pos, slot) = (row.extra as usize, row.slot as usize);
        let (ncols, width) = (self.ncols, self.width);
        if self.seen.len() <= slot {
            self.acc.resize((slot + 1) * ncols * width, 0);
        }
        self.seen.set(slot);
        let base = slot * ncols * width;
        for (cpu, chunk) in cpu_chunks(value, self.percpu, self.stride).enumerate() {
            let col = if self.split_cpus { cpu } else { 0 };
            let at = base + col * width;
            let acc = &mut self.acc;
            let mut add = |i: usize, n: u64| acc[at + i] = acc[at + i].wrapping_add(n);
            if let Some(n) = scalar(self.value, chunk) {
                add(pos, n);
                continue;
            }
            let (
                ValueRead::Array {
                    offset,
                    width: elem,
                    count,
                },
                MetricKind::Histogram(b),
            ) = (self.value, self.kind)
            else {
                continue;
            };
            for i in 0..count {
                if let Some(p) = b.position(i as u64) {
                    add(p, read_uint(chunk, offset + i * elem, elem));
                }
            }
        }
    }
}

impl MetricCollector {
    /// Reads the map, resolving and accumulating each entry as it comes.
    /// After the first decode failure entries are still resolved (to count
    /// the failures) but no longer accumulated: the family is left out.
    fn read_into_slots(&mut self, failures: &mut Failures) -> Result<(), crate::maps::ReadError> {
        self.acc.clear();
        self.seen.clear();
        // A decoder's earlier answers may have gone stale (a cgroup
        // removed): decode every key again, so rows of gone things say so.
        let changes = self.rows.changes();
        if changes != self.changes_seen {
            self.changes_seen = changes;
            self.cache.redecode_all();
        }
        self.gone_keys.clear();
        self.stale.begin();
        let mut resolver = Resolver {
            cache: &mut self.cache,
            rows: &mut self.rows,
            label_names: &self.label_names,
            kind: &self.kind,
            value: self.value,
            gone: self.delete_gone.then_some(&mut self.gone_keys),
            absent: false,
        };
        let stale = &mut self.stale;
        let watch_stale = stale.after.is_some();
        let mut slots = Accumulator {
            acc: &mut self.acc,
            seen: &mut self.seen,
            kind: &self.kind,
            value: self.value,
            ncols: if self.split_cpus {
                self.reader.ncpus()
            } else {
                1
            },
            width: match &self.kind {
                MetricKind::Histogram(b) => b.len() + 1,
                _ => 1,
            },
            stride: self.reader.cpu_stride(),
            percpu: self.reader.is_percpu(),
            split_cpus: self.split_cpus,
        };
        let mut each = |_position, key: &[u8], value: &[u8]| {
            if let Some(row) = resolver.resolve(key, failures) {
                if failures.count == 0 {
                    if watch_stale && resolver.absent {
                        stale.note(row.slot, key, value);
                    }
                    slots.add(row, value);
                }
            }
        };
        read_through(&mut self.prefetched, &mut self.reader, &mut each)
    }

    /// Writes one sample (or histogram) per slot and column. Label sets
    /// past the limit, in slot order (slots are given out as label sets
    /// first appear, so the series kept are the oldest and stay the same
    /// scrape after scrape), are folded into one overflow row, or dropped.
    fn emit(&mut self, out: &mut dyn Sink, result: &mut Collected) {
        if !self.seen.any() {
            return;
        }
        let kind = match self.kind {
            MetricKind::Counter(_) => Kind::Counter,
            MetricKind::Gauge(_) => Kind::Gauge,
            MetricKind::Histogram(_) => Kind::Histogram,
        };
        out.family(&self.id.name, &self.id.help, kind);
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        let row_len = self.acc.len() / self.seen.len().max(1);
        let mut overflow = std::mem::take(&mut self.overflow_acc);
        overflow.clear();
        overflow.resize(row_len, 0);
        let mut emitted = 0usize;
        let mut labels = String::new();
        let names = self.row_names();
        for slot in self.seen.ones() {
            let row = &self.acc[slot * row_len..(slot + 1) * row_len];
            if self.omit_zero && row.iter().all(|v| *v == 0) {
                continue;
            }
            if emitted >= self.limit.max_series {
                result.series_limited += 1;
                if self.limit.fold {
                    for (o, a) in overflow.iter_mut().zip(row) {
                        *o = o.wrapping_add(*a);
                    }
                }
                continue;
            }
            emitted += 1;
            expand_values(names, self.cache.slot_text(slot as u32), &mut labels);
            result.series += self.write_row(out, &labels, row, &mut buckets);
        }
        if result.series_limited > 0 && self.limit.fold {
            let labels = self.overflow_labels.clone();
            result.series += self.write_row(out, &labels, &overflow, &mut buckets);
        }
        self.overflow_acc = overflow;
    }
}

impl MetricCollector {
    /// Writes one label set's samples (one per column); returns how many.
    fn write_row(
        &self,
        out: &mut dyn Sink,
        labels: &str,
        acc: &[u64],
        buckets: &mut Vec<(f64, u64)>,
    ) -> usize {
        let ncols = acc.len() / self.width().max(1);
        let width = self.width();
        for col in 0..ncols {
            let extra = self
                .split_cpus
                .then(|| ("cpu", self.cpu_names[col].as_str()));
            let base = col * width;
            match &self.kind {
                MetricKind::Histogram(b) => {
                    buckets.clear();
                    let mut cumulative = 0u64;
                    for (i, bound) in b.bounds.iter().enumerate() {
                        cumulative = cumulative.wrapping_add(acc[base + i]);
                        buckets.push((*bound, cumulative));
                    }
                    let sum = acc[base + b.len()] as f64 * b.multiplier;
                    out.histogram(labels, extra, buckets, cumulative, sum);
                }
                MetricKind::Counter(Some(m)) | MetricKind::Gauge(Some(m)) => {
                    out.sample_f64(labels, extra, acc[base] as f64 * m)
                }
                _ => out.sample_u64(labels, extra, acc[base]),
            }
        }
        ncols
    }

    /// Accumulators per column.
    fn width(&self) -> usize {
        match &self.kind {
            MetricKind::Histogram(b) => b.len() + 1,
            _ => 1,
        }
    }
}

/// A histogram row whose bucket index lies outside the configured range.
const IGNORED_BUCKET: u32 = u32::MAX;

/// The label values a row is cached by (`join_values`); for histograms the
/// last label is the bucket index, which becomes the bucket's position
/// instead of a label.
/// `bucket_in_key` is false when the buckets come from an array in the
/// value: then every label is a label.
fn render(
    names: &[String],
    values: &[String],
    kind: &MetricKind,
    bucket_in_key: bool,
) -> Result<(String, u32), String> {
    let Some(b) = kind.filter_bucket(bucket_in_key) else {
        return Ok((join_values(names.len(), values), 0));
    };
    let (bucket, rest) = values
        .split_last()
        .ok_or("histogram row has no bucket label")?;
    let idx: u64 = bucket
        .parse()
        .map_err(|_| format!("bucket label must decode to an integer, got {bucket:?}"))?;
    let pos = if idx == b.sum_key {
        b.len() as u32
    } else {
        b.position(idx).map_or(IGNORED_BUCKET, |p| p as u32)
    };
    Ok((join_values(names.len(), rest), pos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Histogram, Label};
    use crate::encode::{Format, TextWriter};
    use crate::host::Host;
    use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

    /// A real kernel map holding `rows` (key, one value per CPU for per-CPU
    /// maps): the collector is tested on what the kernel returns. Root.
    fn map(kind: MapType, key_size: u32, rows: &[(Vec<u8>, Vec<u64>)]) -> MapHandle {
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        let m = MapHandle::create(kind, Some("ee_collect_test"), key_size, 8, 64, &opts)
            .expect("create a map (root)");
        for (key, values) in rows {
            let value: Vec<u8> = values.iter().flat_map(|v| v.to_ne_bytes()).collect();
            if kind.is_percpu() {
                let per_cpu: Vec<Vec<u8>> = value.chunks(8).map(<[u8]>::to_vec).collect();
                m.update_percpu(key, &per_cpu, MapFlags::ANY)
                    .expect("update per-CPU");
            } else {
                m.update(key, &value, MapFlags::ANY).expect("update");
            }
        }
        m
    }

    fn labels(yaml: &str) -> Vec<Label> {
        serde_yaml::from_str(yaml).expect("labels parse")
    }

    fn collector(
        kind: MetricKind,
        handle: MapHandle,
        labels: &[Label],
        split: bool,
    ) -> MetricCollector {
        let rows = RowDecoder::new(labels, &Host::new()).expect("decoders build");
        MetricCollector::new(
            MetricId {
                name: "ebpf_exporter_t".into(),
                help: "t".into(),
                map_name: "t".into(),
                config: "t".into(),
                layout: Vec::new(),
            },
            kind,
            MapReader::new(handle, "t"),
            rows,
            split,
            10,
        )
    }

    /// The collector's family in text format, its sample lines sorted
    /// (hash maps come back in any order).
    fn scrape(c: &mut MetricCollector) -> (Vec<String>, Collected) {
        let mut w = TextWriter::new(Format::Text);
        let got = c.collect(&mut w);
        let mut lines: Vec<String> = String::from_utf8(w.finish())
            .expect("UTF-8")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        lines.sort();
        (lines, got)
    }

    fn key(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn equal_label_sets_are_summed() {
        // Two keys whose `kind` decodes to the same value add up.
        let l = labels(
            "- {name: kind, size: 4, decoders: [{name: uint}, {name: static_map, static_map: {1: a, 2: a, 3: b}}]}",
        );
        let rows = [
            (1u32.to_ne_bytes().to_vec(), vec![5]),
            (2u32.to_ne_bytes().to_vec(), vec![7]),
            (3u32.to_ne_bytes().to_vec(), vec![1]),
        ];
        let mut c = collector(
            MetricKind::Counter(None),
            map(MapType::Hash, 4, &rows),
            &l,
            false,
        );
        let (lines, got) = scrape(&mut c);
        assert_eq!(
            lines,
            [
                "ebpf_exporter_t{kind=\"a\"} 12",
                "ebpf_exporter_t{kind=\"b\"} 1"
            ]
        );
        assert_eq!(got.series, 2);
        assert_eq!(got.map.map(|m| m.entries), Some(3));
    }

    /// Keys decoded one-to-one are written as they are read, with no
    /// cache: the same lines as the cached path, which a series limit
    /// forces.
    #[test]
    fn one_to_one_rows_are_written_as_read_with_the_cached_paths_lines() {
        let l = labels(
            "[{name: pid, size: 4, decoders: [{name: uint}]}, {name: addr, size: 8, decoders: [{name: hex}]}, {name: delta, size: 2, decoders: [{name: int}]}]",
        );
        let ncpus = crate::host::cpus::possible();
        let rows: Vec<(Vec<u8>, Vec<u64>)> = (0..60u32)
            .map(|i| {
                let k = key(&[
                    &i.to_ne_bytes(),
                    &(u64::from(i) * 0x0101_0101).to_be_bytes(),
                    &(-(i as i16)).to_ne_bytes(),
                ]);
                // Every third key counts 0 on every CPU.
                let v = if i % 3 == 0 { 0 } else { u64::from(i) };
                (k, vec![v; ncpus])
            })
            .collect();
        let kind = || MetricKind::Counter(Some(0.5));
        let mut direct =
            collector(kind(), map(MapType::PercpuHash, 14, &rows), &l, false).omitting_zero(true);
        let mut cached = collector(kind(), map(MapType::PercpuHash, 14, &rows), &l, false)
            .omitting_zero(true)
            .limited(SeriesLimit {
                max_series: 1000,
                fold: true,
            });
        for _ in 0..2 {
            let (a, got) = scrape(&mut direct);
            let (b, _) = scrape(&mut cached);
            assert!(direct.direct() && !cached.direct());
            assert_eq!(a, b);
            assert_eq!(a.len(), 40, "zeros left out");
            assert_eq!(got.series, 40);
            assert_eq!(got.map.map(|m| m.cached_keys), Some(0), "no key cache");
        }
        let want = format!(
            "ebpf_exporter_t{{pid=\"7\",addr=\"0000000007070707\",delta=\"-7\"}} {}",
            7.0 * 0.5 * ncpus as f64
        );
        assert!(scrape(&mut direct).0.contains(&want), "{want}");
    }

    #[test]
    fn per_cpu_values_are_summed_or_split() {
        let ncpus = crate::host::cpus::possible();
        let values: Vec<u64> = (1..=ncpus as u64).collect();
        let total: u64 = values.iter().sum();
        let rows = [(9u32.to_ne_bytes().to_vec(), values.clone())];
        let l = labels("- {name: n, size: 4, decoders: [{name: uint}]}");
        let mut summed = collector(
            MetricKind::Counter(None),
            map(MapType::PercpuHash, 4, &rows),
            &l,
            false,
        );
        assert_eq!(
            scrape(&mut summed).0,
            [format!("ebpf_exporter_t{{n=\"9\"}} {total}")]
        );

        let mut split = collector(
            MetricKind::Counter(None),
            map(MapType::PercpuHash, 4, &rows),
            &l,
            true,
        );
        let mut want: Vec<String> = (0..ncpus)
            .map(|cpu| format!("ebpf_exporter_t{{n=\"9\",cpu=\"{cpu}\"}} {}", cpu + 1))
            .collect();
        want.sort();
        assert_eq!(scrape(&mut split).0, want);
    }

    fn histogram(yaml: &str) -> (MetricKind, Vec<Label>) {
        let h: Histogram = serde_yaml::from_str(yaml).expect("histogram parses");
        (MetricKind::Histogram(BucketLayout::new(&h)), h.labels)
    }

    fn hist_key(op: u32, bucket: u64) -> Vec<u8> {
        key(&[&op.to_ne_bytes(), &[0; 4], &bucket.to_ne_bytes()])
    }

    const LABELS: &str = "labels: [{name: op, size: 4, padding: 4, decoders: [{name: uint}]}, {name: bucket, size: 8, decoders: [{name: uint}]}]";

    #[test]
    fn linear_histogram_with_a_minimum_ignores_rows_outside_its_range() {
        // Buckets 2..=4; key 5 (bucket_max + 1) is the sum; 1 and 6 are
        // outside and must count nowhere.
        let (kind, l) = histogram(&format!(
            "{{name: h, help: h, bucket_type: linear, bucket_min: 2, bucket_max: 4, bucket_multiplier: 0.5, {LABELS}}}"
        ));
        let rows = [
            (hist_key(1, 1), vec![100]),
            (hist_key(1, 2), vec![3]),
            (hist_key(1, 4), vec![4]),
            (hist_key(1, 5), vec![40]),
            (hist_key(1, 6), vec![1000]),
        ];
        let mut c = collector(kind, map(MapType::Hash, 16, &rows), &l, false);
        let (lines, got) = scrape(&mut c);
        let mut want = vec![
            "ebpf_exporter_t_bucket{op=\"1\",le=\"1\"} 3",
            "ebpf_exporter_t_bucket{op=\"1\",le=\"1.5\"} 3",
            "ebpf_exporter_t_bucket{op=\"1\",le=\"2\"} 7",
            "ebpf_exporter_t_bucket{op=\"1\",le=\"+Inf\"} 7",
            "ebpf_exporter_t_sum{op=\"1\"} 20",
            "ebpf_exporter_t_count{op=\"1\"} 7",
        ];
        want.sort();
        assert_eq!(lines, want);
        assert_eq!(got.decode_errors, 0);
    }

    /// A histogram's label set is stale as a whole: its buckets are
    /// separate keys, and one that changes keeps all of them.
    #[test]
    fn a_quiet_unknown_label_set_goes_with_all_its_buckets_and_a_known_one_stays() {
        let (kind, _) = histogram(&format!(
            "{{name: h, help: h, bucket_type: linear, bucket_min: 0, bucket_max: 3, {LABELS}}}"
        ));
        let l = labels(
            "[{name: dev, size: 4, padding: 4, decoders: [{name: ifname}]}, {name: bucket, size: 8, decoders: [{name: uint}]}]",
        );
        let absent = 0x7fff_fff0u32;
        let rows = [
            (hist_key(1, 0), vec![3]),
            (hist_key(1, 1), vec![4]),
            (hist_key(absent, 0), vec![5]),
            (hist_key(absent, 2), vec![6]),
        ];
        let handle = map(MapType::Hash, 16, &rows);
        let writer = MapHandle::from_map_id(handle.info().expect("map info").info.id)
            .expect("second handle");
        let mut c = collector(kind, handle, &l, false)
            .deleting_stale(Some(std::time::Duration::from_millis(100)));
        let devices = |lines: &[String]| -> Vec<String> {
            let mut d: Vec<String> = lines
                .iter()
                .filter(|l| l.starts_with("ebpf_exporter_t_count"))
                .cloned()
                .collect();
            d.sort();
            d
        };
        let both = [
            "ebpf_exporter_t_count{dev=\"lo\"} 7".to_string(),
            format!("ebpf_exporter_t_count{{dev=\"unknown:{absent}\"}} 11"),
        ];
        assert_eq!(devices(&scrape(&mut c).0), both);
        // One bucket of the unknown interface moves: it stays.
        std::thread::sleep(std::time::Duration::from_millis(120));
        writer
            .update(&hist_key(absent, 2), &7u64.to_ne_bytes(), MapFlags::ANY)
            .expect("update");
        let (lines, got) = scrape(&mut c);
        assert_eq!(
            devices(&lines),
            [
                both[0].clone(),
                format!("ebpf_exporter_t_count{{dev=\"unknown:{absent}\"}} 12")
            ]
        );
        assert_eq!(got.stale_deleted, 0);
        // Quiet for longer than stale_after: left out, both keys deleted.
        std::thread::sleep(std::time::Duration::from_millis(120));
        let (lines, got) = scrape(&mut c);
        assert_eq!(devices(&lines), [both[0].clone()]);
        assert_eq!(got.stale_deleted, 2);
        assert_eq!(writer.keys().count(), 2, "lo's two buckets are left");
        // The known one, as quiet, stays.
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert_eq!(devices(&scrape(&mut c).0), [both[0].clone()]);
    }

    #[test]
    fn missing_sum_row_reads_zero_and_fixed_buckets_use_their_keys() {
        let (kind, l) = histogram(&format!(
            "{{name: h, help: h, bucket_type: fixed, bucket_keys: [10, 100], {LABELS}}}"
        ));
        // Key 50 is not a bucket key: ignored. No row 101 (the sum key).
        let rows = [
            (hist_key(2, 10), vec![1]),
            (hist_key(2, 50), vec![9]),
            (hist_key(2, 100), vec![2]),
        ];
        let mut c = collector(kind, map(MapType::Hash, 16, &rows), &l, false);
        let mut want = vec![
            "ebpf_exporter_t_bucket{op=\"2\",le=\"10\"} 1",
            "ebpf_exporter_t_bucket{op=\"2\",le=\"100\"} 3",
            "ebpf_exporter_t_bucket{op=\"2\",le=\"+Inf\"} 3",
            "ebpf_exporter_t_sum{op=\"2\"} 0",
            "ebpf_exporter_t_count{op=\"2\"} 3",
        ];
        want.sort();
        assert_eq!(scrape(&mut c).0, want);
    }

    #[test]
    fn exp2_histogram_split_by_cpu() {
        let ncpus = crate::host::cpus::possible();
        let (kind, _) = histogram(&format!(
            "{{name: h, help: h, bucket_type: exp2, bucket_min: 0, bucket_max: 1, {LABELS}}}"
        ));
        let l = labels(
            "[{name: op, size: 4, padding: 4, decoders: [{name: uint}]}, {name: cpu, size: 1, decoders: [{name: uint}]}, {name: bucket, size: 8, decoders: [{name: uint}]}]",
        );
        let key_labels: Vec<Label> = l.iter().filter(|x| x.name != "cpu").cloned().collect();
        let mut one_on_cpu0 = vec![0u64; ncpus];
        one_on_cpu0[0] = 1;
        let rows = [(hist_key(3, 1), one_on_cpu0)];
        let mut c = collector(kind, map(MapType::PercpuHash, 16, &rows), &key_labels, true);
        let (lines, _) = scrape(&mut c);
        assert_eq!(lines.len(), ncpus * 5, "{lines:?}");
        assert!(
            lines.contains(&"ebpf_exporter_t_bucket{op=\"3\",cpu=\"0\",le=\"2\"} 1".to_string())
        );
        assert!(
            lines.contains(&"ebpf_exporter_t_bucket{op=\"3\",cpu=\"0\",le=\"1\"} 0".to_string())
        );
        assert!(lines.contains(&"ebpf_exporter_t_count{op=\"3\",cpu=\"0\"} 1".to_string()));
        if ncpus > 1 {
            assert!(lines.contains(&"ebpf_exporter_t_count{op=\"3\",cpu=\"1\"} 0".to_string()));
        }
    }

    #[test]
    fn a_key_that_fails_to_decode_leaves_the_family_out() {
        let l = labels("- {name: s, size: 4, decoders: [{name: string}]}");
        let rows = [
            (vec![b'o', b'k', 0, 0], vec![1]),
            (vec![0xff, 0xfe, 0, 0], vec![1]),
        ];
        let mut c = collector(
            MetricKind::Gauge(None),
            map(MapType::Hash, 4, &rows),
            &l,
            false,
        );
        let (lines, got) = scrape(&mut c);
        assert!(lines.is_empty(), "{lines:?}");
        assert_eq!(got.decode_errors, 1);
    }
}
