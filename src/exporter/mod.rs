//! Ties the data path together: starts every config (isolating failures),
//! and renders a scrape from all of them plus the exporter's own metrics.

pub mod self_metrics;
pub mod startup;

use std::sync::Arc;

use crate::encode::{Format, TextWriter};
use crate::metrics::MetricCollector;
use crate::object::{LoadedObject, ProgramStatus};

pub use self_metrics::SelfMetrics;
pub use startup::{start, StartOptions};

/// What start-up made of one config: shown on the landing page, in
/// `--config.check` and in self-metrics.
#[derive(Debug, Clone)]
pub struct ConfigReport {
    pub name: String,
    pub file: String,
    /// Where the BPF object came from.
    pub object: String,
    /// `None` when the config is running; otherwise why it is not.
    pub error: Option<String>,
    pub programs: Vec<ProgramStatus>,
    pub metrics: Vec<String>,
}

impl ConfigReport {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// A running config: its loaded object (dropping it detaches) and metrics.
pub struct ConfigState {
    pub name: String,
    pub collectors: Vec<MetricCollector>,
    /// Event-driven counters, fed by their own reader threads.
    pub events: Vec<crate::metrics::events::EventCounter>,
    /// Handed to the sync thread at the end of start-up.
    pub cgroup_id_map: Option<crate::maps::cgroup_id_map::CgroupIdMapSync>,
    /// Kept alive for the programs and maps; never read after start-up.
    pub _object: LoadedObject,
}

pub struct Exporter {
    pub configs: Vec<ConfigState>,
    pub reports: Arc<Vec<ConfigReport>>,
    pub self_metrics: SelfMetrics,
    /// Size of the previous scrape, so the next buffer is allocated once.
    last_len: usize,
}

impl Exporter {
    pub fn new(configs: Vec<ConfigState>, reports: Vec<ConfigReport>) -> Self {
        let reports = Arc::new(reports);
        let self_metrics = SelfMetrics::new(&reports);
        Self {
            configs,
            reports,
            self_metrics,
            last_len: 0,
        }
    }

    /// Reads every map and renders the whole exposition.
    pub fn scrape(&mut self, format: Format) -> String {
        let mut out = TextWriter::with_buffer(
            format,
            String::with_capacity(self.last_len + self.last_len / 8),
        );
        for config in &mut self.configs {
            let mut errors = 0;
            for collector in &mut config.collectors {
                let collected = collector.collect(&mut out);
                errors += collected.decode_errors;
                self.self_metrics
                    .observe_map(&config.name, collector, collected.read_failed);
            }
            for events in &config.events {
                errors += events.collect(&mut out).1;
            }
            self.self_metrics.add_decode_errors(&config.name, errors);
        }
        self.self_metrics.write(&mut out);
        let text = out.finish();
        self.last_len = text.len();
        text
    }
}
