//! The exporter's own metrics, kept with the `prometheus` crate and written
//! through our encoder so they follow the negotiated format.

use prometheus::proto::MetricType;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use super::ConfigReport;
use crate::metrics::sink::render_labels;
use crate::metrics::{Collected, Kind, MetricId, Sink};
use crate::object::program_info::prog_info_by_id;

pub struct SelfMetrics {
    registry: Registry,
    enabled: IntGaugeVec,
    info: IntGaugeVec,
    attached: IntGaugeVec,
    generation: IntGaugeVec,
    loaded_at: GaugeVec,
    last_load_ok: IntGaugeVec,
    last_reload_ok: IntGauge,
    last_reload_success: Gauge,
    reloads: IntCounterVec,
    decoder_errors: IntCounterVec,
    map_read_errors: IntCounterVec,
    map_entries: IntGaugeVec,
    map_max_entries: IntGaugeVec,
    map_update_failures: IntCounterVec,
    events_lost: IntCounterVec,
    series_limited: IntCounterVec,
    cache_entries: IntGaugeVec,
    scrape_seconds: GaugeVec,
    /// Loaded programs, for run-time statistics read at scrape time.
    program_ids: Vec<u32>,
}

fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("metric registered once");
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g =
        IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric definition is valid");
    register(registry, g)
}

