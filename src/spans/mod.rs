//! Tracing spans, as the reference defines them: each `tracing.spans`
//! entry names a BPF ring buffer whose records are decoded by the same
//! decoder chains as metric keys (uncached: span labels are unique by
//! nature) and sent as OpenTelemetry spans over OTLP.
//!
//! The kernel side must never wait for the collector: ring buffer readers
//! hand spans to the exporter through a bounded queue and drop (and count)
//! what does not fit, so a slow or absent collector costs spans, not
//! kernel progress or memory.

pub mod export;
pub mod reader;
pub mod record;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Outcomes counted per config, for `ebpf_exporter_spans_total`.
#[derive(Default)]
pub struct SpanCounts {
    pub exported: AtomicU64,
    /// The queue to the exporter was full.
    pub dropped_queue_full: AtomicU64,
    /// The collector refused the batch or could not be reached.
    pub dropped_export_failed: AtomicU64,
    /// A record did not decode into a span (bad size, bad ids).
    pub decode_errors: AtomicU64,
}

impl SpanCounts {
    pub fn by_result(&self) -> [(&'static str, u64); 4] {
        [
            ("exported", self.exported.load(Ordering::Relaxed)),
            (
                "dropped_queue_full",
                self.dropped_queue_full.load(Ordering::Relaxed),
            ),
            (
                "dropped_export_failed",
                self.dropped_export_failed.load(Ordering::Relaxed),
            ),
            ("decode_error", self.decode_errors.load(Ordering::Relaxed)),
        ]
    }
}

/// Span counts by config name.
#[derive(Default)]
pub struct SpanStats {
    configs: Mutex<BTreeMap<String, Arc<SpanCounts>>>,
}

impl SpanStats {
    pub fn for_config(&self, config: &str) -> Arc<SpanCounts> {
        let mut configs = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        configs.entry(config.to_string()).or_default().clone()
    }

    /// Drops a removed config's counts, so its series go with it.
    pub fn forget(&self, config: &str) {
        let mut configs = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        configs.remove(config);
    }

    pub fn snapshot(&self) -> Vec<(String, Arc<SpanCounts>)> {
        let configs = self.configs.lock().unwrap_or_else(|p| p.into_inner());
        configs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
