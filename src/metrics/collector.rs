//! The one interface the scrape loop sees for configs: metric maps and
//! event counters write families into a [`Sink`] and say what happened
//! (the [`Collected`] that self-metrics record), so a scrape is one loop
//! over collectors with no special cases. The exporter's own families are
//! not collectors of this kind: they live in the `prometheus` registry of
//! `exporter::self_metrics`, which writes them through the same `Sink`.

use super::sink::Sink;

/// What one collector's part of a scrape produced, for self-metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub series: usize,
    /// Keys or records that failed to decode in this scrape.
    pub decode_errors: u64,
    /// For collectors that read a map.
    pub map: Option<MapStats>,
    /// Records a perf buffer lost since the last scrape (event counters).
    pub events_lost: Option<u64>,
    /// Label sets over the metric's series limit in this scrape.
    pub series_limited: u64,
    /// Map entries deleted after this scrape because their rows named
    /// something gone (`delete_gone`).
    pub gone_deleted: u64,
    /// Map entries deleted after this scrape because their label sets
    /// named nothing known to exist and had not changed (`stale_after`).
    pub stale_deleted: u64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MapStats {
    /// Entries read from the map in this scrape.
    pub entries: usize,
    /// Raw keys whose labels the key cache holds.
    pub cached_keys: usize,
    pub read_failed: bool,
    /// The map's capacity, to show how full it is.
    pub max_entries: u32,
    /// Heap bytes the exporter holds for this metric, by part (`PARTS`).
    pub memory: [usize; 4],
}

/// What `MapStats::memory` counts, in order: the key cache, interned label
/// text, per-label-set sums, and read buffers.
pub const MEMORY_PARTS: [&str; 4] = ["keys", "labels", "rows", "read"];

/// What a metric is called and where it reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricId {
    /// Prometheus name, `ebpf_exporter_<map>`.
    pub name: String,
    pub help: String,
    pub map_name: String,
    /// The config it belongs to, for log lines.
    pub config: String,
    /// Where each label sits in the key, one line per label, for
    /// `--config.check-layout`.
    pub layout: Vec<String>,
}

pub trait Collector: Send {
    /// The metric's name, help and map (the map labels self-metrics).
    fn id(&self) -> &MetricId;
    fn collect(&mut self, out: &mut dyn Sink) -> Collected;
    /// Reads now what the next `collect` would read, so that a scrape can
    /// read one map on another thread while the previous one is decoded
    /// and encoded. Collectors that have nothing worth reading ahead
    /// (small work, or a map too large to hold whole) do nothing.
    fn prefetch(&mut self) {}
    /// Begins this scrape's read of a map large enough to be read in shared
    /// batches (`maps::Walk`), for a helper thread to start reading before
    /// `collect` gets to it; `collect` then consumes it. A walk that
    /// `collect` does not consume must be closed by the caller.
    fn begin_walk(&mut self) -> Option<std::sync::Arc<crate::maps::Walk>> {
        None
    }
    /// Whether a walk begun by `begin_walk` waits for `collect`.
    fn walking(&self) -> bool {
        false
    }
    /// Entries the last read returned, to judge whether reading ahead pays.
    fn last_entries(&self) -> usize {
        0
    }
}