fn seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl SelfMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let enabled = gauge_vec(
            &registry,
            "ebpf_exporter_enabled_configs",
            "Configs requested: 1 if a version of it runs, 0 if none could start",
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
        let generation = gauge_vec(
            &registry,
            "ebpf_exporter_config_generation",
            "Versions of the config started since the exporter started; an increase means its series were reset",
            &["config"],
        );
        let loaded_at = register(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "ebpf_exporter_config_load_timestamp_seconds",
                    "When the running version of the config was started, in seconds since the epoch",
                ),
                &["config"],
            )
            .expect("static metric definition is valid"),
        );
        let scrape_seconds = register(
            &registry,
            GaugeVec::new(
                Opts::new(
                    "ebpf_exporter_config_scrape_duration_seconds",
                    "Time this scrape spent reading, decoding and encoding the config's maps",
                ),
                &["config"],
            )
            .expect("static metric definition is valid"),
        );
        let last_load_ok = gauge_vec(
            &registry,
            "ebpf_exporter_config_last_load_successful",
            "Whether the config's file as it is now runs (1), or was refused (0; a previous version may still run)",
            &["config"],
        );
        let last_reload_ok = register(
            &registry,
            IntGauge::new(
                "ebpf_exporter_config_last_reload_successful",
                "Whether the last configuration load (start-up or reload) applied every config",
            )
            .expect("static metric definition is valid"),
        );
        let last_reload_success = register(
            &registry,
            Gauge::new(
                "ebpf_exporter_config_last_reload_success_timestamp_seconds",
                "When a configuration load last applied every config, in seconds since the epoch",
            )
            .expect("static metric definition is valid"),
        );
        let reloads = register(
            &registry,
            IntCounterVec::new(
                Opts::new(
                    "ebpf_exporter_config_reloads_total",
                    "Configuration reloads (not counting start-up), by result",
                ),
                &["result"],
            )
            .expect("static metric definition is valid"),
        );
        for result in ["success", "failure"] {
            reloads.with_label_values(&[result]);
        }
        let build = gauge_vec(
            &registry,
            "ebpf_exporter_build_info",
            "Build information of ebpf-exporter",
            &[
                "version",
                "revision",
                "libbpf_version",
                "rustc_version",
                "target",
                "build_date",
            ],
        );
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                env!("EE_REVISION"),
                &libbpf_version(),
                env!("EE_RUSTC"),
                env!("EE_TARGET"),
                env!("EE_BUILD_DATE"),
            ])
            .set(1);
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
        let map_max_entries = gauge_vec(
            &registry,
            "ebpf_exporter_map_max_entries",
            "Capacity of a metric's BPF map: a hash map whose entries reach it refuses new keys",
            &["config", "map"],
        );
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels)
                    .expect("static metric definition is valid"),
            )
        };
        let map_update_failures = counter_vec(
            "ebpf_exporter_map_update_failures_total",
            "Map inserts the programs' shared helpers could not make (the map was full), per metric map",
            &["config", "map"],
        );
        let events_lost = counter_vec(
            "ebpf_exporter_events_lost_total",
            "Records a perf event buffer lost because user space did not keep up",
            &["config", "map"],
        );
        let series_limited = counter_vec(
            "ebpf_exporter_series_limited_total",
            "Label sets over a metric's series limit, folded into its overflow series or dropped, summed over scrapes",
            &["config", "metric"],
        );
        let cache_entries = gauge_vec(
            &registry,
            "ebpf_exporter_decode_cache_entries",
            "Raw keys whose decoded labels are cached, per map",
            &["config", "map"],
        );
        Self {
            registry,
            enabled,
            info,
            attached,
            generation,
            loaded_at,
            last_load_ok,
            last_reload_ok,
            last_reload_success,
            reloads,
            decoder_errors,
            map_read_errors,
            map_entries,
            map_max_entries,
            map_update_failures,
            events_lost,
            series_limited,
            cache_entries,
            scrape_seconds,
            program_ids: Vec::new(),
        }
    }

    /// Replaces the per-config state families with what `reports` say.
    pub fn set_reports(&mut self, reports: &[ConfigReport]) {
        for v in [
            &self.enabled,
            &self.info,
            &self.attached,
            &self.generation,
            &self.last_load_ok,
        ] {
            v.reset();
        }
        self.loaded_at.reset();
        self.program_ids.clear();
        for r in reports {
            let name = r.name.as_str();
            self.enabled
                .with_label_values(&[name])
                .set(i64::from(r.running));
            self.last_load_ok
                .with_label_values(&[name])
                .set(i64::from(r.ok()));
            if r.running {
                self.generation
                    .with_label_values(&[name])
                    .set(r.generation as i64);
                if let Some(at) = r.loaded_at {
                    self.loaded_at.with_label_values(&[name]).set(seconds(at));
                }
                self.decoder_errors.with_label_values(&[name]);
            }
            for p in &r.programs {
                let id = p.id.map(|i| i.to_string()).unwrap_or_default();
                if let (Some(i), Some(tag), true) = (p.id, &p.tag, r.running) {
                    self.info
                        .with_label_values(&[name, p.name.as_str(), tag.as_str(), id.as_str()])
                        .set(1);
                    self.program_ids.push(i);
                }
                self.attached
                    .with_label_values(&[name, p.name.as_str(), id.as_str()])
                    .set(i64::from(p.attached() && r.running));
            }
        }
    }

    /// Drops the per-map and per-config series of a version that stopped:
    /// its maps may not exist in the next version, and a removed config
    /// must leave no series behind.
    pub fn forget(&self, config: &str, maps: &[String], metrics: &[String]) {
        let _ = self.decoder_errors.remove_label_values(&[config]);
        let _ = self.scrape_seconds.remove_label_values(&[config]);
        for map in maps {
            let labels = [config, map.as_str()];
            let _ = self.map_read_errors.remove_label_values(&labels);
            let _ = self.map_entries.remove_label_values(&labels);
            let _ = self.map_max_entries.remove_label_values(&labels);
            let _ = self.map_update_failures.remove_label_values(&labels);
            let _ = self.events_lost.remove_label_values(&labels);
            let _ = self.cache_entries.remove_label_values(&labels);
        }
        for metric in metrics {
            let _ = self
                .series_limited
                .remove_label_values(&[config, metric.as_str()]);
        }
    }

    /// Records a configuration load; `reload` is false for start-up,
    /// which sets the state but is not counted as a reload.
    pub fn loaded(&self, success: bool, reload: bool, at: SystemTime) {
        self.last_reload_ok.set(i64::from(success));
        if success {
            self.last_reload_success.set(seconds(at));
        }
        if reload {
            let result = if success { "success" } else { "failure" };
            self.reloads.with_label_values(&[result]).inc();
        }
    }

    /// Records what one collector of `config` did in this scrape.
    pub fn observe(&self, config: &str, id: &MetricId, c: &Collected) {
        let map = id.map_name.as_str();
        if c.decode_errors > 0 {
            self.decoder_errors
                .with_label_values(&[config])
                .inc_by(c.decode_errors);
        }
        // Present at 0 from the first scrape, so rate() and alerts work
        // before the first event.
        self.series_limited
            .with_label_values(&[config, id.name.as_str()])
            .inc_by(c.series_limited);
        if let Some(lost) = c.events_lost {
            self.events_lost
                .with_label_values(&[config, map])
                .inc_by(lost);
        }
        let Some(stats) = c.map else { return };
        let labels = [config, map];
        self.map_max_entries
            .with_label_values(&labels)
            .set(i64::from(stats.max_entries));
        // At 0 from the first scrape, like every error counter.
        let read_errors = self.map_read_errors.with_label_values(&labels);
        if stats.read_failed {
            read_errors.inc();
        }
        self.map_entries
            .with_label_values(&labels)
            .set(stats.entries as i64);
        self.cache_entries
            .with_label_values(&labels)
            .set(stats.cached_keys as i64);
    }

    /// What this scrape spent on one config, so an expensive config is
    /// found by its name, not by elimination.
    pub fn scrape_took(&self, config: &str, took: std::time::Duration) {
        self.scrape_seconds
            .with_label_values(&[config])
            .set(took.as_secs_f64());
    }

    /// Sets a map's failed inserts to `total`, as the BPF side counts them.
    pub fn update_failures(&self, config: &str, map: &str, total: u64) {
        let c = self.map_update_failures.with_label_values(&[config, map]);
        c.inc_by(total.saturating_sub(c.get()));
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
        write_process_stats(out);
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

/// The standard process families, exact to the clock tick.
fn write_process_stats(out: &mut dyn Sink) {
    let p = crate::host::procstat::read();
    let families: [(&str, &str, Kind, f64); 6] = [
        (
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            Kind::Counter,
            p.cpu_seconds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            Kind::Gauge,
            p.max_fds as f64,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            Kind::Gauge,
            p.open_fds as f64,
        ),
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Kind::Gauge,
            p.resident_bytes as f64,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Kind::Gauge,
            p.start_time_seconds,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Kind::Gauge,
            p.virtual_bytes as f64,
        ),
    ];
    for (name, help, kind, value) in families {
        out.family(name, help, kind);
        out.sample_f64("", None, value);
    }
}

pub fn libbpf_version() -> String {
    // SAFETY: plain getters with no arguments.
    let (major, minor) = unsafe {
        (
            libbpf_sys::libbpf_major_version(),
            libbpf_sys::libbpf_minor_version(),
        )
    };
    format!("{major}.{minor}")
}
