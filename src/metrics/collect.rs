//! Turns one map's entries into samples on each scrape.

use crate::decode::chain::Row;
use crate::decode::RowDecoder;
use crate::maps::MapReader;

use super::buckets::BucketLayout;
use super::cache::KeyCache;
use super::collector::{Collected, Collector, MapStats};
use super::sink::{render_labels, Kind, Sink};

pub enum MetricKind {
    /// With an optional multiplier for the exported value.
    Counter(Option<f64>),
    Gauge(Option<f64>),
    Histogram(BucketLayout),
}

pub struct MetricCollector {
    /// Prometheus name, `ebpf_exporter_<map>`.
    pub name: String,
    pub help: String,
    pub map_name: String,
    pub kind: MetricKind,
    pub reader: MapReader,
    rows: RowDecoder,
    label_names: Vec<String>,
    cache: KeyCache,
    /// Per-CPU map with a `cpu` label: one sample per CPU instead of a sum.
    split_cpus: bool,
    /// Per-slot accumulators, kept between scrapes for their allocation.
    acc: Vec<u64>,
    seen: Vec<bool>,
    cpu_names: Vec<String>,
}

impl MetricCollector {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        help: String,
        map_name: String,
        kind: MetricKind,
        reader: MapReader,
        rows: RowDecoder,
        split_cpus: bool,
        cache_max_idle: u32,
    ) -> Self {
        let label_names = rows.label_names().map(str::to_string).collect();
        let cpu_names = (0..reader.ncpus()).map(|c| c.to_string()).collect();
        Self {
            name,
            help,
            map_name,
            kind,
            reader,
            rows,
            label_names,
            cache: KeyCache::new(cache_max_idle),
            split_cpus,
            acc: Vec::new(),
            seen: Vec::new(),
            cpu_names,
        }
    }

    fn stats(&self, read_failed: bool) -> Option<MapStats> {
        Some(MapStats {
            entries: self.reader.len(),
            cached_keys: self.cache.len(),
            read_failed,
        })
    }
}

impl Collector for MetricCollector {
    fn name(&self) -> &str {
        &self.name
    }

    fn map_name(&self) -> &str {
        &self.map_name
    }

    /// Reads the map and writes this metric's family into `out`. A decode
    /// error leaves the whole family out of this scrape, as in the reference
    /// (a partial sum would look valid but be wrong).
    fn collect(&mut self, out: &mut dyn Sink) -> Collected {
        let mut result = Collected::default();
        if let Err(e) = self.reader.read() {
            log::warn!("{}: {e}", self.name);
            result.map = self.stats(true);
            return result;
        }
        result.map = self.stats(false);
        let ncols = if self.split_cpus {
            self.reader.ncpus()
        } else {
            1
        };
        let width = match &self.kind {
            MetricKind::Histogram(b) => b.len() + 1,
            _ => 1,
        };

        // Aggregate: resolve each key to its slot (decoding only cache
        // misses) and add its value into that slot's accumulators.
        self.acc.clear();
        self.seen.clear();
        let stride = self.reader.cpu_stride();
        let percpu = self.reader.is_percpu();
        let mut failed = false;
        for (position, (key, value)) in self.reader.entries().enumerate() {
            let cached = match self.cache.get(key, position) {
                Some(c) => c,
                None => match self.rows.decode(key) {
                    Ok(Row::Drop) => self.cache.put(key, position, None, false),
                    Ok(Row::Labels { values, unknown }) => {
                        match render(&self.label_names, &values, &self.kind) {
                            Ok(rendered) => self.cache.put(key, position, Some(rendered), unknown),
                            Err(e) => {
                                log::debug!("{}: {e}", self.name);
                                result.decode_errors += 1;
                                failed = true;
                                None
                            }
                        }
                    }
                    Err(e) => {
                        log::debug!("{}: decoding key {key:02x?}: {e}", self.name);
                        result.decode_errors += 1;
                        failed = true;
                        None
                    }
                },
            };
            let Some(row) = cached else { continue };
            if failed {
                continue;
            }
            // Histogram rows carry their bucket's position (the sum after the
            // buckets); rows outside the configured range are ignored.
            if row.extra == IGNORED_BUCKET {
                continue;
            }
            let pos = row.extra as usize;
            let slot = row.slot as usize;
            if self.seen.len() <= slot {
                self.seen.resize(slot + 1, false);
                self.acc.resize((slot + 1) * ncols * width, 0);
            }
            self.seen[slot] = true;
            let base = slot * ncols * width;
            if percpu {
                for (cpu, chunk) in value.chunks_exact(stride).enumerate() {
                    let col = if self.split_cpus { cpu } else { 0 };
                    let a = &mut self.acc[base + col * width + pos];
                    *a = a.wrapping_add(read_u64(chunk));
                }
            } else {
                let a = &mut self.acc[base + pos];
                *a = a.wrapping_add(read_u64(value));
            }
        }
        self.cache.end_scrape(self.reader.len());
        if failed {
            return result;
        }
        let slots = self.seen.len();

        // Then write one sample (or histogram) per slot and column.
        let kind = match self.kind {
            MetricKind::Counter(_) => Kind::Counter,
            MetricKind::Gauge(_) => Kind::Gauge,
            MetricKind::Histogram(_) => Kind::Histogram,
        };
        if !self.seen.iter().any(|s| *s) {
            return result;
        }
        out.family(&self.name, &self.help, kind);
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        for slot in 0..slots {
            if !self.seen[slot] {
                continue;
            }
            let labels = self.cache.slot_text(slot as u32);
            for col in 0..ncols {
                let extra = self
                    .split_cpus
                    .then(|| ("cpu", self.cpu_names[col].as_str()));
                let base = slot * ncols * width + col * width;
                match &self.kind {
                    MetricKind::Histogram(b) => {
                        buckets.clear();
                        let mut cumulative = 0u64;
                        for (i, bound) in b.bounds.iter().enumerate() {
                            cumulative = cumulative.wrapping_add(self.acc[base + i]);
                            buckets.push((*bound, cumulative));
                        }
                        let sum = self.acc[base + b.len()] as f64 * b.multiplier;
                        out.histogram(labels, extra, &buckets, cumulative, sum);
                    }
                    MetricKind::Counter(Some(m)) | MetricKind::Gauge(Some(m)) => {
                        out.sample_f64(labels, extra, self.acc[base] as f64 * m)
                    }
                    _ => out.sample_u64(labels, extra, self.acc[base]),
                }
                result.series += 1;
            }
        }
        result
    }
}

fn read_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    u64::from_ne_bytes(b)
}

/// A histogram row whose bucket index lies outside the configured range.
const IGNORED_BUCKET: u32 = u32::MAX;

/// Renders the label text for a row; for histograms the last label is the
/// bucket index, which becomes the bucket's position instead of a label.
fn render(names: &[String], values: &[String], kind: &MetricKind) -> Result<(String, u32), String> {
    let MetricKind::Histogram(b) = kind else {
        return Ok((render_labels(names.iter().map(String::as_str), values), 0));
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
    Ok((render_labels(names.iter().map(String::as_str), rest), pos))
}
