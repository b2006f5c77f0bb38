//! What became of the spans each config read from its ring buffers. The
//! counts live in `SpanStats`, where the readers bump them without a lock
//! on the scrape path; this reads them at scrape time.

use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounterVec, Opts};

use crate::spans::SpanStats;

pub struct SpanCollector {
    stats: Arc<SpanStats>,
    desc: Vec<Desc>,
}

fn family() -> IntCounterVec {
    IntCounterVec::new(
        Opts::new(
            "ebpf_exporter_spans_total",
            "Spans read from ring buffers, by config and what became of them",
        ),
        &["config", "result"],
    )
    .expect("static metric definition is valid")
}

impl SpanCollector {
    pub fn new(stats: Arc<SpanStats>) -> Self {
        let desc = family().desc().into_iter().cloned().collect();
        Self { stats, desc }
    }
}

impl Collector for SpanCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.desc.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let counts = family();
        for (config, by) in self.stats.snapshot() {
            for (result, n) in by.by_result() {
                counts
                    .with_label_values(&[config.as_str(), result])
                    .inc_by(n);
            }
        }
        counts.collect()
    }
}
