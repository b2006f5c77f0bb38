//! The exporter's own metrics, kept with the `prometheus` crate and written
//! through our encoder so they follow the negotiated format.

use prometheus::proto::MetricType;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};

use super::ConfigReport;
use crate::metrics::sink::render_labels;
use crate::metrics::{Collected, Kind, Sink};
use crate::object::program_info::prog_info_by_id;

pub struct SelfMetrics {
    registry: Registry,
    decoder_errors: IntCounterVec,
    map_read_errors: IntCounterVec,
    map_entries: IntGaugeVec,
    cache_entries: IntGaugeVec,
    /// Loaded programs, for run-time statistics read at scrape time.
    program_ids: Vec<u32>,
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g =
        IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition is valid");
    registry
        .register(Box::new(g.clone()))
        .expect("metric registered once");
    g
}

impl SelfMetrics {
    pub fn new(reports: &[ConfigReport]) -> Self {
        let registry = Registry::new();
        let enabled = gauge_vec(
            &registry,
            "ebpf_exporter_enabled_configs",
            "Configs requested at start-up: 1 if running, 0 if it failed",
            &["name"],
        );
        let info = gauge_vec(
            &registry,
            "ebpf_exporter_ebpf_program_info",
            "Info about loaded eBPF programs",
            &["config", "program", "tag", "id"],
        );
        let attached = gauge_vec(
            &registry,
            "ebpf_exporter_ebpf_program_attached",
            "Whether an eBPF program is attached (1) or failed to load or attach (0)",
            &["config", "program", "id"],
        );
        let build = gauge_vec(
            &registry,
            "ebpf_exporter_build_info",
            "Build information of ebpf-exporter",
            &["version", "revision", "libbpf_version"],
        );
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                option_env!("EBPF_EXPORTER_REVISION").unwrap_or("unknown"),
                &libbpf_version(),
            ])
            .set(1);
        let mut program_ids = Vec::new();
        for r in reports {
            enabled
                .with_label_values(&[r.name.as_str()])
                .set(i64::from(r.ok()));
            for p in &r.programs {
                let id = p.id.map(|i| i.to_string()).unwrap_or_default();
                if let (Some(i), Some(tag)) = (p.id, &p.tag) {
                    info.with_label_values(&[
                        r.name.as_str(),
                        p.name.as_str(),
                        tag.as_str(),
                        id.as_str(),
                    ])
                    .set(1);
                    program_ids.push(i);
                }
                attached
                    .with_label_values(&[r.name.as_str(), p.name.as_str(), id.as_str()])
                    .set(i64::from(p.attached() && r.ok()));
            }
        }
        let decoder_errors = IntCounterVec::new(
            Opts::new(
                "ebpf_exporter_decoder_errors_total",
                "Map keys and perf records that failed to decode; a metric with such a key is left out of that scrape",
            ),
            &["config"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(decoder_errors.clone()))
            .expect("metric registered once");
        for r in reports.iter().filter(|r| r.ok()) {
            decoder_errors.with_label_values(&[r.name.as_str()]);
        }
        let map_read_errors = IntCounterVec::new(
            Opts::new(
                "ebpf_exporter_map_read_errors_total",
                "Failed reads of a metric's BPF map",
            ),
            &["config", "map"],
        )
        .expect("static metric definition is valid");
        registry
            .register(Box::new(map_read_errors.clone()))
            .expect("metric registered once");
        let map_entries = gauge_vec(
            &registry,
            "ebpf_exporter_map_entries",
            "Entries read from a metric's BPF map in the last scrape",
            &["config", "map"],
        );
        let cache_entries = gauge_vec(
            &registry,
            "ebpf_exporter_decode_cache_entries",
            "Raw keys whose decoded labels are cached, per map",
            &["config", "map"],
        );
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        Self {
            registry,
            decoder_errors,
            map_read_errors,
            map_entries,
            cache_entries,
            program_ids,
        }
    }

    /// Records what one collector of `config` did in this scrape.
    pub fn observe(&self, config: &str, map: &str, c: &Collected) {
        if c.decode_errors > 0 {
            self.decoder_errors
                .with_label_values(&[config])
                .inc_by(c.decode_errors);
        }
        let Some(stats) = c.map else { return };
        let labels = [config, map];
        if stats.read_failed {
            self.map_read_errors.with_label_values(&labels).inc();
        }
        self.map_entries
            .with_label_values(&labels)
            .set(stats.entries as i64);
        self.cache_entries
            .with_label_values(&labels)
            .set(stats.cached_keys as i64);
    }

    /// Writes the exporter's own families, after every config's.
    pub fn collect(&self, out: &mut dyn Sink) {
        for family in self.registry.gather() {
            let kind = match family.get_field_type() {
                MetricType::COUNTER => Kind::Counter,
                MetricType::GAUGE => Kind::Gauge,
                _ => Kind::Untyped,
            };
            out.family(family.name(), family.help(), kind);
            for m in family.get_metric() {
                let names: Vec<&str> = m.label.iter().map(|l| l.name()).collect();
                let values: Vec<String> = m.label.iter().map(|l| l.value().to_string()).collect();
                let labels = render_labels(names, &values);
                let value = match kind {
                    Kind::Counter => m.counter.value(),
                    Kind::Gauge => m.gauge.value(),
                    _ => m.untyped.value(),
                };
                out.sample_f64(&labels, None, value);
            }
        }
        self.write_program_stats(out);
    }

    /// Run time and count per program, which the kernel only counts while
    /// `kernel.bpf_stats_enabled` is set.
    fn write_program_stats(&self, out: &mut dyn Sink) {
        let enabled = std::fs::read_to_string("/proc/sys/kernel/bpf_stats_enabled")
            .is_ok_and(|s| s.trim() == "1");
        if !enabled || self.program_ids.is_empty() {
            return;
        }
        let stats: Vec<(String, u64, u64)> = self
            .program_ids
            .iter()
            .filter_map(|&id| {
                prog_info_by_id(id).map(|i| (format!("id=\"{id}\""), i.run_time_ns, i.run_cnt))
            })
            .collect();
        out.family(
            "ebpf_exporter_ebpf_program_run_time_seconds",
            "How long eBPF programs ran, while kernel.bpf_stats_enabled is 1",
            Kind::Counter,
        );
        for (labels, ns, _) in &stats {
            out.sample_f64(labels, None, *ns as f64 / 1e9);
        }
        out.family(
            "ebpf_exporter_ebpf_program_run_count_total",
            "How many times eBPF programs ran, while kernel.bpf_stats_enabled is 1",
            Kind::Counter,
        );
        for (labels, _, count) in &stats {
            out.sample_u64(labels, None, *count);
        }
    }
}

fn libbpf_version() -> String {
    // SAFETY: plain getters with no arguments.
    let (major, minor) = unsafe {
        (
            libbpf_sys::libbpf_major_version(),
            libbpf_sys::libbpf_minor_version(),
        )
    };
    format!("{major}.{minor}")
}
