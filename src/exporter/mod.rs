//! Ties the data path together: starts every config (isolating failures),
//! and renders a scrape from all of them plus the exporter's own metrics.

pub mod report;
pub mod self_metrics;
pub mod startup;

use std::sync::Arc;

use crate::config::Config;
use crate::encode::{Format, TextWriter};
use crate::maps::cgroup_id_map::CgroupIdMapTask;
use crate::metrics::Collector;
use crate::object::LoadedObject;
use crate::spans::reader::SpanReader;
use crate::spans::SpanStats;

pub use report::ConfigReport;
pub use self_metrics::SelfMetrics;
pub use startup::{start, StartOptions};

/// A running config: what it collects, and the loaded object those read.
/// Fields drop in order, so collectors and the cgroup sync stop before the
/// object's programs detach and its maps close.
pub struct RunningConfig {
    pub name: String,
    uses: HostUse,
    collectors: Vec<Box<dyn Collector>>,
    _cgroup_sync: Option<CgroupIdMapTask>,
    _spans: Vec<SpanReader>,
    object: LoadedObject,
}

impl RunningConfig {
    pub fn new(
        config: &Config,
        collectors: Vec<Box<dyn Collector>>,
        cgroup_sync: Option<CgroupIdMapTask>,
        spans: Vec<SpanReader>,
        object: LoadedObject,
    ) -> Self {
        Self {
            name: config.name.clone(),
            uses: HostUse::of(config),
            collectors,
            _cgroup_sync: cgroup_sync,
            _spans: spans,
            object,
        }
    }

    /// Stops collecting and detaches every program; the kernel frees the
    /// programs and maps once no fd of them is left.
    pub fn detach(self) {
        let programs = self.object.programs.len();
        drop(self);
        log::debug!("detached a config with {programs} program(s)");
    }
}

/// Host tables a config reads while serving, not only at start-up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostUse {
    /// /proc/kallsyms, re-read by the ksym and kstack decoders.
    pub kallsyms: bool,
    /// The cgroup tree, walked by the cgroup decoder and cgroup_id_map.
    pub cgroup_tree: bool,
}

impl HostUse {
    pub fn of(config: &Config) -> Self {
        let decoders = config
            .specs()
            .flat_map(|s| s.labels.iter())
            .flat_map(|l| l.decoders.iter())
            .map(|d| d.name.as_str());
        let (mut kallsyms, mut cgroup_tree) = (false, config.spec.cgroup_id_map.is_some());
        for name in decoders {
            kallsyms |= matches!(name, "ksym" | "kstack");
            cgroup_tree |= name == "cgroup";
        }
        Self {
            kallsyms,
            cgroup_tree,
        }
    }
}

pub struct Exporter {
    configs: Vec<RunningConfig>,
    pub reports: Arc<Vec<ConfigReport>>,
    self_metrics: SelfMetrics,
    /// Size of the previous scrape, so the next buffer is allocated once.
    last_len: usize,
    spans: Arc<SpanStats>,
}

impl Exporter {
    pub fn new(
        configs: Vec<RunningConfig>,
        reports: Vec<ConfigReport>,
        spans: Arc<SpanStats>,
    ) -> Self {
        let reports = Arc::new(reports);
        let self_metrics = SelfMetrics::new(&reports);
        Self {
            configs,
            reports,
            self_metrics,
            last_len: 0,
            spans,
        }
    }

    pub fn configs(&self) -> &[RunningConfig] {
        &self.configs
    }

    /// Whether this thread, with its capabilities as they are now, can read
    /// the running configs' maps (true when there are none).
    pub fn maps_readable(&self) -> bool {
        use libbpf_rs::MapCore;
        use std::os::fd::AsFd;
        let first = self
            .configs
            .iter()
            .find_map(|c| c.object.object.maps().next());
        first.is_none_or(|m| crate::maps::read::can_read(m.as_fd(), m.key_size() as usize))
    }

    /// What the running configs still use from the host while serving, which
    /// decides the privileges they keep.
    pub fn host_use(&self) -> HostUse {
        let mut used = HostUse::default();
        for c in &self.configs {
            used.kallsyms |= c.uses.kallsyms;
            used.cgroup_tree |= c.uses.cgroup_tree;
        }
        used
    }

    /// Detaches every config (shutdown).
    pub fn detach_all(&mut self) {
        for config in self.configs.drain(..) {
            config.detach();
        }
    }

    /// Reads every map and renders the whole exposition.
    pub fn scrape(&mut self, format: Format) -> String {
        let mut out = TextWriter::with_buffer(
            format,
            String::with_capacity(self.last_len + self.last_len / 8),
        );
        for config in &mut self.configs {
            for collector in &mut config.collectors {
                let collected = collector.collect(&mut out);
                self.self_metrics
                    .observe(&config.name, &collector.id().map_name, &collected);
            }
        }
        self.self_metrics.collect(&mut out);
        let spans = self.spans.snapshot();
        if !spans.is_empty() {
            use crate::metrics::sink::{render_labels, Kind, Sink};
            out.family(
                "ebpf_exporter_spans_total",
                "Spans read from ring buffers, by config and what became of them",
                Kind::Counter,
            );
            for (config, counts) in spans {
                for (result, n) in counts.by_result() {
                    let labels =
                        render_labels(["config", "result"], &[config.clone(), result.to_string()]);
                    out.sample_u64(&labels, None, n);
                }
            }
        }
        let text = out.finish();
        self.last_len = text.len();
        text
    }
}
